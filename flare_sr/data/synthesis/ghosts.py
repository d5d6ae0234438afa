"""Reflective ghosts: images of the aperture formed by light reflected twice between lens surfaces.

Every ghost of a point light lies on the line from the light through the optical centre, because a
rotationally symmetric lens maps that meridional plane onto itself (Hullin et al., "Physically-Based
Real-Time Lens Flare Rendering", SIGGRAPH 2011). Ghost k sits at ``centre + t_k (light - centre)``
(t < 0: mirrored through the centre), with the aperture's polygon shape (or a disc when the iris is
wide open), a brighter rim (spherical aberration piles light at the caustic) and a slightly different
size per colour (dispersion). Here positions are sampled, not traced; the held-out ``raytrace``
family computes them with ray-transfer matrices instead.
"""
import numpy as np

from flare_sr.data.synthesis.geometry import optical_centre
from flare_sr.data.synthesis.options import draw


def aperture_distance(dx, dy, sides, rotation):
    """Normalised radius of offsets for a regular ``sides``-gon (1 on the apothem), or a disc if ``sides`` is None."""
    radius = np.hypot(dx, dy)
    if sides is None:
        return radius
    sector = 2 * np.pi / sides
    phi = np.mod(np.arctan2(dy, dx) - rotation, sector) - sector / 2
    return radius * np.cos(phi) / np.cos(np.pi / sides)


def ghosts(height, width, light_xy, rng, config, diagonal, blades):
    """(HxWx3 float32 layer, [(x, y)] ghost centres). Each ghost is rendered only inside its bounding box."""
    layer = np.zeros((height, width, 3), np.float32)
    centre = np.array(optical_centre(height, width))
    axis = np.asarray(light_xy) - centre
    rotation = rng.uniform(0, 2 * np.pi)
    positions = []
    for _ in range(int(rng.integers(*config.ghost_count))):
        t = draw(rng, config, 'ghost_position')
        gx, gy = centre + t * axis
        size = draw(rng, config, 'ghost_radius') * diagonal
        sides = None if rng.random() < config.ghost_round_prob else blades
        tint = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        strength = draw(rng, config, 'ghost_strength')
        chroma = draw(rng, config, 'ghost_chromatic')
        edge = max(0.8, 0.08 * size)
        reach = size * (1 + chroma) / np.cos(np.pi / (sides or 8)) + 2 * edge
        x0, x1 = int(max(0, np.floor(gx - reach))), int(min(width, np.ceil(gx + reach) + 1))
        y0, y1 = int(max(0, np.floor(gy - reach))), int(min(height, np.ceil(gy + reach) + 1))
        positions.append((float(gx), float(gy)))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rho = aperture_distance(xs - gx, ys - gy, sides, rotation)
        for channel, scale in enumerate((1 + chroma, 1.0, 1 - chroma)):
            radius = size * scale
            inside = np.clip((radius - rho) / edge + 0.5, 0.0, 1.0)
            brighter_rim = 0.6 + 0.4 * np.clip(rho / radius, 0.0, 1.0) ** 2
            layer[y0:y1, x0:x1, channel] += strength * tint[channel] * inside * brighter_rim
    return layer, positions
