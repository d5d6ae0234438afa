"""Whole frames, area-downscaled: the training and validation samples of a net that sees the whole frame small
(CascadeModel's glow stage, ``cascade.glow_size``), for SyntheticFlareDataset (flare drawn on the frame at full
resolution, then downscaled) and PairedFlareDataset (real pairs, downscaled) alike.

``downscale_to: N`` makes the short side N px, the long side following the frame's aspect ratio (``short_side_size``:
192x256 at 48 -> 48x64), with cv2.INTER_AREA, the mean over each output pixel's footprint, as ``CascadeModel``
downscales a test frame (``F.interpolate(mode='area')``). A portrait frame is turned to landscape, so that photos of
one aspect ratio in both orientations give one shape a batch can stack; ``use_rot`` then flips vertically but never
transposes a frame that is not square. There is no crop, so ``downscale_to`` excludes ``gt_size``.
"""
import cv2

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import short_side_size
from flare_sr.utils.yaml_numbers import positive_whole


def dataset_phase(key_path):
    """BasicSR's phase of the dataset at ``key_path`` (``datasets.train`` -> train, ``datasets.val_2`` -> val): its
    key up to the first ``_``, as BasicSR reads it."""
    return key_path.split('.')[-1].split('_')[0]


def store_whole(opt, keys):
    """A whole float of ``keys`` in ``opt`` (``downscale_to: 48.0``) stored as the int, as the option checker stores
    counts (in place)."""
    for key in keys:
        if positive_whole(opt.get(key)) is not None:
            opt[key] = positive_whole(opt[key])


def downscale_problems(opt, where):
    """Lines about ``opt['downscale_to']`` (``where`` starts each: ``'datasets.train.'``); [] when absent or fine."""
    value = opt.get('downscale_to')
    if value is None:
        return []
    if positive_whole(value) is None:
        return [f'{where}downscale_to: expected a positive integer (or ~: off), got {value!r}']
    if opt.get('gt_size'):
        return [f'{where}downscale_to: a sample is then the whole downscaled frame; remove gt_size '
                f'({opt["gt_size"]!r})']
    return []


def frame_shape(height, width, short):
    """(height, width) of a ``height`` x ``width`` frame downscaled to a short side of ``short`` px, landscape."""
    return tuple(sorted(short_side_size(height, width, short)))


def downscale_frames(images, short, landscape=True):
    """HxWxC float32 images of one size, area-downscaled to a short side of ``short`` px and, with ``landscape`` (in
    training, where a batch stacks them), turned to landscape (``frame_shape``); a list, in order. The sizes were
    checked from the headers (``whole_sample_shape``): no frame is smaller than ``short``."""
    height, width = images[0].shape[:2]
    size = short_side_size(height, width, short)[::-1]  # cv2: (width, height)
    small = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images]
    return [image.transpose(1, 0, 2) if landscape and height > width else image for image in small]


SAMPLE_KEYS = ('downscale_to', 'batch_size_per_gpu', 'gt_size')  # the keys sample_shape's lines start with


def sample_problem(error, key_path=None):
    """The line of a FlareSRError from a dataset's ``sample_shape``: after ``key_path.`` (the option checker's
    ``datasets.train``) or ``option `` (the dataset's own, ``key_path`` None) where it starts with the key at fault,
    after ``key_path: `` (or as it is) where it names a file (an unreadable header)."""
    text = str(error)
    if text.split(' ', 1)[0] in SAMPLE_KEYS:
        return f'{key_path}.{text}' if key_path else f'option {text}'
    return f'{key_path}: {text}' if key_path else text


def whole_sample_shape(sizes, short, batch, advice, frame=None):
    """The (height, width) of the whole samples of images of ``sizes`` ([(name, (height, width))], from the headers,
    in order): each image's frame (``frame(height, width)``, default the whole image), downscaled to a short side of
    ``short`` px and turned to landscape where ``short`` is set; the first one's, or None without images.

    Raises FlareSRError (its text starts with the key at fault, without the key path) for a frame smaller than
    ``short`` (it would be upscaled, and a net that sees frames at ``short`` px would learn blur), and, when ``batch``
    (batch_size_per_gpu) stacks more than one, for a frame of another shape than the first, naming both and ending
    with ``advice``.
    """
    first = None
    for name, (height, width) in sizes:
        height, width = frame(height, width) if frame else (height, width)
        if short and min(height, width) < short:
            raise FlareSRError(f'downscale_to {short}: {name} gives a {height}x{width} frame, smaller (frames are '
                               'downscaled, never upscaled); lower downscale_to or leave the photo out')
        shape = frame_shape(height, width, short) if short else (height, width)
        if first is None:
            first = name, shape
        elif shape != first[1] and batch > 1:
            raise FlareSRError(
                f'batch_size_per_gpu {batch}: {name} gives a {shape[0]}x{shape[1]} sample, {first[0]} a '
                f'{first[1][0]}x{first[1][1]} one, and a batch stacks them; {advice}, or batch_size_per_gpu: 1')
    return None if first is None else first[1]
