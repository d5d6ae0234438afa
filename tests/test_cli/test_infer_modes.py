"""infer.py on images that are not plain RGB stills: a grayscale photo comes back grayscale (8/16-bit, with its alpha
and gray profile), palette and CMYK come back RGB; an animated or multi-page image is refused with the other bad
inputs in one line, before any inference."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from flare_sr.cli import infer_main
from flare_sr.pipeline.inference import build_inference_model, predict_files
from flare_sr.utils.img_util import read_photo, to_uint8, to_uint16, write_image
from tests.helpers import cascade_option_file, icc_profile, run_main_in_process, subprocess_env

GRAY = skimage.data.camera()[200:241, 220:277]  # 41x57, odd on both sides


@pytest.fixture
def option_file(tmp_path):
    return cascade_option_file(tmp_path)


def _prediction(model, path):
    """The model's float HxWx3 output for the photo at ``path``, as predict_files computes it."""
    image, _ = read_photo(path)
    with torch.no_grad():
        return model.predict(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()


def test_grayscale_inputs_come_out_grayscale_with_the_rgb_paths_values(tmp_path, capsys, option_file):
    """A grayscale photo came out RGB with a colour cast of up to 2 levels (the model's 3 channels written as they
    were); now one channel, the mean of the three, at the input's depth and with its alpha and gray profile."""
    photos = tmp_path / 'in'
    photos.mkdir()
    alpha = np.tile(np.linspace(0, 255, GRAY.shape[1]).astype(np.uint8), (GRAY.shape[0], 1))
    Image.fromarray(np.dstack([GRAY] * 3)).save(photos / 'rgb.png')  # the same picture as RGB
    Image.fromarray(GRAY).save(photos / 'gray8.png')
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(photos / 'gray16.png')  # Pillow writes it as I;16
    Image.fromarray(np.dstack([GRAY, alpha]), 'LA').save(photos / 'graya.png')
    Image.fromarray(GRAY > 127).save(photos / 'bw.png')  # 1-bit
    Image.fromarray(GRAY).save(photos / 'scan.jpg', icc_profile=icc_profile(b'GRAY'), quality=95)
    Image.fromarray(GRAY).save(photos / 'page.tif')
    code, _, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', photos, '--output',
                                                    tmp_path / 'out'], capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if 'warning' in line] == [
        'warning: not carried to the PNG outputs (their ICC profile, gAMA/cHRM/sRGB and EXIF are): TIFF tags of 1 '
        'input (page.tif)']  # Pillow's TIFF tags, as for an RGB TIFF
    model = build_inference_model(option_file)
    rgb_path = _prediction(model, photos / 'rgb.png')
    assert np.array_equal(_prediction(model, photos / 'gray8.png'), rgb_path)  # the model sees the same input
    spread = to_uint8(rgb_path).max(axis=2).astype(int) - to_uint8(rgb_path).min(axis=2)
    assert spread.max() >= 1  # the cast a grayscale photo came out with when written as RGB
    modes = {'rgb.png': 'RGB', 'gray8.png': 'L', 'gray16.png': 'I;16', 'graya.png': 'RGBA', 'bw.png': 'L',
             'scan.jpg': 'L', 'page.tif': 'L'}
    for name, mode in modes.items():
        prediction = _prediction(model, photos / name)
        expected = (to_uint16 if mode == 'I;16' else to_uint8)(prediction if mode == 'RGB' else prediction.mean(2))
        output = tmp_path / 'out' / (os.path.splitext(name)[0] + '.png')
        with Image.open(output) as restored:
            assert restored.mode == mode, name
        raw = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
        if mode == 'RGBA':  # gray+alpha: three equal channels (OpenCV writes no 2-channel PNG)
            assert raw.shape == (41, 57, 4) and np.array_equal(raw[:, :, 3], alpha)
            assert np.array_equal(raw[:, :, 0], raw[:, :, 1]) and np.array_equal(raw[:, :, 0], raw[:, :, 2])
            raw = raw[:, :, 0]
        elif mode == 'RGB':
            raw = raw[:, :, ::-1]
        assert raw.dtype == expected.dtype and raw.shape == expected.shape and np.array_equal(raw, expected), name
    gray8 = cv2.imread(str(tmp_path / 'out' / 'gray8.png'), cv2.IMREAD_UNCHANGED)
    rgb_out = cv2.imread(str(tmp_path / 'out' / 'rgb.png')).astype(float)
    assert np.abs(gray8 - rgb_out.mean(axis=2)).max() <= 1  # the mean of the RGB path's rounded channels, rounded
    with Image.open(tmp_path / 'out' / 'scan.png') as restored:
        assert restored.info['icc_profile'] == icc_profile(b'GRAY')  # a gray PNG may carry a gray profile


