"""Each model really trains through flare_sr/train.py: the loss falls, TensorBoard gets scalars and
side-by-side images, checkpoints are written, and --auto_resume continues on CPU from another directory."""

import os

import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model

import flare_sr.models.tiled_validation as tiled_validation
from flare_sr.utils.img_util import read_image_uint8, write_image
from tests.helpers import (REPO, TEST_SCRIPT, basicsr_log, dataset_options, experiment_dirs, flare_data, hinet_options,
                           load_params, make_flare_pairs, pix2pix_options, read_metrics, run_train, tb_scalars,
                           write_options)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('flare_pairs')
    return flare_data(root, 6, 2)


def _mean(values):
    return float(np.mean([value for _, value in values]))


def _train_resume_and_check(tmp_path, opt, loss_tag, iters, more_iters, net_labels):
    name = opt['name']
    first_cwd, second_cwd = tmp_path / 'first', tmp_path / 'second'
    first_cwd.mkdir()
    second_cwd.mkdir()
    opt['logger']['save_checkpoint_freq'] = iters
    opt['val']['val_freq'] = iters
    result = run_train(write_options(tmp_path / 'first.yml', opt), first_cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr  # val_freq == total_iter: BasicSR's final validation would repeat it
    assert log.count('  val test_input_10000: psnr') == 1
    assert f'val: validated at iteration {iters} already; not again' in log
    exp_dir, tb_dir = experiment_dirs(name)
    for label in net_labels:
        assert os.path.isfile(os.path.join(exp_dir, 'models', f'{label}_{iters}.pth'))
    assert os.path.isfile(os.path.join(exp_dir, 'training_states', f'{iters}.state'))
    assert not (first_cwd / 'experiments').exists(), 'outputs must go under the repository root'

    scalars = tb_scalars(tb_dir)
    losses = sorted(scalars[f'losses/{loss_tag}'])
    assert len(losses) == iters
    window = iters // 4
    first, last = _mean(losses[:window]), _mean(losses[-window:])
    assert last < 0.8 * first, f'{loss_tag} did not fall: first {window} iters {first:.4f}, last {last:.4f}'
    assert 'lr' in scalars
    for metric in ('psnr', 'ssim', 'input_psnr', 'input_ssim'):
        assert f'metrics/val/{metric}' in scalars, sorted(scalars)
    assert any(tag.startswith('image:val_val/') and 'input|output|label' in tag for tag in scalars)
    compare = os.path.join(exp_dir, 'visualization', 'val', 'test_input_10000', f'test_input_10000_{iters}_compare.png')
    assert os.path.isfile(compare)

    opt['train']['total_iter'] = iters + more_iters
    result = run_train(write_options(tmp_path / 'second.yml', opt), second_cwd, '--auto_resume')
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Resuming training from epoch' in log and f'iter: {iters}.' in log
    # metrics.json tells the one continuous run: the first run's validation kept, the resumed run's final one added
    validations = read_metrics(os.path.join(exp_dir, 'metrics.json'))['validations']
    assert [entry['iter'] for entry in validations] == [iters, iters + more_iters]
    for label in net_labels:
        assert f'{label}_{iters}.pth' in log  # the resumed run loaded each saved network
        params = load_params(os.path.join(exp_dir, 'models', f'{label}_latest.pth'))
        assert all(torch.isfinite(value).all() for value in params.values())
    steps = sorted(step for step, _ in tb_scalars(tb_dir)[f'losses/{loss_tag}'])
    assert steps == list(range(1, iters + more_iters + 1)), 'the resumed run must continue at the next iteration'
    return scalars


@pytest.mark.slow
def test_hinet_trains_logs_and_auto_resumes_from_another_directory(tmp_path, tiny_data, experiment):
    """Also: PSNRLoss, bf16 autocast on the CPU, gradient clipping; then test.py on the result."""
    opt = hinet_options(tiny_data, experiment('test_hinet'), total_iter=24, grad_clip=1.0, amp='bf16')
    opt['train']['pixel_opt'] = {'type': 'PSNRLoss', 'loss_weight': 0.1}
    _train_resume_and_check(tmp_path, opt, 'l_pix', 24, 4, ['net_g'])

    test_name = experiment('test_hinet_eval')
    test_opt = {'name': test_name, 'model_type': 'HINetModel', 'num_gpu': 0,
                'datasets': {'test_1': dict(opt['datasets']['val'], name='held_out')},
                'network_g': opt['network_g'],
                'path': {'pretrain_network_g': os.path.join(experiment_dirs(opt['name'])[0], 'models',
                                                            'net_g_latest.pth')},
                'val': {'save_img': True, 'tile': {'size': 32, 'overlap': 8}, 'metrics': opt['val']['metrics']}}
    result = run_train(write_options(tmp_path / 'test.yml', test_opt), tmp_path, script=TEST_SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_metrics(os.path.join(REPO, 'results', test_name, 'metrics.json'))['datasets']['held_out']
    assert sorted(record['per_image']) == ['test_input_10000', 'test_input_10001']
    assert set(record['mean']) == {'psnr', 'ssim'} and record['mean']['psnr']['input'] > 0
    visualization = os.path.join(REPO, 'results', test_name, 'visualization')
    assert os.path.isfile(os.path.join(visualization, 'held_out', 'test_input_10000.png'))  # no val.suffix needed
    assert os.path.isfile(os.path.join(visualization, 'held_out_compare', 'test_input_10000.png'))


@pytest.mark.slow
def test_pix2pix_trains_logs_and_auto_resumes_both_networks(tmp_path, tiny_data, experiment):
    opt = pix2pix_options(tiny_data, experiment('test_pix2pix'), total_iter=24)
    scalars = _train_resume_and_check(tmp_path, opt, 'l_g_pix', 24, 4, ['net_g', 'net_d'])
    for tag in ('losses/l_g_gan', 'losses/l_d_real', 'losses/l_d_fake', 'lr_1'):
        assert tag in scalars, tag


def _test_model(model_type, network_g, tile=None):
    from basicsr.models import build_model

    return build_model({'model_type': model_type, 'is_train': False, 'dist': False, 'num_gpu': 0,
                        'network_g': network_g, 'path': {}, 'val': {'tile': tile or {}}})


def test_hinet_model_predicts_subnetwork_two_and_pix2pix_maps_tanh_to_unit_range():
    torch.manual_seed(0)
    from flare_sr.utils.tiling import pad_to_multiple

    image = torch.rand(1, 3, 42, 57)  # not a multiple of HINet's 4: predict pads and crops back
    hinet = _test_model('HINetModel', {'type': 'HINet', 'wf': 4, 'depth': 2})
    with torch.no_grad():
        out_1, out_2 = hinet.net_g(pad_to_multiple(image, hinet.net_g.size_multiple))
    out = hinet.predict(image)
    assert out.shape == image.shape
    assert torch.allclose(out, out_2[..., :42, :57].clamp(0, 1), atol=1e-6)
    assert not torch.allclose(out, out_1[..., :42, :57].clamp(0, 1), atol=1e-3)

    pix2pix = _test_model('Pix2PixModel', {'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 4, 'norm': 'none'})
    square = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        raw = pix2pix.net_g(square * 2 - 1)
    assert torch.allclose(pix2pix.predict(square), (raw + 1) / 2, atol=1e-6)


@pytest.mark.slow
def test_ema_weights_are_the_decay_average_of_the_trained_weights(tmp_path, tiny_data, experiment):
    """train.ema_decay d: after every optimizer step ema <- d * ema + (1 - d) * params, so the params_ema saved at
    iteration N are the closed-form decay average d^(N-1) ema_1 + sum_t (1 - d) d^(N-t) params_t of the params
    saved at each iteration: they lag behind training by a known amount, for every parameter."""
    name = experiment('test_ema')
    decay, iters = 0.5, 5
    opt = hinet_options(tiny_data, name, total_iter=iters, ema_decay=decay)
    opt['logger']['save_checkpoint_freq'] = 1
    result = run_train(write_options(tmp_path / 'ema.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = [load_params(os.path.join(experiment_dirs(name)[0], 'models', f'net_g_{step}.pth'), key)
             for step in range(1, iters + 1) for key in ('params', 'params_ema')]
    params, emas = saved[0::2], saved[1::2]
    for key in params[0]:
        if not params[0][key].is_floating_point():
            continue
        expected = decay ** (iters - 1) * emas[0][key].double()
        for step in range(2, iters + 1):
            expected += (1 - decay) * decay ** (iters - step) * params[step - 1][key].double()
        torch.testing.assert_close(emas[-1][key].double(), expected, atol=1e-6, rtol=1e-5, msg=key)
    lag = max((emas[-1][key] - params[-1][key]).abs().max().item() for key in params[0])
    moved = max((emas[-1][key] - emas[0][key]).abs().max().item() for key in params[0])
    assert lag > 1e-4 and moved > 1e-4  # the average trails the trained weights, and follows them


@pytest.mark.slow
def test_two_validation_sets_with_the_same_file_names_keep_their_own_images(tmp_path, tiny_data, experiment):
    """Flare7K's real and synthetic test sets share file names: each set's images go under its name, and each
    input|output|label image shows that set's input and label."""
    sets = {name: make_flare_pairs(str(tmp_path / name), 1, seed=seed, prefix='test')
            for name, seed in (('real', 11), ('synthetic', 12))}
    opt = hinet_options(tiny_data, experiment('test_two_val_sets'), total_iter=1)
    del opt['datasets']['val']
    for index, (name, (lq_dir, gt_dir)) in enumerate(sets.items(), start=1):
        opt['datasets'][f'val_{index}'] = {'name': name, 'type': 'PairedFlareDataset', 'dataroot_lq': lq_dir,
                                           'dataroot_gt': gt_dir, 'io_backend': {'type': 'disk'}}
    opt['val']['val_freq'] = 1
    result = run_train(write_options(tmp_path / 'two_sets.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    visualization = os.path.join(experiment_dirs(opt['name'])[0], 'visualization')
    assert sorted(os.listdir(visualization)) == ['real', 'synthetic']
    inputs = {name: read_image_uint8(os.path.join(lq_dir, 'test_input_10000.png'))
              for name, (lq_dir, _) in sets.items()}
    assert not np.array_equal(inputs['real'], inputs['synthetic'])
    for name, (lq_dir, gt_dir) in sets.items():
        stem = os.path.join(visualization, name, 'test_input_10000', 'test_input_10000_1')
        compare, output = read_image_uint8(f'{stem}_compare.png'), read_image_uint8(f'{stem}.png')
        width = inputs[name].shape[1]
        assert np.array_equal(compare[:, :width], inputs[name])
        assert np.array_equal(compare[:, width:2 * width], output)
        assert np.array_equal(compare[:, 2 * width:], read_image_uint8(os.path.join(gt_dir, 'test_label_10000.png')))


def test_input_baseline_is_scored_once_per_image_and_rescored_when_it_changes(tmp_path, tiny_data, monkeypatch):
    """A real HINetModel validates twice: the second validation scores only the outputs, metrics.json keeps the
    same input scores; rewriting a label at the same path scores that image's input afresh."""
    lq_dir, gt_dir = make_flare_pairs(str(tmp_path / 'val'), 2, seed=5, prefix='test')
    opt = hinet_options(tiny_data, 'baseline_cache', total_iter=10)
    opt.update(is_train=True, dist=False, rank=0, world_size=1,
               path={'experiments_root': str(tmp_path), 'visualization': str(tmp_path / 'vis')})
    model = build_model(opt)
    calls = []
    real = tiled_validation.calculate_metric

    def counted(data, metric_opt):
        calls.append(metric_opt['type'])
        return real(data, metric_opt)

    monkeypatch.setattr(tiled_validation, 'calculate_metric', counted)

    def validate(current_iter):
        calls.clear()
        dataset = build_dataset(dict(dataset_options(lq_dir, gt_dir, 'val'), phase='val'))
        loader = build_dataloader(dataset, dict(dataset.opt, phase='val'), num_gpu=0, dist=False)
        model.validation(loader, current_iter, None, save_img=False)
        return len(calls)

    metrics = len(opt['val']['metrics'])
    assert validate(1) == 2 * 2 * metrics  # 2 images x (output, input) x metrics
    model.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 32, 32)})
    model.optimize_parameters(1)  # the outputs change, the inputs do not
    assert validate(2) == 2 * metrics  # outputs only
    first, second = read_metrics(str(tmp_path / 'metrics.json'))['validations']
    for image, scores in first['datasets']['val']['per_image'].items():
        for name, score in scores.items():
            assert second['datasets']['val']['per_image'][image][name]['input'] == score['input']
            assert score['output'] != second['datasets']['val']['per_image'][image][name]['output']
    label = os.path.join(gt_dir, 'test_label_10001.png')  # same path, other pixels: that input is scored again
    write_image(label, 255 - read_image_uint8(label))
    assert validate(3) == (2 + 1) * metrics
    third = read_metrics(str(tmp_path / 'metrics.json'))['validations'][-1]['datasets']['val']['per_image']
    assert third['test_input_10001']['psnr']['input'] != first['datasets']['val']['per_image'][
        'test_input_10001']['psnr']['input']
    assert third['test_input_10000']['psnr']['input'] == first['datasets']['val']['per_image'][
        'test_input_10000']['psnr']['input']


def test_channels_last_trains_on_the_cpu_as_nchw_does_with_nhwc_weights(tmp_path, tiny_data):
    """``train.channels_last`` on the CPU: the nets (the EMA copy too) and batches are NHWC (oneDNN's faster kernels;
    it was ignored there before), the gradients are NCHW's up to the order of sums, and the saved weights load into
    an NCHW net."""
    models, batch = {}, {'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 32, 32)}
    with basicsr_log() as said:
        for channels_last in (False, True):
            torch.manual_seed(0)
            opt = hinet_options(tiny_data, f'cl_{channels_last}', total_iter=10, channels_last=channels_last,
                                ema_decay=0.9)
            opt.update(is_train=True, dist=False, rank=0, world_size=1,
                       path={'experiments_root': str(tmp_path), 'visualization': str(tmp_path / 'vis'),
                             'models': str(tmp_path / 'models')})
            model = build_model(opt)
            model.feed_data(batch)
            model.optimize_parameters(1)
            models[channels_last] = model, [param.grad.clone() for param in model.net_g.parameters()]
            model.optimize_parameters(2)
    lines = [line for line in said if line.startswith('CPU training')]
    threads = f'{torch.get_num_threads()} thread' + ('s' if torch.get_num_threads() > 1 else '')
    assert lines == [f'CPU training: {threads}, {layout}.' for layout in ('NCHW', 'channels_last')]
    (nhwc, nhwc_grads), (nchw, nchw_grads) = models[True], models[False]
    conv = next(param for param in nhwc.net_g.parameters() if param.dim() == 4 and param.shape[-1] == 3)
    ema_conv = next(param for param in nhwc.net_g_ema.parameters() if param.dim() == 4 and param.shape[-1] == 3)
    for weight in (conv, ema_conv):  # the EMA copy too, which validation and inference run
        assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert nhwc.lq.is_contiguous(memory_format=torch.channels_last)
    for (name, _), grad, reference in zip(nhwc.net_g.named_parameters(), nhwc_grads, nchw_grads):
        assert torch.allclose(grad, reference, rtol=1e-3, atol=1e-6), name  # the first step's gradients
    nhwc.save_network(nhwc.net_g, 'net_g', 2)
    saved = load_params(os.path.join(tmp_path, 'models', 'net_g_2.pth'))
    plain = build_model(dict(nchw.opt, is_train=False)).net_g
    plain.load_state_dict(saved)
    assert all(param.is_contiguous() for param in plain.parameters())


@pytest.mark.parametrize('native', ['AMX-BF16', None])
def test_amp_auto_and_true_train_in_bf16_only_where_the_cpu_has_it_natively(tmp_path, tiny_data, monkeypatch, native):
    """``train.amp: auto`` (and ``true``, which was silently full precision): bf16 autocast on a CPU with native bf16,
    full precision where bf16 would be emulated (slower than fp32)."""
    import flare_sr.utils.precision as precision
    monkeypatch.setattr(precision, 'cpu_bf16_support', lambda: native)
    for amp in ('auto', True, 'bf16', False):
        opt = hinet_options(tiny_data, f'amp_{amp}', total_iter=10, amp=amp)
        opt.update(is_train=True, dist=False, rank=0, world_size=1,
                   path={'experiments_root': str(tmp_path), 'visualization': str(tmp_path / 'vis')})
        model = build_model(opt)
        expected = torch.bfloat16 if amp == 'bf16' or (amp in ('auto', True) and native) else None
        assert model.amp_dtype == expected, amp
        model.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 32, 32)})
        model.optimize_parameters(1)
        assert all(np.isfinite(value) for value in model.get_current_log().values()), amp


def test_a_resume_with_other_numerics_is_said_in_one_warning(tmp_path, tiny_data, monkeypatch):
    """A state keeps the step's precision, memory format and CPU threads; resuming with others trains on, but not bit
    for bit as one uninterrupted run (a stage stopped inside a --glow pipeline and resumed alone gets more threads),
    so it is said once; the same settings say nothing."""
    import flare_sr.utils.precision as precision
    monkeypatch.setattr(precision, 'cpu_bf16_support', lambda: 'AMX-BF16')

    def model(**train):
        opt = hinet_options(tiny_data, 'numerics', total_iter=10, **train)
        opt.update(is_train=True, dist=False, rank=0, world_size=1,
                   path={key: str(tmp_path / key) for key in ('experiments_root', 'visualization', 'models',
                                                              'training_states')})
        os.makedirs(opt['path']['training_states'], exist_ok=True)
        return build_model(opt)

    first = model()
    first.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 32, 32)})
    first.optimize_parameters(1)
    first.save_training_state(0, 1)
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    threads = torch.get_num_threads()
    assert state['numerics'] == {'precision': 'fp32', 'layout': 'NCHW', 'threads': threads}
    for train, said in (({}, []), ({'channels_last': True, 'amp': 'auto'}, [
            'Resume: trained until iteration 1 with precision fp32, layout NCHW; now precision bf16, layout '
            'channels_last (train.amp, train.channels_last, OMP_NUM_THREADS): the run goes on, but not bit for bit as '
            'one uninterrupted run would.'])):
        resumed = model(**train)
        with basicsr_log() as lines:
            resumed.resume_training(state)
        assert [line for line in lines if line.startswith('Resume:')] == said
    for odd in (None, ['fp32'], 'fp32'):  # a state from before the record, or a hand-made one: nothing to say
        with basicsr_log() as lines:
            model(channels_last=True).resume_training(dict(state, numerics=odd))
        assert not [line for line in lines if line.startswith('Resume:')], odd
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads + 1)
    with basicsr_log() as lines:
        model().resume_training(state)
    assert f'with threads {threads}; now threads {threads + 1}' in ' '.join(lines)
