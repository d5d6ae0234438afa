"""Training on flare layers: images of flare on black, composited onto clean photos on the fly.

The field's loaders under their own names, with their option keys (ykdai/Flare7K,
``basicsr/data/flare7k_dataset.py`` and ``flare7kpp_dataset.py``)::

    type: Flare7kpp_Pair_Loader          # or Flare_Pair_Loader (Flare7K, NeurIPS 2022)
    image_path: dataset/Flickr24K        # clean backgrounds, one flat folder; one sample per image
    scattering_dict:                     # {name: folder} flare sources; a folder may hold sub-folders instead
      Flare7k_scattering: dataset/Flare7Kpp/Flare7K/Scattering_Flare/Compound_Flare
      Real_scattering1: dataset/Flare7Kpp/Flare-R/Compound_Flare
    reflective_dict:                     # ~, {} or {name: folder or ~}, paired with scattering_dict by position (++)
      Flare7k_reflective: dataset/Flare7Kpp/Flare7K/Reflective_Flare
      Real_reflective1: ~
    light_dict:                          # ++ only: ~, {} or {name: folder or ~}, by position; light i <-> flare i
      Flare7k_light: dataset/Flare7Kpp/Flare7K/Scattering_Flare/Light_Source
      Real_light1: dataset/Flare7Kpp/Flare-R/Light_Source
    data_ratio: [0.5, 0.5]               # ++ only: weights of the sources (default equal; normalised)
    transform_base: {img_size: 512}      # square crop of the background (reflect-padded when smaller)
    transform_flare: {scale_min: 0.8, scale_max: 1.5, translate: 300, shear: 20}  # translate in px of a 1440-px flare
    mask_type: ~                         # ~, luminance, color, flare or light (++): adds 'mask'

Each sample (all in linear light, ``x ** gamma``, one gamma ~ U(1.8, 2.2) per sample):

- background: random ``img_size`` crop (reflect-padded by the shortfall on both sides, as torchvision's
  ``RandomCrop(pad_if_needed=True, padding_mode='reflect')``, at any size), flips, Gaussian noise with
  sigma = 0.01 * chi2(1), gain U(0.5, 1.2), clip;
- flare: plus a reflective flare of its source if any (clip), background removal per channel, one affine
  (rotation U(0, 360) deg, scale U(scale_min, scale_max), translation U(+-translate/1440 of the width) px,
  x-shear U(+-shear) deg; nearest neighbour, about the centre) and a centre crop to ``img_size`` without
  resize, then flips, on the flare and its light source together; brightness jitter U(0.8, 3) (clipped)
  only for a source without light images; Gaussian blur (kernel 21, sigma U(0.1, 3)); a DC offset
  U(+-0.02) in Flare_Pair_Loader only (Flare7K++ comments it out); clip;
- ``lq = clip(bg + flare)``; with a light source ``gt = clip(bg + light)`` and ``flare = clip(flare - light)``
  (Flare7K++ keeps the light in the target); without, ``gt = bg``. All three after ``** (1 / gamma)``.

A source without light images (Flare7K, Google's ``lens-flare``, your own flare photos on black) assumes
its light source is part of the flare: it is removed from the target, as Flare7K trains; restore it at
inference with ``val.restore_light_source``. Flare7K++ refuses to mix sources with and without light;
here ``light_dict`` may give ``~`` for such a source. Where the original is wrong, this one is right: its
background removal normalises a CxHxW tensor over axes (0, 1), i.e. per image *column* rather than per
channel; a ``reflective_dict`` of ``~`` crashes it (Flare7K#33); sizes it cannot reflect-pad crash it.

Returns ``lq``, ``gt``, ``flare`` (3xSxS float32 in [0, 1]), ``gamma`` (float), ``mask`` (3xSxS of 0/1, when
``mask_type`` is set; thresholds in linear light as the original: luminance 0.3R+0.59G+0.11B of the flare
target > 0.99**gamma, color: lq > 0.99**gamma, flare: flare target > 0.7**gamma, light: light luminance >
0.01), ``lq_path`` and ``gt_path`` (the background) and ``flare_path``. All randomness comes from
``sample_rng(opt, key, len)`` (flare_sr/data/sampling.py): a sample is a pure function of its key. Outside
phase ``train`` sample ``i`` is fixed by ``(seed, i)``. :func:`draw_layers` and :func:`composite_layers`
expose the draw and the compositing separately (tests fix the draw by hand).
"""
import dataclasses
import math
import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image, UnidentifiedImageError
from torch.utils import data

