"""Every global RNG a training step draws from (torch, CUDA, numpy, python), captured and restored.

Training states carry each rank's RNG states so a resumed run continues exactly where the killed one stopped;
validation runs inside ``preserved_rng_states`` so it does not change how training continues. The captured
states hold only tensors and plain data, so they save and load with ``torch.load(..., weights_only=True)``.
"""
import contextlib
import random

import numpy as np
import torch


def capture_rng_states():
    """Every global RNG a training step may draw from, as tensors and plain data (``weights_only`` loadable).

    numpy's MT19937 key (624 uint32) is kept as an int64 tensor; python's state is a tuple of ints.
    """
    numpy_state = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state['state']['key'].astype(np.int64))
    numpy_state['state'] = dict(numpy_state['state'], key=key)
    states = {'torch': torch.get_rng_state(), 'numpy': numpy_state, 'python': random.getstate()}
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def _numpy_state(saved):
    """``np.random.set_state``'s argument from a saved numpy state: the dict form, or the legacy tuple of states
    converted by ``scripts/convert_training_state.py``; the key as a tensor (on any device) or an array."""
    def as_key(key):
        return torch.as_tensor(key).cpu().numpy().astype(np.uint32)

    if isinstance(saved, dict):
        return dict(saved, state=dict(saved['state'], key=as_key(saved['state']['key'])))
    name, key, *rest = saved
    return (name, as_key(key), *rest)


def restore_rng_states(states):
    """Set every global RNG from ``capture_rng_states``' result (also after a save and load)."""
    torch.set_rng_state(states['torch'].cpu())
    np.random.set_state(_numpy_state(states['numpy']))
    random.setstate(states['python'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states['cuda']])


@contextlib.contextmanager
def preserved_rng_states():
    """Run a block without moving any global RNG, so validating does not change how training continues."""
    states = capture_rng_states()
    try:
        yield
    finally:
        restore_rng_states(states)
