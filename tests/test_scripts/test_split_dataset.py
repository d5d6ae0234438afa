"""scripts/split_dataset.py on real image folders: the CSV it writes, and errors that keep the old CSV."""
import os

import numpy as np

from flare_sr.data.meta_csv import read_split_csv
from flare_sr.utils.img_util import write_image
from tests.helpers import run_script


def test_split_script_on_real_folders_and_errors_keep_the_old_csv(tmp_path, capsys):
    lq_dir, gt_dir = tmp_path / 'train_input_img', tmp_path / 'train_label_img'
    for i in range(8):
        size = (24, 32) if i < 3 else (12, 16)
        write_image(lq_dir / f'train_input_{10000 + i}.png', np.zeros(size + (3,), np.uint8))
        write_image(gt_dir / f'train_label_{10000 + i}.png', np.ones(size + (3,), np.uint8))
    out = tmp_path / 'split.csv'
    args = ['--lq', str(lq_dir), '--gt', str(gt_dir), '--out', str(out)]
    code, stdout, _ = run_script('split_dataset',
                                 args + ['--strategy', 'size', '--test-size', '24x32', '--val-ratio', '0.25'], capsys)
    assert code == 0
    assert stdout == f'wrote {out}: 8 pairs (train: 6, val: 2), strategy size, seed 0\n'
    rows = read_split_csv(out)
    assert all(row['height'] == '24' for row in rows if row['fold'] == 'val')
    before = out.read_bytes()
    write_image(gt_dir / 'train_label_10000.png', np.ones((24, 30, 3), np.uint8))
    code, stdout, stderr = run_script('split_dataset', args, capsys)
    assert code == 2 and stdout == ''
    assert stderr == f'error: {lq_dir / "train_input_10000.png"}: size 24x32 differs from its label ' \
                     f'{gt_dir / "train_label_10000.png"}\n'
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['split.csv', 'train_input_img', 'train_label_img']
