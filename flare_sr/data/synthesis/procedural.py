"""The training flare family: a procedural flare built from named optical components.

``synthesize_flare(clean, rng, config)`` draws 1-3 lights (``sources.py``) and, per light, the
components below, each scaled by the light's inverse-square irradiance; the sum goes through the
flare's chromatic aberration and defocus (``optics.py``) and is added to the scene in linear light
through one random camera (``compositing.py``, ``sensor.py``). Every component is one function in
its own module, documented with its source:

=========  ==================  ==========================================================
name       module              what it is
=========  ==================  ==========================================================
glow       glare.glow          halo and core around each light
bleed      glare.light_bleed   wide, coloured, low-frequency glare
haze       glare.veiling_glare veiling glare: lifts blacks, lowers contrast
streaks    starburst           diffraction spikes of the aperture blades
scatter    scatter             streaks and mottled haze from scratches and dust on the glass
ghosts     ghosts              aperture-shaped reflections on the line through the centre
highlights glare.highlight_glare the same glare around the scene's own clipped highlights
source     sources.emitter     the light itself (kept in the label, Flare7K++)
=========  ==================  ==========================================================

Camera-level effects (probabilities in FlareConfig): ``chromatic`` (lateral colour of the flare),
``defocus`` (disc blur) and ``blur`` (Gaussian residual aberration), ``bloom`` (sensor overflow),
``exposure`` and ``tone`` (Zhou et al. ICCV 2023), ``noise``.
No component uses wave optics or ray tracing: those methods belong to the held-out families.
All randomness comes from the ``numpy.random.Generator`` passed in.
"""
import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from flare_sr.data.synthesis import glare, optics, scatter, sources
from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image, composite, sample_camera
from flare_sr.data.synthesis.geometry import offsets
from flare_sr.data.synthesis.ghosts import ghosts
from flare_sr.data.synthesis.options import draw, settings_from_options
from flare_sr.data.synthesis.starburst import starburst

COMPONENTS = ('glow', 'bleed', 'haze', 'streaks', 'scatter', 'ghosts', 'highlights', 'source')
CAMERA_EFFECTS = ('chromatic', 'defocus', 'blur', 'bloom', 'exposure', 'tone', 'noise')


