"""Put saturated light sources back after flare removal (mask-and-blend of Wu et al., ICCV 2021).

A flare-removal net is trained to erase bright glare, so it also dims the lamps and the sun that
cause it. Those pixels were clipped in the input anyway, so the input is the best estimate there:
threshold the input's luminance (0.97 as in Flare7K), grow each saturated blob by a margin
proportional to its own size (a square of 1.5x its equivalent diameter: big suns get a wide soft edge, small
lamps a narrow one), soften the edge with a box blur of the same size (so the blob itself stays 1) and blend
the input back in.
Option: ``val.restore_light_source: {threshold: 0.97, scale: 1.5}``.
"""
import cv2
import numpy as np
import torch

_REC709 = np.array([0.2126, 0.7152, 0.0722], np.float32)


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


def restore_light_source(input_image, output_image, threshold=0.97, scale=1.5):
    """Blend ``input_image`` over ``output_image`` (both HxWx3 float in [0, 1]) where the input is saturated."""
    mask = light_source_mask(input_image, threshold, scale)[..., None]
    return input_image * mask + output_image * (1 - mask)


def restore_light_source_tensor(lq, out, threshold=0.97, scale=1.5):
    """Same as :func:`restore_light_source` for 1x3xHxW CPU tensors (the models' ``predict`` format)."""
    lq_np = lq[0].permute(1, 2, 0).float().numpy()
    out_np = out[0].permute(1, 2, 0).float().numpy()
    blended = restore_light_source(lq_np, out_np, threshold, scale)
    return torch.from_numpy(np.ascontiguousarray(blended)).permute(2, 0, 1)[None].to(out.dtype)
