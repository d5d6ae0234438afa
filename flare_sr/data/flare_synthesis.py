"""Synthetic lens flare, composited in linear light as Wu et al. (ICCV 2021) and Flare7K do.

Two families:

* ``synthesize_flare`` -- the *training* family: a procedural flare built from named, physically
  motivated components (glow, diffraction streaks, aperture ghosts, veiling haze, the light source).
* ``psf_flare`` -- a *held-out* family for honest evaluation only: Fourier optics (Wu et al.'s
  scattering model). A pupil with dust and scratches is propagated to a point-spread function at
  three wavelengths and convolved with the scene's light sources. It is never used by
  ``SyntheticFlareDataset``; the demo's *test* inputs use it so that the demo measures
  generalisation to flare the training synthesis never produced.

Both composite the same way: the sRGB scene is linearised with a random gamma U(1.8, 2.2), the
flare (in linear light, with a colour temperature and RGB gains) is *added*, sensor noise is
optional, then the sum is clipped and gamma-encoded back. Light only ever adds, as in a camera.
All randomness comes from the ``numpy.random.Generator`` passed in, so a result is a pure
function of (image, generator state, config).
"""
import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from flare_sr.errors import FlareSRError


@dataclass
class FlareConfig:
    """Ranges ``(low, high)`` sampled uniformly per flare; booleans switch components on and off.

    Lengths are fractions of the image diagonal, so a flare looks the same at any resolution.
    Intensities are in linear light, where a white scene pixel is 1.0.
    """
    gamma: tuple = (1.8, 2.2)
    source_in_frame_prob: float = 0.7          # otherwise the light lies up to `source_outside` beyond a border
    source_outside: float = 0.35               # fraction of the frame size
    color_temperature: tuple = (2500.0, 9000.0)  # kelvin of the light (blackbody colour)
    rgb_gain_jitter: float = 0.12              # each channel gain in 1 +- this
    intensity: tuple = (0.6, 1.4)              # global multiplier on the whole flare
    glow: bool = True
    glow_strength: tuple = (0.3, 1.2)
    glow_radius: tuple = (0.015, 0.06)          # halo scale r0 of 1 / (1 + (r/r0)^p)
    glow_power: tuple = (1.6, 2.6)
    glow_core: tuple = (0.5, 2.0)              # Gaussian core brightness
    streaks: bool = True
    aperture_blades: tuple = (5, 9)            # integer range [low, high): N blades -> N or 2N spikes
    streak_strength: tuple = (0.2, 0.8)
    streak_length: tuple = (0.08, 0.35)        # decay length of the spikes
    streak_width: tuple = (0.0015, 0.004)      # spike half-width
    streak_angle_jitter: float = 0.04          # radians, per spike
    ghosts: bool = True
    ghost_count: tuple = (2, 7)                # integer range [low, high)
    ghost_position: tuple = (-1.4, 0.7)        # t in centre + t * (light - centre)
    ghost_radius: tuple = (0.01, 0.07)
    ghost_strength: tuple = (0.05, 0.25)
    ghost_round_prob: float = 0.4              # disc instead of the blade polygon
    ghost_chromatic: tuple = (0.0, 0.06)       # relative radius difference between R and B
    haze: bool = True
    haze_strength: tuple = (0.02, 0.12)
    haze_spread: tuple = (0.3, 1.0)            # width of the broad glare around the light
    source: bool = True
    source_radius: tuple = (0.004, 0.015)
    source_brightness: tuple = (8.0, 30.0)     # far above 1: the core saturates to white
    keep_source_in_label: bool = True          # Flare7K++: the light source belongs to the scene
    blur_prob: float = 0.5
    blur_sigma: tuple = (0.3, 1.5)             # pixels at a 512-pixel diagonal, scaled with size
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)           # variance per unit of linear signal
    read_noise: tuple = (0.0, 0.006)           # standard deviation

    @classmethod
    def from_options(cls, options, option_name='flare'):
        """Build from a dict of overrides (YAML ``flare:`` block); unknown keys name the option."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, dict):
            raise FlareSRError(f'option {option_name}: expected a mapping of flare settings, got {options!r}')
        known = {field.name: field for field in dataclasses.fields(cls)}
        values = {}
        for key, value in options.items():
            if key not in known:
                raise FlareSRError(f'option {option_name}.{key}: unknown flare setting '
                                   f'(known: {", ".join(sorted(known))})')
            default = known[key].default
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)) or len(value) != 2 or value[0] > value[1]:
                    raise FlareSRError(f'option {option_name}.{key}: expected [low, high] with low <= high, '
                                       f'got {value!r}')
                value = tuple(value)
            values[key] = value
        return cls(**values)


# ----------------------------------------------------------------------------------------------
# Shared colour and compositing helpers
# ----------------------------------------------------------------------------------------------

def blackbody_rgb(kelvin):
    """Relative RGB of a blackbody (Planck's law sampled at 610/550/465 nm), white at 6500 K."""
    wavelengths = np.array([610e-9, 550e-9, 465e-9])

    def planck(temperature):
        return 1.0 / (wavelengths ** 5 * np.expm1(0.014388 / (wavelengths * temperature)))

    rgb = planck(kelvin) / planck(6500.0)
    return (rgb / rgb.max()).astype(np.float32)


def light_color(rng, config):
    """Colour of one light: blackbody temperature times small per-channel gains (white balance error)."""
    kelvin = rng.uniform(*config.color_temperature)
    gains = 1.0 + rng.uniform(-config.rgb_gain_jitter, config.rgb_gain_jitter, size=3)
    return (blackbody_rgb(kelvin) * gains).astype(np.float32)


def _check_image(clean_rgb01):
    img = np.asarray(clean_rgb01)
    if img.ndim != 3 or img.shape[2] != 3:
        raise FlareSRError(f'flare synthesis needs an HxWx3 RGB image, got shape {img.shape}')
    return np.clip(img.astype(np.float32, copy=False), 0.0, 1.0)


def add_sensor_noise(linear, rng, config):
    """Shot (signal-dependent) plus read (constant) Gaussian noise, applied with ``noise_prob``."""
    if rng.random() >= config.noise_prob:
        return linear, 0.0, 0.0
    shot = rng.uniform(*config.shot_noise)
    read = rng.uniform(*config.read_noise)
    sigma = np.sqrt(shot * np.maximum(linear, 0.0) + read ** 2)
    return linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32), shot, read


