"""Fast on a busy machine: every entry point starts OpenMP with passive waiting (idle threads sleep instead of
spinning on the cores other processes need), unless the user chose otherwise. libgomp prints the settings it
actually took with OMP_DISPLAY_ENV; GOMP_SPINCOUNT 0 is the passive policy (its default, 300000, spins)."""
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, subprocess_env


def openmp_settings(argv, cwd, **env):
    """The ``NAME = 'value'`` lines libgomp prints at start-up for ``python argv`` run from ``cwd`` (the policy
    variables removed from the environment first, then ``env`` added). ``cwd`` is an empty folder: one that holds
    the checkout, when the checkout is named flare_sr, would import it as a namespace package, not as flare_sr."""
    clean = {key: value for key, value in subprocess_env().items() if key not in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}
    result = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True,
                            env={**clean, 'OMP_DISPLAY_ENV': 'VERBOSE', **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.strip().split(' = ', 1) for line in result.stderr.splitlines() if ' = ' in line]
    return {name: value.strip("'") for name, value in lines}


@pytest.mark.slow
@pytest.mark.parametrize('script', ['train.py', 'infer.py'])
def test_entry_scripts_start_openmp_passive(script, tmp_path):
    settings = openmp_settings([os.path.join(REPO, 'flare_sr', script), '--help'], tmp_path)
    assert settings['GOMP_SPINCOUNT'] == '0' and settings['OMP_WAIT_POLICY'] == 'PASSIVE'


@pytest.mark.slow
def test_a_wait_policy_the_user_set_wins(tmp_path):
    """Through the console scripts' module, flare_sr.cli (flare-sr-train, -test, -infer, -pipeline)."""
    settings = openmp_settings(['-c', 'import flare_sr.cli, torch; torch.ones(2) + 1'], tmp_path,
                               OMP_WAIT_POLICY='ACTIVE')
    assert settings['OMP_WAIT_POLICY'] == 'ACTIVE' and settings['GOMP_SPINCOUNT'] != '0'
