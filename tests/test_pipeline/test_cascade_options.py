"""The cascade's test options refer to the stage option files (``cascade.main_opt`` / ``post_opt``) instead of
copying their network blocks: the networks, the U-Net's residual switch included, come from the files."""

import pytest
import torch
import yaml

from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.pipeline.inference import build_test_model
from flare_sr.utils.options_check import load_option_file, resolve_cascade_sources
from tests.helpers import UNET, zero_output_layer


@pytest.mark.parametrize('folder', ['options', 'options/tiny'])
def test_shipped_cascade_options_take_both_networks_from_the_stage_files(repo_root, monkeypatch, folder):
    monkeypatch.chdir(repo_root)
    opt = load_option_file(f'{folder}/test_cascade.yml')
    assert 'network_main' not in opt and 'network_post' not in opt
    assert resolve_cascade_sources(opt) == ([], [])
    assert opt['network_main'] == load_option_file(f'{folder}/pix2pix.yml')['network_g']
    assert opt['network_post'] == load_option_file(f'{folder}/hinet_phase2.yml')['network_g']
    assert 'main_opt' not in opt['cascade'] and 'post_opt' not in opt['cascade']


def _stage_files(tmp_path, main):
    (tmp_path / 'p2p.yml').write_text(yaml.safe_dump(main))
    post = {'name': 'h', 'network_g': {'type': 'HINet', 'wf': 4, 'depth': 2}}
    (tmp_path / 'hinet.yml').write_text(yaml.safe_dump(post))
    torch.manual_seed(0)
    checkpoint = tmp_path / 'main.pth'
    torch.save({'params': zero_output_layer(Pix2PixUNet(**UNET)).state_dict()}, checkpoint)
    return dict(name='c', model_type='CascadeModel', num_gpu=0,
                cascade=dict(main_opt=str(tmp_path / 'p2p.yml'), post_opt=str(tmp_path / 'hinet.yml'), use_post=False),
                path=dict(pretrain_network_main=str(checkpoint)), val=dict(tile=dict(size=None)))


@pytest.mark.parametrize('main', [
    {'name': 'p', 'network_g': dict(type='Pix2PixUNet', residual=True, **UNET)},
    {'name': 'p', 'residual': True, 'network_g': dict(type='Pix2PixUNet', **UNET)},  # a file of before the move
])
def test_a_cascade_built_from_stage_files_uses_their_residual_switch(tmp_path, main):
    model = build_test_model(_stage_files(tmp_path, main), 'test_cascade.yml')
    image = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(model.predict(image), image, atol=1e-6)  # zero correction + residual = the input


def test_cascade_sources_refuse_a_missing_file_and_a_doubled_network(tmp_path):
    opt = dict(cascade=dict(main_opt=str(tmp_path / 'nope.yml'), post_opt='x.yml'), network_post={'type': 'HINet'})
    notes, problems = resolve_cascade_sources(opt)
    assert problems == [f'cascade.main_opt: {tmp_path / "nope.yml"}: option file not found',
                        'cascade.post_opt: network_post is given too; keep one of them']
    assert opt['cascade'] == {}
