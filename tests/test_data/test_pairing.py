"""The field's pairing conventions and packed data on real files: whatever BasicSR's PairedImageDataset reads
(folders with filename_tmpl, meta_info files, LMDBs made by BasicSR's own tools), PairedFlareDataset reads too,
plus the Flare7K/Flare7K++ test layout and the other role-word namings."""
import copy
import gc
import os

import cv2
import numpy as np
import pytest
import skimage.data
from basicsr.data import build_dataset
from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_meta_info_file
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from flare_sr.data.pairing import pair_names, pair_paths
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker


def photo(number, height=40, width=48):
    """A distinct real-photo crop per number (so a wrong pairing shows in the pixels)."""
    return np.ascontiguousarray(np.roll(skimage.data.astronaut(), 23 * number, axis=1)[:height, :width])


def write_pairs(lq_dir, gt_dir, names):
    """[(lq name, gt name)] written with lq = 255 - gt; returns {gt name: gt pixels}."""
    pixels = {}
    for number, (lq_name, gt_name) in enumerate(names):
        gt = photo(number)
        write_image(gt_dir / gt_name, gt)
        write_image(lq_dir / lq_name, 255 - gt)
        pixels[gt_name] = gt
    return pixels


def dataset(lq_dir, gt_dir, **options):
    opt = dict(type='PairedFlareDataset', name='pairs', dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir),
               io_backend={'type': 'disk'}, phase='val')
    opt.update(options)
    return build_dataset(opt)


