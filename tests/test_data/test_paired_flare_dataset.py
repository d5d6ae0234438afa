"""PairedFlareDataset on real files: pairing, aligned crops, deterministic keys, selections, bad inputs."""
import copy
import io
import os
import pickle
import re

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from flare_sr.data.lmdb_pack import pack_lmdb
from flare_sr.data.meta_csv import make_split, write_split_csv
from flare_sr.data.paired_flare_dataset import PairedFlareDataset
from flare_sr.data.pairing import pair_paths
from flare_sr.data.sampling import ResumableSampler, SampleKey, item_index
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import check_options
from tests.helpers import hinet_options


def make_pairs(root, sizes, name='train'):
    """Dacon-named pairs cut from a real photo, with lq = 255 - gt so any misaligned crop shows."""
    photo = skimage.data.astronaut()
    lq_dir, gt_dir = root / f'{name}_input_img', root / f'{name}_label_img'
    for number, (height, width) in enumerate(sizes):
        gt = np.roll(photo, 17 * number, axis=1)[:height, :width]
        write_image(gt_dir / f'{name}_label_{10000 + number}.png', gt)
        write_image(lq_dir / f'{name}_input_{10000 + number}.png', 255 - gt)
    return lq_dir, gt_dir


def dataset(lq_dir, gt_dir, **options):
    opt = dict(type='PairedFlareDataset', name='pairs', dataroot_lq=str(lq_dir),
               dataroot_gt=None if gt_dir is None else str(gt_dir), io_backend={'type': 'disk'}, phase='train',
               gt_size=32, use_hflip=True, use_rot=True, seed=7)
    opt.update(options)
    return build_dataset(opt)


def test_registered_and_returns_float_rgb_chw(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 50), (48, 40)])
    ds = dataset(lq_dir, gt_dir)
    sample = ds[5]
    assert set(sample) == {'lq', 'gt', 'lq_path', 'gt_path'}
    assert sample['lq'].dtype == sample['gt'].dtype == torch.float32
    assert tuple(sample['lq'].shape) == tuple(sample['gt'].shape) == (3, 32, 32)
    assert 0 <= float(sample['gt'].min()) and float(sample['gt'].max()) <= 1
    assert sample['lq_path'].endswith('train_input_10001.png')
    assert sample['gt_path'].endswith('train_label_10001.png')


def test_crops_and_flips_stay_aligned_over_many_keys(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 70), (64, 64)])
    ds = dataset(lq_dir, gt_dir)
    seen_positions = set()
    for key in [SampleKey(index, draw) for draw in range(1, 21) for index in range(len(ds))]:
        sample = ds[key]
        assert np.abs((sample['lq'] + sample['gt']).numpy() - 1).max() < 1e-6
        seen_positions.add(float(sample['gt'].sum()))
    assert len(seen_positions) > 20  # crops and flips really vary


def test_same_key_same_sample_even_in_a_new_dataset(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 70), (64, 64), (50, 80)])
    first, second = dataset(lq_dir, gt_dir), dataset(lq_dir, gt_dir)
    for key in (SampleKey(0, 1), SampleKey(1, 3), SampleKey(1, 411522)):
        assert np.array_equal(first[key]['gt'].numpy(), second[key]['gt'].numpy())
    same_image_other_draw = first[SampleKey(0, 2)]
    assert not np.array_equal(first[SampleKey(0, 1)]['gt'].numpy(), same_image_other_draw['gt'].numpy())
    assert same_image_other_draw['gt_path'] == first[SampleKey(0, 1)]['gt_path']
    other_seed = dataset(lq_dir, gt_dir, seed=8)
    keys = [SampleKey(index, 1) for index in range(3)]
    assert any(not np.array_equal(first[k]['gt'].numpy(), other_seed[k]['gt'].numpy()) for k in keys)


