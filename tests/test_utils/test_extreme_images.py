"""Reading images at the extremes: EXIF orientation applied as viewers do (and never blocking the pixels), one
clear line for images beyond the decoders' pixel limits (through infer.py: tests/test_cli/test_infer_images.py)."""
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps, PngImagePlugin

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import peek_size, read_image_native, read_photo


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation):
    """A phone's portrait photo is stored landscape with an EXIF orientation: restore it as it is shown."""
    stored = skimage.data.astronaut()[:30, :50]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / 'phone.png', exif=exif)
    image, info = read_photo(tmp_path / 'phone.png')
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / 'phone.png')))
    assert info['orientation'] == orientation and info['bit_depth'] == 8 and info['alpha'] is None
    assert np.array_equal(np.round(image * 255).astype(np.uint8), shown)


# Each orientation as numpy turns the stored pixels for display (EXIF / TIFF 6.0 Orientation), independent of
# any decoder: 6 is stored turned 90 degrees counter-clockwise, so it is shown turned clockwise.
SHOWN = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
         5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
         8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize('orientation', range(1, 9))
def test_a_tiffs_orientation_is_applied_once_and_its_pixels_read_as_stored(tmp_path, orientation):
    """OpenCV 5 turns a TIFF by its Orientation tag while decoding (and Pillow 13 gives its size turned), so
    read_photo turned it twice: orientation 6 came out turned 180 degrees from the input, with no word. Now a TIFF
    reads as every other format: the stored pixels and size for training, turned once for inference."""
    stored = skimage.data.astronaut()[:30, :50]
    Image.fromarray(stored).save(tmp_path / 'scan.tif', tiffinfo={0x0112: orientation})
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / 'scan.png', exif=exif)  # the same, as PNG eXIf
    for name in ('scan.tif', 'scan.png'):
        image, info = read_photo(tmp_path / name)
        assert info['orientation'] == orientation, name
        assert np.array_equal(np.round(image * 255).astype(np.uint8), SHOWN[orientation](stored)), name
        assert np.array_equal(read_image_native(tmp_path / name), stored), name  # training pairs stay as stored
        assert peek_size(tmp_path / name) == (30, 50), name


def _move_exif_after_pixels(path):
    """The same PNG with its eXIf chunk moved after the image data (IDAT), where the PNG spec also allows it."""
    data, at, chunks = path.read_bytes(), 8, []
    while at < len(data):
        length = struct.unpack('>I', data[at:at + 4])[0]
        chunks.append(data[at:at + 12 + length])
        at += 12 + length
    exif = [chunk for chunk in chunks if chunk[4:8] == b'eXIf']
    rest = [chunk for chunk in chunks if chunk[4:8] != b'eXIf']
    path.write_bytes(data[:8] + b''.join(rest[:-1] + exif + rest[-1:]))  # ... IDAT, eXIf, IEND


def test_header_reads_never_decode_a_png_unless_it_has_chunks_after_its_pixels(tmp_path, monkeypatch):
    """Pillow decodes a whole PNG to look for an eXIf after the pixels (0.3 s per read of a 2448x3264 photo, twice
    per infer.py input): only files that have chunks there pay it, and their orientation is still read."""
    stored = skimage.data.astronaut()[:30, :50]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / 'before.png', exif=exif)
    (tmp_path / 'after.png').write_bytes((tmp_path / 'before.png').read_bytes())
    _move_exif_after_pixels(tmp_path / 'after.png')
    decoded = []
    load = PngImagePlugin.PngImageFile.load
    monkeypatch.setattr(PngImagePlugin.PngImageFile, 'load', lambda img: decoded.append(img) or load(img))
    cv2.imwrite(str(tmp_path / 'plain.png'), stored)  # no EXIF at all, as cameras' and OpenCV's PNGs
    assert peek_size(tmp_path / 'plain.png') == (30, 50)
    assert read_photo(tmp_path / 'plain.png')[1]['orientation'] == 1
    for name in ('before.png', 'after.png'):
        image, info = read_photo(tmp_path / name)
        assert info['orientation'] == 6 and image.shape == (50, 30, 3), name
        assert [chunk for chunk in info['metadata'] if chunk[4:8] == b'eXIf'], name  # carried to the output
    assert [img.filename for img in decoded] == [str(tmp_path / 'after.png')]  # Pillow decoded only this one


def test_pil_decompression_bomb_limit_does_not_stop_a_large_photo(tmp_path, monkeypatch):
    """PIL refuses > 2x MAX_IMAGE_PIXELS (89 Mpixel) on open: a 200-Mpixel camera photo (video2x #662)."""
    cv2.imwrite(str(tmp_path / 'big.png'), np.zeros((120, 90, 3), np.uint8))
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # the same check, scaled down to a small real file
    assert peek_size(tmp_path / 'big.png') == (120, 90)
    assert read_photo(tmp_path / 'big.png')[0].shape == (120, 90, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # the guard is lifted for the header read only


@pytest.mark.slow
def test_opencv_pixel_limit_is_one_line_naming_the_setting(tmp_path, repo_root):
    """cv2 refuses images above CV_IO_MAX_IMAGE_PIXELS (2**30) with an assertion; scaled down by its variable."""
    path = tmp_path / 'huge.png'
    cv2.imwrite(str(path), np.zeros((200, 300, 3), np.uint8))
    code = ('import sys; from flare_sr.errors import FlareSRError; from flare_sr.utils.img_util import read_image\n'
            'try:\n    read_image(sys.argv[1])\nexcept FlareSRError as error:\n    print(error)')
    env = dict(os.environ, OPENCV_IO_MAX_IMAGE_PIXELS='1000')
    result = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True, env=env,
                            cwd=repo_root, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    message = result.stdout.strip()
    assert message.startswith(f'{path}: larger than OpenCV decodes (') and '\n' not in message
    assert 'OPENCV_IO_MAX_IMAGE_PIXELS' in message


def test_unreadable_orientation_never_blocks_the_pixels(tmp_path):
    cv2.imwrite(str(tmp_path / 'plain.jpg'), np.full((9, 11, 3), 128, np.uint8))
    image, info = read_photo(tmp_path / 'plain.jpg')
    assert image.shape == (9, 11, 3) and info['orientation'] == 1
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(FlareSRError, match=r'empty\.png: empty file'):
        read_photo(tmp_path / 'empty.png')
