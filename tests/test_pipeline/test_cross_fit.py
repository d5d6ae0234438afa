"""Cross-fitted stage-III data: fold models trained without a fold's photos make that fold's stage-III inputs."""
import os

import numpy as np
import pytest
import yaml

from flare_sr.data.lmdb_pack import pack_lmdb
from flare_sr.data.meta_csv import read_split_csv, resolve_pairs, select_rows, split_csv_text, write_split_csv
from flare_sr.data.paired_flare_dataset import PairedFlareDataset
from flare_sr.data.pairing import pair_paths
from flare_sr.data.synthetic_flare_dataset import SyntheticFlareDataset
from flare_sr.errors import FlareSRError
from flare_sr.pipeline.cross_fit import (assign_folds, beside_share, cross_fit_settings, fold_options, fold_selection,
                                         fold_training_lists, read_groups, thread_share, write_text)
from flare_sr.pipeline.stage3_data import ensure_stage3_data
from flare_sr.utils.img_util import write_image
from tests.helpers import UNET, make_photo_pairs, packed_lq, save_unet, unet_output


def test_groups_are_dealt_largest_first_to_the_lightest_fold():
    pairs = ['moto'] * 4 + ['cat'] * 2 + ['astro'] * 2 + ['brick'] * 1 + ['grass'] * 1
    assert assign_folds(pairs, 2) == {'moto': 0, 'astro': 1, 'cat': 1, 'brick': 0, 'grass': 1}
    assert assign_folds(pairs, 3) == {'moto': 0, 'astro': 1, 'cat': 2, 'brick': 1, 'grass': 2}
    with pytest.raises(FlareSRError, match='3 folds need at least 3 groups of pairs, found 2'):
        assign_folds(['a', 'b', 'a'], 3)


@pytest.mark.parametrize('block, message', [
    ({'folds': 1}, 'stage3_source.cross_fit.folds: expected a whole number >= 2, got 1'),
    ({'folds': True}, 'stage3_source.cross_fit.folds: expected a whole number >= 2, got true'),
    ({'folds': '2'}, "stage3_source.cross_fit.folds: expected a whole number >= 2, got the string '2'"),
    ({}, 'stage3_source.cross_fit.folds: expected a whole number >= 2, got null (~)'),
    ({'folds': 2, 'parallel': 0}, 'stage3_source.cross_fit.parallel: expected a whole number >= 1, got 0'),
    ({'folds': 2, 'include_main': 'yes'}, "stage3_source.cross_fit.include_main: expected true or false, got the "
                                          "string 'yes'"),
    ({'folds': 2, 'group': 'a.csv'}, 'stage3_source.cross_fit.group: unknown key (known: folds, groups, '
                                     'include_main, parallel)'),
    ({'folds': 2, 'groups': 'nowhere.csv'}, 'stage3_source.cross_fit.groups: nowhere.csv does not exist'),
    ({'folds': 2, 'groups': '.'}, 'stage3_source.cross_fit.groups: . is a folder, not a CSV file'),
    ({'folds': 2.5}, 'stage3_source.cross_fit.folds: expected a whole number >= 2, got 2.5'),
    ([2], 'stage3_source.cross_fit: expected a mapping (folds, groups, include_main, parallel), got a list of 1'),
    ({'folds': {'n': 2}}, 'stage3_source.cross_fit.folds: expected a whole number >= 2, got a mapping (keys n)'),
])
def test_bad_cross_fit_settings_are_one_line_naming_the_key(block, message):
    with pytest.raises(FlareSRError) as error:
        cross_fit_settings({'cross_fit': block}, 'stage3.yml')
    assert str(error.value) == f'stage3.yml: {message}'
    assert cross_fit_settings({'cross_fit': None}, 'stage3.yml') is None
    assert cross_fit_settings({'cross_fit': {'folds': 2.0}}, 'stage3.yml')['folds'] == 2  # a whole float is a number


