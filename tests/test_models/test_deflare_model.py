"""DeflareModel: Flare7K's loss (recombined in linear light with each sample's gamma), its VGG19 perceptual term from
a local weights file (dropped with one line without one), the EMA copy, and prediction through the tiled path with
the flare layer kept (test.py's val.save_flare, infer.py's --save-flare, bf16 and ONNX)."""
import os

import numpy as np
import pytest
import torch
import yaml

from flare_sr.errors import FlareSRError
from flare_sr.losses.flare7k_loss import PERCEPTUAL_LAYERS, PERCEPTUAL_WEIGHTS, L_percepture
from flare_sr.models.deflare_model import DeflareModel
from flare_sr.utils.img_util import read_image, write_image
from tests.helpers import (TEST_SCRIPT, infer_in_process, load_script, read_metrics, remove_experiment, run_train,
                           unique_name)

# a 6-channel stand-in for Uformer (the three Flare7K files train the real one: tests/test_cli/test_flare7k_options.py)
STAND_IN = {'type': 'Pix2PixUNet', 'num_out_ch': 6, 'num_feat': 4, 'num_downs': 5, 'norm': 'none'}


def deflare_options(tmp_path, is_train=True, **train_extra):
    for folder in ('models', 'training_states', 'visualization'):
        (tmp_path / folder).mkdir(exist_ok=True)
    train = {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}, 'total_iter': 4,
             'l1_opt': {'type': 'L_Abs_pure', 'loss_weight': 0.5}, **train_extra}
    return {'name': 'x', 'model_type': 'DeflareModel', 'is_train': is_train, 'dist': False, 'num_gpu': 0, 'rank': 0,
            'world_size': 1, 'network_g': dict(STAND_IN), 'train': train, 'val': {},
            'path': {key: str(tmp_path / key) for key in ('models', 'training_states', 'visualization')}
            | {'resume_state': None, 'pretrain_network_g': None}}


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    gt, flare = torch.rand(2, 3, 32, 32, generator=generator) * 0.6, torch.rand(2, 3, 32, 32, generator=generator) * 0.4
    gamma = torch.tensor([1.8, 2.2], dtype=torch.float64)  # what the loaders' default collation makes of floats
    lq = ((gt**gamma.view(-1, 1, 1, 1) + flare**gamma.view(-1, 1, 1, 1)).clamp(0, 1)**(1 / gamma.view(-1, 1, 1, 1)))
    return {'lq': lq.float(), 'gt': gt, 'flare': flare, 'gamma': gamma}


def test_loss_is_flare7ks_recombination_in_linear_light_with_each_samples_gamma(tmp_path):
    """0.5 * (|flare - F| + |image - G| + 2 |(image^g + flare^g)^(1/g) - lq|), by hand, per-sample g (1.8, 2.2)."""
    model = DeflareModel(deflare_options(tmp_path))
    data = batch()
    model.feed_data(data)
    with torch.no_grad():
        out = model.net_g(data['lq'])
    image, flare = out[:, :3], out[:, 3:]
    g = data['gamma'].float().view(-1, 1, 1, 1)
    # the stand-in's Tanh can go below 0: clipped before the power (Uformer's sigmoid never is)
    merged = (image.clamp(0, 1)**g + flare.clamp(0, 1)**g).clamp(1e-7, 1)**(1 / g)
    expected = {'l1_flare': 0.5 * (flare - data['flare']).abs().mean(),
                'l1_base': 0.5 * (image - data['gt']).abs().mean(),
                'l1_recons': 2 * 0.5 * (merged - data['lq']).abs().mean()}
    before = {name: value.clone() for name, value in model.net_g.state_dict().items()}
    model.optimize_parameters(1)
    log = model.get_current_log()
    for name, value in expected.items():
        assert log[name] == pytest.approx(value.item(), rel=1e-5), name
    assert log['l1'] == pytest.approx(sum(value.item() for value in expected.values()), rel=1e-5)
    assert 'l_vgg' not in log
    assert any(not torch.equal(before[name], value) for name, value in model.net_g.state_dict().items())


