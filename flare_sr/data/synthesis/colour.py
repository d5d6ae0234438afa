"""Colour of a light: blackbody temperature (Planck's law) times white-balance gains."""
import numpy as np

from flare_sr.data.synthesis.options import draw


def blackbody_rgb(kelvin):
    """Relative RGB (3,) float32 of a blackbody at ``kelvin``, Planck's law sampled at 610/550/465 nm.

    Normalised so the largest channel is 1; white (all ones) at 6500 K.
    """
    wavelengths = np.array([610e-9, 550e-9, 465e-9])

    def planck(temperature):
        return 1.0 / (wavelengths ** 5 * np.expm1(0.014388 / (wavelengths * temperature)))

    rgb = planck(kelvin) / planck(6500.0)
    return (rgb / rgb.max()).astype(np.float32)


def light_color(rng, settings):
    """(3,) float32: a blackbody colour in ``settings.color_temperature`` kelvin (a range, drawn by ``draw``) times
    gains in 1 +- ``settings.rgb_gain_jitter``."""
    kelvin = draw(rng, settings, 'color_temperature')
    gains = 1.0 + rng.uniform(-settings.rgb_gain_jitter, settings.rgb_gain_jitter, size=3)
    return (blackbody_rgb(kelvin) * gains).astype(np.float32)
