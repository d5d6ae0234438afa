"""Every script's command line reports a mistake as one ``error:`` line (flare_sr.errors.ArgumentParser), the
benchmarks under scripts/bench/ included."""
import glob
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.helpers import REPO, subprocess_env

SCRIPTS = sorted(glob.glob(os.path.join(REPO, 'scripts', '*.py')) +
                 glob.glob(os.path.join(REPO, 'scripts', '*', '*.py')))


@pytest.mark.parametrize('path', SCRIPTS, ids=lambda path: os.path.relpath(path, REPO))
def test_no_script_builds_a_plain_argparse_parser(path):
    with open(path, encoding='utf-8') as handle:
        assert 'argparse.ArgumentParser(' not in handle.read()


@pytest.mark.slow
def test_a_bench_script_says_a_bad_flag_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'bench', 'tiling_memory.py'), '--bogus'],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert (result.returncode, result.stdout, result.stderr) == (2, '', 'error: unrecognized arguments: --bogus\n')


SIZE_FLAGS = (
    ('bench_inference.py', '--size'), ('bench_model_cost.py', '--size'), ('bench_tile_cost.py', '--sizes'),
    ('bench_busy_machine.py', '--size'), ('bench_data_loading.py', '--size'), ('bench_training.py', '--size'))


@pytest.mark.slow
@pytest.mark.parametrize('script, flag', SIZE_FLAGS)
@pytest.mark.parametrize('value', ['256', '0x64'])
def test_a_bench_size_that_is_not_height_x_width_is_one_line(tmp_path, script, flag, value):
    """Every bench script's frame size flag: a careless '256' was a traceback after the parse (round 21)."""
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'bench', script), flag, value],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, '', f"error: {flag}: '{value}' is not HEIGHTxWIDTH in pixels (e.g. 2448x3264)\n")


def test_a_quoted_home_in_a_path_flag_is_the_home_folder(tmp_path):
    # the shell leaves `--out=~/x` and a quoted '~/x' alone: the parser expands them, as option files' paths are
    home, work = tmp_path / 'home', tmp_path / 'work'
    for folder in ('lq', 'gt'):
        (home / folder).mkdir(parents=True)
        for index in range(4):
            cv2.imwrite(str(home / folder / f'{index}.png'), np.full((8, 8, 3), 40 * index, np.uint8))
    work.mkdir()
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'split_dataset.py'), '--lq=~/lq', '--gt',
                             '~/gt', '--out=~/split.csv'], cwd=work, env=dict(subprocess_env(), HOME=str(home)),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert len((home / 'split.csv').read_text().splitlines()) == 5  # header and the four pairs
    assert list(work.iterdir()) == []  # no folder literally named ~


def test_a_quoted_home_in_opt_is_the_home_folder(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, 'flare_sr', 'test.py'), '-opt=~/missing.yml'],
                            cwd=tmp_path, env=dict(subprocess_env(), HOME=str(tmp_path)), capture_output=True,
                            text=True, timeout=240)
    assert (result.returncode, result.stderr) == (2, f'error: {tmp_path}/missing.yml: option file not found\n')