@dataclass
class FlareConfig:
    """Settings of the training family. Tuples are ``(low, high)`` ranges sampled uniformly per flare
    (integer ranges are ``[low, high)``), or log-uniformly for the number ranges named in ``log_ranges``;
    ``<name>`` switches a component, ``<name>_prob`` is the chance it appears in one flare. Lengths are fractions of
    the image diagonal times ``frame_scale`` (pixels "at 512" for blur-like settings; ``frame_scale`` 2 gives a
    training crop the flare of a frame twice its size), intensities linear light with white = 1.
    """
    POSITIVE: ClassVar[tuple] = (  # they divide, or set a width or the band a light is drawn in: 0 is an error
        'gamma', 'frame_scale', 'source_outside', 'glow_radius', 'bleed_radius', 'haze_spread', 'streak_length',
        'streak_width', 'scratch_width', 'scratch_length', 'dust_spread', 'ghost_radius', 'highlight_radius',
        'defocus_radius', 'blur_sigma', 'bloom_length')  # LIMITS keeps the counts and distances above 0
    LIMITS: ClassVar[dict] = {
        'color_temperature': (1000.0, 40000.0),  # kelvin; Planck's law overflows far below 1000 K
        'light_distance': (1.0, 1000.0),         # the main light is at 1, the others farther
        'rgb_gain_jitter': (0.0, 0.9),           # gains 1 +- jitter must stay positive: light only adds
        'exposure_ev': (-20.0, 20.0),            # stops
        'tone_contrast': (-0.99, 1.99),          # tone_map rises strictly only for -1 < contrast < 2
        'ghost_position': (-10.0, 10.0),
        'light_count': (1, 65), 'aperture_blades': (1, 65), 'ghost_count': (0, 65),  # [low, high): 64 at most;
        'scratch_count': (1, 65),                                                      # each one costs a pass
        'frame_scale': (0.0, 100.0),
        'defocus_radius': (0.0, 64.0), 'blur_sigma': (0.0, 64.0), 'bloom_length': (0.0, 64.0),  # kernel sizes
    }
    gamma: tuple = (1.8, 2.2)                   # camera curve to linearise the sRGB scene
    frame_scale: tuple = (1.0, 1.0)             # the image is a crop of a frame this many times its diagonal
    source_in_frame_prob: float = 0.7           # main light in the frame, else up to source_outside beyond
    source_outside: float = 0.35                # fraction of the frame size
    light_count: tuple = (1, 4)                 # lights per frame, [low, high)
    light_distance: tuple = (1.2, 3.0)          # distance of the extra lights (main = 1): flare x 1/d^2
    color_temperature: tuple = (2500.0, 9000.0)  # kelvin of each light
    rgb_gain_jitter: float = 0.12               # white-balance error per channel
    intensity: tuple = (0.6, 1.4)               # global multiplier on the flare
    # ranges drawn log-uniformly (each factor of ten as likely), e.g. [haze_strength]: over a range of decades, weak
    # flare as often as strong (uniform on [0.003, 0.12] draws under 0.012 one time in 13, log-uniform one in 2.6)
    log_ranges: frozenset = frozenset()
    clean_prob: float = 0.0                     # share of flare-free samples (input = label = the clean image)
    # share of the other samples whose input is their label: the lights (kept in the label) through the camera, no
    # flare. Every light drawn otherwise brings a glow, so a net learns that a lamp means a veil around it and takes
    # one off flare-free night photos (docs/evaluation.md, round 17). Drawn only when above 0.
    source_only_prob: float = 0.0
    glow: bool = True
    glow_prob: float = 1.0
    glow_strength: tuple = (0.3, 1.2)
    glow_radius: tuple = (0.015, 0.06)
    glow_power: tuple = (1.6, 2.6)
    glow_core: tuple = (0.5, 2.0)
    bleed: bool = True
    bleed_prob: float = 0.5
    bleed_strength: tuple = (0.03, 0.25)
    bleed_radius: tuple = (0.1, 0.4)
    haze: bool = True
    haze_prob: float = 0.7
    haze_strength: tuple = (0.02, 0.12)
    haze_spread: tuple = (0.3, 1.0)
    streaks: bool = True
    streaks_prob: float = 0.7
    aperture_blades: tuple = (5, 9)             # [low, high): N blades -> N or 2N spikes
    streak_strength: tuple = (0.2, 0.8)
    streak_length: tuple = (0.08, 0.35)
    streak_width: tuple = (0.0015, 0.004)
    streak_angle_jitter: float = 0.04           # radians
    scatter: bool = True
    scatter_prob: float = 0.4
    scatter_strength: tuple = (0.05, 0.3)
    scratch_count: tuple = (1, 4)               # [low, high)
    scratch_width: tuple = (0.002, 0.006)
    scratch_length: tuple = (0.1, 0.4)
    dust_spread: tuple = (0.05, 0.2)
    ghosts: bool = True
    ghosts_prob: float = 0.8
    ghost_count: tuple = (2, 7)                 # [low, high)
    ghost_position: tuple = (-1.4, 0.7)         # t in centre + t * (light - centre)
    ghost_radius: tuple = (0.01, 0.07)
    ghost_strength: tuple = (0.05, 0.25)
    ghost_round_prob: float = 0.4
    ghost_chromatic: tuple = (0.0, 0.06)        # relative radius difference between R and B
    highlights: bool = True
    highlights_prob: float = 0.5
    highlight_level: tuple = (0.9, 0.99)        # sRGB level from which a scene pixel counts as clipped
    highlight_radiance: tuple = (1.5, 10.0)     # its true radiance over the clipped value
    highlight_strength: tuple = (0.03, 0.2)     # share of that radiance the lens scatters
    highlight_radius: tuple = (0.005, 0.03)     # narrowest of the four glare widths
    source: bool = True
    source_radius: tuple = (0.004, 0.015)
    source_brightness: tuple = (8.0, 30.0)      # far above 1: the core saturates
    keep_source_in_label: bool = True           # Flare7K++
    chromatic_prob: float = 0.5
    chromatic_shift: tuple = (0.002, 0.012)     # relative magnification difference R vs B
    defocus_prob: float = 0.3
    defocus_radius: tuple = (0.5, 2.0)          # pixels at a 512-pixel diagonal
    blur_prob: float = 0.5
    blur_sigma: tuple = (0.3, 1.5)              # pixels at a 512-pixel diagonal
    bloom_prob: float = 0.5
    bloom_strength: tuple = (0.2, 0.8)          # share of the excess charge that spills
    bloom_length: tuple = (1.0, 6.0)            # pixels at a 512-pixel diagonal
    exposure_prob: float = 0.5
    exposure_ev: tuple = (-0.7, 0.5)            # stops
    tone_prob: float = 0.5
    tone_contrast: tuple = (-0.3, 0.6)          # S-curve strength (tone_map)
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    @classmethod
    def from_options(cls, options, option_name='flare'):
        """From a YAML ``flare:`` block of overrides; FlareSRError names an unknown key or bad range."""
        return settings_from_options(cls, options, option_name)

    @classmethod
    def only(cls, *components, camera=False, **settings):
        """Just the named components, always present; with ``camera`` False every camera effect is off."""
        values = {name: name in components for name in COMPONENTS}
        values.update({f'{name}_prob': 1.0 for name in components if name != 'source'})
        if not camera:
            values.update({f'{effect}_prob': 0.0 for effect in CAMERA_EFFECTS})
            values['light_count'] = (1, 2)
        return cls(**{**values, **settings})


