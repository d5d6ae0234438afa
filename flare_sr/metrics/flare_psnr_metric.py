"""Flare-region PSNR: PSNR inside the part of the image the flare covers (Flare7K's G-PSNR / S-PSNR idea).

Whole-image PSNR dilutes a flare over the clean rest of the frame: removing a glow that covers a tenth of
the image moves it little. ``calculate_flare_psnr`` scores only the flare region, found in one of two ways:

- **derived from the pair** (default): the pixels where the input differs from the label by more than
  ``threshold`` (a fraction of full scale, 0.03 = 7.65 of 255 levels) in any channel. Paired flare data
  adds flare to a clean label, so this is where the flare is; 0.03 sits above 8-bit rounding and mild
  compression noise and below the glare the literature's synthesis adds around a source.
- **from annotated masks** (``mask_folder``): Flare7K/Flare7K++ ``mask/`` images, coloured [255,255,0]
  glare, [255,0,0] streak, [0,0,255] light source, read as soft weights: glare = G/255, streak =
  max(R-G, 0)/255, light source = B/255; ``mask_type`` picks ``glare``, ``streak``, ``flare`` (glare or
  streak, R/255, the default) or ``global`` (everything but the light source, 1 - B/255).

This is flare_sr's own protocol, "flare-region PSNR". Flare7K's G-PSNR and S-PSNR, exactly as its
``evaluate.py`` computes them (a fixed 512^2 area, squared weights, wrapped streak colours), are
flare7k_metric.py's ``calculate_*_flare7k``.

PSNR is then ``10 log10(255^2 / mse)`` with ``mse = sum(w d^2) / (C sum(w))`` over the region's weights
``w`` (0/1 when derived): the mean squared error of the region's pixels only. Images whose region is
empty (a flare-free pair, an empty mask) return NaN, "not scored": flare_sr's validation averages each
metric over the images that have a score, as Flare7K's evaluation drops them.
"""
import math
import os
import re
from os import path as osp

import numpy as np
from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.utils.registry import METRIC_REGISTRY
from PIL import Image

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import IMAGE_EXTENSIONS, read_image_uint8

MASK_TYPES = ('flare', 'glare', 'streak', 'global')
GRAY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'F')  # PIL modes of one-channel (binary) masks
# "input_000000" / "train_input_10000" / "gt_000000" -> "mask_000000" / "train_mask_10000" (Flare7K naming).
_ROLE_WORD = re.compile(r'(^|_)(input|lq|gt|label)(?=_|\d|$)')


def derived_flare_region(img_lq, img2, threshold):
    """HxW bool: where the input and the label differ by more than ``threshold * 255`` in any channel.

    ``img_lq``, ``img2``: HxWxC (or HxW) arrays in [0, 255]; ``threshold`` a fraction of full scale.
    """
    difference = np.abs(img_lq.astype(np.float64) - img2.astype(np.float64))
    if difference.ndim == 3:
        difference = difference.max(axis=2)
    return difference > threshold * 255.0


def mask_weights(mask_rgb, mask_type):
    """HxW float weights in [0, 1] from a Flare7K mask (HxWx3 uint8 RGB); see the module docstring."""
    red, green, blue = (mask_rgb[..., index].astype(np.float64) / 255.0 for index in range(3))
    if mask_type == 'glare':
        return green
    if mask_type == 'streak':
        return np.clip(red - green, 0.0, 1.0)
    if mask_type == 'global':
        return 1.0 - blue
    return red  # flare: glare [255,255,0] or streak [255,0,0]


def option_problem(threshold=0.03, mask_folder=None, mask_type=None):
    """None when ``calculate_flare_psnr``'s options can give a score, else why not (a phrase naming the key).

    ``threshold`` outside [0, 1) makes every derived region empty (every image NaN, not scored) or the whole image
    (the plain PSNR); ``mask_type`` without ``mask_folder`` would be ignored (the derived region scored instead).
    """
    if mask_type is not None and mask_type not in MASK_TYPES:
        return f'mask_type must be one of {", ".join(MASK_TYPES)}, got {mask_type!r}'
    if mask_type is not None and mask_folder is None:
        return (f'mask_type {mask_type} reads annotated masks, but no mask_folder is set (the region would be the '
                'derived one): set mask_folder, or drop mask_type')
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        return (f'threshold must be a fraction of full scale in [0, 1) (0.03 = 3 %), got {threshold!r}: above it no '
                'pixel is flare (every image unscored), below 0 every pixel is')
    return None


def mask_type_problem(mask_path, mask_type):
    """None, or why the mask file ``mask_path`` cannot give ``mask_type``'s region: a grayscale mask has no classes
    (white is glare, streak and light source at once: as streak, R - G = 0, every image would be unscored)."""
    if mask_type in (None, 'flare'):
        return None
    with Image.open(mask_path) as handle:
        if handle.mode in GRAY_MODES:
            return (f'{mask_path}: a grayscale mask has no classes, so mask_type {mask_type} cannot be read from it; '
                    'use mask_type: flare (white = flare)')
    return None