def test_threads_are_split_among_trainings_run_side_by_side(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '4')
    assert (thread_share(2), thread_share(3), thread_share(8)) == (2, 1, 1)
    assert beside_share() == (2, 2)  # a run beside the others from the start: half, and the rest for them
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert beside_share() == (1, 2)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert beside_share() == (1, 1)
    monkeypatch.setenv('OMP_NUM_THREADS', 'two')  # not a number: the machine's cores, as OpenMP itself would
    assert thread_share(1) == (os.cpu_count() or 1)


@pytest.mark.parametrize('text, message', [
    ('file,photo\na.png,x\n', 'needs the columns name,group (got file,photo)'),
    ('name,group\na.png,\n', 'line 2 has an empty group'),
    ('name,group\na.png,x\na,y\n', 'line 3: a is in group x already'),
    ('name,group\n', 'lists no files'),
    ('name,group\n\n\na.png,x\n\nb.png,\n', 'line 6 has an empty group'),  # blank lines still count
    ('name,group\nbrick\xe9.png,x\n'.encode('latin-1'), 'not UTF-8 text (save the groups CSV as UTF-8)'),
])
def test_a_bad_groups_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / 'groups.csv'
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(FlareSRError) as error:
        read_groups(str(path))
    assert str(error.value) == f'{path}: {message}'


def test_a_groups_header_is_read_as_written_by_hand(tmp_path):
    path = tmp_path / 'groups.csv'
    path.write_bytes('\ufeffName, Group ,note\r\na.png, x ,first\r\nb,y\r\n'.encode())
    assert read_groups(str(path)) == {'a': 'x', 'b': 'y'}


def _photos(tmp_path):
    """Two clean crops of each of three photos (stage I, synthetic flare) and two pairs per photo (stage III)."""
    rng = np.random.default_rng(0)
    rows, pairs = ['name,group'], []
    for photo in ('astro', 'cat', 'moto'):
        for k in range(2):
            write_image(tmp_path / 'clean' / f'clean_{photo}_{k}.png', rng.uniform(0, 1, (40, 48, 3)))
            number = len(pairs)
            label = rng.uniform(0, 1, (64, 64, 3))
            write_image(tmp_path / 'gt' / f'train_label_{number}.png', label)
            write_image(tmp_path / 'in' / f'train_input_{number}.png', np.clip(label + 0.1, 0, 1))
            pairs.append((f'train_{number}', str(tmp_path / 'in' / f'train_input_{number}.png'),
                          str(tmp_path / 'gt' / f'train_label_{number}.png')))
            rows += [f'clean_{photo}_{k}.png,{photo}', f'train_label_{number}.png,{photo}']
    (tmp_path / 'photos.csv').write_text('\n'.join(rows) + '\n')
    train = dict(type='SyntheticFlareDataset', dataroot_gt=str(tmp_path / 'clean'), io_backend=dict(type='disk'))
    stage1 = dict(name='p2p', datasets=dict(train=train))
    return pairs, stage1


