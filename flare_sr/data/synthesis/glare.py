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
"""
import numpy as np


def glow(radius, rng, config, diagonal):
    """Scattering halo around a light at distance ``radius`` (HxW pixels); peak ``strength + core``."""
    r0 = rng.uniform(*config.glow_radius) * diagonal
    power = rng.uniform(*config.glow_power)
    halo = rng.uniform(*config.glow_strength) / (1.0 + (radius / r0) ** power)
    core = rng.uniform(*config.glow_core) * np.exp(-0.5 * (radius / (0.6 * r0)) ** 2)
    return (halo + core).astype(np.float32)


def light_bleed(radius, rng, config, diagonal):
    """Wide coloured wash: ``strength / (1 + (r / width)^2)`` with width ``bleed_radius`` x diagonal."""
    width = rng.uniform(*config.bleed_radius) * diagonal
    return (rng.uniform(*config.bleed_strength) / (1.0 + (radius / width) ** 2)).astype(np.float32)


def bleed_tint(rng, color):
    """(3,) tint of the bleed: the light's colour pulled towards a random hue (coating colour), max 1."""
    hue = rng.uniform(0.2, 1.0, size=3).astype(np.float32)
    tint = color * (0.4 + 0.6 * hue)
    return (tint / max(float(tint.max()), 1e-6)).astype(np.float32)


def veiling_glare(radius, rng, config, diagonal):
    """Uniform veil (a share U(0.3, 0.8) of ``haze_strength``) plus a broad rise towards the light."""
    strength = rng.uniform(*config.haze_strength)
    spread = rng.uniform(*config.haze_spread) * diagonal
    uniform_part = rng.uniform(0.3, 0.8)
    return (strength * (uniform_part + (1 - uniform_part) / (1.0 + (radius / spread) ** 2))).astype(np.float32)
