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
