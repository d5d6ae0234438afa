"""PSNRLoss as in HINet: minimising it maximises the batch's mean PSNR.

``loss_weight * 10/ln(10) * mean_b log(mse_b + 1e-8)`` (= -mean PSNR for images in [0,1], up to the
epsilon). Unlike L1/MSE it weighs every image by its own error scale, so nearly-clean images still
pull; HINet trained GoPro with ``loss_weight: 0.5``.
"""
import math

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):

    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        if reduction != 'mean':
            raise ValueError(f'PSNRLoss: reduction must be mean, got {reduction}')
        self.loss_weight = loss_weight
        self.scale = 10 / math.log(10)

    def forward(self, pred, target, **kwargs):
        mse = ((pred - target)**2).mean(dim=(1, 2, 3))
        return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()
