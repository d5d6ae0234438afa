"""Held-out family ``raytrace``: ghosts traced through a random lens with ray-transfer matrices.

A random prescription (spherical surfaces, glass and air gaps, an aperture stop) is traced in the
paraxial approximation (ABCD matrices in reduced angles ``n u``; Hecht, "Optics", ch. 6.2). The
sensor sits where the direct path focuses a distant light. Every pair of surfaces (i < j) makes one
ghost: the ray reflects back at j, again forward at i, and reaches the sensor defocused. For each
ghost, Monte-Carlo rays through the polygonal aperture are traced and splatted into a per-colour
histogram (numpy.histogram2d); dispersion (Abbe number) makes each colour's ghost differ. Its
energy is the light's flux times the two surface reflectances (Hullin et al., SIGGRAPH 2011, trace
the same paths non-paraxially). Evaluation only.
"""
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image, composite, sample_camera
from flare_sr.data.synthesis.geometry import sample_light_position, soft_disc
from flare_sr.data.synthesis.options import settings_from_options

CHANNEL_OFFSET = (-0.5, 0.0, 0.5)  # (n - n_d) in units of (n_d - 1) / V for R, G, B (about 656/588/486 nm)


@dataclass
class RayTraceConfig:
    """Ranges of the lens prescription and the light. Lengths in millimetres unless noted."""
    gamma: tuple = (1.8, 2.2)
    source_in_frame_prob: float = 0.85   # calibrated to real flare (statistics.REAL_FLARE_REFERENCE,
    # docs/evaluation.md); was 0.6, surfaces (6, 12), reflectance (0.01, 0.04), flux (5e4, 5e5)
    source_outside: float = 0.3
    color_temperature: tuple = (2500.0, 9000.0)
    rgb_gain_jitter: float = 0.12
    surfaces: tuple = (6, 10)            # integer range; pairs of glass surfaces (ghosts grow as its square)
    radius_of_curvature: tuple = (15.0, 120.0)
    glass_thickness: tuple = (2.0, 8.0)
    air_gap: tuple = (0.5, 10.0)
    glass_index: tuple = (1.48, 1.80)
    abbe_number: tuple = (25.0, 65.0)
    reflectance: tuple = (0.02, 0.04)    # per surface (single coating to uncoated)
    f_number: tuple = (2.0, 8.0)
    field_of_view: tuple = (40.0, 80.0)  # degrees, diagonal
    blades: tuple = (5, 9)               # integer range
    flux: tuple = (3e5, 7e5)             # light's flux in white-pixel units at a 512-pixel diagonal
    source_radius: tuple = (0.003, 0.012)  # fraction of the diagonal
    rays: int = 40000                    # per ghost and colour, before the size cap
    keep_source_in_label: bool = True
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    @classmethod
    def from_options(cls, options, option_name='raytrace'):
        return settings_from_options(cls, options, option_name)


def refraction(n1, n2, curvature):
    return np.array([[1.0, 0.0], [-(n2 - n1) * curvature, 1.0]])


def translation(distance, index):
    return np.array([[1.0, distance / index], [0.0, 1.0]])


def reflection(index, curvature):
    """Mirror in the unfolded system, seen from a medium of ``index``: power -2 n c."""
    return np.array([[1.0, 0.0], [2.0 * index * curvature, 1.0]])


