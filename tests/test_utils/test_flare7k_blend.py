"""Flare7K's light-source blend (``val.restore_light_source: {method: flare7k}``) against outputs of Flare7K's own
``blend_light_source``, stored in tests/data/flare7k_blend_reference.pt (tests/data/make_flare7k_blend_reference.py)."""
import os

import numpy as np
import pytest
import torch

from flare_sr.utils.light_source import flare7k_light_source_mask, restore_light_source_tensor
from tests.helpers import DATA_DIR

REFERENCE = torch.load(os.path.join(DATA_DIR, 'flare7k_blend_reference.pt'), weights_only=True)


@pytest.mark.parametrize('index', range(len(REFERENCE['cases'])))
def test_flare7k_blend_equals_the_official_one(index):
    case = REFERENCE['cases'][index]
    lq, out = case['lq'][None].float() / 255, case['out'][None].float() / 255
    blended = restore_light_source_tensor(lq, out, threshold=REFERENCE['threshold'], method='flare7k')
    assert blended.shape == out.shape
    assert torch.allclose(blended[0], case['blend'], atol=1e-6, rtol=0)


def test_the_largest_light_sets_one_kernel_and_specks_are_opened_away():
    """Two lights of 97 and 21 px (equivalent diameters 11.1 and 5.2): one 17-px disk kernel, round(1.5 * 11.1),
    blends both, so the small light is only partly restored (its 21 px fill 0.107 of the kernel, times 3: 0.32) while
    the large one is whole; a 1-px speck, narrower than the opening's disk, is not restored at all."""
    image = np.full((64, 64, 3), 0.2, np.float32)
    yy, xx = np.mgrid[:64, :64]
    big, small = (yy - 16)**2 + (xx - 16)**2 <= 5.5**2, (yy - 44)**2 + (xx - 44)**2 <= 2.5**2
    image[big] = image[small] = 1.0
    image[5, 58] = 1.0
    mask = flare7k_light_source_mask(image)
    assert mask[16, 16] == 1 and mask[5, 58] == 0
    assert 0.30 < mask[44, 44] < 0.34 and mask[44, 44 + 8] > 0  # 8 px out: still within the small light's reach
    assert mask[16, 16 + 14] < 1e-6 and mask[44, 44 + 11] < 1e-6  # beyond both reaches (1e-7: the floor)
    assert flare7k_light_source_mask(np.full((32, 32, 3), 0.5, np.float32)).max() == 0  # no light: nothing blended
