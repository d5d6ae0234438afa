"""The field's option files run: BasicSR v1.4.2, HINet, NAFNet and Real-ESRGAN files, changed only in types, paths,
sizes and num_gpu (templates in tests/data/field_options/), train 2 iterations or test through
flare_sr/train.py and flare_sr/test.py; and each kind of case of the option checker (issue 9, item 1)."""

import os
import re
import shutil

import cv2
import pytest
import torch
import yaml

from flare_sr.data.sampling import SampleKey
from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_option_file, check_options, suggestion
from tests.helpers import (DATA_DIR, REPO, TEST_SCRIPT, experiment_dirs, flare_data, hinet_options, make_flare_pairs,
                           pix2pix_options, read_metrics, remove_experiment, run_train, unique_name, write_options)

TEMPLATES = os.path.join(DATA_DIR, 'field_options')


def _copy_renamed(src_dir, dst_dir, names, suffix='', size=None):
    """The first images of ``src_dir`` as ``<name><suffix>.png`` (resized to ``size`` = (width, height) if given)."""
    os.makedirs(dst_dir, exist_ok=True)
    for index, path in enumerate(sorted(os.listdir(src_dir))[:len(names)]):
        target = os.path.join(dst_dir, f'{names[index]}{suffix}.png')
        if size is None:
            shutil.copy(os.path.join(src_dir, path), target)
        else:  # NIQE needs two 96-pixel blocks after crop_border
            cv2.imwrite(target, cv2.resize(cv2.imread(os.path.join(src_dir, path)), size))


@pytest.fixture(scope='module')
def field_data(tmp_path_factory):
    """BasicSR-style data: identical names in gt/ and lq/ folders, a meta_info file, LMDBs made by BasicSR's own
    make_lmdb_from_imgs, Real-ESRGAN's pair list and pretrained HINet checkpoints (params / params_ema)."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    from flare_sr.archs.hinet_arch import HINet

    root = tmp_path_factory.mktemp('field_data')
    generated = tmp_path_factory.mktemp('generated')
    train_lq, train_gt = make_flare_pairs(str(generated / 'train'), 6, size=(48, 48), seed=1)
    val_lq, val_gt = make_flare_pairs(str(generated / 'val'), 2, size=(48, 48), seed=2, prefix='test')
    names = [f'{index:04d}' for index in range(1, 7)]
    for kind, lq, gt, count, size in (('train', train_lq, train_gt, 6, None), ('val', val_lq, val_gt, 2, (200, 104))):
        _copy_renamed(lq, str(root / kind / 'lq'), names[:count], size=size)
        _copy_renamed(gt, str(root / kind / 'gt'), names[:count], size=size)
    _copy_renamed(val_gt, str(root / 'val_x4' / 'gt'), ['0801'], size=(200, 104))
    _copy_renamed(val_lq, str(root / 'val_x4' / 'lq'), ['0801'], suffix='x4', size=(200, 104))
    (root / 'meta_info_train.txt').write_text(''.join(f'{name}.png (48,48,3)\n' for name in names[:4]))
    (root / 'meta_info_pairs.txt').write_text(''.join(f'train/gt/{name}.png, train/lq/{name}.png\n' for name in names))
    os.makedirs(root / 'lmdb')
    for kind, count in (('train', 6), ('val', 2)):
        for side in ('lq', 'gt'):
            folder = str(root / kind / side)
            make_lmdb_from_imgs(folder, str(root / 'lmdb' / f'{kind}_{side}.lmdb'), [f'{n}.png' for n in names[:count]],
                                names[:count], map_size=1 << 26)
    os.makedirs(root / 'pretrained')
    state = {name: tensor.clone() for name, tensor in HINet(wf=4, depth=2).state_dict().items()}
    torch.save({'params': state}, root / 'pretrained' / 'net_g.pth')
    torch.save({'params_ema': state}, root / 'pretrained' / 'net_g_ema.pth')
    return str(root)


def fill_template(name, data_root, folder):
    """The template with its paths and a unique experiment name filled in; returns (path, options)."""
    with open(os.path.join(TEMPLATES, name), encoding='utf-8') as handle:
        text = handle.read().replace('@DATA@', data_root).replace('@UID@', unique_name('x')[2:])
    path = os.path.join(folder, name)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text)
    return path, yaml.safe_load(text)


def messages(stderr, kind):
    """The ``kind:`` lines (note, warning) of a run, without the option file's name."""
    return [line.split(': ', 2)[2] for line in stderr.splitlines() if line.startswith(f'{kind}: ')]


