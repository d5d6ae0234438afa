"""scripts/bench/eval_components.py: the single-component validation's scores, rows and picture.

The scores are checked exactly on a constructed triple. The whole script runs on a residual Pix2Pix whose
last layer is zeroed (the identity): each row's output then equals its input, so every gain is 0.00 and the
rest's PSNR is the input's. It also runs on a real tiny cascade, which must change the flared images.
"""
import math

import numpy as np
import torch
import yaml
from skimage import data as skdata

from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.data.synthesis.procedural import COMPONENTS
from flare_sr.utils.img_util import read_image_uint8, write_image
from tests.helpers import UNET, cascade_option_file, load_script, run_main_in_process, zero_output_layer

ROWS = [name for name in COMPONENTS if name != 'source'] + ['all (training family)']


def test_pair_scores_split_the_image_into_flare_region_and_rest_exactly():
    bench = load_script('bench/eval_components')
    gt = np.full((10, 10, 3), 100, np.uint8)
    lq = gt.copy()
    lq[:2] += 20  # the flare: 20 rows of 10 pixels, above the 0.03 * 255 = 7.65 threshold
    lq[2:4, :, 0] += 7  # below the threshold: counted in the rest
    out = gt.copy()
    out[:2] += 10  # half the flare removed
    out[5:, :, 1] += 3  # an error where no flare was
    whole_in, whole_out, region_in, region_out, rest_in, rest_out = bench.pair_scores(lq, out, gt, 0.03)

    def psnr(mse):
        return 10 * math.log10(255 ** 2 / mse)

    assert region_in == psnr(400) and region_out == psnr(100)
    assert math.isclose(rest_in, psnr(20 * 49 / (80 * 3)))  # 20 pixels with 7 in one channel of 80 x 3 values
    assert math.isclose(rest_out, psnr(50 * 9 / (80 * 3)))
    assert math.isclose(whole_in, psnr((20 * 3 * 400 + 20 * 49) / 300))
    assert math.isclose(whole_out, psnr((20 * 3 * 100 + 50 * 9) / 300))
    assert np.isnan(bench.pair_scores(gt, gt, gt, 0.03)[2])  # no flare region: not scored


def _clean_folder(tmp_path):
    folder = tmp_path / 'clean'
    photo = skdata.astronaut()
    for index, (top, left) in enumerate(((0, 0), (200, 250))):
        write_image(folder / f'clean_{index}.png', photo[top:top + 64, left:left + 80])
    return folder


def _identity_option_file(tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'zero.pth'
    torch.save({'params': zero_output_layer(Pix2PixUNet(**UNET)).state_dict()}, checkpoint)
    opt = dict(name='identity', model_type='Pix2PixModel', num_gpu=0, datasets={},
               network_g=dict(type='Pix2PixUNet', residual=True, **UNET),
               path=dict(pretrain_network_g=str(checkpoint)), val=dict(tile=dict(size=64, overlap=16)))
    path = tmp_path / 'identity.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def _table(stdout):
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if cells[0] in ROWS:
            rows[cells[0]] = [float(cell) for cell in cells[1:]]
    return rows


def test_the_identity_gains_nothing_on_every_component(tmp_path, capsys):
    bench = load_script('bench/eval_components')
    picture = tmp_path / 'components.png'
    code, out, err = run_main_in_process(bench.main, ['-opt', _identity_option_file(tmp_path), '--clean',
                                                      str(_clean_folder(tmp_path)), '--count', '3', '--picture',
                                                      str(picture)], capsys)
    assert code == 0, err
    rows = _table(out)
    assert list(rows) == ROWS
    for name, (whole_in, whole_out, gain, region_in, region_out, rest_in, rest_out) in rows.items():
        assert whole_in == whole_out and gain == 0.0, name
        assert region_in == region_out and rest_in == rest_out, name
        assert whole_in < 60, name  # every row really adds flare
    assert 'Mean gain over the single components: +0.00 dB' in out
    assert f'Target, a gain on every component: not met ({", ".join(ROWS[:-1])})' in out
    grid = read_image_uint8(picture)
    assert grid.shape == (len(ROWS) * 64, 4 * 80, 3)
    lq, output, label, error = np.split(grid[:64], 4, axis=1)
    assert np.array_equal(lq, output) and not np.array_equal(lq, label)
    assert np.array_equal(error, np.clip(np.abs(output.astype(int) - label.astype(int)) * 4, 0, 255))


def test_a_real_cascade_changes_the_flared_images(tmp_path, capsys):
    bench = load_script('bench/eval_components')
    code, out, err = run_main_in_process(bench.main, ['-opt', cascade_option_file(tmp_path), '--clean',
                                                      str(_clean_folder(tmp_path)), '--count', '2', '--picture', ''],
                                         capsys)
    assert code == 0, err
    rows = _table(out)
    assert list(rows) == ROWS
    assert any(gain != 0.0 for _, _, gain, *_ in rows.values())
    assert 'picture:' not in out


def test_bad_clean_images_are_one_line_naming_them(tmp_path, capsys):
    bench = load_script('bench/eval_components')
    (tmp_path / 'empty').mkdir()
    write_image(tmp_path / 'small' / 'tiny.png', np.zeros((4, 30, 3), np.uint8))
    (tmp_path / 'notes.txt').write_text('not a folder')
    for folder, words in (('empty', 'no images'), ('missing', 'folder not found'), ('notes.txt', 'not a folder'),
                          ('small', 'tiny.png: 30x4 is smaller')):
        code, out, err = run_main_in_process(bench.main, ['--clean', str(tmp_path / folder), '--picture', ''], capsys)
        assert code != 0 and err.strip().count('\n') == 0 and words in err and '--clean' in err, err


def test_bad_arguments_are_refused_before_any_work_and_nothing_is_overwritten(tmp_path, capsys):
    bench = load_script('bench/eval_components')
    clean = _clean_folder(tmp_path)
    trained = _identity_option_file(tmp_path)
    untrained = tmp_path / 'untrained.yml'
    untrained.write_text(open(trained).read().replace(str(tmp_path / 'zero.pth'), 'null'))
    training = tmp_path / 'training.yml'  # path.pretrain_network_g there is where its training starts
    opt = yaml.safe_load(open(trained).read())
    training.write_text(yaml.safe_dump(dict(opt, datasets={'train': {'type': 'PairedFlareDataset'}})))
    victim = tmp_path / 'notes.txt'
    victim.write_text('keep me')
    before = {path.name: path.read_bytes() for path in clean.iterdir()}
    cases = [(['-opt', untrained], 'path.pretrain_network_g not set'),
             (['-opt', training], 'training.yml: a training option file (datasets.train): its path.pretrain_network_* '
                                  'are the weights its training starts from'),
             (['--seed', '-1'], '--seed -1: must be non-negative'),
             (['--picture', victim], 'must end in .png (the file written is a PNG picture)'),
             (['--picture', clean / 'clean_0.png'], 'inside the --clean folder'),
             (['--picture', tmp_path / 'notes.txt' / 'x.png'], 'notes.txt: --picture is a file, not a folder')]
    for extra, words in cases:
        argv = ['-opt', trained, '--clean', clean, '--count', '1', *extra]
        code, out, err = run_main_in_process(bench.main, argv, capsys)
        assert code != 0 and err.strip().count('\n') == 0 and words in err, (extra, err)
        assert 'Single-component validation' not in out  # refused before the evaluation ran
    assert victim.read_text() == 'keep me'
    assert {path.name: path.read_bytes() for path in clean.iterdir()} == before
