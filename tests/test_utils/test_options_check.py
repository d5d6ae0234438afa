"""The option checker's advice for numbers that YAML 1.1 (PyYAML, BasicSR's loader) reads as strings."""
import re

import pytest
import yaml

from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_option_file

FILE = """name: x
model_type: HINetModel
num_gpu: 0
scale: 1
network_g: {{type: HINet, wf: 4, depth: 2}}
path: {{}}
datasets: {{}}
train:
  optim_g: {{type: Adam, lr: {lr}}}
  scheduler: {{type: MultiStepLR, milestones: [5], gamma: 0.5}}
  total_iter: 10
  pixel_opt: {{type: L1Loss}}
"""


@pytest.mark.parametrize('lr, advice', [
    ('2e-4', "(YAML reads 2e-4 as text: write 2.0e-4 or !!float 2e-4)"),
    ('2e4', "(YAML reads 2e4 as text: write 2.0e+4 or !!float 2e4)"),
    ('1E-5', "(YAML reads 1E-5 as text: write 1.0e-5 or !!float 1E-5)"),
    ("'3.5e-4'", '(quoted: remove the quotes)'),
])
def test_a_number_read_as_text_gets_a_fix_that_yaml_reads_as_a_number(tmp_path, lr, advice):
    path = tmp_path / 'x.yml'
    path.write_text(FILE.format(lr=lr))
    with pytest.raises(FlareSRError) as error:
        check_option_file(str(path))
    value = yaml.safe_load(f'v: {lr}')['v']
    assert f"train.optim_g.lr: expected a number, got the string '{value}' {advice}" in str(error.value)
    suggested = re.search(r'write (\S+) or !!float (\S+)\)', advice)
    if suggested:  # both suggestions really are floats to YAML, equal to what the user meant
        for fixed in (suggested[1], f'!!float {suggested[2]}'):
            assert yaml.safe_load(f'v: {fixed}')['v'] == pytest.approx(float(value))
    path.write_text(FILE.format(lr=suggested[1] if suggested else value))
    with pytest.raises(FlareSRError) as error:  # the file lacks other sections on purpose; lr is no longer one
        check_option_file(str(path))
    assert 'train.optim_g.lr' not in str(error.value) and 'logger: missing' in str(error.value)


@pytest.mark.parametrize('line, message', [
    ('total_iter: 0', 'train.total_iter: 0 trains nothing'),
    ('total_iter: -5', 'train.total_iter: -5 trains nothing'),
    ('ema_decay: 1.5', 'train.ema_decay: 1.5 is not in [0, 1)'),
    ('ema_decay: 1', 'train.ema_decay: 1 is not in [0, 1)'),
    ('ema_decay: -0.1', 'train.ema_decay: -0.1 is not in [0, 1)'),
    ('grad_clip: -1', 'train.grad_clip: -1'),
])
def test_train_numbers_that_would_train_silently_wrong_are_refused(tmp_path, line, message):
    """BasicSR takes these unchecked: total_iter 0 saves the untrained net as the result, an EMA decay >= 1 or < 0
    makes params_ema diverge or never move, a negative max gradient norm reverses every gradient."""
    path = tmp_path / 'x.yml'
    key = line.split(':')[0]
    text = FILE.format(lr=0.001)
    text = re.sub(rf'  {key}: .*\n', '', text) + f'  {line}\n'
    path.write_text(text)
    with pytest.raises(FlareSRError) as error:
        check_option_file(str(path))
    assert message in str(error.value)
    path.write_text(FILE.format(lr=0.001) + '  ema_decay: 0.999\n  grad_clip: 0.01\n')
    with pytest.raises(FlareSRError) as error:  # in range: only the missing sections are left
        check_option_file(str(path))
    assert 'train.' not in str(error.value)


@pytest.mark.parametrize('network, key', [('{type: HINet, wf: 4, depth: 2, in_chn: 1}', 'in_chn'),
                                          ('{type: Uformer, img_size: 64, img_ch: 4}', 'img_ch')])
def test_a_tiled_network_of_other_input_channels_than_rgb_is_refused(tmp_path, network, key):
    """flare_sr's datasets and photos are RGB: HINet in_chn 1 or Uformer img_ch 4 trained into a conv traceback."""
    path = tmp_path / 'x.yml'
    path.write_text(FILE.format(lr=0.001).replace('{{type: HINet, wf: 4, depth: 2}}', network).replace(
        '{type: HINet, wf: 4, depth: 2}', network))
    with pytest.raises(FlareSRError) as error:
        check_option_file(str(path))
    assert f'network_g.{key}: ' in str(error.value) and 'RGB images (3 channels)' in str(error.value)