def test_sample_keys_are_explicit_values_and_plain_indices_still_work(tmp_path):
    """SampleKey: a frozen, picklable value that names the item and the draw; a plain int is item int % len with
    fresh randomness (BasicSR's own samplers); the sampler's keys survive BasicSR's loader and default collate."""
    key = SampleKey(1, 6)
    assert key == pickle.loads(pickle.dumps(key)) and hash(key) == hash(SampleKey(1, 6))  # to the workers
    with pytest.raises(AttributeError):
        key.index = 0
    for bad in ((-1, 0), (0, -1)):
        with pytest.raises(ValueError, match='SampleKey'):
            SampleKey(*bad)
    assert item_index(key, 3) == 1 and item_index(7, 3) == 1
    with pytest.raises(IndexError, match='outside a dataset of 1 items'):
        item_index(key, 1)
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 70), (64, 64), (50, 80)])
    ds = dataset(lq_dir, gt_dir)
    assert ds[key]['gt_path'] == ds[4]['gt_path'] == ds[1]['gt_path']
    np.random.seed(0)
    assert len({float(ds[1]['gt'].sum()) for _ in range(8)}) > 1  # a plain int: a fresh crop every time
    sampler = ResumableSampler(ds, num_replicas=1, rank=0, ratio=2)
    sampler.set_epoch(1)
    epoch = list(sampler)
    assert all(isinstance(k, SampleKey) for k in epoch) and len(epoch) == 6
    assert sorted(k.index for k in epoch) == [0, 0, 1, 1, 2, 2] and sorted(k.draw for k in epoch) == list(range(12, 18))
    sampler.skip_next(4, epoch=1)
    assert list(sampler) == epoch[4:] and list(sampler) == epoch[4:]  # every iterator of epoch 1 (workers prefetch)
    sampler.set_epoch(2)
    assert len(list(sampler)) == 6  # and no other epoch
    sampler = ResumableSampler(ds, num_replicas=1, rank=0, ratio=2)
    sampler.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, sampler=sampler, num_workers=1)
    batch = next(iter(loader))
    assert batch['gt'].shape == (3, 3, 32, 32)
    assert torch.equal(batch['gt'][0], ds[epoch[0]]['gt'])  # a worker process samples what the key says


def test_validation_returns_whole_images_unchanged(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(37, 53)])
    sample = dataset(lq_dir, gt_dir, phase='val')[0]
    assert tuple(sample['gt'].shape) == (3, 37, 53)
    photo = skimage.data.astronaut()[:37, :53]
    assert np.allclose(sample['gt'].numpy().transpose(1, 2, 0) * 255, photo, atol=1e-3)


def test_test_phase_without_labels(tmp_path):
    lq_dir, _ = make_pairs(tmp_path, [(20, 30), (20, 30)], name='test')
    ds = dataset(lq_dir, None, phase='test')
    assert len(ds) == 2 and set(ds[1]) == {'lq', 'lq_path', 'bit_depth'} and ds[1]['bit_depth'] == 8
    with pytest.raises(FlareSRError, match='dataroot_gt is required in phase train'):
        dataset(lq_dir, None)


def test_unpaired_file_fails_at_construction(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(20, 30), (20, 30)])
    (gt_dir / 'train_label_10001.png').unlink()
    with pytest.raises(FlareSRError, match=r'train_input_10001\.png: no partner'):
        dataset(lq_dir, gt_dir)


def test_size_mismatch_names_both_files(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 40)])
    write_image(gt_dir / 'train_label_10000.png', np.zeros((40, 41, 3), np.uint8))
    with pytest.raises(FlareSRError, match=r'train_input_10000\.png: size 40x40 differs from its label .*'
                                           r'train_label_10000\.png \(40x41\)'):
        dataset(lq_dir, gt_dir)[0]


def test_image_smaller_than_gt_size(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 20)])
    with pytest.raises(FlareSRError, match=r'train_input_10000\.png / .*train_label_10000\.png: 40x20 is smaller '
                                           r'than gt_size 32'):
        dataset(lq_dir, gt_dir)[0]


def test_unreadable_file_named(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 40)])
    (lq_dir / 'train_input_10000.png').write_bytes(b'not a png at all')
    with pytest.raises(FlareSRError, match=r'train_input_10000\.png: not a readable image'):
        dataset(lq_dir, gt_dir)[0]


