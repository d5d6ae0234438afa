"""BasicSR's metrics on images too small to score: one line naming the minimum size, not LinAlgError or a silent NaN.

NIQE (Mittal et al. 2013) cuts the image, after ``crop_border``, into 96x96 blocks (the block size its pristine
model was fitted with; BasicSR 1.4.2 fixes it) and fits a multivariate Gaussian to their features. With one block
the covariance is undefined (NaN) and ``np.linalg.pinv`` fails with ``LinAlgError: SVD did not converge``; so it
needs two blocks: at least 96x192 or 192x96 pixels after the crop. A 96x128 image holds one, 256x256 four.
The same happens when fewer than two blocks have texture (a flat image: no statistics); such an image is not scored
(NaN, left out of the mean, as ``flare_sr.models.tiled_validation`` treats a NaN score).

``calculate_ssim`` keeps the part of its 11x11 Gaussian window's output that saw no padding, so an image under 11
pixels a side (after ``crop_border``) scores NaN (a "Mean of empty slice" warning, then "ssim: nan" and "Best:
-inf @ -1 iter"); ``calculate_psnr`` scores NaN when ``crop_border`` leaves no pixel. Both are refused in one line.
"""
import functools
import os

import numpy as np

from flare_sr.errors import FlareSRError

NIQE_BLOCK = 96  # pixels, BasicSR's block_size_h and block_size_w
NIQE_MIN_BLOCKS = 2
MIN_SIDE = {'calculate_ssim': 11, 'calculate_psnr': 1}  # pixels a side after crop_border (SSIM: its window)
# flare_sr's own metrics, refusing these sizes themselves, checked before training as BasicSR's
OWN_MIN_SIDE = {'calculate_flare_psnr': 1, 'calculate_ssim_flare7k': 7}
WINDOWS = {'calculate_ssim': ' (its 11x11 window)', 'calculate_ssim_flare7k': ' (its 7x7 window)'}


def niqe_size_problem(height, width, crop_border=0):
    """None when NIQE can score a ``height`` x ``width`` image with ``crop_border``, else why not (a phrase)."""
    crop = 2 * int(crop_border or 0)
    blocks = (max(height - crop, 0) // NIQE_BLOCK) * (max(width - crop, 0) // NIQE_BLOCK)
    if blocks >= NIQE_MIN_BLOCKS:
        return None
    return (f'{width}x{height} pixels (width x height), crop_border {crop_border or 0}: {blocks} block(s) of '
            f'{NIQE_BLOCK}x{NIQE_BLOCK}; calculate_niqe fits a covariance to the blocks and needs at least '
            f'{NIQE_MIN_BLOCKS}, so at least {2 * NIQE_BLOCK + crop}x{NIQE_BLOCK + crop} or '
            f'{NIQE_BLOCK + crop}x{2 * NIQE_BLOCK + crop} pixels')


def checked_niqe(calculate_niqe):
    """``calculate_niqe`` that refuses a too-small image in one FlareSRError and scores a textureless one NaN."""

    @functools.wraps(calculate_niqe)
    def wrapper(img, crop_border, input_order='HWC', convert_to='y', **kwargs):
        height, width = img.shape[1:3] if input_order == 'CHW' else img.shape[:2]
        problem = niqe_size_problem(height, width, crop_border)
        if problem:
            raise FlareSRError(f'calculate_niqe: the image is {problem}')
        try:
            return calculate_niqe(img, crop_border, input_order, convert_to, **kwargs)
        except np.linalg.LinAlgError:  # fewer than two blocks with texture
            return float('nan')

    return wrapper


def side_size_problem(metric_type, height, width, crop_border=0):
    """None when ``metric_type`` (a key of MIN_SIDE or OWN_MIN_SIDE) can score a ``height`` x ``width`` image, else
    why not."""
    crop = 2 * int(crop_border or 0)
    side = {**MIN_SIDE, **OWN_MIN_SIDE}[metric_type]
    if min(height, width) - crop >= side:
        return None
    return (f'{width}x{height} pixels (width x height), crop_border {crop_border or 0}: {metric_type} needs at least '
            f'{side + crop}x{side + crop} pixels' + WINDOWS.get(metric_type, ''))


def size_problem(metric_type, height, width, crop_border=0):
    """None when the metric can score the image (or has no minimum size), else why not (a phrase)."""
    if metric_type == 'calculate_niqe':
        return niqe_size_problem(height, width, crop_border)
    if metric_type in MIN_SIDE or metric_type in OWN_MIN_SIDE:
        return side_size_problem(metric_type, height, width, crop_border)
    return None


def checked_size(metric_type, metric):
    """BasicSR's ``calculate_psnr`` or ``calculate_ssim`` that refuses a too-small image in one FlareSRError."""

    @functools.wraps(metric)
    def wrapper(img, img2, crop_border, input_order='HWC', *args, **kwargs):
        height, width = img.shape[1:3] if input_order == 'CHW' else img.shape[:2]
        problem = side_size_problem(metric_type, height, width, crop_border)
        if problem:
            raise FlareSRError(f'{metric_type}: the image is {problem}')
        return metric(img, img2, crop_border, input_order, *args, **kwargs)

    return wrapper


def check_metric_sizes(val_opt, dataset, read_size):
    """One FlareSRError before training when a validation image is too small for a metric of ``val_opt``
    (``calculate_niqe``, ``calculate_ssim``, ``calculate_psnr``'s and ``calculate_flare_psnr``'s crop,
    ``calculate_ssim_flare7k``; flare_sr models keep the input's size).
    ``dataset``: its ``items`` are (lq path, gt path) pairs; other datasets (LMDB keys) are checked when scored.
    ``read_size``: path -> (height, width)."""
    sized = [(name, metric) for name, metric in ((val_opt or {}).get('metrics') or {}).items()
             if isinstance(metric, dict) and (metric.get('type') == 'calculate_niqe' or metric.get('type') in MIN_SIDE
                                              or metric.get('type') in OWN_MIN_SIDE)]
    items = getattr(dataset, 'items', None)
    if not sized or not isinstance(items, (list, tuple)):
        return
    for item in items:
        path = item[0] if isinstance(item, (list, tuple)) else item
        if not isinstance(path, str) or not os.path.isfile(path):  # an LMDB key: checked when scored
            return
        height, width = read_size(path)
        for name, metric in sized:
            problem = size_problem(metric['type'], height, width, metric.get('crop_border', 0))
            if problem:
                raise FlareSRError(f'val.metrics.{name}: {path} is {problem}')
