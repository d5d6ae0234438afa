"""Uformer: the Flare7K/Flare7K++ network's keys, shapes and outputs (stored official references), strict loading of a
Flare7K++-shaped checkpoint, any frame size (padding, tiling), the img_size window line, training, bf16 and ONNX.

The references in ``tests/data/uformer_*.pt`` hold a config, inputs and the official outputs; the weights are not
stored but filled by :func:`seeded_fill`, a function of the seed and the state_dict order, which the official net got
from the same function (provenance: tests/data/README.md).
"""
import json
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from flare_sr.archs.uformer_arch import Uformer, level_windows, relative_position_index
from flare_sr.utils.checkpoint import load_checked_state_dict
from flare_sr.utils.tiling import pad_to_multiple, tiled_forward
from tests.helpers import DATA_DIR, basicsr_log

REFERENCES = sorted(name for name in os.listdir(DATA_DIR) if name.startswith('uformer_') and name.endswith('.pt'))
# embed_dim 2 gives the squeeze-excitation layers of the low levels zero width (as the original builds them).
pytestmark = pytest.mark.filterwarnings('ignore:Initializing zero-element tensors')


def seeded_fill(net):
    """Every weight a function of the seed and the state_dict order (identical key lists give identical weights):
    N(0, 1/fan_in) for matrices and kernels, 1 + 0.2 N for norm weights, 0.05 N for biases, 0.5 N for the relative
    position bias tables; the relative_position_index buffers are left as built. Returns the sum of all weights."""
    gen = torch.Generator().manual_seed(1)
    total = 0.0
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith('relative_position_index') or tensor.numel() == 0:
                continue
            noise = torch.randn(tensor.shape, generator=gen, dtype=torch.float64)
            if name.endswith('relative_position_bias_table'):
                value = 0.5 * noise
            elif 'norm' in name:
                value = (1.0 if name.endswith('weight') else 0.0) + 0.2 * noise
            elif tensor.dim() == 1:
                value = 0.05 * noise
            else:
                value = noise / tensor[0].numel()**0.5
            tensor.copy_(value.float())
            total += tensor.double().sum().item()
    return total


def reference(name):
    record = torch.load(os.path.join(DATA_DIR, name), weights_only=True)
    net = Uformer(**record['config']).eval()
    assert seeded_fill(net) == pytest.approx(record['weight_sum'], rel=1e-12)
    return net, record


def small_net(**config):
    """A tiny 6-channel build with seeded weights: img_size 32 and win 2 give the default's layout (no shift in the
    bottleneck, as img_size 128 with win 8); img_size 64 shifts at every level, as Flare7K++'s 512."""
    net = Uformer(**{'img_size': 32, 'output_ch': 6, 'embed_dim': 2, 'win_size': 2, **config})
    seeded_fill(net)
    return net.eval()


def official_keys():
    with open(os.path.join(DATA_DIR, 'uformer_official_keys.json')) as handle:
        return json.load(handle)


def test_registered_and_built_from_a_flare7k_option_block():
    assert ARCH_REGISTRY.get('Uformer') is Uformer
    # Flare7K++'s network_g, multi_stage included (the original's **kwargs swallow it, and so does this one).
    with torch.device('meta'):
        net = build_network({'type': 'Uformer', 'img_size': 512, 'img_ch': 3, 'output_ch': 6, 'multi_stage': 1})
    assert isinstance(net, Uformer) and net.size_multiple == 128
    assert net.windows == [(8, 4)] * 5  # every level shifts at 512
    assert level_windows(128, 8)[-1] == (8, 0) and level_windows(64, 8)[-1] == (4, 0)


def test_references_cover_layouts_projections_and_channels():
    configs = [torch.load(os.path.join(DATA_DIR, name), weights_only=True)['config'] for name in REFERENCES]
    assert {config.get('output_ch', 3) for config in configs} == {3, 6}
    assert {config.get('token_projection', 'linear') for config in configs} == {'linear', 'conv', 'linear_concat'}
    assert {config.get('token_mlp', 'ffn') for config in configs} == {'ffn', 'leff'}
    layouts = {tuple(Uformer(**config).windows[-1]) for config in configs}
    assert layouts == {(2, 1), (2, 0)}  # the bottleneck shifted (Flare7K++'s layout) and not (the default's)
    assert any(window < config['win_size'] for config in configs
               for window, _ in level_windows(config['img_size'], config['win_size']))  # shrunk windows


