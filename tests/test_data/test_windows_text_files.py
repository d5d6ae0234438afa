"""Every text list flare_sr reads, saved by a Windows editor (UTF-8 BOM, CRLF line ends), reads as the plain file:
a BasicSR meta_info_file, an LMDB's meta_info.txt, a split CSV and an option file."""
from flare_sr.data.lmdb_pack import read_meta_info
from flare_sr.data.meta_csv import read_split_csv
from flare_sr.data.paired_flare_dataset import read_meta_info_names
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
