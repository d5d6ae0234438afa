"""Read, write, list and pair images so that every odd file either converts in a documented way or fails by name.

Conversions (all readers): grayscale -> 3 equal channels; gray+alpha and RGBA -> alpha simply dropped
(no compositing); 16-bit -> divided by 65535; CMYK JPEG -> RGB (libjpeg's conversion); EXIF
orientation is ignored on purpose, so inputs stay pixel-aligned with their labels.
Errors (FlareSRError naming the path): missing, zero-byte, not an image, truncated PNG/JPEG, unsupported
sample type. Files are read as bytes (``numpy.fromfile`` + ``cv2.imdecode``) because ``cv2.imread``
fails on some non-ASCII paths.
"""
import os
import re

import cv2
import numpy as np

from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_START = b'\xff\xd8'
# Dacon naming: train_input_10000.png <-> train_label_10000.png (also test_input_N <-> test_label_N).
_DACON_STEM = re.compile(r'^(?P<prefix>.*?)_(?:input|label)_(?P<number>\d+)$')


def _check_file(path):
    """Missing, a folder or empty: the failures that need no decoding."""
    if not os.path.exists(path):
        raise FlareSRError(f'{path}: file not found')
    if not os.path.isfile(path):
        raise FlareSRError(f'{path}: not a file')
    if os.path.getsize(path) == 0:
        raise FlareSRError(f'{path}: empty file (0 bytes)')


def _read_bytes(path):
    _check_file(path)
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise FlareSRError(f'{path}: cannot read ({error.strerror or error})') from error


def _check_complete(path, data):
    """Some libjpeg builds decode a cut-off JPEG into a grey-padded image without complaint: check the end markers."""
    raw = data.tobytes()
    if raw.startswith(_PNG_SIGNATURE) and b'IEND' not in raw[-64:]:
        raise FlareSRError(f'{path}: truncated PNG (no IEND chunk at the end)')
    if raw.startswith(_JPEG_START) and not raw.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise FlareSRError(f'{path}: truncated JPEG (no end-of-image marker FFD9)')


def _decode(path):
    """Decode to an HxWx3 RGB array of the file's own depth (uint8 or uint16)."""
    data = _read_bytes(path)
    _check_complete(path, data)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise FlareSRError(f'{path}: not a readable image (corrupt or unsupported format)')
    if img.dtype not in (np.uint8, np.uint16):
        raise FlareSRError(f'{path}: unsupported sample type {img.dtype} (use 8- or 16-bit images)')
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return np.repeat(img[:, :, :1], 3, axis=2)
    if channels in (3, 4):  # BGR, BGRA
        return np.ascontiguousarray(img[:, :, 2::-1])
    raise FlareSRError(f'{path}: unsupported channel count {channels}')


def read_image(path):
    """HxWx3 float32 RGB in [0, 1] (conversions and errors in the module docstring)."""
    path = os.fspath(path)
    img = _decode(path)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / np.float32(scale)


def read_image_uint8(path):
    """HxWx3 uint8 RGB: exact for 8-bit files (LMDB packing must not round-trip through float); 16-bit rounded."""
    path = os.fspath(path)
    img = _decode(path)
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    return img


def image_size(path):
    """(height, width) of an image, fully validated by decoding it."""
    img = _decode(os.fspath(path))
    return img.shape[0], img.shape[1]


def peek_size(path):
    """(height, width) from the file header only: fast for listing hundreds of large photos, not a validation."""
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    _check_file(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise FlareSRError(f'{path}: not a readable image ({error})') from error
    return height, width


def to_uint8(img):
    """uint8 stays; float in [0, 1] is clipped and rounded."""
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def encode_png(img_rgb, compress_level=1):
    """PNG bytes of an RGB image (uint8, or float in [0, 1])."""
    img = to_uint8(np.asarray(img_rgb))
    if img.ndim == 3:
        img = img[:, :, ::-1]
    ok, buffer = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise FlareSRError(f'cannot PNG-encode an image of shape {img.shape}')
    return buffer.tobytes()


def write_image(path, img):
    """Write an RGB image (float in [0, 1] or uint8) as PNG atomically; parent folders are created."""
    path = os.fspath(path)
    payload = encode_png(img, compress_level=3)
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as handle:
            handle.write(payload)


def list_images(folder):
    """Sorted image paths directly in ``folder`` (case-insensitive extensions, hidden files skipped).

    A symlinked folder and symlinked files are followed. Sub-folders are not searched: the Dacon
    layout is flat, and recursing would let two sub-folders produce the same pairing key.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FlareSRError(f'{folder}: image folder not found')
    paths = sorted(
        os.path.join(folder, name) for name in os.listdir(folder)
        if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, name)))
    if not paths:
        raise FlareSRError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    return paths


def pair_key(path):
    """Pairing key of a file: Dacon ``train_input_N``/``train_label_N`` -> ``train_N``, otherwise the stem."""
    stem = os.path.splitext(os.path.basename(path))[0]
    match = _DACON_STEM.match(stem)
    if match:
        return f"{match.group('prefix')}_{match.group('number')}"
    return stem


def _index_by_key(paths):
    index = {}
    for path in paths:
        key = pair_key(path)
        if key in index:
            raise FlareSRError(f'{path}: same pairing key "{key}" as {index[key]}; keep one of them')
        index[key] = path
    return index


def pair_paths(lq_dir, gt_dir):
    """[(key, lq_path, gt_path)] sorted by key; Dacon naming and identical stems pair, extensions may differ."""
    lq = _index_by_key(list_images(lq_dir))
    gt = _index_by_key(list_images(gt_dir))
    lq_only = sorted(set(lq) - set(gt))
    gt_only = sorted(set(gt) - set(lq))
    if lq_only or gt_only:
        orphan, partner_dir = (lq[lq_only[0]], gt_dir) if lq_only else (gt[gt_only[0]], lq_dir)
        total = len(lq_only) + len(gt_only)
        raise FlareSRError(f'{orphan}: no partner in {partner_dir} ({total} unpaired file(s) in all)')
    return [(key, lq[key], gt[key]) for key in sorted(lq)]