def composite(clean_rgb01, flare_linear, gamma, rng, config, source_linear=None):
    """Input and label in sRGB: scene and flare added in linear light, clipped, gamma-encoded.

    The label is the clean scene, plus the light source itself when one is given (Flare7K++ keeps
    light sources in the target: they are part of the scene, not of the flare).
    """
    scene_linear = cv2.pow(clean_rgb01, gamma)
    flared_linear, *noise = add_sensor_noise(scene_linear + flare_linear, rng, config)
    flared = cv2.pow(np.clip(flared_linear, 0.0, 1.0), 1.0 / gamma)
    if source_linear is None:
        label = clean_rgb01
    else:
        label = cv2.pow(np.clip(scene_linear + source_linear, 0.0, 1.0), 1.0 / gamma)
    return flared.astype(np.float32), label.astype(np.float32), noise


def _sample_light_position(rng, height, width, config):
    """(x, y) in pixels; outside the frame with probability 1 - source_in_frame_prob."""
    if rng.random() < config.source_in_frame_prob:
        return rng.uniform(0, width - 1), rng.uniform(0, height - 1), True
    margin_x, margin_y = config.source_outside * width, config.source_outside * height
    while True:  # uniform in the enlarged frame, rejecting points inside it
        x = rng.uniform(-margin_x, width - 1 + margin_x)
        y = rng.uniform(-margin_y, height - 1 + margin_y)
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            return x, y, False


# ----------------------------------------------------------------------------------------------
# Procedural (training) family: one function per optical effect, each returns an HxW or HxWx3 map
# ----------------------------------------------------------------------------------------------

