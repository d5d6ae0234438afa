"""BasicSR's NIQE on small images: LinAlgError at 96x128 (one 96x96 block); now one line naming the minimum size,
the same score where it works (256x256), NaN (not scored) for a textureless image."""
import warnings

import numpy as np
import pytest
from basicsr.metrics.niqe import calculate_niqe

from flare_sr.errors import FlareSRError
from flare_sr.metrics.niqe_size import checked_niqe, niqe_size_problem


def _photo_like(height, width):
    return np.random.default_rng(0).uniform(0, 255, (height, width, 3))


def test_too_small_image_is_one_line_naming_the_minimum_size():
    with pytest.raises(np.linalg.LinAlgError):  # BasicSR's own: what the user saw
        calculate_niqe(_photo_like(96, 128), crop_border=0)
    with pytest.raises(FlareSRError) as error:
        checked_niqe(calculate_niqe)(_photo_like(96, 128), crop_border=0)
    assert str(error.value) == ('calculate_niqe: the image is 128x96 pixels (width x height), crop_border 0: 1 '
                                'block(s) of 96x96; calculate_niqe fits a covariance to the blocks and needs at least '
                                '2, so at least 192x96 or 96x192 pixels')
    assert 'at least 196x100 or 100x196 pixels' in niqe_size_problem(192, 192, crop_border=2)  # 188x188: 1 block


@pytest.mark.parametrize('height, width', [(256, 256), (96, 192), (192, 96)])
def test_images_with_two_blocks_score_as_basicsr_scores_them(height, width):
    image = _photo_like(height, width)
    assert niqe_size_problem(height, width) is None
    assert checked_niqe(calculate_niqe)(image, crop_border=0) == calculate_niqe(image, crop_border=0)


def test_textureless_image_is_not_scored():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # numpy on empty blocks
        assert np.isnan(checked_niqe(calculate_niqe)(np.zeros((256, 256, 3)), crop_border=0))


@pytest.mark.parametrize('metric_type, height, width, crop_border, ok', [
    ('calculate_ssim', 8, 8, 0, False), ('calculate_ssim', 1, 1, 0, False), ('calculate_ssim', 10, 64, 0, False),
    ('calculate_ssim', 14, 14, 2, False), ('calculate_ssim', 11, 11, 0, True), ('calculate_ssim', 15, 15, 2, True),
    ('calculate_psnr', 8, 8, 4, False), ('calculate_psnr', 1, 1, 0, True), ('calculate_psnr', 8, 8, 3, True),
])
def test_ssim_and_psnr_on_images_too_small_are_one_line_not_a_silent_nan(tmp_path, metric_type, height, width,
                                                                         crop_border, ok):
    """BasicSR's SSIM keeps the unpadded part of its 11x11 window's output (NaN under 11 pixels a side, then
    'Best: -inf @ -1 iter'); PSNR is NaN when crop_border leaves no pixel. Gray images as well as colour."""
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

    from flare_sr.metrics.niqe_size import check_metric_sizes, checked_size
    metric = {'calculate_ssim': calculate_ssim, 'calculate_psnr': calculate_psnr}[metric_type]
    rng = np.random.default_rng(0)
    for shape in ((height, width, 3), (height, width)):
        img, img2 = (rng.integers(0, 256, shape).astype(np.uint8) for _ in range(2))
        if ok:
            assert checked_size(metric_type, metric)(img, img2, crop_border) == metric(img, img2, crop_border)
            continue
        with pytest.raises(FlareSRError, match=f'^{metric_type}: the image is {width}x{height} pixels'):
            checked_size(metric_type, metric)(img, img2, crop_border)
    (tmp_path / 'a.png').write_bytes(b'')  # read_size stands for the reader; an LMDB key (no file) is not checked
    dataset = type('Pairs', (), {'items': [(str(tmp_path / 'a.png'), 'b.png')]})()
    val = {'metrics': {'m': {'type': metric_type, 'crop_border': crop_border}}}
    if ok:
        check_metric_sizes(val, dataset, lambda path: (height, width))
    else:
        with pytest.raises(FlareSRError, match=f'^val.metrics.m: {tmp_path}/a.png is {width}x{height} pixels'):
            check_metric_sizes(val, dataset, lambda path: (height, width))
    check_metric_sizes(val, type('Keys', (), {'items': [('lmdb_key', 'lmdb_key')]})(), None)


def test_flare_sr_metrics_too_small_are_refused_before_training(tmp_path):
    """calculate_ssim_flare7k (7x7 window) and calculate_flare_psnr's crop_border, checked before the first iteration
    as BasicSR's metrics are (they failed, or scored NaN, at the first validation)."""
    from flare_sr.metrics.niqe_size import check_metric_sizes
    (tmp_path / 'a.png').write_bytes(b'')  # read_size stands for the reader
    dataset = type('Pairs', (), {'items': [(str(tmp_path / 'a.png'), 'b.png')]})()
    val = {'metrics': {'s': {'type': 'calculate_ssim_flare7k'}}}
    with pytest.raises(FlareSRError, match=r'^val.metrics.s: \S+a.png is 9x6 pixels \(width x height\), crop_border 0: '
                                           r'calculate_ssim_flare7k needs at least 7x7 pixels \(its 7x7 window\)$'):
        check_metric_sizes(val, dataset, lambda path: (6, 9))
    check_metric_sizes(val, dataset, lambda path: (7, 7))
    val = {'metrics': {'f': {'type': 'calculate_flare_psnr', 'crop_border': 5}}}
    with pytest.raises(FlareSRError, match=r'crop_border 5: calculate_flare_psnr needs at least 11x11 pixels$'):
        check_metric_sizes(val, dataset, lambda path: (10, 64))
    check_metric_sizes(val, dataset, lambda path: (11, 11))
