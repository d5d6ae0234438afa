"""Optimizers and learning-rate schedulers that option files may name, by their ``type``.

BasicSR 1.4.2 builds only ``Adam`` and its own two schedulers. BasicSR's master branch adds ``AdamW``,
``Adamax``, ``SGD``, ``ASGD``, ``RMSprop`` and ``Rprop``; the HINet and NAFNet forks add ``AdamW``,
``SGD`` and the schedulers ``TrueCosineAnnealingLR`` (a plain cosine without restarts), ``LinearLR``
and ``VibrateLR`` (both sized by ``train.total_iter``). flare_sr's models build from these tables, and
the option checker validates against them.

Every scheduler here steps once per iteration (BasicSR's loop calls ``step()`` from iteration 2 on),
keeps its whole state in ``state_dict()`` as tensors and plain data, and so resumes exactly.
"""
import math

import torch
from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR
from torch.optim.lr_scheduler import LRScheduler

from flare_sr.errors import FlareSRError


class LinearLR(LRScheduler):
    """The HINet/NAFNet fork's ``LinearLR``: ``lr = initial_lr * (1 - t / total_iter)``, t = steps taken.

    Not torch's ``LinearLR`` (which takes ``start_factor``/``end_factor``): option files that name this
    type come from the forks, where the only setting is ``train.total_iter``.
    """

    def __init__(self, optimizer, total_iter, last_epoch=-1):
        self.total_iter = total_iter
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        weight = 1 - self.last_epoch / self.total_iter
        return [weight * group['initial_lr'] for group in self.optimizer.param_groups]


class VibrateLR(LRScheduler):
    """The HINet/NAFNet fork's ``VibrateLR``: a triangle wave of period ``total_iter // 80`` under an envelope.

    The envelope falls linearly from 1 to 0 over the first 3/8 of the run, then holds 0.2, and 0.1 for the
    last 3/8; the wave rises from 0 to 1 over half a period and falls back. During the first half period
    the factor is at least 0.1. The period is at least 2 iterations (the fork divides by zero below 160).
    """

    def __init__(self, optimizer, total_iter, last_epoch=-1):
        self.total_iter = total_iter
        super().__init__(optimizer, last_epoch)

    def factor(self, step):
        progress = step / self.total_iter
        envelope = 1 - progress * 8 / 3 if progress < 3 / 8 else 0.2 if progress < 5 / 8 else 0.1
        period = max(self.total_iter // 80, 2)
        half = period // 2
        phase = step % period
        wave = phase / half if phase < half else 2 - phase / half
        weight = envelope * wave
        return max(0.1, weight) if step < half else weight

    def get_lr(self):
        weight = self.factor(self.last_epoch)
        return [weight * group['initial_lr'] for group in self.optimizer.param_groups]


class Constant(LRScheduler):
    """The initial rate at every step: what a run without ``train.scheduler`` gets. Unlike no scheduler at all,
    it restores the rate after BasicSR's linear warm-up (``train.warmup_iter``), which lowers it in place."""

    def get_lr(self):
        return [group['initial_lr'] for group in self.optimizer.param_groups]


# type -> class; constructor arguments are validated by inspecting these classes.
OPTIMIZERS = {
    'Adam': torch.optim.Adam,
    'AdamW': torch.optim.AdamW,
    'Adamax': torch.optim.Adamax,
    'SGD': torch.optim.SGD,
    'ASGD': torch.optim.ASGD,
    'RMSprop': torch.optim.RMSprop,
    'Rprop': torch.optim.Rprop,
}
SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,  # BasicSR's alias
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'TrueCosineAnnealingLR': torch.optim.lr_scheduler.CosineAnnealingLR,  # HINet/NAFNet: cosine, no restarts
    'LinearLR': LinearLR,  # HINet/NAFNet
    'VibrateLR': VibrateLR,  # HINet/NAFNet
    'Constant': Constant,  # flare_sr: the default when train.scheduler is absent
}
# Schedulers the forks size with train.total_iter (their option files give only the type).
SIZED_BY_TOTAL_ITER = ('LinearLR', 'VibrateLR')
# Names users bring that cannot work in BasicSR's loop, with the reason.
REFUSED_SCHEDULERS = {
    'ReduceLROnPlateau': 'it steps on a validation metric, but BasicSR steps schedulers every iteration without '
                         'one; use MultiStepLR, CosineAnnealingRestartLR or TrueCosineAnnealingLR',
}


def _choices(table):
    return ', '.join(table)


def build_optimizer(params, options, key_path):
    """An optimizer from ``options`` (``{type, lr, ...}``, not modified) over ``params`` (an iterable of tensors).

    Raises FlareSRError naming ``key_path`` (e.g. ``train.optim_g``) for an unknown type or bad arguments.
    """
    options = dict(options)
    kind = options.pop('type', None)
    if kind not in OPTIMIZERS:
        raise FlareSRError(f'{key_path}.type: unknown optimizer {kind!r} (one of {_choices(OPTIMIZERS)})')
    try:
        return OPTIMIZERS[kind](params, **options)
    except (TypeError, ValueError) as error:
        raise FlareSRError(f'{key_path}: {kind}: {error}') from None


def build_scheduler(optimizer, options, total_iter, key_path='train.scheduler'):
    """A per-iteration scheduler from ``options`` (``{type, ...}``, not modified) for ``optimizer``.

    ``total_iter`` (iterations) sizes ``LinearLR`` and ``VibrateLR`` unless their options give it.
    Raises FlareSRError naming ``key_path`` for an unknown or refused type or bad arguments.
    """
    options = dict(options)
    kind = options.pop('type', None)
    if kind in REFUSED_SCHEDULERS:
        raise FlareSRError(f'{key_path}.type: {kind} is not supported: {REFUSED_SCHEDULERS[kind]}')
    if kind not in SCHEDULERS:
        raise FlareSRError(f'{key_path}.type: unknown scheduler {kind!r} (one of {_choices(SCHEDULERS)})')
    if kind in SIZED_BY_TOTAL_ITER:
        options.setdefault('total_iter', total_iter)
        if not (isinstance(options['total_iter'], (int, float)) and options['total_iter'] > 0
                and math.isfinite(options['total_iter'])):
            raise FlareSRError(f'{key_path}: {kind} needs train.total_iter > 0, got {options["total_iter"]!r}')
    periods = options.get('periods')
    if kind == 'CosineAnnealingRestartLR' and isinstance(periods, (list, tuple)) and total_iter \
            and sum(periods) < total_iter:
        raise FlareSRError(f'{key_path}.periods: they add up to {sum(periods)} iterations, but train.total_iter is '
                           f'{total_iter}; CosineAnnealingRestartLR fails after its last period')
    try:
        return SCHEDULERS[kind](optimizer, **options)
    except (TypeError, ValueError, AssertionError) as error:
        raise FlareSRError(f'{key_path}: {kind}: {error}') from None
