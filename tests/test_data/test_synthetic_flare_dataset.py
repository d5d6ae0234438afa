"""SyntheticFlareDataset: per-key determinism, variety, LMDB-backed clean images, BasicSR build path, the flare of a
whole frame (``frame_size``)."""
import copy
import io
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from flare_sr.data.sampling import SampleKey, sample_rng
from flare_sr.data.synthesis import COMPONENTS, FlareConfig, synthesize_flare
from flare_sr.data.transforms import img2tensor, paired_random_crop
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image, read_image_native, to_float32, write_image
from flare_sr.utils.options_check import check_options
from tests.helpers import flare_data, hinet_options, run_train, write_clean_photos, write_options

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


@pytest.mark.parametrize('frame_size, window', [
    ([56, 72], (56, 72)),     # a window of the 60x80 image
    ([100, 120], (60, 80)),   # larger than the image: the whole image, no padding
    ([72, 56], (56, 72)),     # a portrait frame on a landscape image is turned to the image's orientation
])
def test_frame_size_sample_is_a_crop_of_the_flared_frame(clean_dir, frame_size, window):
    """Frame window, then the flare on it, from the sample's generator; the sample is a window of that flared frame
    and its label the same window of the frame's label."""
    dataset = make_dataset(clean_dir, frame_size=frame_size, use_hflip=False, use_rot=False)
    for key in (SampleKey(0, 1), SampleKey(2, 5)):
        sample = dataset[key]
        assert sample['lq'].shape == sample['gt'].shape == (3, 48, 48)
        rng = sample_rng(dataset.opt, key, len(dataset))
        frame = paired_random_crop(read_image_native(sample['gt_path']), [], window, rng)[0]
        flared, info = synthesize_flare(np.ascontiguousarray(to_float32(frame)), rng, dataset.flare_config)
        lq, gt = (sample[name].numpy().transpose(1, 2, 0) for name in ('lq', 'gt'))
        top, left = find_window(flared, lq)
        assert np.array_equal(info['label'][top:top + 48, left:left + 48], gt)


@pytest.fixture(scope='module')
def dim_frames(tmp_path_factory):
    """120x160 photos at 70% brightness: a near-white pixel in a label is a light source, not the scene."""
    folder = write_clean_photos(tmp_path_factory.mktemp('frames'), PHOTOS, size=(120, 160))
    for name in PHOTOS:
        write_image(folder / name, read_image(folder / name) * 0.7)
    return folder


def test_frame_size_leaves_the_light_out_of_most_crops_and_spreads_the_flare(dim_frames):
    """48 crops of 40 px: with the flare of the 120x160 frame, far fewer hold a light source (a label pixel near
    white in every channel) than with the flare of the crop, and the added light is broader (mean / max higher)."""
    stats = {}
    for name, extra in (('crop', {}), ('frame', {'frame_size': [120, 160]})):
        dataset = make_dataset(dim_frames, gt_size=40, seed=0, **extra)
        with_light, spread = [], []
        for draw in range(1, 49):
            sample = dataset[SampleKey(draw % 3, draw)]
            with_light.append(bool((sample['gt'].min(dim=0).values > 0.97).any()))
            added = (sample['lq'] - sample['gt']).clamp(min=0).mean(dim=0)
            spread.append(float(added.mean() / added.max().clamp(min=1e-6)))
        stats[name] = np.mean(with_light), np.median(spread)
    (crop_light, crop_spread), (frame_light, frame_spread) = stats['crop'], stats['frame']
    assert crop_light > 0.8 and frame_light < crop_light / 3, stats  # measured: 0.92 and 0.15
    assert frame_spread > 1.2 * crop_spread, stats                     # measured: 0.27 and 0.39


def test_frame_size_same_key_same_sample_and_validation_unchanged(clean_dir):
    dataset = make_dataset(clean_dir, frame_size=[56, 72])
    key = SampleKey(1, 5)
    first, again = dataset[key], make_dataset(clean_dir, frame_size=[56, 72])[key]
    assert torch.equal(first['lq'], again['lq']) and torch.equal(first['gt'], again['gt'])
    assert not torch.equal(dataset[SampleKey(1, 6)]['lq'], first['lq'])
    assert not torch.equal(make_dataset(clean_dir)[key]['lq'], first['lq'])
    whole = make_dataset(clean_dir, phase='val')[0]
    whole_framed = make_dataset(clean_dir, phase='val', frame_size=56)[0]
    assert whole['lq'].shape == (3, 60, 80)
    assert torch.equal(whole['lq'], whole_framed['lq']) and torch.equal(whole['gt'], whole_framed['gt'])