def test_meta_csv_fold_selection(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 40)] * 5)
    pairs = pair_paths(lq_dir, gt_dir)
    rows = make_split(pairs, [(40, 40)] * 5, 'kfold', folds=5, seed=3)
    write_split_csv(tmp_path / 'split.csv', rows)
    fold_of = {row['label_img']: row['fold'] for row in rows}
    train = dataset(lq_dir, gt_dir, meta_csv=str(tmp_path / 'split.csv'), fold=['0', '1', '3', '4'])
    val = dataset(lq_dir, gt_dir, meta_csv=str(tmp_path / 'split.csv'), fold=2, phase='val')
    assert len(train) == 4 and len(val) == 1
    assert fold_of[val[0]['gt_path'].split('/')[-1]] == '2'
    assert all(fold_of[gt.split('/')[-1]] != '2' for _, gt in train.items)
    with pytest.raises(FlareSRError, match=r"split\.csv: no row has fold \['7'\]"):
        dataset(lq_dir, gt_dir, meta_csv=str(tmp_path / 'split.csv'), fold=7)


def test_meta_info_file_selects_images(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 40)] * 3)
    (tmp_path / 'meta.txt').write_text('train_label_10002.png (40,40,3)\ntrain_label_10000.png (40,40,3)\n')
    ds = dataset(lq_dir, gt_dir, meta_info_file=str(tmp_path / 'meta.txt'))
    assert [gt.split('/')[-1] for _, gt in ds.items] == ['train_label_10002.png', 'train_label_10000.png']
    (tmp_path / 'meta.txt').write_text('train_label_10009.png\n')
    with pytest.raises(FlareSRError, match=r'meta\.txt: lists train_label_10009\.png, which is not in .*label_img'):
        dataset(lq_dir, gt_dir, meta_info_file=str(tmp_path / 'meta.txt'))


def test_images_a_dataset_folder_leaves_out_are_named_once(tmp_path, capsys):
    """A validation folder holding a WebP and a broken link scored the other images without a word; hidden files
    stay unmentioned. Said once per folder however often the folder is listed."""
    from PIL import Image

    lq_dir, gt_dir = make_pairs(tmp_path, [(40, 40), (40, 40)], name='test')
    Image.fromarray(skimage.data.astronaut()[:40, :40]).save(lq_dir / 'test_input_10002.webp')
    os.symlink(tmp_path / 'gone.png', lq_dir / 'test_input_10003.png')
    (lq_dir / '.thumbs.png').write_bytes(b'')
    capsys.readouterr()
    for _ in range(2):
        assert len(dataset(lq_dir, gt_dir, phase='val')) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'warning: {lq_dir}: skipped 1 image(s) of a format datasets do not read (test_input_10002.webp; they read '
        '.png, .jpg, .jpeg, .bmp, .tif, .tiff: convert them) and 1 broken link(s) or non-file(s) '
        '(test_input_10003.png)']


def _area(image_uint8, size_wh):
    """An independent computation of a downscaled frame: float in [0, 1], cv2's area mean."""
    return cv2.resize(image_uint8.astype(np.float32) / 255.0, size_wh, interpolation=cv2.INTER_AREA)


