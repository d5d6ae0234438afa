"""Diffraction starburst: one spike per aperture edge direction.

A straight aperture edge diffracts light into a line perpendicular to it (Fraunhofer diffraction of
a half-plane; Hecht, "Optics", ch. 10). N blades give N spikes when N is even and 2N when N is odd,
because opposite edges are then not parallel. Spikes are drawn in the image plane as a Gaussian
line profile with a ``1 / (1 + r/L)^2`` falloff: no wave-optics computation is involved.
"""
import numpy as np

from flare_sr.data.synthesis.options import draw


def spike_count(blades):
    """Spikes of an N-blade aperture: N for even N, 2N for odd N."""
    return blades if blades % 2 == 0 else 2 * blades


def starburst(dx, dy, radius, rng, config, diagonal, blades):
    """HxW float32 spikes around the light (offsets ``dx``, ``dy``, ``radius`` in pixels), angles jittered."""
    count = spike_count(blades)
    base = rng.uniform(0, 2 * np.pi)
    step = 2 * np.pi / count
    jitter = rng.normal(0.0, config.streak_angle_jitter, size=count)
    amplitude = rng.uniform(0.5, 1.0, size=count).astype(np.float32)
    length = draw(rng, config, 'streak_length') * diagonal
    width = max(0.7, draw(rng, config, 'streak_width') * diagonal)
    strength = draw(rng, config, 'streak_strength')
    angle = np.arctan2(dy, dx) - np.float32(base)
    nearest = np.round(angle / np.float32(step)).astype(np.int32) % count
    spike_angle = (nearest * step + jitter[nearest]).astype(np.float32)
    offset = np.mod(angle - spike_angle + np.float32(np.pi), np.float32(2 * np.pi)) - np.float32(np.pi)
    distance_to_spike = radius * np.abs(np.sin(offset))
    profile = np.exp(np.float32(-0.5 / width ** 2) * distance_to_spike ** 2) * (np.abs(offset) < np.pi / 2)
    falloff = 1.0 / (1.0 + radius * np.float32(1.0 / length)) ** 2
    return (np.float32(strength) * amplitude[nearest] * profile * falloff).astype(np.float32)
