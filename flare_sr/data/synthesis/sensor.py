"""What the camera does after the optics: exposure, blooming, clipping, noise and tone mapping.

Sources:
* Exposure and tone-mapping changes: Zhou et al., "Improving Lens Flare Removal with General-Purpose
  Pipeline and Multiple Light Sources Recovery", ICCV 2023. Flare is added in linear light, then
  the pair goes through one random exposure and one tone curve, so the net meets images from many
  camera pipelines, not one fixed gamma.
* Saturation and blooming: a pixel holds a finite charge (full well, 1.0 here). Charge beyond it
  spills into the neighbours, mostly along the readout columns of a CCD and isotropically in a CMOS
  sensor (Janesick, "Scientific Charge-Coupled Devices", 2001, ch. 5). The bloom is the excess
  spread by a normalised kernel: it only adds light, and only around saturated pixels.
* Shot and read noise: the Poisson-Gaussian model (Foi et al., TIP 2008), as Gaussian with
  signal-dependent variance ``shot * x + read^2``.
"""
import cv2
import numpy as np


def bloom(linear, strength, length):
    """HxWx3 float32 charge that spills from pixels above 1.0 (full well) into their neighbours.

    ``strength`` in [0, 1] is the share of the excess charge that spills; ``length`` (pixels) the
    decay of the vertical (column) smear, with a third of the spill spread isotropically (sigma
    ``length / 4``). Non-negative everywhere; zero where nothing is saturated.
    """
    excess = np.maximum(linear - 1.0, 0.0).astype(np.float32)
    if strength <= 0 or not excess.any():
        return np.zeros_like(excess)
    reach = max(1, int(np.ceil(4 * length)))
    steps = np.arange(-reach, reach + 1, dtype=np.float32)
    column = np.exp(-np.abs(steps) / max(length, 1e-3))
    column /= column.sum()
    smear = cv2.sepFilter2D(excess, -1, np.ones(1, np.float32), column, borderType=cv2.BORDER_CONSTANT)
    halo = cv2.GaussianBlur(excess, (0, 0), sigmaX=max(0.5, length / 4), borderType=cv2.BORDER_CONSTANT)
    return np.float32(strength) * (np.float32(2 / 3) * smear + np.float32(1 / 3) * halo)


def add_noise(linear, rng, shot, read):
    """``linear`` plus Gaussian noise of variance ``shot * max(linear, 0) + read^2`` (float32)."""
    if shot == 0 and read == 0:
        return linear
    sigma = np.sqrt(shot * np.maximum(linear, 0.0) + read ** 2)
    return linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)


def tone_map(linear, gamma, contrast):
    """Linear light in [0, 1] to display values in [0, 1]: ``x^(1/gamma)`` then a cubic S-curve.

    ``y + contrast * y (1 - y) (2 y - 1)``: ``contrast`` > 0 steepens the mid-tones, < 0 flattens
    them; it is strictly increasing for ``-1 < contrast < 2``, so the order of pixel values (and
    "light only adds") survives the curve. 0 and 1 are fixed points.
    """
    encoded = cv2.pow(np.clip(linear, 0.0, 1.0).astype(np.float32), 1.0 / gamma)
    if contrast:
        encoded = encoded + np.float32(contrast) * encoded * (1 - encoded) * (2 * encoded - 1)
    return np.clip(encoded, 0.0, 1.0).astype(np.float32)