def test_downscale_to_gives_whole_pairs_area_downscaled_and_turned_to_landscape(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80), (80, 60)])  # 3:4 landscape and portrait
    for phase in ('val', 'train'):
        ds = dataset(lq_dir, gt_dir, phase=phase, gt_size=None, downscale_to=12, batch_size_per_gpu=2)
        photo = skimage.data.astronaut()
        for index, (height, width) in enumerate([(60, 80), (80, 60)]):
            gt = np.roll(photo, 17 * index, axis=1)[:height, :width]
            expected = [_area(image, (16, 12) if height < width else (12, 16)) for image in (255 - gt, gt)]
            if height > width and phase == 'train':  # turned to landscape for a batch; validation keeps portrait
                expected = [image.transpose(1, 0, 2) for image in expected]
            if phase == 'val':
                sample = ds[index]
                assert sample['bit_depth'] == 8
                assert np.allclose(sample['lq'].numpy().transpose(1, 2, 0), expected[0], atol=1e-6)
                assert np.allclose(sample['gt'].numpy().transpose(1, 2, 0), expected[1], atol=1e-6)
                continue
            flips = set()
            for draw in range(16):  # training: one of the 4 flips of the frame, never transposed
                sample = ds[SampleKey(index, draw)]
                assert sample['lq'].shape == sample['gt'].shape == (3, 12, 16)
                label = sample['gt'].numpy().transpose(1, 2, 0)
                views = {'none': expected[1], 'h': expected[1][:, ::-1], 'v': expected[1][::-1],
                         'hv': expected[1][::-1, ::-1]}
                found = [name for name, view in views.items() if np.allclose(label, view, atol=1e-6)]
                assert len(found) == 1 and np.allclose(sample['lq'].numpy() + sample['gt'].numpy(), 1, atol=1e-5)
                flips.add(found[0])
            assert flips == {'none', 'h', 'v', 'hv'}
    batch = torch.utils.data.default_collate([ds[SampleKey(index, 0)] for index in range(2)])
    assert batch['lq'].shape == (2, 3, 12, 16)


def test_downscaled_frames_are_read_once_when_the_dataset_is_built(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80)])
    ds = dataset(lq_dir, gt_dir, gt_size=None, downscale_to=30)
    for path in (*lq_dir.iterdir(), *gt_dir.iterdir()):
        path.unlink()  # nothing is read from disk after this
    assert ds[SampleKey(0, 3)]['lq'].shape == (3, 30, 40)


def test_whole_pairs_a_batch_cannot_stack_are_one_line_before_any_is_read(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80), (60, 60)])
    for extra, shapes, advice in ((dict(downscale_to=12), ('12x16', '12x12'), 'aspect ratio'),
                                  (dict(), ('60x80', '60x60'), 'size')):
        with pytest.raises(FlareSRError) as error:
            dataset(lq_dir, gt_dir, gt_size=None, batch_size_per_gpu=2, **extra)
        assert str(error.value) == (
            f'option batch_size_per_gpu 2: {lq_dir / "train_input_10001.png"} gives a {shapes[1]} sample, '
            f'{lq_dir / "train_input_10000.png"} a {shapes[0]} one, and a batch stacks them; use pairs of one '
            f'{advice}, gt_size crops, or batch_size_per_gpu: 1')
    ds = dataset(lq_dir, gt_dir, gt_size=None, batch_size_per_gpu=1)  # whole pairs one at a time
    shapes = {ds[SampleKey(index, draw)]['lq'].shape for index in range(2) for draw in range(8)}
    assert shapes == {(3, 60, 80), (3, 60, 60)}  # the 60x80 pair is never transposed


def test_downscale_to_from_whole_image_lmdbs(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80), (60, 80)])
    roots = {}
    for kind, folder in (('lq', lq_dir), ('gt', gt_dir)):
        names = sorted(os.listdir(folder))
        roots[kind] = str(tmp_path / f'{kind}.lmdb')
        make_lmdb_from_imgs(str(folder), roots[kind], names, [os.path.splitext(name)[0] for name in names])
    disk = dataset(lq_dir, gt_dir, phase='val', gt_size=None, downscale_to=15)
    packed = dataset(roots['lq'], roots['gt'], io_backend={'type': 'lmdb'}, phase='val', gt_size=None,
                     downscale_to=15)
    assert torch.equal(disk[1]['lq'], packed[1]['lq']) and packed[1]['lq'].shape == (3, 15, 20)


