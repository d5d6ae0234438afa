"""Rewrite a training state that holds numpy arrays or numbers so that it loads as weights only (what flare_sr
requires: it never unpickles Python objects from checkpoints).

Older training states hold numpy's RNG state as numpy arrays and their best metrics as numpy floats;
``torch.load(..., weights_only=True)`` refuses those. This script never runs code from the file, whoever wrote it:
it loads as weights only with numpy's array, number and dtype constructors allowed and nothing else
(``flare_sr.utils.checkpoint.NUMPY_GLOBALS``), so a file that holds any other Python object is refused in one line
naming it and left unchanged. What loads is rewritten with numpy values as tensors and Python numbers, atomically.

Example:
    python scripts/convert_training_state.py experiments/pix2pix/training_states/5000.state
"""
import argparse
import pickle

import torch

from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_torch_save
from flare_sr.utils.checkpoint import (NUMPY_GLOBAL_NAMES, NUMPY_GLOBALS, is_training_state, load_weights_only,
                                       refused_globals_message, to_plain, unsafe_globals)


def load_with_numpy(path):
    """The checkpoint at ``path`` with numpy arrays, numbers and dtypes rebuilt and nothing else unpickled; one
    FlareSRError naming any other Python object it holds (checked before loading, and refused again while loading)."""
    found = unsafe_globals(path)
    if not set(found) <= NUMPY_GLOBAL_NAMES:
        raise FlareSRError(refused_globals_message(path, found) + '; nothing converted')
    try:
        with torch.serialization.safe_globals(NUMPY_GLOBALS):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:  # the legacy format, which torch cannot scan: its message names one
        raise FlareSRError(refused_globals_message(path, unsafe_globals(path, error) or ['(unnamed)']) +
                           '; nothing converted') from None


@exit_on_user_error
def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('state', nargs='+', help='training state(s) to convert in place')
    for path in parser.parse_args(argv).state:
        try:
            load_weights_only(path)
            print(f'{path}: already loads as weights only; unchanged')
            continue
        except FlareSRError as error:
            if ': refused: it holds ' not in str(error):  # missing, empty, truncated, not a checkpoint
                raise
        state = load_with_numpy(path)
        if not is_training_state(state):
            raise FlareSRError(f'{path}: not a training state (no iter/optimizers); nothing converted')
        atomic_torch_save(to_plain(state), path)
        load_weights_only(path)  # proves the conversion
        print(f'{path}: converted; it now loads as weights only')


if __name__ == '__main__':
    main()