def check_options(opt, key_path):
    """Option-checker lines for ``calculate_flare_psnr``'s options (``option_problem``), said before any run folder
    exists; [] when they can give a score."""
    problem = option_problem(**{key: opt[key] for key in ('threshold', 'mask_folder', 'mask_type') if key in opt})
    return [f'{key_path}.{problem}'] if problem else []


def find_mask(mask_folder, *image_paths, metric='calculate_flare_psnr'):
    """The mask file in ``mask_folder`` for an image: same stem, or the stem with input/lq/gt/label -> mask.

    ``metric`` names the caller in errors.
    """
    stems = []
    for image_path in image_paths:
        if image_path:
            stem = osp.splitext(osp.basename(image_path))[0]
            stems += [stem, _ROLE_WORD.sub(lambda match: f'{match.group(1)}mask', stem, count=1)]
    stems = list(dict.fromkeys(stems))
    mask_folder = os.path.expanduser(mask_folder)
    if not osp.isdir(mask_folder):
        raise FlareSRError(f'{metric}: mask_folder {mask_folder} is not a folder')
    for stem in stems:
        for extension in IMAGE_EXTENSIONS:
            candidate = osp.join(mask_folder, stem + extension)
            if osp.isfile(candidate):
                return candidate
    raise FlareSRError(f'{metric}: no mask for {image_paths[0]} in {mask_folder} '
                       f'(looked for {", ".join(stems)} with an image extension)')


def region_psnr(img, img2, weights):
    """PSNR (dB, images in [0, 255]) over the pixels weighted by ``weights`` (HxW); NaN when they sum to 0."""
    total = float(weights.sum())
    if total <= 0:
        return float('nan')
    squared = (img.astype(np.float64) - img2.astype(np.float64))**2
    channels = 1
    if squared.ndim == 3:
        channels = squared.shape[2]
        squared = squared.sum(axis=2)
    mse = float((squared * weights).sum()) / (channels * total)
    if mse == 0:
        return float('inf')
    return 10.0 * math.log10(255.0**2 / mse)


@METRIC_REGISTRY.register()
def calculate_flare_psnr(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, threshold=0.03,
                         mask_folder=None, mask_type=None, img_lq=None, lq_path=None, gt_path=None, **kwargs):
    """PSNR inside the flare region (dB); see the module docstring for the region and the formula.

    Args:
        img, img2: the image to score and the label, HxWxC (or CxHxW with ``input_order='CHW'``), [0, 255].
        crop_border, input_order, test_y_channel: as BasicSR's ``calculate_psnr`` (the region is found on
            the cropped colour images, the PSNR then taken on Y when ``test_y_channel``).
        threshold: derived region: input-label difference above this fraction of full scale (default 0.03).
        mask_folder: folder of Flare7K-style colour masks, one per image; the region then comes from them.
        mask_type: flare (the default) | glare | streak | global; masks only.
        img_lq, lq_path, gt_path: passed by flare_sr's validation, not by option files: the input image
            (needed for the derived region) and the file paths (to find an image's mask).

    Returns:
        float: the region's PSNR; inf for a perfect match there; NaN when the region is empty.

    Raises:
        FlareSRError: what ``option_problem`` names, no ``img_lq`` without a mask folder, a missing mask, a mask
            whose size differs from the image, a grayscale mask with a ``mask_type`` other than flare, a
            ``crop_border`` that leaves no pixel.
    """
    problem = option_problem(threshold, mask_folder, mask_type)
    if problem:
        raise FlareSRError(f'calculate_flare_psnr: {problem}')
    if img.shape != img2.shape:
        raise FlareSRError(f'calculate_flare_psnr: image shapes differ: {img.shape} vs {img2.shape}')
    img, img2 = reorder_image(img, input_order=input_order), reorder_image(img2, input_order=input_order)
    height, width = img.shape[:2]
    if mask_folder is not None:
        mask_path = find_mask(os.path.expanduser(mask_folder), lq_path, gt_path)
        mask = read_image_uint8(mask_path)
        if mask.shape[:2] != (height, width):
            raise FlareSRError(f'{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, '
                               f'the image {width}x{height}')
        problem = mask_type_problem(mask_path, mask_type)
        if problem:
            raise FlareSRError(problem)
        weights = mask_weights(mask, mask_type or 'flare')
    else:
        if img_lq is None:
            raise FlareSRError('calculate_flare_psnr needs the input image (img_lq, passed by flare_sr models) '
                               'or a mask_folder')
        weights = derived_flare_region(reorder_image(img_lq, input_order=input_order), img2,
                                       threshold).astype(np.float64)
    if crop_border:
        if 2 * crop_border >= min(height, width):  # else an empty region: NaN, every image silently unscored
            raise FlareSRError(f'calculate_flare_psnr: crop_border {crop_border} leaves no pixel of the '
                               f'{width}x{height} image')
        crop = (slice(crop_border, -crop_border), slice(crop_border, -crop_border))
        img, img2, weights = img[crop], img2[crop], weights[crop]
    if test_y_channel:
        img, img2 = to_y_channel(img), to_y_channel(img2)
    return region_psnr(img, img2, weights)


calculate_flare_psnr.check_options = check_options  # the option checker's hook on registered metrics and losses
