"""LMDB packing on real files and real LMDBs: counts, exactness, readers, atomicity, failures (the scripts:
tests/test_scripts/test_lmdb_scripts.py)."""
import copy
import gc
import os

import cv2
import lmdb
import numpy as np
import pytest
import skimage.data
from basicsr.data import build_dataset
from basicsr.data.paired_image_dataset import PairedImageDataset

from flare_sr.data import lmdb_pack
from flare_sr.data.lmdb_pack import full_check_lmdb, pack_lmdb, read_meta_info
from flare_sr.data.pairing import pair_paths
from flare_sr.data.patches import patch_grid, patch_origins
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image_uint8, write_image
from tests.helpers import make_photo_pairs, snapshot


def test_patch_origins_cover_every_pixel_and_match_the_original_count():
    assert len(patch_origins(2448, 512, 256)) * len(patch_origins(3264, 512, 256)) == 108
    assert len(patch_grid(1224, 1632, 512, 256)) == 4 * 6
    assert patch_origins(100, 32, 24) == [0, 24, 48, 68]
    assert patch_origins(32, 32, 8) == [0]
    for length, patch, stride in [(100, 32, 24), (2448, 512, 256), (97, 10, 7), (50, 50, 1)]:
        covered = np.zeros(length, bool)
        for start in patch_origins(length, patch, stride):
            covered[start:start + patch] = True
        assert covered.all()
    with pytest.raises(FlareSRError, match='smaller than the patch size 64'):
        patch_origins(63, 64, 32)


def test_pack_counts_keys_and_pixel_exact_round_trip(tmp_path):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(100, 130), (64, 64)])
    summary = pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 24, workers=2, progress=False)
    assert summary['pairs'] == 2 and summary['patches'] == 4 * 6 + 3 * 3
    lq_lmdb, gt_lmdb = str(tmp_path / 'out' / 'lq.lmdb'), str(tmp_path / 'out' / 'gt.lmdb')
    assert full_check_lmdb(lq_lmdb, gt_lmdb, progress=False) == 33
    meta = read_meta_info(lq_lmdb)
    assert [key for key, _ in meta] == [key for key, _ in read_meta_info(gt_lmdb)]
    assert ('train_10000_s0068_0098', (32, 32, 3)) in meta
    sources = {'lq': {}, 'gt': {}}
    for key, lq_path, gt_path in pair_paths(lq_dir, gt_dir):
        sources['lq'][key], sources['gt'][key] = read_image_uint8(lq_path), read_image_uint8(gt_path)
    for side, path in (('lq', lq_lmdb), ('gt', gt_lmdb)):
        env = lmdb.open(path, readonly=True, lock=False)
        with env.begin() as txn:
            for key, _ in meta:
                match = lmdb_pack.PATCH_KEY.match(key)
                y, x = int(match.group('y')), int(match.group('x'))
                stored = cv2.imdecode(np.frombuffer(txn.get(key.encode()), np.uint8), cv2.IMREAD_UNCHANGED)
                expected = sources[side][match.group('image')][y:y + 32, x:x + 32]
                assert np.array_equal(stored[:, :, ::-1], expected), key
        env.close()


