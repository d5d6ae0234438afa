"""``network_g.residual: true`` for the stage-I U-Net (Pix2PixUNet's argument): image = clamp(lq + G(lq), -1, 1).

A generator whose last layer is zeroed outputs exactly 0 (Tanh(0)), so a residual model must return
its input unchanged: in Pix2PixModel's predict and training step, in CascadeModel, and in the
stage-III data, which must also be rebuilt when only the ``residual`` switch changes. The switch adds no
parameters, and the old keys (top-level ``residual``, ``cascade.main_residual``) still work, with a note.
"""

import numpy as np
import pytest
import torch
import yaml
from basicsr.models import build_model

from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.models.main_net import to_signed
from flare_sr.pipeline.stage3_data import ensure_stage3_data
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker, fold_residual_aliases
from tests.helpers import UNET, packed_lq, zero_output_layer


def _pix2pix(residual):
    network_g = dict(type='Pix2PixUNet', **UNET)
    if residual is not None:
        network_g['residual'] = residual
    opt = {'model_type': 'Pix2PixModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
           'network_g': network_g, 'path': {}, 'val': {'tile': {'size': 64, 'overlap': 16}}}
    model = build_model(opt)
    zero_output_layer(model.net_g)
    return model


def test_residual_pix2pix_with_a_zero_generator_is_the_identity():
    image = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(0))  # padded and tiled
    assert torch.allclose(_pix2pix(True).predict(image), image, atol=1e-6)
    for classic in (_pix2pix(False), _pix2pix(None)):  # the default is classic pix2pix: G(lq) is the image
        assert torch.allclose(classic.predict(image), torch.full_like(image, 0.5), atol=1e-6)


def test_residual_training_step_starts_from_the_input():
    model = _pix2pix(True)
    model.net_g.train()
    lq, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = model.net_g(to_signed(lq))
    assert torch.allclose(fake, to_signed(lq), atol=1e-6)
    fake.sub(to_signed(gt)).abs().mean().backward()  # the loss reaches G through the residual sum
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net_g.parameters())


def _checkpoint(path, zero):
    torch.manual_seed(0)
    net = Pix2PixUNet(**UNET)
    if zero:
        zero_output_layer(net)
    torch.save({'params': net.state_dict()}, path)
    return str(path)


def test_the_switch_adds_no_parameters_and_adds_the_input():
    torch.manual_seed(0)
    classic, residual = Pix2PixUNet(**UNET), Pix2PixUNet(**UNET, residual=True)
    residual.load_state_dict(classic.state_dict(), strict=True)  # the same checkpoint loads either way
    assert [(k, v.shape) for k, v in residual.state_dict().items()] == \
        [(k, v.shape) for k, v in classic.state_dict().items()]
    classic.eval(), residual.eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(residual(x), x + classic(x))
    with pytest.raises(ValueError, match='residual needs num_in_ch == num_out_ch, got 4 and 3'):
        Pix2PixUNet(**dict(UNET, num_in_ch=4), residual=True)


def _cascade(tmp_path, **extra):
    opt = dict(name='cascade_residual', model_type='CascadeModel', is_train=False, dist=False, num_gpu=0,
               network_main=dict(type='Pix2PixUNet', **UNET), network_post=dict(type='HINet', wf=4, depth=2),
               path=dict(pretrain_network_main=_checkpoint(tmp_path / 'main.pth', zero=True)),
               val=dict(tile=dict(size=None)), cascade=dict(use_post=False))
    opt.update(extra)
    return opt


def test_cascade_network_main_residual_is_honoured(tmp_path):
    image = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    opt = _cascade(tmp_path)
    residual = build_model(dict(opt, network_main=dict(opt['network_main'], residual=True)))
    assert torch.allclose(residual.predict(image), image, atol=1e-6)
    classic = build_model(opt)
    assert torch.allclose(classic.predict(image), torch.full_like(image, 0.5), atol=1e-6)


