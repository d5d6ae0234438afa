"""Flare7K's Image_Pair_Loader and ImageMask_Pair_Loader: its keys, its resize and crop, its pairing."""
import os

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from flare_sr.data.flare7k_pair_dataset import Image_Pair_Loader, ImageMask_Pair_Loader, resize_center_crop
from flare_sr.utils.img_util import write_image


def _write_set(root, names, size, seed):
    """Random 8-bit images ``root/<folder>/<name>.png`` for every (folder, name) of ``names``."""
    rng = np.random.default_rng(seed)
    for folder, stems in names.items():
        for stem in stems:
            write_image(os.path.join(root, folder, f'{stem}.png'), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


@pytest.mark.parametrize('height, width, size', [(100, 150, 64), (150, 97, 64), (64, 64, 64), (40, 30, 64)])
def test_resize_and_crop_are_torchvisions(height, width, size):
    """Flare7K's transform, Resize(gt_size) + CenterCrop(gt_size) on a PIL image, to the last bit (8-bit)."""
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    reference = T.Compose([T.Resize(size), T.CenterCrop(size), T.PILToTensor()])(Image.fromarray(image))
    assert np.array_equal(resize_center_crop(image, size), reference.permute(1, 2, 0).numpy())
    wide = resize_center_crop(image.astype(np.uint16) * 257, size)  # 16-bit: the same resize per channel
    assert wide.dtype == np.uint16 and np.abs(wide.astype(int) // 257 - reference.permute(1, 2, 0).numpy()).max() <= 1


def test_flare7k_test_layout_pairs_by_name_with_masks(tmp_path):
    stems = [f'{index:06d}' for index in (0, 1, 2)]
    _write_set(tmp_path, {'input': [f'input_{s}' for s in stems], 'gt': [f'gt_{s}' for s in stems],
                          'mask': [f'mask_{s}' for s in stems[::-1]]}, (80, 96), seed=1)
    opt = {'name': 'real', 'type': 'ImageMask_Pair_Loader', 'phase': 'val', 'dataroot_lq': str(tmp_path / 'input'),
           'dataroot_gt': str(tmp_path / 'gt'), 'dataroot_mask': str(tmp_path / 'mask'), 'gt_size': 64}
    assert ImageMask_Pair_Loader.check_options(opt, 'datasets.val') == []
    dataset = ImageMask_Pair_Loader(opt)
    sample = dataset[1]
    assert [os.path.basename(sample[f'{role}_path']) for role in ('lq', 'gt', 'mask')] == [
        'input_000001.png', 'gt_000001.png', 'mask_000001.png']
    assert all(sample[role].shape == (3, 64, 64) and sample[role].dtype == torch.float32
               for role in ('lq', 'gt', 'mask'))
    whole = Image_Pair_Loader(dict(opt, gt_size=None))[1]  # no gt_size: the whole image, as flare_sr validates
    assert whole['lq'].shape == (3, 80, 96) and 'mask' not in whole


def test_names_that_do_not_pair_are_paired_by_sorted_order_with_one_warning(tmp_path, capsys):
    _write_set(tmp_path, {'a': ['photo_b', 'photo_a'], 'b': ['shot_2', 'shot_1']}, (32, 32), seed=2)
    opt = {'name': 'val', 'phase': 'val', 'dataroot_lq': str(tmp_path / 'a'), 'dataroot_gt': str(tmp_path / 'b')}
    dataset = Image_Pair_Loader(opt)
    assert [(os.path.basename(lq), os.path.basename(gt)) for lq, gt in dataset.items] == [
        ('photo_a.png', 'shot_1.png'), ('photo_b.png', 'shot_2.png')]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and 'paired by sorted order as Flare7K does (e.g. photo_a.png <-> shot_1.png)' in \
        warnings[0]
    shifted = tmp_path / 'shifted'  # the warning names a pair whose numbers disagree, not the first pair
    _write_set(shifted, {'input': ['in_0', 'in_1', 'in_2'], 'gt': ['out_0', 'out_2', 'out_3']}, (32, 32), seed=4)
    Image_Pair_Loader({'name': 'val', 'phase': 'val', 'dataroot_lq': str(shifted / 'input'),
                       'dataroot_gt': str(shifted / 'gt')})
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and warnings[0].endswith('(e.g. in_1.png <-> out_2.png; 2 pairs join names with '
                                                       'different numbers)')
    _write_set(tmp_path, {'b': ['shot_3']}, (32, 32), seed=3)  # counts differ: refused, naming an unpaired file
    problems = Image_Pair_Loader.check_options(opt, 'datasets.val')
    assert len(problems) == 1 and problems[0].startswith('datasets.val: ') and 'no partner' in problems[0]


def test_bad_keys_are_named(tmp_path):
    assert Image_Pair_Loader.check_options({'dataroot_lq': str(tmp_path), 'gt_size': 0}, 'datasets.val') == [
        'datasets.val.dataroot_gt: missing',
        'datasets.val.gt_size: expected a positive integer (the side images are resized and cropped to), got 0']
    assert ImageMask_Pair_Loader.check_options({'dataroot_lq': 'a', 'dataroot_gt': 'b'}, 'datasets.val') == [
        'datasets.val.dataroot_mask: missing']


def test_two_inputs_of_one_name_are_refused_their_outputs_would_collide(tmp_path):
    """a.png and a.jpg pair by sorted order with two labels, but test.py names each output by its input's stem:
    visualization/<set>/a.png held only the second (and the log two lines 'a')."""
    _write_set(tmp_path, {'in': ['a'], 'gt': ['a', 'b']}, (32, 32), seed=4)
    write_image(tmp_path / 'in' / 'a.jpg', np.zeros((32, 32, 3), np.uint8))
    opt = {'name': 'val', 'phase': 'val', 'dataroot_lq': str(tmp_path / 'in'), 'dataroot_gt': str(tmp_path / 'gt')}
    problems = Image_Pair_Loader.check_options(opt, 'datasets.val')
    assert problems == [f'datasets.val: dataroot_lq: {tmp_path / "in"} holds a.jpg and a.png, whose outputs would '
                        'both be named a.png; rename one of them']
