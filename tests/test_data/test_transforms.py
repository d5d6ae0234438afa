"""Shared crop / flip / to-tensor: the disk path crops in the file's dtype and returns the same pixels as the
old path (whole frame to float, then crop), for 8- and 16-bit files, in both datasets."""
import cv2
import numpy as np
import pytest
import skimage.data
import torch
from basicsr.data import build_dataset

from flare_sr.data import transforms
from flare_sr.data.sampling import SampleKey, sample_rng
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image

GT_SIZE = 48


def old_path(lq_path, gt_path, opt, key, length):
    """PairedFlareDataset before issue 12: read both frames as float32, then crop, flip, transpose."""
    lq, gt = read_image(lq_path), read_image(gt_path)
    rng = sample_rng(opt, key, length)
    height, width = gt.shape[:2]
    top = int(rng.integers(0, height - GT_SIZE + 1))
    left = int(rng.integers(0, width - GT_SIZE + 1))
    lq, gt = lq[top:top + GT_SIZE, left:left + GT_SIZE], gt[top:top + GT_SIZE, left:left + GT_SIZE]
    hflip, vflip, transpose = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
    out = []
    for img in (lq, gt):
        img = img[:, ::-1] if hflip else img
        img = img[::-1] if vflip else img
        img = img.transpose(1, 0, 2) if transpose else img
        out.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
    return out


@pytest.fixture
def pairs(tmp_path):
    """A real photo as an 8-bit pair and as a 16-bit pair (odd size, Dacon names)."""
    photo = skimage.data.chelsea()[:201, :299]
    deep = photo.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, photo.shape).astype(np.uint16)
    lq_dir, gt_dir = tmp_path / 'lq', tmp_path / 'gt'
    lq_dir.mkdir()
    gt_dir.mkdir()
    for number, img in ((10000, photo), (10001, deep)):
        cv2.imwrite(str(gt_dir / f'train_label_{number}.png'), img[:, :, ::-1])
        cv2.imwrite(str(lq_dir / f'train_input_{number}.png'), img[::-1, :, ::-1])
    return lq_dir, gt_dir


def test_disk_crop_returns_the_old_paths_pixels(pairs):
    lq_dir, gt_dir = pairs
    opt = dict(type='PairedFlareDataset', name='crop', phase='train', dataroot_lq=str(lq_dir),
               dataroot_gt=str(gt_dir), io_backend={'type': 'disk'}, gt_size=GT_SIZE, use_hflip=True, use_rot=True,
               seed=3)
    ds = build_dataset(opt)
    for key in [SampleKey(index, draw) for draw in range(7, 15) for index in range(2)]:  # both files, all flips
        sample = ds[key]
        lq, gt = old_path(*ds.items[key.index], opt, key, len(ds))
        assert sample['lq'].dtype == torch.float32 and sample['lq'].shape == (3, GT_SIZE, GT_SIZE)
        assert torch.equal(sample['lq'], lq) and torch.equal(sample['gt'], gt)


def test_only_the_crop_is_converted_to_float(pairs, monkeypatch):
    lq_dir, gt_dir = pairs
    converted = []
    original = transforms.to_float32
    monkeypatch.setattr(transforms, 'to_float32', lambda img: converted.append(img.shape) or original(img))
    for opt in (dict(type='PairedFlareDataset', dataroot_lq=str(lq_dir)),
                dict(type='SyntheticFlareDataset')):
        converted.clear()
        ds = build_dataset(dict(opt, name='spy', phase='train', dataroot_gt=str(gt_dir), io_backend={'type': 'disk'},
                                gt_size=GT_SIZE, use_hflip=True, use_rot=True, seed=0))
        ds[SampleKey(1, 5)]
        assert converted and all(shape[:2] == (GT_SIZE, GT_SIZE) for shape in converted), converted


def test_augment_and_crop_keep_lists_aligned_and_basicsr_draw_order():
    img = np.arange(5 * 6 * 3, dtype=np.uint16).reshape(5, 6, 3)
    gt, lq = transforms.paired_random_crop(img, img + 1, 4, np.random.default_rng(1), 'x')
    assert np.array_equal(lq, gt + 1) and gt.shape == (4, 4, 3) and gt.dtype == np.uint16
    window = transforms.paired_random_crop(img, [], (3, 5), np.random.default_rng(2), 'x')[0]
    rng = np.random.default_rng(2)
    top, left = int(rng.integers(0, 3)), int(rng.integers(0, 2))  # (height, width): top, then left, as a square
    assert np.array_equal(window, img[top:top + 3, left:left + 5])
    with pytest.raises(FlareSRError, match='x: 5x6 is smaller than the 4x7 window'):
        transforms.paired_random_crop(img, [], (4, 7), rng, 'x')
    rng = np.random.default_rng(5)
    draws = rng.random(3) < 0.5
    out = transforms.augment([img], True, True, np.random.default_rng(5))
    expected = img[:, ::-1] if draws[0] else img
    expected = expected[::-1] if draws[1] else expected
    expected = expected.transpose(1, 0, 2) if draws[2] else expected
    assert np.array_equal(out, expected)
    tensor = transforms.img2tensor(np.full((2, 3, 3), 65535, np.uint16))
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 2, 3) and torch.all(tensor == 1)
