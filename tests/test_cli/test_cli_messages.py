"""What a user sees on a mistake: one ``error:`` line (exit status 2) per bad command line in every entry point,
and each problem or warning about an option file exactly once, from real train.py / test.py processes."""
import copy
import sys

import pytest

from flare_sr import cli
from tests.helpers import flare_data, hinet_options, run_main_in_process, run_train, write_options


@pytest.fixture(scope='module')
def option_file(tmp_path_factory):
    """A valid HINet option file (and its options) that no test here gets far enough to train with."""
    root = tmp_path_factory.mktemp('cli_messages')
    data = flare_data(root, 2, 1)
    opt = hinet_options(data, 'never_trained', total_iter=1)
    return write_options(root / 'good.yml', opt), opt


def _lines(result):
    return (result.stdout + result.stderr).splitlines()


@pytest.mark.slow
def test_every_problem_and_warning_of_an_option_file_is_said_once(tmp_path, option_file):
    opt = copy.deepcopy(option_file[1])
    opt['train'].update(total_iter=10.5, bogus_key=1)
    opt['val']['tile'] = {'size': 10.5}
    del opt['datasets']['val']['dataroot_lq']
    write_options(tmp_path / 'bad.yml', opt)
    result = run_train('bad.yml', tmp_path)
    assert result.returncode == 2
    log = result.stdout + result.stderr
    assert 'Traceback' not in log
    for part in ('train.total_iter: expected an integer, got 10.5', 'val.tile.size: expected an integer or null',
                 'datasets.val.dataroot_lq: missing'):
        assert log.count(part) == 1, (part, log)
    # a refused run says its error line alone: the warning about train.bogus_key would be noise
    assert _lines(result) == [
        'error: bad.yml: datasets.val.dataroot_lq: missing (the folder or LMDB of flared inputs); train.total_iter: '
        'expected an integer, got 10.5; val.tile.size: expected an integer or null (~), got 10.5']


@pytest.mark.slow
def test_a_bad_flare_setting_is_one_line_before_any_sample_is_drawn(tmp_path, option_file):
    """A string where a number belongs used to pass the checker and raise a TypeError in the data loader."""
    opt = copy.deepcopy(option_file[1])
    train = opt['datasets']['train']
    train.update(type='SyntheticFlareDataset', flare={'glow_prob': 'high', 'frame_scale': [1, 3]})
    del train['dataroot_lq']
    write_options(tmp_path / 'bad_flare.yml', opt)
    result = run_train('bad_flare.yml', tmp_path)
    assert result.returncode == 2
    assert _lines(result) == ["error: bad_flare.yml: datasets.train.flare.glow_prob: expected a number, got 'high'"]


@pytest.mark.slow
@pytest.mark.parametrize('entry, expected', [
    ('train:total_iter=abc', "error: {0}: train.total_iter: expected an integer, got the string 'abc'"),
    ('nosuch:x=1', 'error: {0}: --force_yml nosuch:x=1: nosuch is not a section of {0}'),
])
def test_a_bad_force_yml_is_said_once(option_file, tmp_path, entry, expected):
    result = run_train(option_file[0], tmp_path, '--force_yml', entry)
    assert result.returncode == 2
    assert [line for line in _lines(result) if 'error' in line] == [expected.format(option_file[0])]


@pytest.mark.parametrize('main, args, expected', [
    (cli.train_main, ['--launcher', 'mpi'], 'error: --launcher mpi: not one of none, pytorch, slurm\n'),
    (cli.test_main, ['--bogus'], 'error: unrecognized arguments: --bogus\n'),
    (cli.test_main, ['--precision', 'fp8'], 'error: --precision fp8: not one of fp32, bf16, fp16, auto\n'),
])
def test_train_and_test_say_a_bad_flag_in_one_line(option_file, monkeypatch, capsys, main, args, expected):
    """BasicSR's own parser (train.py, test.py) answers in the project's format too."""
    monkeypatch.setattr(cli, 'keep_freed_cpu_memory', lambda: None)  # a setting of the whole (test) process
    monkeypatch.setattr(sys, 'argv', ['flare_sr/x.py', '-opt', option_file[0], *args])
    code, _, err = run_main_in_process(lambda argv: main(), [], capsys)
    assert (code, err) == (2, expected)


def test_train_py_help_is_argparse_help(option_file, monkeypatch, capsys):
    monkeypatch.setattr(cli, 'keep_freed_cpu_memory', lambda: None)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', option_file[0], '--help'])
    code, out, _ = run_main_in_process(lambda argv: cli.train_main(), [], capsys)
    assert code == 0 and out.startswith('usage: train.py [-h] -opt OPT') and '--force_yml' in out


@pytest.mark.parametrize('main, argv, expected', [
    (cli.infer_main, ['-opt', 'x.yml', '--input', 'in', '--output', 'out', '--precision', 'fp8'],
     'error: --precision fp8: not one of fp32, bf16, fp16, auto\n'),
    (cli.infer_main, ['-opt', 'x.yml', '--input', 'in', '--output', 'out', '--tile', 'big'],
     "error: --tile: invalid int value: 'big'\n"),
    (cli.pipeline_main, ['--stage1', 'a.yml'], 'error: the following arguments are required: --stage2, --stage3\n'),
])
def test_infer_and_pipeline_say_a_bad_flag_in_one_line(capsys, main, argv, expected):
    assert run_main_in_process(main, argv, capsys) == (2, '', expected)


def test_infer_help_is_intact(capsys):
    code, out, err = run_main_in_process(cli.infer_main, ['--help'], capsys)
    assert code == 0 and out.startswith('usage: ') and 'Remove flare from an image' in out and '--precision' in out
