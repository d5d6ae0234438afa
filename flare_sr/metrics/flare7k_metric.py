"""Flare7K's benchmark, exactly as ykdai/Flare7K's ``evaluate.py`` computes it (the "Flare7K protocol").

Per image, on 8-bit RGB label (``gt``), result and mask:

- **PSNR**: scikit-image ``peak_signal_noise_ratio(gt, result, data_range=255)`` on the uint8 arrays (float64
  MSE over all pixels and channels; identical images give ``inf``).
- **SSIM**: scikit-image ``structural_similarity(gt, result, channel_axis=-1, data_range=255)``: a 7x7 uniform
  window, sample covariance, K1 0.01, K2 0.03, the mean of the per-channel SSIMs over the valid interior.
  evaluate.py writes ``multichannel=True`` and no data_range; scikit-image <= 0.19 read that as
  ``channel_axis=-1`` and inferred 255 for uint8. (0.20 removed ``multichannel``; later versions ignore it and
  the official call then fails with "win_size exceeds image extent".)
- **G-PSNR, S-PSNR, Global-PSNR**: PSNR inside a region whose weights come from the mask's colours, glare
  [255,255,0], streak [255,0,0], light source [0,0,255], read as evaluate.py's ``extract_mask`` does -- soft
  weights, no threshold: glare ``w = G/255``; streak ``w = (R - G mod 256)/255`` (uint8 arithmetic: where G > R
  it wraps, so [90,140,0] weighs 206/255 and [100,101,0] a full 1); global ``w = (255 - B)/255`` (all but
  the light source). Then, with ``d = gt - result`` over the H x W x 3 values::

      mse = mean((w*gt - w*result)^2) / (255^2 * sum(w) / 512^2),     PSNR = 10 log10(1 / mse)

  i.e. ``sum(w^2 d^2) / (3 H W) * 512^2 / (255^2 sum(w))``. The area is divided by a fixed 512^2, the size of
  Flare7K's test images: at 512x512 this is the mean over the region (binary masks); at any other size the
  value is shifted by ``10 log10(H W / 512^2)`` dB (-4.26 dB at 256x384, +9.03 dB at 1024x2048). This is
  reproduced, not corrected, so numbers stay comparable with papers that ran evaluate.py; say so when
  comparing images of other sizes.
- **LPIPS** (AlexNet, on [0, 1] inputs as evaluate.py passes them): flare_sr/metrics/lpips_alexnet.py, from local
  weights only; the script's ``--lpips``.
- An image whose region weights sum to 0 has no score for that region (NaN here: "not scored"); each region is
  averaged over the images that have it, PSNR and SSIM over all images, and **Score** is the mean of the three
  region averages (``flare7k_summary``).

flare_sr's own ``calculate_flare_psnr`` (flare_psnr_metric.py) is another protocol: the mean over the region
at any size, weights linear rather than squared, streak weights clipped instead of wrapped.
"""
from os import path as osp

import numpy as np
from basicsr.metrics.metric_util import reorder_image
from basicsr.utils.registry import METRIC_REGISTRY
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from flare_sr.errors import FlareSRError
from flare_sr.metrics.flare_psnr_metric import GRAY_MODES, find_mask
from flare_sr.utils.img_util import read_image_native

PROTOCOL = ('Flare7K evaluate.py (8-bit RGB; skimage PSNR data_range 255 and SSIM 7x7 uniform per channel; '
            'G/S/Global-PSNR from mask colours G/255, (R-G mod 256)/255, (255-B)/255, masked MSE over a fixed '
            '512^2 area; regions averaged over the images that have them; Score = their mean)')
FIXED_AREA = 512 * 512  # evaluate.py's extract_mask: np.sum(mask) / (512*512), whatever the image size
REGIONS = ('glare', 'streak', 'global')
REGION_NAMES = {'glare': 'G-PSNR', 'streak': 'S-PSNR', 'global': 'Global-PSNR'}
METRIC_NAMES = {'glare': 'calculate_g_psnr_flare7k', 'streak': 'calculate_s_psnr_flare7k',
                'global': 'calculate_global_psnr_flare7k'}


def region_weights(mask):
    """``{'glare', 'streak', 'global'}: HxW float64 weights`` from an HxWx3 (or x4) uint8 RGB Flare7K mask.

    Bit for bit evaluate.py's ``extract_mask`` (uint8 differences wrap; see the module docstring).
    """
    if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[2] < 3:
        raise FlareSRError(f'Flare7K mask must be HxWx3 uint8 RGB, got {mask.shape} {mask.dtype}')
    return {'glare': mask[:, :, 1] / 255, 'streak': (mask[:, :, 0] - mask[:, :, 1]) / 255,
            'global': (255 - mask[:, :, 2]) / 255}


