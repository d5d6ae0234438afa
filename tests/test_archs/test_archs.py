"""Archs: registration, and compatibility with the official HINet, NAFNet and pix2pix implementations.

The reference files in ``tests/data/`` hold weights, inputs and outputs produced by the official classes
(see ``tests/data/README.md``); our nets must load those weights strictly and reproduce the outputs.
"""
import json
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import ARCH_REGISTRY

from flare_sr.archs.hinet_arch import HINet
from flare_sr.archs.nafnet_arch import LayerNormFunction, NAFNet
from flare_sr.archs.patchgan_arch import PatchGANDiscriminator
from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.utils.options_check import fold_renamed_arguments
from tests.helpers import DATA_DIR

ARCH_BY_PREFIX = {'hinet': 'HINet', 'unet': 'Pix2PixUNet', 'patchgan': 'PatchGANDiscriminator', 'nafnet': 'NAFNet'}
REFERENCE_FILES = sorted(
    name for name in os.listdir(DATA_DIR) if name.endswith('.pt') and name.split('_')[0] in ARCH_BY_PREFIX)


def load_reference(name):
    record = torch.load(os.path.join(DATA_DIR, name), weights_only=True)
    weights = record['params'] if 'params' in record else record['state_dict']
    return ARCH_BY_PREFIX[name.split('_')[0]], record, weights


def build_from_reference(name):
    """The reference's net, built from its config as an option file would give it: the pix2pix configs were
    recorded with the former argument names (in_ch, ngf, ndf, n_layers), which the option checker renames."""
    arch, record, weights = load_reference(name)
    opt = {'network_g': {'type': arch, **record['config']}}
    fold_renamed_arguments(opt)
    net = build_network(opt['network_g'])
    net.load_state_dict(weights, strict=True)
    return net, record


