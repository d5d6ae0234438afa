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


# What real flare photos show, per statistic; None where nothing is known. Sources (searched 2026-12-05 with the
# docs/pages/issues/code corpora; only numbers found in print are cited as such, the rest says how it was obtained):
#
# * Dacon 2021 (LG AI Research, "camera image quality" challenge, 622 real training pairs, 2448x3264 and
#   1224x1632): raw input against label, 21.1 dB, the challenge's figure as recorded in
#   the project's reference notes ("raw input against label is about 21.1 dB"); the challenge pages themselves
#   were not in the searchable corpora.
# * Flare7K++ real test set (Dai et al., "Flare7K++: Mixing Synthetic and Real Datasets for Nighttime Flare
#   Removal and Beyond", TPAMI 2024; 100 real nighttime pairs, test_data/real): 22.6 dB, the figure issue 19
#   states. NOT VERIFIED: no printed input-PSNR row was found. The stored Flare7K++ paper text (arXiv 2306.04236)
#   reaches the search tool as its abstract only; the ykdai/Flare7K README and issues #4, #15 print model scores
#   (Uformer 26.22-26.98 dB by protocol), not the input's. Recompute it with flare_sr's input PSNR on
#   test_data/real/{input,gt} when the data is at hand.
# * Coverage, light in frame, clipped share: no published figure was found for any real set in the searchable
#   material (Flare7K/Flare7K++ abstracts, README and issues; Wu et al. ICCV 2021 "How to Train Neural Networks
#   for Flare Removal", abstract and introduction; the Dacon pages were not there). ESTIMATES, reasoned:
#   - coverage 0.35 (plausible 0.2-0.5): a mean input PSNR of 21-22.6 dB is an RMSE of 19-23 levels over the
#     frame; if the glare lifts the pixels it covers by ~35 levels on average (a guess; the 0.03 threshold is
#     7.65 levels), that RMSE needs (21 / 35)^2 = 0.36 of the frame covered;
#   - light in frame 0.85 (a guess): Flare7K++'s real test pairs are night scenes shot towards lamps (its
#     evaluate.py scores a light-source mask per image); Dacon's photos also hold backlit scenes whose light
#     may sit just outside the frame; 0.85 weighs both;
#   - clipped share 0.02 (plausible 0.005-0.04, a guess): a blown-out bloom of 2-4 times the radius of a lamp
#     whose radius is 1-2 % of the frame's side clips 0.1-2 % of the frame per lamp, one to three lamps; the
#     lamp itself is clipped in the label too and does not count.
REAL_FLARE_REFERENCE = {
    'Dacon 2021 raw inputs': dict(
        psnr_mean=21.1, coverage=None, light_in_frame=None, clipped_share=None,
        source='Dacon/LG 2021 challenge, raw input vs label (project reference notes)'),
    'Flare7K++ real test': dict(
        psnr_mean=22.6, coverage=None, light_in_frame=None, clipped_share=None,
        source='issue 19; not found in print (Dai et al. TPAMI 2024 test_data/real)'),
    'estimate': dict(
        psnr_mean=None, coverage=0.35, light_in_frame=0.85, clipped_share=0.02,
        source='estimates, reasoning in flare_sr/data/heldout/statistics.py'),
}
