"""Stage-III data: stage-I outputs packed into LMDBs, reused while current, rebuilt on a new checkpoint."""
import os

import numpy as np
import pytest
import yaml

from flare_sr.errors import FlareSRError
from flare_sr.pipeline.stage3_data import ensure_stage3_data
from flare_sr.utils.img_util import write_image
from tests.helpers import UNET, packed_lq, save_unet, snapshot, unet_output


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(2):
        write_image(tmp_path / 'in' / f'train_input_{10000 + index}.png', rng.uniform(0, 1, (64, 96, 3)))
        write_image(tmp_path / 'gt' / f'train_label_{10000 + index}.png', rng.uniform(0, 1, (64, 96, 3)))
    checkpoint = tmp_path / 'net_g_latest.pth'
    net = save_unet(checkpoint, seed=0)
    main_opt = tmp_path / 'pix2pix.yml'
    main_opt.write_text(yaml.safe_dump(dict(name='p2p', model_type='Pix2PixModel', num_gpu=0, datasets={},
                                            network_g=dict(type='Pix2PixUNet', **UNET))))
    out = tmp_path / 'stage3'
    stage3_opt = dict(
        datasets=dict(train=dict(dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'))),
        stage3_source=dict(main_opt=str(main_opt), main_checkpoint=str(checkpoint),
                           tile=dict(size=64, overlap=16), dataroot_lq=str(tmp_path / 'in'),
                           dataroot_gt=str(tmp_path / 'gt'), patch_size=32, stride=32))
    return tmp_path, stage3_opt, net, checkpoint, out


def test_stage3_data_is_cached_and_rebuilt_on_checkpoint_change(setup):
    tmp_path, stage3_opt, net, checkpoint, out = setup
    out_dir, rebuilt = ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)
    assert rebuilt and out_dir == str(out)
    keys = [line.split('.')[0] for line in open(out / 'lq.lmdb' / 'meta_info.txt')]
    assert len(keys) == 2 * 2 * 3 and 'train_10000_s0000_0000' in keys
    expected = unet_output(net, tmp_path / 'in' / 'train_input_10000.png')  # the packed lq: 64x96 fits one tile
    np.testing.assert_array_equal(packed_lq(out, 'train_10000_s0032_0064'), expected[32:64, 64:96])
    first = packed_lq(out, 'train_10001_s0000_0000')
    stamp = os.stat(out / 'lq.lmdb' / 'data.mdb').st_mtime_ns

    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False) == (str(out), False)  # unchanged: reused
    assert os.stat(out / 'lq.lmdb' / 'data.mdb').st_mtime_ns == stamp

    save_unet(checkpoint, seed=1)  # stage I retrained: a new checkpoint at the same path
    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False) == (str(out), True)
    assert not np.array_equal(packed_lq(out, 'train_10001_s0000_0000'), first)
    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)[1] is False

    os.utime(tmp_path / 'gt' / 'train_label_10001.png', ns=(1, 1))  # a label changed
    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)[1] is True


def test_stage3_options_are_checked(setup):
    _, stage3_opt, _, _, _ = setup
    broken = dict(stage3_opt, stage3_source=dict(stage3_opt['stage3_source'], main_checkpoint='nowhere.pth'))
    with pytest.raises(FlareSRError, match='stage3_source.main_checkpoint: nowhere.pth does not exist'):
        ensure_stage3_data(broken, 'stage3.yml')
    wrong = dict(stage3_opt, datasets=dict(train=dict(dataroot_lq='a/lq.lmdb', dataroot_gt='b/gt.lmdb')))
    with pytest.raises(FlareSRError, match='datasets.train must read the stage-III LMDBs'):
        ensure_stage3_data(wrong, 'stage3.yml')
    unread = dict(stage3_opt, stage3_source=dict(stage3_opt['stage3_source'], fold='train'))  # no meta_csv
    with pytest.raises(FlareSRError) as error:
        ensure_stage3_data(unread, 'stage3.yml')
    assert str(error.value) == 'stage3.yml: stage3_source.fold: selects rows of a split CSV, but meta_csv is not set'