def test_uformer_win_size_or_embed_dim_below_one_is_one_line(tmp_path):
    path = tmp_path / 'x.yml'
    for bad in ('win_size: 0', 'embed_dim: 0'):
        path.write_text(FILE.format(lr=0.001).replace('{type: HINet, wf: 4, depth: 2}',
                                                      f'{{type: Uformer, img_size: 64, {bad}}}')
                        + 'val: {tile: {size: 128, overlap: 0}}\n')
        with pytest.raises(FlareSRError, match='Uformer cannot be built') as error:
            check_option_file(str(path))
        assert bad.split(':')[0] + ' 0' in str(error.value)


def test_dataset_folders_may_start_at_home_and_reach_the_dataset_expanded(tmp_path, monkeypatch):
    """BasicSR expands ``~`` in ``path.*`` only; a dataset folder given as ``~/...`` is the home folder too."""
    from tests.helpers import flare_data, hinet_options, write_options
    monkeypatch.setenv('HOME', str(tmp_path))
    data = flare_data(tmp_path / 'pairs', 2, 1)
    opt = hinet_options(data, 'home_paths', total_iter=2)
    given = {}
    for phase, dataset in opt['datasets'].items():
        for key in ('dataroot_lq', 'dataroot_gt'):
            given[phase, key] = dataset[key]
            dataset[key] = '~' + dataset[key].removeprefix(str(tmp_path))
    checked = check_option_file(write_options(tmp_path / 'home.yml', opt))
    assert {(phase, key): checked['datasets'][phase][key] for phase, key in given} == given


def test_parameters_of_is_the_one_list_of_a_constructors_keys():
    """The option checker's key check and the ONNX export's record of an arch's arguments read a signature through
    one function: named parameters (``skip`` and ``*args``/``**kwargs`` left out), whether ``**kwargs`` is taken, and
    (None, True) for a signature Python cannot read."""
    from flare_sr.archs.hinet_arch import HINet
    from flare_sr.models.onnx_backend import arch_arguments
    from flare_sr.utils.light_source import restore_light_source_tensor
    from flare_sr.utils.options_check import parameters_of

    named, takes_kwargs = parameters_of(HINet)
    assert (list(named), takes_kwargs) == (
        ['in_chn', 'wf', 'depth', 'relu_slope', 'hin_position_left', 'hin_position_right'], False)
    named, takes_kwargs = parameters_of(restore_light_source_tensor, skip=('lq', 'out'))
    assert ({key: parameter.default for key, parameter in named.items()}, takes_kwargs) == (
        {'threshold': 0.97, 'scale': 1.5, 'method': 'flare_sr'}, False)
    named, takes_kwargs = parameters_of(lambda a, *rest, b=2, **more: None)
    assert (list(named), takes_kwargs) == (['a', 'b'], True)
    assert parameters_of(dict) == (None, True)
    assert arch_arguments({'type': 'HINet', 'wf': 4}) == {'type': 'HINet', 'in_chn': 3, 'wf': 4, 'depth': 5,
                                                          'relu_slope': 0.2, 'hin_position_left': 0,
                                                          'hin_position_right': 4}
    assert arch_arguments({'type': 'NoSuchArch', 'wf': 4}) == {'type': 'NoSuchArch', 'wf': 4}


@pytest.mark.parametrize('key, value, least', [('batch_size_per_gpu', 0, 1), ('gt_size', -64, 1), ('gt_size', 0, 1),
                                               ('num_worker_per_gpu', -1, 0), ('dataset_enlarge_ratio', 0, 1),
                                               ('num_prefetch_queue', 0, 1)])
def test_dataset_integers_below_their_least_meaningful_value_are_one_line(tmp_path, key, value, least):
    """A batch of 0 was torch's BatchSampler traceback after the run folder was made; a negative gt_size cropped a
    few pixels and failed inside the network; each is now said before anything is made."""
    from tests.helpers import flare_data, hinet_options, write_options
    opt = hinet_options(flare_data(tmp_path / 'pairs', 2, 1), 'dataset_minimums', total_iter=2)
    opt['datasets']['train'][key] = value
    with pytest.raises(FlareSRError) as error:
        check_option_file(write_options(tmp_path / 'x.yml', opt))
    assert f'datasets.train.{key}: {value}; expected an integer >= {least}' in str(error.value)
    opt['datasets']['train'][key] = least if key != 'gt_size' else 32
    check_option_file(write_options(tmp_path / 'x.yml', opt))


