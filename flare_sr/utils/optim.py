"""Optimizers and learning-rate schedulers that option files may name, by their ``type``.

BasicSR 1.4.2 builds only ``Adam`` and its own two schedulers; the HINet and NAFNet forks add ``AdamW``
and ``TrueCosineAnnealingLR`` (a plain cosine without restarts), BasicSR's master branch adds ``SGD``.
flare_sr's models build from these tables, and the option checker validates against them.
"""
import torch
from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR

# type -> class; constructor arguments are validated by inspecting these classes.
OPTIMIZERS = {
    'Adam': torch.optim.Adam,
    'AdamW': torch.optim.AdamW,
    'SGD': torch.optim.SGD,
}
SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,  # BasicSR's alias
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'TrueCosineAnnealingLR': torch.optim.lr_scheduler.CosineAnnealingLR,  # HINet/NAFNet: cosine, no restarts
}