def glow(radius, rng, config, diagonal):
    """Scattering halo: a heavy 1/r^p tail (veiling by lens elements) plus a Gaussian core (blooming)."""
    r0 = rng.uniform(*config.glow_radius) * diagonal
    power = rng.uniform(*config.glow_power)
    halo = rng.uniform(*config.glow_strength) / (1.0 + (radius / r0) ** power)
    core_sigma = 0.6 * r0
    core = rng.uniform(*config.glow_core) * np.exp(-0.5 * (radius / core_sigma) ** 2)
    return (halo + core).astype(np.float32)


def spike_count(blades):
    """Diffraction from N straight blades: N spikes for even N, 2N for odd N (opposite edges differ)."""
    return blades if blades % 2 == 0 else 2 * blades


def streaks(dx, dy, radius, rng, config, diagonal, blades):
    """Starburst of diffraction spikes, one per aperture edge direction, with jittered angles."""
    count = spike_count(blades)
    base = rng.uniform(0, 2 * np.pi)
    step = 2 * np.pi / count
    jitter = rng.normal(0.0, config.streak_angle_jitter, size=count)
    amplitude = rng.uniform(0.5, 1.0, size=count).astype(np.float32)
    length = rng.uniform(*config.streak_length) * diagonal
    width = max(0.7, rng.uniform(*config.streak_width) * diagonal)
    strength = rng.uniform(*config.streak_strength)
    angle = np.arctan2(dy, dx) - np.float32(base)
    nearest = np.round(angle / np.float32(step)).astype(np.int32) % count
    spike_angle = (nearest * step + jitter[nearest]).astype(np.float32)
    offset = np.mod(angle - spike_angle + np.float32(np.pi), np.float32(2 * np.pi)) - np.float32(np.pi)
    distance_to_spike = radius * np.abs(np.sin(offset))
    profile = np.exp(np.float32(-0.5 / width ** 2) * distance_to_spike ** 2) * (np.abs(offset) < np.pi / 2)
    falloff = 1.0 / (1.0 + radius * np.float32(1.0 / length)) ** 2
    return (np.float32(strength) * amplitude[nearest] * profile * falloff).astype(np.float32)


def _aperture_distance(dx, dy, sides, rotation):
    """Normalised 'radius' of a point for a regular polygon (1 on the edge's apothem), or a disc."""
    radius = np.hypot(dx, dy)
    if sides is None:
        return radius
    sector = 2 * np.pi / sides
    phi = np.mod(np.arctan2(dy, dx) - rotation, sector) - sector / 2
    return radius * np.cos(phi) / np.cos(np.pi / sides)


def ghosts(height, width, light_xy, rng, config, diagonal, blades):
    """Aperture-shaped reflections between lens surfaces, centred on the line through the optical centre.

    Ghost k sits at ``centre + t_k * (light - centre)`` (t < 0: mirrored through the centre), has
    the aperture's shape, its own tint, and a slightly different size per colour channel (lateral
    chromatic aberration). Each ghost is rendered only inside its bounding box.
    """
    layer = np.zeros((height, width, 3), np.float32)
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    axis = np.asarray(light_xy) - centre
    rotation = rng.uniform(0, 2 * np.pi)
    count = int(rng.integers(*config.ghost_count))
    positions = []
    for _ in range(count):
        t = rng.uniform(*config.ghost_position)
        gx, gy = centre + t * axis
        size = rng.uniform(*config.ghost_radius) * diagonal
        sides = None if rng.random() < config.ghost_round_prob else blades
        tint = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        strength = rng.uniform(*config.ghost_strength)
        chroma = rng.uniform(*config.ghost_chromatic)
        edge = max(0.8, 0.08 * size)
        reach = size * (1 + chroma) / np.cos(np.pi / (sides or 8)) + 2 * edge
        x0, x1 = int(max(0, np.floor(gx - reach))), int(min(width, np.ceil(gx + reach) + 1))
        y0, y1 = int(max(0, np.floor(gy - reach))), int(min(height, np.ceil(gy + reach) + 1))
        positions.append((gx, gy))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rho = _aperture_distance(xs - gx, ys - gy, sides, rotation)
        for channel, scale in enumerate((1 + chroma, 1.0, 1 - chroma)):
            radius = size * scale
            inside = np.clip((radius - rho) / edge + 0.5, 0.0, 1.0)
            brighter_rim = 0.6 + 0.4 * np.clip(rho / radius, 0.0, 1.0) ** 2
            layer[y0:y1, x0:x1, channel] += strength * tint[channel] * inside * brighter_rim
    return layer, positions


