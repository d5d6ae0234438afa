"""Train a flare_sr model with BasicSR's training loop and flare_sr's fixes (``flare-sr-train`` once installed).

    python flare_sr/train.py -opt options/hinet_phase1.yml [--auto_resume]
    torchrun --nproc_per_node=2 flare_sr/train.py -opt options/pix2pix.yml --launcher pytorch

Writes experiments/<name>/ (models, training_states, log) and tb_logger/<name>/ under the repository
root, wherever it is started from. Exit status: 0 done, 2 bad input (one ``error:`` line), 3 stopped
on a non-finite loss (``train.nonfinite: stop``). The code is flare_sr/cli.py.
"""
import os
import sys
from os import path as osp

# Run as a file, Python puts flare_sr/ first on sys.path, so its modules could import under a second name
# (or not at all without `pip install -e .`); the repository root goes there instead.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT

from flare_sr.cli import train_main  # noqa: E402

if __name__ == '__main__':
    train_main()