# file -> (notes, warnings) the run must print, exactly: every other key of the file passes silently
FIELD_TRAINING = {
    'basicsr_train_MSRResNet_x4.yml': ([], ['scale: 4 is ignored: flare_sr restores images at their own size '
                                            '(lq and gt must be the same size)']),
    'basicsr_train_EDSR_Mx2.yml': ([], ['scale: 2 is ignored: flare_sr restores images at their own size '
                                        '(lq and gt must be the same size)']),
    'basicsr_train_RCAN_x2.yml': ([], ['scale: 2 is ignored: flare_sr restores images at their own size '
                                       '(lq and gt must be the same size)']),
    'hinet_train_GoPro_HINet.yml': (
        ['datasets.train.use_flip: True (HINet/NAFNet) used as use_hflip: True',
         'val.grids (HINet): mapped to val.tile: {size: 32, overlap: 8, batch: 2} (blended tiles instead of '
         'averaged grids)'], []),
    'nafnet_train_SIDD_NAFNet-width32.yml': (
        ['datasets.train.use_flip: False (HINet/NAFNet) used as use_hflip: False',
         'val.use_image: false (NAFNet: metrics on float tensors); flare_sr scores the saved 8-bit images, as '
         'use_image: true'], []),
    'realesrgan_finetune_x4plus_pairdata.yml': (
        [], ['l1_gt_usm: not read by flare_sr, ignored', 'high_order_degradation: not read by flare_sr, ignored',
             'scale: 4 is ignored: flare_sr restores images at their own size (lq and gt must be the same size)',
             'datasets.train.meta_info: not read by PairedFlareDataset, ignored']),
}


