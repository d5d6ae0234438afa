"""FFTLoss (exact on constant offsets, no gradient through weight-0 pixels), PSNRLoss and the saturation loss mask."""

import pytest
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.losses.fft_loss import FFTLoss
from flare_sr.losses.psnr_loss import PSNRLoss
from flare_sr.losses.saturation_mask import saturation_keep_mask


def test_registered_with_basicsr():
    assert LOSS_REGISTRY.get('FFTLoss') is FFTLoss


def test_fft_loss_is_zero_for_equal_images_and_exact_for_a_constant_offset():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 8, 6)
    assert FFTLoss()(image, image.clone()).item() == 0
    # A constant offset d lives only in the DC coefficient, d * sqrt(H W) with the orthonormal transform:
    # 1 real non-zero entry among H * (W//2 + 1) * 2 per channel.
    loss = FFTLoss(loss_weight=2.0)(torch.full((1, 1, 4, 4), 0.5), torch.zeros(1, 1, 4, 4))
    assert loss.item() == pytest.approx(2.0 * 0.5 * 4 / (4 * 3 * 2))
    assert FFTLoss(reduction='sum')(torch.full((1, 1, 4, 4), 0.5), torch.zeros(1, 1, 4, 4)).item() == pytest.approx(2)
    # Texture lost: positive, and the same per-pixel error costs the same at two sizes (orthonormal).
    noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    small, large = FFTLoss()(noise[..., :32, :32], torch.zeros(1, 3, 32, 32)), FFTLoss()(noise, torch.zeros_like(noise))
    assert small > 0 and large.item() == pytest.approx(small.item(), rel=0.15)
    with pytest.raises(ValueError, match='reduction must be one of mean, sum'):
        FFTLoss(reduction='none')


def test_fft_loss_weight_zero_pixels_get_no_gradient():
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    weight = torch.ones(1, 1, 8, 8)
    weight[..., 2:4, 5:8] = 0
    FFTLoss()(pred, torch.zeros(1, 3, 8, 8), weight=weight).backward()
    assert (pred.grad[..., 2:4, 5:8] == 0).all()
    assert (pred.grad[..., :2, :] != 0).float().mean() > 0.9


def test_saturation_keep_mask_dilates_saturated_luminance_by_the_radius():
    lq = torch.full((1, 3, 12, 12), 0.5)
    lq[0, :, 5, 6] = 1.0                       # a clipped white light source pixel
    gt = torch.full((1, 3, 12, 12), 0.5)
    gt[0, :, 0, 0] = torch.tensor([1.0, 1.0, 0.9])  # luminance 0.9928: clipped in the label only
    keep = saturation_keep_mask(lq, gt, threshold=0.97, dilation=2, source='lq')
    expected = torch.ones(1, 1, 12, 12)
    expected[..., 3:8, 4:9] = 0                # (2*2+1)^2 square around (5, 6)
    assert torch.equal(keep, expected)
    both = saturation_keep_mask(lq, gt, threshold=0.97, dilation=2, source='both')
    expected[..., 0:3, 0:3] = 0
    assert torch.equal(both, expected)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0                            # a clipped red channel: luminance 0.21, not saturated
    assert torch.equal(saturation_keep_mask(red, red, dilation=0), torch.ones(1, 1, 4, 4))
    with pytest.raises(FlareSRError, match="source must be one of lq, gt, both, got the string 'input'"):
        saturation_keep_mask(lq, gt, source='input')


def test_psnr_loss_is_minus_mean_psnr_per_image():
    target = torch.zeros(2, 3, 8, 8)
    pred = torch.cat([torch.full((1, 3, 8, 8), 0.1), torch.full((1, 3, 8, 8), 0.01)])
    psnrs = torch.tensor([20.0, 40.0])  # 10*log10(1/mse) for mse 1e-2 and 1e-4
    loss = PSNRLoss(loss_weight=0.5)(pred, target)
    assert torch.isclose(loss, -0.5 * psnrs.mean(), atol=1e-3)