def test_each_fold_model_trains_without_its_photos(tmp_path):
    pairs, stage1 = _photos(tmp_path)
    settings = cross_fit_settings({'cross_fit': {'folds': 2, 'groups': str(tmp_path / 'photos.csv')}}, 'stage3.yml')
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', pairs)
    assert kind == 'files'
    # 2 pairs each: astro -> fold 1, cat -> fold 2, moto -> fold 1 (the lighter, by 2 to 2: the first)
    assert lists == [['clean_cat_0.png', 'clean_cat_1.png'],
                     ['clean_astro_0.png', 'clean_astro_1.png', 'clean_moto_0.png', 'clean_moto_1.png']]

    partial = tmp_path / 'partial.csv'
    partial.write_text(''.join(line for line in open(tmp_path / 'photos.csv') if 'train_label_3' not in line))
    with pytest.raises(FlareSRError) as error:
        fold_training_lists(dict(settings, groups=str(partial)), stage1, 'pix2pix.yml', pairs)
    assert str(error.value) == (f"{partial}: lists no group for train_label_3.png (1 of stage III's label files are "
                                "missing); every pair needs its photo's group")
    unlisted = tmp_path / 'unlisted.csv'  # a stage-I crop without its photo would be in every fold
    unlisted.write_text(''.join(line for line in open(tmp_path / 'photos.csv') if 'clean_astro_0' not in line))
    with pytest.raises(FlareSRError) as error:
        fold_training_lists(dict(settings, groups=str(unlisted)), stage1, 'pix2pix.yml', pairs)
    assert str(error.value) == (f"{unlisted}: lists no group for clean_astro_0.png (1 of stage I's training images in "
                                "pix2pix.yml are missing); every image needs its photo's group")
    big_batch = dict(stage1, datasets=dict(train=dict(stage1['datasets']['train'], batch_size_per_gpu=3)))
    with pytest.raises(FlareSRError) as error:
        fold_training_lists(settings, big_batch, 'pix2pix.yml', pairs)
    assert str(error.value) == ('stage3.yml: stage3_source.cross_fit: fold 1/2 leaves stage I 2 training images, less '
                                'than a batch (pix2pix.yml: datasets.train.batch_size_per_gpu 3); use more groups or '
                                'fewer folds')
    no_groups = dict(settings, groups=None)  # stage I's clean crops are not the pairs' labels: nothing excluded
    with pytest.raises(FlareSRError,
                       match=r'fold 1/2 would train on all of stage I\'s training images \(pix2pix.yml\), which '
                             'are not the files of stage III\'s pairs; list each file with its photo'):
        fold_training_lists(no_groups, stage1, 'pix2pix.yml', pairs)
    for key, value, message in (
            ('io_backend', {'type': 'lmdb'}, "needs stage I's images in a folder .* or a PairedFlareDataset's LMDBs"),
            ('io_backend', 'disk', "io_backend: stage3_source.cross_fit needs stage I's images in a folder"),
            ('dataroot_gt', None, 'pix2pix.yml: datasets.train.dataroot_gt: missing'),
            ('dataroot_gt', str(tmp_path / 'clean_imgs'), f'dataroot_gt: {tmp_path / "clean_imgs"}: image folder not'),
            ('meta_info_file', 'list.txt', 'pix2pix.yml: datasets.train.meta_info_file: .*list.txt'),
            ('type', 'Flare7kPairDataset', 'type: Flare7kPairDataset; stage3_source.cross_fit trains fold models on'),
            ('meta_csv', 'split.csv', 'meta_csv: SyntheticFlareDataset does not read it, so its fold models would '
                                      'train on every image')):
        broken = dict(stage1, datasets=dict(train=dict(stage1['datasets']['train'], **{key: value})))
        with pytest.raises(FlareSRError, match=message):
            fold_training_lists(settings, broken, 'pix2pix.yml', pairs)


def test_synthetic_flare_dataset_reads_only_the_images_of_its_meta_info_file(tmp_path):
    _photos(tmp_path)
    listed = tmp_path / 'fold.txt'
    listed.write_text('clean_moto_1.png\nclean_astro_0.png (40,48,3)\n')
    opt = dict(dataroot_gt=str(tmp_path / 'clean'), io_backend=dict(type='disk'), meta_info_file=str(listed),
               phase='val', seed=0)
    dataset = SyntheticFlareDataset(opt)
    assert [os.path.basename(dataset[index]['gt_path']) for index in range(len(dataset))] == [
        'clean_moto_1.png', 'clean_astro_0.png']
    listed.write_text('clean_moto_1.png\nclean_dog_0.png\n')
    with pytest.raises(FlareSRError) as error:
        SyntheticFlareDataset(opt)
    assert str(error.value) == f'{listed}: lists clean_dog_0.png, which is not in {tmp_path / "clean"}'
    listed.write_text('clean_moto_1.png\n', encoding='utf-16')  # Notepad's "Unicode"
    with pytest.raises(FlareSRError) as error:
        SyntheticFlareDataset(opt)
    assert str(error.value) == f'{listed}: meta_info_file is not UTF-8 text (save it as UTF-8)'


