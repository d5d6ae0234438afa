"""The synthesis scripts on real files: Dacon naming, demo determinism and layout, preview grid size."""
import csv
import filecmp
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from flare_sr.utils.img_util import read_image, write_image
from tests.helpers import load_script, run_main_in_process


@pytest.fixture
def clean_dir(tmp_path):
    folder = tmp_path / 'clean'
    ys, xs = np.mgrid[0:40, 0:56].astype(np.float32)
    for k in range(2):
        write_image(folder / f'photo_{k}.png', np.stack([xs / 55, ys / 39, np.full_like(xs, 0.3 * k)], axis=-1))
    return folder


@pytest.mark.slow
def test_synthesize_flare_writes_dacon_names_and_refuses_to_overwrite(repo_root, clean_dir, tmp_path, capsys):
    out = tmp_path / 'out'
    load_script('synthesize_flare').main(
        ['--clean', str(clean_dir), '--out', str(out), '--per-image', '2', '--split', 'test', '--family', 'psf'])
    assert '4 test pairs from 2 clean images (psf flare' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['test.csv', 'test_input_img', 'test_label_img']
    assert sorted(os.listdir(out / 'test_input_img')) == [f'test_input_{n}.png' for n in range(20000, 20004)]
    assert sorted(os.listdir(out / 'test_label_img')) == [f'test_label_{n}.png' for n in range(20000, 20004)]
    assert read_image(out / 'test_input_img' / 'test_input_20003.png').shape == (40, 56, 3)
    before = (out / 'test.csv').read_bytes()
    script = os.path.join(repo_root, 'scripts', 'synthesize_flare.py')
    again = subprocess.run([sys.executable, script, '--clean', str(clean_dir), '--out', str(out), '--split', 'test'],
                           capture_output=True, text=True)
    assert again.returncode == 2 and 'test_input_img: already exists' in again.stderr
    assert 'Traceback' not in again.stderr and (out / 'test.csv').read_bytes() == before
    load_script('synthesize_flare').main(['--clean', str(clean_dir), '--out', str(out)])  # train beside test
    assert sorted(os.listdir(out)) == ['test.csv', 'test_input_img', 'test_label_img', 'train.csv', 'train_input_img',
                                       'train_label_img']
    assert (out / 'test.csv').read_bytes() == before


