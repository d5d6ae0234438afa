"""Test a trained flare_sr model with BasicSR's test loop: PSNR/SSIM per image and the input baseline.

    python flare_sr/test.py -opt options/test_cascade.yml [--precision fp32|bf16|fp16|auto]

``flare-sr-test`` once installed. Writes results/<name>/ (log, visualization/<dataset>/<image>[_<val.suffix>].png
and visualization/<dataset>_compare/ with input|output|label) under the repository root. Whole frames
go through ``val.tile`` tiling; ``--precision`` overrides ``val.precision`` (docs/inference.md).
Exit status: 0 done, 2 bad input (one ``error:`` line). The code is flare_sr/cli.py.
"""
import os
import sys
from os import path as osp

# Run as a file, Python puts flare_sr/ first on sys.path, so its modules could import under a second name
# (or not at all without `pip install -e .`); the repository root goes there instead.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT

from flare_sr.cli import test_main  # noqa: E402

if __name__ == '__main__':
    test_main()