def _present(name, rng, config):
    """Whether component ``name`` appears in this flare (switch on, then its probability)."""
    on = getattr(config, name)
    probability = getattr(config, f'{name}_prob', 1.0)
    return bool(on) and rng.random() < probability


def frame_diagonal(height, width, rng, config):
    """The diagonal (pixels) that flare lengths are fractions of: the image's times a ``frame_scale`` draw."""
    return float(np.hypot(height, width)) * draw(rng, config, 'frame_scale')


def render_light(height, width, light, rng, config, blades, diagonal):
    """Layers (name -> HxWx3 float32, linear light) of one light, scaled by its inverse-square irradiance."""
    dx, dy, radius = offsets(height, width, light['x'], light['y'])
    color = light_color(rng, config)
    scale = np.float32(light['scale'])
    layers = {}
    if _present('glow', rng, config):
        layers['glow'] = glare.glow(radius, rng, config, diagonal)[..., None] * color
    if _present('bleed', rng, config):
        layers['bleed'] = glare.light_bleed(radius, rng, config, diagonal)[..., None] * glare.bleed_tint(rng, color)
    if _present('haze', rng, config):
        cast = color * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
        layers['haze'] = glare.veiling_glare(radius, rng, config, diagonal)[..., None] * cast
    if _present('streaks', rng, config):
        layers['streaks'] = starburst(dx, dy, radius, rng, config, diagonal, blades)[..., None] * color
    if _present('scatter', rng, config):
        texture = scatter.scratch_streaks(dx, dy, radius, rng, config, diagonal)
        layers['scatter'] = (texture + scatter.dust_haze(radius, rng, config, diagonal))[..., None] * color
    light['ghost_positions'] = []
    if _present('ghosts', rng, config):
        layer, light['ghost_positions'] = ghosts(height, width, (light['x'], light['y']), rng, config, diagonal, blades)
        layers['ghosts'] = layer * color
    if config.source:
        layers['source'] = sources.emitter(radius, rng, config, diagonal, light['distance'])[..., None] * color
    light['color'] = color.tolist()
    return {name: layer * scale for name, layer in layers.items()}