def test_synthesize_flare_names_the_corrupt_input(clean_dir, tmp_path, capsys):
    (clean_dir / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    script = load_script('synthesize_flare')
    with pytest.raises(SystemExit) as exit_info:
        script.main(['--clean', str(clean_dir), '--out', str(tmp_path / 'out')])
    assert exit_info.value.code == 2
    assert 'broken.png' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')  # nothing half-written is left


def test_train_split_numbers_from_10000_with_a_challenge_style_csv(clean_dir, tmp_path):
    load_script('synthesize_flare').main(['--clean', str(clean_dir), '--out', str(tmp_path / 'out')])
    with open(tmp_path / 'out' / 'train.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{'img_id': f'train_{n}', 'input_img': f'train_input_{n}.png', 'label_img': f'train_label_{n}.png'}
                    for n in (10000, 10001)]
    for row in rows:
        assert (tmp_path / 'out' / 'train_input_img' / row['input_img']).is_file()
        assert (tmp_path / 'out' / 'train_label_img' / row['label_img']).is_file()


def test_demo_dataset_is_deterministic_with_the_dacon_layout(tmp_path, capsys):
    demo = load_script('make_demo_dataset')
    args = ['--scale', '0.25', '--per-photo-train', '2', '--per-photo-test', '1', '--seed', '5']
    demo.main(['--out', str(tmp_path / 'a'), *args])
    summary = capsys.readouterr().out
    demo.main(['--out', str(tmp_path / 'b'), *args])
    comparison = filecmp.dircmp(tmp_path / 'a', tmp_path / 'b')
    assert not comparison.diff_files and not comparison.left_only and not comparison.right_only
    for sub in comparison.subdirs.values():
        assert not sub.diff_files and not sub.left_only and not sub.right_only
        _, mismatch, errors = filecmp.cmpfiles(sub.left, sub.right, sub.common_files, shallow=False)
        assert not mismatch and not errors
    n_train, n_test = 2 * len(demo.TRAIN_PHOTOS), len(demo.TEST_PHOTOS) * len(demo.HELDOUT_FAMILIES)
    assert f'{n_train} train pairs' in summary and f'{n_test} test pairs' in summary and 'input PSNR' in summary
    root = tmp_path / 'a'
    assert sorted(os.listdir(root)) == ['test.csv', 'test_input_img', 'test_label_img', 'train.csv', 'train_clean_img',
                                        'train_input_img', 'train_label_img', 'train_photos.csv', 'val_input_img',
                                        'val_label_img']
    assert len(os.listdir(root / 'train_clean_img')) == n_train
    with open(root / 'test.csv') as handle:
        folds = [row['fold'] for row in csv.DictReader(handle)]
    assert sorted(set(folds)) == sorted([*demo.HELDOUT_FAMILIES, 'clean'])
    assert folds.count('clean') == len(demo.TEST_PHOTOS)
    sizes = {read_image(root / 'train_input_img' / name).shape[:2] for name in os.listdir(root / 'train_input_img')}
    assert sizes == {(48, 64), (24, 32)}  # 2:1 like 2448x3264 / 1224x1632, H:W = 3:4
    assert sorted(os.listdir(root / 'test_label_img'))[0] == 'test_label_20000.png'
    other_seed = tmp_path / 'c'
    demo.main(['--out', str(other_seed), *args[:-1], '6'])
    assert not filecmp.cmp(root / 'train_input_img' / 'train_input_10000.png',
                           other_seed / 'train_input_img' / 'train_input_10000.png', shallow=False)


def test_demo_uses_held_out_photos_for_test():
    demo = load_script('make_demo_dataset')
    assert not set(demo.TRAIN_PHOTOS) & set(demo.TEST_PHOTOS)
    families = {(job[0], job[4]) for job in demo.plan(0, 2, 1, demo.demo_sizes(1))}
    assert families == {('train', 'procedural'), ('val', 'procedural'), ('test', 'clean')} | {
        ('test', family) for family in demo.HELDOUT_FAMILIES}
    assert {job[2] for job in demo.plan(0, 2, 1, demo.demo_sizes(1)) if job[0] == 'val'} <= set(demo.TRAIN_PHOTOS)


def test_preview_writes_a_labelled_grid_of_the_expected_size(clean_dir, tmp_path):
    option_file = tmp_path / 'preview.yml'
    option_file.write_text(yaml.safe_dump({'scale': 1, 'datasets': {'train': {
        'name': 'clean', 'type': 'SyntheticFlareDataset', 'dataroot_gt': str(clean_dir),
        'io_backend': {'type': 'disk'}, 'gt_size': 32, 'use_hflip': True, 'use_rot': True}}}))
    out = tmp_path / 'grid.png'
    load_script('preview_augmentations').main(
        ['--opt', str(option_file), '--out', str(out), '--n', '3', '--columns', '2', '--cell', '40'])
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * (40 + 20), 2 * 2 * 40, 3)
    assert grid[60:, 80:].max() == 0  # the 4th pair slot is empty
    assert grid[:20, :40].max() > 0  # text drawn in the label bar
    input_cell, label_cell = grid[20:60, :40].astype(int), grid[20:60, 40:80].astype(int)
    assert np.abs(input_cell - label_cell).mean() > 0.5  # the input carries flare


def test_preview_shows_each_synthesis_component_on_its_own(clean_dir, tmp_path):
    out = tmp_path / 'components.png'
    preview = load_script('preview_augmentations')
    preview.main(['--components', str(clean_dir / 'photo_0.png'), '--out', str(out), '--n', '2', '--cell', '32'])
    grid = cv2.imread(str(out))
    rows = len(preview.component_configs())
    assert grid.shape == (rows * (32 + 20), 3 * 32, 3)
    clean_cell = grid[20:52, :32].astype(int)
    for row in range(rows):  # every row's draws differ from the clean image shown first
        top = row * 52 + 20
        assert (grid[top:top + 32, :32].astype(int) == clean_cell).all()
        assert np.abs(grid[top:top + 32, 32:64].astype(int) - clean_cell).mean() > 0.2, row


@pytest.mark.parametrize('script, flag', [('preview_augmentations', '--out'), ('demo_summary', '--picture')])
def test_a_picture_output_that_is_not_a_png_is_refused_and_the_file_kept(script, flag, clean_dir, tmp_path, capsys):
    """Both scripts write PNG bytes; under another name they would have replaced the file with a PNG."""
    victim = tmp_path / 'notes.jpgg'
    victim.write_text('keep me')
    argv = {'preview_augmentations': ['--components', str(clean_dir / 'photo_0.png'), '--n', '1', '--cell', '32'],
            'demo_summary': ['--results', str(tmp_path / 'no_results')]}[script]
    code, _, err = run_main_in_process(load_script(script).main, [*argv, flag, str(victim)], capsys)
    assert code == 2 and err == f'error: {flag} {victim}: must end in .png (the file written is a PNG picture)\n'
    assert victim.read_text() == 'keep me'