from flare_sr.data.sampling import item_index, sample_rng
from flare_sr.data.transforms import img2tensor
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import IMAGE_EXTENSIONS, read_image_upright, to_float32

TRANSFORM_FLARE = {'scale_min': 0.8, 'scale_max': 1.5, 'translate': 300, 'shear': 20}  # Flare7K's option files
MASK_TYPES = (None, 'luminance', 'color', 'flare', 'light')
FLARE_WIDTH = 1440.0  # Flare7K writes translate / 1440: pixels of its 1440-px flare images
GAMMA = (1.8, 2.2)
BRIGHTNESS = (0.8, 3.0)
BLUR_SIGMA, BLUR_KERNEL = (0.1, 3.0), 21
GAIN = (0.5, 1.2)
DC_OFFSET = 0.02
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class LayerDraw:
    """Every random number of one sample. ``crop`` (top, left) in the reflect-padded background; ``translate``
    (x, y) px; ``angle`` and ``shear`` degrees; ``brightness`` 1, ``offset`` 0 and ``blur_sigma`` 0 are no-ops;
    ``noise_seed`` seeds the per-pixel noise of sigma ``noise_sigma``."""
    gamma: float = 2.2
    crop: tuple = (0, 0)
    background_flips: tuple = (False, False)
    noise_sigma: float = 0.0
    noise_seed: int = 0
    gain: float = 1.0
    angle: float = 0.0
    scale: float = 1.0
    translate: tuple = (0, 0)
    shear: float = 0.0
    flare_flips: tuple = (False, False)
    brightness: float = 1.0
    blur_sigma: float = 0.0
    offset: float = 0.0


def padded_shape(shape, size):
    """(height, width) of a background after the reflect padding of ``RandomCrop(pad_if_needed=True)``."""
    return tuple(side + 2 * max(size - side, 0) for side in shape[:2])


def draw_layers(rng, background_shape, flare_width, size, transform_flare, jitter, offset):
    """A LayerDraw for one sample from ``rng``. Every number is drawn whether used or not (a fixed stream);
    ``jitter`` and ``offset`` (bools) keep or neutralise the brightness jitter and the DC offset."""
    gamma = rng.uniform(*GAMMA)
    height, width = padded_shape(background_shape, size)
    crop = (int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1)))
    background_flips = (bool(rng.random() < 0.5), bool(rng.random() < 0.5))
    noise_sigma, noise_seed = 0.01 * rng.chisquare(1), int(rng.integers(2**31))
    gain, dc_offset = rng.uniform(*GAIN), rng.uniform(-DC_OFFSET, DC_OFFSET)
    max_shift = transform_flare['translate'] / FLARE_WIDTH * flare_width
    angle = rng.uniform(0.0, 360.0)
    translate = (int(round(rng.uniform(-max_shift, max_shift))), int(round(rng.uniform(-max_shift, max_shift))))
    scale = rng.uniform(transform_flare['scale_min'], transform_flare['scale_max'])
    shear = rng.uniform(-transform_flare['shear'], transform_flare['shear'])
    flare_flips = (bool(rng.random() < 0.5), bool(rng.random() < 0.5))
    brightness, blur_sigma = rng.uniform(*BRIGHTNESS), rng.uniform(*BLUR_SIGMA)
    return LayerDraw(gamma=float(gamma), crop=crop, background_flips=background_flips,
                     noise_sigma=float(noise_sigma), noise_seed=noise_seed, gain=float(gain), angle=float(angle),
                     scale=float(scale), translate=translate, shear=float(shear), flare_flips=flare_flips,
                     brightness=float(brightness) if jitter else 1.0, blur_sigma=float(blur_sigma),
                     offset=float(dc_offset) if offset else 0.0)


def remove_background(flare):
    """Per channel ``(x - min) * max / (max - min + 1e-7)``: the flare's black level to 0, its peak kept."""
    low, high = flare.min(axis=(0, 1)), flare.max(axis=(0, 1))
    return ((flare - low) * (high / (high - low + np.float32(1e-7)))).astype(np.float32)


def _flip(img, flips):
    if flips[0]:
        img = img[:, ::-1]
    if flips[1]:
        img = img[::-1]
    return np.ascontiguousarray(img)


def crop_background(background, size, draw):
    """The ``size`` crop at ``draw.crop`` of the reflect-padded background (any dtype), flipped."""
    height, width = background.shape[:2]
    pad_y, pad_x = max(size - height, 0), max(size - width, 0)
    if pad_y or pad_x:
        background = np.pad(background, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode='reflect')
    top, left = draw.crop
    return _flip(background[top:top + size, left:left + size], draw.background_flips)