def as_uint8(tensor):
    return np.round(tensor.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


def assert_pairs(ds, expected, pixels):
    """Every sample is the expected (lq name, gt name) pair, and its pixels are those files' pixels."""
    assert [(lq.split('/')[-1], gt.split('/')[-1]) for lq, gt in ds.items] == expected
    for index, (_, gt_name) in enumerate(expected):
        sample = ds[index]
        assert np.array_equal(as_uint8(sample['gt']), pixels[gt_name])
        assert np.array_equal(as_uint8(sample['lq']), 255 - pixels[gt_name])


def test_filename_tmpl_is_honoured_like_basicsr(tmp_path):
    names = [('0000_flare.png', '0000.png'), ('0001_flare.png', '0001.png')]
    pixels = write_pairs(tmp_path / 'lq', tmp_path / 'gt', names)
    assert_pairs(dataset(tmp_path / 'lq', tmp_path / 'gt', filename_tmpl='{}_flare'), names, pixels)
    theirs = paired_paths_from_folder([str(tmp_path / 'lq'), str(tmp_path / 'gt')], ['lq', 'gt'], '{}_flare')
    assert sorted((p['lq_path'], p['gt_path']) for p in theirs) == [
        (str(tmp_path / 'lq' / lq), str(tmp_path / 'gt' / gt)) for lq, gt in names]
    # a template without any role word (DIV2K's '{}x4' kind): only filename_tmpl can pair it
    names = [('0001v2.png', '0001.png'), ('0002v2.png', '0002.png')]
    pixels = write_pairs(tmp_path / 'lq2', tmp_path / 'gt2', names)
    with pytest.raises(FlareSRError, match=r'0001v2\.png: no partner'):
        dataset(tmp_path / 'lq2', tmp_path / 'gt2')
    assert_pairs(dataset(tmp_path / 'lq2', tmp_path / 'gt2', filename_tmpl='{}v2'), names, pixels)


def test_bad_filename_tmpl_is_one_line():
    with pytest.raises(FlareSRError, match=r"filename_tmpl '\{\}_\{\}' needs exactly one \{\}"):
        pair_names(['a.png'], ['a.png'], '{}_{}')


def test_flare7k_test_layout_pairs_input_with_gt(tmp_path):
    """Flare7K / Flare7K++ test_data/real: input/input_000000.png <-> gt/gt_000000.png."""
    root = tmp_path / 'test_data' / 'real'
    names = [(f'input_{index:06d}.png', f'gt_{index:06d}.png') for index in range(3)]
    pixels = write_pairs(root / 'input', root / 'gt', names)
    ds = dataset(root / 'input', root / 'gt')
    assert_pairs(ds, names, pixels)
    assert [key for key, _, _ in pair_paths(root / 'input', root / 'gt')] == ['000000', '000001', '000002']


@pytest.mark.parametrize('lq_names, gt_names, keys', [
    (['train_input_10000.png', 'test_input_20000.png'], ['train_label_10000.png', 'test_label_20000.png'],
     ['test_20000', 'train_10000']),  # Dacon
    (['input_000000.png'], ['gt_000000.png'], ['000000']),  # Flare7K, Flare7K++
    (['0001_NOISY_SRGB_010.PNG'], ['0001_GT_SRGB_010.PNG'], ['0001_SRGB_010']),  # SIDD
    (['rain-001.png', 'rain-002.png'], ['norain-001.png', 'norain-002.png'], ['001', '002']),  # Rain100L/H
    (['scene_blur_3.png'], ['scene_sharp_3.png'], ['scene_3']),  # blur / sharp
    (['lq_7.jpg'], ['gt_7.png'], ['7']),  # lq / gt, extension differs
    (['0000_flare.png', 'photo 7.jpg'], ['0000.png', 'photo 7.png'], ['0000', 'photo 7']),  # dropped, identical
    (['img_lq.png'], ['img.png'], ['img']),  # role word dropped at the end
])
def test_role_word_namings_pair(lq_names, gt_names, keys):
    pairs = pair_names(lq_names, gt_names)
    assert sorted(key for key, _, _ in pairs) == keys
    assert {(lq_name, gt_name) for _, lq_name, gt_name in pairs} == set(zip(lq_names, gt_names))


def test_role_words_never_pair_different_numbers():
    with pytest.raises(FlareSRError, match=r'input_000001\.png: no partner'):
        pair_names(['input_000001.png'], ['gt_000002.png'])


def test_no_partner_names_the_rules_and_meta_csv(tmp_path):
    write_pairs(tmp_path / 'lq', tmp_path / 'gt', [('a_input.png', 'b_gt.png')])
    with pytest.raises(FlareSRError) as error:
        dataset(tmp_path / 'lq', tmp_path / 'gt')
    message = str(error.value)
    assert message.startswith(f'{tmp_path / "lq" / "a_input.png"}: no partner in {tmp_path / "gt"} (2 unpaired')
    for part in ('identical stems', 'role word swapped', 'input_0001 <-> gt_0001', 'role word dropped',
                 'filename_tmpl', 'meta_csv'):
        assert part in message
    assert '\n' not in message


def test_basicsr_meta_info_file_with_shapes_and_template(tmp_path):
    names = [('0000_flare.png', '0000.png'), ('0001_flare.png', '0001.png'), ('0002_flare.png', '0002.png')]
    pixels = write_pairs(tmp_path / 'lq', tmp_path / 'gt', names)
    (tmp_path / 'gt' / 'extra.png').write_bytes((tmp_path / 'gt' / '0000.png').read_bytes())  # not listed
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('0002.png (40,48,3)\n0000.png (40,48,3)\n')
    ours = dataset(tmp_path / 'lq', tmp_path / 'gt', meta_info_file=str(meta), filename_tmpl='{}_flare')
    theirs = paired_paths_from_meta_info_file([str(tmp_path / 'lq'), str(tmp_path / 'gt')], ['lq', 'gt'], str(meta),
                                              '{}_flare')
    assert ours.items == [(p['lq_path'], p['gt_path']) for p in theirs]
    assert_pairs(ours, [names[2], names[0]], pixels)


def make_basicsr_lmdb(folder, lmdb_path, names, keys):
    """An LMDB made by BasicSR's own tool, exactly as its scripts/data_preparation does."""
    make_lmdb_from_imgs(str(folder), str(lmdb_path), names, keys, map_size=1 << 24)


def test_lmdb_made_by_basicsr_with_spaces_in_keys_reads_as_basicsr_reads_it(tmp_path):
    names = [('flare (1).png', 'flare (1).png'), ('flare (2).png', 'flare (2).png')]
    write_pairs(tmp_path / 'lq', tmp_path / 'gt', names)
    keys = ['flare (1)', 'flare (2)']
    for side in ('lq', 'gt'):
        make_basicsr_lmdb(tmp_path / side, tmp_path / f'{side}.lmdb', [name for name, _ in names], keys)
    roots = dict(dataroot_lq=str(tmp_path / 'lq.lmdb'), dataroot_gt=str(tmp_path / 'gt.lmdb'),
                 io_backend={'type': 'lmdb'})
    theirs = PairedImageDataset(copy.deepcopy(dict(roots, name='basicsr', phase='val', scale=1)))
    expected = [(theirs[index]['lq'].numpy(), theirs[index]['gt'].numpy(), theirs[index]['gt_path'])
                for index in range(len(theirs))]
    del theirs
    gc.collect()  # py-lmdb allows one handle per environment and process
    ours = build_dataset(dict(roots, type='PairedFlareDataset', name='ours', phase='val'))
    assert [gt for _, gt in ours.items] == keys == [path for _, _, path in expected]
    for index, (lq, gt, _) in enumerate(expected):
        sample = ours[index]
        assert np.array_equal(sample['lq'].numpy(), lq) and np.array_equal(sample['gt'].numpy(), gt)
    train = build_dataset(dict(roots, type='PairedFlareDataset', name='ours_train', phase='train', gt_size=16,
                               use_hflip=True, use_rot=True))
    sample = train[12345]
    assert tuple(sample['gt'].shape) == (3, 16, 16)
    assert np.abs((sample['lq'] + sample['gt']).numpy() - 1).max() < 1e-6


def test_basicsr_lmdbs_of_flare7k_folders_pair_by_the_rules(tmp_path):
    """make_lmdb_from_imgs on input/ and gt/ keeps their stems as keys: input_000000 vs gt_000000."""
    names = [(f'input_{index:06d}.png', f'gt_{index:06d}.png') for index in range(2)]
    pixels = write_pairs(tmp_path / 'input', tmp_path / 'gt', names)
    for side, column in (('input', 0), ('gt', 1)):
        files = [pair[column] for pair in names]
        make_basicsr_lmdb(tmp_path / side, tmp_path / f'{side}.lmdb', files, [name[:-4] for name in files])
    ds = build_dataset(dict(type='PairedFlareDataset', name='flare7k', phase='val', io_backend={'type': 'lmdb'},
                            dataroot_lq=str(tmp_path / 'input.lmdb'), dataroot_gt=str(tmp_path / 'gt.lmdb')))
    assert ds.items == [('input_000000', 'gt_000000'), ('input_000001', 'gt_000001')]
    for index, (_, gt_name) in enumerate(names):
        assert np.array_equal(as_uint8(ds[index]['gt']), pixels[gt_name])
        assert np.array_equal(as_uint8(ds[index]['lq']), 255 - pixels[gt_name])


def test_gray_and_16bit_lmdb_records_decode_like_files(tmp_path):
    """make_lmdb_from_imgs keeps a file's channels and depth (IMREAD_UNCHANGED): 1-channel and 16-bit records."""
    (tmp_path / 'src').mkdir()
    gray = photo(0)[:, :, 1]
    deep = photo(1).astype(np.uint16) * 257 + 3
    cv2.imwrite(str(tmp_path / 'src' / 'gray.png'), gray)
    cv2.imwrite(str(tmp_path / 'src' / 'deep.png'), deep[:, :, ::-1])
    for side in ('lq', 'gt'):
        make_basicsr_lmdb(tmp_path / 'src', tmp_path / f'{side}.lmdb', ['deep.png', 'gray.png'], ['deep', 'gray'])
    ds = build_dataset(dict(type='PairedFlareDataset', name='odd', phase='val', io_backend={'type': 'lmdb'},
                            dataroot_lq=str(tmp_path / 'lq.lmdb'), dataroot_gt=str(tmp_path / 'gt.lmdb')))
    deep_sample, gray_sample = ds[0]['gt'].numpy(), ds[1]['gt'].numpy()
    assert np.array_equal(np.round(deep_sample * 65535).astype(np.uint16), deep.transpose(2, 0, 1))
    assert np.array_equal(as_uint8(ds[1]['gt']), np.repeat(gray[:, :, None], 3, axis=2))
    assert gray_sample.shape == (3, 40, 48)


def test_synthetic_dataset_reads_a_basicsr_lmdb_with_spaces(tmp_path):
    write_image(tmp_path / 'clean' / 'shot (1).png', photo(0, 64, 64))
    make_basicsr_lmdb(tmp_path / 'clean', tmp_path / 'clean.lmdb', ['shot (1).png'], ['shot (1)'])
    ds = build_dataset(dict(type='SyntheticFlareDataset', name='synth', phase='val', io_backend={'type': 'lmdb'},
                            dataroot_gt=str(tmp_path / 'clean.lmdb')))
    sample = ds[0]
    assert sample['gt_path'].endswith('clean.lmdb/shot (1)')
    assert tuple(sample['gt'].shape) == (3, 64, 64)


def test_a_filename_tmpl_that_pairs_nothing_is_one_line_naming_what_it_looked_for(tmp_path):
    """BasicSR's meaning: the lq stem is filename_tmpl.format(gt stem). A template of one's own that matches no file
    is not dropped for the other rules (which would pair these Flare7K names silently)."""
    names = [('input_0000.png', 'gt_0000.png'), ('input_0001.png', 'gt_0001.png')]
    write_pairs(tmp_path / 'lq', tmp_path / 'gt', names)
    with pytest.raises(FlareSRError) as error:
        dataset(tmp_path / 'lq', tmp_path / 'gt', filename_tmpl='{}_flare')
    assert str(error.value) == (
        f"filename_tmpl '{{}}_flare' pairs no file: for gt_0000.png in {tmp_path / 'gt'} it looks for the lq stem "
        f'"gt_0000_flare" in {tmp_path / "lq"}, whose files are like input_0000.png (lq stem = '
        "filename_tmpl.format(gt stem), as BasicSR's); fix or remove filename_tmpl")
    assert len(dataset(tmp_path / 'lq', tmp_path / 'gt')) == 2  # the default template: the other rules pair them


def test_a_filename_tmpl_that_pairs_only_some_files_says_so_once(tmp_path, capsys):
    names = [('0000_flare.png', '0000.png'), ('input_0001.png', 'gt_0001.png')]
    pixels = write_pairs(tmp_path / 'lq', tmp_path / 'gt', names)
    assert_pairs(dataset(tmp_path / 'lq', tmp_path / 'gt', filename_tmpl='{}_flare'), names, pixels)
    assert capsys.readouterr().err == (
        f"warning: filename_tmpl '{{}}_flare' pairs only 1 of 2 files of {tmp_path / 'gt'}; the others by the other "
        'rules (e.g. gt_0001.png <-> input_0001.png)\n')
    dataset(tmp_path / 'lq', tmp_path / 'gt')
    assert capsys.readouterr().err == ''  # the default template warns about nothing


@pytest.mark.parametrize('options, problem', [
    ({'fold': 'val'}, 'datasets.val.fold: selects rows of a split CSV, but meta_csv is not set'),
    ({'meta_csv': 'split.csv', 'fold': 'val', 'meta_info_file': 'meta.txt'},
     'datasets.val: meta_csv and meta_info_file both select the pairs; keep one of them'),
    ({'meta_csv': 'split.csv', 'fold': 'val', 'filename_tmpl': '{}_flare'},
     'datasets.val.filename_tmpl: not read with meta_csv, whose rows name both files of each pair; remove one of '
     'them'),
    ({'dataroot_lq': None}, 'datasets.val.dataroot_lq: missing (the folder or LMDB of flared inputs)'),
])
def test_a_selection_that_would_be_ignored_or_crash_is_an_option_problem(tmp_path, options, problem):
    """A user setting that selects nothing (or is silently outvoted by another) is one line before any run."""
    for name in ('split.csv', 'meta.txt'):
        (tmp_path / name).write_text('')
    opt = {'type': 'PairedFlareDataset', 'name': 'val', 'dataroot_lq': str(tmp_path), 'dataroot_gt': str(tmp_path)}
    opt.update({key: str(tmp_path / value) if key in ('meta_csv', 'meta_info_file') else value
                for key, value in options.items()})
    opt = {key: value for key, value in opt.items() if value is not None}  # None: the key left out
    problems = OptionChecker(is_train=False).check({'datasets': {'val': opt}})
    assert [line for line in problems if line.startswith('datasets')] == [problem]


def test_selection_keys_a_dataset_never_reads_are_warned_about(tmp_path):
    checker = OptionChecker(is_train=False)
    checker.check({'datasets': {'val': {'type': 'SyntheticFlareDataset', 'name': 'val', 'dataroot_gt': str(tmp_path),
                                        'fold': 'val', 'filename_tmpl': '{}_flare'}}})
    assert checker.warnings == ['datasets.val.fold: not read by SyntheticFlareDataset, ignored',
                                'datasets.val.filename_tmpl: not read by SyntheticFlareDataset, ignored']


@pytest.mark.parametrize('lq_folder', ['gt', 'link'])
def test_one_folder_as_lq_and_gt_is_refused_not_paired_with_itself(tmp_path, lq_folder):
    """--lq and --gt naming one folder (or a link to it) paired every label with itself: training on inputs
    without flare, without a word."""
    write_pairs(tmp_path / 'lq', tmp_path / 'gt', [('a.png', 'a.png'), ('b.png', 'b.png')])
    (tmp_path / 'link').symlink_to(tmp_path / 'gt')
    with pytest.raises(FlareSRError) as refusal:
        dataset(tmp_path / lq_folder, tmp_path / 'gt')
    assert str(refusal.value) == (f'{tmp_path / lq_folder / "a.png"}: the same file as its partner '
                                  f'{tmp_path / "gt" / "a.png"}, as is every input (2 pair(s)): one folder given as '
                                  'both; give the flared inputs and the labels in two folders')
    assert len(pair_paths(tmp_path / 'lq', tmp_path / 'gt')) == 2
    assert len(pair_names(['a.png'], ['a.png'])) == 1  # bare names: nothing to compare
    os.remove(tmp_path / 'lq' / 'b.png')  # a flare-free pair kept as a hard link of its label is a pair
    os.link(tmp_path / 'gt' / 'b.png', tmp_path / 'lq' / 'b.png')
    assert len(pair_paths(tmp_path / 'lq', tmp_path / 'gt')) == 2
