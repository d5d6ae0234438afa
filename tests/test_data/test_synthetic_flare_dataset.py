"""SyntheticFlareDataset: per-key determinism, variety, LMDB-backed clean images, BasicSR build path."""
import os

import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from flare_sr.data.sampling import SampleKey
from flare_sr.data.synthesis import COMPONENTS
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image
from tests.helpers import write_clean_photos

PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png')


@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
    return write_clean_photos(tmp_path_factory.mktemp('clean'), PHOTOS, size=(60, 80))


def make_dataset(root, **extra):
    opt = dict(type='SyntheticFlareDataset', name='synth', dataroot_gt=str(root), io_backend={'type': 'disk'},
               gt_size=48, use_hflip=True, use_rot=True, phase='train', seed=3, scale=1)
    return build_dataset({**opt, **extra})


def find_window(image, window):
    """(top, left) where ``window`` appears exactly in ``image``, or None."""
    size = window.shape[0]
    for top in range(image.shape[0] - size + 1):
        for left in range(image.shape[1] - size + 1):
            if np.array_equal(image[top:top + size, left:left + size], window):
                return top, left
    return None


def test_same_key_same_sample_and_keys_vary(clean_dir):
    dataset = make_dataset(clean_dir)
    assert len(dataset) == 3
    key = SampleKey(1, 5)
    first, again = dataset[key], make_dataset(clean_dir)[key]
    assert first['lq'].shape == first['gt'].shape == (3, 48, 48) and first['lq'].dtype == torch.float32
    assert torch.equal(first['lq'], again['lq']) and torch.equal(first['gt'], again['gt'])
    assert first['lq_path'].endswith(sorted(PHOTOS)[1])  # item key.index
    same_image_later = dataset[SampleKey(1, 12)]
    assert same_image_later['gt_path'] == first['gt_path']
    assert not torch.equal(same_image_later['lq'], first['lq'])
    samples = [dataset[SampleKey(0, draw)] for draw in range(1, 7)]
    flares = torch.stack([sample['lq'] - sample['gt'] for sample in samples])
    assert len({tuple(np.round(f.mean(dim=(1, 2)).numpy(), 4)) for f in flares}) == 6
    assert 0 <= first['lq'].min() and first['lq'].max() <= 1


def test_flare_options_reach_the_synthesis(clean_dir):
    switched_off = {**{name: False for name in COMPONENTS}, 'noise_prob': 0.0, 'exposure_prob': 0.0, 'tone_prob': 0.0}
    sample = make_dataset(clean_dir, flare=switched_off)[4]
    torch.testing.assert_close(sample['lq'], sample['gt'], atol=1e-5, rtol=0)
    with pytest.raises(FlareSRError, match='flare.ghosts_count'):
        make_dataset(clean_dir, flare={'ghosts_count': [1, 2]})
    always_clean = make_dataset(clean_dir, flare={'clean_prob': 1.0})[4]
    assert torch.equal(always_clean['lq'], always_clean['gt'])  # flare-free samples: input = label


def test_validation_phase_fixes_the_flare_per_image(clean_dir):
    """Outside training each whole image gets a flare fixed by (seed, image): the same in a new dataset and at any
    key of that image, a real flare (input far from label), another one for another image or seed."""
    dataset, again, other_seed = (make_dataset(clean_dir, phase='val', **extra) for extra in ({}, {}, {'seed': 4}))
    flares = []
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample['lq'].shape == sample['gt'].shape == (3, 60, 80)  # whole, not cropped to gt_size
        assert torch.equal(sample['lq'], again[index]['lq']) and torch.equal(sample['gt'], again[index]['gt'])
        assert torch.equal(sample['lq'], dataset[index + 2 * len(dataset)]['lq'])  # not a fresh draw per key
        flare = sample['lq'] - sample['gt']
        assert flare.abs().mean() > 0.01, index  # a visible flare, not input = label
        assert not torch.equal(sample['lq'], other_seed[index]['lq'])
        flares.append(flare.mean(dim=(1, 2)))
    assert len({tuple(np.round(flare.numpy(), 4)) for flare in flares}) == len(dataset)  # one flare per image


def test_clean_images_from_lmdb_are_real_crops_of_the_sources(clean_dir, tmp_path):
    keys = [os.path.splitext(name)[0] for name in sorted(PHOTOS)]
    lmdb_path = str(tmp_path / 'clean.lmdb')
    make_lmdb_from_imgs(str(clean_dir), lmdb_path, sorted(PHOTOS), keys, n_thread=1)
    no_flare_in_label = dict(keep_source_in_label=False, exposure_prob=0.0, tone_prob=0.0)
    dataset = build_dataset(dict(type='SyntheticFlareDataset', name='lmdb', dataroot_gt=lmdb_path,
                                 io_backend={'type': 'lmdb'}, gt_size=32, phase='train', seed=0,
                                 flare=no_flare_in_label))
    assert len(dataset) == 3
    for index in range(3):
        sample = dataset[SampleKey(index, 1)]
        assert sample['gt_path'] == f'{lmdb_path}/{keys[index]}'
        source = (read_image(clean_dir / sorted(PHOTOS)[index]) * 255).round()
        window = (sample['gt'].numpy().transpose(1, 2, 0) * 255).round()
        assert find_window(source, window) is not None
        assert not torch.equal(sample['lq'], sample['gt'])


def test_bad_roots_and_small_images_fail_by_name(clean_dir, tmp_path):
    with pytest.raises(FlareSRError, match='dataroot_gt'):
        build_dataset(dict(type='SyntheticFlareDataset', name='x', phase='train'))
    with pytest.raises(FlareSRError, match='meta_info.txt'):
        make_dataset(tmp_path / 'missing.lmdb', io_backend={'type': 'lmdb'})
    with pytest.raises(FlareSRError, match='smaller than gt_size 64'):
        make_dataset(clean_dir, gt_size=64)[3]