@pytest.mark.parametrize('template', sorted(FIELD_TRAINING))
@pytest.mark.slow
def test_field_training_file_trains_two_iterations(field_data, tmp_path, template):
    path, opt = fill_template(template, field_data, str(tmp_path))
    try:
        result = run_train(path, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        notes, warnings = FIELD_TRAINING[template]
        assert messages(result.stderr, 'note') == notes
        assert sorted(messages(result.stderr, 'warning')) == sorted(warnings)
        models = os.path.join(experiment_dirs(opt['name'])[0], 'models')
        assert os.path.isfile(os.path.join(models, 'net_g_2.pth'))  # save_checkpoint_freq !!float 2e0 honoured
        if 'val' in opt:  # val_freq !!float 2e0: a validation at iteration 2 (BasicSR's final one rewrites it)
            metrics = read_metrics(os.path.join(experiment_dirs(opt['name'])[0], 'metrics.json'))
            datasets = [d['name'] for phase, d in opt['datasets'].items() if phase.startswith('val')]
            assert [entry['iter'] for entry in metrics['validations']] == [2]
            assert sorted(metrics['validations'][0]['datasets']) == sorted(datasets)
            for dataset in datasets:
                record = metrics['validations'][0]['datasets'][dataset]
                assert record['mean']['psnr']['output'] > 0 and record['mean']['psnr']['scored'] == record['images']
                assert metrics['best'][dataset]['psnr'] == {'value': record['mean']['psnr']['output'], 'iter': 2}
    finally:
        remove_experiment(opt['name'])


@pytest.mark.slow
def test_field_test_file_runs_through_test_py(field_data, tmp_path):
    """test_MSRResNet_x4: three test sets, one of them paired by ``filename_tmpl: '{}x4'``, images saved."""
    path, opt = fill_template('basicsr_test_MSRResNet_x4.yml', field_data, str(tmp_path))
    try:
        result = run_train(path, tmp_path, script=TEST_SCRIPT)
        assert result.returncode == 0, result.stderr[-3000:]
        assert messages(result.stderr, 'warning') == ['scale: 4 is ignored: flare_sr restores images at their own '
                                                      'size (lq and gt must be the same size)']
        visualization = os.path.join(REPO, 'results', opt['name'], 'visualization')
        assert sorted(os.listdir(os.path.join(visualization, 'Set5'))) == ['0001.png', '0002.png']
        # named after the input, as BasicSR names them
        assert sorted(os.listdir(os.path.join(visualization, 'DIV2K100'))) == ['0801x4.png']
        metrics = read_metrics(os.path.join(REPO, 'results', opt['name'], 'metrics.json'))
        assert sorted(metrics['datasets']) == ['DIV2K100', 'Set14', 'Set5']
        assert sorted(metrics['datasets']['Set5']['per_image']) == ['0001', '0002']
    finally:
        remove_experiment(opt['name'])


@pytest.mark.parametrize('template', sorted(FIELD_TRAINING) + ['basicsr_test_MSRResNet_x4.yml'])
def test_field_files_pass_the_checker_as_they_are(field_data, tmp_path, template, capsys):
    """The check alone (no model support needed): no error, and the same notes and warnings as the runs."""
    path, _ = fill_template(template, field_data, str(tmp_path))
    check_option_file(path, is_train=template in FIELD_TRAINING)
    notes, warnings = FIELD_TRAINING.get(template, ([], ['scale: 4 is ignored: flare_sr restores images at their '
                                                         'own size (lq and gt must be the same size)']))
    err = capsys.readouterr().err
    assert messages(err, 'note') == notes and sorted(messages(err, 'warning')) == sorted(warnings)


# ---------------------------------------------------------------------------------------------------------------
# the kinds of item 1, one by one
@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('flare_pairs')
    return flare_data(root, 4, 1, seed=3)


def _check(opt, is_train=True):
    """check_options on a copy; returns (normalised options, notes, warnings) or raises FlareSRError."""
    import io

    stream = io.StringIO()
    opt = yaml.safe_load(yaml.safe_dump(opt))
    check_options(opt, 'x.yml', is_train, stream=stream)
    return opt, messages(stream.getvalue(), 'note'), messages(stream.getvalue(), 'warning')


def test_whole_number_floats_are_counts_and_become_ints(tiny_data):
    opt = hinet_options(tiny_data, 'unused', total_iter=4e2)
    opt['val']['val_freq'] = 5e3
    opt['logger'].update(print_freq=1e2, save_checkpoint_freq=5e3)
    opt['train'].update(warmup_iter=-1.0, scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [2e2, 2e2],
                                                     'restart_weights': [1, 1], 'eta_min': 1e-7})
    checked, notes, warnings = _check(opt)
    counts = [checked['train']['total_iter'], checked['val']['val_freq'], checked['logger']['print_freq'],
              checked['logger']['save_checkpoint_freq'], checked['train']['warmup_iter'],
              *checked['train']['scheduler']['periods']]
    assert counts == [400, 5000, 100, 5000, -1, 200, 200] and all(type(count) is int for count in counts)
    assert notes == warnings == []
    opt['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': [1e3, 2.5e2 + 0.5]}
    with pytest.raises(FlareSRError, match=r'train\.scheduler\.milestones\[1\]: expected an integer, got 250\.5'):
        _check(opt)


