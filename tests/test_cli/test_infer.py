"""infer.py: full-size outputs with submission names, an atomic zip, one-line errors for bad inputs."""
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from PIL import Image

from flare_sr.pipeline.inference import submission_name
from flare_sr.utils.img_util import read_image, write_image
from tests.helpers import cascade_option_file, infer_in_process


def _infer(repo_root, *args):
    return subprocess.run([sys.executable, 'flare_sr/infer.py', *map(str, args)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)


def test_submission_names():
    assert submission_name('x/test_input_20000.png') == 'test_20000.png'
    assert submission_name('train_input_10003.jpg') == 'train_10003.png'
    assert submission_name('holiday photo.JPG') == 'holiday photo.png'


@pytest.mark.slow
def test_infer_writes_full_size_named_outputs_and_zip(tmp_path, repo_root):
    option_file = cascade_option_file(tmp_path)
    rng = np.random.default_rng(0)
    sizes = {'test_input_20000.png': (37, 53), 'test_input_20001.jpg': (64, 100), 'street.png': (129, 71)}
    for name, (height, width) in sizes.items():
        write_image(tmp_path / 'in' / name, rng.uniform(0, 1, (height, width, 3)))
    out, archive = tmp_path / 'out', tmp_path / 'sub' / 'submission.zip'
    run = _infer(repo_root, '-opt', option_file, '--input', tmp_path / 'in', '--output', out, '--zip', archive,
                 '--tile', 64, '--overlap', 16, '--save-tiles', tmp_path / 'tiles.png')
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'wrote 3 images' in run.stdout and 'submission zip' in run.stdout
    expected = {'test_20000.png': (37, 53), 'test_20001.png': (64, 100), 'street.png': (129, 71)}
    assert sorted(os.listdir(out)) == sorted(expected)
    assert read_image(tmp_path / 'tiles.png').shape == (129, 71, 3)  # grid drawn over the first input
    for name, size in expected.items():
        assert read_image(out / name).shape == (*size, 3)
    with zipfile.ZipFile(archive) as packed:
        assert sorted(packed.namelist()) == sorted(expected)
        assert packed.read('street.png') == (out / 'street.png').read_bytes()
    assert [name for name in os.listdir(archive.parent) if name != 'submission.zip'] == []  # no temp left


def test_infer_bad_inputs_fail_in_one_line_naming_the_file(tmp_path, capsys):
    option_file = cascade_option_file(tmp_path)
    write_image(tmp_path / 'in' / 'test_input_20000.png', np.zeros((32, 32, 3)))
    (tmp_path / 'in' / 'test_input_20001.png').write_bytes(b'\x89PNG\r\n\x1a\nnot really')
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out')
    assert code == 2 and err.startswith('error: ') and err.strip().count('\n') == 0
    assert 'test_input_20001.png' in err
    assert not os.path.exists(tmp_path / 'out')  # nothing written before the inputs were checked
    (tmp_path / 'in' / 'test_input_20001.png').unlink()
    (tmp_path / 'blocker').write_text('a file where the output folder should go')
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'in', '--output',
                                 tmp_path / 'blocker')
    assert code == 2 and 'blocker' in err and 'not a folder' in err
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', tmp_path / 'missing', '--output',
                                 tmp_path / 'out')
    assert code == 2 and 'missing' in err
    code, err = infer_in_process(capsys, '-opt', tmp_path / 'nope.yml', '--input', tmp_path / 'in', '--output',
                                 tmp_path / 'out')
    assert code == 2 and 'nope.yml' in err


def test_infer_warns_when_a_network_has_no_checkpoint(tmp_path, capsys):
    """A training option file passed to infer.py has no checkpoint to test: say so, do not run silently."""
    opt = dict(name='untrained', model_type='HINetModel', num_gpu=0, network_g=dict(type='HINet', wf=4, depth=2),
               path=dict(pretrain_network_g=None), val=dict(tile=dict(size=64, overlap=16)))
    (tmp_path / 'untrained.yml').write_text(yaml.safe_dump(opt))
    write_image(tmp_path / 'in' / 'photo.png', np.zeros((32, 32, 3)))
    code, err = infer_in_process(capsys, '-opt', tmp_path / 'untrained.yml', '--input', tmp_path / 'in', '--output',
                                 tmp_path / 'out')
    assert code == 0, err
    assert 'warning: ' in err and 'untrained.yml: path.pretrain_network_g: not set' in err and 'random weights' in err
    code, err = infer_in_process(capsys, '-opt', cascade_option_file(tmp_path), '--input', tmp_path / 'in',
                                 '--output', tmp_path / 'o2')
    assert code == 0 and 'warning' not in err.lower()


