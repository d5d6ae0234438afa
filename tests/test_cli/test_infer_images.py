"""infer.py and test.py on extreme images: 16-bit in gives 16-bit out, alpha kept, single files, tiny and thin sizes."""
import os
import shutil

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageCms

from tests.helpers import cascade_checkpoints, cascade_option_file, infer_in_process, run_cascade_test


def _raw(path):
    """The file's own pixels, BGR(A) order, own depth."""
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_16bit_input_gives_16bit_output_with_the_8bit_paths_values(tmp_path, capsys):
    option_file = cascade_option_file(tmp_path)
    photo = skimage.data.astronaut()[100:161, 150:233]  # odd size 61x83
    (tmp_path / 'in8').mkdir()
    (tmp_path / 'in16').mkdir()
    cv2.imwrite(str(tmp_path / 'in8' / 'shot.png'), photo[:, :, ::-1])
    # the same picture at 16 bits (x257 is exact: x/255 == 257x/65535), so the network sees identical input
    cv2.imwrite(str(tmp_path / 'in16' / 'shot.png'), photo[:, :, ::-1].astype(np.uint16) * 257)
    for depth in ('8', '16'):
        code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / f'in{depth}', '--output',
                                     tmp_path / f'out{depth}', '--tile', 64, '--overlap', 16)
        assert code == 0, err
    out8, out16 = _raw(tmp_path / 'out8' / 'shot.png'), _raw(tmp_path / 'out16' / 'shot.png')
    assert out8.dtype == np.uint8 and out16.dtype == np.uint16 and out16.shape == out8.shape == (61, 83, 3)
    # rounding the 16-bit output to 8 bits gives the 8-bit output (the same float, rounded once at 1/65535)
    assert np.abs(out16.astype(np.float64) / 257 - out8).max() <= 0.5 + 1e-9
    assert np.count_nonzero(out16 % 257) > out16.size // 2  # real 16-bit precision, not 8-bit values x257


def test_alpha_channel_is_kept_at_its_depth(tmp_path, capsys):
    option_file = cascade_option_file(tmp_path)
    rgb = skimage.data.astronaut()[:40, :56, ::-1].astype(np.uint16) * 257
    alpha = np.tile(np.linspace(0, 65535, 56).astype(np.uint16), (40, 1))
    (tmp_path / 'in').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'logo.png'), np.dstack([rgb, alpha]))
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in' / 'logo.png', '--output',
                                 tmp_path / 'out')
    assert code == 0, err
    out = _raw(tmp_path / 'out' / 'logo.png')
    assert out.dtype == np.uint16 and out.shape == (40, 56, 4)
    assert np.array_equal(out[:, :, 3], alpha)


def test_single_file_input(tmp_path, capsys):
    option_file = cascade_option_file(tmp_path)
    (tmp_path / 'photo.png').write_bytes(cv2.imencode('.png', skimage.data.astronaut()[:50, :70])[1].tobytes())
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'photo.png', '--output',
                                 tmp_path / 'out')
    assert code == 0, err
    assert os.listdir(tmp_path / 'out') == ['photo.png'] and _raw(tmp_path / 'out' / 'photo.png').shape == (50, 70, 3)
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'nothing.png', '--output',
                                 tmp_path / 'out')
    assert code == 2 and err == f'error: {tmp_path / "nothing.png"}: --input is neither an image file nor a folder\n'


@pytest.mark.parametrize('height, width', [(1, 1), (1, 37), (45, 2), (7, 300), (300, 7)])
def test_tiny_thin_and_odd_sizes_come_back_at_their_size(tmp_path, capsys, height, width):
    option_file = cascade_option_file(tmp_path)
    (tmp_path / 'in').mkdir()
    img = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'in' / 'tiny.png'), img)
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out',
                                 '--tile', 64, '--overlap', 16)
    assert code == 0, err
    assert _raw(tmp_path / 'out' / 'tiny.png').shape == (height, width, 3)


@pytest.mark.slow
def test_test_py_saves_16bit_outputs_for_a_16bit_test_set(tmp_path):
    """flare_sr/test.py with save_img: the 16-bit set's outputs are 16-bit and round to the 8-bit set's outputs;
    an input's colour profile and EXIF (orientation included: the pixels are not turned) go with its output."""
    _, _, paths = cascade_checkpoints(tmp_path)
    photo = skimage.data.astronaut()[:64, :80, ::-1]
    for depth, scale, dtype in (('8', 1, np.uint8), ('16', 257, np.uint16)):
        for side, img in (('lq', photo), ('gt', 255 - photo)):
            (tmp_path / depth / side).mkdir(parents=True)
            cv2.imwrite(str(tmp_path / depth / side / f'{side}_0001.png'), img.astype(dtype) * scale)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()
    exif = Image.Exif()
    exif.update({0x0112: 6, 0x010F: 'flare-test'})
    Image.fromarray(photo[:, :, ::-1]).save(tmp_path / '8' / 'lq' / 'lq_0001.png', icc_profile=profile, exif=exif)
    name = f'pytest_depth_{os.getpid()}'
    run, results = run_cascade_test(paths, tmp_path, name, {f'set{depth}': tmp_path / depth for depth in ('8', '16')},
                                    timeout=300)
    try:
        assert run.returncode == 0, run.stderr[-2000:]
        out8, out16 = (_raw(os.path.join(results, 'visualization', f'set{depth}', 'lq_0001.png'))
                       for depth in ('8', '16'))
        with Image.open(os.path.join(results, 'visualization', 'set8', 'lq_0001.png')) as saved:
            metadata8 = saved.info.get('icc_profile'), dict(saved.getexif())
    finally:
        shutil.rmtree(results, ignore_errors=True)
    assert out8.dtype == np.uint8 and out16.dtype == np.uint16 and out16.shape == out8.shape == (64, 80, 3)
    assert np.abs(out16.astype(np.float64) / 257 - out8).max() <= 0.5 + 1e-6
    assert metadata8 == (profile, {0x0112: 6, 0x010F: 'flare-test'})
    assert np.count_nonzero(out16 % 257) > out16.size // 2