@pytest.mark.parametrize('tile, line', [
    (dict(size=40, overlap=16), "stage3_source.tile: size 40 with overlap 16 cannot tile on the network's 32-pixel "
                                'grid'),
    (dict(size=64, overlap=40), "stage3_source.tile: size 64 with overlap 40 cannot tile on the network's 32-pixel "
                                'grid'),
    (dict(size=0), 'stage3_source.tile.size must be > 0, got 0 (leave stage3_source.tile.size unset, ~, for the '
                   'whole frame)'),
    (dict(batch=0), 'stage3_source.tile.batch must be >= 1, got 0'),
])
def test_a_stage3_tile_that_cannot_run_is_said_against_the_stage3_file_and_key(setup, tile, line):
    """The tile runs stage I's network, whose options are main_opt's: the error names the stage-III file and
    stage3_source.tile, not main_opt's val.tile (which it does not have), before any stage-I output is written."""
    from flare_sr.utils.options_check import OptionChecker

    tmp_path, stage3_opt, _, _, out = setup
    broken = dict(stage3_opt, stage3_source=dict(stage3_opt['stage3_source'], tile=tile))
    with pytest.raises(FlareSRError) as error:
        ensure_stage3_data(broken, 'stage3.yml', progress=False)
    assert str(error.value).startswith(f'stage3.yml: {line}')
    assert not out.exists() and not (tmp_path / 'stage3_images').exists()
    checker = OptionChecker(is_train=True)  # train.py's checker says it too, with stage I's grid
    checker.check(broken)
    assert [problem for problem in checker.problems if problem.startswith('stage3_source.tile')][0].startswith(line)


def test_a_crop_larger_than_the_stage3_patches_is_said_before_stage_one_runs(setup):
    tmp_path, stage3_opt, _, _, out = setup
    broken = dict(stage3_opt, datasets=dict(train=dict(stage3_opt['datasets']['train'], gt_size=48)))
    with pytest.raises(FlareSRError) as error:
        ensure_stage3_data(broken, 'stage3.yml', progress=False)
    assert str(error.value) == ('stage3.yml: datasets.train.gt_size: 48 is larger than stage3_source.patch_size 32, '
                                'the side of every stage-III patch; use gt_size 32 or less, or a larger patch_size')
    assert not out.exists() and not (tmp_path / 'stage3_images').exists()
    fits = dict(stage3_opt, datasets=dict(train=dict(stage3_opt['datasets']['train'], gt_size=32)))
    assert ensure_stage3_data(fits, 'stage3.yml', progress=False)[1]


def test_train_py_builds_stage3_data_from_the_stage3_option_file(setup, monkeypatch):
    """`python flare_sr/train.py -opt hinet_phase2.yml` alone: the data exists before the options are checked."""
    from flare_sr.pipeline.stage3_data import prepare_stage3_data

    tmp_path, stage3_opt, _, _, out = setup
    option_file = tmp_path / 'hinet_phase2.yml'
    option_file.write_text(yaml.safe_dump(stage3_opt))
    monkeypatch.setenv('WORLD_SIZE', '2')  # under torchrun the ranks must not all build it
    prepare_stage3_data(str(option_file))
    assert not out.exists()
    monkeypatch.setenv('WORLD_SIZE', '1')
    prepare_stage3_data(str(option_file))
    assert (out / 'lq.lmdb' / 'data.mdb').is_file() and (out / 'gt.lmdb' / 'data.mdb').is_file()


def test_stage3_data_never_joins_or_replaces_the_stage1_inputs(setup):
    """Refused before stage I runs: LMDBs inside the input folder, an OUT holding the inputs (refused by the pack
    after all of stage I, leaving ``<OUT>_images`` beside it), and ``<OUT>_images`` being the input folder (stage-I
    outputs named by pairing key replaced inputs of those names)."""
    tmp_path, stage3_opt, _, _, _ = setup
    os.rename(tmp_path / 'in', tmp_path / 's3_images')
    for name in os.listdir(tmp_path / 's3_images'):  # inputs named as their pairing keys
        os.rename(tmp_path / 's3_images' / name, tmp_path / 's3_images' / name.replace('_input', ''))
    source = dict(stage3_opt['stage3_source'], dataroot_lq=str(tmp_path / 's3_images'))
    before = snapshot(tmp_path)
    for out, message in ((tmp_path / 's3', 'is, holds or lies in stage3_source.dataroot_lq'),
                         (tmp_path / 's3_images' / 'x', 'is, holds or lies in stage3_source.dataroot_lq'),
                         (tmp_path, 'holds other files')):
        opt = dict(stage3_opt, stage3_source=source,
                   datasets=dict(train=dict(dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'))))
        with pytest.raises(FlareSRError, match=message):
            ensure_stage3_data(opt, 'stage3.yml', progress=False)
        assert snapshot(tmp_path) == before and not os.path.exists(f'{tmp_path}_images')