class _ChannelShifts:
    """A stand-in model whose 3 output channels differ, as a net's do on a gray input: the input shifted by
    ``SHIFTS`` per channel; its flare layer (DeflareModel's ``--save-flare``) is the input halved, shifted too."""
    SHIFTS = torch.tensor([0.002, 0.004, 0.009]).view(1, 3, 1, 1)
    predicts_flare = True

    def predict(self, lq):
        self.flare_layer = lq / 2 + self.SHIFTS
        return lq + self.SHIFTS


def test_the_restored_image_and_its_flare_layer_are_written_gray_at_the_inputs_depth(tmp_path):
    Image.fromarray(GRAY.astype(np.uint16) * 257 + 100).save(tmp_path / 'gray16.png')
    plan = [(str(tmp_path / 'gray16.png'), str(tmp_path / 'out' / 'gray16.png'))]
    predict_files(_ChannelShifts(), plan, progress=False, flare_plan={plan[0][0]: str(tmp_path / 'flare.png')})
    lq = torch.from_numpy(read_photo(tmp_path / 'gray16.png')[0]).permute(2, 0, 1)[None]
    shifts = _ChannelShifts.SHIFTS
    for path, layer in ((plan[0][1], lq + shifts), (tmp_path / 'flare.png', lq / 2 + shifts)):
        with Image.open(path) as written:
            assert written.mode == 'I;16'
        expected = to_uint16(layer[0].permute(1, 2, 0).numpy().mean(axis=2))
        assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), expected)


def test_palette_and_cmyk_inputs_come_out_rgb(tmp_path, capsys, option_file):
    """A palette image's output has more colours than its palette: RGB (RGBA with its transparency). A CMYK TIFF
    came out RGBA (OpenCV's opaque alpha); a CMYK profile cannot describe an RGB PNG: named, not carried."""
    photos = tmp_path / 'in'
    photos.mkdir()
    colour = skimage.data.astronaut()[100:141, 150:207]
    Image.fromarray(colour).quantize(64).save(photos / 'poster.png')
    Image.fromarray(colour).quantize(64).save(photos / 'logo.png', transparency=5)
    Image.fromarray(GRAY).save(photos / 'gray.gif')  # GIF is a palette format, gray or not
    Image.fromarray(colour).convert('CMYK').save(photos / 'press.tif')
    Image.fromarray(colour).convert('CMYK').save(photos / 'print.jpg', icc_profile=icc_profile(b'CMYK'))
    code, _, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', photos, '--output',
                                                    tmp_path / 'out'], capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if 'warning' in line] == [
        'warning: not carried to the PNG outputs (their ICC profile, gAMA/cHRM/sRGB and EXIF are): TIFF tags of 1 '
        'input (press.tif); CMYK ICC profile (the output is RGB) of 1 input (print.jpg)']
    model = build_inference_model(option_file)
    for name, mode in (('poster.png', 'RGB'), ('logo.png', 'RGBA'), ('gray.gif', 'RGB'), ('press.tif', 'RGB'),
                       ('print.jpg', 'RGB')):
        output = tmp_path / 'out' / (os.path.splitext(name)[0] + '.png')
        with Image.open(output) as restored:
            assert restored.mode == mode and 'icc_profile' not in restored.info, name
        raw = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
        assert raw.shape == (41, 57, len(mode)) and raw.dtype == np.uint8, name
        assert np.array_equal(raw[:, :, 2::-1], to_uint8(_prediction(model, photos / name))), name
    with Image.open(photos / 'logo.png') as logo:
        transparent = np.asarray(logo) == 5
    assert np.array_equal(cv2.imread(str(tmp_path / 'out' / 'logo.png'), cv2.IMREAD_UNCHANGED)[:, :, 3],
                          np.where(transparent, 0, 255))


