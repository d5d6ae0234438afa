"""Saturation loss mask: do not train a net to reproduce clipped light sources (Wu et al., ICCV 2021).

Where the sensor clipped, the input holds no information about the scene: a saturated light source and
the flare core around it are white whatever lies beneath. Training on those pixels teaches the net to
invent them (or to copy the clipping). Wu et al. ("How to train neural networks for flare removal")
therefore take a luminance-threshold mask of the input, dilate it, and replace the prediction by the label
inside it before the loss, so the region costs nothing and sends no gradient. Flare7K++ keeps light
sources in the label, so the same holds for a label that saturates.

``saturation_keep_mask`` returns that mask's complement (1 = trained, 0 = masked); the models blend
``output * keep + label * (1 - keep)`` before every reconstruction loss (``train.saturation_mask``).
"""
import torch
from torch.nn import functional as F

from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import reads_options
from flare_sr.utils.safe_yaml import yaml_shown

# Rec. 709 / sRGB luminance weights.
LUMINANCE = (0.2126, 0.7152, 0.0722)
SOURCES = ('lq', 'gt', 'both')


def luminance(image):
    """Bx1xHxW luminance of a Bx3xHxW RGB batch (a single-channel batch is its own luminance)."""
    if image.shape[1] == 1:
        return image
    weights = image.new_tensor(LUMINANCE).view(1, 3, 1, 1)
    return (image[:, :3] * weights).sum(dim=1, keepdim=True)


@reads_options('train.saturation_mask', skip=('lq', 'gt'))  # its keywords are that section's keys
def saturation_keep_mask(lq, gt, threshold=0.97, dilation=5, source='both'):
    """Bx1xHxW float: 0 on saturated pixels (luminance >= ``threshold``) dilated by ``dilation`` pixels, else 1.

    Args:
        lq, gt: BxCxHxW batches in [0, 1] (input and label).
        threshold: luminance in [0, 1] from which a pixel counts as clipped (0.97 = 247 of 255, the
            threshold flare_sr's light-source restoration uses; Wu et al. use 0.99 on the mean of RGB).
        dilation: radius in pixels of the square dilation (covers the clipped core's soft edge and the
            bloom around it; Wu et al. dilate by about 1 % of the image size).
        source: lq | gt | both: which images' saturation is masked.
    """
    if source not in SOURCES:
        raise FlareSRError(f'train.saturation_mask.source must be one of {", ".join(SOURCES)}, '
                           f'got {yaml_shown(source)}')
    if int(dilation) < 0:
        raise FlareSRError(f'train.saturation_mask.dilation must be >= 0 pixels, got {dilation}')
    with torch.no_grad():
        images = {'lq': [lq], 'gt': [gt], 'both': [lq, gt]}[source]
        saturated = torch.zeros_like(luminance(lq), dtype=torch.bool)
        for image in images:
            saturated |= luminance(image.float()) >= threshold
        masked = saturated.float()
        if dilation:
            size = 2 * int(dilation) + 1
            masked = F.max_pool2d(masked, size, stride=1, padding=int(dilation))
        return 1.0 - masked