def test_stage3_data_gives_each_pair_the_output_of_the_fold_model_that_never_saw_its_photo(tmp_path):
    pairs, _ = _photos(tmp_path)
    nets = [save_unet(tmp_path / f'{name}.pth', seed) for seed, name in enumerate(('main', 'fold1', 'fold2'))]
    main_opt = tmp_path / 'pix2pix.yml'
    # The cascade applies the floor and the light restore after its last stage only: stage III never sees them.
    stage1 = dict(name='p2p', model_type='Pix2PixModel', num_gpu=0, datasets={},
                  network_g=dict(type='Pix2PixUNet', **UNET), val=dict(flare_floor=0.5, restore_light_source=True))
    main_opt.write_text(yaml.safe_dump(stage1))
    out = tmp_path / 'stage3'
    source = dict(main_opt=str(main_opt), main_checkpoint=str(tmp_path / 'main.pth'), tile=dict(size=None),
                  dataroot_lq=str(tmp_path / 'in'), dataroot_gt=str(tmp_path / 'gt'), patch_size=64, stride=64,
                  cross_fit=dict(folds=2, groups=str(tmp_path / 'photos.csv')),
                  fold_checkpoints=[str(tmp_path / 'fold1.pth'), str(tmp_path / 'fold2.pth')])
    stage3 = dict(datasets=dict(train=dict(dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'))),
                  stage3_source=source)
    assert ensure_stage3_data(stage3, 'stage3.yml', progress=False) == (str(out), True)
    keys = sorted(line.split(' ')[0] for line in open(out / 'lq.lmdb' / 'meta_info.txt'))
    assert len(keys) == 12 and sum(key.endswith('_oof_s0000_0000.png') for key in keys) == 6
    photo_fold = {'astro': 0, 'cat': 1, 'moto': 0}  # as test_each_fold_model_trains_without_its_photos
    for number, (key, lq, _) in enumerate(pairs):
        fold = photo_fold[('astro', 'cat', 'moto')[number // 2]]
        np.testing.assert_array_equal(packed_lq(out, f'{key}_oof_s0000_0000'), unet_output(nets[1 + fold], lq))
        np.testing.assert_array_equal(packed_lq(out, f'{key}_s0000_0000'), unet_output(nets[0], lq))
    assert ensure_stage3_data(stage3, 'stage3.yml', progress=False)[1] is False  # unchanged: reused
    main_opt.write_text(yaml.safe_dump(dict(stage1, val=dict(stage1['val'], darken_only=True))))
    assert ensure_stage3_data(stage3, 'stage3.yml', progress=False)[1] is True  # what stage III sees changed

    save_unet(tmp_path / 'fold2.pth', seed=7)  # a fold model retrained: the data is rebuilt
    assert ensure_stage3_data(stage3, 'stage3.yml', progress=False)[1] is True
    out_of_fold_only = dict(stage3, stage3_source=dict(source, cross_fit=dict(source['cross_fit'], include_main=False)))
    assert ensure_stage3_data(out_of_fold_only, 'stage3.yml', progress=False)[1] is True
    assert sum(1 for _ in open(out / 'lq.lmdb' / 'meta_info.txt')) == 6

    for folds, message in ((None, 'expected 2 checkpoints, one per fold, got null (~) (train_pipeline.py trains the '
                                  'fold models and derives them; a standalone run needs them)'),
                           ([str(tmp_path / 'fold1.pth'), 'gone.pth'],
                            'gone.pth does not exist (train_pipeline.py trains the fold models)'),
                           ([str(tmp_path / 'fold1.pth'), str(tmp_path / 'main.pth')],
                            'two of them, or one and main_checkpoint, are the same weights; each fold needs its own '
                            'fold model')):
        broken = dict(stage3, stage3_source=dict(source, fold_checkpoints=folds))
        with pytest.raises(FlareSRError) as error:
            ensure_stage3_data(broken, 'stage3.yml', progress=False)
        assert str(error.value) == f'stage3.yml: stage3_source.fold_checkpoints: {message}'


def test_a_pair_named_like_another_pairs_out_of_fold_output_is_refused_before_inference(tmp_path):
    pairs, _ = _photos(tmp_path)
    for folder, role in (('in', 'input'), ('gt', 'label')):  # train_0 and train_0_oof: one output replaces the other
        os.rename(tmp_path / folder / f'train_{role}_5.png', tmp_path / folder / f'train_{role}_0_oof.png')
    groups = (tmp_path / 'photos.csv').read_text().replace('train_label_5.png', 'train_label_0_oof.png')
    (tmp_path / 'photos.csv').write_text(groups)
    for seed, name in enumerate(('main', 'fold1', 'fold2')):
        save_unet(tmp_path / f'{name}.pth', seed)
    main_opt = tmp_path / 'pix2pix.yml'
    # The cascade applies the floor and the light restore after its last stage only: stage III never sees them.
    stage1 = dict(name='p2p', model_type='Pix2PixModel', num_gpu=0, datasets={},
                  network_g=dict(type='Pix2PixUNet', **UNET), val=dict(flare_floor=0.5, restore_light_source=True))
    main_opt.write_text(yaml.safe_dump(stage1))
    out = tmp_path / 'stage3'
    stage3 = dict(datasets=dict(train=dict(dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'))),
                  stage3_source=dict(main_opt=str(main_opt), main_checkpoint=str(tmp_path / 'main.pth'),
                                     tile=dict(size=None), dataroot_lq=str(tmp_path / 'in'),
                                     dataroot_gt=str(tmp_path / 'gt'), patch_size=64, stride=64,
                                     cross_fit=dict(folds=2, groups=str(tmp_path / 'photos.csv')),
                                     fold_checkpoints=[str(tmp_path / 'fold1.pth'), str(tmp_path / 'fold2.pth')]))
    with pytest.raises(FlareSRError) as error:
        ensure_stage3_data(stage3, 'stage3.yml', progress=False)
    assert str(error.value) == ('stage3.yml: stage3_source: the pairs train_0 and train_0_oof clash with cross_fit, '
                                'which names out-of-fold outputs <key>_oof; rename the files of train_0_oof')
    assert not (tmp_path / 'stage3_images').exists()  # nothing was written


def test_a_started_fold_on_other_photos_is_named_for_deletion_and_nothing_is_deleted(tmp_path, monkeypatch):
    """A fold model started on other photos (trained, or interrupted: train.py would resume it) must go, whatever
    the way stage I now reads its data; the same photos in another order, or as a split CSV instead of a folder, not."""
    from flare_sr.pipeline import stages

    monkeypatch.setattr(stages, 'ROOT', str(tmp_path))
    opt, marker = {'name': 'p2p_fold1of2'}, tmp_path / 'stage_I.1.done'
    meta, experiment = tmp_path / 'fold1of2_train.txt', tmp_path / 'experiments' / 'p2p_fold1of2'
    write_text(str(meta), 'train_label_1.png\ntrain_label_3.png\n')
    assert stages.fold_change(str(meta), 'other.png\n', opt, str(marker)) == []  # not started: any list
    experiment.mkdir(parents=True)  # started (interrupted: no done marker yet)
    assert stages.fold_change(str(meta), 'train_label_3.png\ntrain_label_1.png\n', opt, str(marker)) == []
    assert stages.fold_change(str(meta), 'train_label_0.png\n', opt, str(marker)) == [str(experiment)]
    marker.write_text('{"experiment": "p2p_fold1of2"}')
    assert stages.fold_change(str(meta), 'train_label_0.png\n', opt, str(marker)) == [str(experiment), str(marker)]
    other_k = {'name': 'p2p_fold1of3'}  # the same label, another K: its marker is not this model's
    (tmp_path / 'experiments' / 'p2p_fold1of3').mkdir()
    assert stages.fold_change(str(tmp_path / 'fold1of3_train.txt'), 'x\n', other_k, str(marker)) == [
        str(tmp_path / 'experiments' / 'p2p_fold1of3')]  # started, with no record of its photos
    csv_selection = str(tmp_path / 'fold1of2_train.csv')  # stage I now reads a split CSV of the same pairs: fine
    rows = [dict(img_id=f'train_{k}', input_img=f'train_input_{k}.png', label_img=f'train_label_{k}.png', fold='train')
            for k in (3, 1)]
    assert stages.fold_change(csv_selection, split_csv_text(rows), opt, str(marker)) == []
    fewer = stages.fold_change(csv_selection, split_csv_text(rows[:1]), opt, str(marker))
    assert fewer == [str(experiment), str(marker)]
    assert marker.is_file() and experiment.is_dir() and meta.is_file()


def _split_pairs(tmp_path):
    """Six Dacon-named pairs, one photo each; a split CSV (fold train: five, val: one); stage III's pairs."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path, [(64, 64)] * 6)
    rows = [dict(img_id=f'train_{10000 + k}', input_img=f'train_input_{10000 + k}.png',
                 label_img=f'train_label_{10000 + k}.png', fold='val' if k == 5 else 'train') for k in range(6)]
    split = tmp_path / 'split.csv'
    write_split_csv(split, rows)
    pairs = resolve_pairs(select_rows(read_split_csv(split), 'train', split), lq_dir, gt_dir, split)
    train = dict(type='PairedFlareDataset', phase='train', dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir),
                 io_backend=dict(type='disk'), gt_size=32, use_hflip=False, use_rot=False, batch_size_per_gpu=1)
    return pairs, split, train


def _fold_dataset(tmp_path, stage1, kind, lists, fold):
    """The PairedFlareDataset fold model ``fold`` trains on, from the selection file the pipeline writes."""
    selection, text = fold_selection(kind, str(tmp_path), fold, len(lists), lists[fold])
    opt = fold_options(stage1, fold, len(lists), kind, write_text(selection, text))
    return opt['datasets']['train'], PairedFlareDataset(opt['datasets']['train'])


def test_a_stage_one_on_a_split_csv_gets_a_split_csv_of_the_other_photos_rows(tmp_path):
    pairs, split, train = _split_pairs(tmp_path)
    stage1 = dict(name='p2p', datasets=dict(train=dict(train, meta_csv=str(split), fold='train')))
    settings = cross_fit_settings({'cross_fit': {'folds': 2}}, 'stage3.yml')
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', pairs)
    assert kind == 'csv'
    assert [[row['img_id'] for row in rows] for rows in lists] == [['train_10001', 'train_10003'],
                                                                   ['train_10000', 'train_10002', 'train_10004']]
    for fold in (0, 1):
        opt, dataset = _fold_dataset(tmp_path, stage1, kind, lists, fold)
        assert opt['meta_csv'] == str(tmp_path / f'fold{fold + 1}of2_train.csv') and opt['fold'] == 'train'
        assert sorted(os.path.basename(dataset[index]['gt_path']) for index in range(len(dataset))) == \
            [row['label_img'] for row in lists[fold]]  # the val photo never, the fold's own photos never


def test_a_stage_one_with_its_own_meta_info_file_keeps_to_it(tmp_path):
    pairs, _, train = _split_pairs(tmp_path)
    own = tmp_path / 'own.txt'
    own.write_text('train_label_10000.png\ntrain_label_10001.png\ntrain_label_10002.png\n')
    stage1 = dict(name='p2p', datasets=dict(train=dict(train, meta_info_file=str(own))))
    settings = cross_fit_settings({'cross_fit': {'folds': 2}}, 'stage3.yml')
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', pairs)
    assert (kind, lists) == ('files', [['train_label_10001.png'], ['train_label_10000.png', 'train_label_10002.png']])
    opt, dataset = _fold_dataset(tmp_path, stage1, kind, lists, 1)
    assert len(dataset) == 2 and opt['meta_info_file'] == str(tmp_path / 'fold2of2_train.txt')


def test_a_stage_one_on_lmdbs_gets_the_patch_keys_of_the_other_photos(tmp_path, capsys):
    pairs, split, train = _split_pairs(tmp_path)
    rows = read_split_csv(split)
    lq_dir, gt_dir = train['dataroot_lq'], train['dataroot_gt']
    pack_lmdb(resolve_pairs(rows, lq_dir, gt_dir, split), tmp_path / 'lmdb', 32, 32, progress=False)  # 6 x 4 patches
    lmdb = dict(train, io_backend=dict(type='lmdb'), dataroot_lq=str(tmp_path / 'lmdb' / 'lq.lmdb'),
                dataroot_gt=str(tmp_path / 'lmdb' / 'gt.lmdb'), meta_csv=str(split), fold='train')
    stage1 = dict(name='p2p', datasets=dict(train=lmdb))
    settings = cross_fit_settings({'cross_fit': {'folds': 2}}, 'stage3.yml')
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', pairs)
    assert kind == 'lmdb'
    for fold, photos in enumerate(([10001, 10003], [10000, 10002, 10004])):
        assert sorted({int(key.split('_')[1]) for key in lists[fold]}) == photos and len(lists[fold]) == 4 * len(photos)
        opt, dataset = _fold_dataset(tmp_path, stage1, kind, lists, fold)
        assert 'meta_csv' not in opt and 'fold' not in opt  # the key list replaces stage I's own selection
        assert len(dataset) == len(lists[fold]) and dataset[0]['gt'].shape == (3, 32, 32)
    assert capsys.readouterr().err == ''
    own = tmp_path / 'own.txt'  # stage I's own key list: an error in it names that key, not the LMDB
    own.write_text('train_10000_s0000_0000\nphoto_9_s0000_0000\n')
    with pytest.raises(FlareSRError, match=r'^pix2pix.yml: datasets.train.meta_info_file: .*own.txt: key '
                                           r'photo_9_s0000_0000 is not in'):
        fold_training_lists(settings, dict(stage1, datasets=dict(train=dict(lmdb, meta_csv=None, fold=None,
                                                                            meta_info_file=str(own)))),
                            'pix2pix.yml', pairs)
    # An LMDB packed under other keys (here: Flare7K-style numbering) cannot be matched to stage III's photos.
    other = tmp_path / 'other'
    for k in range(2):
        write_image(other / 'gt' / f'gt_{k:06d}.png', np.full((32, 32, 3), 0.5, np.float32))
        write_image(other / 'lq' / f'input_{k:06d}.png', np.full((32, 32, 3), 0.6, np.float32))
    pack_lmdb(pair_paths(str(other / 'lq'), str(other / 'gt')), other / 'lmdb', 32, 32, progress=False)
    foreign = dict(lmdb, dataroot_lq=str(other / 'lmdb' / 'lq.lmdb'), dataroot_gt=str(other / 'lmdb' / 'gt.lmdb'))
    foreign.pop('meta_csv'), foreign.pop('fold')
    with pytest.raises(FlareSRError, match=r"fold 1/2 would train on all of stage I's patches \(pix2pix.yml\), which "
                                           r"are not the files of stage III's pairs; pack stage I's LMDB from stage "
                                           r"III's pairs"):
        fold_training_lists(settings, dict(stage1, datasets=dict(train=foreign)), 'pix2pix.yml', pairs)
    # Partly matching: those images would be in every fold, so the run says so.
    mixed = pairs[:3]  # stage III without 10003 and 10004: their patches match no pair
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', mixed)
    assert 'note: pix2pix.yml: 2 of the images in stage I\'s LMDB (e.g. train_10003) are no stage-III pair; every ' \
           'fold model trains on them' in capsys.readouterr().err
    assert all(key.startswith(('train_10003', 'train_10004')) for key in set(lists[0]) & set(lists[1]))
