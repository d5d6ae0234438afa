"""A training state of an older flare_sr is refused with the way to convert it (scripts/convert_training_state.py)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from flare_sr.errors import FlareSRError
from flare_sr.models.hinet_model import HINetModel
from flare_sr.utils.checkpoint import load_training_state
from tests.helpers import REPO, model_options


@pytest.mark.slow
def test_state_of_an_older_flare_sr_is_refused_with_the_way_to_convert_it(tmp_path):
    """Older states held numpy's RNG state as arrays and metrics as numpy floats; converted (the user trusts the
    file), they load as weights only and restore numpy's RNG exactly."""
    model = HINetModel(model_options(tmp_path))
    model.save_training_state(epoch=0, current_iter=2)
    path = tmp_path / 'training_states' / '2.state'
    state = torch.load(path, weights_only=True)
    np.random.seed(5)
    state['rng_per_rank'][0]['numpy'] = np.random.get_state()  # the legacy tuple with a uint32 array
    expected = np.random.rand(4)
    state['best_metric_results'] = {'val': {'psnr': {'better': 'higher', 'val': np.float64(21.0), 'iter': 2}}}
    torch.save(state, path)
    with pytest.raises(FlareSRError, match=r'refused: it holds the Python object numpy\..*; a training state from an '
                                           r'older flare_sr holds numpy RNG states: if you trust it, python '
                                           r'scripts/convert_training_state.py '):
        load_training_state(str(path))
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'convert_training_state.py'), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f'{path}: converted; it now loads as weights only'

    model.resume_training(load_training_state(str(path)))
    assert np.array_equal(np.random.rand(4), expected)
    assert model.best_metric_results['val']['psnr']['val'] == 21.0
