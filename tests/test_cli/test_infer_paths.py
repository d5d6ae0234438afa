"""infer.py's break test: every clash of --zip with --output, the inputs, the option file or --save-tiles is refused
before any inference, whether or not the paths exist yet; --zip must end in .zip; every bad input is named in one
refusal; a broken link and an RGB float32 TIFF are said as such."""
import os

import cv2
import numpy as np
import pytest

from flare_sr.cli import infer_main
from flare_sr.utils.img_util import write_image
from tests.helpers import cascade_option_file, infer_in_process, run_main_in_process


@pytest.fixture
def option_file(tmp_path):
    return cascade_option_file(tmp_path)


def _photos(tmp_path, *names):
    folder = tmp_path / 'in'
    for name in names:
        write_image(folder / name, np.full((32, 32, 3), 0.5))
    return folder


def _tree(tmp_path):
    """{path relative to tmp_path: bytes, or None for a folder}: a refused run made and replaced nothing."""
    tree = {}
    for root, folders, names in os.walk(tmp_path):
        for name in folders + names:
            path = os.path.join(root, name)
            tree[os.path.relpath(path, tmp_path)] = None if os.path.isdir(path) else open(path, 'rb').read()
    return tree


@pytest.mark.parametrize('args, message', [
    # was: every image inferred and written, then 'error: .../oA: Is a directory'
    (['--output', '{t}/oA', '--zip', '{t}/oA'],
     '--zip {t}/oA: must end in .zip (the file written is the submission zip)'),
    (['--output', '{t}/oA.zip', '--zip', '{t}/oA.zip'],
     '--output {t}/oA.zip: is the --zip file {t}/oA.zip, a file, where a folder must go; choose another --output'),
    (['--output', '{t}/sub.zip/out', '--zip', '{t}/sub.zip'],
     '--output {t}/sub.zip/out: lies inside the --zip file {t}/sub.zip, a file, where a folder must go; '
     'choose another --output'),
    (['--output', '{t}/out', '--zip', '{t}/out/photo.png/sub.zip'],  # out/photo.png is the run's output
     '--zip {t}/out/photo.png/sub.zip: its folder {t}/out/photo.png is the output {t}/out/photo.png, a file, where '
     'a folder must go; choose another --zip'),
    (['--output', '{t}/out', '--zip', '{t}/in/photo.png/sub.zip'],
     '--zip {t}/in/photo.png/sub.zip: its folder {t}/in/photo.png is the input {t}/in/photo.png, a file, where a '
     'folder must go; choose another --zip'),
    (['--output', '{t}/out', '--zip', '{t}/cascade.yml/sub.zip'],
     '--zip {t}/cascade.yml/sub.zip: its folder {t}/cascade.yml is the option file {t}/cascade.yml, a file, where a '
     'folder must go; choose another --zip'),
    (['--output', '{t}/out', '--zip', '{t}/grid.png/sub.zip', '--save-tiles', '{t}/grid.png'],
     '--zip {t}/grid.png/sub.zip: its folder {t}/grid.png is the --save-tiles picture {t}/grid.png, a file, where a '
     'folder must go; choose another --zip'),
    (['--output', '{t}/grid.png', '--save-tiles', '{t}/grid.png'],
     '--output {t}/grid.png: is the --save-tiles picture {t}/grid.png, a file, where a folder must go; '
     'choose another --output'),
    (['--output', '{t}/out', '--zip', '{t}/net_main.pth'],  # the checkpoint named by the option file
     '--zip {t}/net_main.pth: is path.pretrain_network_main {t}/net_main.pth, which it would replace; '
     'choose another name'),
])
def test_zip_and_output_clashes_are_refused_before_any_inference(tmp_path, capsys, option_file, args, message):
    _photos(tmp_path, 'photo.png')
    before = _tree(tmp_path)
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in',
                                 *[arg.format(t=tmp_path) for arg in args])
    assert code == 2 and err == f'error: {message.format(t=tmp_path)}\n'
    assert _tree(tmp_path) == before


