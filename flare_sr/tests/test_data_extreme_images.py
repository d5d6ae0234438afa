"""Images at the extremes through infer.py on real files: 16-bit in -> 16-bit out (values checked against the
8-bit path), alpha kept, EXIF orientation applied, a single file as --input, tiny and odd sizes, one clear
line for images beyond the decoders' pixel limits; and test.py's saved outputs keep a 16-bit set's depth."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
import yaml
from PIL import Image, ImageOps

from flare_sr.errors import FlareSRError
from flare_sr.tests.test_cascade_infer import _infer_in_process, _option_file
from flare_sr.tests.test_cascade_model import _checkpoints, _opt
from flare_sr.tests.test_train_support import TEST_SCRIPT, run_train
from flare_sr.utils.img_util import peek_size, read_photo


def _raw(path):
    """The file's own pixels, BGR(A) order, own depth."""
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_16bit_input_gives_16bit_output_with_the_8bit_paths_values(tmp_path, capsys):
    option_file = _option_file(tmp_path)
    photo = skimage.data.astronaut()[100:161, 150:233]  # odd size 61x83
    (tmp_path / 'in8').mkdir()
    (tmp_path / 'in16').mkdir()
    cv2.imwrite(str(tmp_path / 'in8' / 'shot.png'), photo[:, :, ::-1])
    # the same picture at 16 bits (x257 is exact: x/255 == 257x/65535), so the network sees identical input
    cv2.imwrite(str(tmp_path / 'in16' / 'shot.png'), photo[:, :, ::-1].astype(np.uint16) * 257)
    for depth in ('8', '16'):
        code, err = _infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / f'in{depth}',
                                      '--output', tmp_path / f'out{depth}', '--tile', 64, '--overlap', 16)
        assert code == 0, err
    out8, out16 = _raw(tmp_path / 'out8' / 'shot.png'), _raw(tmp_path / 'out16' / 'shot.png')
    assert out8.dtype == np.uint8 and out16.dtype == np.uint16 and out16.shape == out8.shape == (61, 83, 3)
    # rounding the 16-bit output to 8 bits gives the 8-bit output (the same float, rounded once at 1/65535)
    assert np.abs(out16.astype(np.float64) / 257 - out8).max() <= 0.5 + 1e-9
    assert np.count_nonzero(out16 % 257) > out16.size // 2  # real 16-bit precision, not 8-bit values x257


def test_alpha_channel_is_kept_at_its_depth(tmp_path, capsys):
    option_file = _option_file(tmp_path)
    rgb = skimage.data.astronaut()[:40, :56, ::-1].astype(np.uint16) * 257
    alpha = np.tile(np.linspace(0, 65535, 56).astype(np.uint16), (40, 1))
    (tmp_path / 'in').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'logo.png'), np.dstack([rgb, alpha]))
    code, err = _infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in' / 'logo.png',
                                  '--output', tmp_path / 'out')
    assert code == 0, err
    out = _raw(tmp_path / 'out' / 'logo.png')
    assert out.dtype == np.uint16 and out.shape == (40, 56, 4)
    assert np.array_equal(out[:, :, 3], alpha)


def test_single_file_input(tmp_path, capsys):
    option_file = _option_file(tmp_path)
    (tmp_path / 'photo.png').write_bytes(cv2.imencode('.png', skimage.data.astronaut()[:50, :70])[1].tobytes())
    code, err = _infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'photo.png',
                                  '--output', tmp_path / 'out')
    assert code == 0, err
    assert os.listdir(tmp_path / 'out') == ['photo.png'] and _raw(tmp_path / 'out' / 'photo.png').shape == (50, 70, 3)
    code, err = _infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'nothing.png',
                                  '--output', tmp_path / 'out')
    assert code == 2 and err == f'error: {tmp_path / "nothing.png"}: --input is neither an image file nor a folder\n'


@pytest.mark.parametrize('height, width', [(1, 1), (1, 37), (45, 2), (7, 300), (300, 7)])
def test_tiny_thin_and_odd_sizes_come_back_at_their_size(tmp_path, capsys, height, width):
    option_file = _option_file(tmp_path)
    (tmp_path / 'in').mkdir()
    img = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'in' / 'tiny.png'), img)
    code, err = _infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out',
                                  '--tile', 64, '--overlap', 16)
    assert code == 0, err
    assert _raw(tmp_path / 'out' / 'tiny.png').shape == (height, width, 3)


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


def test_pil_decompression_bomb_limit_does_not_stop_a_large_photo(tmp_path, monkeypatch):
    """PIL refuses > 2x MAX_IMAGE_PIXELS (89 Mpixel) on open: a 200-Mpixel camera photo (video2x #662)."""
    cv2.imwrite(str(tmp_path / 'big.png'), np.zeros((120, 90, 3), np.uint8))
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # the same check, scaled down to a small real file
    assert peek_size(tmp_path / 'big.png') == (120, 90)
    assert read_photo(tmp_path / 'big.png')[0].shape == (120, 90, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # the guard is lifted for the header read only


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


def test_test_py_saves_16bit_outputs_for_a_16bit_test_set(tmp_path, repo_root):
    """flare_sr/test.py with save_img: the 16-bit set's outputs are 16-bit and round to the 8-bit set's outputs."""
    _, _, paths = _checkpoints(tmp_path)
    photo = skimage.data.astronaut()[:64, :80, ::-1]
    for depth, scale, dtype in (('8', 1, np.uint8), ('16', 257, np.uint16)):
        for side, img in (('lq', photo), ('gt', 255 - photo)):
            (tmp_path / depth / side).mkdir(parents=True)
            cv2.imwrite(str(tmp_path / depth / side / f'{side}_0001.png'), img.astype(dtype) * scale)
    name = f'pytest_depth_{os.getpid()}'
    opt = {k: v for k, v in _opt(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    opt.update(name=name, datasets={f'test_{depth}': dict(
        name=f'set{depth}', type='PairedFlareDataset', phase='test', dataroot_lq=str(tmp_path / depth / 'lq'),
        dataroot_gt=str(tmp_path / depth / 'gt'), io_backend=dict(type='disk')) for depth in ('8', '16')})
    opt['val'].update(save_img=True, suffix=None)
    option_file = tmp_path / 'test.yml'
    option_file.write_text(yaml.safe_dump(opt))
    results = os.path.join(repo_root, 'results', name)
    try:
        run = run_train(option_file, tmp_path, timeout=300, script=TEST_SCRIPT)
        assert run.returncode == 0, run.stderr[-2000:]
        out8, out16 = (_raw(os.path.join(results, 'visualization', f'set{depth}', 'lq_0001.png'))
                       for depth in ('8', '16'))
    finally:
        shutil.rmtree(results, ignore_errors=True)
    assert out8.dtype == np.uint8 and out16.dtype == np.uint16 and out16.shape == out8.shape == (64, 80, 3)
    assert np.abs(out16.astype(np.float64) / 257 - out8).max() <= 0.5 + 1e-6
    assert np.count_nonzero(out16 % 257) > out16.size // 2
