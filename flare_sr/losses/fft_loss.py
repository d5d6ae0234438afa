"""FFTLoss: L1 distance between the 2-D spectra of the output and the label (frequency-domain loss).

Flare is mostly low-frequency (glare, veiling) plus thin high-frequency structure (streaks, starbursts);
a spatial L1 weighs both by their pixel error alone. Comparing spectra makes a broad glow left behind (a
few large low-frequency coefficients) and lost texture (many small high ones) cost directly. WGSF-Net
(Flare7K++) reports L1 + FFT loss beating L1 alone; the form here is the common one (MIMO-UNet, Cho et al.
2021): L1 on the real and imaginary parts of ``rfft2``, per channel.

The transform is orthonormal (``norm='ortho'``), so the loss does not grow with the image size and, by
Parseval, a difference of ``d`` spread over the image costs about what it costs spatially.
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

REDUCTIONS = ('mean', 'sum')


@LOSS_REGISTRY.register()
class FFTLoss(nn.Module):
    """``loss_weight * reduce(|Re F(w (pred - target))| + |Im F(w (pred - target))|)``, F = orthonormal rfft2.

    Args:
        loss_weight: multiplier (MIMO-UNet uses 0.1 beside an L1 of weight 1).
        reduction: mean (over batch, channels and frequencies, real and imaginary parts) or sum.

    ``forward(pred, target, weight=None)``: BxCxHxW tensors; ``weight`` (Bx1xHxW or BxCxHxW, e.g. a loss
    mask) multiplies the difference before the transform, so weight-0 pixels get no gradient.
    Zero exactly when ``pred == target`` (where weighted), positive otherwise.
    """

    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'FFTLoss: reduction must be one of {", ".join(REDUCTIONS)}, got {reduction}')
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, pred, target, weight=None, **kwargs):
        difference = (pred - target).float()  # the FFT needs fp32 (no bf16/fp16 kernels on every device)
        if weight is not None:
            difference = difference * weight
        spectrum = torch.view_as_real(torch.fft.rfft2(difference, norm='ortho')).abs()
        loss = spectrum.mean() if self.reduction == 'mean' else spectrum.sum()
        return self.loss_weight * loss
