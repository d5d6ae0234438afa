"""Glare around a light: the glow, light bleed and veiling glare. Each returns an HxW float32 map >= 0.

* ``glow``: the bright halo next to the source, a heavy ``1 / (1 + (r/r0)^p)`` tail plus a Gaussian
  core, the shape of a lens's measured glare spread function (Ritschel et al., "Temporal Glare",
  Eurographics 2009; Flare7K's "glow" layer, Dai et al., NeurIPS 2022).
* ``light_bleed``: wide, low-frequency, coloured glare reaching far across the frame, as the Dacon
  challenge photos show around window lights (a tinted wash, not a halo). A Cauchy profile a few
  tenths of the diagonal wide with its own tint (coatings reflect some wavelengths more).
* ``veiling_glare``: light scattered by every lens surface and the barrel over the whole frame. It
  lifts the blacks and lowers contrast (ISO 18844 measures it as a uniform veil); a uniform part
  plus a broad rise towards the light.
* ``highlight_glare``: the same scattering around the scene's own clipped highlights (a white cup, a
  window, a lamp shade), not only around point lights. A lens's veiling glare is the scene radiance
  convolved with its glare spread function (McCann and Rizzi, "Veiling glare: the dynamic range
  limit of HDR images", 2007; Talvala et al., SIGGRAPH 2007), so every bright area glares, and
  behind the clipping its true radiance is unknown.
"""
import cv2
import numpy as np

from flare_sr.data.synthesis.options import draw


def glow(radius, rng, config, diagonal):
    """Scattering halo around a light at distance ``radius`` (HxW pixels); peak ``strength + core``."""
    r0 = draw(rng, config, 'glow_radius') * diagonal
    power = draw(rng, config, 'glow_power')
    halo = draw(rng, config, 'glow_strength') / (1.0 + (radius / r0) ** power)
    core = draw(rng, config, 'glow_core') * np.exp(-0.5 * (radius / (0.6 * r0)) ** 2)
    return (halo + core).astype(np.float32)


def light_bleed(radius, rng, config, diagonal):
    """Wide coloured wash: ``strength / (1 + (r / width)^2)`` with width ``bleed_radius`` x diagonal."""
    width = draw(rng, config, 'bleed_radius') * diagonal
    return (draw(rng, config, 'bleed_strength') / (1.0 + (radius / width) ** 2)).astype(np.float32)


def bleed_tint(rng, color):
    """(3,) tint of the bleed: the light's colour pulled towards a random hue (coating colour), max 1."""
    hue = rng.uniform(0.2, 1.0, size=3).astype(np.float32)
    tint = color * (0.4 + 0.6 * hue)
    return (tint / max(float(tint.max()), 1e-6)).astype(np.float32)


def veiling_glare(radius, rng, config, diagonal):
    """Uniform veil (a share U(0.3, 0.8) of ``haze_strength``) plus a broad rise towards the light."""
    strength = draw(rng, config, 'haze_strength')
    spread = draw(rng, config, 'haze_spread') * diagonal
    uniform_part = rng.uniform(0.3, 0.8)
    return (strength * (uniform_part + (1 - uniform_part) / (1.0 + (radius / spread) ** 2))).astype(np.float32)


def _wide_blur(image, sigma):
    """Gaussian blur of HxWx3 ``image`` by ``sigma`` pixels, zero outside; wide ones on a coarser grid (cost)."""
    height, width = image.shape[:2]
    factor = min(1.0, 8.0 / sigma)
    if factor == 1.0:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=8.0, borderType=cv2.BORDER_CONSTANT)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def highlight_glare(scene_linear, encoded, rng, config, diagonal):
    """HxWx3 float32 glare (>= 0) of the scene's clipped highlights, zero where the scene has none.

    Pixels of the sRGB ``encoded`` scene at or above ``highlight_level`` count as clipped; their
    linear radiance is scaled by ``highlight_radiance`` (unknown behind the clip) and a share
    ``highlight_strength`` of it is spread by a glare spread function: four Gaussians of widths
    ``highlight_radius`` x diagonal x (1, 3, 9, 27) whose weights ``3^(k (2 - p))`` follow the
    ``1 / r^p`` tail of ``glow`` (p from ``glow_power``).
    """
    clipped = encoded.max(axis=2, keepdims=True) >= draw(rng, config, 'highlight_level')
    if not clipped.any():
        return np.zeros_like(scene_linear)
    radiance = scene_linear * clipped * np.float32(draw(rng, config, 'highlight_radiance'))
    width = max(0.5, draw(rng, config, 'highlight_radius') * diagonal)
    power = draw(rng, config, 'glow_power')
    weights = np.array([3.0 ** (k * (2.0 - power)) for k in range(4)])
    weights *= draw(rng, config, 'highlight_strength') / weights.sum()
    glare = sum(np.float32(weight) * _wide_blur(radiance, width * 3.0 ** k) for k, weight in enumerate(weights))
    return np.maximum(glare, 0.0).astype(np.float32)
