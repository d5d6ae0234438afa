"""Rewrite a training state you trust so that it loads as weights only (what flare_sr requires since it stopped
unpickling Python objects from checkpoints).

Training states written by older flare_sr versions hold numpy's RNG state as numpy arrays and their best
metrics as numpy floats; ``torch.load(..., weights_only=True)`` refuses those. This script loads the file with
``weights_only=False`` -- which runs whatever code the file holds, so only for files you made yourself or
otherwise trust -- converts numpy values to tensors and Python numbers, and replaces the file atomically.

Example:
    python scripts/convert_training_state.py experiments/pix2pix/training_states/5000.state
"""
import argparse

import torch

from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_torch_save
from flare_sr.utils.checkpoint import is_training_state, load_weights_only, to_plain


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
            if 'refused: it holds the Python object' not in str(error):
                raise
        state = torch.load(path, map_location='cpu', weights_only=False)  # trusted by the user, see above
        if not is_training_state(state):
            raise FlareSRError(f'{path}: not a training state (no iter/optimizers); nothing converted')
        atomic_torch_save(to_plain(state), path)
        load_weights_only(path)  # proves the conversion
        print(f'{path}: converted; it now loads as weights only')


if __name__ == '__main__':
    main()
