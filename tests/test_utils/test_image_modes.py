"""read_photo / write_image keep the kind of image that came in (grayscale, gray+alpha, 16-bit; palette and CMYK as
RGB) and refuse by name what would lose part of it (several frames or pages, a transparency OpenCV drops), from one
header read (through infer.py: tests/test_cli/test_infer_modes.py)."""
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, features

import flare_sr.utils.img_util as img_util
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import check_decodable, encode_png, read_metadata, read_photo, write_image
from tests.helpers import icc_profile

GRAY = np.random.default_rng(0).integers(0, 256, (6, 9), dtype=np.uint8)


def test_gray_is_written_as_the_mean_of_the_three_channels_not_luma(tmp_path):
    rgb = np.zeros((2, 3, 3), np.float32)
    rgb[...] = (0.2, 0.5, 0.8)  # luma (BT.601) would be 0.444, 113 in 8 bits
    write_image(tmp_path / 'g8.png', rgb, gray=True)
    write_image(tmp_path / 'g16.png', rgb, bit_depth=16, gray=True)
    write_image(tmp_path / 'u8.png', np.dstack([GRAY, GRAY, GRAY // 2]), gray=True)  # integers: the mean, rounded
    assert cv2.imread(str(tmp_path / 'g8.png'), cv2.IMREAD_UNCHANGED).tolist() == [[128] * 3] * 2
    assert cv2.imread(str(tmp_path / 'g16.png'), cv2.IMREAD_UNCHANGED).tolist() == [[32768] * 3] * 2
    mean = np.round((2 * GRAY.astype(np.float64) + GRAY // 2) / 3)
    assert np.array_equal(cv2.imread(str(tmp_path / 'u8.png'), cv2.IMREAD_UNCHANGED), mean)
    for name, mode in (('g8.png', 'L'), ('g16.png', 'I;16'), ('u8.png', 'L')):
        with Image.open(tmp_path / name) as written:
            assert written.mode == mode


@pytest.mark.parametrize('bit_depth, dtype', [(8, np.uint8), (16, np.uint16)])
def test_gray_and_alpha_are_written_as_rgba_of_equal_channels(bit_depth, dtype):
    """OpenCV writes no 2-channel PNG: the gray in all three colour channels (no cast), the alpha exact."""
    rng = np.random.default_rng(bit_depth)
    gray, alpha = (rng.integers(0, np.iinfo(dtype).max + 1, (7, 11), dtype=dtype) for _ in range(2))
    data = encode_png(gray, compress_level=3, bit_depth=bit_depth, alpha=alpha)
    assert data[25] == 6 and data[24] == bit_depth  # IHDR colour type RGBA, the depth asked
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == dtype and decoded.shape == (7, 11, 4)
    assert all(np.array_equal(decoded[:, :, channel], gray) for channel in range(3))
    assert np.array_equal(decoded[:, :, 3], alpha)


def _png_gray_alpha_16(path, gray, alpha):
    """A 16-bit gray+alpha PNG (colour type 4), which neither Pillow nor OpenCV writes: a camera app's or GIMP's."""
    height, width = gray.shape
    rows = np.stack([gray, alpha], axis=2).astype('>u2').view(np.uint8).reshape(height, -1)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 (None)

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 16, 4, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(scanlines.tobytes())) + chunk(b'IEND', b''))


def _save(path, kind):
    """Write the test image as ``kind``; returns what read_photo should say of it: (gray, bit_depth, alpha)."""
    alpha = GRAY[::-1]
    if kind == 'L':
        Image.fromarray(GRAY).save(path)
    elif kind == 'I;16':
        Image.fromarray(GRAY.astype(np.uint16) * 257).save(path)
    elif kind == '1':
        Image.fromarray(GRAY > 127).save(path)
    elif kind == 'LA':
        Image.fromarray(np.dstack([GRAY, alpha]), 'LA').save(path)
    elif kind == 'LA;16':  # Pillow has no such mode (it opens one as RGBA)
        _png_gray_alpha_16(path, GRAY.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257)
        return True, 16, alpha.astype(np.uint16) * 257
    elif kind == 'P':
        Image.fromarray(GRAY).convert('P').save(path, transparency=int(GRAY[0, 0]))
        return False, 8, np.where(GRAY == GRAY[0, 0], 0, 255)
    elif kind == 'CMYK':
        Image.fromarray(np.dstack([GRAY] * 4), 'CMYK').save(path)
        return False, 8, None  # OpenCV reads it as BGRA with an opaque alpha the file does not have
    return True, 16 if kind == 'I;16' else 8, alpha if kind == 'LA' else None


@pytest.mark.parametrize('kind, name', [('L', 'g.png'), ('L', 'g.jpg'), ('L', 'g.tif'), ('L', 'g.pgm'),
                                        ('I;16', 'g.png'), ('I;16', 'g.tif'), ('1', 'g.png'), ('LA', 'g.png'),
                                        ('LA;16', 'g.png'), ('P', 'g.png'), ('CMYK', 'g.tif')])
def test_read_photo_says_gray_depth_and_alpha_as_the_file_has_them(tmp_path, kind, name):
    gray, bit_depth, alpha = _save(tmp_path / name, kind)
    check_decodable(tmp_path / name)
    image, info = read_photo(tmp_path / name)
    assert (info['gray'], info['bit_depth']) == (gray, bit_depth)
    assert image.shape == (6, 9, 3) and image.dtype == np.float32
    if gray:  # 3 equal channels for the model
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    assert (info['alpha'] is None) == (alpha is None)
    if alpha is not None:
        assert np.array_equal(info['alpha'], alpha)
    write_image(tmp_path / 'out.png', image, bit_depth=info['bit_depth'], alpha=info['alpha'],
                metadata=info['metadata'], gray=info['gray'])
    written = cv2.imread(str(tmp_path / 'out.png'), cv2.IMREAD_UNCHANGED)
    assert written.dtype == (np.uint16 if bit_depth == 16 else np.uint8)
    # gray+alpha is written as RGBA
    assert written.shape == ((6, 9) if gray and alpha is None else (6, 9, 3 if alpha is None else 4))
    if gray and name != 'g.jpg':  # an unchanged photo is written back as it was read
        expected = {'L': GRAY, 'I;16': GRAY.astype(np.uint16) * 257, '1': np.where(GRAY > 127, 255, 0),
                    'LA': GRAY, 'LA;16': GRAY.astype(np.uint16) * 257}[kind]
        assert np.array_equal(written if written.ndim == 2 else written[:, :, 0], expected)


@pytest.mark.parametrize('name, make, line', [
    ('page.tif', lambda path: Image.fromarray(np.dstack([GRAY, GRAY]), 'LA').save(path),
     'gray TIFF with an alpha channel, which OpenCV drops (the output would be opaque); save it as a gray+alpha PNG'),
    ('key.png', lambda path: Image.fromarray(GRAY).save(path, transparency=7),
     'gray PNG with a transparent colour (tRNS), which OpenCV drops (the output would be opaque); save it as a '
     'gray+alpha PNG'),
    ('key16.png', lambda path: Image.fromarray(GRAY.astype(np.uint16)).save(path, transparency=7),
     'gray PNG with a transparent colour (tRNS), which OpenCV drops (the output would be opaque); save it as a '
     'gray+alpha PNG'),
    ('clip.gif', lambda path: Image.new('RGB', (9, 6)).save(path, save_all=True, append_images=[
        Image.new('RGB', (9, 6), (level,) * 3) for level in (100, 200)]),
     'animated GIF with 3 frames: flare_sr removes flare from still photos; export the frame you want as PNG'),
    pytest.param('clip.avif', lambda path: Image.new('RGB', (9, 6)).save(path, save_all=True, append_images=[
        Image.new('RGB', (9, 6), (level,) * 3) for level in (100, 200)]),
        'animated AVIF with 3 frames: flare_sr removes flare from still photos; export the frame you want as PNG',
        marks=pytest.mark.skipif(not features.check('avif'), reason="this Pillow writes no AVIF")),
])
def test_what_opencv_would_read_only_in_part_is_refused_by_name(tmp_path, name, make, line):
    make(tmp_path / name)
    for reader in (check_decodable, read_photo):
        with pytest.raises(FlareSRError) as refusal:
            reader(tmp_path / name)
        assert str(refusal.value) == f'{tmp_path / name}: {line}'


@pytest.mark.parametrize('subfiletype, refused', [(1, False), (0, True)])
def test_a_tiffs_reduced_resolution_pages_are_not_pages_of_its_own(tmp_path, subfiletype, refused):
    """A camera's TIFF carries its preview as a second page marked reduced-resolution (NewSubfileType 1): the photo
    is the first page, as an MPO's is; a second page of its own is refused."""
    tifffile = pytest.importorskip('tifffile')
    photo = np.dstack([GRAY, GRAY[::-1], GRAY[:, ::-1]])
    tifffile.imwrite(tmp_path / 'camera.tif', photo, photometric='rgb')
    tifffile.imwrite(tmp_path / 'camera.tif', photo[::2, ::2], photometric='rgb', append=True, subfiletype=subfiletype)
    if refused:
        with pytest.raises(FlareSRError) as refusal:
            check_decodable(tmp_path / 'camera.tif')
        assert str(refusal.value) == (f'{tmp_path / "camera.tif"}: multi-page TIFF with 2 pages: flare_sr removes '
                                      'flare from still photos; export the page you want as PNG')
        return
    check_decodable(tmp_path / 'camera.tif')
    image, info = read_photo(tmp_path / 'camera.tif')
    assert np.array_equal(np.round(image * 255).astype(np.uint8), photo) and info['bit_depth'] == 8


def test_the_input_check_reads_a_header_once_and_decodes_nothing(tmp_path, monkeypatch):
    """A multi-page TIFF was decoded whole after its header, to look for a reason OpenCV might give."""
    first, *rest = (Image.new('RGB', (9, 6), (index, 0, 0)) for index in range(3))
    first.save(tmp_path / 'pages.tif', save_all=True, append_images=rest)
    Image.fromarray(GRAY).save(tmp_path / 'gray.png')
    opened, decoded = [], []
    open_image, decode = img_util.Image.open, img_util.cv2.imdecode
    monkeypatch.setattr(img_util.Image, 'open', lambda path, *args: opened.append(path) or open_image(path, *args))
    monkeypatch.setattr(img_util.cv2, 'imdecode', lambda *args: decoded.append(args) or decode(*args))
    with pytest.raises(FlareSRError, match='multi-page TIFF with 3 pages'):
        check_decodable(tmp_path / 'pages.tif')
    check_decodable(tmp_path / 'gray.png')
    assert opened == [str(tmp_path / 'pages.tif'), str(tmp_path / 'gray.png')] and decoded == []


def test_a_profile_goes_only_where_its_colour_model_is(tmp_path):
    """A PNG's ICC profile must describe its colour type: a gray one for a gray PNG, an RGB one for RGB."""
    Image.fromarray(GRAY).save(tmp_path / 'gray.jpg', icc_profile=icc_profile(b'GRAY'))
    Image.fromarray(GRAY).save(tmp_path / 'tagged.jpg', icc_profile=icc_profile())  # an RGB profile on a gray JPEG
    Image.fromarray(np.dstack([GRAY] * 4), 'CMYK').save(tmp_path / 'print.jpg', icc_profile=icc_profile(b'CMYK'))
    chunk = img_util._png_chunk(b'iCCP', b'ICC Profile\0\0' + zlib.compress(icc_profile(b'GRAY')))
    _, info = read_photo(tmp_path / 'gray.jpg')
    assert (info['gray'], info['metadata'], info['not_carried']) == (True, [chunk], [])
    assert read_metadata(tmp_path / 'gray.jpg') == []  # for test.py's outputs, which are RGB
    _, info = read_photo(tmp_path / 'tagged.jpg')
    assert (info['metadata'], info['not_carried']) == ([], ['RGB ICC profile (the output is gray)'])
    _, info = read_photo(tmp_path / 'print.jpg')
    assert (info['gray'], info['metadata']) == (False, [])
    assert info['not_carried'] == ['CMYK ICC profile (the output is RGB)']