def region_psnr(gt, result, weights):
    """evaluate.py's ``compare_score`` for one region: dB, ``inf`` for a perfect region, NaN when ``weights``
    (HxW, from ``region_weights``) sum to 0. ``gt``, ``result``: HxWx3 uint8 of the weights' height and width."""
    area = np.sum(weights) / FIXED_AREA
    if not area > 0:
        return float('nan')
    weights = np.expand_dims(weights, 2).repeat(3, axis=2)
    mse = np.mean((gt * weights - result * weights)**2, dtype=np.float64) / (255 * 255 * area)
    with np.errstate(divide='ignore'):
        return float(10 * np.log10(1.0 / mse))


def flare7k_psnr(gt, result):
    """PSNR (dB) of two HxWx3 uint8 images as evaluate.py: skimage, data_range 255; ``inf`` when equal."""
    with np.errstate(divide='ignore'):
        return float(peak_signal_noise_ratio(gt, result, data_range=255))


def flare7k_ssim(gt, result):
    """SSIM of two HxWx3 uint8 images (each side >= 7) as evaluate.py: skimage, channel_axis -1, data_range 255."""
    if min(gt.shape[:2]) < 7:
        raise FlareSRError(f'Flare7K SSIM needs images of at least 7x7 pixels (its window), got '
                           f'{gt.shape[1]}x{gt.shape[0]}')
    return float(structural_similarity(gt, result, channel_axis=-1, data_range=255))


def check_pair(gt, result, what='images'):
    """Both HxWx3 uint8 of one size, or FlareSRError naming ``what``."""
    for img in (gt, result):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise FlareSRError(f'{what}: the Flare7K protocol scores HxWx3 8-bit images, got {img.shape} {img.dtype}')
    if gt.shape != result.shape:
        raise FlareSRError(f'{what}: sizes differ, {gt.shape[1]}x{gt.shape[0]} and {result.shape[1]}x{result.shape[0]}')


def read_image_8bit(path, role='image'):
    """HxWx3 uint8 RGB of an 8-bit file (gray -> 3 channels, alpha dropped); FlareSRError for 16-bit files."""
    img = read_image_native(path)
    if img.dtype != np.uint8:
        raise FlareSRError(f'{path}: a 16-bit {role}; the Flare7K protocol scores 8-bit images (data_range 255)')
    return img


def read_mask(path):
    """HxWx3 uint8 RGB of a colour Flare7K mask; FlareSRError for a grayscale one (its classes are colours) and a
    JPEG one: its compression noise puts green a level above red, which the wrapped ``R - G`` reads as a full
    streak (S-PSNR then scores images without a streak, and on wrong pixels)."""
    mask = read_image_8bit(path, 'mask')
    problem = mask_problem(path)
    if problem:
        raise FlareSRError(problem)
    return mask


def mask_problem(path):
    """None, or why the file ``path`` cannot be a Flare7K mask: grayscale (its classes are colours) or JPEG."""
    with Image.open(path) as img:
        if img.mode in GRAY_MODES:
            return (f'{path}: a grayscale mask; Flare7K masks are colour-coded (glare [255,255,0], streak [255,0,0], '
                    'light source [0,0,255])')
        if img.format == 'JPEG':
            return (f'{path}: a JPEG mask; its compression noise, where green comes out above red, is a full streak '
                    'in the Flare7K protocol (uint8 R - G wraps): use the PNG masks')
    return None


def flare7k_scores(gt, result, mask=None):
    """One image's ``{'psnr', 'ssim'[, 'glare', 'streak', 'global']}`` (NaN = no such region in the mask).

    ``gt``, ``result``: HxWx3 uint8 RGB of one size; ``mask``: HxWx3 uint8 RGB of that size, or None.
    """
    check_pair(gt, result)
    scores = {'psnr': flare7k_psnr(gt, result), 'ssim': flare7k_ssim(gt, result)}
    if mask is not None:
        if mask.shape[:2] != gt.shape[:2]:
            raise FlareSRError(f'mask is {mask.shape[1]}x{mask.shape[0]}, the images {gt.shape[1]}x{gt.shape[0]}')
        scores.update((region, region_psnr(gt, result, weights)) for region, weights in region_weights(mask).items())
    return scores


def flare7k_summary(per_image):
    """The table of evaluate.py from a list of ``flare7k_scores``: ``{metric: (mean, images averaged)}``.

    PSNR and SSIM (and ``lpips`` where the scores have it) over every image; each region over the images that
    have it (NaN and 0 when none); ``score`` the mean of the three region means when masks were scored (NaN if a
    region is missing everywhere, where evaluate.py stops with "Error, No mask in this type!").
    """
    summary = {}
    for name in ('psnr', 'ssim', 'lpips') + REGIONS:
        if not any(name in scores for scores in per_image):
            continue
        values = [scores[name] for scores in per_image if name in scores and not np.isnan(scores[name])]
        summary[name] = (sum(values) / len(values) if values else float('nan'), len(values))
    if 'global' in summary:
        # evaluate.py's order of operations, to the last bit
        summary['score'] = (1 / 3 * (summary['glare'][0] + summary['global'][0] + summary['streak'][0]),
                            len(per_image))
    return summary


