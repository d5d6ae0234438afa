"""Train a flare_sr model with BasicSR's training loop and flare_sr's fixes.

    python flare_sr/train.py -opt options/hinet_phase1.yml [--auto_resume]
    torchrun --nproc_per_node=2 flare_sr/train.py -opt options/pix2pix.yml --launcher pytorch

Writes experiments/<name>/ (models, training_states, log) and tb_logger/<name>/ under the repository
root, wherever it is started from. Exit status: 0 done, 2 bad input (one ``error:`` line), 3 stopped
on a non-finite loss (``train.nonfinite: stop``).
"""
import os
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Python puts this script's folder (flare_sr/) first on sys.path; modules there would then import
# under a second name. The repository root goes there instead.
if sys.path and osp.abspath(sys.path[0] or os.getcwd()) == osp.join(ROOT, 'flare_sr'):
    sys.path[0] = ROOT

import flare_sr  # noqa: E402,F401  (first: torchvision alias and registrations)
from flare_sr import basicsr_fixes  # noqa: E402
from flare_sr.errors import exit_on_user_error  # noqa: E402


def prepare_stage3_data(option_path):
    """Stage III trains on stage-I outputs: build them, or reuse the cache, before anything reads the options' LMDBs.

    Under torchrun every rank would build at once, so there the data must already exist
    (``python -m flare_sr.data.stage_outputs -opt ...`` or ``flare_sr/train_pipeline.py``).
    """
    from flare_sr.data.stage_outputs import ensure_stage3_data
    from flare_sr.utils.options_check import load_option_file

    opt = load_option_file(option_path)
    if opt.get('stage3_source') is not None and int(os.environ.get('WORLD_SIZE', '1')) == 1:
        ensure_stage3_data(opt, option_path)


def run(pipeline_name, is_train):
    """Run ``basicsr.<pipeline_name>`` with our fixes (its parser checks the options); for train.py and test.py."""
    import importlib

    import torch
    import torch.distributed as dist

    from flare_sr.utils.cpu_memory import keep_freed_cpu_memory

    basicsr_fixes.apply()
    if not torch.cuda.is_available():
        keep_freed_cpu_memory()
    option_path = basicsr_fixes.option_path_from_argv()
    if is_train:
        prepare_stage3_data(option_path)
    module = importlib.import_module(f'basicsr.{pipeline_name}')
    try:
        getattr(module, f'{pipeline_name}_pipeline')(ROOT)
    except FloatingPointError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(3)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@exit_on_user_error
def main():
    run('train', is_train=True)


if __name__ == '__main__':
    main()