def _one_photo(tmp_path):
    write_image(tmp_path / 'in' / 'photo.png', np.zeros((32, 32, 3)))
    return tmp_path / 'in'


@pytest.mark.parametrize('args, tile, message', [
    (['--overlap', '-5'], {}, 'error: --overlap must be >= 0, got -5'),
    (['--tile', '0'], {}, 'error: --tile must be > 0, got 0 (leave val.tile.size unset, ~, for the whole frame)'),
    (['--tile', '-64', '--overlap', '-1'], {}, 'error: --tile must be > 0, got -64 (leave val.tile.size unset, ~, '
                                               'for the whole frame); --overlap must be >= 0, got -1'),
    ([], {'batch': 0}, 'error: {file}: val.tile.batch must be >= 1, got 0'),
    ([], {'overlap': -5}, 'error: {file}: val.tile.overlap must be >= 0, got -5'),  # the options checker's line
    (['--tile', '64', '--overlap', '40'], {}, 'error: val.tile (--tile/--overlap): size 64 with overlap 40 cannot '
                                              'tile on the network\'s 32-pixel grid'),
    (['--tile', '64'], {'overlap': 40}, 'error: {file}: val.tile (--tile): size 64 with overlap 40 cannot tile'),
])
def test_tile_values_out_of_range_are_each_one_line_before_any_folder(tmp_path, capsys, args, tile, message):
    """--overlap -5 was 'val.tile.size 512 ... must be more than twice val.tile.overlap -5', and only at the first
    image; val.tile.batch 0 ran as 1 without a word."""
    option_file = cascade_option_file(tmp_path)
    opt = yaml.safe_load(open(option_file))
    opt['val']['tile'].update(tile)
    with open(option_file, 'w') as handle:
        yaml.safe_dump(opt, handle)
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', _one_photo(tmp_path), '--output',
                                 tmp_path / 'out', *args)
    assert code == 2 and err.count('\n') == 1, err
    assert err.startswith(message.format(file=option_file)), err
    assert not (tmp_path / 'out').exists()


def test_save_flare_with_a_model_that_predicts_none_is_refused_before_any_folder(tmp_path, capsys):
    code, err = infer_in_process(capsys, '-opt', cascade_option_file(tmp_path), '--input', _one_photo(tmp_path),
                                 '--output', tmp_path / 'out', '--save-flare', tmp_path / 'flares')
    assert code == 2
    assert err == 'error: --save-flare: CascadeModel predicts no flare layer (DeflareModel does)\n'
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'flares').exists()


@pytest.mark.parametrize('case, message', [
    ('float32 TIFF', r'b_bad.tif: unsupported sample type float32 \(use 8- or 16-bit images\)$'),
    ('int32 TIFF', r'b_bad.tif: unsupported sample type int32 \(use 8- or 16-bit images\)$'),
    ('truncated JPEG', r'b_bad.jpg: truncated JPEG \(no end-of-image marker FFD9\)$'),
    ('truncated PNG', r'b_bad.png: truncated PNG \(no IEND chunk at the end\)$'),
])
def test_an_input_the_decoder_refuses_stops_the_run_before_the_first_output(tmp_path, capsys, case, message):
    """Found mid-run before: a_good.png was already written when b_bad stopped the run."""
    import cv2

    folder = tmp_path / 'in'
    write_image(folder / 'a_good.png', np.full((32, 32, 3), 0.5))
    pixels = np.random.default_rng(0).uniform(0, 1, (64, 48, 3))
    if case.endswith('TIFF'):  # as Pillow writes them: a header it reads, samples OpenCV decodes as float / int32
        gray = pixels[..., 0] * (1 if case.startswith('float') else 1000)
        Image.fromarray(gray.astype(np.float32 if case.startswith('float') else np.int32)).save(folder / 'b_bad.tif')
    else:
        suffix = '.jpg' if 'JPEG' in case else '.png'
        ok, data = cv2.imencode(suffix, (pixels * 255).astype(np.uint8))
        (folder / f'b_bad{suffix}').write_bytes(data.tobytes()[:-20])  # the header is whole, the end is not
    code, err = infer_in_process(capsys, '-opt', cascade_option_file(tmp_path), '--input', folder, '--output',
                                 tmp_path / 'out')
    assert code == 2 and err.count('\n') == 1
    assert re.search(message, err.strip()), err
    assert not (tmp_path / 'out').exists()
