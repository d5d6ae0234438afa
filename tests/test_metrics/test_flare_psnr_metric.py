"""calculate_flare_psnr: exact on constructed regions and Flare7K masks, through BasicSR's calculate_metric."""
import math
import os
import re

import numpy as np
import pytest
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.metrics.flare_psnr_metric import calculate_flare_psnr
from flare_sr.utils.img_util import write_image

GLARE, STREAK, SOURCE = (255, 255, 0), (255, 0, 0), (0, 0, 255)


def psnr_of_mse(mse):
    return 10 * math.log10(255**2 / mse)


def test_registered_with_basicsr():
    assert METRIC_REGISTRY.get('calculate_flare_psnr') is calculate_flare_psnr


def test_derived_region_is_where_input_and_label_differ_beyond_the_threshold():
    """4x4 image: input differs at (0,0) by 100, at (0,1) by 7 (below 0.03*255 = 7.65), at (1,1) in one
    channel only. The output errs by 10 at (0,0), 4 at (1,1) in all channels, 50 outside the region."""
    gt = np.full((4, 4, 3), 100, np.uint8)
    lq = gt.astype(np.float64)
    lq[0, 0] += 100
    lq[0, 1] += 7
    lq[1, 1, 2] += 20
    out = gt.copy()
    out[0, 0] += 10
    out[1, 1] += 4
    out[3, 3] += 50  # outside the region: must not count
    expected = psnr_of_mse((3 * 10**2 + 3 * 4**2) / (2 * 3))
    assert calculate_flare_psnr(out, gt, img_lq=lq) == pytest.approx(expected, abs=1e-12)
    # Through BasicSR's dispatcher, as val.metrics calls it (the model adds img_lq).
    opt = {'type': 'calculate_flare_psnr', 'threshold': 0.03}
    assert calculate_metric({'img': out, 'img2': gt, 'img_lq': lq}, opt) == pytest.approx(expected, abs=1e-12)
    # A lower threshold takes in (0,1) too, where the output is exact: mse over 3 pixels.
    assert calculate_flare_psnr(out, gt, img_lq=lq, threshold=0.02) == pytest.approx(
        psnr_of_mse((3 * 10**2 + 3 * 4**2) / (3 * 3)), abs=1e-12)