@pytest.mark.parametrize('section, key, value, line', [
    (('datasets', 'train', 'io_backend'), 'gt_size', 64,
     'datasets.train.io_backend.gt_size: not read here (it belongs in datasets.train.gt_size); move it'),
    (('train',), 'gt_size', 64, 'train.gt_size: not read here (it belongs in datasets.train.gt_size); move it'),
    (('val',), 'overlap', 16, 'val.overlap: not read here (it belongs in val.tile.overlap); move it'),
    (('logger',), 'val_freq', 5, 'logger.val_freq: not read here (it belongs in val.val_freq); move it'),
    (('train',), 'manual_seed', 3, 'train.manual_seed: not read here (it belongs at the top level); move it'),
    (('val',), 'print_freq', 1, 'val.print_freq: not read here (it belongs in logger.print_freq); move it'),
])
def test_a_known_key_in_another_section_is_an_error_naming_its_home(section, key, value, line):
    """Indented one level too deep (or under the wrong heading), a key nobody reads there was only a warning, and the
    run went on without it: whole images instead of crops, no tiles, no seed."""
    from flare_sr.utils.options_check import OptionChecker

    opt = yaml.safe_load(FILE.format(lr='2.0e-4'))
    opt['datasets'] = {'train': {'type': 'PairedFlareDataset', 'name': 'pairs', 'io_backend': {'type': 'disk'}}}
    opt.update(logger={'print_freq': 1, 'save_checkpoint_freq': 5}, val={'val_freq': 5})
    place = opt
    for part in section:
        place = place[part]
    place[key] = value
    checker = OptionChecker(is_train=True)
    assert line in checker.check(opt)
    assert not any(key in warning for warning in checker.warnings)


def test_a_common_key_at_the_top_level_stays_a_warning():
    """Real-ESRGAN's models read a top-level gt_size; flare_sr's do not, but that is no misplaced key."""
    from flare_sr.utils.options_check import OptionChecker

    opt = dict(yaml.safe_load(FILE.format(lr='2.0e-4')), gt_size=256)
    checker = OptionChecker(is_train=True)
    assert not any('gt_size' in problem for problem in checker.check(opt))
    assert 'gt_size: not read by flare_sr, ignored' in checker.warnings


@pytest.mark.parametrize('scheduler, message', [
    ('{type: CosineAnnealingRestartLR, periods: [4]}',
     'train.scheduler.periods: they add up to 4 iterations, but train.total_iter is 10'),
    ('{type: CosineAnnealingRestartLR, periods: [5, 5], restart_weights: [1]}',
     'train.scheduler: CosineAnnealingRestartLR: periods and restart_weights should have the same length'),
    ('{type: MultiStepRestartLR, milestones: [3], restarts: [4], restart_weights: [1, 1]}',
     'train.scheduler: MultiStepRestartLR: restarts and their weights do not match'),
    ('{type: TrueCosineAnnealingLR, T_max: 0}', 'train.scheduler.T_max: 0: a period is at least 1 iteration'),
    ('{type: CosineAnnealingRestartLR, periods: [10, 0], restart_weights: [1, 1]}',
     'train.scheduler.periods: [10, 0]: a period is at least 1 iteration'),
    # the same kind, found by a verifying helper: runs that trained with negative rates (gradient ascent), exit 0
    ('{type: LinearLR, total_iter: 4}', 'train.scheduler.total_iter: 4 is below train.total_iter 10: the LinearLR '
                                        'rate falls below 0 after iteration 4'),
    ('{type: VibrateLR, total_iter: 8}', 'train.scheduler.total_iter: 8 is below train.total_iter 10'),
    ('{type: MultiStepLR, milestones: [5], gamma: -0.5}', 'train.scheduler.gamma: -0.5: below 0, the learning rate '
                                                          'would be negative'),
    ('{type: MultiStepLR, milestones: [-2], gamma: 0.5}', 'train.scheduler.milestones: -2 is below 1: a milestone '
                                                          'before iteration 1 is never reached'),
    ('{type: CosineAnnealingRestartLR, periods: [5, 5], restart_weights: [1, -1]}',
     'train.scheduler.restart_weights: -1 is below 0'),
    ('{type: TrueCosineAnnealingLR, T_max: 10, eta_min: -1.0e-4}', 'train.scheduler.eta_min: -0.0001: below 0'),
])
def test_a_scheduler_that_only_its_constructor_or_first_step_refuses_is_one_line(tmp_path, scheduler, message):
    """The model refused these only once BasicSR had created (or archived) the run's folder and logged its start; a
    period of 0 was a ZeroDivisionError after the first iteration."""
    path = tmp_path / 'x.yml'
    path.write_text(re.sub(r'  scheduler: .*\n', f'  scheduler: {scheduler}\n', FILE.format(lr=0.001)))
    with pytest.raises(FlareSRError) as error:
        check_option_file(str(path))
    assert message in str(error.value)
    path.write_text(FILE.format(lr=-0.001))
    with pytest.raises(FlareSRError, match='train.optim_g.lr: -0.001: a negative learning rate climbs the loss'):
        check_option_file(str(path))
    path.write_text(FILE.format(lr=0.001))
    with pytest.raises(FlareSRError) as error:  # a scheduler that fits: only the missing sections are left
        check_option_file(str(path))
    assert 'train.' not in str(error.value)