def veiling_haze(radius, rng, config, diagonal):
    """Veiling glare: light scattered over the whole frame, stronger towards the light; costs contrast."""
    strength = rng.uniform(*config.haze_strength)
    spread = rng.uniform(*config.haze_spread) * diagonal
    uniform_part = rng.uniform(0.3, 0.8)
    return (strength * (uniform_part + (1 - uniform_part) / (1.0 + (radius / spread) ** 2))).astype(np.float32)


def light_source(radius, rng, config, diagonal):
    """The emitter itself: a small disc far brighter than white, so it clips to a saturated core."""
    size = max(1.5, rng.uniform(*config.source_radius) * diagonal)
    brightness = rng.uniform(*config.source_brightness)
    return (brightness * np.clip(size - radius + 0.5, 0.0, 1.0)).astype(np.float32)


def render_procedural_flare(height, width, rng, config=None):
    """The flare layers in linear light: dict of HxWx3 maps plus the parameters tests and previews need."""
    config = FlareConfig.from_options(config)
    diagonal = float(np.hypot(height, width))
    light_x, light_y, inside = _sample_light_position(rng, height, width, config)
    dx = np.broadcast_to(np.arange(width, dtype=np.float32) - np.float32(light_x), (height, width))
    dy = np.broadcast_to((np.arange(height, dtype=np.float32) - np.float32(light_y))[:, None], (height, width))
    radius = cv2.magnitude(np.ascontiguousarray(dx), np.ascontiguousarray(dy))
    color = light_color(rng, config)
    blades = int(rng.integers(*config.aperture_blades))
    layers = {}
    if config.glow:
        layers['glow'] = glow(radius, rng, config, diagonal)[..., None] * color
    if config.streaks:
        layers['streaks'] = streaks(dx, dy, radius, rng, config, diagonal, blades)[..., None] * color
    ghost_positions = []
    if config.ghosts:
        ghost_layer, ghost_positions = ghosts(height, width, (light_x, light_y), rng, config, diagonal, blades)
        layers['ghosts'] = ghost_layer * color
    if config.haze:
        cast = color * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
        layers['haze'] = veiling_haze(radius, rng, config, diagonal)[..., None] * cast
    if config.source:
        layers['source'] = light_source(radius, rng, config, diagonal)[..., None] * color
    params = dict(light_xy=(float(light_x), float(light_y)), light_in_frame=inside, blades=blades,
                  color=color.tolist(), ghost_positions=ghost_positions)
    return layers, params


