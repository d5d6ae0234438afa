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


def positive_whole(value):
    """``value`` as an int where it is a positive whole number (48, or 48.0 as the option checker takes counts), else
    None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


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


def downscale_frames(images, short, source):
    """HxWxC float32 images of one size, area-downscaled to a short side of ``short`` px and turned to landscape
    (``frame_shape``); a list, in order. A frame smaller than ``short`` is a FlareSRError naming ``source``: it
    would be upscaled, and a net that sees frames at ``short`` px would learn blur."""
    height, width = images[0].shape[:2]
    if min(height, width) < short:
        raise FlareSRError(f'{source}: a {height}x{width} frame is smaller than downscale_to {short} (frames are '
                           'downscaled, never upscaled); lower downscale_to or leave the photo out')
    size = short_side_size(height, width, short)[::-1]  # cv2: (width, height)
    small = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images]
    return [image.transpose(1, 0, 2) if height > width else image for image in small]


def check_batch_shapes(shapes, batch, advice):
    """One FlareSRError when the samples of ``shapes`` ([(name, (height, width))], in order) differ in shape and
    ``batch`` (batch_size_per_gpu) stacks more than one: it names the first two that differ and ends with
    ``advice``."""
    if batch < 2:
        return
    first = None
    for name, shape in shapes:
        if first is None:
            first = name, tuple(shape)
        elif tuple(shape) != first[1]:
            raise FlareSRError(
                f'option batch_size_per_gpu {batch}: {name} gives a {shape[0]}x{shape[1]} sample, {first[0]} a '
                f'{first[1][0]}x{first[1][1]} one, and a batch stacks them; {advice}, or batch_size_per_gpu: 1')