def test_a_gt_size_larger_than_the_lmdb_patches_is_one_line_from_meta_info(tmp_path):
    """An LMDB records every size in meta_info.txt, so a crop larger than its patches is said by the option checker
    (and the dataset, built without it), naming the smallest patch, not at the first sample drawn from it."""
    lq_dir, gt_dir = make_pairs(tmp_path, [(48, 64), (40, 40)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 16, progress=False)
    opt = dict(name='pairs', type='PairedFlareDataset', dataroot_lq=str(tmp_path / 'out' / 'lq.lmdb'),
               dataroot_gt=str(tmp_path / 'out' / 'gt.lmdb'), io_backend={'type': 'lmdb'}, gt_size=48)
    line = (f'gt_size 48: larger than train_10000_s0000_0000 (32x32 in {tmp_path / "out" / "lq.lmdb" / "meta_info.txt"}'
            '); use gt_size 32 or less, or pack larger patches')
    assert PairedFlareDataset.check_options(dict(opt), 'datasets.train') == [f'datasets.train.{line}']
    with pytest.raises(FlareSRError) as error:
        dataset(opt['dataroot_lq'], opt['dataroot_gt'], io_backend={'type': 'lmdb'}, gt_size=48)
    assert str(error.value) == f'option {line}'
    assert PairedFlareDataset.check_options(dict(opt, gt_size=32), 'datasets.train') == []
    validation = dict(opt, gt_size=None)  # whole patches: no crop
    assert PairedFlareDataset.check_options(validation, 'datasets.val') == []


def test_one_lmdb_as_input_and_label_is_refused(tmp_path):
    """One LMDB (or a link to it) given as both sides pairs every key with itself: a model trained on it learns to
    leave flare in. The option checker and the dataset say so, naming both options' paths."""
    lq_dir, gt_dir = make_pairs(tmp_path, [(48, 64)])
    pack_lmdb(pair_paths(lq_dir, gt_dir), tmp_path / 'out', 32, 16, progress=False)
    gt_root = str(tmp_path / 'out' / 'gt.lmdb')
    os.symlink(gt_root, tmp_path / 'link.lmdb')
    for lq_root in (gt_root, str(tmp_path / 'link.lmdb')):
        opt = dict(name='pairs', type='PairedFlareDataset', dataroot_lq=lq_root, dataroot_gt=gt_root,
                   io_backend={'type': 'lmdb'}, gt_size=32)
        line = (f'{gt_root}: the same LMDB as dataroot_lq {lq_root}; an input would be its own label (dataroot_gt is '
                'OUT/gt.lmdb beside OUT/lq.lmdb)')
        assert PairedFlareDataset.check_options(dict(opt), 'datasets.train') == [f'datasets.train: {line}']
        with pytest.raises(FlareSRError, match=re.escape(line)):
            dataset(lq_root, gt_root, io_backend={'type': 'lmdb'})


@pytest.mark.parametrize('extra, line', [
    (dict(downscale_to=-4), 'downscale_to: expected a positive integer (or ~: off), got -4'),
    (dict(downscale_to=24, gt_size=32), 'downscale_to: a sample is then the whole downscaled frame; remove gt_size '
                                        '(32)'),
])
def test_bad_downscale_to_of_pairs_is_one_line(tmp_path, extra, line):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80)])
    opt = dict(name='pairs', type='PairedFlareDataset', dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir),
               io_backend={'type': 'disk'}, **extra)
    assert PairedFlareDataset.check_options(dict(opt), 'datasets.train') == [f'datasets.train.{line}']
    with pytest.raises(FlareSRError) as error:  # built without the checker
        dataset(lq_dir, gt_dir, **extra)
    assert str(error.value) == f'option {line}'
    whole = dict(opt, downscale_to=24.0, gt_size=None)
    assert PairedFlareDataset.check_options(whole, 'datasets.train') == [] and type(whole['downscale_to']) is int


def test_a_frame_smaller_than_downscale_to_is_said_first_from_its_header(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(60, 80), (30, 40), (60, 60)])
    for phase, batch in (('train', 3), ('train', 1), ('val', 1)):  # before the batch's shapes, in every phase
        with pytest.raises(FlareSRError) as error:
            dataset(lq_dir, gt_dir, phase=phase, gt_size=None, downscale_to=36, batch_size_per_gpu=batch)
        assert str(error.value) == (f'option downscale_to 36: {lq_dir / "train_input_10001.png"} gives a 30x40 frame, '
                                    'smaller (frames are downscaled, never upscaled); lower downscale_to or leave the '
                                    'photo out')