def test_basicsr_paired_image_dataset_and_ours_read_the_lmdb(tmp_path):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(70, 90)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 16, progress=False)
    roots = dict(dataroot_lq=str(tmp_path / 'out' / 'lq.lmdb'), dataroot_gt=str(tmp_path / 'out' / 'gt.lmdb'),
                 io_backend={'type': 'lmdb'})
    theirs = PairedImageDataset(copy.deepcopy(dict(roots, name='basicsr', phase='val', scale=1, filename_tmpl='{}')))
    assert len(theirs) == 4 * 5
    gt_photo = read_image_uint8(gt_dir / 'train_label_10000.png')
    for index in (0, 7, 19):
        sample = theirs[index]
        y, x = (int(part) for part in sample['gt_path'].split('_s')[1].split('_'))
        assert np.array_equal(np.round(sample['gt'].numpy().transpose(1, 2, 0) * 255), gt_photo[y:y + 32, x:x + 32])
        assert np.abs((sample['lq'] + sample['gt']).numpy() - 1).max() < 1e-6
    del theirs, sample  # py-lmdb allows one open handle per environment and process
    gc.collect()
    train = build_dataset(dict(roots, type='PairedFlareDataset', name='ours', phase='train', gt_size=16,
                               use_hflip=True, use_rot=True, seed=0))
    val = build_dataset(dict(roots, type='PairedFlareDataset', name='ours_val', phase='val'))
    assert len(train) == len(val) == 20
    sample = train[12345]
    assert tuple(sample['gt'].shape) == (3, 16, 16)
    assert np.abs((sample['lq'] + sample['gt']).numpy() - 1).max() < 1e-6
    assert np.array_equal(np.round(val[19]['gt'].numpy().transpose(1, 2, 0) * 255), gt_photo[38:70, 58:90])


def test_folder_with_other_files_refused_even_with_overwrite(tmp_path):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)])
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'notes.txt').write_text('mine')
    with pytest.raises(FlareSRError, match=r'out: holds other files \(notes.txt\)'):
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, overwrite=True, progress=False)
    assert (tmp_path / 'out' / 'notes.txt').read_text() == 'mine'


@pytest.mark.parametrize('problem, message', [
    ('empty', r'train_input_img: no images'),
    ('unpaired', r'train_input_10002\.png: no partner'),
    ('corrupt', r'train_label_10001\.png: truncated PNG'),
    ('mismatch', r'train_input_10001\.png: size 40x40 differs from its label .*train_label_10001\.png \(40x44\)'),
    ('small', r'train_input_10001\.png: 40x30 is smaller than the patch size 32'),
])
def test_bad_input_fails_by_name_before_anything_is_written(tmp_path, problem, message):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40), (40, 40)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, progress=False)
    before = snapshot(tmp_path / 'out')
    if problem == 'empty':
        for path in lq_dir.iterdir():
            path.unlink()
    elif problem == 'unpaired':
        write_image(lq_dir / 'train_input_10002.png', np.zeros((40, 40, 3), np.uint8))
    elif problem == 'corrupt':
        data = (gt_dir / 'train_label_10001.png').read_bytes()
        (gt_dir / 'train_label_10001.png').write_bytes(data[:len(data) // 2])
    elif problem == 'mismatch':
        write_image(gt_dir / 'train_label_10001.png', np.zeros((40, 44, 3), np.uint8))
    elif problem == 'small':
        for folder, name in ((lq_dir, 'train_input_10001.png'), (gt_dir, 'train_label_10001.png')):
            write_image(folder / name, np.zeros((40, 30, 3), np.uint8))
    with pytest.raises(FlareSRError, match=message):
        pairs = pair_paths(lq_dir, gt_dir)
        pack_lmdb(pairs, tmp_path / 'out', 32, 8, workers=2, overwrite=True, progress=False)
    assert snapshot(tmp_path / 'out') == before
    assert sorted(os.listdir(tmp_path)) == ['out', 'train_input_img', 'train_label_img']


def test_failure_mid_pack_keeps_previous_lmdb_and_leaves_no_temp(tmp_path, monkeypatch):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)] * 3)
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 40, 8, progress=False)
    before = snapshot(tmp_path / 'out')
    real_cut = lmdb_pack._cut_pair
    calls = []

    def failing_cut(job):
        calls.append(job[0])
        if len(calls) == 2:
            raise OSError(28, 'No space left on device')
        return real_cut(job)

    monkeypatch.setattr(lmdb_pack, '_cut_pair', failing_cut)
    with pytest.raises(FlareSRError, match=r'out: no space left on device; nothing was replaced'):
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, overwrite=True, progress=False)
    assert calls == ['train_10000', 'train_10001']
    assert snapshot(tmp_path / 'out') == before
    assert sorted(os.listdir(tmp_path)) == ['out', 'train_input_img', 'train_label_img']


