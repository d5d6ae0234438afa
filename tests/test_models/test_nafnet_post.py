"""NAFNet as the post model: trained by HINetModel through train.py, and chained by the cascade.

The training run also validates with calculate_flare_psnr beside PSNR/SSIM, so the flare-region metric is
seen in a real validation's metrics.json and in TensorBoard, with its input baseline.
"""

import os

import pytest
import torch
from basicsr.models import build_model

from flare_sr.archs.nafnet_arch import NAFNet
from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from tests.helpers import (base_options, experiment_dirs, load_params, make_flare_pairs, read_metrics, run_train,
                           tb_scalars, write_options)

NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'width': 4, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1],
          'dec_blk_nums': [1, 1]}


@pytest.mark.slow
def test_nafnet_trains_as_the_post_model_and_validates_the_flare_region(tmp_path, experiment):
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 4, seed=1),
            'val': make_flare_pairs(str(tmp_path / 'val'), 2, seed=2, prefix='test')}
    name = experiment('test_nafnet_post')
    # The official NAFNet recipe with Adam and BasicSR's cosine: AdamW and TrueCosineAnnealingLR (used by
    # options/nafnet_phase*.yml) come with flare_sr/utils/optim.py's wiring into the models.
    train = {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.9], 'weight_decay': 0},
             'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [2], 'restart_weights': [1],
                           'eta_min': 1e-7},
             'total_iter': 2, 'warmup_iter': -1,
             'pixel_opt': {'type': 'PSNRLoss', 'loss_weight': 1, 'reduction': 'mean'}}
    opt = base_options(data, name, 'HINetModel', dict(NAFNET), train)
    opt['val']['val_freq'] = 2
    opt['val']['metrics']['flare_psnr'] = {'type': 'calculate_flare_psnr', 'threshold': 0.03}
    opt['logger']['save_checkpoint_freq'] = 2
    result = run_train(write_options(tmp_path / 'nafnet.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    exp_dir, tb_dir = experiment_dirs(name)
    params = load_params(os.path.join(exp_dir, 'models', 'net_g_2.pth'))
    net = NAFNet(**{key: value for key, value in NAFNET.items() if key != 'type'})
    net.load_state_dict(params, strict=True)  # the saved checkpoint is an official-layout NAFNet state_dict
    assert any(param.abs().sum() > 0 for key, param in params.items() if key.endswith('.beta'))  # it learnt

    scalars = tb_scalars(tb_dir)
    assert sorted(step for step, _ in scalars['losses/l_pix']) == [1, 2]
    for metric in ('psnr', 'flare_psnr', 'input_flare_psnr'):
        assert f'metrics/val/{metric}' in scalars, sorted(scalars)
    record = read_metrics(os.path.join(exp_dir, 'metrics.json'))['validations'][-1]['datasets']['val']
    assert sorted(record['per_image']) == ['test_input_10000', 'test_input_10001']
    # The glow covers part of the image: the flare region scores below the whole image, and is finite.
    for scores in [record['mean'], *record['per_image'].values()]:
        assert 0 < scores['flare_psnr']['input'] < scores['psnr']['input']
        assert scores['flare_psnr']['output'] > 0
    assert record['mean']['flare_psnr']['scored'] == 2


def test_cascade_runs_a_nafnet_post_network(tmp_path):
    """The NAFNet output is one tensor: the cascade must take it whole (HINet's list is indexed instead)."""
    torch.manual_seed(0)
    main = Pix2PixUNet(num_downs=5, num_feat=4, norm='none').eval()
    post = NAFNet(width=4, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    with torch.no_grad():
        for block in post.modules():
            if hasattr(block, 'beta'):  # zero residual scales would make every block the identity
                block.beta.normal_(0, 0.5)
                block.gamma.normal_(0, 0.5)
    paths = {}
    for stage, net in (('main', main), ('post', post)):
        paths[stage] = str(tmp_path / f'{stage}.pth')
        torch.save({'params': net.state_dict()}, paths[stage])
    opt = dict(name='cascade_nafnet', model_type='CascadeModel', is_train=False, dist=False, num_gpu=0, scale=1,
               network_main={'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 4, 'norm': 'none'},
               network_post=dict(NAFNET), val={'tile': {'size': None}},
               path={'pretrain_network_main': paths['main'], 'pretrain_network_post': paths['post']})
    model = build_model(opt)
    assert model.size_multiple == 32  # lcm of the U-Net's 32 and NAFNet's 4
    lq = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(lq, (0, 14, 0, 24), mode='reflect')
    with torch.no_grad():
        expected = post(((main(padded * 2 - 1) + 1) / 2).clamp(0, 1)).clamp(0, 1)[..., :40, :50]
    out = model.predict(lq)
    assert out.shape == lq.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    only_post = build_model(dict(opt, cascade={'use_main': False}))
    assert only_post.size_multiple == 4
    # Tiling pads by reflection to NAFNet's multiple, so NAFNet's own zero padding never runs.
    reflected = torch.nn.functional.pad(lq, (0, 2, 0, 0), mode='reflect')
    with torch.no_grad():
        expected = post(reflected).clamp(0, 1)[..., :50]
    torch.testing.assert_close(only_post.predict(lq), expected, atol=1e-5, rtol=0)
