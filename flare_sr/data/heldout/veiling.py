"""Held-out family ``veiling``: broad veiling glare, the whole scene's light spread by the CIE glare spread
function; evaluation only.

Veiling glare (light bleed) is the smooth veil that wide-angle scatter lays over a large part of the frame,
lowering contrast around lights and highlights. Its angular spread is taken from the CIE General Disability
Glare equation (CIE 146:2002, "CIE equations for disability glare", CIE Collection on Glare 2002; Vos and
van den Berg, CIE 135/1 1999; Vos, Clin Exp Optom 86(6):363-370, 2003), the equivalent veiling luminance
per unit glare illuminance at the eye, sr^-1, for a glare angle ``theta`` in degrees (valid 0.1-100 deg)::

    L_veil / E_glare = 10 / theta^3 + (5 / theta^2 + 0.1 p / theta) (1 + (A / 62.5)^4) + 0.0025 p

with age ``A`` in years and eye pigmentation ``p`` (0 dark, 0.5 brown, 1 green, 1.2 light blue). Here a pixel's
angle is its distance times a random field of view over the diagonal; the whole linear scene (every pixel,
clipped highlights boosted, the scene mirrored beyond the frame) plus one or two bright lights, sometimes outside
the frame, is convolved with this kernel normalised to unit energy over its support, and a random scatter
fraction of that is added. No parametric glow or haze profile of ``flare_sr.data.synthesis`` is used.
The lights stay in the label (Flare7K++'s convention); the veil does not.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from flare_sr.data.heldout.psf import fft_convolve
from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image, composite, sample_camera
from flare_sr.data.synthesis.geometry import sample_light_position, soft_disc
from flare_sr.data.synthesis.options import settings_from_options

SUBSAMPLES = 4  # per work pixel and axis when the kernel is integrated over pixels (even: none hits theta = 0)


@dataclass
class VeilingConfig:
    """Ranges of the veiling glare; lengths as fractions of the image diagonal, radiance relative to white."""
    gamma: tuple = (1.8, 2.2)
    field_of_view: tuple = (40.0, 80.0)  # degrees across the diagonal: sets the angle of a pixel
    age: tuple = (20.0, 70.0)            # years, the GSF's age factor (1 + (A / 62.5)^4)
    pigmentation: tuple = (0.0, 1.2)     # p of the GSF: its wide-angle 1/theta and constant terms
    scatter_fraction: tuple = (0.02, 0.08)  # share of the light spread into the veil (lens veiling glare: a few %)
    source_in_frame_prob: float = 0.85
    source_outside: float = 0.25         # an outside light lies this far beyond the edge at most (frame fractions)
    second_source_prob: float = 0.4
    second_in_frame_prob: float = 0.5    # the second light's chance to lie in the frame
    color_temperature: tuple = (2500.0, 9000.0)
    rgb_gain_jitter: float = 0.12
    exposure: tuple = (400.0, 5000.0)    # radiance of an added light
    source_radius: tuple = (0.004, 0.015)
    scene_threshold: float = 0.97        # sRGB level above which a scene pixel is taken as clipped
    scene_highlight_gain: tuple = (1.0, 4.0)  # its true radiance, unknown behind the clipping
    work_size: int = 128                 # longest side at which the veil is convolved (then upsampled)
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    @classmethod
    def from_options(cls, options, option_name='veiling'):
        return settings_from_options(cls, options, option_name)


def glare_spread_function(theta_deg, age, pigmentation):
    """CIE 146:2002 General Disability Glare equation, ``L_veil / E_glare`` in sr^-1 (module docstring).

    ``theta_deg``: glare angle(s) in degrees, valid 0.1-100 (not clipped here); ``age`` in years;
    ``pigmentation`` p >= 0. Returns an array shaped like ``theta_deg``.
    """
    theta = np.asarray(theta_deg, dtype=np.float64)
    age_factor = 1.0 + (age / 62.5) ** 4
    return 10.0 / theta ** 3 + (5.0 / theta ** 2 + 0.1 * pigmentation / theta) * age_factor + 0.0025 * pigmentation


def veil_kernel(half, deg_per_pixel, age, pigmentation):
    """(2 half + 1)^2 float32 kernel of unit sum: the GSF averaged over each pixel
    (``SUBSAMPLES``^2 points), clamped below at its 0.1 deg validity, with the centre pixel zero (the light's
    own pixel is the scene, not the veil)."""
    step = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    offsets = (np.arange(-half, half + 1)[:, None] + step[None, :]).ravel()
    theta = np.maximum(np.hypot(offsets[:, None], offsets[None, :]) * deg_per_pixel, 0.1)
    gsf = glare_spread_function(theta, age, pigmentation)
    kernel = gsf.reshape(2 * half + 1, SUBSAMPLES, 2 * half + 1, SUBSAMPLES).mean(axis=(1, 3))
    kernel[half, half] = 0.0
    return (kernel / kernel.sum()).astype(np.float32)


def scene_radiance(clean, gamma, threshold, highlight_gain, pad):
    """Linear radiance of the clean photo (HxWx3 sRGB), clipped pixels times ``highlight_gain``, mirrored
    ``pad`` pixels beyond each edge: the scene around the frame also scatters into it."""
    linear = cv2.pow(clean, gamma)
    linear = linear * np.where(clean.max(axis=2, keepdims=True) >= threshold, np.float32(highlight_gain), 1.0)
    return cv2.copyMakeBorder(linear.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)


def veiling_flare(clean_rgb01, rng, config=None):
    """Held-out veiling glare; same contract as ``synthesize_flare``: ``(flared, info)``, HxWx3 float32 in [0, 1].

    The veil is convolved at ``work_size`` (longest side; the kernel is smooth beyond its centre pixel) in the
    Fourier domain and upsampled; the kernel reaches from any point of the padded canvas over the whole frame.
    ``info`` adds ``field_of_view`` (deg), ``age``, ``pigmentation``, ``scatter_fraction`` and ``lights``
    (list of (x, y, in_frame)) to the keys of the other families.
    """
    config = VeilingConfig.from_options(config)
    clean = check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    camera = sample_camera(rng, config, diagonal)
    field_of_view = rng.uniform(*config.field_of_view)
    age, pigmentation = rng.uniform(*config.age), rng.uniform(*config.pigmentation)
    scatter = rng.uniform(*config.scatter_fraction)
    highlight_gain = rng.uniform(*config.scene_highlight_gain)

    lights = []
    for index in range(2 if rng.random() < config.second_source_prob else 1):
        in_frame_prob = config.source_in_frame_prob if index == 0 else config.second_in_frame_prob
        x, y, inside = sample_light_position(rng, height, width, in_frame_prob, config.source_outside)
        lights.append((x, y, inside, light_color(rng, config),
                       rng.uniform(*config.exposure), max(1.5, rng.uniform(*config.source_radius) * diagonal)))

    work = min(1.0, config.work_size / max(height, width))
    work_h, work_w = max(1, round(height * work)), max(1, round(width * work))
    scale_x, scale_y = work_w / width, work_h / height
    pad = int(np.ceil(config.source_outside * max(work_h, work_w))) + 2
    work_clean = clean if work == 1.0 else cv2.resize(clean, (work_w, work_h), interpolation=cv2.INTER_AREA)
    radiance = scene_radiance(work_clean, camera.gamma, config.scene_threshold, highlight_gain, pad)
    for x, y, _, color, exposure, radius in lights:
        disc = soft_disc(work_h, work_w, (x + 0.5) * scale_x - 0.5, (y + 0.5) * scale_y - 0.5, radius * scale_x, pad)
        radiance += np.float32(exposure) * disc[..., None] * color
    deg_per_pixel = field_of_view / float(np.hypot(work_h, work_w))
    kernel = veil_kernel(max(work_h, work_w) + pad, deg_per_pixel, age, pigmentation)
    veil = np.float32(scatter) * fft_convolve(radiance, kernel[..., None])[pad:pad + work_h, pad:pad + work_w]
    if work < 1.0:
        veil = cv2.resize(veil, (width, height), interpolation=cv2.INTER_LINEAR)

    sources = np.zeros_like(clean)
    for x, y, _, color, exposure, radius in lights:
        sources += np.float32(exposure) * soft_disc(height, width, x, y, radius)[..., None] * color
    flare = veil + sources
    flared, label = composite(clean, flare, camera, rng, source_linear=sources)
    x, y, inside, color, exposure, _ = lights[0]
    info = dict(family='veiling', light_xy=(float(x), float(y)), light_in_frame=inside, gamma=camera.gamma,
                exposure=float(exposure), color=color.tolist(), label=label, flare_linear=flare,
                field_of_view=float(field_of_view), age=float(age), pigmentation=float(pigmentation),
                scatter_fraction=float(scatter), lights=[(float(lx), float(ly), li) for lx, ly, li, *_ in lights])
    return flared, info
