"""infer.py never replaces what the user had, and what comes in goes out: outputs over inputs (symlinks, hard
links), --save-tiles and --zip over inputs or outputs, foreign files in --output; colour profile, gAMA and EXIF
carried; WebP read, skipped items and HEIC named."""
import hashlib
import io
import os
import struct

import cv2
import pytest
import skimage.data
import yaml
from PIL import Image, ImageCms, PngImagePlugin

from flare_sr.cli import infer_main
from tests.helpers import cascade_option_file, run_main_in_process

PHOTO = skimage.data.astronaut()[100:148, 150:214]  # 48x64 RGB


def _digests(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


def _photos(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(PHOTO).save(folder / name)
    return folder


def _infer(capsys, option_file, *args):
    return run_main_in_process(infer_main, ['-opt', option_file, '--tile', 64, '--overlap', 16, *args], capsys)


def _refused(code, err, *words):
    assert code == 2 and err.startswith('error: ') and err.count('\n') == 1, err
    assert all(word in err for word in words), err


@pytest.fixture
def option_file(tmp_path):
    return str(cascade_option_file(tmp_path))


def test_an_output_folder_that_resolves_to_the_inputs_never_replaces_a_photo(tmp_path, capsys, option_file):
    photos = _photos(tmp_path / 'photos', 'beach.png', 'street.jpg')
    before = _digests(photos)
    os.symlink(photos, tmp_path / 'link')
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'link')
    _refused(code, err, 'beach.png', 'is the input', 'resolves to')
    hard = tmp_path / 'hard'  # a real folder holding a hard link of an input under its output name
    hard.mkdir()
    os.link(photos / 'beach.png', hard / 'beach.png')
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', hard)
    _refused(code, err, 'beach.png', 'is the input')
    assert _digests(photos) == before
    # names that cannot collide are fine: street.jpg -> street.png beside it, through the symlink
    code, _, err = _infer(capsys, option_file, '--input', photos / 'street.jpg', '--output', tmp_path / 'link')
    assert code == 0, err
    assert _digests(photos)['street.jpg'] == before['street.jpg'] and (photos / 'street.png').is_file()


def test_save_tiles_and_zip_never_replace_an_input_an_output_or_the_options(tmp_path, capsys, option_file):
    photos = _photos(tmp_path / 'photos', 'beach.png', 'street.png')
    out = tmp_path / 'out'
    checkpoint = tmp_path / 'net_main.pth'  # cascade_option_file's path.pretrain_network_main
    keep = {path: open(path, 'rb').read() for path in [option_file, checkpoint, photos / 'beach.png',
                                                       photos / 'street.png']}
    cases = [('--save-tiles', photos / 'street.png', 'is the input'),
             ('--zip', checkpoint, 'is path.pretrain_network_main'),  # was replaced by the zip
             ('--save-tiles', out / 'beach.png', 'is the output'),
             ('--zip', photos / 'beach.png', 'is the input'),
             ('--zip', out / 'street.png', 'is the output'),
             ('--zip', option_file, 'is the option file')]
    for flag, path, what in cases:
        code, _, err = _infer(capsys, option_file, '--input', photos, '--output', out, flag, path)
        _refused(code, err, flag, str(path), what)
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', out, '--zip', tmp_path / 'grid.png',
                          '--save-tiles', tmp_path / 'grid.png')
    _refused(code, err, '--zip', 'the --save-tiles picture')
    assert {path: open(path, 'rb').read() for path in keep} == keep
    assert not out.exists()  # refused before any folder is made


@pytest.mark.parametrize('names', [('shot.png', 'shot.jpg'), ('test_input_20000.png', 'test_20000.png')])
def test_two_inputs_with_one_output_name_are_refused(tmp_path, capsys, option_file, names):
    photos = _photos(tmp_path / 'photos', *names)
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out')
    _refused(code, err, 'would overwrite the output of')
    assert not os.listdir(tmp_path / 'out') if (tmp_path / 'out').exists() else True


