"""Every text list flare_sr reads, saved by a Windows editor (UTF-8 BOM, CRLF line ends), reads as the plain file:
a BasicSR meta_info_file, an LMDB's meta_info.txt, a split CSV and an option file; BasicSR's own PairedImageDataset
too, once flare_sr's fixes are applied."""
import gc

from flare_sr import basicsr_fixes
from flare_sr.data.lmdb_pack import pack_lmdb, read_meta_info, read_meta_info_names
from flare_sr.data.meta_csv import read_split_csv
from flare_sr.data.pairing import pair_paths
from flare_sr.utils.options_check import load_option_file
from tests.helpers import make_photo_pairs


def _windows(path, text):
    path.write_bytes(b'\xef\xbb\xbf' + text.replace('\n', '\r\n').encode('utf-8'))
    return str(path)


def test_meta_info_file_with_bom_and_crlf_pairs_the_dataset(tmp_path):
    """Before: ``lists \\ufefftrain_label_10001.png, which is not in ...`` (the BOM inside the first name)."""
    from basicsr.data import build_dataset

    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)] * 2)
    meta = _windows(tmp_path / 'meta.txt', 'train_label_10001.png (40,40,3)\ntrain_label_10000.png (40,40,3)\n')
    assert read_meta_info_names(meta) == ['train_label_10001.png', 'train_label_10000.png']
    dataset = build_dataset(dict(type='PairedFlareDataset', name='pairs', dataroot_lq=str(lq_dir),
                                 dataroot_gt=str(gt_dir), io_backend={'type': 'disk'}, phase='val',
                                 meta_info_file=meta))
    assert [gt.split('/')[-1] for _, gt in dataset.items] == ['train_label_10001.png', 'train_label_10000.png']


def test_lmdb_meta_info_with_bom_and_crlf(tmp_path):
    lmdb_dir = tmp_path / 'lq.lmdb'
    lmdb_dir.mkdir()
    (lmdb_dir / 'data.mdb').write_bytes(b'')
    _windows(lmdb_dir / 'meta_info.txt', 'a_0001.png (32,32,3) 1\nb_0002.png (32,32,3) 1\n')
    assert read_meta_info(str(lmdb_dir)) == [('a_0001', (32, 32, 3)), ('b_0002', (32, 32, 3))]


def test_split_csv_with_bom_and_crlf(tmp_path):
    path = _windows(tmp_path / 'split.csv', 'img_id,input_img,label_img,fold\n'
                                            'a,train_input_10000.png,train_label_10000.png,train\n')
    assert [(row['img_id'], row['label_img'], row['fold']) for row in read_split_csv(path)] == [
        ('a', 'train_label_10000.png', 'train')]


def test_option_file_with_bom_and_crlf(tmp_path):
    path = _windows(tmp_path / 'run.yml', 'name: run\ntrain:\n  lr: !!float 2e-4\n')
    assert load_option_file(path) == {'name': 'run', 'train': {'lr': 2e-4}}


def test_basicsr_paired_image_dataset_reads_bom_meta_files(tmp_path):
    """BasicSR's PairedImageDataset: a meta_info_file or LMDB meta_info.txt with a BOM gave a first path or key with
    the BOM in it (an unreadable file or a missing LMDB key at its first sample)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset

    basicsr_fixes.apply()
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(40, 40)] * 2)
    base = dict(name='basicsr', phase='val', scale=1, filename_tmpl='{}')
    meta = _windows(tmp_path / 'meta.txt', 'train_label_10001.png (40,40,3)\ntrain_label_10000.png (40,40,3)\n')
    theirs = PairedImageDataset(dict(base, dataroot_lq=str(gt_dir), dataroot_gt=str(gt_dir), meta_info_file=meta,
                                     io_backend={'type': 'disk'}))
    assert theirs.paths[0]['gt_path'] == str(gt_dir / 'train_label_10001.png')
    assert tuple(theirs[0]['gt'].shape) == (3, 40, 40)
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 16, progress=False)
    for side in ('lq', 'gt'):
        meta_path = tmp_path / 'out' / f'{side}.lmdb' / 'meta_info.txt'
        _windows(meta_path, meta_path.read_text())
    theirs = PairedImageDataset(dict(base, dataroot_lq=str(tmp_path / 'out' / 'lq.lmdb'),
                                     dataroot_gt=str(tmp_path / 'out' / 'gt.lmdb'), io_backend={'type': 'lmdb'}))
    assert not any('\ufeff' in paths['gt_path'] for paths in theirs.paths)
    assert tuple(theirs[0]['gt'].shape) == (3, 32, 32)
    del theirs
    gc.collect()  # py-lmdb allows one open handle per environment and process