def _frames(count, size=(32, 24)):
    """``count`` flat RGB frames of ``size`` (width, height), each its own gray level (new ones for each file: a
    Pillow image keeps its last save's encoder settings)."""
    return [Image.new('RGB', size, (40 * index,) * 3) for index in range(count)]


def _multi_frame_files(folder):
    """An animated GIF, APNG and WebP and a multi-page TIFF in ``folder``, with their refusal lines."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, options in (('clip.gif', 5, {}), ('loop.png', 3, {}), ('pages.tif', 3, {}),
                                 ('sticker.webp', 4, {'lossless': True})):
        first, *rest = _frames(count)
        first.save(folder / name, save_all=True, append_images=rest, **options)
    still = 'flare_sr removes flare from still photos; export the'
    return {'clip.gif': f'animated GIF with 5 frames: {still} frame you want as PNG',
            'loop.png': f'animated PNG with 3 frames: {still} frame you want as PNG',
            'pages.tif': f'multi-page TIFF with 3 pages: {still} page you want as PNG',
            'sticker.webp': f'animated WebP with 4 frames: {still} frame you want as PNG'}


def test_animated_and_multi_page_images_are_refused_with_the_other_bad_inputs(tmp_path, capsys, option_file):
    """All frames but the first were lost without a word. An MPO (a camera JPEG with a preview) is one photo."""
    photos = tmp_path / 'in'
    refusals = _multi_frame_files(photos)
    Image.fromarray(GRAY).save(photos / 'a_good.png')
    (photos / 'empty.png').write_bytes(b'')
    refusals['empty.png'] = 'empty file (0 bytes)'
    photo, preview = _frames(1)[0], _frames(1, (16, 12))[0]
    photo.save(photos / 'camera.jpg', 'MPO', save_all=True, append_images=[preview])
    with Image.open(photos / 'camera.jpg') as camera:
        assert (camera.format, camera.n_frames) == ('MPO', 2)
    code, out, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', photos, '--output',
                                                      tmp_path / 'out'], capsys)
    assert code == 2
    assert err == 'error: 5 inputs cannot be read: ' + '; '.join(
        f'{photos / name}: {line}' for name, line in sorted(refusals.items())) + '\n'
    assert not (tmp_path / 'out').exists()  # refused before anything was made
    code, out, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', photos / 'clip.gif',
                                                      '--output', tmp_path / 'out'], capsys)
    assert (code, err) == (2, f'error: {photos / "clip.gif"}: {refusals["clip.gif"]}\n')
    code, out, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', photos / 'camera.jpg',
                                                      '--output', tmp_path / 'out'], capsys)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / 'out' / 'camera.png')).shape == (24, 32, 3)  # its first image, the photo


@pytest.mark.slow
def test_infer_py_refuses_a_multi_frame_image_in_one_line_with_status_2(tmp_path, option_file, repo_root):
    photos = tmp_path / 'in'
    refusals = _multi_frame_files(photos)
    write_image(photos / 'good.png', np.full((24, 32, 3), 0.5))
    run = subprocess.run([sys.executable, 'flare_sr/infer.py', '-opt', option_file, '--input', str(photos),
                          '--output', str(tmp_path / 'out')], cwd=repo_root, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr == 'error: 4 inputs cannot be read: ' + '; '.join(
        f'{photos / name}: {line}' for name, line in sorted(refusals.items())) + '\n'
    assert not (tmp_path / 'out').exists()
