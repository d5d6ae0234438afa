"""Held-out family ``overlay``: flare as image-augmentation libraries draw it, alpha-blended in sRGB; evaluation only.

Augmentation libraries add "sun flare" to photos without any optics: albumentations' ``RandomSunFlare``
(method ``overlay``; documented at albumentations.ai/docs, "RandomSunFlare": "overlaying multiple
semi-transparent circles of varying sizes and intensities along a line originating from a 'sun' point",
with ``src_radius``, ``src_color``, ``num_flare_circles_range`` (6, 10) and ``angle_range``), after
Automold's road augmentations. This module draws that idea with its own code (no library's code was read
or copied): a bright sun disc with a wide radial glow, then translucent coloured discs and hexagons
spaced along a line through the sun, each layer *alpha-blended* onto the sRGB photo
(``out = (1 - a) img + a colour``) rather than added in linear light. So unlike every other family it
can darken a pixel brighter than a flare colour, and its glow is a painted gradient, not a PSF.

The label keeps the sun disc (Flare7K++'s convention: the light source is scene, not flare).
"""
from dataclasses import dataclass

import cv2
import numpy as np

from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image
from flare_sr.data.synthesis.geometry import sample_light_position
from flare_sr.data.synthesis.options import settings_from_options


@dataclass
class OverlayConfig:
    """Ranges of the painted sun flare; lengths as fractions of the image diagonal, opacities in [0, 1]."""
    source_in_frame_prob: float = 0.85
    source_outside: float = 0.15
    color_temperature: tuple = (3500.0, 9000.0)
    rgb_gain_jitter: float = 0.12
    sun_radius: tuple = (0.006, 0.02)     # the opaque disc, kept in the label
    core_radius: tuple = (2.0, 4.5)       # the glow's opaque centre, in sun radii: a blown-out bloom
    glow_radius: tuple = (0.2, 0.5)       # where the haze's opacity reaches zero
    glow_opacity: tuple = (0.15, 0.5)     # the haze's at the sun's centre
    glow_falloff: tuple = (1.5, 3.0)      # haze opacity = peak * (1 - r / R) ** falloff
    circle_count: tuple = (6, 11)         # integer range, as RandomSunFlare's (6, 10) inclusive
    circle_radius: tuple = (0.015, 0.08)
    circle_opacity: tuple = (0.05, 0.2)
    circle_reach: tuple = (0.3, 1.0)      # how far along the line the circles spread, fraction of the diagonal
    polygon_prob: float = 0.3             # a circle drawn as a hexagon instead (an iris ghost's shape)
    edge_blur: tuple = (0.002, 0.008)     # Gaussian sigma softening the circles' edges
    noise_prob: float = 0.0               # the libraries add none
    read_noise: tuple = (0.0, 0.004)

    @classmethod
    def from_options(cls, options, option_name='overlay'):
        return settings_from_options(cls, options, option_name)


def alpha_blend(image, colour, alpha):
    """HxWx3 sRGB ``(1 - alpha) image + alpha colour``; ``alpha`` HxW in [0, 1], ``colour`` (3,) or HxWx3."""
    alpha = alpha[..., None]
    return (1.0 - alpha) * image + alpha * np.asarray(colour, np.float32)


