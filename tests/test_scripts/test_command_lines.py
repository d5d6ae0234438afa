"""Every script's command line reports a mistake as one ``error:`` line (flare_sr.errors.ArgumentParser), the
benchmarks under scripts/bench/ included."""
import glob
import os
import subprocess
import sys

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