@pytest.fixture(scope='module')
def synthetic_option(clean_dir, tmp_path_factory):
    """A valid HINet option file's options (not trained) whose train set is SyntheticFlareDataset, gt_size 32."""
    opt = hinet_options(flare_data(tmp_path_factory.mktemp('pairs'), 1, 1), 'never_trained', total_iter=1)
    train = opt['datasets']['train']
    del train['dataroot_lq']
    train.update(type='SyntheticFlareDataset', dataroot_gt=str(clean_dir))
    return opt


@pytest.mark.parametrize('frame_size, gt_size, line', [
    ('big', 32, "frame_size: expected a positive integer or [height, width] of positive integers, got 'big'"),
    ([0, 64], 32, 'frame_size: expected a positive integer or [height, width] of positive integers, got [0, 64]'),
    ([64], 32, 'frame_size: expected a positive integer or [height, width] of positive integers, got [64]'),
    (True, 32, 'frame_size: expected a positive integer or [height, width] of positive integers, got True'),
    ([24, 64], 32, 'frame_size: [24, 64] is smaller than gt_size 32, the crop taken from the frame'),
    (64, None, 'frame_size: needs gt_size (the training crop taken from the flared frame) or downscale_to (the whole '
               'frame, downscaled)'),
])
def test_bad_frame_size_is_one_checker_line(synthetic_option, frame_size, gt_size, line):
    opt = copy.deepcopy(synthetic_option)
    train = opt['datasets']['train']
    train.update(frame_size=frame_size, gt_size=gt_size)
    if gt_size is None:
        del train['gt_size']
    with pytest.raises(FlareSRError) as error:
        check_options(opt, 'x.yml', stream=io.StringIO())
    assert str(error.value) == f'x.yml: datasets.train.{line}'
    with pytest.raises(FlareSRError, match=r'^option frame_size: '):  # built without the checker
        build_dataset({**train, 'phase': 'train'})
    train.update(frame_size=[48, 64], gt_size=32)
    check_options(opt, 'x.yml', stream=io.StringIO())


@pytest.mark.slow
def test_bad_frame_size_stops_train_py_with_one_line(synthetic_option, tmp_path):
    opt = copy.deepcopy(synthetic_option)
    opt['datasets']['train']['frame_size'] = [16, 16]
    result = run_train(write_options(tmp_path / 'bad_frame.yml', opt), tmp_path)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert [line for line in (result.stdout + result.stderr).splitlines() if line.startswith('error:')] == [
        f'error: {tmp_path / "bad_frame.yml"}: datasets.train.frame_size: [16, 16] is smaller than gt_size 32, '
        'the crop taken from the frame']


# ---------------------------------------------------------------- whole downscaled frames and the pool


def test_downscale_to_is_the_flare_of_the_whole_frame_area_downscaled(clean_dir, tmp_path):
    """Validation samples with ``downscale_to`` are the full-resolution synthesis of (seed, image), area-downscaled
    (cv2.INTER_AREA) to the short side asked; a portrait photo stays portrait (only training turns it, for a batch),
    so saved outputs keep the photo's orientation."""
    landscape = read_image(str(clean_dir / PHOTOS[0]))
    write_image(tmp_path / 'portrait.png', np.ascontiguousarray(landscape.transpose(1, 0, 2)))
    for root, portrait in ((clean_dir, False), (tmp_path, True)):
        dataset = make_dataset(root, phase='val', gt_size=None, downscale_to=15)
        for index, path in enumerate(dataset.paths):
            clean = to_float32(read_image_native(path))
            flared, info = synthesize_flare(clean, np.random.default_rng([3, index]), FlareConfig())
            expected = [cv2.resize(image, (15, 20) if portrait else (20, 15), interpolation=cv2.INTER_AREA)
                        for image in (flared, info['label'])]
            sample = dataset[index]
            assert sample['lq'].shape == sample['gt'].shape == ((3, 20, 15) if portrait else (3, 15, 20))
            assert torch.allclose(sample['lq'], img2tensor(expected[0]), atol=1e-6)
            assert torch.allclose(sample['gt'], img2tensor(expected[1]), atol=1e-6)
            assert (sample['lq'] - sample['gt']).abs().mean() > 0.005  # the flare survives the downscale