def test_cascade_main_residual_still_works_with_a_note(tmp_path):
    """An option file of before the move: the checker (test.py, infer.py) moves the key and says where to."""
    opt = _cascade(tmp_path, cascade=dict(use_post=False, main_residual=True), datasets={})
    checker = OptionChecker(False)
    assert checker.check(opt) == []
    assert checker.notes == ['cascade.main_residual is deprecated: use network_main.residual: true']
    assert opt['network_main']['residual'] is True and opt['cascade'] == {'use_post': False}
    image = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(build_model(opt).predict(image), image, atol=1e-6)


def test_top_level_residual_still_works_with_a_note():
    shared = dict(type='Pix2PixUNet', **UNET)
    opt = dict(name='x', model_type='Pix2PixModel', datasets={}, residual=True, network_g=shared)
    checker = OptionChecker(False)
    assert checker.check(opt) == []
    assert checker.notes == ['residual is deprecated: use network_g.residual: true']
    assert 'residual' not in opt and opt['network_g']['residual'] is True
    assert 'residual' not in shared  # a section another option dict shares is replaced, never written into


def test_residual_aliases_refuse_a_bad_or_contradicting_value():
    net = dict(type='Pix2PixUNet', **UNET)
    _, _, problems = fold_residual_aliases(dict(residual='yes', network_g=net))
    assert problems == ["residual: expected true or false, got the string 'yes' (deprecated: use network_g.residual)"]
    _, _, problems = fold_residual_aliases(dict(cascade=dict(main_residual=True),
                                                network_main=dict(net, residual=False)))
    assert problems == ['cascade.main_residual: true contradicts network_main.residual: false (it is the '
                        'deprecated name of network_main.residual)']
    _, warnings, _ = fold_residual_aliases(dict(residual=True, network_g=dict(type='HINet')))
    assert warnings == ['residual: not read (network_g is not a Pix2PixUNet), ignored']
    problems = OptionChecker(False).check(dict(name='x', model_type='CascadeModel', datasets={},
                                               cascade=dict(main_residuall=True)))
    assert problems == [  # no networks either: the two it runs are said with the typo
        'network_main: missing (CascadeModel builds it: give network_main, or cascade.main_opt: its option file)',
        'network_post: missing (CascadeModel builds it: give network_post, or cascade.post_opt: its option file)',
        'cascade.main_residuall: unknown key (known: glow_ensemble, glow_floor, glow_self_ensemble, glow_size, '
        'main_ensemble, use_glow, use_main, use_post)']


@pytest.mark.parametrize('residual', [True, False])
def test_stage3_data_honours_the_main_options_residual(tmp_path, residual):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / 'in' / 'train_input_10000.png', image)
    write_image(tmp_path / 'gt' / 'train_label_10000.png', image)
    main_opt = tmp_path / 'pix2pix.yml'
    main = dict(name='p2p', model_type='Pix2PixModel', num_gpu=0, datasets={},
                network_g=dict(type='Pix2PixUNet', **UNET, residual=residual))
    main_opt.write_text(yaml.safe_dump(main))
    out = tmp_path / 'stage3'
    stage3_opt = dict(
        datasets=dict(train=dict(dataroot_lq=str(out / 'lq.lmdb'), dataroot_gt=str(out / 'gt.lmdb'))),
        stage3_source=dict(main_opt=str(main_opt), main_checkpoint=_checkpoint(tmp_path / 'g.pth', zero=True),
                           tile=dict(size=None), dataroot_lq=str(tmp_path / 'in'), dataroot_gt=str(tmp_path / 'gt'),
                           patch_size=64, stride=64))
    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)[1]
    packed = packed_lq(out, 'train_10000_s0000_0000')
    if residual:
        np.testing.assert_array_equal(packed, image)  # the zero correction leaves the input exactly
    else:
        assert np.all(np.abs(packed.astype(int) - 128) <= 1)  # classic: Tanh(0) = mid-grey
    old_style = dict(main, residual=residual, network_g=dict(type='Pix2PixUNet', **UNET))
    main_opt.write_text(yaml.safe_dump(old_style))  # the deprecated top-level key: the same data, reused
    assert not ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)[1]
    main_opt.write_text(yaml.safe_dump(dict(main, network_g=dict(main['network_g'], residual=not residual))))
    assert ensure_stage3_data(stage3_opt, 'stage3.yml', progress=False)[1], 'a changed residual must rebuild'