def test_downscale_to_on_an_lmdb_of_patches_is_refused(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(64, 64), (64, 64)])
    pack_lmdb(pair_paths(str(lq_dir), str(gt_dir), '{}'), tmp_path / 'patches', 32, 32, progress=False)
    lq_root = str(tmp_path / 'patches' / 'lq.lmdb')
    with pytest.raises(FlareSRError, match=rf'^option downscale_to 16: {lq_root} holds patches \(train_10000_s0000_0000'
                                           r'\), not whole frames; read the image folders \(io_backend: disk\)$'):
        dataset(lq_root, str(tmp_path / 'patches' / 'gt.lmdb'), io_backend={'type': 'lmdb'}, gt_size=None,
                downscale_to=16)


def test_the_option_checker_reads_the_headers_of_whole_frame_pairs(tmp_path):
    """The checker tries network_g on the frame the pairs give (HINet depth 4: 16-px grid), says frames that are too
    small in one line, and warns of a validation set at another size than training."""
    lq_dir, gt_dir = make_pairs(tmp_path, [(96, 128), (96, 128)])
    opt = hinet_options({'train': (str(lq_dir), str(gt_dir)), 'val': (str(lq_dir), str(gt_dir))}, 'never_trained',
                        total_iter=1)
    opt['network_g'].update(wf=4, depth=4)
    opt['datasets']['train'].pop('gt_size')
    stream = io.StringIO()
    for short, line in ((50, 'datasets.train.downscale_to: training samples of 50x67 do not fit network_g (HINet('
                             'depth=4) needs H and W divisible by 8, got 50x67'),
                        (100, f'datasets.train.downscale_to 100: {lq_dir / "train_input_10000.png"} gives a 96x128 '
                              'frame, smaller'),
                        (48, None)):
        checked = copy.deepcopy(opt)
        checked['datasets']['train']['downscale_to'] = short
        if line is None:
            check_options(checked, 'glow.yml', stream=stream)
            continue
        with pytest.raises(FlareSRError) as error:
            check_options(checked, 'glow.yml', stream=io.StringIO())
        assert str(error.value).startswith(f'glow.yml: {line}'), error.value
    assert 'warning: glow.yml: datasets.val.downscale_to: None, but datasets.train.downscale_to is 48: the net is ' \
           'validated on frames of another size' in stream.getvalue()


def test_a_selection_without_labels_is_one_line_not_every_image(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(20, 30), (20, 30)], name='test')
    (tmp_path / 'list.txt').write_text('test_label_10000.png\n')
    with pytest.raises(FlareSRError, match=r'^meta_info_file selects pairs, but dataroot_gt is not set; set it, or '
                                           r'remove meta_info_file to read every image of dataroot_lq$'):
        dataset(lq_dir, None, phase='test', meta_info_file=str(tmp_path / 'list.txt'))
    opt = dict(name='t', type='PairedFlareDataset', dataroot_lq=str(lq_dir), io_backend={'type': 'disk'},
               meta_info_file=str(tmp_path / 'list.txt'))
    assert PairedFlareDataset.check_options(opt, 'datasets.test_1') == [
        'datasets.test_1.meta_info_file: selects pairs, but dataroot_gt is not set; set it, or remove meta_info_file '
        'to read every image of dataroot_lq']


def test_whole_training_pairs_the_net_cannot_take_are_said_as_the_images_size(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, [(52, 68), (52, 68)])
    opt = hinet_options({'train': (str(lq_dir), str(gt_dir)), 'val': (str(lq_dir), str(gt_dir))}, 'never_trained',
                        total_iter=1)
    opt['network_g'].update(wf=4, depth=4)
    opt['datasets']['train'].pop('gt_size')
    with pytest.raises(FlareSRError) as error:
        check_options(opt, 'whole.yml', stream=io.StringIO())
    assert str(error.value).startswith(
        "whole.yml: datasets.train: whole training samples of 52x68 (the images' size, without gt_size) do not fit "
        'network_g (HINet(depth=4) needs H and W divisible by 8')
    assert str(error.value).endswith('; set gt_size to crop them')