def synthesize_flare(clean_rgb01, rng, config=None):
    """Add a procedural flare to a clean HxWx3 float image in [0, 1]; returns ``(flared, info)``.

    ``info['label']`` is the matching target (the clean image, plus the light source when
    ``keep_source_in_label``); ``info['flare_linear']`` is the added flare before noise.
    """
    config = FlareConfig.from_options(config)
    clean = _check_image(clean_rgb01)
    height, width = clean.shape[:2]
    gamma = rng.uniform(*config.gamma)
    layers, params = render_procedural_flare(height, width, rng, config)
    intensity = rng.uniform(*config.intensity)
    source = layers.pop('source', None)
    flare = np.zeros_like(clean)
    for layer in layers.values():
        flare += layer
    flare *= np.float32(intensity)
    if rng.random() < config.blur_prob:  # defocus / residual aberration of the flare itself
        sigma = rng.uniform(*config.blur_sigma) * np.hypot(height, width) / 512.0
        flare = cv2.GaussianBlur(flare, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    if source is not None:
        flare += source
    label_source = source if (source is not None and config.keep_source_in_label) else None
    flared, label, noise = composite(clean, flare, gamma, rng, config, source_linear=label_source)
    info = dict(params, family='procedural', gamma=float(gamma), intensity=float(intensity),
                components=sorted(layers) + (['source'] if source is not None else []),
                shot_noise=float(noise[0]), read_noise=float(noise[1]), label=label, flare_linear=flare)
    return flared, info


# ----------------------------------------------------------------------------------------------
# Held-out Fourier-optics family (evaluation only, never used for training)
# ----------------------------------------------------------------------------------------------

@dataclass
class PSFConfig:
    """Ranges for the Fourier-optics flare. Lengths in pupil radii or fractions of the diagonal."""
    gamma: tuple = (1.8, 2.2)
    source_in_frame_prob: float = 0.7
    source_outside: float = 0.35
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
    exposure: tuple = (3e2, 3e3)         # radiance of the added source relative to white
    source_radius: tuple = (0.003, 0.012)
    scene_threshold: float = 0.97        # sRGB level above which scene pixels also flare
    scene_highlight_gain: tuple = (1.0, 8.0)  # their true radiance, unknown behind the clipping
    keep_source_in_label: bool = True
    noise_prob: float = 0.5
    shot_noise: tuple = (0.0, 0.004)
    read_noise: tuple = (0.0, 0.006)

    from_options = classmethod(FlareConfig.from_options.__func__)


WAVELENGTHS_NM = (650.0, 550.0, 450.0)  # R, G, B


def make_pupil(rng, config):
    """Aperture geometry in pupil-radius units: dust (opaque discs) and scratches (opaque lines).

    Returned as a function of pupil coordinates so each wavelength can sample it at its own scale.
    """
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
    """Low-frequency random wavefront error (polishing marks): scatters light into a broad halo."""
    noise = rng.standard_normal((grid, grid)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=grid / 32.0, borderType=cv2.BORDER_REFLECT)
    return waves * noise / (noise.std() + 1e-8)


def point_spread_rgb(rng, config):
    """PSF = |FFT(pupil * exp(i * phase))|^2 at three wavelengths, each normalised to unit energy.

    A longer wavelength diffracts wider: its pupil is sampled with a proportionally smaller radius
    on the same grid, which scales its PSF by lambda / lambda_green; the phase (in waves) shrinks as 1/lambda.
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


def _fft_convolve(image, kernel):
    """Linear (not circular) convolution of HxWx3 with a centred kxkx3 kernel, same-size output."""
    height, width = image.shape[:2]
    size = kernel.shape[0]
    shape = (height + size, width + size)
    spectrum = np.fft.rfft2(image, s=shape, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape, axes=(0, 1))
    full = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    half = size // 2
    return np.maximum(full[half:half + height, half:half + width], 0.0).astype(np.float32)


def _soft_disc(height, width, centre_x, centre_y, radius, pad=0):
    """Anti-aliased disc of ``radius`` pixels on an (H + 2 pad) x (W + 2 pad) canvas starting at -pad."""
    dx = np.arange(-pad, width + pad, dtype=np.float32) - np.float32(centre_x)
    dy = np.arange(-pad, height + pad, dtype=np.float32)[:, None] - np.float32(centre_y)
    shape = (height + 2 * pad, width + 2 * pad)
    distance = cv2.magnitude(np.ascontiguousarray(np.broadcast_to(dx, shape)),
                             np.ascontiguousarray(np.broadcast_to(dy, shape)))
    return np.clip(np.float32(radius + 0.5) - distance, 0.0, 1.0)


def psf_flare(clean_rgb01, rng, config=None):
    """Held-out test flare from Fourier optics; same return contract as ``synthesize_flare``.

    The sources are the scene's near-saturated pixels plus one added light (possibly outside the
    frame, handled by convolving on a canvas padded by the PSF size). The PSF is resized with the
    image diagonal so the flare covers the same fraction of the frame at every resolution. Above
    ``work_size`` the convolution runs on an area-downscaled copy and the flare is upsampled:
    radiance per pixel is preserved, and a full-size PSF convolution would take ~30 s per photo.
    """
    config = PSFConfig.from_options(config, option_name='psf')
    clean = _check_image(clean_rgb01)
    height, width = clean.shape[:2]
    diagonal = float(np.hypot(height, width))
    gamma = rng.uniform(*config.gamma)
    psf = point_spread_rgb(rng, config)
    work = min(1.0, config.work_size / max(height, width))
    work_h, work_w = max(1, round(height * work)), max(1, round(width * work))
    size = int(round(config.grid * np.hypot(work_h, work_w) / 320.0)) | 1
    psf = cv2.resize(psf, (size, size), interpolation=cv2.INTER_LINEAR)
    psf = np.maximum(psf, 0) * radial_taper(size)[..., None]
    psf /= psf.sum(axis=(0, 1), keepdims=True)

    light_x, light_y, inside = _sample_light_position(rng, height, width, config)
    color = light_color(rng, config)
    exposure = rng.uniform(*config.exposure)
    source_size = max(1.5, rng.uniform(*config.source_radius) * diagonal)
    highlight_gain = rng.uniform(*config.scene_highlight_gain)

    pad = size // 2
    scale_x, scale_y = work_w / width, work_h / height
    disc = _soft_disc(work_h, work_w, (light_x + 0.5) * scale_x - 0.5, (light_y + 0.5) * scale_y - 0.5,
                      source_size * scale_x, pad)
    sources = np.float32(exposure) * disc[..., None] * color
    work_clean = clean if work == 1.0 else cv2.resize(clean, (work_w, work_h), interpolation=cv2.INTER_AREA)
    bright = (work_clean.max(axis=2, keepdims=True) >= config.scene_threshold) * cv2.pow(work_clean, gamma)
    sources[pad:pad + work_h, pad:pad + work_w] += np.float32(highlight_gain) * bright
    flare = _fft_convolve(sources, psf)[pad:pad + work_h, pad:pad + work_w]
    if work < 1.0:
        flare = cv2.resize(flare, (width, height), interpolation=cv2.INTER_LINEAR)
    label_source = None
    if config.keep_source_in_label:
        label_disc = _soft_disc(height, width, light_x, light_y, source_size)
        label_source = np.float32(exposure) * label_disc[..., None] * color
    flared, label, noise = composite(clean, flare, gamma, rng, config, source_linear=label_source)
    info = dict(family='psf', light_xy=(float(light_x), float(light_y)), light_in_frame=inside,
                gamma=float(gamma), exposure=float(exposure), color=color.tolist(),
                shot_noise=float(noise[0]), read_noise=float(noise[1]), label=label, flare_linear=flare)
    return flared, info


# ----------------------------------------------------------------------------------------------
# Writing synthetic pairs in the Dacon challenge layout (used by the scripts)
# ----------------------------------------------------------------------------------------------

FAMILIES = {'procedural': synthesize_flare, 'psf': psf_flare}
FIRST_ID = {'train': 10000, 'test': 20000}  # the challenge numbers train pairs from 10000, test from 20000


def dacon_names(split, number):
    """(img_id, input file, label file, input folder, label folder) of pair ``number`` in ``split``."""
    return (f'{split}_{number}', f'{split}_input_{number}.png', f'{split}_label_{number}.png',
            f'{split}_input_img', f'{split}_label_img')


def write_dacon_csv(path, split, numbers):
    """``train.csv`` (img_id,input_img,label_img) or ``test.csv`` (img_id,input_img) like the challenge."""
    from flare_sr.utils.atomic import atomic_path

    rows = ['img_id,input_img,label_img' if split == 'train' else 'img_id,input_img']
    for number in numbers:
        img_id, input_name, label_name = dacon_names(split, number)[:3]
        rows.append(f'{img_id},{input_name},{label_name}' if split == 'train' else f'{img_id},{input_name}')
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as handle:
            handle.write('\n'.join(rows) + '\n')


def psnr(a, b):
    """PSNR in dB of two float images in [0, 1] (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float('inf') if mse == 0 else 10.0 * np.log10(1.0 / mse)
