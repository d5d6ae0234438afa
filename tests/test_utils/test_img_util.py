"""img_util (image I/O) on real files: every odd or hostile input converts as documented or fails naming the file."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from flare_sr.data.pairing import pair_paths
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import list_images, read_image, read_image_uint8, write_image


def _rgb(height=12, width=9, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write_raw(path, array):
    """Write with cv2 (BGR order), bypassing our writer, to create formats write_image never makes."""
    ext = os.path.splitext(str(path))[1]
    ok, buf = cv2.imencode(ext, array)
    assert ok
    buf.tofile(str(path))


def test_round_trip_unicode_and_spaces(tmp_path):
    img = _rgb()
    path = tmp_path / 'dossier ünïcødé 写真' / 'my image 1.png'
    write_image(path, img)  # creates the parent folder
    assert np.array_equal(read_image_uint8(path), img)
    as_float = read_image(path)
    assert as_float.dtype == np.float32 and as_float.shape == (12, 9, 3)
    assert np.allclose(as_float * 255, img, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ['dossier ünïcødé 写真']  # no temp file left


def test_write_float_rounds_and_clips(tmp_path):
    img = np.array([[[0.0, 0.5, 1.0], [-0.2, 1.3, 0.002]]], dtype=np.float32)
    write_image(tmp_path / 'f.png', img)
    assert read_image_uint8(tmp_path / 'f.png').tolist() == [[[0, 128, 255], [0, 255, 1]]]


def test_16bit_png_scaled_to_unit_range(tmp_path):
    deep = np.zeros((4, 6, 3), np.uint16)
    deep[..., 2] = 65535  # red in BGR order
    deep[..., 1] = 32768
    _write_raw(tmp_path / 'deep.png', deep)
    img = read_image(tmp_path / 'deep.png')
    assert img.shape == (4, 6, 3)
    assert np.allclose(img[0, 0], [1.0, 32768 / 65535, 0.0])
    assert read_image_uint8(tmp_path / 'deep.png')[0, 0].tolist() == [255, 128, 0]


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    _write_raw(tmp_path / 'gray.png', gray)
    img = read_image_uint8(tmp_path / 'gray.png')
    assert img.shape == (4, 5, 3)
    for channel in range(3):
        assert np.array_equal(img[..., channel], gray)


def test_rgba_alpha_is_dropped_not_composited(tmp_path):
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., :3] = (10, 20, 200)
    bgra[..., 3] = 0  # fully transparent: compositing on black would give 0
    _write_raw(tmp_path / 'rgba.png', bgra)
    assert read_image_uint8(tmp_path / 'rgba.png')[1, 1].tolist() == [200, 20, 10]


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    path = tmp_path / 'cmyk.jpg'
    Image.new('CMYK', (16, 8), (0, 255, 255, 0)).save(path, quality=100)  # pure red in CMYK
    assert Image.open(path).mode == 'CMYK'
    img = read_image_uint8(path)
    assert img.shape == (8, 16, 3)
    assert np.abs(img.astype(int) - [255, 0, 0]).max() <= 6


def test_one_pixel_wide_and_odd_sizes(tmp_path):
    for shape in [(7, 1, 3), (1, 13, 3), (1, 1, 3)]:
        img = _rgb(*shape[:2])
        write_image(tmp_path / 'x.png', img)
        assert np.array_equal(read_image_uint8(tmp_path / 'x.png'), img)


def test_truncated_png_rejected(tmp_path):
    write_image(tmp_path / 'ok.png', _rgb(64, 64))
    data = (tmp_path / 'ok.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:len(data) // 2])
    with pytest.raises(FlareSRError, match=r'cut\.png: truncated PNG'):
        read_image(tmp_path / 'cut.png')


def test_truncated_jpeg_rejected(tmp_path):
    _write_raw(tmp_path / 'ok.jpg', _rgb(64, 64))
    data = (tmp_path / 'ok.jpg').read_bytes()
    (tmp_path / 'cut.jpg').write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(FlareSRError, match=r'cut\.jpg: truncated JPEG'):
        read_image(tmp_path / 'cut.jpg')


@pytest.mark.parametrize('name, content, message', [
    ('zero.png', b'', 'empty file'),
    ('notes.png', b'this is a text file, not a picture\n' * 3, 'not a readable image'),
    ('garbage.jpg', bytes(range(256)) * 4, 'not a readable image'),
])
def test_bad_files_rejected_by_name(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(FlareSRError, match=f'{name}: {message}'):
        read_image(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(FlareSRError, match='nope.png: file not found'):
        read_image(tmp_path / 'nope.png')


def test_list_images_filters_and_follows_symlinked_folder(tmp_path):
    real = tmp_path / 'real'
    real.mkdir()
    for name in ['b.PNG', 'a.jpg', 'c.JpEg', 'd.bmp', 'e.tif', '.hidden.png', 'notes.txt']:
        (real / name).write_bytes(b'x')
    (real / 'sub.png').mkdir()  # a folder with an image-like name is not an image
    link = tmp_path / 'link'
    link.symlink_to(real, target_is_directory=True)
    names = [os.path.basename(p) for p in list_images(link)]
    assert names == ['a.jpg', 'b.PNG', 'c.JpEg', 'd.bmp', 'e.tif']
    assert all(p.startswith(str(link)) for p in list_images(link))


def test_list_images_missing_and_empty_folder(tmp_path):
    with pytest.raises(FlareSRError, match='absent: image folder not found'):
        list_images(tmp_path / 'absent')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('no pictures here')
    with pytest.raises(FlareSRError, match='empty: no images'):
        list_images(tmp_path / 'empty')


def _touch(folder, *names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b'x')


def test_pair_paths_dacon_and_identical_names(tmp_path):
    _touch(tmp_path / 'lq', 'train_input_10001.png', 'train_input_10000.png', 'photo 7.jpg', 'test_input_20000.png')
    _touch(tmp_path / 'gt', 'train_label_10000.png', 'train_label_10001.png', 'photo 7.png', 'test_label_20000.png')
    pairs = pair_paths(tmp_path / 'lq', tmp_path / 'gt')
    assert [(key, os.path.basename(lq), os.path.basename(gt)) for key, lq, gt in pairs] == [
        ('photo 7', 'photo 7.jpg', 'photo 7.png'),
        ('test_20000', 'test_input_20000.png', 'test_label_20000.png'),
        ('train_10000', 'train_input_10000.png', 'train_label_10000.png'),
        ('train_10001', 'train_input_10001.png', 'train_label_10001.png'),
    ]


def test_pair_paths_unpaired_file_named(tmp_path):
    _touch(tmp_path / 'lq', 'train_input_1.png', 'train_input_2.png')
    _touch(tmp_path / 'gt', 'train_label_1.png')
    with pytest.raises(FlareSRError, match=r'train_input_2\.png: no partner in .*gt \(1 unpaired'):
        pair_paths(tmp_path / 'lq', tmp_path / 'gt')
    _touch(tmp_path / 'gt', 'train_label_2.png', 'train_label_3.png')
    with pytest.raises(FlareSRError, match=r'train_label_3\.png: no partner in .*lq'):
        pair_paths(tmp_path / 'lq', tmp_path / 'gt')


def test_pair_paths_duplicate_key_named(tmp_path):
    _touch(tmp_path / 'lq', 'a.png', 'a.jpg')
    _touch(tmp_path / 'gt', 'a.png')
    with pytest.raises(FlareSRError, match=r'a\.png: same stem "a" as .*a\.jpg'):
        pair_paths(tmp_path / 'lq', tmp_path / 'gt')


def test_a_path_of_the_wrong_kind_is_named_as_such_not_as_missing(tmp_path):
    """A file given for a folder (evaluate_flare7k.py --result photo.png) or a folder for a file (--onnx, -opt)
    says which it is; 'not found' sent the user looking for a typo."""
    from flare_sr.pipeline.inference import build_onnx_predictor
    from flare_sr.utils.img_util import list_photos
    from flare_sr.utils.options_check import load_option_file
    photo = tmp_path / 'photo.png'
    write_image(photo, np.zeros((4, 4, 3), np.uint8))
    for lister in (list_images, list_photos):
        with pytest.raises(FlareSRError, match=f'^{photo}: is a file, not a folder of images$'):
            lister(photo)
        with pytest.raises(FlareSRError, match='image folder not found'):
            lister(tmp_path / 'gone')
    with pytest.raises(FlareSRError, match=f'^{tmp_path}: --onnx is a folder, not a file$'):
        build_onnx_predictor('x.yml', str(tmp_path))
    with pytest.raises(FlareSRError, match=f'^{tmp_path}: the option file is a folder, not a file$'):
        load_option_file(str(tmp_path))
