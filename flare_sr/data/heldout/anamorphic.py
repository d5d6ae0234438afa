"""Held-out family ``anamorphic``: the flare of a lens with a cylindrical (anamorphic) element,
drawn with scikit-image's rasterisers and SciPy's filters; evaluation only.

A cylindrical element spreads the light of a bright source along one axis only, into a thin
streak across the whole frame (horizontal for a horizontal squeeze, typically blue from its
coatings); its ghosts are ovals stretched along the other axis; a dispersive halo ring (a ghost of
the iris far out of focus) shows a rainbow rim. See Hullin et al., SIGGRAPH 2011, fig. 14 for
anamorphic ghosts. Shapes come from ``skimage.draw`` (line_aa, ellipse, circle_perimeter_aa, disk)
and ``scipy.ndimage`` blurs, methods no training component uses.
"""
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import draw

from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image, composite, sample_camera
from flare_sr.data.synthesis.geometry import sample_light_position
from flare_sr.data.synthesis.options import settings_from_options


@dataclass
class AnamorphicConfig:
    """Ranges of the anamorphic flare; lengths as fractions of the image diagonal."""
    gamma: tuple = (1.8, 2.2)
    source_in_frame_prob: float = 0.85   # calibrated to real flare (statistics.REAL_FLARE_REFERENCE,
    # docs/evaluation.md); was 0.8, streak (0.15, 0.7), ring (0.03, 0.15), ghost (0.03, 0.15) strength
    source_outside: float = 0.2
    color_temperature: tuple = (3000.0, 9000.0)
    rgb_gain_jitter: float = 0.12
    streak_strength: tuple = (0.4, 1.6)
    streak_thickness: tuple = (0.002, 0.008)   # Gaussian sigma across the streak
    streak_reach: tuple = (0.15, 0.8)          # exponential decay along it
    streak_blue: tuple = (0.3, 1.0)            # how far the streak's colour moves to cyan-blue
    ring_prob: float = 0.6
    ring_radius: tuple = (0.15, 0.4)
    ring_strength: tuple = (0.05, 0.3)
    ring_blur: tuple = (0.004, 0.015)
    ghost_count: tuple = (1, 5)                # integer range
    ghost_height: tuple = (0.03, 0.12)         # oval half-height; half-width is 0.3-0.6 of it
    ghost_strength: tuple = (0.05, 0.35)
    source_radius: tuple = (0.003, 0.012)
    source_brightness: tuple = (8.0, 30.0)
    keep_source_in_label: bool = True
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    @classmethod
    def from_options(cls, options, option_name='anamorphic'):
        return settings_from_options(cls, options, option_name)


def horizontal_streak(height, width, light_x, light_y, rng, config, diagonal):
    """HxW float32: an anti-aliased row through the light, decaying exponentially along x, blurred across."""
    canvas = np.zeros((height, width), np.float32)
    row = int(round(light_y))
    if 0 <= row < height:
        rr, cc, value = draw.line_aa(row, 0, row, width - 1)
        canvas[rr, cc] = value
    else:
        return canvas
    reach = rng.uniform(*config.streak_reach) * diagonal
    canvas *= np.exp(-np.abs(np.arange(width, dtype=np.float32) - light_x) / reach)[None, :]
    sigma = max(0.6, rng.uniform(*config.streak_thickness) * diagonal)
    canvas = ndimage.gaussian_filter1d(canvas, sigma, axis=0) * np.sqrt(2 * np.pi) * sigma
    return np.float32(rng.uniform(*config.streak_strength)) * canvas


def halo_ring(height, width, centre_x, centre_y, rng, config, diagonal):
    """HxWx3 float32 ring around (centre_x, centre_y) with a slightly larger red than blue radius."""
    layer = np.zeros((height, width, 3), np.float32)
    radius = rng.uniform(*config.ring_radius) * diagonal
    strength = rng.uniform(*config.ring_strength)
    sigma = max(0.8, rng.uniform(*config.ring_blur) * diagonal)
    for channel, scale in enumerate((1.03, 1.0, 0.97)):
        rr, cc, value = draw.circle_perimeter_aa(int(round(centre_y)), int(round(centre_x)),
                                                 max(1, int(round(radius * scale))), shape=(height, width))
        layer[rr, cc, channel] = value
        layer[..., channel] = ndimage.gaussian_filter(layer[..., channel], sigma) * np.sqrt(2 * np.pi) * sigma
    return np.float32(strength) * layer


def oval_ghosts(height, width, light_x, light_y, rng, config, diagonal):
    """HxW float32 vertically stretched ovals at scattered places along the light's mirror line."""
    canvas = np.zeros((height, width), np.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    for _ in range(int(rng.integers(*config.ghost_count))):
        t = rng.uniform(-1.2, 0.5)
        semi_v = rng.uniform(*config.ghost_height) * diagonal
        semi_h = semi_v * rng.uniform(0.3, 0.6)
        rr, cc = draw.ellipse(cy + t * (light_y - cy), cx + t * (light_x - cx), semi_v, semi_h, shape=(height, width))
        canvas[rr, cc] += rng.uniform(*config.ghost_strength)
    return ndimage.uniform_filter(canvas, size=3)


def anamorphic_flare(clean_rgb01, rng, config=None):
    """Held-out anamorphic flare; same contract as ``synthesize_flare``: ``(flared, info)``."""
    config = AnamorphicConfig.from_options(config)
    clean = check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    camera = sample_camera(rng, config, diagonal)
    light_x, light_y, inside = sample_light_position(rng, height, width, config.source_in_frame_prob,
                                                     config.source_outside)
    color = light_color(rng, config)
    blue = rng.uniform(*config.streak_blue)
    streak_color = (1 - blue) * color + blue * np.array([0.35, 0.7, 1.0], np.float32)
    flare = horizontal_streak(height, width, light_x, light_y, rng, config, diagonal)[..., None] * streak_color
    if rng.random() < config.ring_prob:
        flare += halo_ring(height, width, width - 1 - light_x, height - 1 - light_y, rng, config, diagonal) * color
    flare += oval_ghosts(height, width, light_x, light_y, rng, config, diagonal)[..., None] * color
    source = np.zeros((height, width, 3), np.float32)
    size = max(1.5, rng.uniform(*config.source_radius) * diagonal)
    rr, cc = draw.disk((light_y, light_x), size, shape=(height, width))
    source[rr, cc] = rng.uniform(*config.source_brightness) * color
    flare = (flare + source).astype(np.float32)
    flared, label = composite(clean, flare, camera, rng, source_linear=source if config.keep_source_in_label else None)
    info = dict(family='anamorphic', light_xy=(float(light_x), float(light_y)), light_in_frame=inside,
                gamma=camera.gamma, color=color.tolist(), label=label, flare_linear=flare)
    return flared, info
