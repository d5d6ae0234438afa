"""scripts/create_lmdb.py and scripts/check_lmdb.py on real folders: folds, --overwrite, corruption found, one-line
errors and exit codes, a killed pack leaves no complete-looking LMDB."""
import os
import signal
import subprocess
import sys
import time

import lmdb
import pytest
from basicsr.data import build_dataset

from flare_sr.data.lmdb_pack import pack_lmdb, quick_check_lmdb, read_meta_info
from flare_sr.data.meta_csv import make_split, write_split_csv
from flare_sr.data.pairing import pair_paths
from flare_sr.errors import FlareSRError
from tests.helpers import REPO, make_photo_pairs, run_script, snapshot


def test_fold_selection_when_packing_and_reading(tmp_path, capsys):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)] * 4)
    rows = make_split(pair_paths(lq_dir, gt_dir), [(40, 40)] * 4, 'random', val_ratio=0.25, seed=1)
    write_split_csv(tmp_path / 'split.csv', rows)
    val_id = next(row['img_id'] for row in rows if row['fold'] == 'val')
    base = ['--lq', str(lq_dir), '--gt', str(gt_dir), '--patch-size', '32', '--stride', '8', '--workers', '1']
    code, out, _ = run_script('create_lmdb', base + ['--out', str(tmp_path / 'all')], capsys)
    assert code == 0 and out.startswith('packed 4 pairs into 16 patch pairs of 32px (stride 8)')
    code, out, _ = run_script(
        'create_lmdb',
        base + ['--out', str(tmp_path / 'train'), '--meta',
                str(tmp_path / 'split.csv'), '--fold', 'train'], capsys)
    assert code == 0 and out.startswith('packed 3 pairs into 12 patch pairs')
    assert not any(key.startswith(val_id) for key, _ in read_meta_info(str(tmp_path / 'train' / 'lq.lmdb')))
    val = build_dataset(dict(type='PairedFlareDataset', name='v', phase='val', io_backend={'type': 'lmdb'},
                             dataroot_lq=str(tmp_path / 'all' / 'lq.lmdb'),
                             dataroot_gt=str(tmp_path / 'all' / 'gt.lmdb'),
                             meta_csv=str(tmp_path / 'split.csv'), fold='val'))
    assert len(val) == 4 and all(lq.startswith(f'{val_id}_s') for lq, _ in val.items)


def test_existing_lmdb_refused_then_replaced_only_with_overwrite(tmp_path, capsys):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 40, 8, progress=False)
    before = snapshot(tmp_path / 'out')
    args = ['--lq', str(lq_dir), '--gt', str(gt_dir), '--out', str(tmp_path / 'out'), '--patch-size', '32',
            '--stride', '8', '--workers', '1']
    code, out, err = run_script('create_lmdb', args, capsys)
    assert code == 2 and out == ''
    assert err == f'error: {tmp_path / "out"}: already holds an LMDB; pass --overwrite to replace it ' \
                  '(the old one stays until the new one is complete)\n'
    assert snapshot(tmp_path / 'out') == before
    code, out, err = run_script('create_lmdb', args + ['--overwrite'], capsys)
    assert code == 0
    assert len(quick_check_lmdb(str(tmp_path / 'out' / 'lq.lmdb'), str(tmp_path / 'out' / 'gt.lmdb'))) == 4
    assert sorted(os.listdir(tmp_path)) == ['out', 'train_input_img', 'train_label_img']  # no temp folder left


def _corrupt_record(lmdb_path, key, value):
    env = lmdb.open(lmdb_path, map_size=64 * 1024**2)
    with env.begin(write=True) as txn:
        if value is None:
            txn.delete(key.encode())
        else:
            txn.put(key.encode(), value)
    env.close()


