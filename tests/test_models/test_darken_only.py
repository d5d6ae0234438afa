"""val.darken_only: every flare_sr model's output is never brighter than its input; in the cascade both networks
are clamped to the observed input."""
import torch
from basicsr.models import build_model

from flare_sr.archs.hinet_arch import HINet
from flare_sr.archs.nafnet_arch import NAFNet
from flare_sr.utils.options_check import OptionChecker

NET = dict(type='HINet', in_chn=3, wf=8, depth=2)
MAIN = dict(type='NAFNet', img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])


def _checkpoint(tmp_path, name, seed, arch=NET):
    torch.manual_seed(seed)
    net = {'HINet': HINet, 'NAFNet': NAFNet}[arch['type']](**{k: v for k, v in arch.items() if k != 'type'}).eval()
    with torch.no_grad():  # a visible random correction: HINet's last convs start near zero otherwise
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    path = str(tmp_path / f'{name}.pth')
    torch.save({'params': net.state_dict()}, path)
    return net, path


def _opt(model_type, val, **extra):
    opt = dict(name='darken_unit', model_type=model_type, is_train=False, dist=False, num_gpu=0, scale=1, rank=0,
               world_size=1, val=dict(tile=dict(size=None), **val))
    opt.update(extra)
    return opt


def _lq():
    return torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))


def test_hinet_model_output_is_the_pixelwise_minimum_of_net_and_input(tmp_path):
    net, path = _checkpoint(tmp_path, 'post', 0)
    lq = _lq()
    with torch.no_grad():
        raw = net(lq)[-1].clamp(0, 1)
    assert (raw > lq + 0.01).float().mean() > 0.05  # the net brightens somewhere: the option has work to do
    for darken, expected in ((False, raw), (True, torch.minimum(raw, lq))):
        model = build_model(_opt('HINetModel', dict(darken_only=darken), network_g=dict(NET),
                                 path=dict(pretrain_network_g=path)))
        out = model.predict(lq)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert (out <= lq).all()


def test_cascade_clamps_each_network_to_the_observed_input(tmp_path):
    main, main_path = _checkpoint(tmp_path, 'main', 1, MAIN)  # any one-output net in [-1,1] can be the main net
    post, post_path = _checkpoint(tmp_path, 'post', 2)
    lq = _lq()
    with torch.no_grad():
        stage1 = torch.minimum(((main(lq * 2 - 1) + 1) / 2).clamp(0, 1), lq)  # the post net sees it, as in stage III
        post_out = post(stage1)[-1].clamp(0, 1)
        expected = torch.minimum(post_out, lq)
        # Clamping the post net to its own input (the darkened stage-I output) would forbid undoing the main net's
        # over-darkening: with these nets that differs.
        assert (torch.minimum(post_out, stage1) - expected).abs().max() > 1e-3
    assert ((expected > stage1 + 1e-3) & (expected <= lq)).any()  # brighter than stage I, never than the input
    opt = _opt('CascadeModel', dict(darken_only=True), network_main=dict(MAIN), network_post=dict(NET),
               path=dict(pretrain_network_main=main_path, pretrain_network_post=post_path))
    torch.testing.assert_close(build_model(opt).predict(lq), expected, atol=1e-5, rtol=0)


def test_checker_refuses_darken_only_where_no_flare_sr_model_applies_it():
    opt = dict(name='x', model_type='SRModel', num_gpu=0, scale=1, network_g=dict(NET), path={},
               val=dict(darken_only=True))
    problems = OptionChecker(is_train=False).check(opt)
    assert 'val.darken_only: SRModel does not apply it; use a flare_sr model (HINetModel, Pix2PixModel, ' \
           'CascadeModel) or remove it' in problems
    bad = OptionChecker(is_train=False).check(dict(opt, model_type='HINetModel', val=dict(darken_only='yes')))
    assert any(line.startswith('val.darken_only') for line in bad)
