"""Put saturated light sources back after flare removal (mask-and-blend of Wu et al., ICCV 2021).

A flare-removal net is trained to erase bright glare, so it also dims the lamps and the sun that
cause it. Those pixels were clipped in the input anyway, so the input is the best estimate there:
threshold the input's luminance (0.97 as in Flare7K), grow each saturated blob by a margin
proportional to its own size (a square of 1.5x its equivalent diameter: big suns get a wide soft edge, small
lamps a narrow one), soften the edge with a box blur of the same size (so the blob itself stays 1) and blend
the input back in.
Option: ``val.restore_light_source: {threshold: 0.97, scale: 1.5}``.

``method: flare7k`` runs Flare7K's blend instead (ykdai/Flare7K ``basicsr/utils/flare_util.py``,
``blend_light_source``), the one its published scores were made with, constant for constant:

- the mask: the input's **mean channel** above ``threshold`` (0.97, Flare7K's ``test.py``; its ``test_large.py``
  uses 0.95), then a binary opening with a disk of radius ``ceil(0.005 * long side)`` (Flare7K's ``refine_mask``,
  ``morph_size`` 0.01), which removes specks narrower than about 1% of the frame;
- one kernel for the whole frame: a normalised disk of ``round(scale * D)`` pixels, ``D`` the equivalent diameter
  (``sqrt(4 * area / pi)``) of the **largest** light (8-connected), ``scale`` 1.5 (Flare7K#4: 0.5 cost 0.8 dB);
- the mask filtered by it (OpenCV ``filter2D``, reflect-101 border), times 3, clipped to [0, 1], then
  ``input * mask + output * (1 - mask)``. No light (or a kernel of 0 pixels): the output as it is.
"""
import cv2
import numpy as np
import torch

_REC709 = np.array([0.2126, 0.7152, 0.0722], np.float32)
LIGHT_SOURCE_METHODS = ('flare_sr', 'flare7k')  # val.restore_light_source.method
FLARE7K_MORPH_SIZE = 0.01  # Flare7K's refine_mask: the opening disk's diameter as a fraction of the long side
FLARE7K_MASK_GAIN = 3.0  # Flare7K's blend_light_source: the filtered mask is multiplied by 3, then clipped
_EPS = 1e-7  # Flare7K's _create_disk_kernel: every kernel entry gets it, so the disk's edge is not exactly 0


def light_source_mask(image, threshold=0.97, scale=1.5):
    """HxW float32 mask in [0, 1]: 1 on saturated blobs, fading to 0 over ~scale x each blob's diameter."""
    luminance = np.asarray(image, np.float32) @ _REC709
    binary = (luminance > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    mask = np.zeros(binary.shape, np.float32)
    height, width = binary.shape
    for blob in range(1, count):
        left, top, blob_w, blob_h, area = stats[blob]
        size = max(1, int(round(scale * np.sqrt(4 * area / np.pi)))) | 1  # odd: centred kernels
        reach = size
        y0, y1 = max(0, top - reach), min(height, top + blob_h + reach)
        x0, x1 = max(0, left - reach), min(width, left + blob_w + reach)
        region = (labels[y0:y1, x0:x1] == blob).astype(np.float32)
        grown = cv2.dilate(region, np.ones((size, size), np.uint8))  # square: the box blur keeps the blob at 1
        soft = cv2.blur(grown, (size, size), borderType=cv2.BORDER_REPLICATE)
        np.maximum(mask[y0:y1, x0:x1], soft, out=mask[y0:y1, x0:x1])
    return mask


def _disk(radius):
    """skimage.morphology.disk(radius) as uint8: the pixels within ``radius`` of the centre."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx**2 + yy**2 <= radius**2).astype(np.uint8)


def _flare7k_disk_kernel(size):
    """Flare7K's ``_create_disk_kernel``: a ``size`` x ``size`` disk (radius ``(size - 1) / 2``) plus 1e-7, summing
    to 1."""
    x = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(x, x)
    kernel = np.float32(np.sqrt(xx**2 + yy**2) <= np.max(x)) + _EPS
    return kernel / np.sum(kernel)


def flare7k_light_source_mask(image, threshold=0.97, scale=1.5):
    """HxW float32 mask in [0, 1] of Flare7K's blend (see the module docstring) for an HxWx3 float image in [0, 1]."""
    image = np.asarray(image, np.float32)
    binary = (image.mean(axis=2) > threshold).astype(np.uint8)
    radius = int(np.ceil(0.5 * FLARE7K_MORPH_SIZE * max(binary.shape)))
    # OpenCV's default borders are skimage's: erosion treats the outside as set, dilation as unset
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, _disk(radius))
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    largest = max((stats[blob, cv2.CC_STAT_AREA] for blob in range(1, count)), default=0)
    size = round(scale * np.sqrt(4 * largest / np.pi))  # Python's round, as Flare7K's
    if size <= 0:
        return np.zeros(binary.shape, np.float32)
    mask = cv2.filter2D(binary.astype(np.float32), -1, _flare7k_disk_kernel(size))
    return np.clip(mask * FLARE7K_MASK_GAIN, 0.0, 1.0)


def restore_light_source(input_image, output_image, threshold=0.97, scale=1.5, method='flare_sr'):
    """Blend ``input_image`` over ``output_image`` (both HxWx3 float in [0, 1]) where the input is saturated.

    ``method``: ``flare_sr`` (each blob grown by ``scale`` x its own diameter) or ``flare7k`` (Flare7K's blend); see
    the module docstring. Raises ValueError for another method.
    """
    if method not in LIGHT_SOURCE_METHODS:
        raise ValueError(f'val.restore_light_source.method: {method!r} is not one of {", ".join(LIGHT_SOURCE_METHODS)}')
    mask_of = flare7k_light_source_mask if method == 'flare7k' else light_source_mask
    mask = mask_of(input_image, threshold, scale)[..., None]
    return input_image * mask + output_image * (1 - mask)


def restore_light_source_tensor(lq, out, threshold=0.97, scale=1.5, method='flare_sr'):
    """Same as :func:`restore_light_source` for 1x3xHxW CPU tensors (the models' ``predict`` format)."""
    lq_np = lq[0].permute(1, 2, 0).float().numpy()
    out_np = out[0].permute(1, 2, 0).float().numpy()
    blended = restore_light_source(lq_np, out_np, threshold, scale, method)
    return torch.from_numpy(np.ascontiguousarray(blended)).permute(2, 0, 1)[None].to(out.dtype)