def affine_crop(layers, size, draw):
    """The draw's affine about the image centre, nearest neighbour, straight into the centred ``size`` window
    (zeros outside, as torchvision's ``RandomAffine`` then ``CenterCrop``), then the flips. ``layers``: HxWxC."""
    height, width = layers.shape[:2]
    theta, shear = math.radians(draw.angle), math.radians(draw.shear)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    linear = rotation @ np.array([[1.0, math.tan(shear)], [0.0, 1.0]]) * draw.scale
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    window = np.array([round((width - size) / 2.0) if width >= size else -((size - width) // 2),
                       round((height - size) / 2.0) if height >= size else -((size - height) // 2)])
    shift = centre + np.array(draw.translate, dtype=np.float64) - linear @ centre - window
    matrix = np.hstack([linear, shift[:, None]])
    channels = [cv2.warpAffine(np.ascontiguousarray(layers[..., c:c + 3]), matrix, (size, size),
                               flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                for c in range(0, layers.shape[2], 3)]
    return _flip(np.concatenate(channels, axis=2), draw.flare_flips)


def _mask(mask_type, gamma, lq, flare, light):
    if mask_type == 'luminance':
        luminance = 0.3 * flare[..., 0] + 0.59 * flare[..., 1] + 0.11 * flare[..., 2]
        return np.repeat((luminance > 0.99**gamma)[..., None], 3, axis=2)
    if mask_type == 'color':
        return lq > 0.99**gamma
    if mask_type == 'flare':
        return flare > 0.7**gamma
    luminance = 0.3 * light[..., 0] + 0.59 * light[..., 1] + 0.11 * light[..., 2]
    return np.repeat((luminance > 0.01)[..., None], 3, axis=2)


def composite_layers(background, flare, draw, size, light=None, reflective=None, mask_type=None):
    """One training sample from sRGB layers (HxWx3 float32 in [0, 1]) and a LayerDraw.

    ``background`` any size (cropped to ``size``); ``flare`` and ``light`` the same size; ``reflective`` is
    centre-cropped or zero-padded to the flare's size. Returns a dict of ``size`` x ``size`` x 3 float32 sRGB
    arrays ``lq``, ``gt``, ``flare`` (and ``mask``, 0/1, with ``mask_type``), as the module docstring says.
    """
    gamma = float(draw.gamma)
    base = cv2.pow(crop_background(background, size, draw), gamma)
    if draw.noise_sigma:
        noise = np.random.default_rng(draw.noise_seed).standard_normal(base.shape, dtype=np.float32)
        base = base + np.float32(draw.noise_sigma) * noise
    base = np.clip(base * np.float32(draw.gain), 0.0, 1.0)
    flare_linear = cv2.pow(flare, gamma)
    if reflective is not None:
        flare_linear = np.clip(flare_linear + cv2.pow(_fit(reflective, flare.shape), gamma), 0.0, 1.0)
    flare_linear = remove_background(flare_linear)
    if light is not None:
        moved = affine_crop(np.concatenate([flare_linear, cv2.pow(light, gamma)], axis=2), size, draw)
        flare_linear, light_linear = moved[..., :3], moved[..., 3:]
    else:
        flare_linear, light_linear = affine_crop(flare_linear, size, draw), None
    if draw.brightness != 1.0:
        flare_linear = np.clip(flare_linear * np.float32(draw.brightness), 0.0, 1.0)
    if draw.blur_sigma:
        flare_linear = cv2.GaussianBlur(flare_linear, (BLUR_KERNEL, BLUR_KERNEL), draw.blur_sigma,
                                        borderType=cv2.BORDER_REFLECT_101)
    flare_linear = np.clip(flare_linear + np.float32(draw.offset), 0.0, 1.0)
    lq = np.clip(flare_linear + base, 0.0, 1.0)
    if light_linear is not None:
        base = np.clip(base + light_linear, 0.0, 1.0)
        flare_linear = np.clip(flare_linear - light_linear, 0.0, 1.0)
    inverse = 1.0 / gamma
    sample = {'lq': cv2.pow(lq, inverse), 'gt': cv2.pow(base, inverse), 'flare': cv2.pow(flare_linear, inverse)}
    if mask_type is not None:
        sample['mask'] = _mask(mask_type, gamma, lq, flare_linear, light_linear).astype(np.float32)
    return sample


def _fit(img, shape):
    """``img`` centre-cropped or zero-padded to ``shape``'s height and width."""
    out = np.zeros(shape[:2] + img.shape[2:], img.dtype)
    height, width = min(img.shape[0], shape[0]), min(img.shape[1], shape[1])
    sy, sx = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    dy, dx = (shape[0] - height) // 2, (shape[1] - width) // 2
    out[dy:dy + height, dx:dx + width] = img[sy:sy + height, sx:sx + width]
    return out


# ------------------------------------------------------------------------------------------------ options
def layer_images(folder):
    """Sorted images directly in ``folder``, or, when it holds none, in its sub-folders (Google's
    ``lens-flare/captured``); [] for a folder without any. The caller names the key in its error."""
    def listed(root):
        return [os.path.join(root, name) for name in sorted(os.listdir(root))
                if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(root, name))]

    paths = listed(folder)
    if not paths:
        for root, _, _ in sorted(os.walk(folder, followlinks=True)):
            if root != folder:
                paths += listed(root)
    return paths


def unread_subfolders(folder):
    """Names of ``folder``'s sub-folders that hold images which ``layer_images`` does not read (it reads the
    folder alone when images are directly in it); [] otherwise."""
    if not os.path.isdir(folder) or not layer_images(folder) or not any(
            os.path.isfile(os.path.join(folder, name)) for name in os.listdir(folder)):
        return []
    return [name for name in sorted(os.listdir(folder)) if not name.startswith('.')
            and os.path.isdir(os.path.join(folder, name)) and layer_images(os.path.join(folder, name))]


def _folder_dict(value, key, key_path, problems, optional_entries):
    """{name: folder or None} of option ``key``'s ``value`` (None, ``~`` or ``{}``: empty); a bad shape is a
    problem. The YAML word ``None`` is a string; it means none here, as Flare7K#33's users wrote it."""
    if value is None or value == 'None':
        return {}
    if not isinstance(value, dict):
        problems.append(f'{key_path}.{key}: expected a mapping {{name: folder}}, got {value!r}')
        return {}
    folders = {}
    for name, folder in value.items():
        if folder is None and optional_entries:
            folders[name] = None
        elif not isinstance(folder, str) or not folder:
            problems.append(f'{key_path}.{key}.{name}: expected a folder, got {folder!r}')
        else:
            folders[name] = os.path.expanduser(folder)
    return folders


def _list_folder(folder, where, problems):
    if not os.path.isdir(folder):
        problems.append(f'{where}: {folder} is not a folder (relative paths start at {os.getcwd()})')
        return []
    paths = layer_images(folder)
    if not paths:
        problems.append(f'{where}: {folder} has no images ({", ".join(IMAGE_EXTENSIONS)}): 0 would be loaded')
    return paths


# A light-source folder's name in any spelling (Flare7K's Light_Source): read as flares, its lights would be flares
_LIGHT_FOLDER = re.compile(r'^light[\W_]*sources?$', re.IGNORECASE)
# Role words in layer and source names: ``Flare7k_light`` and ``Flare7k_scattering`` name the same source
_ROLE_WORDS = re.compile(r'(compound|scattering|reflective|light|source|flare)s?')


def _layer_folder_problems(folder, where):
    """Lines for a flare, reflective or light folder whose images are not one set of layers: sub-folders read
    beside images of its own (only its own are), or, read as a tree, a light-source folder among them."""
    if not os.path.isdir(folder):
        return []
    unread = unread_subfolders(folder)
    if unread:
        return [f'{where}: {folder} holds images and sub-folders of images ({", ".join(unread[:3])}); only its own '
                'images would be read: point it at one folder of layers']
    direct = any(name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(folder))
    lights = [] if direct else sorted(os.path.relpath(root, folder) for root, _, _ in os.walk(folder, followlinks=True)
                                      if root != folder and _LIGHT_FOLDER.match(os.path.basename(root)))
    if lights:
        return [f'{where}: {folder} has no images of its own, so all its sub-folders would be read as layers, '
                f'{lights[0]} among them (light sources, not flares); point it at the flare folder (e.g. '
                f'{os.path.join(folder, "Compound_Flare")}) and light_dict at {os.path.join(folder, lights[0])}']
    return []


def _layer_name(path, folder):
    """The name a layer is known by: its path under ``folder``, without extension, lower case."""
    return os.path.splitext(os.path.relpath(path, folder))[0].lower()


def _same_layer(flare_name, light_name):
    """Whether two layer names can be one pair: equal, the same numbers (``flare_0001`` / ``light_0001``), or equal
    without role words."""
    if flare_name == light_name:
        return True
    numbers = [[int(n) for n in re.findall(r'\d+', name)] for name in (flare_name, light_name)]
    if numbers[0] and numbers[0] == numbers[1]:
        return True
    bare = [re.sub(r'[^a-z0-9]', '', _ROLE_WORDS.sub('', name)) for name in (flare_name, light_name)]
    return bool(bare[0]) and bare[0] == bare[1]


def _source_tag(name):
    """``Flare7k_light``, ``Flare7k_scattering`` -> ``7k``; ``Real_light1`` -> ``real1``: a dict entry's source."""
    return re.sub(r'[^a-z0-9]', '', _ROLE_WORDS.sub('', str(name).lower()))


def _order_problem(key, folders, scattering, key_path):
    """A line when ``key``'s entries, which pair with scattering_dict's by position, are named for its sources in
    another order (``{Real_light1, Flare7k_light}`` beside ``{Flare7k_scattering, Real_scattering1}``)."""
    tags, source_tags = [_source_tag(name) for name in folders], [_source_tag(name) for name in scattering]
    if (len(tags) != len(source_tags) or not all(tags) or len(set(tags)) != len(tags)
            or len(set(source_tags)) != len(source_tags) or set(tags) != set(source_tags) or tags == source_tags):
        return []  # names that do not name the sources (a user's own) say nothing about the order
    position = next(index for index, (tag, source) in enumerate(zip(tags, source_tags)) if tag != source)
    ordered = sorted(folders, key=lambda name: source_tags.index(_source_tag(name)))
    return [f'{key_path}.{key}: pairs with scattering_dict by position, and its names say another order: '
            f'{list(folders)[position]} is beside scattering_dict.{list(scattering)[position]}; list it as '
            f'{", ".join(map(str, ordered))}']


def _shared_folder_problems(key_path, image_path, scattering, reflective, lights):
    """Lines for a folder given in two roles (backgrounds, flares, reflective flares, light sources): a light folder
    equal to its flare folder would train on targets without flare."""
    roles = [('image_path', image_path)] if isinstance(image_path, str) else []
    for key, folders in (('scattering_dict', scattering), ('reflective_dict', reflective), ('light_dict', lights)):
        roles += [(f'{key}.{name}', folder) for name, folder in folders.items() if folder]
    seen, problems = {}, []
    for where, folder in roles:
        real = os.path.realpath(folder)
        first = seen.setdefault(real, where)
        if first.split('.')[0] != where.split('.')[0]:
            problems.append(f'{key_path}.{where}: {folder} is also {key_path}.{first}; a folder serves one role '
                            '(backgrounds, flares, reflective flares or light sources)')
    return problems


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _transform_problems(opt, key_path):
    problems = []
    base = opt.get('transform_base')
    size = base.get('img_size') if isinstance(base, dict) else None
    if not isinstance(base, dict) or set(base) - {'img_size'}:
        problems.append(f'{key_path}.transform_base: expected {{img_size: <pixels>}}, got {base!r}')
    elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
        problems.append(f'{key_path}.transform_base.img_size: expected a positive integer, got {size!r}')
    flare = opt.get('transform_flare', {})
    if not isinstance(flare, dict):
        return problems + [f'{key_path}.transform_flare: expected a mapping, got {flare!r}']
    for key in set(flare) - set(TRANSFORM_FLARE):
        problems.append(f'{key_path}.transform_flare.{key}: unknown key (known: {", ".join(TRANSFORM_FLARE)})')
    values = {**TRANSFORM_FLARE, **flare}
    for key, value in values.items():
        if key in TRANSFORM_FLARE and not (_number(value) and value >= (1e-6 if key == 'scale_min' else 0)):
            problems.append(f'{key_path}.transform_flare.{key}: expected a number {">" if key == "scale_min" else ">="}'
                            f' 0, got {value!r}')
    if _number(values['scale_min']) and _number(values['scale_max']) and values['scale_min'] > values['scale_max']:
        problems.append(f'{key_path}.transform_flare: scale_min {values["scale_min"]} > scale_max '
                        f'{values["scale_max"]}')
    if _number(values['shear']) and values['shear'] >= 90:
        problems.append(f'{key_path}.transform_flare.shear: {values["shear"]} degrees; must be below 90')
    return problems


@dataclass
class FlareSource:
    """One entry of ``scattering_dict``: its flares, light sources (None: no light images) and reflective flares."""
    name: str
    flares: list
    lights: list = None
    reflectives: tuple = ()
    unrelated_names: tuple = None  # (flare, light) of the first pair when no light's name agrees with its flare's


def plan_layers(opt, key_path, per_source, read_headers=False):
    """(problems, backgrounds, sources) the options select: folders listed, counts and ratios checked; with
    ``read_headers`` every image header is read too (unreadable files, flare and light sizes that differ).
    ``per_source``: Flare7K++'s semantics (light_dict, data_ratio, reflective flares by position)."""
    problems = _transform_problems(opt, key_path)
    mask_type = None if opt.get('mask_type') == 'None' else opt.get('mask_type')  # the YAML word, as _folder_dict
    if mask_type not in MASK_TYPES or (mask_type == 'light' and not per_source):
        known = ', '.join(str(t).replace('None', '~') for t in MASK_TYPES if per_source or t != 'light')
        problems.append(f'{key_path}.mask_type: {mask_type!r} is not one of {known}')
    backgrounds = []
    if not isinstance(opt.get('image_path'), str):
        problems.append(f'{key_path}.image_path: missing (the folder of clean background images)')
    else:
        backgrounds = _list_folder(os.path.expanduser(opt['image_path']), f'{key_path}.image_path', problems)
    scattering = _folder_dict(opt.get('scattering_dict'), 'scattering_dict', key_path, problems, optional_entries=False)
    if not opt.get('scattering_dict'):
        problems.append(f'{key_path}.scattering_dict: missing or empty (give {{name: folder of flare images}})')
    reflective = _folder_dict(opt.get('reflective_dict'), 'reflective_dict', key_path, problems, optional_entries=True)
    lights = _folder_dict(opt.get('light_dict'), 'light_dict', key_path, problems, True) if per_source else {}
    if not per_source:
        for key in ('light_dict', 'data_ratio'):
            if opt.get(key):
                problems.append(f'{key_path}.{key}: Flare_Pair_Loader does not read it (Flare7K has no light '
                                'sources); use type Flare7kpp_Pair_Loader')
    for key, folders in (('reflective_dict', reflective), ('light_dict', lights)):
        if per_source and folders and len(folders) != len(scattering):
            problems.append(f'{key_path}.{key}: {len(folders)} entries for {len(scattering)} in scattering_dict; '
                            'they pair by position (give ~ for a source without)')
        elif per_source:
            problems += _order_problem(key, folders, scattering, key_path)
    image_path = os.path.expanduser(opt['image_path']) if isinstance(opt.get('image_path'), str) else None
    problems += _shared_folder_problems(key_path, image_path, scattering, reflective, lights)
    for key, folders in (('scattering_dict', scattering), ('reflective_dict', reflective), ('light_dict', lights)):
        for name, folder in folders.items():
            problems += _layer_folder_problems(folder, f'{key_path}.{key}.{name}') if folder else []
    sources = []
    reflective_lists = [_list_folder(folder, f'{key_path}.reflective_dict.{name}', problems) if folder else []
                        for name, folder in reflective.items()]
    light_folders = list(lights.values())
    for position, (name, folder) in enumerate(scattering.items()):
        source = FlareSource(name, _list_folder(folder, f'{key_path}.scattering_dict.{name}', problems))
        if per_source and position < len(light_folders) and light_folders[position]:
            light_name = list(lights)[position]
            source.lights = _list_folder(light_folders[position], f'{key_path}.light_dict.{light_name}', problems)
            if source.flares and source.lights and len(source.lights) != len(source.flares):
                problems.append(f'{key_path}.light_dict.{light_name}: {len(source.lights)} light sources in '
                                f'{light_folders[position]} for {len(source.flares)} flares in {folder} '
                                f'(scattering_dict.{name}); they pair by sorted name')
            elif source.flares and source.lights:
                problems += _pairing_problems(source, folder, light_folders[position],
                                              f'{key_path}.light_dict.{light_name}', f'scattering_dict.{name}')
        if per_source and position < len(reflective_lists):
            source.reflectives = tuple(reflective_lists[position])
        sources.append(source)
    if not per_source:  # Flare7K: one pool of every scattering flare, one of every reflective flare
        pool = tuple(path for paths in reflective_lists for path in paths)
        sources = [FlareSource('all', [path for source in sources for path in source.flares], None, pool)]
    unlit = [source.name for source in sources if source.lights is None]
    if per_source and mask_type == 'light' and unlit:
        problems.append(f'{key_path}.mask_type: light needs light-source images, and scattering_dict.{unlit[0]} '
                        'has none in light_dict')
    if per_source and 'data_ratio' in opt and opt['data_ratio'] not in (None, []):
        problems += _ratio_problems(opt['data_ratio'], len(scattering), key_path)
    if read_headers and not problems:
        problems += _header_problems(opt, key_path, backgrounds, sources, scattering, lights)
    return problems, backgrounds, sources


def _pairing_problems(source, flare_folder, light_folder, where, flare_key):
    """A line when some light sources' names agree with their flares' and others do not: they pair by sorted
    position, as Flare7K++ reads them, so a missing or extra file shifted every pair after it. When no name agrees
    (another naming scheme) the pairing is only noted on ``source`` (``unrelated_names``) and warned about."""
    pairs = list(zip(source.flares, source.lights))
    disagreeing = [(flare, light) for flare, light in pairs
                   if not _same_layer(_layer_name(flare, flare_folder), _layer_name(light, light_folder))]
    if not disagreeing:
        return []
    flare, light = disagreeing[0]
    if len(disagreeing) == len(pairs):
        source.unrelated_names = (flare, light)
        return []
    return [f'{where}: light source {light} pairs with flare {flare} ({flare_key}): they pair by sorted position, '
            f'and {len(disagreeing)} of {len(pairs)} names disagree while the others agree (a missing or extra file '
            'shifts every pair after it); give each light source its flare\'s name']


def _ratio_problems(ratio, count, key_path):
    if not isinstance(ratio, list) or not all(_number(value) for value in ratio):
        return [f'{key_path}.data_ratio: expected a list of {count} numbers, got {ratio!r}']
    if len(ratio) != count:
        return [f'{key_path}.data_ratio: {len(ratio)} weights for {count} sources in scattering_dict']
    if min(ratio) < 0 or sum(ratio) <= 0:
        return [f'{key_path}.data_ratio: {ratio} must be weights >= 0 with a positive sum']
    return []


def _header_problems(opt, key_path, backgrounds, sources, scattering, lights):
    """Unreadable images and flare/light size mismatches, from the file headers (no decoding)."""
    problems = []

    def sizes(paths, where):
        found = []
        for path in paths:
            try:  # PIL reads the header only: about 0.04 ms a file, 0.2 ms with the EXIF orientation
                with Image.open(path) as img:
                    turned = img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)  # read upright, as shown
                    found.append(img.size if turned else img.size[::-1])
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
                problems.append(f'{where}: {path}: not a readable image ({error})')
                return None
        return found

    sizes(backgrounds, f'{key_path}.image_path')
    names = list(scattering) if len(sources) == len(scattering) else ['(all)']
    light_names = list(lights)
    for position, source in enumerate(sources):
        flare_sizes = sizes(source.flares, f'{key_path}.scattering_dict.{names[position]}')
        sizes(source.reflectives, f'{key_path}.reflective_dict')
        if source.lights:
            where = f'{key_path}.light_dict.{light_names[position]}'
            light_sizes = sizes(source.lights, where)
            for flare, light, flare_size, light_size in zip(source.flares, source.lights, flare_sizes or [],
                                                            light_sizes or []):
                if flare_size != light_size:
                    problems.append(f'{where}: {light} is {light_size[1]}x{light_size[0]} but its flare {flare} is '
                                    f'{flare_size[1]}x{flare_size[0]} (pairs must be the same size)')
                    break
    return problems


class FlareLayerDataset(data.Dataset):
    """Backgrounds plus flare layers, composited per sample (see the module docstring). One sample per
    background image; ``PER_SOURCE`` selects Flare7K++'s semantics, ``APPLY_DC_OFFSET`` Flare7K's offset."""
    PER_SOURCE = True
    APPLY_DC_OFFSET = False

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        problems, self.backgrounds, self.sources = plan_layers(opt, f'datasets.{opt.get("phase", "train")}',
                                                               self.PER_SOURCE)
        if problems:
            raise FlareSRError('; '.join(problems))
        self.size = int(opt['transform_base']['img_size'])
        self.transform_flare = {**TRANSFORM_FLARE, **(opt.get('transform_flare') or {})}
        self.mask_type = None if opt.get('mask_type') == 'None' else opt.get('mask_type')
        cumulative = np.cumsum(np.asarray(opt.get('data_ratio') or [1.0] * len(self.sources), dtype=np.float64))
        self.cumulative_ratio = cumulative / cumulative[-1]  # ends at exactly 1: a weight of 0 is never drawn

    @classmethod
    def check_options(cls, opt, key_path):
        """Option-checker lines: bad keys, missing or empty folders, counts, ratios, unreadable image headers."""
        return plan_layers(opt, key_path, cls.PER_SOURCE, read_headers=True)[0]

    @classmethod
    def check_warnings(cls, opt, key_path):
        """Option-checker warning lines: a background folder whose sub-folders hold images that are not read (in a
        layer folder that is an error: ``_layer_folder_problems``); light sources none of whose names agree with
        their flares' (paired by sorted position all the same, as Flare7K++ pairs them)."""
        lines = []
        folder = opt.get('image_path')
        unread = unread_subfolders(os.path.expanduser(folder)) if isinstance(folder, str) else []
        if unread:
            count = f'{len(unread)} sub-folder{"s" * (len(unread) > 1)}'
            lines.append(f'{key_path}.image_path: {folder} holds images, so the images in its {count} '
                         f'({", ".join(unread[:3])}{", ..." * (len(unread) > 3)}) are not read; move them up beside '
                         'the others to use them')
        problems, _, sources = plan_layers(opt, key_path, cls.PER_SOURCE)
        for source in sources if not problems else ():
            if source.unrelated_names:
                flare, light = source.unrelated_names
                lines.append(f'{key_path}.light_dict: no light source of scattering_dict.{source.name} has a name '
                             f'that agrees with its flare\'s (e.g. {flare} <-> {light}); they are paired by sorted '
                             'position, as Flare7K++ pairs them: check that both folders list them in one order')
        return lines

    def __len__(self):
        return len(self.backgrounds)

    def _choose(self, rng):
        """(source, flare index, reflective index or None), always three draws."""
        choice, pick, pick_reflective = rng.random(), rng.random(), rng.random()
        source = self.sources[int(np.searchsorted(self.cumulative_ratio, choice, side='right'))]
        reflective = int(pick_reflective * len(source.reflectives)) if source.reflectives else None
        return source, int(pick * len(source.flares)), reflective

    def __getitem__(self, key):
        index = item_index(key, len(self))
        if self.opt.get('phase', 'train') == 'train':
            rng = sample_rng(self.opt, key, len(self))
        else:  # validation compares like with like: sample i is the same every time
            rng = np.random.default_rng([int(self.opt.get('seed', 0)), index])
        source, flare_index, reflective_index = self._choose(rng)
        background = read_image_upright(self.backgrounds[index])
        flare_path = source.flares[flare_index]
        flare = to_float32(read_image_upright(flare_path))
        light = None if source.lights is None else to_float32(read_image_upright(source.lights[flare_index]))
        if light is not None and light.shape != flare.shape:
            raise FlareSRError(f'{source.lights[flare_index]}: size {light.shape[1]}x{light.shape[0]} differs from '
                               f'its flare {flare_path} ({flare.shape[1]}x{flare.shape[0]})')
        reflective = None
        if reflective_index is not None:
            reflective = to_float32(read_image_upright(source.reflectives[reflective_index]))
        draw = draw_layers(rng, background.shape, flare.shape[1], self.size, self.transform_flare,
                           jitter=light is None, offset=self.APPLY_DC_OFFSET)
        sample = composite_layers(to_float32(crop_background(background, self.size, draw)), flare,
                                  _whole(draw), self.size, light, reflective, self.mask_type)
        out = {name: img2tensor(img) for name, img in sample.items()}
        path = self.backgrounds[index]
        return {**out, 'gamma': draw.gamma, 'lq_path': path, 'gt_path': path, 'flare_path': flare_path}


def _whole(draw):
    """The draw for a background already cropped and flipped (crop only the needed bytes, then convert)."""
    return dataclasses.replace(draw, crop=(0, 0), background_flips=(False, False))


@DATASET_REGISTRY.register()
class Flare_Pair_Loader(FlareLayerDataset):  # noqa: N801 (the field's name)
    """Flare7K (NeurIPS 2022): one pool of scattering flares, one of reflective flares, no light sources;
    brightness jitter and DC offset on every flare."""
    PER_SOURCE = False
    APPLY_DC_OFFSET = True


@DATASET_REGISTRY.register()
class Flare7kpp_Pair_Loader(FlareLayerDataset):  # noqa: N801 (the field's name)
    """Flare7K++ (TPAMI 2024): sources drawn by ``data_ratio``, light sources kept in the target."""