def render_procedural_flare(height, width, rng, config=None, diagonal=None):
    """(layers, params): name -> HxWx3 float32 sum over the lights, and the lights (positions, distances).

    ``diagonal``: the frame diagonal in pixels (default: drawn by ``frame_diagonal``).
    """
    config = FlareConfig.from_options(config)
    diagonal = frame_diagonal(height, width, rng, config) if diagonal is None else diagonal
    lights = sources.sample_lights(rng, height, width, config)
    blades = int(rng.integers(*config.aperture_blades))  # one lens: one aperture for every light
    layers = {}
    for light in lights:
        light['layers'] = render_light(height, width, light, rng, config, blades, diagonal)
        for name, layer in light['layers'].items():
            layers[name] = layers[name] + layer if name in layers else layer
    main = lights[0]
    params = dict(light_xy=(main['x'], main['y']), light_in_frame=main['in_frame'], blades=blades,
                  color=main['color'], ghost_positions=main['ghost_positions'], lights=lights)
    return layers, params


def synthesize_flare(clean_rgb01, rng, config=None):
    """Add a procedural flare to a clean HxWx3 float image in [0, 1]; returns ``(flared, info)``.

    ``flared`` is HxWx3 float32 in [0, 1]. ``info['label']`` is the matching target (the clean image
    through the same camera, plus the light sources when ``keep_source_in_label``);
    ``info['flare_linear']`` the added light before the camera, ``info['components']`` the names
    present, ``info['lights']`` each light's position, distance, scale and layers. A ``clean_prob`` sample is the
    clean image twice; a ``source_only_prob`` sample is its label twice (components ``['source']``, or none when
    ``source`` is off or not kept in the label).
    Raises FlareSRError for an image that is not HxWx3 or a bad config.
    """
    config = FlareConfig.from_options(config)
    clean = check_image(clean_rgb01)
    if config.clean_prob and rng.random() < config.clean_prob:  # real photos are often flare-free: learn to keep them
        return clean.copy(), dict(family='procedural', components=[], effects=[], lights=[], label=clean,
                                  flare_linear=np.zeros_like(clean))
    source_only = bool(config.source_only_prob) and rng.random() < config.source_only_prob
    height, width = clean.shape[:2]
    diagonal = frame_diagonal(height, width, rng, config)
    camera = sample_camera(rng, config, diagonal)
    layers, params = render_procedural_flare(height, width, rng, config, diagonal)
    if _present('highlights', rng, config):
        highlight = glare.highlight_glare(cv2.pow(clean, camera.gamma), clean, rng, config, diagonal)
        if highlight.any():  # a scene without highlights has none to glare: not a component of this flare
            layers['highlights'] = highlight
    intensity = draw(rng, config, 'intensity')
    source = layers.pop('source', None)
    flare = np.zeros_like(clean)
    for layer in layers.values():
        flare += layer
    flare *= np.float32(intensity)
    effects = []
    if rng.random() < config.chromatic_prob:
        flare = optics.chromatic_aberration(flare, draw(rng, config, 'chromatic_shift'))
        effects.append('chromatic')
    if rng.random() < config.defocus_prob:
        flare = optics.defocus(flare, draw(rng, config, 'defocus_radius') * diagonal / 512.0)
        effects.append('defocus')
    if rng.random() < config.blur_prob:  # residual aberration of the flare itself
        sigma = draw(rng, config, 'blur_sigma') * diagonal / 512.0
        flare = cv2.GaussianBlur(flare, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        effects.append('blur')
    if source is not None:
        flare += source
    label_source = source if (source is not None and config.keep_source_in_label) else None
    flared, label = composite(clean, flare, camera, rng, source_linear=label_source)
    components = sorted(layers) + (['source'] if source is not None else [])
    if source_only:  # the draws of a flared sample, so that the lights and the camera are those of one
        kept = label_source is not None
        flared, effects = label.copy(), []
        components, flare = (['source'], label_source) if kept else ([], np.zeros_like(clean))
    info = dict(params, family='procedural', components=components, effects=effects,
                camera=dataclasses.asdict(camera), gamma=camera.gamma, intensity=float(intensity), label=label,
                flare_linear=flare)
    return flared, info
