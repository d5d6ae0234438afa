"""Test a trained flare_sr model with BasicSR's test loop: PSNR/SSIM per image and the input baseline.

    python flare_sr/test.py -opt options/test_hinet.yml

Writes results/<name>/ (log, visualization/<dataset>/<image>[_<val.suffix>].png and
visualization/<dataset>_compare/ with input|output|label) under the repository root. Whole frames
go through ``val.tile`` tiling. Exit status: 0 done, 2 bad input (one ``error:`` line).
"""
import os
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT  # see train.py: never import flare_sr's modules under a second name

from flare_sr.errors import exit_on_user_error  # noqa: E402
from flare_sr.train import run  # noqa: E402


@exit_on_user_error
def main():
    run('test', is_train=False)


if __name__ == '__main__':
    main()