@pytest.mark.slow
def test_better_lower_keeps_the_lowest_value(tmp_path, tiny_data, experiment):
    """NIQE-like metrics: ``better: lower`` makes the best the lowest of the validations (a PSNR marked lower here,
    so the values move every iteration); BasicSR's best-metric tracking, which flare_sr's validation feeds."""
    name = experiment('test_better_lower')
    opt = hinet_options(tiny_data, name, total_iter=4, lr=5e-2)
    opt['val'].update(val_freq=1, save_img=False)
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'better': 'lower'}}
    result = run_train(write_options(tmp_path / 'lower.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # one validation per iteration (BasicSR's final one, at iteration 4 again, rewrites the last), and the best
    metrics = read_metrics(os.path.join(experiment_dirs(name)[0], 'metrics.json'))
    assert [entry['iter'] for entry in metrics['validations']] == [1, 2, 3, 4]
    values = [entry['datasets']['val']['mean']['psnr']['output'] for entry in metrics['validations']]
    assert len(set(values)) > 2
    assert metrics['best']['val']['psnr'] == {'value': min(values), 'iter': 1 + values.index(min(values))}


def test_use_flip_is_honoured_as_use_hflip(tiny_data):
    """HINet/NAFNet's ``use_flip`` reaches the dataset: with true, whole-image samples come back mirrored about half
    the time; with false, never."""
    from flare_sr.data.paired_flare_dataset import PairedFlareDataset

    def mirrored_count(use_flip):
        opt = hinet_options(tiny_data, 'unused', total_iter=2)
        train = opt['datasets']['train']
        for key in ('use_hflip', 'gt_size'):  # whole images, so a mirror is recognisable
            train.pop(key)
        train.update(use_flip=use_flip, use_rot=False)
        checked, notes, _ = _check(opt)
        assert notes == [f'datasets.train.use_flip: {use_flip} (HINet/NAFNet) used as use_hflip: {use_flip}']
        dataset_opt = dict(checked['datasets']['train'], phase='train')
        dataset = PairedFlareDataset(dataset_opt)
        plain = PairedFlareDataset(dict(dataset_opt, use_hflip=False))
        mirrored = 0
        for key in [SampleKey(number % len(dataset), number // len(dataset)) for number in range(40)]:
            sample, original = dataset[key]['gt'], plain[key]['gt']
            if not torch.equal(sample, original):
                assert torch.equal(sample, original.flip(-1))
                mirrored += 1
        return mirrored

    assert 5 < mirrored_count(True) < 35
    assert mirrored_count(False) == 0


def test_hinet_grids_map_to_val_tile(tiny_data):
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    opt['network_g'] = {'type': 'HINet', 'wf': 4, 'depth': 3}
    opt['val'].pop('tile')
    opt['val'].update(grids=True, crop_size=256, max_minibatch=8)
    checked, notes, warnings = _check(opt)
    assert checked['val']['tile'] == {'size': 256, 'overlap': 32, 'batch': 8}
    assert notes == ['val.grids (HINet): mapped to val.tile: {size: 256, overlap: 32, batch: 8} (blended tiles '
                     'instead of averaged grids)'] and warnings == []
    del opt['val']['grids']  # HINet's SIDD file: max_minibatch without grids does nothing there, nor here
    checked, notes, warnings = _check(opt)
    assert 'tile' not in checked['val'] and notes == warnings == []


@pytest.mark.parametrize('phase, message', [
    ('train_a', 'datasets.train_a: BasicSR trains on one set, named train'),
    ('test_1', 'datasets.test_1: training validates the val* sets only; rename it val_1')])
def test_a_training_file_with_sets_its_loop_does_not_know_is_refused(tiny_data, phase, message):
    """BasicSR's training loop knows train and val_*: another set passed the check, then stopped the run with a
    traceback (ValueError) after its folder was made or an earlier run archived (found by a verifying helper)."""
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    opt['datasets'][phase] = dict(opt['datasets']['val' if phase.startswith('test') else 'train'], name=phase)
    with pytest.raises(FlareSRError, match=re.escape(message)):
        _check(opt)
    del opt['datasets']['train'], opt['train']
    if phase.startswith('test'):  # test.py scores every set but train
        _check(opt, is_train=False)


def test_gt_size_null_means_unset(tiny_data):
    """``gt_size: ~`` (or ``--force_yml datasets:val:gt_size=~``, which BasicSR parses to None) unsets the crop, as
    leaving the key out does; it was refused as "expected an integer"."""
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    opt['datasets']['val']['gt_size'] = None
    checked, notes, warnings = _check(opt)
    assert checked['datasets']['val']['gt_size'] is None and notes == warnings == []


def test_a_network_the_model_does_not_build_is_ignored_unchecked(tiny_data):
    """Real-ESRGAN's network_d (``UNetDiscriminatorSN``, which BasicSR 1.4.2 registers as
    ``UNetDiscriminatorSN_basicsr``) on a model without a discriminator: said to be ignored, so its type is not
    refused either (it was: an error for a section the run never reads, with a wrong "did you mean")."""
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 64, 'skip_connection': True}
    _, notes, warnings = _check(opt)
    assert warnings == ['network_d: HINetModel builds no such network (it builds network_g); ignored'] and notes == []
    opt['model_type'] = 'Pix2PixModel'  # a model that builds it: its type is checked
    opt['network_g'] = {'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 4}
    with pytest.raises(FlareSRError, match=r"network_d\.type: unknown 'UNetDiscriminatorSN'"):
        _check(opt)


@pytest.mark.slow
def test_unknown_basicsr_keys_warn_and_the_run_goes_on(tmp_path, tiny_data, experiment):
    name = experiment('test_unknown_warns')
    opt = hinet_options(tiny_data, name, total_iter=2)
    opt['datasets']['train']['use_mixup'] = True
    opt['train']['optim_g_lr_mult'] = 2
    opt['val']['metrics']['psnr']['mode'] = 'rgb'  # no key calculate_psnr reads is near it
    opt['logger']['wandb'] = {'project': None, 'resume_id': None, 'entity': None}
    opt['network_d'] = {'type': 'PatchGANDiscriminator', 'num_in_ch': 6, 'num_feat': 4}  # Real-ESRGAN's, no GAN
    result = run_train(write_options(tmp_path / 'unknown.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(messages(result.stderr, 'warning')) == [
        'datasets.train.use_mixup: not read by PairedFlareDataset, ignored',
        'network_d: HINetModel builds no such network (it builds network_g); ignored',
        'train.optim_g_lr_mult: not read by flare_sr, ignored',
        'val.metrics.psnr.mode: not read by calculate_psnr, ignored']
    assert os.path.isfile(os.path.join(experiment_dirs(name)[0], 'models', 'net_g_latest.pth'))


@pytest.mark.parametrize('edit, message', [
    (lambda o: o['val']['tile'].update(overlapp=8), 'val.tile.overlapp: unknown key (did you mean overlap?)'),
    (lambda o: o['val']['tile'].update(tile_size=64), 'val.tile.tile_size: unknown key (known: batch, overlap, '
                                                      'self_ensemble, size)'),
    (lambda o: o['val'].update(restore_light_source={'treshold': 0.9}),
     'val.restore_light_source.treshold: unknown key (did you mean threshold?)'),
    (lambda o: o.update(model_type='CascadeModel', cascade={'use_mian': False}),
     'cascade.use_mian: unknown key (did you mean use_main?)'),
    (lambda o: o['train'].update(amp='fp32'), "train.amp: expected true or false or 'bf16' or 'fp16' or 'auto'"),
    (lambda o: o['train'].update(nonfinite='ignore'), "train.nonfinite: expected 'stop' or 'skip'"),
    (lambda o: o.update(stage3_source={'patch_sise': 64}), 'stage3_source.patch_sise: unknown key (did you mean '
                                                           'patch_size?)'),
    (lambda o: o['datasets']['train'].update(type='SyntheticFlareDataset', flare={'ghost_cuont': [1, 2]}),
     'datasets.train.flare.ghost_cuont: unknown key (did you mean ghost_count?)'),
    (lambda o: o['datasets']['train'].update(type='SyntheticFlareDataset', flare={'glow': 'no'}),
     "datasets.train.flare.glow: expected true or false, got 'no'"),
    (lambda o: o['datasets']['train'].update(type='SyntheticFlareDataset', flare={'log_ranges': ['haze_strenght']}),
     "datasets.train.flare.log_ranges: 'haze_strenght' is not a range of FlareConfig (did you mean 'haze_strength'?)"),
    (lambda o: o['datasets']['train'].update(color='y'), 'datasets.train.color: y (luminance-only images) is not '
                                                         'supported'),
    # a typo of a key that is read would run without it: Y-channel PSNR scored on RGB, no pixel loss, no seed
    (lambda o: o['val']['metrics']['psnr'].update(test_ychannel=True),
     'val.metrics.psnr.test_ychannel: unknown key (did you mean test_y_channel?); a misspelt key would be ignored'),
    (lambda o: o['train'].update(pixel_op=o['train'].pop('pixel_opt')),
     'train.pixel_op: unknown key (did you mean pixel_opt?)'),
    (lambda o: o.update(manual_sead=3), 'manual_sead: unknown key (did you mean manual_seed?)'),
    (lambda o: o['datasets']['train'].update(filename_tmp='{}'),
     'datasets.train.filename_tmp: unknown key (did you mean filename_tmpl?)'),
])
def test_typo_in_a_flare_sr_key_is_an_error_with_a_suggestion(tiny_data, edit, message):
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    edit(opt)
    with pytest.raises(FlareSRError) as error:
        _check(opt, is_train=opt['model_type'] != 'CascadeModel')
    assert message in str(error.value) and str(error.value).startswith('x.yml: ')


def test_use_shuffle_passes_and_suggestions_need_a_likely_typo(tiny_data):
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    opt['datasets']['train']['use_shuffle'] = True
    opt['val']['pbar'] = True
    opt['datasets']['train']['io_backend']['readahead'] = False
    assert _check(opt)[1:] == ([], [])
    assert suggestion('use_shuffle', ['use_hflip', 'use_rot', 'gt_size']) == ''
    assert suggestion('use_hflp', ['use_hflip', 'use_rot']) == ' (did you mean use_hflip?)'
    assert suggestion('lrr', ['lr', 'betas']) == ' (did you mean lr?)'
    opt['datasets']['train']['use_shuffle'] = False
    assert _check(opt)[2] == ['datasets.train.use_shuffle: false is ignored; training samples are always shuffled '
                              '(reproducibly, by manual_seed)']


def _refused_at_start_up(tmp_path, opt, *args):
    result = run_train(write_options(tmp_path / 'refused.yml', opt), tmp_path, *args)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'Traceback' not in result.stderr
    assert not os.path.exists(experiment_dirs(opt['name'])[0]) and not os.path.exists(experiment_dirs(opt['name'])[1])
    return errors[0]


@pytest.mark.slow
def test_perceptual_opt_without_pixel_opt_is_refused_before_any_folder(tmp_path, tiny_data):
    opt = hinet_options(tiny_data, unique_name('never_perceptual'), total_iter=2)
    opt['train']['perceptual_opt'] = opt['train'].pop('pixel_opt')
    opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1}, 'vgg_type': 'vgg19'}
    error = _refused_at_start_up(tmp_path, opt)
    assert 'train.pixel_opt: missing (HINetModel trains with pixel_opt)' in error
    assert 'train.perceptual_opt: HINetModel does not apply it (it trains with pixel_opt only); remove it' in error


@pytest.mark.slow
def test_impossible_tile_is_refused_at_start_up_naming_a_size_that_works(tmp_path, tiny_data):
    """Pix2PixUNet with num_downs 6 tiles on a 64-pixel grid: 64-pixel tiles leave no stride after an overlap of 32."""
    opt = pix2pix_options(tiny_data, unique_name('never_tile'), total_iter=2)
    opt['val']['tile'] = {'size': 64, 'overlap': 32}
    error = _refused_at_start_up(tmp_path, opt)
    assert error.endswith("val.tile: size 64 with overlap 32 cannot tile on the network's 64-pixel grid (tiles are "
                          'multiples of 64, more than twice the overlap, with a stride of at least 64 after it); use '
                          'size 128 or more, or overlap 0')
    from flare_sr.utils.tiling import TileLayout
    TileLayout(200, 200, 128, 32, 64)  # the size it names works (and the one refused would not)
    with pytest.raises(FlareSRError):
        TileLayout(200, 200, 64, 32, 64)


@pytest.mark.slow
def test_force_yml_overrides_are_checked(tmp_path, tiny_data):
    opt = hinet_options(tiny_data, unique_name('never_forced'), total_iter=2)
    assert _refused_at_start_up(tmp_path, opt, '--force_yml', 'val:tile:overlapp=8').endswith(
        'val.tile.overlapp: unknown key (did you mean overlap?)')
    assert _refused_at_start_up(tmp_path, opt, '--force_yml', 'train:total_iter=2.5').endswith(
        'train.total_iter: expected an integer, got 2.5')
    assert _refused_at_start_up(tmp_path, opt, '--force_yml', 'trian:total_iter=3').endswith(
        '--force_yml trian:total_iter=3: trian is not a section of ' + str(tmp_path / 'refused.yml'))


def test_light_source_restore_works_for_every_flare_sr_model_and_is_refused_elsewhere(tiny_data):
    """HINetModel alone now puts saturated lights back, as CascadeModel does; SRModel cannot, and is told so."""
    from flare_sr.models.hinet_model import HINetModel

    opt = {'is_train': False, 'dist': False, 'num_gpu': 0, 'path': {},
           'network_g': {'type': 'HINet', 'wf': 4, 'depth': 2}, 'val': {'restore_light_source': True}}
    model = HINetModel(opt)
    lq = torch.full((1, 3, 64, 64), 0.3)
    lq[..., 12:18, 12:18] = 1.0
    restored = model.predict(lq)
    model.opt['val'] = {}
    plain = model.predict(lq)
    assert torch.equal(restored[..., 12:18, 12:18], lq[..., 12:18, 12:18])
    assert not torch.equal(plain[..., 12:18, 12:18], lq[..., 12:18, 12:18])
    assert torch.equal(restored[..., 48:, 48:], plain[..., 48:, 48:])  # far from the light: the network's output
    bad = hinet_options(tiny_data, 'unused', total_iter=2)
    bad.update(model_type='SRModel')
    bad['val']['restore_light_source'] = True
    with pytest.raises(FlareSRError, match='val.restore_light_source: SRModel does not apply it'):
        _check(bad)


def test_what_basicsr_parser_dereferences_is_one_line(tmp_path, tiny_data):
    """BasicSR's parse_options indexes num_gpu, path and datasets before flare_sr sees the options: a KeyError
    traceback there becomes one line naming each missing section."""
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    for key in ('num_gpu', 'path'):
        opt.pop(key)
    with pytest.raises(FlareSRError) as error:
        check_option_file(write_options(tmp_path / 'bare.yml', opt))
    assert str(error.value) == (f'{tmp_path / "bare.yml"}: num_gpu: missing (0 for the CPU, auto for every visible '
                                'GPU); path: missing or not a mapping (e.g. path: {pretrain_network_g: ~, '
                                'resume_state: ~})')


# ---------------------------------------------------------------------------------------------- a newcomer's slips
@pytest.mark.slow
def test_misspelt_network_g_is_an_error_that_names_the_typo_before_any_folder(tmp_path, tiny_data):
    opt = hinet_options(tiny_data, unique_name('never_netg'), total_iter=2)
    opt['netwrok_g'] = opt.pop('network_g')
    error = _refused_at_start_up(tmp_path, opt)
    assert 'network_g: missing (HINetModel builds it) (is netwrok_g meant to be network_g?)' in error


def test_testing_a_training_set_is_refused_and_missing_weights_warn(tiny_data):
    opt = hinet_options(tiny_data, 'never_tested', total_iter=2)
    with pytest.raises(FlareSRError) as error:
        _check(opt, is_train=False)
    assert 'datasets.train: a training set cannot be tested' in str(error.value)
    opt['datasets'].pop('train')
    _, _, warnings = _check(opt, is_train=False)
    assert warnings == ['path.pretrain_network_g: not set, so network_g is tested with random weights']


@pytest.mark.slow
def test_a_training_set_smaller_than_one_batch_is_one_line(tmp_path, tiny_data, experiment):
    opt = hinet_options(tiny_data, experiment('tiny_set'), total_iter=2)
    opt['datasets']['train']['batch_size_per_gpu'] = 16  # 4 pairs: BasicSR drops the partial batch, then divides by 0
    result = run_train(write_options(tmp_path / 'big_batch.yml', opt), tmp_path)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.startswith('error:')] == [
        'error: datasets.train: 4 samples (x dataset_enlarge_ratio) make no full batch of batch_size_per_gpu 16: '
        'lower batch_size_per_gpu or add pairs']


@pytest.mark.parametrize('section, tile, expected', [
    ('val', {'size': 0}, 'val.tile.size must be > 0, got 0 (leave val.tile.size unset, ~, for the whole frame)'),
    ('val', {'size': 128, 'overlap': -5}, 'val.tile.overlap must be >= 0, got -5'),
    ('val', {'size': None, 'batch': 0}, 'val.tile.batch must be >= 1, got 0'),  # was run as 1 without a word
    ('stage3_source', {'overlap': -1, 'batch': 0},
     'stage3_source.tile.overlap must be >= 0, got -1; stage3_source.tile.batch must be >= 1, got 0')])
def test_tile_values_out_of_range_are_refused_by_the_checker(tiny_data, section, tile, expected):
    """Each value out of its range is said as itself at start-up, whatever the size (a whole-frame run included),
    never as a grid problem of the other value."""
    opt = hinet_options(tiny_data, 'tile_ranges', total_iter=2)
    if section == 'val':
        opt['val']['tile'] = tile
    else:
        opt['stage3_source'] = {'main_opt': 'x.yml', 'main_checkpoint': 'x.pth', 'tile': tile}
    with pytest.raises(FlareSRError) as error:
        _check(opt)
    assert expected in str(error.value)
