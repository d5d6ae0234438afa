"""calculate_flare_psnr (exact on constructed regions and Flare7K masks), FFTLoss, the saturation loss mask."""

import math

import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_metric
from basicsr.models import build_model
from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.losses.fft_loss import FFTLoss
from flare_sr.losses.saturation_mask import saturation_keep_mask
from flare_sr.metrics.flare_psnr_metric import calculate_flare_psnr
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker

GLARE, STREAK, SOURCE = (255, 255, 0), (255, 0, 0), (0, 0, 255)


def psnr_of_mse(mse):
    return 10 * math.log10(255**2 / mse)


def test_registered_with_basicsr():
    assert METRIC_REGISTRY.get('calculate_flare_psnr') is calculate_flare_psnr
    assert LOSS_REGISTRY.get('FFTLoss') is FFTLoss


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


def test_option_checker_knows_the_new_options(tmp_path):
    """The new keys pass; misspelt ones and a missing mask folder are caught before training starts."""
    opt = {'name': 'x', 'model_type': 'HINetModel', 'datasets': {}, 'logger': {'print_freq': 1},
           'network_g': {'type': 'HINet', 'wf': 4, 'depth': 2},
           'train': {'total_iter': 1, 'pixel_opt': {'type': 'L1Loss'},
                     'fft_opt': {'type': 'FFTLoss', 'loss_weight': 0.1},
                     'saturation_mask': {'threshold': 0.97, 'dilation': 5, 'source': 'lq'}},
           'val': {'val_freq': 1, 'metrics': {'flare_psnr': {'type': 'calculate_flare_psnr', 'threshold': 0.03}}}}
    assert OptionChecker(is_train=True).check(opt) == []
    opt['train']['fft_opt']['los_weight'] = 1
    opt['train']['saturation_mask']['dilate'] = 3
    opt['val']['metrics']['flare_psnr'].update(mask_folder=str(tmp_path / 'missing'))
    problems = OptionChecker(is_train=True).check(opt)
    assert any(p.startswith('train.fft_opt.los_weight: unknown key') for p in problems), problems
    assert any(p.startswith('train.saturation_mask.dilate: unknown key') for p in problems), problems
    assert any(p.startswith('val.metrics.flare_psnr.mask_folder:') and 'does not exist' in p for p in problems)


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
    with pytest.raises(FlareSRError, match="source must be one of lq, gt, both, got 'input'"):
        saturation_keep_mask(lq, gt, source='input')


def training_model(model_type, network_g, **train):
    train = {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 1,
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5}, **train}
    opt = {'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'network_g': network_g,
           'path': {}, 'val': {}, 'train': train}
    if model_type == 'Pix2PixModel':
        opt['network_d'] = {'type': 'PatchGANDiscriminator', 'num_in_ch': 6, 'num_feat': 4, 'num_layers': 2}
        opt['train'].update(optim_d={'type': 'Adam', 'lr': 1e-3}, gan_opt={'type': 'GANLoss', 'gan_type': 'lsgan'})
    return build_model(opt)


@pytest.mark.parametrize('pixel_opt', [{'type': 'L1Loss'}, {'type': 'PSNRLoss'}, {'type': 'CharbonnierLoss'}])
def test_masked_pixels_get_zero_gradient_from_every_reconstruction_loss(pixel_opt):
    model = training_model('HINetModel', {'type': 'NAFNet', 'width': 4}, pixel_opt=pixel_opt,
                           fft_opt={'type': 'FFTLoss', 'loss_weight': 0.1},
                           saturation_mask={'threshold': 0.97, 'dilation': 1})
    lq, gt = torch.rand(2, 3, 16, 16) * 0.8, torch.rand(2, 3, 16, 16) * 0.8
    lq[0, :, 4, 4] = 1.0  # one clipped source in the first image
    keep = model.loss_keep_mask(lq, gt)
    assert keep.sum() == 2 * 16 * 16 - 9
    output = torch.rand(2, 3, 16, 16, requires_grad=True)
    losses = model.reconstruction_losses(output, gt, keep)
    assert list(losses) == ['l_pix', 'l_fft']
    sum(losses.values()).backward()
    assert (output.grad[0, :, 3:6, 3:6] == 0).all()
    assert (output.grad[0, :, 7:, :] != 0).float().mean() > 0.9 and (output.grad[1] != 0).float().mean() > 0.9


def test_options_off_by_default_and_models_log_their_losses():
    """Defaults: no mask, no FFT term. On: HINet logs both per stage and summed; Pix2Pix logs l_g_fft."""
    plain = training_model('HINetModel', {'type': 'NAFNet', 'width': 4}, pixel_opt={'type': 'L1Loss'})
    assert plain.cri_fft is None and plain.loss_keep_mask(torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4)) is None
    for setting, masked in ((False, None), ({}, 0.0), (True, 0.0)):  # an empty mapping means the defaults
        model = training_model('HINetModel', {'type': 'NAFNet', 'width': 4}, pixel_opt={'type': 'L1Loss'},
                               saturation_mask=setting)
        keep = model.loss_keep_mask(torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
        assert keep is None if masked is None else keep.max().item() == masked
    extras = dict(fft_opt={'type': 'FFTLoss', 'loss_weight': 0.1}, saturation_mask=True)
    hinet = training_model('HINetModel', {'type': 'HINet', 'wf': 4, 'depth': 2}, pixel_opt={'type': 'L1Loss'},
                           **extras)
    pix2pix = training_model('Pix2PixModel', {'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 4},
                             pixel_opt={'type': 'L1Loss', 'loss_weight': 100.0}, **extras)
    batch = {'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 32, 32)}
    for model, expected in ((hinet, {'l_pix_subnet1', 'l_fft_subnet1', 'l_pix_subnet2', 'l_fft_subnet2', 'l_pix',
                                     'l_fft'}),
                            (pix2pix, {'l_g_pix', 'l_g_fft', 'l_g_gan'})):
        model.feed_data(batch)
        model.optimize_parameters(1)
        assert expected <= set(model.log_dict), sorted(model.log_dict)
        assert all(math.isfinite(model.log_dict[name]) and model.log_dict[name] > 0 for name in expected if
                   'fft' in name)
    assert hinet.log_dict['l_fft'] == pytest.approx(hinet.log_dict['l_fft_subnet1'] + hinet.log_dict['l_fft_subnet2'])