def test_pool_serves_fresh_flips_of_samples_drawn_once(clean_dir):
    """``pool_size`` samples drawn once (the same in a new dataset; photo k mod n, each with its own flare); every
    draw is one of the 4 flips of its pooled pair, all 4 occur, and a non-square frame is never transposed."""
    dataset, again = (make_dataset(clean_dir, gt_size=None, frame_size=[40, 60], downscale_to=10, pool_size=7)
                      for _ in range(2))
    assert len(dataset) == 7
    for (label, flared), (label_again, flared_again) in zip(dataset.pool, again.pool):
        assert label.shape == (10, 15, 3)
        assert np.array_equal(flared, flared_again) and np.array_equal(label, label_again)
    assert not np.array_equal(dataset.pool[0][1], dataset.pool[3][1])  # photo 0 twice, two flares
    seen = set()
    for draw in range(6):
        for k in range(len(dataset)):
            sample = dataset[SampleKey(k, draw)]
            label, flared = dataset.pool[k]
            flips = {'none': (slice(None), slice(None)), 'h': (slice(None), slice(None, None, -1)),
                     'v': (slice(None, None, -1), slice(None)), 'hv': (slice(None, None, -1), slice(None, None, -1))}
            match = [name for name, index in flips.items()
                     if torch.equal(sample['gt'], img2tensor(label[index])) and
                     torch.equal(sample['lq'], img2tensor(flared[index]))]
            assert len(match) == 1 and sample['lq'].shape == (3, 10, 15), (draw, k)
            assert torch.equal(sample['lq'], again[SampleKey(k, draw)]['lq'])  # keyed: a resumed run draws the same
            seen.add(match[0])
    assert seen == {'none', 'h', 'v', 'hv'}


def test_pool_with_gt_size_crops_afresh_from_pooled_frames(clean_dir):
    dataset = make_dataset(clean_dir, gt_size=24, frame_size=[40, 60], pool_size=3)
    assert dataset.pool[0][0].shape == (40, 60, 3)
    crops = [dataset[SampleKey(0, draw)]['lq'] for draw in range(4)]
    assert all(crop.shape == (3, 24, 24) for crop in crops)
    assert len({crop.sum().item() for crop in crops}) > 1


@pytest.mark.parametrize('extra, line', [
    (dict(downscale_to=0), 'downscale_to: expected a positive integer (or ~: off), got 0'),
    (dict(downscale_to=12.5), 'downscale_to: expected a positive integer (or ~: off), got 12.5'),
    (dict(pool_size='many'), "pool_size: expected a positive integer (or ~: off), got 'many'"),
    (dict(downscale_to=12), 'downscale_to: a sample is then the whole downscaled frame; remove gt_size (32)'),
])
def test_bad_downscale_to_and_pool_size_are_one_checker_line(synthetic_option, extra, line):
    opt = copy.deepcopy(synthetic_option)
    opt['datasets']['train'].update(extra)
    with pytest.raises(FlareSRError) as error:
        check_options(opt, 'x.yml', stream=io.StringIO())
    assert str(error.value) == f'x.yml: datasets.train.{line}'
    with pytest.raises(FlareSRError, match=f'^option {line.split(":")[0]}: '):  # built without the checker
        build_dataset({**opt['datasets']['train'], 'phase': 'train'})
    del opt['datasets']['train']['gt_size']
    opt['datasets']['train'].update(frame_size=[48, 64], downscale_to=12, pool_size=4)
    check_options(opt, 'x.yml', stream=io.StringIO())  # a whole-frame set needs no gt_size


@pytest.fixture(scope='module')
def mixed_dir(tmp_path_factory):
    """Two 60x80 photos and one 60x60: samples of the whole frame differ in shape."""
    folder = write_clean_photos(tmp_path_factory.mktemp('mixed'), PHOTOS[:2], size=(60, 80))
    return write_clean_photos(folder, PHOTOS[2:], size=(60, 60))


@pytest.mark.parametrize('extra, shapes', [
    (dict(downscale_to=12), ('12x16', '12x12')),                       # the whole frame, downscaled
    (dict(downscale_to=12, pool_size=4), ('12x16', '12x12')),          # ... drawn once: said before the draws
    (dict(frame_size=[60, 80], downscale_to=12), ('12x16', '12x12')),  # a photo smaller than the frame
    (dict(), ('60x80', '60x60')),                                      # the whole image
])
def test_photos_whose_whole_frames_a_batch_cannot_stack_are_one_line(mixed_dir, extra, shapes):
    photos = sorted(PHOTOS)  # astronaut, chelsea (60x80); coffee (60x60)
    with pytest.raises(FlareSRError) as error:
        make_dataset(mixed_dir, gt_size=None, batch_size_per_gpu=2, **extra)
    assert str(error.value) == (
        f'option batch_size_per_gpu 2: {mixed_dir / photos[2]} gives a {shapes[1]} sample, {mixed_dir / photos[0]} a '
        f'{shapes[0]} one, and a batch stacks them; use photos of one shape'
        f'{" and no smaller than frame_size" if "frame_size" in extra else ""}, gt_size crops, or '
        'batch_size_per_gpu: 1')
    dataset = make_dataset(mixed_dir, gt_size=None, batch_size_per_gpu=1, **extra)  # one at a time: no stacking
    assert {dataset[SampleKey(index, 0)]['lq'].shape[1:] for index in range(3)} == {
        tuple(map(int, shape.split('x'))) for shape in shapes}