def radial_glow(height, width, x, y, core, radius, peak, falloff):
    """HxW float32 opacity at distance ``d`` from (x, y): opaque out to ``core`` pixels, fading to 0 over
    another ``core`` (the blown-out centre), and at least ``peak (1 - d / radius) ** falloff`` (the haze)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(xs - np.float32(x), ys - np.float32(y))
    haze = np.float32(peak) * (1.0 - np.clip(distance / max(radius, 1.0), 0.0, 1.0)) ** np.float32(falloff)
    centre = np.clip(2.0 - distance / np.float32(max(core, 1.0)), 0.0, 1.0)
    return np.maximum(haze, centre).astype(np.float32)


def shape_mask(height, width, x, y, radius, sides, rotation, blur):
    """HxW float32 in [0, 1]: a filled disc (``sides`` 0) or regular polygon, edges blurred by ``blur`` px."""
    mask = np.zeros((height, width), np.float32)
    shift = 4  # cv2 draws at 1/16-pixel precision
    centre = (int(round(x * 2 ** shift)), int(round(y * 2 ** shift)))
    if sides == 0:
        cv2.circle(mask, centre, int(round(radius * 2 ** shift)), 1.0, -1, cv2.LINE_AA, shift)
    else:
        angles = rotation + 2 * np.pi * np.arange(sides) / sides
        points = np.stack([x + radius * np.cos(angles), y + radius * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points * 2 ** shift).astype(np.int32)], 1.0, cv2.LINE_AA, shift)
    if blur > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), blur, borderType=cv2.BORDER_CONSTANT)
    return mask


def overlay_flare(clean_rgb01, rng, config=None):
    """Held-out painted sun flare; same contract as ``synthesize_flare``: ``(flared, info)``.

    ``clean_rgb01`` HxWx3 float32 in [0, 1]. ``info``: family, light_xy (pixels), light_in_frame, label (the
    clean photo with the sun disc), flare_alpha (HxW, the combined opacity of every flare layer) and
    flare_rgb (HxWx3, the flare alone blended onto black, in [0, 1]).
    """
    config = OverlayConfig.from_options(config)
    clean = check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    light_x, light_y, inside = sample_light_position(rng, height, width, config.source_in_frame_prob,
                                                     config.source_outside)
    tint = light_color(rng, config)
    tint = np.clip(tint / tint.max(), 0.0, 1.0).astype(np.float32)
    sun_radius = max(1.5, rng.uniform(*config.sun_radius) * diagonal)
    glow = radial_glow(height, width, light_x, light_y, sun_radius * rng.uniform(*config.core_radius),
                       rng.uniform(*config.glow_radius) * diagonal,
                       rng.uniform(*config.glow_opacity), rng.uniform(*config.glow_falloff))
    layers = [(glow, 0.5 + 0.5 * tint)]  # paler than the sun's tint; its largest channel is 1: a clipped centre

    angle = rng.uniform(0.0, 2 * np.pi)
    reach = rng.uniform(*config.circle_reach) * diagonal
    blur = rng.uniform(*config.edge_blur) * diagonal
    for _ in range(int(rng.integers(*config.circle_count))):
        along = rng.uniform(0.05, 1.0) * reach
        sides = 6 if rng.random() < config.polygon_prob else 0
        mask = shape_mask(height, width, light_x + along * np.cos(angle), light_y + along * np.sin(angle),
                          rng.uniform(*config.circle_radius) * diagonal, sides, rng.uniform(0, np.pi / 3), blur)
        colour = np.clip(tint * rng.uniform(0.6, 1.0, size=3), 0.0, 1.0).astype(np.float32)
        layers.append((mask * np.float32(rng.uniform(*config.circle_opacity)), colour))

    sun = shape_mask(height, width, light_x, light_y, sun_radius, 0, 0.0, 0.0)
    label = alpha_blend(clean, 0.85 + 0.15 * tint, sun)
    flared, flare_rgb = clean, np.zeros_like(clean)
    transmitted = np.ones((height, width), np.float32)  # the share of the photo left after every layer
    for alpha, colour in layers:
        flared, flare_rgb = alpha_blend(flared, colour, alpha), alpha_blend(flare_rgb, colour, alpha)
        transmitted *= 1.0 - alpha
    flared = alpha_blend(flared, 0.85 + 0.15 * tint, sun)  # the sun on top, as in the label
    if rng.random() < config.noise_prob:
        flared = flared + rng.normal(0.0, rng.uniform(*config.read_noise), flared.shape).astype(np.float32)
    info = dict(family='overlay', light_xy=(float(light_x), float(light_y)), light_in_frame=inside,
                color=tint.tolist(), label=np.clip(label, 0.0, 1.0).astype(np.float32),
                flare_alpha=1.0 - transmitted, flare_rgb=flare_rgb.astype(np.float32))
    return np.clip(flared, 0.0, 1.0).astype(np.float32), info