def test_full_map_and_lmdb_disk_error_clean_up(tmp_path, monkeypatch):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(96, 96)] * 2)
    with pytest.raises(FlareSRError, match=r'out: LMDB map_size of 65536 bytes is full; nothing was written'):
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, map_size=64 * 1024, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['train_input_img', 'train_label_img']

    def disk_full(self, img_byte, key, img_shape):
        raise lmdb.DiskError('mdb_put: No space left on device')

    monkeypatch.setattr(lmdb_pack.LmdbMaker, 'put', disk_full)
    with pytest.raises(FlareSRError, match=r'out: LMDB write failed .*No space left on device.*nothing was written'):
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['train_input_img', 'train_label_img']


def test_unicode_names_become_safe_unique_keys(tmp_path):
    lq_dir, gt_dir = tmp_path / 'entrée floue', tmp_path / 'étiquette'
    photo = skimage.data.astronaut()[:40, :40]
    for name in ('café 1.png', 'café-2.png'):
        write_image(lq_dir / name, 255 - photo)
        write_image(gt_dir / name, photo)
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 40, 8, progress=False)
    keys = [key for key, _ in read_meta_info(str(tmp_path / 'out' / 'lq.lmdb'))]
    assert keys == ['caf__1_s0000_0000', 'caf_-2_s0000_0000']
    write_image(lq_dir / 'café_1.png', photo)
    write_image(gt_dir / 'café_1.png', photo)
    with pytest.raises(FlareSRError, match=r'caf__1" \(from "café_1"\) collides with that of .*café 1\.png '
                                           r'\(from "café 1"\)'):
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out2', 40, 8, progress=False)


def test_dataloader_workers_read_an_lmdb_this_process_has_read(tmp_path):
    """Training on an LMDB with num_worker_per_gpu > 0 and validating on it: the next epoch's workers, forked after
    the validation had opened the LMDB here, failed ("already open in this process", py-lmdb's refusal inherited).
    Worker batches equal this process's samples."""
    import torch

    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(64, 64)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 32, progress=False)
    dataset = build_dataset(dict(dataroot_lq=str(tmp_path / 'out' / 'lq.lmdb'), io_backend={'type': 'lmdb'},
                                 dataroot_gt=str(tmp_path / 'out' / 'gt.lmdb'), type='PairedFlareDataset',
                                 name='val_on_train', phase='val'))
    here = [dataset[index]['lq'] for index in range(len(dataset))]  # opens both environments in this process
    for _ in range(2):  # two epochs: workers forked twice after this process read
        loader = torch.utils.data.DataLoader(dataset, batch_size=len(dataset), num_workers=2)
        assert torch.equal(next(iter(loader))['lq'], torch.stack(here))
    assert torch.equal(dataset[0]['lq'], here[0])  # reopened here after the forks


def test_truncated_data_mdb_is_one_line_not_a_bus_error(tmp_path):
    """An LMDB copied half way: reading its missing pages killed the process with SIGBUS, without a word."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(96, 96)] * 2)
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 8, progress=False)
    data = tmp_path / 'out' / 'lq.lmdb' / 'data.mdb'
    full = data.stat().st_size
    os.truncate(data, full // 2)
    with pytest.raises(FlareSRError) as refusal:
        full_check_lmdb(str(tmp_path / 'out' / 'lq.lmdb'), str(tmp_path / 'out' / 'gt.lmdb'), progress=False)
    assert str(refusal.value) == (f'{tmp_path / "out" / "lq.lmdb"}: data.mdb is truncated ({full // 2} of {full} '
                                  'bytes; an interrupted copy or a full disk): copy or pack it again')


def test_out_inside_a_file_is_said_as_such(tmp_path):
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)])
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(FlareSRError) as refusal:
        pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'notes.txt' / 'out', 32, 8, progress=False)
    assert str(refusal.value) == (f'{tmp_path / "notes.txt" / "out"}: --out is inside {tmp_path / "notes.txt"}, '
                                  'which is a file, not a folder')
    assert (tmp_path / 'notes.txt').read_text() == 'mine'