def assert_outputs_equal(ours, official):
    if isinstance(official, list):
        assert isinstance(ours, list) and len(ours) == len(official)
        for ours_part, official_part in zip(ours, official):
            torch.testing.assert_close(ours_part, official_part, atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(ours, official, atol=1e-5, rtol=0)


def test_import_registers_archs_with_basicsr():
    assert ARCH_REGISTRY.get('HINet') is HINet
    assert ARCH_REGISTRY.get('Pix2PixUNet') is Pix2PixUNet
    assert ARCH_REGISTRY.get('PatchGANDiscriminator') is PatchGANDiscriminator
    assert ARCH_REGISTRY.get('NAFNet') is NAFNet
    net = build_network({'type': 'HINet', 'wf': 4, 'depth': 2})
    assert isinstance(net, HINet) and net.size_multiple == 4
    net = build_network({'type': 'NAFNet', 'width': 4, 'enc_blk_nums': [1, 1, 1], 'dec_blk_nums': [1, 1, 1]})
    assert isinstance(net, NAFNet) and net.size_multiple == 8


def test_reference_data_covers_every_arch_and_norm():
    assert {name.split('_')[0] for name in REFERENCE_FILES} == set(ARCH_BY_PREFIX)
    for prefix in ('unet', 'patchgan'):
        norms = {load_reference(name)[1]['config']['norm'] for name in REFERENCE_FILES if name.startswith(prefix)}
        assert norms == {'batch', 'instance', 'none'}


NAFNET_FILES = [name for name in REFERENCE_FILES if name.startswith('nafnet')]


@pytest.mark.parametrize('name', REFERENCE_FILES)
def test_official_weights_load_strictly_and_reproduce_outputs(name):
    net, record = build_from_reference(name)
    net.eval()
    with torch.no_grad():
        assert_outputs_equal(net(record['input']), record['output_eval'])
    if 'output_train' in record:  # batch statistics instead of running ones
        net.train()
        with torch.no_grad():
            assert_outputs_equal(net(record['input']), record['output_train'])


@pytest.mark.parametrize('arch, name', [(HINet, 'hinet_wf4_depth3.pt'), (NAFNet, 'nafnet_w4_enc11_mid1_dec11.pt')])
def test_official_checkpoint_loads_through_basicsr(arch, name):
    """Official HINet and NAFNet checkpoints keep their weights under `params`: the path
    `path.pretrain_network_g` + `param_key_g: params` takes in a BasicSR model."""
    _, record, _ = load_reference(name)
    net = arch(**record['config'])
    BaseModel.__new__(BaseModel).load_network(net, os.path.join(DATA_DIR, name), strict=True, param_key='params')
    with torch.no_grad():
        assert_outputs_equal(net(record['input']), record['output_eval'])


def test_nafnet_references_cover_padding_and_channels():
    """One reference size is not a multiple of 2**len(enc) (the internal padding), one is grayscale."""
    records = [load_reference(name)[1] for name in NAFNET_FILES]
    padded = [r for r in records if r['input'].shape[-1] % 2**len(r['config']['enc_blk_nums'])
              or r['input'].shape[-2] % 2**len(r['config']['enc_blk_nums'])]
    assert padded and all(r['output_eval'].shape == r['input'].shape for r in padded)
    assert {r['config']['img_channel'] for r in records} == {1, 3}


@pytest.mark.parametrize('name', NAFNET_FILES)
def test_nafnet_gradients_match_the_official_layernorm_backward(name):
    """The reference files hold the official gradients of a fixed loss (through its custom LayerNorm backward)."""
    net, record = build_from_reference(name)
    x = record['input'].clone().requires_grad_(True)
    out = net.eval()(x)
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    torch.testing.assert_close(x.grad, record['grad_input'], atol=gradient_atol(record['grad_input']), rtol=1e-5)
    grads = {key: param.grad for key, param in net.named_parameters()}
    assert grads.keys() == record['grad_params'].keys()
    for key, grad in grads.items():
        reference = record['grad_params'][key]
        torch.testing.assert_close(grad, reference, atol=gradient_atol(reference), rtol=1e-5, msg=key)


def gradient_atol(reference):
    """A gradient sums over every pixel and the blocks above it: its float32 rounding depends on the summation order
    (thread count) and on the CPU's kernels (AVX-512 on AMD EPYC, AMX on Intel Xeon, where it reached 1.3e-5 of the
    gradient's largest value), so the absolute tolerance scales with that value."""
    return max(1e-5, 2e-5 * reference.abs().max().item())


def test_nafnet_layernorm_backward_equals_autograd_in_double():
    """The hand-written backward against torch's numerical gradient, and channels stay normalised."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: LayerNormFunction.apply(*args, 1e-6), (x, weight, bias))
    y = LayerNormFunction.apply(x, torch.ones_like(weight), torch.zeros_like(bias), 1e-6)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 3, 4, dtype=torch.float64))
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 3, 4, dtype=torch.float64), rtol=1e-5, atol=0)


def full_size_configs():
    with open(os.path.join(DATA_DIR, 'official_keys_full_size.json')) as file:
        return json.load(file)


@pytest.mark.parametrize('variant', sorted(full_size_configs()))
def test_full_size_state_dict_keys_and_shapes_match_official(variant):
    expected = full_size_configs()[variant]
    opt = {'network_g': {'type': expected['arch'], **expected['config']}}
    fold_renamed_arguments(opt)  # recorded with the former argument names, as build_from_reference
    with torch.device('meta'):  # shapes only: no memory, no init time
        net = build_network(opt['network_g'])
    ours = {key: list(tensor.shape) for key, tensor in net.state_dict().items()}
    assert list(ours) == list(expected['keys'])
    assert ours == expected['keys']


def test_default_param_counts_match_the_published_sizes():
    with torch.device('meta'):
        nets = {
            'hinet': HINet(),
            'hinet_depth4': HINet(depth=4),
            'unet_256': Pix2PixUNet(),
            'nafnet_sidd_32': NAFNet(width=32, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2]),
            'nafnet_gopro_64': NAFNet(width=64, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28],
                                      dec_blk_nums=[1, 1, 1, 1]),
        }
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    # NAFNet: the official nets count 29.16M and 67.89M (the paper rounds to 29.1M and 67.9M).
    assert counts == {'hinet': 88_669_702, 'hinet_depth4': 22_070_790, 'unet_256': 54_413_955,
                      'nafnet_sidd_32': 29_159_715, 'nafnet_gopro_64': 67_888_835}


def test_pix2pix_output_is_tanh_bounded_and_saturates():
    torch.manual_seed(0)
    net = Pix2PixUNet(num_downs=5, num_feat=4, norm='instance').eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 32, 32) * 1e4)
    assert out.shape == (1, 3, 32, 32)
    assert out.abs().max() <= 1
    assert out.abs().max() > 0.99  # would be unbounded without the final Tanh


@pytest.mark.parametrize('num_layers, side', [(3, 30), (4, 14)])
def test_patchgan_returns_one_logit_map_per_image(num_layers, side):
    torch.manual_seed(0)
    net = PatchGANDiscriminator(num_feat=4, num_layers=num_layers).eval()
    with torch.no_grad():
        net.model[-1].bias.fill_(-10.0)
        logits = net(torch.rand(2, 6, 256, 256))
    assert logits.shape == (2, 1, side, side)
    assert logits.max() < 0  # raw scores: a sigmoid probability could never be negative


def test_size_multiples_and_padded_input_shapes():
    hinet = HINet(wf=4, depth=3)
    unet = Pix2PixUNet(num_downs=5, num_feat=2)
    nafnet = NAFNet(width=4, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    assert hinet.size_multiple == 8 and unet.size_multiple == 32 and nafnet.size_multiple == 4
    with torch.no_grad():
        # NAFNet pads inside forward, as officially: any size works and comes back unchanged in shape.
        assert nafnet(torch.rand(1, 3, 13, 7)).shape == (1, 3, 13, 7)
        # HINet strictly needs 2**(depth-1): 12 = 3 * 4 works although it is not a multiple of 8.
        assert [out.shape for out in hinet(torch.rand(1, 3, 12, 16))] == [(1, 3, 12, 16)] * 2
        assert unet(torch.rand(1, 3, 64, 96)).shape == (1, 3, 64, 96)


def test_sizes_the_nets_cannot_take_fail_with_a_readable_error():
    with pytest.raises(ValueError, match=r'divisible by 4, got 18x16'):
        HINet(wf=4, depth=3)(torch.rand(1, 3, 18, 16))
    with pytest.raises(ValueError, match=r'size_multiple=32, got 32x48'):
        Pix2PixUNet(num_downs=5, num_feat=2)(torch.rand(1, 3, 32, 48))


def test_nafnet_levels_must_pair_up():
    with pytest.raises(ValueError, match=r'enc_blk_nums \[1, 1\] and dec_blk_nums \[1\] need one entry per level'):
        NAFNet(enc_blk_nums=[1, 1], dec_blk_nums=[1])


@pytest.mark.parametrize('arch', [Pix2PixUNet, PatchGANDiscriminator])
def test_unknown_norm_is_rejected(arch):
    with pytest.raises(ValueError, match=r"norm must be one of batch, instance, none, got 'group'"):
        arch(norm='group')


def last_output(net, x):
    out = net(x)
    return out[-1] if isinstance(out, list) else out


def test_nets_train_a_step_without_inplace_autograd_errors():
    """One optimiser step through every net: the backward pass must work and change the eval output."""
    torch.manual_seed(0)
    cases = [
        (HINet(wf=4, depth=3), torch.rand(2, 3, 16, 16), (2, 3, 16, 16)),
        (HINet(in_chn=1, wf=4, depth=2), torch.rand(2, 1, 8, 8), (2, 1, 8, 8)),
        (Pix2PixUNet(num_downs=6, num_feat=2, use_dropout=True), torch.rand(2, 3, 64, 64), (2, 3, 64, 64)),
        (PatchGANDiscriminator(num_feat=4), torch.rand(2, 6, 32, 32), (2, 1, 2, 2)),
        (NAFNet(width=4, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]), torch.rand(2, 3, 12, 12), (2, 3, 12, 12)),
    ]
    for net, x, out_shape in cases:
        with torch.no_grad():
            before = last_output(net.eval(), x)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        last_output(net.train(), x).square().mean().backward()
        optimizer.step()
        with torch.no_grad():
            after = last_output(net.eval(), x)
        assert after.shape == out_shape
        assert not torch.equal(before, after)


def test_hinet_in_place_inference_gives_the_training_path_outputs_bit_for_bit():
    """Without autograd HINet writes its HIN halves, activations and sums in place (fewer full-size maps on big
    tiles): the outputs must be exactly those of the autograd path, whose backward still works."""
    torch.manual_seed(0)
    net = HINet(wf=8, depth=3).eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        in_place = net(x)
    with torch.no_grad():
        no_grad = net(x.contiguous(memory_format=torch.channels_last))
    trained = net(x.clone().requires_grad_())
    sum(out.sum() for out in trained).backward()
    assert all(param.grad is not None for param in net.parameters())
    for fast, channels_last, reference in zip(in_place, no_grad, trained):
        assert torch.equal(fast, reference.detach()) and torch.allclose(channels_last, reference, atol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):  # val.precision bf16: same dtypes and bits as well
        with torch.inference_mode():
            in_place = net(x)
        trained = net(x.clone().requires_grad_())
    for fast, reference in zip(in_place, trained):  # residual on the float32 input: float32 (as the official net)
        assert fast.dtype == reference.dtype == torch.float32 and torch.equal(fast, reference.detach())
