"""Every file a script writes is checked against that script's own inputs first (flare_sr.utils.atomic's
check_output_file): one ``error:`` line, exit status 2, the input's bytes unchanged."""
import hashlib
import os

import numpy as np
import pytest

from flare_sr.utils.img_util import write_image
from tests.helpers import cascade_option_file, load_script, make_flare_pairs, run_main_in_process


def _digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _refused(code, err, *words):
    assert code == 2 and err.startswith('error: ') and err.count('\n') == 1, err
    assert all(word in err for word in words), err


@pytest.fixture
def clean_dir(tmp_path):
    folder = tmp_path / 'clean'
    for k in range(2):
        write_image(folder / f'photo_{k}.png', np.full((40, 56, 3), 0.2 * (k + 1)))
    return folder


def test_preview_never_replaces_its_components_image_or_joins_a_dataset(tmp_path, clean_dir, capsys):
    preview = load_script('preview_augmentations').main
    image, before = clean_dir / 'photo_0.png', _digest(clean_dir / 'photo_0.png')
    code, _, err = run_main_in_process(preview, ['--components', image, '--n', 1, '--out', image], capsys)
    _refused(code, err, '--out', 'is the --components image')
    code, _, err = run_main_in_process(preview, ['--gt', clean_dir, '--dataset-type', 'SyntheticFlareDataset',
                                                 '--out', clean_dir / 'preview.png'], capsys)
    _refused(code, err, '--out', 'inside the dataroot_gt folder')
    assert _digest(image) == before and sorted(os.listdir(clean_dir)) == ['photo_0.png', 'photo_1.png']


def test_export_onnx_never_replaces_the_option_file_or_a_checkpoint(tmp_path, capsys):
    pytest.importorskip('onnx')
    option_file = cascade_option_file(tmp_path)
    export = load_script('export_onnx').main
    for victim, what in ((option_file, 'is the option file'),
                         (tmp_path / 'net_post.pth', 'is path.pretrain_network_post')):
        before = _digest(victim)
        code, _, err = run_main_in_process(export, ['-opt', option_file, '--out', victim], capsys)
        _refused(code, err, '--out', what)
        assert _digest(victim) == before


def test_split_csv_never_replaces_an_input(tmp_path, capsys):
    make_flare_pairs(tmp_path / 'data', 2)
    victim = tmp_path / 'data' / 'train_input_img' / 'train_input_10000.png'
    before = _digest(victim)
    code, _, err = run_main_in_process(load_script('split_dataset').main, [
        '--lq', tmp_path / 'data' / 'train_input_img', '--gt', tmp_path / 'data' / 'train_label_img', '--out', victim],
        capsys)
    _refused(code, err, '--out', 'is the input')
    assert _digest(victim) == before


def test_synthesize_flare_never_replaces_the_folder_it_reads(tmp_path, clean_dir, capsys):
    """--clean is the label folder that --overwrite would replace whole."""
    out = tmp_path / 'synth'
    os.makedirs(out)
    os.symlink(clean_dir, out / 'train_label_img')
    before = {name: _digest(clean_dir / name) for name in os.listdir(clean_dir)}
    code, _, err = run_main_in_process(load_script('synthesize_flare').main, [
        '--clean', out / 'train_label_img', '--out', out, '--overwrite'], capsys)
    _refused(code, err, '--clean', 'which this run replaces')
    assert {name: _digest(clean_dir / name) for name in os.listdir(clean_dir)} == before


def test_make_demo_dataset_never_replaces_a_folder_of_other_files(tmp_path, clean_dir, capsys):
    before = {name: _digest(clean_dir / name) for name in os.listdir(clean_dir)}
    code, _, err = run_main_in_process(load_script('make_demo_dataset').main, ['--out', clean_dir], capsys)
    _refused(code, err, str(clean_dir), 'holds other files (photo_0.png, photo_1.png)')
    assert {name: _digest(clean_dir / name) for name in os.listdir(clean_dir)} == before


def test_demo_summary_picture_never_joins_the_data_it_reads(tmp_path, clean_dir, capsys):
    code, _, err = run_main_in_process(load_script('demo_summary').main, [
        '--data', clean_dir, '--results', tmp_path / 'results', '--picture', clean_dir / 'photo_0.png'], capsys)
    _refused(code, err, '--picture', 'inside the --data folder')


def test_split_csv_of_another_kind_is_refused_and_the_file_kept(tmp_path, capsys):
    """A checkpoint (any file of the user's not among the inputs) given as --out was replaced by the table."""
    make_flare_pairs(tmp_path / 'data', 2)
    victim = tmp_path / 'net_g_latest.pth'
    victim.write_bytes(b'weights')
    code, _, err = run_main_in_process(load_script('split_dataset').main, [
        '--lq', tmp_path / 'data' / 'train_input_img', '--gt', tmp_path / 'data' / 'train_label_img', '--out', victim],
        capsys)
    assert code == 2 and err == f'error: --out {victim}: must end in .csv (the file written is a CSV table)\n'
    assert victim.read_bytes() == b'weights'


def test_eval_transfer_record_must_be_json(tmp_path, capsys):
    """--compare reads records back by that name; refused before any training run."""
    record = tmp_path / 'record.txt'
    code, _, err = run_main_in_process(load_script('bench/eval_transfer').main, ['--seeds', '0', '--json', record],
                                       capsys)
    assert code == 2 and err == f'error: --json {record}: must end in .json (the file written is a JSON record)\n'
    assert not record.exists()
