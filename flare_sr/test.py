"""Test a trained flare_sr model with BasicSR's test loop: PSNR/SSIM per image and the input baseline.

    python flare_sr/test.py -opt options/test_hinet.yml

Writes results/<name>/ (log, visualization/<dataset>/<image>[_<val.suffix>].png and
visualization/<dataset>_compare/ with input|output|label) under the repository root. Whole frames
go through ``val.tile`` tiling. ``--precision fp32|bf16|fp16|auto`` overrides ``val.precision``
(docs/inference.md). Exit status: 0 done, 2 bad input (one ``error:`` line).
"""
import os
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT  # see train.py: never import flare_sr's modules under a second name

from flare_sr.errors import FlareSRError, exit_on_user_error  # noqa: E402
from flare_sr.train import run  # noqa: E402
from flare_sr.utils.precision import PRECISIONS  # noqa: E402


def precision_to_force_yml(argv):
    """``--precision X`` -> BasicSR's ``--force_yml val:precision=X`` (merged into a ``--force_yml`` already given)."""
    argv = list(argv)
    if '--precision' not in argv and not any(arg.startswith('--precision=') for arg in argv):
        return argv
    for index, arg in enumerate(argv):
        if arg.startswith('--precision'):
            value = arg.split('=', 1)[1] if '=' in arg else (argv[index + 1] if index + 1 < len(argv) else None)
            del argv[index:index + (1 if '=' in arg else 2)]
            break
    if value not in PRECISIONS:
        raise FlareSRError(f'--precision: {value!r} is not one of {", ".join(PRECISIONS)}')
    entry = f'val:precision={value}'
    if '--force_yml' in argv:
        argv.insert(argv.index('--force_yml') + 1, entry)
    else:
        argv += ['--force_yml', entry]
    return argv


@exit_on_user_error
def main():
    sys.argv = [sys.argv[0], *precision_to_force_yml(sys.argv[1:])]
    run('test', is_train=False)


if __name__ == '__main__':
    main()