def test_pairs_without_flare_layers_train_with_the_flare_of_the_pair(tmp_path):
    """A plain pair dataset (no flare, no gamma): the flare target is lq - gt in linear light at gamma 2.2."""
    model = DeflareModel(deflare_options(tmp_path))
    data = batch()
    model.feed_data({'lq': data['lq'], 'gt': data['gt']})
    target, gamma = model._targets()
    assert gamma == 2.2
    assert torch.allclose(target, (data['lq']**2.2 - data['gt']**2.2).clamp(0, 1)**(1 / 2.2), atol=1e-6)
    model.optimize_parameters(1)
    assert np.isfinite(model.get_current_log()['l1'])


def test_a_net_of_three_channels_gives_the_flare_it_removed(tmp_path):
    opt = deflare_options(tmp_path)
    opt['network_g'] = dict(STAND_IN, num_out_ch=3)
    model = DeflareModel(opt)
    lq, image = torch.full((1, 3, 8, 8), 0.8), torch.full((1, 3, 8, 8), 0.5)
    split_image, flare = model.split_output(image, lq, 2.2)
    assert split_image is image and torch.allclose(flare, (0.8**2.2 - 0.5**2.2) ** (1 / 2.2) * torch.ones_like(lq))
    with pytest.raises(FlareSRError, match='needs 6 output channels'):
        model.split_output(torch.zeros(1, 4, 8, 8), lq, 2.2)


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    """torchvision's VGG19 state_dict layout with random weights (the real file is 548 MB and not downloadable here)."""
    from torchvision.models import vgg19
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('vgg') / 'vgg19-dcbb9e9d.pth'
    torch.save({name: tensor for name, tensor in vgg19().state_dict().items() if name.startswith('features.')}, path)
    return str(path)


