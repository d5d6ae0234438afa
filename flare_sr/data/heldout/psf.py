"""Held-out family ``psf``: flare from Fourier optics (Wu et al., "How to Train Neural Networks for
Flare Removal", ICCV 2021, sec. 3.1), evaluation only.

A pupil with dust (opaque discs) and scratches (opaque lines), a defocus and a smooth random phase
(polishing marks) is propagated to a point-spread function, ``PSF = |FFT(pupil e^{i phase})|^2``,
at 650/550/450 nm; the scene's near-saturated pixels plus one added light are convolved with it.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from flare_sr.data.synthesis.colour import light_color
from flare_sr.data.synthesis.compositing import check_image, composite, sample_camera
from flare_sr.data.synthesis.geometry import sample_light_position, soft_disc
from flare_sr.data.synthesis.options import settings_from_options

WAVELENGTHS_NM = (650.0, 550.0, 450.0)  # R, G, B


@dataclass
class PSFConfig:
    """Ranges for the Fourier-optics flare. Lengths in pupil radii or fractions of the diagonal."""
    gamma: tuple = (1.8, 2.2)
    source_in_frame_prob: float = 0.85   # calibrated to real flare (statistics.REAL_FLARE_REFERENCE;
    source_outside: float = 0.2          # docs/evaluation.md): was 0.7, 0.35, (3e2, 3e3), (1, 8)
    color_temperature: tuple = (2500.0, 9000.0)
    rgb_gain_jitter: float = 0.12
    grid: int = 256                      # FFT size of the pupil plane
    work_size: int = 512                 # longest side at which the PSF is convolved (larger: upsampled)
    pupil_radius: tuple = (20.0, 40.0)   # samples at the green wavelength: sets the PSF core width
    dust_count: tuple = (5, 40)          # integer range
    dust_radius: tuple = (0.01, 0.08)    # pupil radii
    scratch_count: tuple = (1, 6)        # integer range
    scratch_width: tuple = (0.005, 0.02)  # pupil radii
    defocus_waves: tuple = (0.0, 1.5)    # peak defocus phase at the green wavelength
    roughness_waves: tuple = (0.0, 0.08)  # smooth random phase: broad scatter halo
    exposure: tuple = (45.0, 200.0)      # radiance of the added source relative to white
    source_radius: tuple = (0.003, 0.012)
    scene_threshold: float = 0.97        # sRGB level above which scene pixels also flare
    scene_highlight_gain: tuple = (1.0, 2.0)  # their true radiance, unknown behind the clipping
    keep_source_in_label: bool = True
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    @classmethod
    def from_options(cls, options, option_name='psf'):
        return settings_from_options(cls, options, option_name)


def make_pupil(rng, config):
    """Transmission ``f(u, v)`` in pupil-radius units: the unit disc minus dust discs and scratch lines."""
    dust = [(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(*config.dust_radius))
            for _ in range(int(rng.integers(*config.dust_count)))]
    scratches = [(rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), rng.uniform(0, np.pi),
                  rng.uniform(0.3, 1.5), rng.uniform(*config.scratch_width))
                 for _ in range(int(rng.integers(*config.scratch_count)))]

    def transmission(u, v):
        open_ = (u ** 2 + v ** 2 <= 1.0).astype(np.float32)
        for cx, cy, radius in dust:
            open_[(u - cx) ** 2 + (v - cy) ** 2 <= radius ** 2] = 0.0
        for cx, cy, angle, length, width in scratches:
            along = (u - cx) * np.cos(angle) + (v - cy) * np.sin(angle)
            across = -(u - cx) * np.sin(angle) + (v - cy) * np.cos(angle)
            open_[(np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)] = 0.0
        return open_

    return transmission


def smooth_phase_screen(rng, grid, waves):
    """Low-frequency random wavefront error of ``waves`` RMS (grid x grid float32)."""
    noise = rng.standard_normal((grid, grid)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=grid / 32.0, borderType=cv2.BORDER_REFLECT)
    return waves * noise / (noise.std() + 1e-8)


def point_spread_rgb(rng, config):
    """grid x grid x 3 float32 PSF at three wavelengths, each of unit energy.

    A longer wavelength diffracts wider: its pupil is sampled with a proportionally smaller radius on
    the same grid, which scales its PSF by lambda / lambda_green; the phase in waves shrinks as 1/lambda.
    """
    grid = int(config.grid)
    transmission = make_pupil(rng, config)
    radius_green = rng.uniform(*config.pupil_radius)
    defocus = rng.uniform(*config.defocus_waves)
    screen = smooth_phase_screen(rng, grid, rng.uniform(*config.roughness_waves))
    coords = np.arange(grid, dtype=np.float32) - grid / 2
    psfs = []
    for wavelength in WAVELENGTHS_NM:
        ratio = WAVELENGTHS_NM[1] / wavelength
        radius = radius_green * ratio
        v, u = np.meshgrid(coords / radius, coords / radius, indexing='ij')
        phase = 2 * np.pi * ratio * (defocus * (u ** 2 + v ** 2) + screen)
        field = transmission(u, v) * np.exp(1j * phase)
        psf = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(field)))) ** 2
        psfs.append(psf / psf.sum())
    return np.stack(psfs, axis=-1).astype(np.float32)


def radial_taper(size):
    """Raised-cosine window over the inscribed disc: the finite PSF grid must not print a square edge."""
    coords = np.arange(size, dtype=np.float32) - (size - 1) / 2
    radius = np.hypot(coords[:, None], coords[None, :]) / (size / 2)
    return (0.5 + 0.5 * np.cos(np.pi * np.clip(radius, 0.0, 1.0))).astype(np.float32)


def fft_convolve(image, kernel):
    """Linear (not circular) convolution of HxWx3 with a centred kxkx3 kernel, same-size output, >= 0."""
    height, width = image.shape[:2]
    size = kernel.shape[0]
    shape = (height + size, width + size)
    spectrum = np.fft.rfft2(image, s=shape, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape, axes=(0, 1))
    full = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    half = size // 2
    return np.maximum(full[half:half + height, half:half + width], 0.0).astype(np.float32)


def psf_flare(clean_rgb01, rng, config=None):
    """Held-out Fourier-optics flare; same contract as ``synthesize_flare``: ``(flared, info)``.

    The PSF is resized with the image diagonal so the flare covers the same fraction of the frame at
    every resolution. Above ``work_size`` the convolution runs on an area-downscaled copy and the
    flare is upsampled (radiance per pixel is kept; a full-size convolution takes ~30 s per photo).
    """
    config = PSFConfig.from_options(config)
    clean = check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    camera = sample_camera(rng, config, diagonal)
    psf = point_spread_rgb(rng, config)
    work = min(1.0, config.work_size / max(height, width))
    work_h, work_w = max(1, round(height * work)), max(1, round(width * work))
    size = int(round(config.grid * np.hypot(work_h, work_w) / 320.0)) | 1
    psf = cv2.resize(psf, (size, size), interpolation=cv2.INTER_LINEAR)
    psf = np.maximum(psf, 0) * radial_taper(size)[..., None]
    psf /= psf.sum(axis=(0, 1), keepdims=True)

    light_x, light_y, inside = sample_light_position(rng, height, width, config.source_in_frame_prob,
                                                     config.source_outside)
    color = light_color(rng, config)
    exposure = rng.uniform(*config.exposure)
    source_size = max(1.5, rng.uniform(*config.source_radius) * diagonal)
    highlight_gain = rng.uniform(*config.scene_highlight_gain)

    pad = size // 2
    scale_x, scale_y = work_w / width, work_h / height
    disc = soft_disc(work_h, work_w, (light_x + 0.5) * scale_x - 0.5, (light_y + 0.5) * scale_y - 0.5,
                     source_size * scale_x, pad)
    sources = np.float32(exposure) * disc[..., None] * color
    work_clean = clean if work == 1.0 else cv2.resize(clean, (work_w, work_h), interpolation=cv2.INTER_AREA)
    bright = (work_clean.max(axis=2, keepdims=True) >= config.scene_threshold) * cv2.pow(work_clean, camera.gamma)
    sources[pad:pad + work_h, pad:pad + work_w] += np.float32(highlight_gain) * bright
    flare = fft_convolve(sources, psf)[pad:pad + work_h, pad:pad + work_w]
    if work < 1.0:
        flare = cv2.resize(flare, (width, height), interpolation=cv2.INTER_LINEAR)
    label_source = None
    if config.keep_source_in_label:
        label_source = np.float32(exposure) * soft_disc(height, width, light_x, light_y, source_size)[..., None] * color
    flared, label = composite(clean, flare, camera, rng, source_linear=label_source)
    info = dict(family='psf', light_xy=(float(light_x), float(light_y)), light_in_frame=inside,
                gamma=camera.gamma, exposure=float(exposure), color=color.tolist(), label=label, flare_linear=flare)
    return flared, info