def test_a_batch_of_whole_frames_from_an_lmdb_is_checked_from_its_meta_info(mixed_dir, tmp_path):
    lmdb = str(tmp_path / 'mixed.lmdb')
    names = sorted(PHOTOS)
    make_lmdb_from_imgs(str(mixed_dir), lmdb, names, [os.path.splitext(name)[0] for name in names])
    with pytest.raises(FlareSRError, match=r'^option batch_size_per_gpu 3: coffee gives a 12x12 sample, astronaut a '):
        make_dataset(lmdb, io_backend={'type': 'lmdb'}, gt_size=None, downscale_to=12, batch_size_per_gpu=3)


def test_pooled_frames_of_mixed_shapes_are_fine_when_gt_size_crops_them(mixed_dir):
    dataset = make_dataset(mixed_dir, gt_size=24, frame_size=[60, 80], pool_size=3, batch_size_per_gpu=3)
    assert {sample[0].shape for sample in dataset.pool} == {(60, 80, 3), (60, 60, 3)}
    batch = torch.utils.data.default_collate([dataset[SampleKey(index, 0)] for index in range(3)])
    assert batch['lq'].shape == (3, 3, 24, 24)


def test_use_rot_never_transposes_a_whole_image_that_is_not_square(clean_dir):
    dataset = make_dataset(clean_dir, gt_size=None, batch_size_per_gpu=3)
    shapes = {dataset[SampleKey(index, draw)]['lq'].shape for index in range(3) for draw in range(12)}
    assert shapes == {(3, 60, 80)}


def test_a_whole_float_downscale_to_or_pool_size_is_the_integer(synthetic_option, clean_dir):
    as_int, as_float = (make_dataset(clean_dir, gt_size=None, downscale_to=value, pool_size=size)
                        for value, size in ((15, 3), (15.0, 3.0)))
    assert len(as_float) == 3 and as_float.downscale_to == 15
    assert torch.equal(as_int[SampleKey(1, 2)]['lq'], as_float[SampleKey(1, 2)]['lq'])
    opt = copy.deepcopy(synthetic_option)
    del opt['datasets']['train']['gt_size']
    opt['datasets']['train'].update(frame_size=[48, 64], downscale_to=12.0, pool_size=4.0)
    check_options(opt, 'x.yml', stream=io.StringIO())
    assert opt['datasets']['train']['downscale_to'] == 12 and type(opt['datasets']['train']['downscale_to']) is int


def test_a_photo_smaller_than_downscale_to_is_one_line_when_the_dataset_is_built(mixed_dir):
    """Without a pool, with a batch of 1, and in validation too: from the headers, not when the photo is drawn."""
    for phase, extra in (('train', dict(batch_size_per_gpu=1)), ('train', dict(pool_size=3)), ('val', dict())):
        with pytest.raises(FlareSRError) as error:
            make_dataset(mixed_dir, phase=phase, gt_size=None, downscale_to=61, **extra)
        assert str(error.value) == (f'option downscale_to 61: {mixed_dir / sorted(PHOTOS)[0]} gives a 60x80 frame, '
                                    'smaller (frames are downscaled, never upscaled); lower downscale_to or leave the '
                                    'photo out')


def test_an_unreadable_photo_among_whole_frames_is_named_once(synthetic_option, tmp_path):
    folder = write_clean_photos(tmp_path / 'clean', PHOTOS[:2], size=(48, 64))
    (folder / 'notes.png').write_bytes(b'not a picture')
    opt = copy.deepcopy(synthetic_option)
    train = opt['datasets']['train']
    del train['gt_size']
    train.update(dataroot_gt=str(folder), downscale_to=12)
    with pytest.raises(FlareSRError) as error:
        check_options(opt, 'x.yml', stream=io.StringIO())
    assert str(error.value).startswith(f'x.yml: datasets.train: {folder / "notes.png"}: not a readable image')
    with pytest.raises(FlareSRError, match=rf'^{folder / "notes.png"}: not a readable image'):
        build_dataset({**train, 'phase': 'train'})
