"""infer.py: full-size outputs with submission names, an atomic zip, one-line errors for bad inputs."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml

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