def test_perceptual_term_is_flare7ks_vgg19_layers_from_the_given_file(tmp_path, vgg_file):
    from torchvision.models import vgg19
    features = vgg19().features[:31]
    features.load_state_dict({name[len('features.'):]: value for name, value in torch.load(vgg_file).items()
                              if int(name.split('.')[1]) < 31})
    loss = L_percepture(loss_weight=0.5, vgg_path=vgg_file)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    expected, fx, fy = 0, x, y
    for index, layer in enumerate(features):  # no ImageNet normalisation, as Flare7K
        fx, fy = layer(fx), layer(fy)
        if index in PERCEPTUAL_LAYERS:
            expected += PERCEPTUAL_WEIGHTS[PERCEPTUAL_LAYERS.index(index)] * (fx - fy).abs().mean()
    assert loss(x, y).item() == pytest.approx(0.5 * expected.item(), rel=1e-5)
    model = DeflareModel(deflare_options(tmp_path, perceptual={'type': 'L_percepture', 'loss_weight': 0.5,
                                                               'vgg_path': vgg_file}))
    model.feed_data(batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['l_vgg'] == pytest.approx(log['l_vgg_base'] + log['l_vgg_flare']) and log['l_vgg'] > 0


def test_without_vgg_weights_one_line_says_where_they_go_and_a_wrong_path_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
    monkeypatch.delenv('FLARE_SR_VGG19', raising=False)
    model = DeflareModel(deflare_options(tmp_path, perceptual={'type': 'L_percepture', 'loss_weight': 0.5}))
    err = capsys.readouterr().err.splitlines()
    assert model.cri_perceptual is None and len(err) == 1
    assert err[0] == ('warning: train.perceptual (L_percepture): no VGG19 ImageNet weights: put torchvision\'s '
                      f'vgg19-dcbb9e9d.pth at {tmp_path}/empty/hub/checkpoints/vgg19-dcbb9e9d.pth, or name the file '
                      'with train.perceptual.vgg_path or $FLARE_SR_VGG19; trained without the perceptual term')
    with pytest.raises(FlareSRError, match='train.perceptual.vgg_path: nowhere.pth does not exist'):
        DeflareModel(deflare_options(tmp_path, perceptual={'type': 'L_percepture', 'vgg_path': 'nowhere.pth'}))
    monkeypatch.setenv('FLARE_SR_VGG19', str(tmp_path / 'gone.pth'))
    with pytest.raises(FlareSRError, match=r'\$FLARE_SR_VGG19: .*gone.pth does not exist'):
        DeflareModel(deflare_options(tmp_path, perceptual={'type': 'L_percepture'}))
    with pytest.raises(FlareSRError, match=f'train.perceptual.vgg_path: {tmp_path} is a folder, not a file'):
        DeflareModel(deflare_options(tmp_path, perceptual={'type': 'L_percepture', 'vgg_path': str(tmp_path)}))


@pytest.mark.parametrize('channels_last', [False, True])
def test_ema_copy_follows_the_decay_and_is_saved_and_used_for_prediction(tmp_path, channels_last):
    """Also in channels_last, where the EMA copy is NHWC like the net it follows."""
    model = DeflareModel(deflare_options(tmp_path, ema_decay=0.9, channels_last=channels_last))
    weights = [value for value in model.net_g_ema.parameters() if value.dim() == 4 and value.shape[-1] > 1]
    assert weights and all(value.is_contiguous(memory_format=torch.channels_last) == channels_last for value in weights)
    start = {name: value.clone() for name, value in model.net_g_ema.named_parameters()}
    model.feed_data(batch())
    model.optimize_parameters(1)
    for name, value in model.net_g_ema.named_parameters():
        expected = 0.9 * start[name] + 0.1 * dict(model.net_g.named_parameters())[name]
        assert torch.allclose(value, expected, atol=1e-7)
    assert model.inference_net() is model.net_g_ema
    model.save(0, 1)
    assert sorted(torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)) == ['params', 'params_ema']


def test_prediction_is_tiled_and_keeps_the_flare_layer(tmp_path):
    """The whole frame: the image and flare channels of the net (padded to its multiple, cropped back); tiles: both
    layers at the frame's size, each tile's flare where its image is."""
    model = DeflareModel(deflare_options(tmp_path, is_train=False))
    lq = torch.rand(1, 3, 72, 100, generator=torch.Generator().manual_seed(1))
    whole = model.predict(lq)
    raw = model.inference_net()(torch.nn.functional.pad(lq, (0, 28, 0, 24), mode='reflect'))[..., :72, :100]
    assert torch.allclose(whole, raw[:, :3].clamp(0, 1), atol=1e-5)
    assert torch.allclose(model.flare_layer, raw[:, 3:].clamp(0, 1), atol=1e-5)
    model.opt['val'] = {'tile': {'size': 64, 'overlap': 16}, 'darken_only': True}
    tiled = model.predict(lq)
    assert tiled.shape == model.flare_layer.shape == (1, 3, 72, 100)
    assert (tiled <= lq + 1e-6).all() and not torch.equal(model.flare_layer, torch.minimum(model.flare_layer, lq))


