"""Train the three stages in one command: I Pix2Pix -> II post net (HINet or NAFNet) -> III the post net on
stage-I outputs.

    python flare_sr/train_pipeline.py --stage1 options/pix2pix.yml --stage2 options/hinet_phase1.yml \
        --stage3 options/hinet_phase2.yml [--glow GLOW.yml] [--name NAME] [--quiet]

``--glow`` trains CascadeModel's whole-frame glow net beside the three stages (stage G).

``flare-sr-pipeline`` once installed. Rerun the same command to resume: finished stages are skipped, an
interrupted one resumes. Exit status: 0 done, 2 bad input or a failed stage. The code is flare_sr/cli.py
and flare_sr/pipeline/stages.py.
"""
import os
import sys
from os import path as osp

# Run as a file, Python puts flare_sr/ first on sys.path, so its modules could import under a second name
# (or not at all without `pip install -e .`); the repository root goes there instead.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT

from flare_sr.cli import pipeline_main  # noqa: E402

if __name__ == '__main__':
    pipeline_main()