@pytest.mark.parametrize('name', REFERENCES)
def test_outputs_equal_the_official_implementation(name):
    """Square inputs against ykdai/Flare7K's Uformer, non-square ones against FlareReal600's variant (same keys)."""
    net, record = reference(name)
    # In float64, the same on every CPU. The tiny nets (embed_dim 2) amplify float32's last bits: the official float32
    # outputs lie up to 1.8e-4 from the float64 ones, and a float32 run on an AMD EPYC 2.4e-4 from the Intel Xeon's
    # that made them. A 1 % change of one relative-position-bias table moves the output by 2.7e-3 or more.
    net = net.double()
    for x, expected, source in zip(record['inputs'], record['outputs'], record['sources']):
        with torch.no_grad():
            torch.testing.assert_close(net(x.double()), expected.double(), atol=5e-4, rtol=0,
                                       msg=f'{source} {tuple(x.shape)}')


@pytest.mark.parametrize('variant', ['Uformer_flare7kpp', 'Uformer_default'])
def test_full_size_state_dict_keys_and_shapes_match_official(variant):
    expected = official_keys()[variant]
    with torch.device('meta'):
        net = build_network({'type': 'Uformer', **expected['config']})
    ours = {key: list(tensor.shape) for key, tensor in net.state_dict().items()}
    assert list(ours) == list(expected['keys'])  # the order too
    assert ours == expected['keys']
    assert sum(p.numel() for p in net.parameters()) == expected['params']
    if variant == 'Uformer_flare7kpp':
        assert len(ours) == 308 and expected['params'] == 20_473_888
        assert 'dowsample_0.conv.0.weight' in ours and 'conv.blocks.1.attn.relative_position_index' in ours


@pytest.fixture(scope='module')
def flare7kpp_checkpoint(tmp_path_factory):
    """A checkpoint shaped as the Flare7K++ release (from the official key list), with ``params_ema`` and ``params``."""
    gen = torch.Generator().manual_seed(3)
    checkpoint = {'params': {}, 'params_ema': {}}
    for key, shape in official_keys()['Uformer_flare7kpp']['keys'].items():
        for entry in checkpoint:
            if key.endswith('relative_position_index'):
                checkpoint[entry][key] = relative_position_index(8)
            else:
                checkpoint[entry][key] = torch.randn(shape, generator=gen)
    path = tmp_path_factory.mktemp('flare7kpp') / 'net_g_last.pth'
    torch.save(checkpoint, path)
    return path, checkpoint


def test_a_flare7kpp_checkpoint_loads_strictly_ema_first(flare7kpp_checkpoint, tmp_path):
    """As Flare7K's test.py: ``params_ema`` when the file has it (flare_sr's param_key), else ``params``."""
    path, checkpoint = flare7kpp_checkpoint
    with torch.device('meta'):
        net = Uformer(img_size=512, img_ch=3, output_ch=6, multi_stage=1)
    state_dict = load_checked_state_dict(net, str(path), 'path.pretrain_network_g', strict=True, param_key='params_ema')
    net.load_state_dict(state_dict, strict=True, assign=True)
    assert torch.equal(net.conv.blocks[1].attn.relative_position_bias_table,
                       checkpoint['params_ema']['conv.blocks.1.attn.relative_position_bias_table'])
    torch.save({'params': checkpoint['params']}, tmp_path / 'plain.pth')
    state_dict = load_checked_state_dict(net, str(tmp_path / 'plain.pth'), 'path.pretrain_network_g', True,
                                         'params_ema')
    assert torch.equal(state_dict['output_proj.proj.0.weight'], checkpoint['params']['output_proj.proj.0.weight'])


def test_a_checkpoint_with_other_windows_names_the_bias_tables(flare7kpp_checkpoint):
    """A build whose img_size shrinks the bottleneck's windows (64: 4x4) cannot take the 512 build's tables; a build
    that only drops a shift (128) takes them silently, which is why forward warns (next tests)."""
    from flare_sr.errors import FlareSRError
    path, _ = flare7kpp_checkpoint
    with torch.device('meta'):
        small_windows = Uformer(img_size=64, output_ch=6)
        no_shift = Uformer(img_size=128, output_ch=6)
    with pytest.raises(FlareSRError, match=r'relative_position_bias_table: 225x16 in the file, 49x16 in the network'):
        load_checked_state_dict(small_windows, str(path), 'path.pretrain_network_g', True, 'params_ema')
    load_checked_state_dict(no_shift, str(path), 'path.pretrain_network_g', True, 'params_ema')


