"""Remove flare from an image or a folder of images at full resolution, and pack the challenge submission.

    python flare_sr/infer.py -opt options/test_cascade.yml --input datasets/dacon/test_input_img \
        --output results/submission --zip results/submission.zip [--tile 512] [--self-ensemble]

``flare-sr-infer`` once installed; ``--help`` lists every flag, docs/inference.md explains them. Exit
status: 0 done, 2 bad input (one ``error:`` line naming each file at fault). The code is flare_sr/cli.py and
flare_sr/pipeline/inference.py.
"""
import os
import sys
from os import path as osp

# Run as a file, Python puts flare_sr/ first on sys.path, so its modules could import under a second name
# (or not at all without `pip install -e .`); the repository root goes there instead.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT

from flare_sr.cli import infer_main  # noqa: E402

if __name__ == '__main__':
    infer_main()