def test_a_file_in_output_that_flare_sr_did_not_write_is_kept_unless_overwrite(tmp_path, capsys, option_file):
    photos = _photos(tmp_path / 'photos', 'beach.png')
    out = _photos(tmp_path / 'out', 'beach.png')  # the user's own picture, under the output's name
    before = _digests(out)
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', out)
    _refused(code, err, 'beach.png', 'not written by flare_sr', '--overwrite')
    assert _digests(out) == before
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', out, '--overwrite')
    assert code == 0 and _digests(out) != before, err
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', out)  # a rerun replaces its own
    assert code == 0, err


def _exif(**tags):
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[{'orientation': 0x0112, 'make': 0x010F, 'model': 0x0110}[tag]] = value
    return exif


def _chunks(path):
    """{chunk type: data} of a PNG, in file order."""
    data, chunks, at = path.read_bytes(), {}, 8
    while at < len(data):
        length, kind = struct.unpack('>I4s', data[at:at + 8])
        chunks.setdefault(kind.decode(), data[at + 8:at + 8 + length])
        at += 12 + length
    return chunks


def test_colour_profile_gamma_chromaticity_and_exif_are_carried(tmp_path, capsys, option_file):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()  # not sRGB: colours would shift
    info = PngImagePlugin.PngInfo()
    info.add(b'gAMA', struct.pack('>I', 45455))
    info.add(b'cHRM', struct.pack('>8I', 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    photos = tmp_path / 'photos'
    photos.mkdir()
    Image.fromarray(PHOTO).save(photos / 'managed.png', icc_profile=profile, pnginfo=info,
                                exif=_exif(make='flare-test', model='X1'))
    # a JPEG turned by its EXIF: the pixels are turned, so its carried EXIF says Orientation 1, the rest kept
    Image.fromarray(PHOTO).save(photos / 'turned.jpg', icc_profile=profile,
                                exif=_exif(orientation=6, make='flare-test'))
    Image.fromarray(PHOTO).save(photos / 'plain.png')
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out')
    assert code == 0 and 'warning' not in err, err
    with Image.open(tmp_path / 'out' / 'managed.png') as out:
        assert out.info['icc_profile'] == profile
        assert out.info['gamma'] == 0.45455
        assert out.info['chromaticity'] == (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
        assert dict(out.getexif()) == {0x010F: 'flare-test', 0x0110: 'X1'}
    with Image.open(tmp_path / 'out' / 'turned.png') as out:
        assert out.size == (48, 64) and out.info['icc_profile'] == profile
        assert dict(out.getexif()) == {0x0112: 1, 0x010F: 'flare-test'}
    chunks = _chunks(tmp_path / 'out' / 'plain.png')
    assert not {'iCCP', 'gAMA', 'cHRM', 'sRGB', 'eXIf'} & set(chunks)  # nothing invented
    assert chunks['tEXt'] == b'Software\0flare_sr'


def test_webp_is_read_skipped_items_are_named_and_heic_gets_one_line(tmp_path, capsys, option_file):
    photos = _photos(tmp_path / 'photos', 'beach.webp', 'street.png')
    (photos / 'notes.txt').write_text('not an image')
    (photos / 'holiday').mkdir()
    (photos / 'phone.heic').write_bytes(b'\0\0\0\x18ftypheic' + bytes(64))
    code, out, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out')
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'out')) == ['beach.png', 'street.png']
    restored = cv2.imread(str(tmp_path / 'out' / 'beach.png'))
    assert restored.shape == (48, 64, 3)
    assert 'skipped 1 sub-folder (not searched: holiday), 1 file that is not an image (notes.txt)' in out
    warnings = [line for line in err.splitlines() if line.startswith('warning: ')]
    assert warnings == ['warning: skipped 1 HEIC/HEIF file (phone.heic): not readable here; convert to PNG or JPEG']
    code, _, err = _infer(capsys, option_file, '--input', photos / 'phone.heic', '--output', tmp_path / 'out')
    _refused(code, err, 'phone.heic', 'HEIC/HEIF is not readable here', 'convert it to PNG or JPEG')


def test_xmp_that_is_not_carried_is_said_once(tmp_path, capsys, option_file):
    photos = tmp_path / 'photos'
    photos.mkdir()
    for name in ('a.jpg', 'b.jpg'):
        buffer = io.BytesIO()
        Image.fromarray(PHOTO).save(buffer, 'JPEG', xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
        (photos / name).write_bytes(buffer.getvalue())
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out')
    assert code == 0 and err.count('warning: ') == 1 and 'XMP of 2 inputs (a.jpg, b.jpg)' in err, err


def test_flare_layers_never_replace_an_input_or_another_output(tmp_path, capsys, option_file):
    """--save-flare is checked as --output is (and named), and its files count as outputs of the run for --save-tiles
    and --zip; all refused before the option file is read."""
    photos = _photos(tmp_path / 'photos', 'beach.png', 'street.png')
    flares = tmp_path / 'flares'
    os.symlink(photos, tmp_path / 'link')
    before = _digests(photos)
    for folder in (photos, tmp_path / 'link'):
        code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out', '--save-flare',
                              folder)
        _refused(code, err, 'beach.png', 'is the input', 'choose another --save-flare')
    for flag in ('--save-tiles', '--zip'):
        code, _, err = _infer(capsys, option_file, '--input', photos, '--output', tmp_path / 'out', '--save-flare',
                              flares, flag, flares / 'beach.png')
        _refused(code, err, flag, 'is the flare layer')
    assert _digests(photos) == before and not os.path.exists(flares)


@pytest.mark.parametrize('output, save_flare, flag, other', [
    ('out', 'out/flares', '--save-flare', '--output'),  # was accepted: the flare layers joined the submission folder
    ('flares/out', 'flares', '--output', '--save-flare'),
])
def test_flare_layers_and_restored_images_are_kept_in_folders_side_by_side(
        tmp_path, capsys, option_file, output, save_flare, flag, other):
    photos = _photos(tmp_path / 'photos', 'beach.png')
    output, save_flare = tmp_path / output, tmp_path / save_flare
    before = sorted(os.listdir(tmp_path))
    code, _, err = _infer(capsys, option_file, '--input', photos, '--output', output, '--save-flare', save_flare)
    folder, other_folder = (save_flare, output) if flag == '--save-flare' else (output, save_flare)
    assert code == 2 and err == (f'error: {flag} {folder}: lies inside the {other} folder {other_folder}; the '
                                 'restored images and the flare layers go in folders side by side\n')
    assert sorted(os.listdir(tmp_path)) == before  # no folder made


@pytest.mark.parametrize('backend', [[], ['--backend', 'onnxruntime', '--onnx', 'model.onnx']])
def test_a_training_option_file_is_refused_not_run_with_its_starting_weights(tmp_path, capsys, option_file, backend):
    """A training file's path.pretrain_network_* are where its training starts (stage III's: stage II's weights):
    infer.py ran them as if they were the trained model, without a word. Both backends refuse it before any photo
    is read or any output folder made."""
    opt = yaml.safe_load(open(option_file))
    opt.update(name='stage3', datasets={'train': {'type': 'PairedFlareDataset'}})
    (tmp_path / 'train.yml').write_text(yaml.safe_dump(opt))
    (tmp_path / 'model.onnx').write_bytes(b'')
    photos = _photos(tmp_path / 'photos', 'beach.png')
    code, _, err = _infer(capsys, tmp_path / 'train.yml', '--input', photos, '--output', tmp_path / 'out',
                          *[str(tmp_path / arg) if arg.endswith('.onnx') else arg for arg in backend])
    _refused(code, err, f"{tmp_path / 'train.yml'}: a training option file (datasets.train)",
             'give a test option file naming the trained checkpoint (e.g. experiments/stage3/models/net_g_latest.pth)')
    assert not (tmp_path / 'out').exists()