def test_demo_summary_scores_each_family_and_the_flare_region(tmp_path, capsys):
    """A perfect model (outputs = labels), scored and written as test.py does (metrics.json): every family's output
    and flare region print as inf, the input as its mean PSNR."""
    from basicsr.metrics import calculate_psnr

    from flare_sr.metrics.flare_psnr_metric import calculate_flare_psnr
    from flare_sr.models.tiled_validation import MetricsFile, dataset_scores

    demo = load_script('make_demo_dataset')
    data = tmp_path / 'demo'
    demo.main(['--out', str(data), '--scale', '0.25', '--per-photo-train', '1', '--per-photo-test', '1'])
    with open(data / 'test.csv') as handle:
        rows = list(csv.DictReader(handle))
    results = tmp_path / 'results'
    metrics = MetricsFile({'is_train': False, 'name': 'demo', 'path': {'results_root': str(results)}}, 'CascadeModel')
    per_family = {}
    for row in rows:
        folder = results / 'visualization' / f'demo_{row["fold"]}'
        folder.mkdir(parents=True, exist_ok=True)
        label = cv2.imread(str(data / 'test_label_img' / row['label_img']))
        lq = cv2.imread(str(data / 'test_input_img' / row['input_img']))
        cv2.imwrite(str(folder / row['input_img']), label)  # a perfect model
        per_family.setdefault(row['fold'], {})[os.path.splitext(row['input_img'])[0]] = {
            'psnr': (calculate_psnr(label, label, 0), calculate_psnr(lq, label, 0)),
            'flare_psnr': (calculate_flare_psnr(label, label, img_lq=lq), calculate_flare_psnr(lq, label, img_lq=lq))}
    for family, per_image in per_family.items():
        metrics.add('demo', f'demo_{family}', dataset_scores(per_image, ['psnr', 'flare_psnr']))
    capsys.readouterr()
    picture = tmp_path / 'grid.png'
    load_script('demo_summary').main(['--results', str(results), '--data', str(data), '--picture', str(picture)])
    lines = capsys.readouterr().out.splitlines()
    for family in demo.HELDOUT_FAMILIES:
        line = next(line for line in lines if f'held-out {family}' in line)
        inputs = np.mean([scores['psnr'][1] for scores in per_family[family].values()])
        assert f'whole image {inputs:.2f} -> inf dB' in line and 'flare region' in line and '-> inf dB' in line
    assert 'flare-free photos: output PSNR inf dB' in '\n'.join(lines)
    height = cv2.imread(str(data / 'test_input_img' / rows[0]['input_img'])).shape[0]
    assert cv2.imread(str(picture)).shape[0] == (len(demo.HELDOUT_FAMILIES) + 1) * height  # a row per family, + clean


@pytest.mark.parametrize('content', ['{"datasets": []}', '{"datasets": {"demo_psf": 5}}',
                                     '{"datasets": {"demo_psf": {"mean": {"psnr": {"input": "x", "output": 1}}}}}',
                                     '{"datasets": {"demo_clean": {"mean": {"psnr": {}}, "per_image": []}}}'])
def test_demo_summary_names_a_metrics_file_of_another_shape(tmp_path, capsys, content):
    """metrics.json is read back: a file of another shape (edited, or from someone else) is one error line naming
    it (it was an AttributeError, TypeError, KeyError or ValueError traceback)."""
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'metrics.json').write_text(content)
    code, out, err = run_main_in_process(load_script('demo_summary').main, [
        '--results', tmp_path / 'results', '--data', tmp_path / 'data', '--picture', tmp_path / 'grid.png'], capsys)
    assert code == 2 and err.startswith(f'error: {tmp_path / "results" / "metrics.json"}: ') and out == '', err
    assert err.count('\n') == 1 and not (tmp_path / 'grid.png').exists()


def test_synthesize_flare_out_inside_a_file_is_said_as_such(clean_dir, tmp_path, capsys):
    """It was the OS's '<out>/train_input_img: Not a directory' (or 'File exists' for --out the file itself)."""
    (tmp_path / 'notes.txt').write_text('mine')
    for out, where in [(tmp_path / 'notes.txt', ''),
                       (tmp_path / 'notes.txt' / 'out', f' inside {tmp_path / "notes.txt"}, which is')]:
        code, stdout, err = run_main_in_process(load_script('synthesize_flare').main,
                                                ['--clean', clean_dir, '--out', out], capsys)
        assert (code, stdout, err) == (2, '', f"error: {out}: --out is{where} a file, not a folder (it receives the "
                                              "split's folders and CSV)\n")
    assert (tmp_path / 'notes.txt').read_text() == 'mine'