@pytest.mark.slow
def test_test_py_and_infer_py_save_the_flare_layer_in_bf16_and_onnx(tmp_path, capsys):
    """test.py: val.save_flare writes <dataset>_flare/, Flare7K's blend on, bf16; infer.py --save-flare with PyTorch
    and with the exported 6-channel ONNX graph (same files, flare layers within ONNX's float rounding)."""
    torch.manual_seed(0)
    net_opt = dict(STAND_IN)
    checkpoint = tmp_path / 'net_g.pth'
    from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
    torch.save({'params': Pix2PixUNet(**{k: v for k, v in net_opt.items() if k != 'type'}).state_dict()}, checkpoint)
    rng = np.random.default_rng(0)
    for index in range(2):
        image = rng.uniform(0, 0.7, (48, 80, 3)).astype(np.float32)
        image[10:18, 20:28] = 1.0  # a light for the blend
        write_image(tmp_path / 'input' / f'input_{index:06d}.png', image)
        write_image(tmp_path / 'gt' / f'gt_{index:06d}.png', image * 0.9)
    name = unique_name('deflare_test')
    opt = {'name': name, 'model_type': 'DeflareModel', 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'real', 'type': 'Image_Pair_Loader', 'dataroot_lq': str(tmp_path / 'input'),
                                   'dataroot_gt': str(tmp_path / 'gt')}},
           'network_g': net_opt, 'path': {'pretrain_network_g': str(checkpoint), 'strict_load_g': True},
           'val': {'save_img': True, 'save_flare': True, 'precision': 'bf16', 'tile': {'size': 64, 'overlap': 16},
                   'restore_light_source': {'method': 'flare7k'},
                   'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}}
    option_file = tmp_path / 'test.yml'
    option_file.write_text(yaml.safe_dump(opt))
    try:
        result = run_train(option_file, tmp_path, script=TEST_SCRIPT)
        assert result.returncode == 0, result.stderr[-3000:]
        results = os.path.join(os.path.dirname(os.path.dirname(TEST_SCRIPT)), 'results', name)
        assert sorted(os.listdir(os.path.join(results, 'visualization', 'real_flare'))) == [
            'input_000000.png', 'input_000001.png']
        assert read_metrics(os.path.join(results, 'metrics.json'))['datasets']['real']['images'] == 2
    finally:
        remove_experiment(name)
    opt['val'].pop('precision')
    option_file.write_text(yaml.safe_dump(opt))
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'input', '--output',
                                 tmp_path / 'out', '--save-flare', tmp_path / 'flare')
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'flare')) == sorted(os.listdir(tmp_path / 'out')) == [
        'input_000000.png', 'input_000001.png']
    restored = read_image(tmp_path / 'out' / 'input_000000.png')
    assert np.array_equal(restored[12:16, 22:26], np.ones((4, 4, 3), np.float32))  # the light blended back
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'input', '--output',
                                 tmp_path / 'out', '--save-flare', tmp_path / 'out')
    assert code == 2 and 'is the --output folder' in err
    load_script('export_onnx').main(['-opt', str(option_file), '--out', str(tmp_path / 'deflare.onnx')])
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'input', '--output',
                                 tmp_path / 'out_onnx', '--save-flare', tmp_path / 'flare_onnx', '--backend',
                                 'onnxruntime', '--onnx', tmp_path / 'deflare.onnx')
    assert code == 0, err
    for folder, other in (('out', 'out_onnx'), ('flare', 'flare_onnx')):
        for file_name in os.listdir(tmp_path / folder):
            difference = np.abs(read_image(tmp_path / folder / file_name) - read_image(tmp_path / other / file_name))
            assert difference.max() <= 1 / 255 + 1e-6
    hinet = dict(opt, model_type='HINetModel', network_g={'type': 'HINet', 'wf': 4, 'depth': 2}, path={})
    hinet['val'] = {key: value for key, value in opt['val'].items() if key != 'save_flare'}
    (tmp_path / 'hinet.yml').write_text(yaml.safe_dump(hinet))
    code, err = infer_in_process(capsys, '-opt', tmp_path / 'hinet.yml', '--input', tmp_path / 'input', '--output',
                                 tmp_path / 'x', '--save-flare', tmp_path / 'y')
    assert code == 2 and err.splitlines()[-1] == ('error: --save-flare: HINetModel predicts no flare layer '
                                                  '(DeflareModel does)')


