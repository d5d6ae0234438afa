"""Light sources: how many, where, how bright, and the emitter disc itself.

Flare7K (Dai et al., NeurIPS 2022) renders several lights per frame and dims the flare of the
farther ones. A point light of intensity I at distance d gives irradiance I / d^2 on the lens
(inverse-square law), so each light's whole flare is scaled by ``1 / d^2`` (d = 1 for the main
light). Its emitter disc shrinks as ``1 / d``. The flare's *shape* (glow width, spikes, ghosts)
belongs to the lens and does not change with distance.
"""
import numpy as np

from flare_sr.data.synthesis.geometry import sample_light_position
from flare_sr.data.synthesis.options import draw


def inverse_square(distance):
    """Relative irradiance of a light at ``distance`` (>= 1) from the lens, 1 at distance 1."""
    return 1.0 / float(distance) ** 2


def sample_lights(rng, height, width, config):
    """[dict(x, y, in_frame, distance, scale)]: the main light (distance 1) plus ``light_count - 1`` dimmer ones.

    Extra lights lie in the frame; their distances are U(``light_distance``) and ``scale`` is the
    inverse-square irradiance.
    """
    lights = []
    count = int(rng.integers(*config.light_count))
    for index in range(max(1, count)):
        if index == 0:
            x, y, inside = sample_light_position(rng, height, width, config.source_in_frame_prob,
                                                 config.source_outside)
            distance = 1.0
        else:
            x, y, inside = sample_light_position(rng, height, width, 1.0, 0.0)
            distance = draw(rng, config, 'light_distance')
        lights.append(dict(x=float(x), y=float(y), in_frame=inside, distance=distance,
                           scale=inverse_square(distance)))
    return lights


def emitter(radius, rng, config, diagonal, distance=1.0):
    """HxW float32 disc of the emitter, far brighter than white (``source_brightness``) so it clips.

    Radius ``source_radius`` x diagonal / ``distance`` pixels (at least 1.5).
    """
    size = max(1.5, draw(rng, config, 'source_radius') * diagonal / distance)
    brightness = draw(rng, config, 'source_brightness')
    return (brightness * np.clip(size - radius + 0.5, 0.0, 1.0)).astype(np.float32)
