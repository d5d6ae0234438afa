"""A training state holding numpy values is refused with the way to convert it (scripts/convert_training_state.py),
and the converter never runs code from a file, whatever message led there."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from flare_sr.errors import FlareSRError
from flare_sr.models.hinet_model import HINetModel
from flare_sr.utils.checkpoint import load_training_state
from tests.helpers import REPO, Payload, SystemPayload, model_options, run_script


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
    with pytest.raises(FlareSRError, match=r'refused: it holds numpy arrays or numbers \(numpy\..*; if it is a '
                                           r'training state, python scripts/convert_training_state.py '):
        load_training_state(str(path))
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'convert_training_state.py'), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f'{path}: converted; it now loads as weights only'

    model.resume_training(load_training_state(str(path)))
    assert np.array_equal(np.random.rand(4), expected)
    assert model.best_metric_results['val']['psnr']['val'] == 21.0


@pytest.mark.parametrize('payload', [Payload, SystemPayload])
def test_converter_never_runs_a_payload_behind_numpy_values(tmp_path, capsys, payload):
    """The first unsafe global is numpy's, so loading names the converter; the payload after it is refused there, by
    name, the file is left as it was and nothing runs (the converter used to unpickle it with weights_only=False)."""
    marker = tmp_path / 'payload_ran'
    path = tmp_path / '2.state'
    torch.save({'epoch': 0, 'iter': 2, 'optimizers': [], 'schedulers': [], 'numpy': np.random.get_state(),
                'x': payload(marker)}, path)
    before = path.read_bytes()
    with pytest.raises(FlareSRError, match='refused: it holds '):
        load_training_state(str(path))
    code, out, err = run_script('convert_training_state', [path], capsys)
    shown = 'exec' if payload is Payload else 'posix.system (os.system)'
    assert code == 2 and out == '' and err == (
        f'error: {path}: refused: it holds the Python object {shown}, which unpickling would call, and that can run '
        'any code; flare_sr loads checkpoints as weights only (tensors and plain data), as it writes them; nothing '
        'converted\n')
    assert not marker.exists() and path.read_bytes() == before
