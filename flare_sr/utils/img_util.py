"""Read, write, list and pair images so that every odd file either converts in a documented way or fails by name.

Conversions (all readers): grayscale -> 3 equal channels; gray+alpha and RGBA -> alpha simply dropped
(no compositing); 16-bit -> divided by 65535; CMYK JPEG and TIFF -> RGB (libjpeg's / libtiff's conversion);
palette -> RGB; EXIF orientation is ignored on purpose, so inputs stay pixel-aligned with their labels.
``read_photo`` (for inference) instead applies the EXIF orientation and keeps the bit depth, grayscale and alpha
for ``write_image``, which writes a grayscale photo back as one channel; it refuses an animated or multi-page image
(the decoder reads the first frame alone) and a gray image whose transparency the decoder drops.
Errors (FlareSRError naming the path): missing, zero-byte, not an image, truncated PNG/JPEG, unsupported
sample type, more pixels than OpenCV decodes (OPENCV_IO_MAX_IMAGE_PIXELS). Files are read as bytes
(``numpy.fromfile`` + ``cv2.imdecode``) because ``cv2.imread`` fails on some non-ASCII paths.
``read_photo`` also reads the photo's colour description and EXIF (Pillow, header only), and ``write_image``
writes them into the PNG as chunks, beside a ``Software: flare_sr`` text chunk that marks the file as ours.
"""
import functools
import io
import os
import struct
import zlib

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError, features

from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.hardware import warn

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
# Photos to restore (read_photo) may also come in these, where both OpenCV (pixels) and Pillow (header) read them.
_PHOTO_FORMATS = {'.webp': 'webp', '.avif': 'avif', '.jp2': 'jpg_2000', '.j2k': 'jpg_2000', '.jpe': None,
                  '.gif': None, '.pbm': None, '.pgm': None, '.ppm': None, '.pnm': None}
# Images that no reader here decodes, with what to do instead.
_UNREADABLE = {'.heic': 'HEIC/HEIF', '.heif': 'HEIC/HEIF', '.hif': 'HEIC/HEIF', '.dng': 'camera raw',
               '.cr2': 'camera raw', '.cr3': 'camera raw', '.nef': 'camera raw', '.arw': 'camera raw',
               '.orf': 'camera raw', '.rw2': 'camera raw', '.raf': 'camera raw', '.exr': 'OpenEXR'}
SOFTWARE = 'flare_sr'  # the PNG text chunk Software of every file write_image writes
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_START = b'\xff\xd8'
_EXIF_ORIENTATION = 0x0112
# ICC colour spaces a photo's profile may describe, as the warning names them when the output cannot carry it
_PROFILE_SPACES = {b'GRAY': 'gray', b'RGB ': 'RGB', b'CMYK': 'CMYK'}


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


def _too_large(source, detail):
    return FlareSRError(f'{source}: larger than OpenCV decodes ({detail}); raise the limit with the environment '
                        'variable OPENCV_IO_MAX_IMAGE_PIXELS (pixels) or split the image')


def _unsupported_sample(source, sample):
    return FlareSRError(f'{source}: unsupported sample type {sample} (use 8- or 16-bit images)')


def _decode_limit_error(source, error):
    """cv2's decoders refuse images above CV_IO_MAX_IMAGE_PIXELS (2**30 by default) with an assertion."""
    if 'MAX_IMAGE' in str(error):
        return _too_large(source, str(error).strip().splitlines()[-1])
    return FlareSRError(f'{source}: not a readable image ({str(error).strip().splitlines()[-1]})')


# TIFF SampleFormat: what libtiff hands OpenCV, which decode_image takes only as 8- or 16-bit unsigned
_TIFF_SAMPLE_KINDS = {1: 'uint', 2: 'int', 3: 'float'}
_TAIL = 1 << 16  # bytes read from a file's end: a cut-off PNG or JPEG shows there