@pytest.mark.parametrize('name', ['holiday.png', 'net_d_latest.pth', 'submission'])
def test_zip_must_end_in_zip_so_no_other_file_of_the_user_is_replaced(tmp_path, capsys, option_file, name):
    """--zip photo.png turned the user's PNG into a zip; --zip net_d_latest.pth replaced a checkpoint."""
    _photos(tmp_path, 'photo.png')
    (tmp_path / 'keep').mkdir()
    victim = tmp_path / 'keep' / name
    victim.write_bytes(b'the user\'s own file')
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out',
                                 '--zip', victim)
    assert code == 2
    assert err == f'error: --zip {victim}: must end in .zip (the file written is the submission zip)\n'
    assert victim.read_bytes() == b'the user\'s own file' and not (tmp_path / 'out').exists()


def test_an_existing_zip_is_replaced_and_a_zip_may_lie_in_the_output_folder(tmp_path, capsys, option_file):
    """The zip is not one of the PNG outputs, so it may go beside them; an old .zip of that name is replaced."""
    _photos(tmp_path, 'photo.png')
    archive = tmp_path / 'out' / 'Submission.ZIP'
    archive.parent.mkdir()
    archive.write_bytes(b'an old zip')
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out',
                                 '--zip', archive)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'out')) == ['Submission.ZIP', 'photo.png']
    assert archive.read_bytes()[:4] == b'PK\x03\x04'


def test_a_folder_where_an_output_goes_is_refused_even_with_overwrite(tmp_path, capsys, option_file):
    _photos(tmp_path, 'photo.png')
    (tmp_path / 'out' / 'photo.png').mkdir(parents=True)
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out',
                                 '--overwrite')
    assert code == 2
    assert err == (f'error: {tmp_path}/out/photo.png: is a folder where the output of {tmp_path}/in/photo.png goes; '
                   'move it away or choose another --output\n')
    assert os.listdir(tmp_path / 'out' / 'photo.png') == []


def test_every_bad_input_is_named_in_one_refusal(tmp_path, capsys, option_file):
    """Only corrupt.png was named; empty.png came up on the next run."""
    folder = _photos(tmp_path, 'good.png')
    (folder / 'corrupt.png').write_bytes(b'not a picture')
    (folder / 'empty.png').write_bytes(b'')
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', folder, '--output', tmp_path / 'out')
    assert code == 2 and err.count('\n') == 1, err
    assert err == (f'error: 2 inputs cannot be read: {folder}/corrupt.png: not a readable image (cannot identify '
                   f"image file '{folder}/corrupt.png'); {folder}/empty.png: empty file (0 bytes)\n")
    assert not (tmp_path / 'out').exists()


def test_an_rgb_float_tiff_is_said_to_be_float(tmp_path, capsys, option_file):
    """OpenCV writes a 3-channel float32 TIFF whose header Pillow cannot identify: the line said 'not a readable
    image (cannot identify image file ...)'; docs/inference.md says float TIFFs are refused, so the line says it."""
    folder = _photos(tmp_path, 'good.png')
    assert cv2.imwrite(str(folder / 'linear.tif'), np.random.default_rng(0).uniform(0, 1, (24, 32, 3)).astype('f4'))
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', folder, '--output', tmp_path / 'out')
    assert code == 2
    assert err == f'error: {folder}/linear.tif: unsupported sample type float32 (use 8- or 16-bit images)\n'
    assert not (tmp_path / 'out').exists()


def test_a_broken_link_is_said_to_be_one(tmp_path, capsys, option_file):
    """It was '1 file that is not an image (broken.png)'."""
    folder = _photos(tmp_path, 'good.png')
    os.symlink(tmp_path / 'gone.png', folder / 'broken.png')
    (folder / 'notes.txt').write_text('not an image')
    os.symlink(folder / 'notes.txt', folder / 'readme.txt')  # a link that works stays what its file is
    code, out, err = run_main_in_process(infer_main, ['-opt', option_file, '--input', folder, '--output',
                                                      tmp_path / 'out'], capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith(('warning', 'error'))] == [
        f'warning: skipped 1 broken link (broken.png -> {tmp_path}/gone.png): the file linked to does not exist']
    assert 'skipped 2 files that are not images (notes.txt, readme.txt)\n' in out
    assert os.listdir(tmp_path / 'out') == ['good.png']
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', folder / 'broken.png', '--output',
                                 tmp_path / 'out')
    assert code == 2
    assert err == (f'error: {folder}/broken.png: --input is a broken link (to {tmp_path}/gone.png, which does not '
                   'exist)\n')