def test_resume_with_ema_continues_exactly(tmp_path):
    """Kill after iteration 1, resume as BasicSR does (net_g_1.pth as pretrain_network_g: params into net_g,
    params_ema into net_g_ema; the training state into the optimizer): iteration 2 gives the uninterrupted run's
    params and params_ema bit for bit."""
    torch.manual_seed(0)
    for run in ('a', 'b'):
        (tmp_path / run).mkdir()
    straight = DeflareModel(deflare_options(tmp_path / 'a', ema_decay=0.9))
    straight.feed_data(batch(1))
    straight.optimize_parameters(1)
    straight.save(0, 1)
    straight.feed_data(batch(2))
    straight.optimize_parameters(2)
    opt = deflare_options(tmp_path / 'b', ema_decay=0.9)
    opt['path']['pretrain_network_g'] = str(tmp_path / 'a' / 'models' / 'net_g_1.pth')
    torch.manual_seed(123)  # another initialisation: everything must come from the checkpoint
    resumed = DeflareModel(opt)
    resumed.resume_training(torch.load(tmp_path / 'a' / 'training_states' / '1.state', weights_only=True))
    resumed.feed_data(batch(2))
    resumed.optimize_parameters(2)
    for name in ('net_g', 'net_g_ema'):
        for key, value in getattr(straight, name).state_dict().items():
            assert torch.equal(value, getattr(resumed, name).state_dict()[key]), (name, key)


def test_out_deflare_false_blends_the_light_back_with_flare7ks_blend(tmp_path):
    """Flare7K++'s ``train.out_deflare`` read as test.py's --flare7kpp: true or absent, the image as the net gives it;
    false (a Flare7K net trained without light sources in its targets), Flare7K's blend unless val says otherwise."""
    assert DeflareModel.light_source_setting(deflare_options(tmp_path, out_deflare=True)) is None
    assert DeflareModel.light_source_setting(deflare_options(tmp_path)) is None
    opt = deflare_options(tmp_path, out_deflare=False)
    assert DeflareModel.light_source_setting(opt) == {'method': 'flare7k'}
    opt['val'] = {'restore_light_source': False}
    assert DeflareModel.light_source_setting(opt) is False


def test_the_option_checker_refuses_what_deflare_model_would_ignore(tmp_path):
    """train.saturation_mask (no place in Flare7K's loss) and val.save_flare on a model without a flare layer."""
    from flare_sr.utils.options_check import OptionChecker

    opt = deflare_options(tmp_path)
    opt.update(datasets={}, logger={'print_freq': 1, 'save_checkpoint_freq': 1})
    opt['val'] = {'val_freq': 1, 'restore_light_source': {'method': 'flare7k', 'threshold': 0.95}}
    assert OptionChecker(is_train=True).check(opt) == []
    opt['train']['saturation_mask'] = True
    opt['val']['restore_light_source']['method'] = 'flare7K'
    assert OptionChecker(is_train=True).check(opt) == [
        'train.saturation_mask: DeflareModel does not apply it; remove it',
        "val.restore_light_source.method: expected 'flare_sr' or 'flare7k', got the string 'flare7K'"]
    hinet = dict(opt, model_type='HINetModel', network_g={'type': 'HINet', 'wf': 4, 'depth': 2},
                 train={'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 2,
                        'pixel_opt': {'type': 'L1Loss'}}, val={'val_freq': 1, 'save_flare': True})
    assert OptionChecker(is_train=True).check(hinet) == [
        'val.save_flare: HINetModel predicts no flare layer (DeflareModel does); remove it']


def test_bf16_autocast_trains_with_finite_losses(tmp_path, vgg_file):
    """train.amp: bf16 (on the CPU here): the net and VGG under autocast, the losses in float32."""
    perceptual = {'type': 'L_percepture', 'vgg_path': vgg_file}
    model = DeflareModel(deflare_options(tmp_path, amp='bf16', perceptual=perceptual))
    model.feed_data(batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert all(np.isfinite(log[name]) for name in ('l1_flare', 'l1_base', 'l1_recons', 'l_vgg'))
