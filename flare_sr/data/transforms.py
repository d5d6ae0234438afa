"""Crop, flip and to-tensor for training samples: one implementation for every flare_sr dataset.

Named after BasicSR's ``paired_random_crop``, ``augment`` and ``img2tensor`` (same concepts, same order of
random draws), with two differences that make samples resumable and cheap:

- randomness comes from a ``numpy.random.Generator`` (``flare_sr.data.sampling.sample_rng``), never from
  the global ``random`` module, so a sample is a pure function of its sampler key;
- images stay in the file's own dtype (uint8 / uint16) through crop and flips, and ``img2tensor`` scales
  to float only the pixels that are kept (converting a 2448x3264 frame before a 256 crop wasted most of
  the disk path's time).
"""
import numpy as np
import torch

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import to_float32


def _as_list(imgs):
    return list(imgs) if isinstance(imgs, (list, tuple)) else [imgs]


def _unwrap(imgs):
    return imgs[0] if len(imgs) == 1 else imgs


def paired_random_crop(img_gts, img_lqs, gt_patch_size, rng, gt_path=None):
    """The same random ``gt_patch_size`` window of every image (scale 1: flare removal keeps the size).

    Args:
        img_gts, img_lqs: HxWxC arrays (or lists of them, all the same size); ``img_lqs`` may be an empty
            list (a single clean image). ``gt_patch_size``: the side of a square window, or its
            ``(height, width)``. ``rng``: numpy Generator; draws the top, then the left edge.
        gt_path: names the image in the error raised when it is smaller than the window.
    Returns:
        (img_gts, img_lqs) cropped views, each a single array when a single array was given.
    """
    gts, lqs = _as_list(img_gts), _as_list(img_lqs)
    height, width = gts[0].shape[:2]
    for img in lqs:
        if img.shape[:2] != (height, width):
            raise FlareSRError(f'{gt_path}: label is {height}x{width} but its input is {img.shape[0]}x{img.shape[1]}')
    if isinstance(gt_patch_size, (list, tuple)):
        size_h, size_w = (int(side) for side in gt_patch_size)
        name = f'the {size_h}x{size_w} window'
    else:
        size_h = size_w = int(gt_patch_size)
        name = f'gt_size {size_h}'
    if height < size_h or width < size_w:
        raise FlareSRError(f'{gt_path}: {height}x{width} is smaller than {name}')
    top = int(rng.integers(0, height - size_h + 1))
    left = int(rng.integers(0, width - size_w + 1))
    window = (slice(top, top + size_h), slice(left, left + size_w))
    return _unwrap([img[window] for img in gts]), _unwrap([img[window] for img in lqs]) if lqs else []


def augment(imgs, hflip, rotation, rng, transpose=True):
    """The same horizontal flip, and with ``rotation`` vertical flip and transpose, on every image (the 8
    symmetries of a square). Draws one number per enabled flip, in BasicSR's order (hflip, vflip, rot90).

    Args: ``imgs`` HxWxC array or list of them; ``transpose`` False keeps the shape (whole non-square frames,
    which a batch stacks): ``rotation`` is then the vertical flip only. Returns views in the same form.
    """
    imgs = _as_list(imgs)
    do_hflip = hflip and rng.random() < 0.5
    vflip = rotation and rng.random() < 0.5
    rot90 = rotation and transpose and rng.random() < 0.5
    out = []
    for img in imgs:
        if do_hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if rot90:
            img = img.transpose(1, 0, 2)
        out.append(img)
    return _unwrap(out)


def img2tensor(imgs):
    """HxWxC RGB arrays (uint8, uint16 or float32 in [0, 1]) -> float32 CxHxW tensors in [0, 1].

    Integer images are divided by 255 / 65535 (unlike BasicSR's ``img2tensor``, which only casts). Channels
    stay in order: flare_sr's readers already give RGB.
    """
    tensors = [torch.from_numpy(np.ascontiguousarray(to_float32(img).transpose(2, 0, 1))) for img in _as_list(imgs)]
    return _unwrap(tensors)