def test_check_lmdb_catches_corruption_and_key_mismatch(tmp_path, capsys):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(48, 48)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 16, progress=False)
    out = tmp_path / 'out'
    code, stdout, _ = run_script('check_lmdb', [str(out)], capsys)
    assert code == 0 and stdout == f'ok: {out}: 4 patch pairs, all records decode with the shapes in meta_info.txt\n'
    _corrupt_record(str(out / 'gt.lmdb'), 'train_10000_s0016_0000', b'\x89PNG garbage')
    code, _, _ = run_script('check_lmdb', [str(out), '--quick'], capsys)
    assert code == 0  # quick mode checks keys and counts only
    code, _, err = run_script('check_lmdb', [str(out)], capsys)
    assert code == 2 and err.splitlines()[-1] == (f'error: {out / "gt.lmdb"}: record train_10000_s0016_0000 does not '
                                                  'decode as an image (1 problem(s) in all)')
    assert err.count('error:') == 1  # the rest of stderr is the progress bar
    _corrupt_record(str(out / 'gt.lmdb'), 'train_10000_s0016_0000', None)
    code, _, err = run_script('check_lmdb', [str(out), '--quick'], capsys)
    assert code == 2 and err == f'error: {out / "gt.lmdb"}: holds 3 records but meta_info.txt lists 4\n'
    meta = out / 'gt.lmdb' / 'meta_info.txt'
    meta.write_text(''.join(line for line in meta.read_text().splitlines(True) if 's0016_0000' not in line))
    with pytest.raises(FlareSRError, match=r'lq.lmdb and .*gt.lmdb differ: train_10000_s0016_0000 is in lq but '
                                           r'not in gt \(1 keys differ\)'):
        build_dataset(dict(type='PairedFlareDataset', name='x', phase='train', io_backend={'type': 'lmdb'},
                           dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'), gt_size=16))


@pytest.mark.slow
def test_cli_subprocess_one_line_error_and_exit_code(tmp_path):
    (tmp_path / 'empty').mkdir()
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'create_lmdb.py'), '--lq',
                             str(tmp_path / 'empty'), '--gt', str(tmp_path / 'empty'), '--out', str(tmp_path / 'out'),
                             '--patch-size', '32', '--stride', '16'], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f'error: {tmp_path / "empty"}: no images (.png, .jpg, .jpeg, .bmp, '
                                                  '.tif, .tiff) in this folder']
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('kill_signal', [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.slow
def test_killed_pack_never_leaves_a_complete_looking_lmdb(tmp_path, kill_signal):
    """Kill a real packing process half-way: OUT keeps the previous LMDB byte for byte. SIGTERM also
    removes the half-built temporary folder; after SIGKILL only a hidden .out.*.tmp folder remains."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(256, 256)] * 8)
    pack_lmdb(pair_paths(lq_dir, gt_dir)[:1], tmp_path / 'out', 256, 8, progress=False)
    before = snapshot(tmp_path / 'out')
    process = subprocess.Popen([sys.executable, os.path.join(REPO, 'scripts', 'create_lmdb.py'), '--lq', str(lq_dir),
                                '--gt', str(gt_dir), '--out', str(tmp_path / 'out'), '--patch-size', '16',
                                '--stride', '4', '--workers', '1', '--overwrite'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    partial = None
    while time.time() < deadline and process.poll() is None:
        temps = [name for name in os.listdir(tmp_path) if name.startswith('.out.')]
        meta = [tmp_path / name / 'gt.lmdb' / 'meta_info.txt' for name in temps]
        if meta and meta[0].exists() and meta[0].stat().st_size > 0:
            partial = meta[0]
            break
        time.sleep(0.02)
    assert process.poll() is None, 'packing finished before it could be killed; make the data bigger'
    os.kill(process.pid, kill_signal)
    process.communicate()
    assert partial is not None
    assert snapshot(tmp_path / 'out') == before
    assert len(quick_check_lmdb(str(tmp_path / 'out' / 'lq.lmdb'), str(tmp_path / 'out' / 'gt.lmdb'))) == 1
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith('.out.')]
    if kill_signal == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM and leftovers == []
    else:
        assert process.returncode == -signal.SIGKILL and len(leftovers) == 1
        # the next pack names the leftover (it may hold gigabytes), and check_lmdb of a pack never made points at it
        result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'create_lmdb.py'), '--lq', str(lq_dir),
                                 '--gt', str(gt_dir), '--out', str(tmp_path / 'out'), '--patch-size', '256',
                                 '--stride', '256', '--workers', '1', '--overwrite'], capture_output=True, text=True)
        assert result.returncode == 0
        assert f'warning: {tmp_path / leftovers[0]}: left by a killed pack of {tmp_path / "out"} (1 such folder(s)); ' \
               'delete it once no other pack runs, it may hold gigabytes\n' in result.stderr
        os.rename(tmp_path / 'out', tmp_path / 'other')
        result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'check_lmdb.py'), str(tmp_path / 'out')],
                                capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr == (
            f'error: {tmp_path / "out"}: folder not found; {tmp_path / leftovers[0]} is a pack killed half way: '
            'delete it and pack again\n')


@pytest.mark.slow
def test_cli_with_more_workers_than_pairs_exits(tmp_path):
    """A real worker pool under the CLI's SIGTERM handler: the workers get the default handler back, and the
    pool never starts more workers than there are pairs. The run must finish and pack every patch."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(64, 64), (64, 64)])
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'create_lmdb.py'), '--lq', str(lq_dir),
                             '--gt', str(gt_dir), '--out', str(tmp_path / 'out'), '--patch-size', '32',
                             '--stride', '32', '--workers', '2'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'packed 2 pairs into 8 patch pairs' in result.stdout


def test_check_lmdb_on_what_is_not_a_pack_says_what_it_is(tmp_path, capsys):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 40, 8, progress=False)
    (tmp_path / 'notes.txt').write_text('x')
    for folder, problem in [
            (tmp_path / 'out' / 'lq.lmdb', 'holds no lq.lmdb or gt.lmdb (it is itself an LMDB; give the folder holding '
                                           'lq.lmdb and gt.lmdb)'),
            (lq_dir, 'holds no lq.lmdb or gt.lmdb (it is not a folder made by create_lmdb.py)'),
            (tmp_path / 'notes.txt', 'is a file, not a folder')]:
        code, out, err = run_script('check_lmdb', [str(folder)], capsys)
        assert (code, out, err) == (2, '', f'error: {folder}: {problem}\n')


def test_a_stride_larger_than_the_patch_is_refused(tmp_path, capsys):
    """Stride 100 at patch 48 left bands of every image out of the pack, without a word."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(200, 200)])
    code, out, err = run_script('create_lmdb', ['--lq', lq_dir, '--gt', gt_dir, '--out', tmp_path / 'out',
                                                '--patch-size', '48', '--stride', '100', '--workers', '1'], capsys)
    assert (code, out, err) == (2, '', 'error: --stride 100 is larger than --patch-size 48: the pixels between patches '
                                       'would never be packed\n')
    assert not (tmp_path / 'out').exists()
