"""Files from others never run code: an option file with a python tag, given to every entry script as a real process,
is one error line naming the file and line, exit status 2, and its payload never runs."""
import os
import subprocess
import sys

import numpy as np
import pytest

from flare_sr import cli
from flare_sr.utils.img_util import write_image
from tests.helpers import REPO, flare_data, hinet_options, run_main_in_process, subprocess_env, write_options


def _tagged_option_file(tmp_path, marker):
    """options/hinet_phase1.yml with a payload on line 3 (it would create ``marker``)."""
    with open(os.path.join(REPO, 'options', 'hinet_phase1.yml'), encoding='utf-8') as handle:
        text = handle.read()
    path = tmp_path / 'shared.yml'
    path.write_text(f'# a file from someone else\n\nnote: !!python/object/apply:os.system ["touch {marker}"]\n{text}')
    return path


@pytest.mark.slow
@pytest.mark.parametrize('script', ['flare_sr/train.py', 'flare_sr/test.py', 'flare_sr/infer.py',
                                    'scripts/export_onnx.py', 'flare_sr/train_pipeline.py'])
def test_option_file_with_a_python_tag_is_refused_by_every_entry_script(tmp_path, script):
    marker = tmp_path / 'payload_ran'
    option_file = _tagged_option_file(tmp_path, marker)
    write_image(tmp_path / 'in' / 'photo.png', np.full((16, 16, 3), 0.5))
    arguments = {
        'flare_sr/infer.py': ['-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out'],
        'scripts/export_onnx.py': ['-opt', option_file, '--out', tmp_path / 'model.onnx'],
        'flare_sr/train_pipeline.py': ['--stage1', option_file, '--stage2', os.path.join(REPO, 'options',
                                                                                         'hinet_phase1.yml'),
                                       '--stage3', os.path.join(REPO, 'options', 'hinet_phase2.yml'),
                                       '--name', 'untrusted_never_created'],
    }.get(script, ['-opt', option_file])
    result = subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, arguments)], cwd=tmp_path,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith('error: ') and lines[0].endswith(
        f'{option_file} line 3: the tag !!python/object/apply:os.system can run code; flare_sr reads option files '
        'safely and refuses it'), lines[0]
    assert not marker.exists()
    assert not os.path.exists(os.path.join(REPO, 'experiments', 'untrusted_never_created'))


@pytest.mark.parametrize('entry', [
    'name=[__import__("os").system("touch {marker}")]',  # BasicSR evals a value starting with '['
    'name"];__import__("os").system("touch {marker}");opt["name=x',  # and execs 'opt["<key>"]=value'
])
@pytest.mark.parametrize('main', ['train_main', 'test_main'])
def test_force_yml_never_runs_code(tmp_path, monkeypatch, capsys, main, entry):
    marker = tmp_path / 'payload_ran'
    option_file = write_options(tmp_path / 'opt.yml', hinet_options(flare_data(tmp_path, 1, 1), 'never_run', 1))
    monkeypatch.setattr(sys, 'argv', ['x.py', '-opt', option_file, '--force_yml', entry.format(marker=marker)])
    code, out, err = run_main_in_process(lambda argv: getattr(cli, main)(), [], capsys)
    assert code == 2 and err.startswith(f'error: {option_file}: --force_yml name') and err.count('\n') == 1, err
    assert not marker.exists()