def test_any_frame_size_is_reflect_padded_and_cropped():
    net = small_net()
    assert net.size_multiple == 32
    x = torch.rand(1, 3, 21, 50, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = net(x)
        padded = net(pad_to_multiple(x, 32))
    assert out.shape == (1, 6, 21, 50) and padded.shape == (1, 6, 32, 64)
    torch.testing.assert_close(out, padded[..., :21, :50], atol=0, rtol=0)
    assert 0 <= out.min() and out.max() <= 1  # the sigmoid


def test_non_square_frames_in_a_batch_are_independent():
    """Each frame of a batch of 32x64 frames gets its own result (windows never mix images), and a frame is not
    its halves run apart (attention and convs cross the middle)."""
    net = small_net()
    gen = torch.Generator().manual_seed(5)
    frames = torch.rand(2, 3, 32, 64, generator=gen)
    with torch.no_grad():
        batch = net(frames)
        single = net(frames[1:])
        left = net(frames[:1, :, :, :32])
    # (batched matmuls round differently, and the seeded net amplifies it; a leak between frames would be ~0.1)
    torch.testing.assert_close(batch[1:], single, atol=1e-3, rtol=0)
    assert not torch.allclose(batch[:1, :, :, :32], left, atol=1e-3)


def test_tiled_forward_runs_any_frame_on_the_size_multiple_grid():
    net = small_net(output_ch=3, img_size=64)
    frame = torch.rand(1, 3, 40, 150, generator=torch.Generator().manual_seed(6))
    tiled = tiled_forward(net, frame, tile_size=64, overlap=16, multiple=net.size_multiple)  # 64x64 tiles: 1x3
    assert tiled.shape == (1, 3, 40, 150)
    assert 0 <= tiled.min() and tiled.max() <= 1 and tiled.std() > 0.05


def test_inputs_that_imply_other_windows_than_img_size_warn_once_per_size():
    net = small_net(img_size=64)  # shifted windows at every level, as Flare7K++ (512, win 8)
    assert net.window_mismatch(64, 96) is None and net.window_mismatch(128, 128) is None
    line = net.window_mismatch(32, 64)
    assert line == ('Uformer: this 32x64 input has 2 px at level 4, where img_size 64 fixed 2x2 windows shifted by 1 '
                    'and a build for the input\'s size would use 2x2 windows without shift: outputs differ from that '
                    'build; inputs (or val.tile.size tiles) of 64 px or more per side keep the build\'s')
    x = torch.rand(1, 3, 32, 64)
    with basicsr_log() as said, torch.no_grad():
        net(x)
        net(x)
        net(torch.rand(1, 3, 64, 64))
    assert said == [line]
    # And the outputs really differ: the same weights in a build for 32 px (no shift in the bottleneck).
    for_32 = Uformer(img_size=32, output_ch=6, embed_dim=2, win_size=2).eval()
    for_32.load_state_dict(net.state_dict(), strict=True)
    with torch.no_grad():
        assert not torch.allclose(for_32(x), net(x), atol=1e-4)
    # A build that keeps the bottleneck unshifted (the default's layout) warns the other way round.
    assert 'fixed 2x2 windows without shift' in for_32.window_mismatch(64, 64)


@pytest.mark.parametrize('arguments, message', [
    ({'token_projection': 'lineer'}, "token_projection must be one of linear, conv, linear_concat, got 'lineer'"),
    ({'token_mlp': 'fastleff'}, "token_mlp must be one of ffn, leff, got 'fastleff'"),
    ({'token_projection': 'conv', 'qkv_bias': False}, 'passes qkv_bias to its convs as their dilation'),
    ({'depths': [2] * 8}, r'need 9 entries each'),
    ({'num_heads': [3] * 9}, r'num_heads\[0\] = 3 does not divide that level\'s 32 channels'),
    ({'img_size': 8}, r'img_size 8 leaves the bottleneck no pixel'),
    ({'depths': [1, 1, 1, 1, 2, 2, 2, 2, 2]}, r'decoder levels \(last four\) have more blocks'),
])
def test_arguments_the_original_would_misread_are_one_line_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        with torch.device('meta'):
            Uformer(**arguments)


def test_trains_with_drop_path_and_gradient_checkpointing():
    """One step with every dropout on; checkpointing gives the plain backward's gradients (no dropout there)."""
    torch.manual_seed(0)
    config = {'output_ch': 3}
    net = small_net(drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.2, **config).train()
    x = torch.rand(1, 3, 32, 32)
    before = net.eval()(x).detach()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    net.train()(x).square().mean().backward()
    optimizer.step()
    assert not torch.allclose(net.eval()(x), before)
    plain = small_net(drop_path_rate=0, **config)
    checkpointed = small_net(drop_path_rate=0, use_checkpoint=True, **config)
    for model in (plain, checkpointed):
        model.train()(x).square().mean().backward()
    for (key, grad), other in zip(((k, p.grad) for k, p in plain.named_parameters()), checkpointed.parameters()):
        torch.testing.assert_close(other.grad, grad, atol=1e-6, rtol=1e-5, msg=key)


def test_bf16_autocast_stays_close_to_fp32():
    net = small_net()
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        full = net(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            half = net(x)
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().mean() < 0.02


def test_onnx_export_keeps_height_and_width_dynamic(tmp_path):
    """Exported as flare_sr's export_onnx does (TorchScript exporter, opset OPSET), traced at 64x64 and run by ONNX
    Runtime at 64x96: window partitions and shifted-window masks follow the input's size inside the graph."""
    pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    from flare_sr.models.onnx_backend import OPSET
    net = small_net(img_size=64)  # shifted windows at every level: the masks are in the graph
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    with torch.no_grad():
        torch.onnx.export(net, (torch.rand(1, 3, 64, 64), ), tmp_path / 'uformer.onnx', input_names=['x'],
                          output_names=['y'], dynamic_axes={'x': axes, 'y': axes}, opset_version=OPSET, dynamo=False)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(8))
    session = onnxruntime.InferenceSession(str(tmp_path / 'uformer.onnx'), providers=['CPUExecutionProvider'])
    (ort,) = session.run(None, {'x': x.numpy()})
    with torch.no_grad():
        diff = (torch.from_numpy(ort) - net(x)).abs()
    # ONNX Runtime's kernels round differently (its error at the traced 64x64 size is of the same order).
    assert diff.max() < 1e-3 and diff.mean() < 1e-5


def test_hinet_model_trains_predicts_in_bf16_and_exports_a_uformer(tmp_path):
    """flare_sr's one-network model with network_g Uformer: optimizer steps, the tiled predict in bf16, and the
    tile function through export_onnx with ONNX Runtime giving the PyTorch tiles' result."""
    pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    from flare_sr.models.hinet_model import HINetModel
    from flare_sr.models.onnx_backend import export_onnx
    from tests.helpers import model_options, train_steps
    opt = model_options(tmp_path)
    opt['network_g'] = {'type': 'Uformer', 'img_size': 16, 'embed_dim': 2, 'win_size': 2, 'multi_stage': 1}
    model = HINetModel(opt)
    assert model.size_multiple == 16
    before = {key: value.clone() for key, value in model.net_g.state_dict().items()}
    train_steps(model, 2)  # 16x16 batches: the build's own windows
    assert any(not torch.equal(before[key], value) for key, value in model.net_g.state_dict().items())
    frame = torch.rand(1, 3, 20, 36, generator=torch.Generator().manual_seed(9))
    opt['val'] = {'precision': 'bf16', 'tile': {'size': 32, 'overlap': 8}}
    assert model.predict(frame).shape == (1, 3, 20, 36)
    metadata = export_onnx(model, str(tmp_path / 'uformer.onnx'))
    assert metadata['size_multiple'] == '16'
    session = onnxruntime.InferenceSession(str(tmp_path / 'uformer.onnx'), providers=['CPUExecutionProvider'])
    tiles = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(10))
    (ort,) = session.run(None, {'tiles': tiles.numpy()})
    with torch.no_grad():
        assert (torch.from_numpy(ort) - model.forward_tiles(tiles)).abs().max() < 1e-3


def test_the_option_checker_warns_at_start_up_about_tiles_with_other_windows():
    """Flare7K++'s build (img_size 512) keeps its windows in any tile with an overlap (256 px or more on its 128 grid);
    the default build (128) only in 128 px tiles."""
    from flare_sr.utils.options_check import OptionChecker
    cases = [(512, 512, 16, None), (512, 128, 0, 'this 128x128 input has 8 px at level 4, where img_size 512'),
             (128, 256, 16, 'this 256x256 input has 16 px at level 4, where img_size 128'), (128, 128, 0, None)]
    for img_size, size, overlap, expected in cases:
        checker = OptionChecker(is_train=False)
        checker._built = {}
        opt = {'network_g': {'type': 'Uformer', 'img_size': img_size}}
        checker._tile({'size': size, 'overlap': overlap}, opt, None)
        assert not checker.problems
        assert [line.split(': Uformer: ')[1][:len(expected or '')] for line in checker.warnings] == (
            [expected] if expected else [])
