"""Adding flare to a clean photo in linear light, through one random camera pipeline (sensor.py).

As Wu et al. (ICCV 2021) and Flare7K (NeurIPS 2022): the sRGB scene is linearised with a gamma
(the camera's unknown curve, U(1.8, 2.2)), the flare is *added*, the sum is clipped and encoded
back. Light only ever adds. Flare7K++ (Dai et al., 2023) keeps the light source in the label: it
is part of the scene, not of the flare. Zhou et al. (ICCV 2023) apply the same exposure and tone
curve to input and label; the input alone gets the noise.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from flare_sr.data.synthesis.options import draw
from flare_sr.data.synthesis.sensor import add_noise, bloom, tone_map
from flare_sr.errors import FlareSRError


@dataclass
class Camera:
    """One sampled camera pipeline. ``exposure`` multiplies linear light; ``contrast`` is the S-curve."""
    gamma: float = 2.2
    exposure: float = 1.0
    contrast: float = 0.0
    bloom_strength: float = 0.0
    bloom_length: float = 1.0
    shot_noise: float = 0.0
    read_noise: float = 0.0


def sample_camera(rng, config, diagonal):
    """A Camera from a config's ranges (``gamma``, ``exposure_prob/_ev``, ``tone_prob/_contrast``,
    ``bloom_prob/_strength/_length``, ``noise_prob``, ``shot_noise``, ``read_noise``); absent keys stay neutral."""
    camera = Camera(gamma=draw(rng, config, 'gamma'))
    if rng.random() < getattr(config, 'exposure_prob', 0.0):
        camera.exposure = float(2.0 ** draw(rng, config, 'exposure_ev'))
    if rng.random() < getattr(config, 'tone_prob', 0.0):
        camera.contrast = draw(rng, config, 'tone_contrast')
    if rng.random() < getattr(config, 'bloom_prob', 0.0):
        camera.bloom_strength = draw(rng, config, 'bloom_strength')
        camera.bloom_length = float(draw(rng, config, 'bloom_length') * diagonal / 512.0)
    if rng.random() < config.noise_prob:
        camera.shot_noise = draw(rng, config, 'shot_noise')
        camera.read_noise = draw(rng, config, 'read_noise')
    return camera


def check_image(clean_rgb01):
    """HxWx3 float32 in [0, 1]; another shape or a non-finite value is a FlareSRError."""
    img = np.asarray(clean_rgb01)
    if img.ndim != 3 or img.shape[2] != 3:
        raise FlareSRError(f'flare synthesis needs an HxWx3 RGB image, got shape {img.shape}')
    if not np.isfinite(img).all():  # clipping would keep NaN, and the flare would carry it into training
        raise FlareSRError('flare synthesis needs finite pixel values; the image has NaN or infinity')
    return np.clip(img.astype(np.float32, copy=False), 0.0, 1.0)


def develop(linear, camera, rng=None):
    """Linear scene light (HxWx3, white = 1) through the camera: exposure, bloom, [noise], clip, tone curve."""
    exposed = linear * np.float32(camera.exposure)
    if camera.bloom_strength > 0:
        exposed = exposed + bloom(exposed, camera.bloom_strength, camera.bloom_length)
    if rng is not None:
        exposed = add_noise(exposed, rng, camera.shot_noise, camera.read_noise)
    return tone_map(exposed, camera.gamma, camera.contrast)


def composite(clean_rgb01, flare_linear, camera, rng, source_linear=None):
    """(input, label), HxWx3 float32 sRGB in [0, 1].

    input = develop(scene + flare) with noise; label = develop(scene + source) without, where
    scene = clean^gamma and ``flare_linear`` already contains the source (if any). With
    ``source_linear`` None and a neutral camera the label is the clean image itself.
    """
    scene_linear = cv2.pow(clean_rgb01, camera.gamma)
    flared = develop(scene_linear + flare_linear, camera, rng)
    neutral = camera.exposure == 1.0 and camera.contrast == 0.0
    if source_linear is None and neutral:
        label = clean_rgb01.astype(np.float32)
    else:
        label = develop(scene_linear if source_linear is None else scene_linear + source_linear, camera)
    return flared, label