def check_decodable(path):
    """FlareSRError naming ``path`` for what ``read_photo`` would refuse, found without decoding: not an image, a
    float or 32-bit TIFF (the decoder takes 8- and 16-bit samples), several frames or pages (``_refusal``), a
    transparency the decoder drops, more pixels than OpenCV decodes, a truncated PNG or JPEG (its end). Pillow reads
    the header once, the end is read once; only a TIFF whose header Pillow cannot read (an RGB float32 one, as OpenCV
    writes it) is decoded, to say why. For a pre-flight over many large photos: well under a second each."""
    path = os.fspath(path)
    try:
        header = _header(path, refusal=True)
    except FlareSRError:
        if path.lower().endswith(('.tif', '.tiff')):
            read_image_native(path)  # OpenCV's reason, e.g. unsupported sample type float32
        raise
    if header['refusal']:
        raise header['refusal']
    height, width = header['size']
    limit = int(os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS', 1 << 30))  # OpenCV's own default
    if height * width > limit:
        raise _too_large(path, f'{width}x{height} = {height * width:,} pixels, limit {limit:,}')
    with open(path, 'rb') as handle:
        head = handle.read(8)
        handle.seek(max(8, os.fstat(handle.fileno()).st_size - _TAIL))
        _check_complete(path, np.frombuffer(head + handle.read(), np.uint8))


# Multi-frame formats as the refusal names them: (kind, unit); any other Pillow reads is named by its format.
_MULTI_FRAME = {'GIF': ('animated GIF', 'frame'), 'PNG': ('animated PNG', 'frame'), 'WEBP': ('animated WebP', 'frame'),
                'AVIF': ('animated AVIF', 'frame'), 'TIFF': ('multi-page TIFF', 'page')}


def _refusal(img, path):
    """The FlareSRError for what ``read_photo`` refuses although Pillow reads the header (``img``), else None.

    A float or 32-bit sample; several frames or pages (the decoder reads the first alone, so the others would be
    lost without a word; an MPO is accepted: a camera JPEG whose first image is the photo, the rest its previews or
    a second view); a gray image with a transparency OpenCV drops (a gray+alpha TIFF, a gray PNG's transparent
    colour), whose output would come out opaque.
    """
    sample = _header_sample(img)
    if sample:
        return _unsupported_sample(path, sample)
    if getattr(img, 'is_animated', False) and img.format != 'MPO':  # it stops at frame 2; n_frames reads them all
        frames = _full_resolution_pages(img) if img.format == 'TIFF' else img.n_frames
        kind, unit = _MULTI_FRAME.get(img.format, (img.format, 'frame'))
        if frames > 1:
            return FlareSRError(f'{path}: {kind} with {frames} {unit}s: flare_sr removes flare from still photos; '
                                f'export the {unit} you want as PNG')
    if _is_gray(img) and _has_alpha(img) and (img.format == 'TIFF' or 'transparency' in img.info):
        what = 'an alpha channel' if img.format == 'TIFF' else 'a transparent colour (tRNS)'
        return FlareSRError(f'{path}: gray {img.format} with {what}, which OpenCV drops (the output would be '
                            'opaque); save it as a gray+alpha PNG')
    return None


def _full_resolution_pages(img):
    """The pages of a TIFF (Pillow, header only) that are images of their own, not a reduced-resolution copy of one
    (NewSubfileType bit 0: a thumbnail or preview, as a camera's TIFF or DNG carries; the first page is the photo)."""
    pages = 0
    for index in range(img.n_frames):
        img.seek(index)
        pages += not img.tag_v2.get(254, 0) & 1
    img.seek(0)
    return pages


def _is_gray(img):
    """Whether a Pillow image (header only) is grayscale: modes 1, L, LA, I;16, I... (1-, 2-, 4-, 8-, 16-bit gray),
    and a 16-bit gray+alpha PNG, which Pillow opens as RGBA (it has no such mode; its raw mode says LA)."""
    return Image.getmodebase(img.mode) == 'L' or bool(img.format == 'PNG' and img.tile and img.tile[0][3] == 'LA;16B')


def _has_alpha(img):
    """Whether a Pillow image (header only) has an alpha channel or a transparent colour (tRNS, GIF)."""
    return bool({'A', 'a'} & set(img.getbands())) or 'transparency' in img.info


def _header_sample(img):
    """``'float32'``-style name of a PIL image's samples where the decoder refuses them, else None (PNG, JPEG and
    the rest are 8 or 16 bits; a TIFF says its own in BitsPerSample and SampleFormat)."""
    if img.mode == 'F' or img.mode.startswith('F;'):
        return 'float32'
    if img.format != 'TIFF':
        return None
    bits, kinds = img.tag_v2.get(258, 8), img.tag_v2.get(339, 1)
    bits = max(bits) if isinstance(bits, tuple) else bits
    kind = max(kinds) if isinstance(kinds, tuple) else kinds
    if bits > 16 or kind != 1:
        return f'{_TIFF_SAMPLE_KINDS.get(kind, "sample format " + str(kind) + " ")}{bits}'
    return None


def decode_image(data, source, keep_alpha=False):
    """Decode image bytes to an HxWx3 RGB array of the file's own depth (uint8 or uint16).

    ``data``: a uint8 numpy buffer (file or LMDB record); ``source`` names it in errors. With ``keep_alpha``
    returns ``(rgb, alpha)``, alpha an HxW array of the same dtype or None.
    """
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise _decode_limit_error(source, error) from None
    if img is None or img.size == 0:
        raise FlareSRError(f'{source}: not a readable image (corrupt or unsupported format)')
    if bytes(data[:4]) in _TIFF_MAGIC and _opencv_turns_tiffs():
        img = _orient(img, _UNDO_ORIENTATION.get(_tiff_orientation(data), 1))  # back to the order the file stores
    if img.dtype not in (np.uint8, np.uint16):
        raise _unsupported_sample(source, img.dtype)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        rgb, alpha = np.repeat(img[:, :, :1], 3, axis=2), (img[:, :, 1] if channels == 2 else None)
    elif channels in (3, 4):  # BGR, BGRA
        rgb, alpha = np.ascontiguousarray(img[:, :, 2::-1]), (img[:, :, 3] if channels == 4 else None)
    else:
        raise FlareSRError(f'{source}: unsupported channel count {channels}')
    return (rgb, alpha) if keep_alpha else rgb


_TIFF_MAGIC = (b'II*\x00', b'MM\x00*')
# the EXIF orientation that undoes each (6 and 8 turn opposite ways; the others are their own inverse)
_UNDO_ORIENTATION = {orientation: {6: 8, 8: 6}.get(orientation, orientation) for orientation in range(1, 9)}


@functools.cache
def _opencv_turns_tiffs():
    """Whether this OpenCV applies a TIFF's Orientation tag while decoding, ``IMREAD_UNCHANGED`` or not (5.x does;
    every other format, and the pixel order the readers here promise, is the file's stored order): probed once on a
    1x2 TIFF turned 180 degrees."""
    buffer = io.BytesIO()
    Image.fromarray(np.array([[0, 255]], np.uint8)).save(buffer, format='TIFF', tiffinfo={_EXIF_ORIENTATION: 3})
    img = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and int(img.reshape(-1)[0]) == 255


def _orientation(exif):
    """The EXIF orientation (1..8) of an ``Image.Exif``; 1 where it is absent or not 1..8."""
    orientation = exif.get(_EXIF_ORIENTATION, 1)
    return orientation if orientation in range(1, 9) else 1


def _tiff_orientation(data):
    """The Orientation tag (1..8) of TIFF bytes, from the header only; 1 where it is absent or unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _orientation(img.getexif())
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 1


def _decode(path, keep_alpha=False):
    data = _read_bytes(path)
    _check_complete(path, data)
    return decode_image(data, path, keep_alpha)


def to_float32(img):
    """uint8 / uint16 array -> float32 in [0, 1] (divided by 255 / 65535); float32 stays."""
    if img.dtype == np.float32:
        return img
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / np.float32(scale)


def short_side_size(height, width, short_side):
    """(h, w) of an image of ``height`` x ``width`` resized to a short side of ``short_side`` px, the long side after
    the aspect ratio (192x256 at 48 -> (48, 64)); the whole-frame size of SyntheticFlareDataset's ``downscale_to``
    and CascadeModel's ``glow_size``."""
    long_side = max(1, round(max(height, width) * short_side / min(height, width)))
    return (short_side, long_side) if height <= width else (long_side, short_side)


def read_image_native(path):
    """HxWx3 RGB of the file's own depth (uint8 or uint16): crop this, then ``to_float32`` only what is kept."""
    return _decode(os.fspath(path))


def read_image_upright(path):
    """``read_image_native`` with the EXIF orientation applied, as viewers show the file: for layers that must
    align with another file (a flare and its light source) when only one carries an orientation tag."""
    path = os.fspath(path)
    return _orient(_decode(path), _header(path)['orientation'])


def read_image(path):
    """HxWx3 float32 RGB in [0, 1] (conversions and errors in the module docstring)."""
    return to_float32(read_image_native(path))


def read_photo(path):
    """A photo to restore, as the user sees it: (HxWx3 float32 RGB in [0, 1], info).

    Unlike ``read_image`` (training pairs must stay pixel-aligned) the EXIF orientation is applied; a grayscale
    photo comes as 3 equal channels. ``info``: ``bit_depth`` 8 or 16 (1-, 2- and 4-bit gray: 8), ``gray`` (the file
    is grayscale: Pillow modes 1, L, LA, I;16, I), ``alpha`` (HxW array of that depth, oriented) or None,
    ``orientation`` (the EXIF value applied, 1 = none), ``metadata`` (the photo's ICC profile, gAMA/cHRM/sRGB and
    EXIF as PNG chunks, EXIF Orientation set to 1 where it was applied) and ``not_carried`` (names of metadata the
    chunks leave out, e.g. ``XMP``). Write the result back with ``write_image(..., bit_depth, alpha, metadata,
    gray)``. A palette image (GIF, 8-bit PNG) is RGB (``gray`` False): its output is no longer 256 colours.
    FlareSRError for all that ``check_decodable`` names, and a file the decoder cannot decode.
    """
    path = os.fspath(path)
    header = _header(path, metadata=True, refusal=True)
    if header['refusal']:
        raise header['refusal']
    orientation = header['orientation']
    rgb, alpha = _decode(path, keep_alpha=True)
    rgb = _orient(rgb, orientation)
    # OpenCV gives a CMYK TIFF an opaque alpha channel the file does not have
    alpha = None if alpha is None or not header['alpha'] else _orient(alpha, orientation)
    info = dict(bit_depth=16 if rgb.dtype == np.uint16 else 8, gray=header['gray'], alpha=alpha,
                orientation=orientation, metadata=header['chunks'], not_carried=header['not_carried'])
    return to_float32(rgb), info


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def _exif_orientation_reset(tiff):
    """EXIF (TIFF bytes) with IFD0's Orientation set to 1, every other byte kept; None if it cannot be parsed."""
    try:
        order = {b'II': '<', b'MM': '>'}[tiff[:2]]
        ifd = struct.unpack_from(order + 'I', tiff, 4)[0]
        for entry in range(struct.unpack_from(order + 'H', tiff, ifd)[0]):
            at = ifd + 2 + 12 * entry
            tag, kind = struct.unpack_from(order + 'HH', tiff, at)
            if tag == _EXIF_ORIENTATION and kind == 3:  # SHORT, stored in the entry itself
                return tiff[:at + 8] + struct.pack(order + 'H', 1) + tiff[at + 10:]
    except (KeyError, struct.error):
        return None
    return tiff


def _metadata_chunks(img, orientation, gray):
    """(PNG chunks carrying ``img``'s colour description and EXIF into a ``gray`` or RGB PNG, names of what they
    leave out)."""
    info, chunks, not_carried = img.info, [], []
    profile = info.get('icc_profile')
    space = profile[16:20] if profile else None  # the ICC header's data colour space
    if space in _PROFILE_SPACES and space != (b'GRAY' if gray else b'RGB '):
        # a PNG's profile must describe its own colour model (a gray one in a colour PNG is ignored by libpng)
        not_carried.append(f'{_PROFILE_SPACES[space]} ICC profile (the output is {"gray" if gray else "RGB"})')
    elif profile:
        chunks.append(_png_chunk(b'iCCP', b'ICC Profile\0\0' + zlib.compress(profile)))
    if 'gamma' in info:  # Pillow reads gAMA and cHRM as value / 100000
        chunks.append(_png_chunk(b'gAMA', struct.pack('>I', round(info['gamma'] * 100000))))
    if 'chromaticity' in info:
        chunks.append(_png_chunk(b'cHRM', struct.pack('>8I', *(round(v * 100000) for v in info['chromaticity']))))
    if 'srgb' in info:
        chunks.append(_png_chunk(b'sRGB', bytes([info['srgb']])))
    exif = info.get('exif')
    if exif:
        exif = exif[6:] if exif.startswith(b'Exif\0\0') else exif
        exif = _exif_orientation_reset(exif) if orientation != 1 else exif  # the pixels are turned already
        if exif is None:
            not_carried.append('EXIF (unreadable orientation)')
        else:
            chunks.append(_png_chunk(b'eXIf', exif))
    elif img.format == 'TIFF' and len(img.getexif()) > 0:
        not_carried.append('TIFF tags')
    if info.get('xmp') or info.get('XML:com.adobe.xmp'):
        not_carried.append('XMP')  # it may hold an orientation or size the restored pixels no longer have
    return chunks, not_carried


def _with_chunks(png, chunks):
    """The pieces of a PNG with ``chunks`` inserted right after IHDR (before IDAT, as iCCP, gAMA, cHRM and sRGB
    must be), to write one after the other without copying the image data."""
    end = len(_PNG_SIGNATURE) + 8 + 13 + 4  # IHDR: length, type, 13 bytes, CRC
    return [memoryview(png)[:end], *chunks, memoryview(png)[end:]]


def written_by_flare_sr(path):
    """True for a PNG that ``write_image`` wrote (its text chunk ``Software: flare_sr``)."""
    try:
        with Image.open(path) as img:
            return img.format == 'PNG' and img.info.get('Software') == SOFTWARE
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def _orient(img, orientation):
    """Apply an EXIF orientation (1..8) to an HxW[xC] array."""
    if orientation in (5, 6, 7, 8):
        img = np.swapaxes(img, 0, 1)  # transpose; 6 and 8 become rotations with a flip below
    if orientation in (2, 3, 6, 7):
        img = img[:, ::-1]
    if orientation in (3, 4, 7, 8):
        img = img[::-1]
    return np.ascontiguousarray(img)


def read_image_uint8(path):
    """HxWx3 uint8 RGB: exact for 8-bit files (LMDB packing must not round-trip through float); 16-bit rounded."""
    img = read_image_native(path)
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    return img


def image_size(path):
    """(height, width) of an image, fully validated by decoding it."""
    img = _decode(os.fspath(path))
    return img.shape[0], img.shape[1]


def _header(path, metadata=False, photo=True, refusal=False):
    """What the file's header says (Pillow opens it once; no pixels are decoded), a dict: ``size`` (height, width),
    ``orientation`` (EXIF, 1..8), ``gray`` (``_is_gray``), ``alpha`` (``_has_alpha``). With ``refusal`` also
    ``refusal`` (``_refusal``: a FlareSRError, or None; it reads past the first frame, which listing sizes does not
    need). With ``metadata`` also ``chunks`` and ``not_carried`` (``_metadata_chunks``), for
    a ``photo`` (``read_photo``'s output: turned by the EXIF orientation, gray where the file is) or else for an
    RGB image pixel-aligned with the file (``read_metadata``).

    PIL's decompression-bomb guard (MAX_IMAGE_PIXELS, 89 Mpixel) is for decoding untrusted pixels; a header
    read allocates nothing, and a 200-Mpixel camera photo is a real input, so it is lifted here.
    """
    _check_file(path)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as img:
            width, height = img.size
            if img.format == 'TIFF':  # Pillow 13 gives an oriented TIFF's size turned; its tags give what is stored
                width, height = img.tag_v2.get(256, width), img.tag_v2.get(257, height)
            header = dict(size=(height, width), orientation=_orientation(_exif(img, path)), gray=_is_gray(img),
                          alpha=_has_alpha(img))
            if refusal:
                header['refusal'] = _refusal(img, path)
            if metadata:
                header['chunks'], header['not_carried'] = _metadata_chunks(  # gray+alpha is written as RGBA
                    img, header['orientation'] if photo else 1, header['gray'] and not header['alpha'] and photo)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise FlareSRError(f'{path}: not a readable image ({error})') from error
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return header


def _png_chunks_after_pixels(path):
    """Whether a PNG holds chunks after its image data (IDAT) other than IEND; True where it cannot tell."""
    with open(path, 'rb') as handle:
        handle.seek(len(_PNG_SIGNATURE))
        seen_pixels = False
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return True
            length, kind = struct.unpack('>I4s', header)
            if kind == b'IEND':
                return False
            if kind == b'IDAT':
                seen_pixels = True
            elif seen_pixels:
                return True
            handle.seek(length + 4, os.SEEK_CUR)  # the data and its CRC


def _exif(img, path):
    """``img.getexif()`` without decoding the pixels where that changes nothing.

    Pillow's PNG reader decodes the whole image to reach an eXIf or text chunk after the pixels (0.3 s for a
    2448x3264 photo, once per header read). Where the file has nothing after its pixels, the generic reader gives
    the same answer from the chunks read on opening.
    """
    if img.format == 'PNG' and not _png_chunks_after_pixels(path):
        return Image.Image.getexif(img)
    return img.getexif()


def read_metadata(path):
    """The PNG chunks that carry an image file's colour description and EXIF, for ``write_image`` of an output
    pixel-aligned with the file (not turned: its EXIF orientation still applies); () for a path that is not a
    readable file (e.g. an LMDB key)."""
    try:
        return _header(os.fspath(path), metadata=True, photo=False)['chunks']
    except FlareSRError:
        return ()


def peek_size(path):
    """(height, width) from the file header only: fast for listing hundreds of large photos, not a validation."""
    return _header(os.fspath(path))['size']


def to_uint8(img):
    """uint8 stays; float in [0, 1] is clipped and rounded."""
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(img):
    """uint16 stays; uint8 is scaled by 257 (exact); float in [0, 1] is clipped and rounded."""
    if img.dtype == np.uint16:
        return img
    if img.dtype == np.uint8:
        return img.astype(np.uint16) * np.uint16(257)
    return (np.clip(img, 0, 1) * 65535.0 + 0.5).astype(np.uint16)


def encode_png(img, compress_level=1, bit_depth=8, alpha=None):
    """PNG bytes of an HxWx3 RGB or HxW gray image (uint8, uint16, or float in [0, 1]) at ``bit_depth`` 8 or 16.

    ``alpha``: optional HxW channel (any of those dtypes, converted to ``bit_depth``) written as RGBA (a gray image
    with alpha too, its three channels equal: OpenCV writes 1, 3 or 4 channels).
    """
    convert = to_uint16 if bit_depth == 16 else to_uint8
    img = convert(np.asarray(img))
    if img.ndim == 2 and alpha is not None:  # OpenCV writes no 2-channel PNG: gray+alpha as RGBA, channels equal
        img = np.dstack([img] * 3)
    if img.ndim == 3:
        img = img[:, :, ::-1]
        if alpha is not None:
            img = np.concatenate([img, convert(np.asarray(alpha))[:, :, None]], axis=2)
    ok, buffer = cv2.imencode('.png', np.ascontiguousarray(img), [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise FlareSRError(f'cannot PNG-encode an image of shape {img.shape}')
    return buffer.tobytes()


def write_image(path, img, bit_depth=8, alpha=None, metadata=(), gray=False):
    """Write an HxWx3 RGB or HxW gray image (float in [0, 1], uint8 or uint16) as an 8- or 16-bit PNG atomically
    (RGBA with ``alpha``); parent folders are created. ``gray``: an RGB image is written as one channel, the mean of
    its three (a grayscale photo restored on 3 equal channels, ``read_photo``'s ``gray``); with ``alpha``, as RGBA
    whose three channels are that mean.
    ``metadata``: PNG chunks from ``read_photo``'s info (the input's colour profile and EXIF); the text chunk
    ``Software: flare_sr`` is always written (``written_by_flare_sr``)."""
    path = os.fspath(path)
    img = np.asarray(img)
    if gray and img.ndim == 3:
        # The mean, not ITU-R luma: the model saw one gray value in 3 equal channels, so its 3 outputs are 3
        # estimates of that value, each as good, and their mean has the least noise (1/3 of one channel's variance;
        # BT.601's weights 0.299/0.587/0.114 leave 0.45). Luma weighs colours by how bright they look: a gray photo
        # has none. Both give back a gray value unchanged.
        img = (img if img.dtype.kind == 'f' else to_float32(img)).mean(axis=2)
    payload = encode_png(img, compress_level=3, bit_depth=bit_depth, alpha=alpha)
    pieces = _with_chunks(payload, [_png_chunk(b'tEXt', b'Software\0' + SOFTWARE.encode()), *metadata])
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as handle:
            handle.writelines(pieces)


def list_images(folder):
    """Sorted image paths directly in ``folder`` (case-insensitive extensions, hidden files skipped).

    A symlinked folder and symlinked files are followed. Sub-folders are not searched: the Dacon
    layout is flat, and recursing would let two sub-folders produce the same pairing key.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FlareSRError(f'{folder}: ' + ('is a file, not a folder of images' if os.path.exists(folder)
                                            else 'image folder not found'))
    names = sorted(name for name in os.listdir(folder) if not name.startswith('.'))
    paths = [os.path.join(folder, name) for name in names
             if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name))]
    if not paths:
        raise FlareSRError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    _say_skipped_images(folder, names)
    return paths


_SKIPPED_SAID = set()  # folders whose skipped images were named in this process


def _say_skipped_images(folder, names):
    """One warning line per folder and process naming the images ``list_images`` leaves out: other formats
    (WebP, GIF, HEIC, ...; a validation set silently scored fewer images) and broken links."""
    other = [name for name in names if os.path.splitext(name)[1].lower() in {**_PHOTO_FORMATS, **_UNREADABLE}]
    broken = [name for name in names if name.lower().endswith(IMAGE_EXTENSIONS)
              and not os.path.isfile(os.path.join(folder, name))]
    key = os.path.realpath(folder)
    if not (other or broken) or key in _SKIPPED_SAID:
        return
    _SKIPPED_SAID.add(key)
    parts = []
    if other:
        parts.append(f'{len(other)} image(s) of a format datasets do not read ({", ".join(other[:3])}'
                     f'{", ..." if len(other) > 3 else ""}; they read {", ".join(IMAGE_EXTENSIONS)}: convert them)')
    if broken:
        parts.append(f'{len(broken)} broken link(s) or non-file(s) ({", ".join(broken[:3])}'
                     f'{", ..." if len(broken) > 3 else ""})')
    warn(f'{folder}: skipped ' + ' and '.join(parts))


def photo_extensions():
    """The extensions ``read_photo`` reads here: IMAGE_EXTENSIONS and those of _PHOTO_FORMATS that this OpenCV
    build decodes and this Pillow reads."""
    return IMAGE_EXTENSIONS + tuple(ext for ext, feature in _PHOTO_FORMATS.items()
                                    if cv2.haveImageWriter(ext) and (feature is None or features.check(feature)))


def unreadable_format(path):
    """The format name of an image no reader here decodes (``HEIC/HEIF``, ``camera raw``, ``AVIF`` without
    its codec, ...), else None."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _UNREADABLE:
        return _UNREADABLE[ext]
    if ext in _PHOTO_FORMATS and ext not in photo_extensions():
        return ext[1:].upper()
    return None


def list_photos(folder):
    """(sorted photo paths directly in ``folder``, what was skipped): ``read_photo``'s formats, symlinks followed.

    Skipped (a dict of lists of names): ``sub-folders`` (not searched: the outputs are one flat folder), ``hidden``,
    ``unreadable`` (images of a format no reader here decodes, e.g. HEIC), ``broken links`` (``name -> target``: a
    symbolic link whose file does not exist), ``not images``. FlareSRError when ``folder`` is missing or holds no
    photo.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FlareSRError(f'{folder}: ' + ('is a file, not a folder of images' if os.path.exists(folder)
                                            else 'image folder not found'))
    extensions = photo_extensions()
    paths, skipped = [], {'sub-folders': [], 'hidden': [], 'unreadable': [], 'broken links': [], 'not images': []}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith('.'):
            skipped['hidden'].append(name)
        elif os.path.isdir(path):
            skipped['sub-folders'].append(name)
        elif os.path.islink(path) and not os.path.exists(path) and not unreadable_format(name):
            skipped['broken links'].append(f'{name} -> {os.readlink(path)}')
        elif name.lower().endswith(extensions) and os.path.isfile(path):
            paths.append(path)
        else:
            skipped['unreadable' if unreadable_format(name) else 'not images'].append(name)
    if not paths:
        raise FlareSRError(f'{folder}: no images ({", ".join(extensions)}) in this folder')
    return paths, skipped