def random_lens(rng, config):
    """(curvatures (S,), gaps (S-1,), media): surface k lies between medium k and k+1 (air at both ends),
    gap k is the distance from surface k to k+1; each medium is its (R, G, B) refractive indices."""
    count = 2 * (int(rng.integers(*config.surfaces)) // 2)
    curvatures = rng.choice([-1, 1], size=count) / rng.uniform(*config.radius_of_curvature, size=count)
    gaps, media = [], [np.ones(3)]
    for k in range(count):
        glass = k % 2 == 0
        n_d, abbe = rng.uniform(*config.glass_index), rng.uniform(*config.abbe_number)
        media.append(n_d + np.array(CHANNEL_OFFSET) * (n_d - 1) / abbe if glass else np.ones(3))
        gaps.append(rng.uniform(*(config.glass_thickness if glass else config.air_gap)))
    return curvatures, gaps[:-1], media


def path_matrix(curvatures, gaps, media, channel, ghost=None):
    """2x2 matrix from the first surface to just after the last, for one colour.

    ``ghost=(i, j)``, i < j: the ray reflects back at surface j, forward again at surface i, then
    leaves the lens; in the unfolded system a surface crossed backwards has its curvature negated.
    """
    n = [medium[channel] for medium in media]
    last = len(curvatures) - 1
    ops = []
    if ghost is None:
        for k in range(last + 1):
            ops.append(refraction(n[k], n[k + 1], curvatures[k]))
            if k < last:
                ops.append(translation(gaps[k], n[k + 1]))
    else:
        i, j = ghost
        for k in range(j):
            ops += [refraction(n[k], n[k + 1], curvatures[k]), translation(gaps[k], n[k + 1])]
        ops.append(reflection(n[j], curvatures[j]))
        for k in range(j - 1, i, -1):
            ops += [translation(gaps[k], n[k + 1]), refraction(n[k + 1], n[k], -curvatures[k])]
        ops += [translation(gaps[i], n[i + 1]), reflection(n[i + 1], -curvatures[i]), translation(gaps[i], n[i + 1])]
        for k in range(i + 1, last + 1):
            ops.append(refraction(n[k], n[k + 1], curvatures[k]))
            if k < last:
                ops.append(translation(gaps[k], n[k + 1]))
    matrix = np.eye(2)
    for op in ops:
        matrix = op @ matrix
    return matrix


def aperture_samples(rng, count, blades, rotation):
    """(count, 2) points uniform in a regular ``blades``-gon inscribed in the unit circle."""
    points = rng.uniform(-1, 1, size=(3 * count, 2))
    angle = np.arctan2(points[:, 1], points[:, 0]) - rotation
    sector = 2 * np.pi / blades
    phi = np.mod(angle, sector) - sector / 2
    inside = np.hypot(points[:, 0], points[:, 1]) * np.cos(phi) <= np.cos(np.pi / blades)
    return points[inside][:count]


def raytrace_flare(clean_rgb01, rng, config=None):
    """Held-out ray-traced ghost flare; same contract as ``synthesize_flare``: ``(flared, info)``."""
    config = RayTraceConfig.from_options(config)
    clean = check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    camera = sample_camera(rng, config, diagonal)
    curvatures, gaps, media = random_lens(rng, config)
    light_x, light_y, inside = sample_light_position(rng, height, width, config.source_in_frame_prob,
                                                     config.source_outside)
    color = light_color(rng, config)
    flux = rng.uniform(*config.flux) * (diagonal / 512.0) ** 2
    f_number = rng.uniform(*config.f_number)
    focal_px = diagonal / (2 * np.tan(np.radians(rng.uniform(*config.field_of_view)) / 2))
    blades, rotation = int(rng.integers(*config.blades)), rng.uniform(0, 2 * np.pi)
    reflectance = rng.uniform(*config.reflectance, size=len(curvatures))
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = np.array([light_x, light_y]) - centre
    edges = (np.arange(width + 1) - 0.5, np.arange(height + 1) - 0.5)
    flare = np.zeros((height, width, 3), np.float32)
    ghost_centres = []
    main = path_matrix(curvatures, gaps, media, 1)
    if main[1, 0] >= 0:  # no positive power: mirror the prescription so the lens converges
        curvatures = -curvatures
        main = path_matrix(curvatures, gaps, media, 1)
    sensor = -main[0, 0] / main[1, 0]  # direct path focused: image height independent of pupil position
    focal_mm = main[0, 1] + sensor * main[1, 1]
    pupil = aperture_samples(rng, config.rays, blades, rotation)
    for i in range(len(curvatures)):
        for j in range(i + 1, len(curvatures)):
            energy = flux * reflectance[i] * reflectance[j]
            for channel in range(3):
                m = path_matrix(curvatures, gaps, media, channel, ghost=(i, j))
                spread = (m[0, 0] + sensor * m[1, 0]) * focal_px / (2 * f_number)  # ghost radius / pupil radius, px
                shift = (m[0, 1] + sensor * m[1, 1]) / focal_mm                    # ghost centre / light offset
                if abs(spread) > diagonal:  # spread over more than the frame: a negligible veil
                    continue
                xy = centre + shift * offset + spread * pupil
                hist, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=(edges[1], edges[0]))
                flare[..., channel] += (energy * color[channel] / len(pupil)) * hist.astype(np.float32)
                if channel == 1:
                    ghost_centres.append(tuple(centre + shift * offset))
    flare = ndimage.gaussian_filter(flare, sigma=(0.8, 0.8, 0))  # Monte-Carlo noise of the splats
    source_size = max(1.5, rng.uniform(*config.source_radius) * diagonal)
    disc_area = np.pi * source_size ** 2
    source = np.float32(flux / disc_area) * soft_disc(height, width, light_x, light_y, source_size)[..., None] * color
    flare = flare + source
    flared, label = composite(clean, flare, camera, rng, source_linear=source if config.keep_source_in_label else None)
    info = dict(family='raytrace', light_xy=(float(light_x), float(light_y)), light_in_frame=inside,
                gamma=camera.gamma, ghost_centres=ghost_centres, color=color.tolist(), label=label,
                flare_linear=flare)
    return flared, info
