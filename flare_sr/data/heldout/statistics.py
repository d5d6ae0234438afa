"""How much a flare family degrades a photo, measured per pair, and what real flare photos show.

Per pair (input, label, info of a family's ``f(clean_rgb01, rng) -> (flared, info)``), ``pair_statistics`` gives

* ``input_psnr``: PSNR of the input against the label, dB, on the uint8 images, whole frame (the Dacon metric);
* ``coverage``: share of the frame the flare covers, pixels whose largest channel difference
  ``|input - label|`` exceeds 0.03 in [0, 1] sRGB (``calculate_flare_psnr``'s default threshold);
* ``light_in_frame``: whether the main light lies inside the frame (``info['light_in_frame']``);
* ``clipped_share``: share of the frame clipped by the flare, pixels with a channel >= 254/255 in the
  input and none in the label.

``summarize`` turns a family's list of them into the row printed beside ``REAL_FLARE_REFERENCE``.
"""
import numpy as np

FLARE_THRESHOLD = 0.03    # calculate_flare_psnr's default (flare_sr/metrics/flare_psnr_metric.py)
CLIP_LEVEL = 254 / 255.0  # an 8-bit value of 254 or 255 is taken as clipped


def _pair(flared, label):
    """Both as HxWx3 float64 in [0, 1]; uint8 inputs are divided by 255."""
    arrays = []
    for image in (flared, label):
        image = np.asarray(image)
        image = image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
        arrays.append(np.clip(image, 0.0, 1.0))
    if arrays[0].shape != arrays[1].shape or arrays[0].ndim != 3:
        raise ValueError(f'input and label must be HxWx3 of one shape, got {arrays[0].shape} and {arrays[1].shape}')
    return arrays


def _uint8(image01):
    return np.round(image01 * 255.0).astype(np.uint8)


def input_psnr(flared, label):
    """PSNR in dB of ``flared`` against ``label`` (HxWx3, float in [0, 1] or uint8), both quantised to uint8
    first, over the whole frame: ``20 log10(255 / RMSE)``; ``inf`` for identical images."""
    flared, label = (_uint8(image).astype(np.float64) for image in _pair(flared, label))
    mse = np.mean((flared - label) ** 2)
    return float('inf') if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))


def flare_coverage(flared, label, threshold=FLARE_THRESHOLD):
    """Share in [0, 1] of the pixels where ``max_c |flared - label| > threshold`` (images in [0, 1] or uint8,
    compared as uint8 like ``calculate_flare_psnr``)."""
    flared, label = (_uint8(image).astype(np.float64) for image in _pair(flared, label))
    return float(np.mean(np.abs(flared - label).max(axis=2) > threshold * 255.0))  # as derived_flare_region


def clipped_share(flared, label, level=CLIP_LEVEL):
    """Share in [0, 1] of the pixels with a channel >= ``level`` in ``flared`` and no channel >= ``level`` in
    ``label``: highlights the flare clipped, not those of the scene (or the light source) itself."""
    flared, label = _pair(flared, label)
    # The uint8 value decides: 254/255 is 0.99608 and a float of exactly that must count.
    flared, label = _uint8(flared), _uint8(label)
    limit = int(round(level * 255))
    return float(np.mean((flared.max(axis=2) >= limit) & (label.max(axis=2) < limit)))


def pair_statistics(flared, info):
    """{input_psnr (dB), coverage, light_in_frame (bool), clipped_share} of one pair; ``info`` holds the
    ``label`` and ``light_in_frame`` of a held-out family (or of ``synthesize_flare``)."""
    label = info['label']
    return dict(input_psnr=input_psnr(flared, label), coverage=flare_coverage(flared, label),
                light_in_frame=bool(info['light_in_frame']), clipped_share=clipped_share(flared, label))


def summarize(records):
    """The row of a family from its ``pair_statistics`` records: mean, p10, p50 and p90 of the input PSNR (dB,
    pairs with ``inf`` left out), mean coverage, the share of pairs with the light in frame, mean clipped share,
    and ``count``."""
    if not records:
        raise ValueError('summarize needs at least one record')
    psnr = np.array([r['input_psnr'] for r in records], dtype=np.float64)
    psnr = psnr[np.isfinite(psnr)]
    p10, p50, p90 = np.percentile(psnr, (10, 50, 90)) if psnr.size else (np.nan,) * 3
    return dict(count=len(records), psnr_mean=float(psnr.mean()) if psnr.size else float('nan'),
                psnr_p10=float(p10), psnr_p50=float(p50), psnr_p90=float(p90),
                coverage=float(np.mean([r['coverage'] for r in records])),
                light_in_frame=float(np.mean([r['light_in_frame'] for r in records])),
                clipped_share=float(np.mean([r['clipped_share'] for r in records])))


def family_statistics(generate, cleans_and_rngs):
    """``summarize`` over ``generate(clean, rng)`` for each (clean HxWx3 float32 in [0, 1], numpy Generator)."""
    return summarize([pair_statistics(*generate(clean, rng)) for clean, rng in cleans_and_rngs])
