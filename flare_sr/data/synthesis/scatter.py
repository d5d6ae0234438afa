"""Scattering flare from dirty or scratched optics, drawn in the image plane.

Wu et al. ("How to Train Neural Networks for Flare Removal", ICCV 2021, sec. 3) show that dust and
scratches on the front element scatter light into streaks and a mottled haze. Here:

* each scratch, a thin line on the glass, scatters light into a streak through the source
  *perpendicular* to the scratch (the diffraction of a thin line is a line at right angles to it),
  with an irregular brightness along it (the scratch's width varies);
* dust scatters into a mottled halo: a smooth random texture (bilinear upsampling of a coarse
  random grid) under a Cauchy falloff around the light.

Both are drawn directly, not computed by wave optics: the held-out Fourier-optics family
(``heldout/psf.py``) must stay the only Fourier-optics flare.
"""
import cv2
import numpy as np

from flare_sr.data.synthesis.options import draw


def scratch_streaks(dx, dy, radius, rng, config, diagonal):
    """HxW float32: ``scratch_count`` streaks through the light, each with a random direction and texture."""
    height, width = radius.shape
    out = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(*config.scratch_count))):
        angle = rng.uniform(0, np.pi)
        along = dx * np.float32(np.cos(angle)) + dy * np.float32(np.sin(angle))
        across = -dx * np.float32(np.sin(angle)) + dy * np.float32(np.cos(angle))
        half_width = max(0.6, draw(rng, config, 'scratch_width') * diagonal)
        length = draw(rng, config, 'scratch_length') * diagonal
        knots = rng.uniform(0.2, 1.0, size=17).astype(np.float32)  # brightness along the streak
        position = np.clip((along / (2 * length) + 0.5) * 16, 0, 16)
        texture = np.interp(position.ravel(), np.arange(17), knots).reshape(height, width).astype(np.float32)
        profile = np.exp(np.float32(-0.5 / half_width ** 2) * across ** 2)
        falloff = 1.0 / (1.0 + np.abs(along) / np.float32(length)) ** 2
        out += np.float32(draw(rng, config, 'scatter_strength')) * texture * profile * falloff
    return out


def dust_haze(radius, rng, config, diagonal):
    """HxW float32 mottled halo: smooth noise in [0.2, 1] times ``strength / (1 + (r / spread)^2)``."""
    height, width = radius.shape
    cells = int(rng.integers(4, 12))
    coarse = rng.uniform(0.2, 1.0, size=(cells, cells)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    spread = draw(rng, config, 'dust_spread') * diagonal
    strength = draw(rng, config, 'scatter_strength')
    return (strength * texture / (1.0 + (radius / spread) ** 2)).astype(np.float32)
