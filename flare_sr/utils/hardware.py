"""Hardware settings from someone else's machine: fall back on this one, with one warning line each.

Option files of the field are written for GPU servers. BasicSR's templates carry ``num_gpu: 1|2|4|8|auto``,
``dist_params: {backend: nccl, port: 29500}`` and ``prefetch_mode`` (its docs pair ``cuda`` with
``pin_memory: true``); flare_sr adds ``train.amp``. On a machine without (enough) GPUs BasicSR crashes on each
of them (``num_gpu: 1`` moves the network to a missing CUDA device, ``nccl`` divides by
``torch.cuda.device_count()`` in ``init_dist``). Here each falls back to what this machine has:

======================================  ============================================================
setting                                 on this machine
======================================  ============================================================
``num_gpu: N`` (N > 0), no GPU          ``num_gpu: 0``, the CPU
``num_gpu: N``, fewer GPUs visible      the visible GPUs (one process; torchrun ranks use one each)
``dist_params.backend: nccl``, no GPU   ``gloo`` (``port`` is torchrun's business; slurm gets it)
``prefetch_mode: cuda``, no GPU         the CPU prefetcher
``pin_memory: true``, no GPU            off (pinned memory only speeds up copies to a GPU)
``train.amp: fp16``, no GPU             bf16 autocast (in the model, ``FlareBaseModel._setup_amp``)
======================================  ============================================================

A launcher started without its environment (``--launcher pytorch`` outside torchrun, ``--launcher
slurm`` outside srun) is an ``error:`` line instead: there is nothing to fall back to.
"""
import os
import sys

from flare_sr.errors import FlareSRError

# Variables each launcher sets; without them BasicSR fails with a KeyError.
LAUNCHER_ENV = {'pytorch': ('RANK', 'torchrun --nproc_per_node=<N> flare_sr/train.py -opt <file> --launcher pytorch'),
                'slurm': ('SLURM_PROCID', 'srun ... python flare_sr/train.py -opt <file> --launcher slurm')}


def warn(message, rank=None):
    """One ``warning: ...`` line on stderr, from rank 0 only (the logger does not exist yet at start-up)."""
    rank = int(os.environ.get('RANK', '0')) if rank is None else rank
    if rank == 0:
        print(f'warning: {message}', file=sys.stderr, flush=True)


def uses_gpus(num_gpu, cuda_count):
    """Whether a run with ``num_gpu`` (an int or ``'auto'``) trains on GPUs when ``cuda_count`` are visible."""
    return cuda_count > 0 and num_gpu != 0


def choose_backend(requested, num_gpu, cuda_count):
    """The torch.distributed backend for ``dist_params.backend`` (None: not given) on this machine.

    Returns ``(backend, warning or None)``: NCCL when the run uses GPUs, gloo otherwise; an explicit
    ``nccl`` on a run without GPUs becomes gloo with a warning (NCCL has no CPU tensors).
    """
    gpus = uses_gpus(num_gpu, cuda_count)
    if not requested:
        return ('nccl' if gpus else 'gloo'), None
    if requested == 'nccl' and not gpus:
        why = 'no GPU is visible' if cuda_count == 0 else f'num_gpu is {num_gpu}'
        return 'gloo', f'dist_params.backend: nccl needs GPUs, but {why}; using gloo'
    return requested, None


def check_launcher_env(launcher, environ=None):
    """One FlareSRError when ``--launcher pytorch|slurm`` runs without the variables its launcher sets."""
    environ = os.environ if environ is None else environ
    if launcher in LAUNCHER_ENV and LAUNCHER_ENV[launcher][0] not in environ:
        variable, example = LAUNCHER_ENV[launcher]
        raise FlareSRError(f'--launcher {launcher}: {variable} is not set, so this process was not started by its '
                           f'launcher; run {example}, or drop --launcher for one process')


def fit_to_hardware(opt, cuda_count):
    """Rewrite the GPU-only settings of parsed options that this machine cannot honour; return the warnings.

    ``opt`` is BasicSR's parsed options (``num_gpu`` already an int, ``dist`` set). Settings the models
    read themselves (``train.amp``) fall back there.
    """
    warnings = []
    num_gpu = opt.get('num_gpu', 0)
    if num_gpu and cuda_count == 0:
        warnings.append(f'num_gpu: {num_gpu}, but no GPU is visible (CUDA unavailable); training on the CPU '
                        '(num_gpu: 0)')
        opt['num_gpu'] = 0
    elif num_gpu > cuda_count and not opt.get('dist'):
        warnings.append(f'num_gpu: {num_gpu}, but {cuda_count} GPU(s) are visible; using {cuda_count}')
        opt['num_gpu'] = cuda_count
    if opt['num_gpu'] == 0:
        for phase, dataset_opt in (opt.get('datasets') or {}).items():
            if dataset_opt.get('prefetch_mode') == 'cuda':
                warnings.append(f'datasets.{phase}.prefetch_mode: cuda needs a GPU; using the CPU prefetcher instead')
                dataset_opt['prefetch_mode'] = 'cpu'
            if dataset_opt.get('pin_memory'):
                warnings.append(f'datasets.{phase}.pin_memory: true only speeds up copies to a GPU; off on the CPU')
                dataset_opt['pin_memory'] = False
    return warnings