def _validation_pair(img, img2, input_order):
    """(label, result) from BasicSR's metric call (``img`` the output, ``img2`` the label)."""
    img, img2 = reorder_image(img, input_order=input_order), reorder_image(img2, input_order=input_order)
    check_pair(img2, img, 'calculate_*_flare7k')
    return img2, img


def beside_folder(metric, lq_path, gt_path):
    """Flare7K's layout, ``<set>/{input,gt,mask}``: the ``mask`` folder beside the image's own folder."""
    for path in (lq_path, gt_path):
        if path:
            candidate = osp.join(osp.dirname(osp.dirname(osp.abspath(path))), 'mask')
            if osp.isdir(candidate):
                return candidate
    raise FlareSRError(f'{metric}: no mask_folder given and no mask/ folder beside {osp.dirname(lq_path or gt_path)} '
                       "(Flare7K's test_data/<set>/{input,gt,mask} layout); set mask_folder")


def _validation_region(img, img2, region, mask_folder, lq_path, gt_path, input_order):
    """One region's PSNR for BasicSR's metric call, the mask found by the image's name in ``mask_folder`` (default:
    the ``mask`` folder beside the image's folder)."""
    metric = METRIC_NAMES[region]
    if not (lq_path or gt_path):
        raise FlareSRError(f'{metric} finds each mask by the image name: it needs lq_path or gt_path, which '
                           "flare_sr's validation passes")
    if mask_folder is None:
        mask_folder = beside_folder(metric, lq_path, gt_path)
    gt, result = _validation_pair(img, img2, input_order)
    mask_path = find_mask(mask_folder, lq_path, gt_path, metric=metric)
    mask = read_mask(mask_path)
    if mask.shape[:2] != gt.shape[:2]:
        raise FlareSRError(f'{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, the image '
                           f'{gt.shape[1]}x{gt.shape[0]} (a dataset\'s gt_size resizes images, not masks: leave it '
                           'unset to score with masks)')
    return region_psnr(gt, result, region_weights(mask)[region])


@METRIC_REGISTRY.register()
def calculate_psnr_flare7k(img, img2, input_order='HWC'):
    """Flare7K evaluate.py's PSNR (dB; module docstring). ``img`` the output, ``img2`` the label: HxWx3 uint8."""
    gt, result = _validation_pair(img, img2, input_order)
    return flare7k_psnr(gt, result)


@METRIC_REGISTRY.register()
def calculate_ssim_flare7k(img, img2, input_order='HWC'):
    """Flare7K evaluate.py's SSIM (scikit-image's, not BasicSR's Gaussian 11x11 ``calculate_ssim``)."""
    gt, result = _validation_pair(img, img2, input_order)
    return flare7k_ssim(gt, result)


@METRIC_REGISTRY.register()
def calculate_g_psnr_flare7k(img, img2, mask_folder=None, lq_path=None, gt_path=None, input_order='HWC'):
    """Flare7K G-PSNR (dB) of one image; NaN (not scored) when its mask has no glare.

    ``mask_folder``: the Flare7K masks; by default the ``mask`` folder beside the input's (or label's) folder, as
    in Flare7K's ``test_data/<set>/{input,gt,mask}``, so one option file scores several test sets. An image's
    mask has its stem, or the stem with input/lq/gt/label -> mask (``input_000000`` -> ``mask_000000``).
    ``lq_path``, ``gt_path``: passed by flare_sr's validation.
    Raises FlareSRError for a missing, grayscale or 16-bit mask, or one of another size than the image.
    """
    return _validation_region(img, img2, 'glare', mask_folder, lq_path, gt_path, input_order)


@METRIC_REGISTRY.register()
def calculate_s_psnr_flare7k(img, img2, mask_folder=None, lq_path=None, gt_path=None, input_order='HWC'):
    """Flare7K S-PSNR (dB); NaN when the mask has no streak. Arguments as ``calculate_g_psnr_flare7k``."""
    return _validation_region(img, img2, 'streak', mask_folder, lq_path, gt_path, input_order)


@METRIC_REGISTRY.register()
def calculate_global_psnr_flare7k(img, img2, mask_folder=None, lq_path=None, gt_path=None, input_order='HWC'):
    """Flare7K Global-PSNR (dB; all but the light source). Arguments as ``calculate_g_psnr_flare7k``."""
    return _validation_region(img, img2, 'global', mask_folder, lq_path, gt_path, input_order)