def test_crop_border_and_y_channel_as_calculate_psnr():
    """The region is found on the cropped colour images; with test_y_channel the PSNR is BasicSR's Y PSNR."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 200, (8, 8, 3)).astype(np.uint8)
    lq = gt + 40
    out = gt + rng.integers(0, 20, (8, 8, 3)).astype(np.uint8)
    out[0] = 255  # a bad border row: cropped away
    for y in (False, True):
        psnr_opt = {'type': 'calculate_psnr', 'crop_border': 1, 'test_y_channel': y}
        expected = calculate_metric({'img': out, 'img2': gt}, psnr_opt)
        assert calculate_flare_psnr(out, gt, crop_border=1, test_y_channel=y, img_lq=lq) == pytest.approx(
            expected, abs=1e-9)  # the region is the whole (cropped) image here
    chw = calculate_flare_psnr(out.transpose(2, 0, 1), gt.transpose(2, 0, 1), input_order='CHW',
                               img_lq=lq.transpose(2, 0, 1))
    assert chw == pytest.approx(calculate_flare_psnr(out, gt, img_lq=lq), abs=1e-12)


def test_empty_region_is_not_scored_and_a_perfect_region_is_infinite():
    gt = np.full((4, 4, 3), 80, np.uint8)
    assert math.isnan(calculate_flare_psnr(gt + 1, gt, img_lq=gt))  # flare-free pair: nothing to score
    lq = gt.copy()
    lq[2, 2] = 200
    assert calculate_flare_psnr(gt, gt, img_lq=lq) == math.inf


def write_mask(path, colours):
    """HxWx3 RGB uint8 mask from a dict {(y, x): colour}, black elsewhere, 6x5 pixels."""
    mask = np.zeros((6, 5, 3), np.uint8)
    for (y, x), colour in colours.items():
        mask[y, x] = colour
    write_image(str(path), mask)


def test_mask_folder_gives_glare_streak_flare_and_global_psnr_exactly(tmp_path):
    """Flare7K colours: glare [255,255,0] at 2 pixels, streak [255,0,0] at 1, light source [0,0,255] at 1."""
    masks = tmp_path / 'mask'
    write_mask(masks / 'mask_000000.png', {(0, 0): GLARE, (0, 1): GLARE, (3, 2): STREAK, (5, 4): SOURCE})
    gt = np.full((6, 5, 3), 60, np.uint8)
    out = gt.copy()
    out[0, 0] += 6       # glare pixel: error 6 in every channel
    out[0, 1, 0] += 12   # glare pixel: error 12 in one channel
    out[3, 2] += 3       # streak pixel
    out[5, 4] += 90      # the light source: outside every region but the light source itself
    out[1, 1] += 2       # unannotated background: only in "global"
    paths = {'lq_path': '/data/input/input_000000.png', 'gt_path': '/data/gt/gt_000000.png'}
    glare_mse = (3 * 6**2 + 12**2) / (2 * 3)
    expected = {
        'glare': psnr_of_mse(glare_mse),
        'streak': psnr_of_mse(3**2),
        'flare': psnr_of_mse((3 * 6**2 + 12**2 + 3 * 3**2) / (3 * 3)),
        'global': psnr_of_mse((3 * 6**2 + 12**2 + 3 * 3**2 + 3 * 2**2) / (29 * 3)),  # 30 pixels less the source
    }
    for mask_type, value in expected.items():
        # No img_lq needed, and the threshold is ignored: the masks define the region.
        got = calculate_flare_psnr(out, gt, mask_folder=str(masks), mask_type=mask_type, threshold=0.9, **paths)
        assert got == pytest.approx(value, abs=1e-12), mask_type


def test_mask_lookup_names_and_mask_errors(tmp_path):
    masks = tmp_path / 'mask'
    write_mask(masks / 'train_mask_10000.png', {(0, 0): GLARE})  # Dacon naming: train_input_10000 -> train_mask
    write_mask(masks / 'photo 1.jpg', {(1, 1): STREAK})           # same stem as the input
    gt = np.full((6, 5, 3), 10, np.uint8)
    out = gt + 5
    for lq_path in ('x/train_input_10000.png', 'x/photo 1.png'):
        assert calculate_flare_psnr(out, gt, mask_folder=str(masks), lq_path=lq_path) == pytest.approx(
            psnr_of_mse(25), abs=1e-3)  # JPEG may blur the colour a little; the region's error is 5 everywhere
    with pytest.raises(FlareSRError, match=r'no mask for x/other_input_7.png in .*other_mask_7'):
        calculate_flare_psnr(out, gt, mask_folder=str(masks), lq_path='x/other_input_7.png')
    with pytest.raises(FlareSRError, match=r'train_mask_10000.png: mask is 5x6, the image 4x4'):
        calculate_flare_psnr(gt[:4, :4], gt[:4, :4], mask_folder=str(masks), lq_path='train_input_10000.png')
    with pytest.raises(FlareSRError, match=r"mask_type must be one of flare, glare, streak, global, got 'halo'"):
        calculate_flare_psnr(out, gt, mask_folder=str(masks), mask_type='halo')
    with pytest.raises(FlareSRError, match=r'needs the input image'):
        calculate_flare_psnr(out, gt)
    with pytest.raises(FlareSRError, match=r'is not a folder'):
        calculate_flare_psnr(out, gt, mask_folder=str(tmp_path / 'nope'), lq_path='a.png')


def test_a_missing_mask_is_found_before_any_image_is_scored(tmp_path):
    """Validation (test.py, and training before its first iteration) checks every pair's mask first: a set whose
    last image lacked its mask failed there, after the others were scored or the training had run."""
    from flare_sr.data.flare7k_pair_dataset import Image_Pair_Loader
    from flare_sr.metrics.mask_inputs import check_mask_inputs
    for index in range(3):
        for folder in ('input', 'gt') + (('mask',) if index < 2 else ()):
            write_image(tmp_path / folder / f'{index:05d}.png', np.zeros((8, 8, 3), np.uint8))
    dataset = Image_Pair_Loader({'name': 'real', 'phase': 'val', 'dataroot_lq': str(tmp_path / 'input'),
                                 'dataroot_gt': str(tmp_path / 'gt')})
    val = {'metrics': {'psnr': {'type': 'calculate_psnr'},
                       'g': {'type': 'calculate_g_psnr_flare7k', 'mask_folder': str(tmp_path / 'mask')}}}
    with pytest.raises(FlareSRError, match=r'^val.metrics.g: calculate_g_psnr_flare7k: no mask for .*00002.png in'):
        check_mask_inputs(val, dataset)
    write_image(tmp_path / 'mask' / '00002.png', np.zeros((8, 8, 3), np.uint8))
    check_mask_inputs(val, dataset)
    check_mask_inputs({'metrics': {'psnr': {'type': 'calculate_psnr'}}}, dataset)  # no mask metric: nothing read
    write_image(tmp_path / 'mask' / '00001.png', np.zeros((8, 6, 3), np.uint8))
    with pytest.raises(FlareSRError, match=r'^val.metrics.g: .*00001.png: mask is 6x8, the image 8x8$'):
        check_mask_inputs(val, dataset)
    beside = {'metrics': {'s': {'type': 'calculate_s_psnr_flare7k'}}}  # no mask_folder: the mask/ beside input/
    with pytest.raises(FlareSRError, match=r'^val.metrics.s: .*00001.png: mask is 6x8'):
        check_mask_inputs(beside, dataset)
    os.rename(tmp_path / 'mask', tmp_path / 'masks')
    with pytest.raises(FlareSRError, match=r'^val.metrics.s: calculate_s_psnr_flare7k: no mask_folder given and no '):
        check_mask_inputs(beside, dataset)


def test_options_that_would_score_nothing_or_another_region_are_one_line(tmp_path):
    """threshold 3 (meant as 3 %) left every region empty: every image NaN, "not scored", exit 0; a negative one scored
    the whole image; mask_type without mask_folder scored the derived region under the glare's name; a crop_border
    past the middle left no pixel (NaN). Each is refused when scored, and before any image by the option checker
    (``check_options``) and check_metric_sizes."""
    from flare_sr.data.flare7k_pair_dataset import Image_Pair_Loader
    from flare_sr.metrics.mask_inputs import check_mask_inputs
    from flare_sr.metrics.niqe_size import check_metric_sizes
    from flare_sr.utils.img_util import peek_size
    gt = np.full((8, 8, 3), 100, np.uint8)
    lq, out = gt + 40, gt + 5
    assert calculate_flare_psnr(out, gt, img_lq=lq, threshold=0.0) == pytest.approx(psnr_of_mse(25))
    assert calculate_flare_psnr(out, gt, img_lq=lq, crop_border=3) == pytest.approx(psnr_of_mse(25))
    bad = {'threshold': 3, 'mask_type': 'glare', 'crop_border': 4}
    messages = {'threshold': r'threshold must be a fraction of full scale in \[0, 1\) \(0.03 = 3 %\), got 3: above it',
                'mask_type': 'mask_type glare reads annotated masks, but no mask_folder is set',
                'crop_border': 'crop_border 4 leaves no pixel of the 8x8 image'}
    for key, value in bad.items():
        with pytest.raises(FlareSRError, match=f'^calculate_flare_psnr: {messages[key]}'):
            calculate_metric({'img': out, 'img2': gt, 'img_lq': lq}, {'type': 'calculate_flare_psnr', key: value})
    with pytest.raises(FlareSRError, match=r'threshold must be .*got -0.1'):
        calculate_flare_psnr(out, gt, img_lq=lq, threshold=-0.1)
    for index in range(2):
        for folder in ('input', 'gt'):
            write_image(tmp_path / folder / f'{index:05d}.png', gt)
    dataset = Image_Pair_Loader({'name': 'real', 'phase': 'val', 'dataroot_lq': str(tmp_path / 'input'),
                                 'dataroot_gt': str(tmp_path / 'gt')})
    for key in ('threshold', 'mask_type'):  # the option checker's hook (before any run folder: test_refused_runs)
        lines = calculate_flare_psnr.check_options({key: bad[key]}, 'val.metrics.fp')
        assert len(lines) == 1 and re.match(f'^val.metrics.fp.{messages[key]}', lines[0]), lines
    val = {'metrics': {'fp': {'type': 'calculate_flare_psnr', 'crop_border': 4}}}
    with pytest.raises(FlareSRError, match=r'^val.metrics.fp: \S+00000.png is 8x8 pixels .*crop_border 4: '
                                           r'calculate_flare_psnr needs at least 9x9 pixels$'):
        check_metric_sizes(val, dataset, peek_size)
    check_mask_inputs({'metrics': {'fp': {'type': 'calculate_flare_psnr', 'threshold': 0.05}}}, dataset)
    check_metric_sizes({'metrics': {'fp': {'type': 'calculate_flare_psnr', 'crop_border': 3}}}, dataset, peek_size)


def test_a_grayscale_mask_is_read_as_flare_only(tmp_path):
    """A binary (grayscale) mask has no classes: white is glare, streak and light source at once. As ``flare`` it
    scores the white pixels; as ``streak`` (R - G = 0 everywhere) it would leave every image unscored, and as
    ``glare`` or ``global`` score another region than the name says, so those are one line naming the file."""
    masks = tmp_path / 'mask'
    masks.mkdir()
    white = np.zeros((6, 5), np.uint8)
    white[0, :2] = 255
    write_image(str(masks / 'mask_000000.png'), white.astype(np.float32) / 255, gray=True)
    gt = np.full((6, 5, 3), 60, np.uint8)
    out = gt.copy()
    out[0, 0] += 4
    paths = {'lq_path': '/data/input/input_000000.png', 'gt_path': '/data/gt/gt_000000.png'}
    for mask_type in (None, 'flare'):
        assert calculate_flare_psnr(out, gt, mask_folder=str(masks), mask_type=mask_type, **paths) == pytest.approx(
            psnr_of_mse(3 * 4**2 / (2 * 3)), abs=1e-12)
    for mask_type in ('streak', 'glare', 'global'):
        with pytest.raises(FlareSRError, match=rf'mask_000000.png: a grayscale mask has no classes, so mask_type '
                                               rf'{mask_type} cannot be read from it; use mask_type: flare'):
            calculate_flare_psnr(out, gt, mask_folder=str(masks), mask_type=mask_type, **paths)
