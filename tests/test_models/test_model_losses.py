"""The models' loss options: the saturation mask and FFT term reach every reconstruction loss, are off by
default, are logged per stage, and the option checker knows their keys."""
import math

import pytest
import torch
from basicsr.models import build_model

from flare_sr.utils.options_check import OptionChecker


def test_option_checker_knows_the_new_options(tmp_path):
    """The new keys pass; misspelt ones and a missing mask folder are caught before training starts."""
    opt = {'name': 'x', 'model_type': 'HINetModel', 'datasets': {},
           'logger': {'print_freq': 1, 'save_checkpoint_freq': 1},
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
