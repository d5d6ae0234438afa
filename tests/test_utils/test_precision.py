"""val.precision / --precision: auto is bf16 only where native, and tiles still blend in float32."""
import copy
import sys

import pytest
import torch
from basicsr.models import build_model

from flare_sr.errors import FlareSRError
from flare_sr.utils import precision as precision_module
from flare_sr.utils.options_check import OptionChecker
from flare_sr.utils.precision import resolve_precision
from flare_sr.utils.tiling import tiled_forward
from tests.helpers import cascade_checkpoints, cascade_option_file, cascade_options


def _cpu_reports(monkeypatch, *flags):
    monkeypatch.setattr(precision_module, 'cpu_flags', lambda: frozenset(('avx2', 'fma', *flags)))


def test_auto_is_fp32_without_native_bf16_and_bf16_with_it(monkeypatch):
    _cpu_reports(monkeypatch)  # e.g. AMD Zen 3, Intel Ice Lake: bf16 would be emulated
    assert resolve_precision('auto', 'cpu') == 'fp32'
    assert precision_module.cpu_bf16_support() is None
    _cpu_reports(monkeypatch, 'avx512f', 'avx512_bf16')  # Cooper Lake, Zen 4
    assert resolve_precision('auto', 'cpu') == 'bf16'
    _cpu_reports(monkeypatch, 'amx_tile', 'amx_bf16')  # Sapphire Rapids
    assert resolve_precision('auto', 'cpu') == 'bf16'
    assert precision_module.cpu_bf16_support() == 'AMX-BF16'


def test_explicit_choices_and_bad_values(monkeypatch):
    _cpu_reports(monkeypatch)
    assert resolve_precision(None, 'cpu') == 'fp32'
    assert resolve_precision('BF16', 'cpu') == 'bf16'  # forced: runs (emulated) even without native support
    assert resolve_precision('fp16', 'cpu') == 'bf16'  # fp16 is a GPU format; the CPU gets bf16 as train.amp does
    with pytest.raises(FlareSRError, match="'fp8' is not one of fp32, bf16, fp16, auto"):
        resolve_precision('fp8', 'cpu')
    ok = [p for p in OptionChecker(is_train=False).check({'val': {'precision': 'auto'}}) if p.startswith('val')]
    assert ok == []
    problems = [p for p in OptionChecker(is_train=False).check({'val': {'precision': 'half'}}) if p.startswith('val')]
    assert len(problems) == 1 and problems[0].startswith('val.precision'), problems


def test_forced_bf16_runs_the_net_in_bf16_but_accumulates_in_fp32():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1).eval()
    seen = []

    def net_fn(tiles):
        out = conv(tiles)
        seen.append(out.dtype)
        return out

    image = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1))
    reference = tiled_forward(net_fn, image, tile_size=32, overlap=8, precision='fp32')
    assert set(seen) == {torch.float32}
    seen.clear()
    out = tiled_forward(net_fn, image, tile_size=32, overlap=8, precision='bf16')
    assert set(seen) == {torch.bfloat16}  # the convolutions really ran in bf16 (autocast)
    assert out.dtype == torch.float32
    error = (out - reference).abs()
    assert 0 < error.max() < 0.03  # bf16 rounding of each tile (8-bit mantissa), nothing from the blend
    # The same bf16 tiles blended by hand in float32 (net in bf16, output cast up before the blend):
    # equal to float32 precision. Accumulating in bf16 would round every weighted sum to 8 bits (~4e-3).
    conv_bf16 = copy.deepcopy(conv).bfloat16()
    with torch.inference_mode():
        blended_in_fp32 = tiled_forward(lambda t: conv_bf16(t.bfloat16()).float(), image, 32, 8)
    assert torch.allclose(out, blended_in_fp32, atol=1e-6)


def test_model_reads_val_precision_and_test_py_flag(tmp_path, monkeypatch):
    _cpu_reports(monkeypatch)
    _, _, paths = cascade_checkpoints(tmp_path)
    lq = torch.rand(1, 3, 90, 150, generator=torch.Generator().manual_seed(3))
    fp32 = build_model(cascade_options(paths))
    assert fp32.tile_options()['precision'] == 'fp32'
    auto = build_model(cascade_options(paths, val=dict(tile=dict(size=96, overlap=16), precision='auto')))
    assert auto.tile_options()['precision'] == 'fp32'  # no native bf16 reported
    bf16 = build_model(cascade_options(paths, val=dict(tile=dict(size=96, overlap=16), precision='bf16')))
    out32, out16 = fp32.predict(lq), bf16.predict(lq)
    assert out16.dtype == torch.float32 and 0 < (out16 - out32).abs().mean() < 0.02


def test_test_py_precision_flag_overrides_val_precision(tmp_path, monkeypatch):
    """test.py's ``--precision`` is an argument of BasicSR's parser (basicsr_fixes.TestArgumentParser): it wins over
    val.precision, also over one set by --force_yml."""
    import basicsr.test

    from flare_sr import basicsr_fixes

    basicsr_fixes.apply()
    path = cascade_option_file(tmp_path)
    for extra, expected in (([], 'fp32'), (['--precision', 'bf16'], 'bf16'),
                            (['--force_yml', 'val:precision=fp16', '--precision=auto'], 'auto')):
        monkeypatch.setattr(sys, 'argv', ['test.py', '-opt', path, *extra])
        opt, _ = basicsr.test.parse_options(str(tmp_path), is_train=False)
        assert opt['val'].get('precision', 'fp32') == expected, extra


def test_an_option_file_from_a_gpu_server_infers_on_the_cpu(capsys):
    """num_gpu: 8 (BasicSR's templates) without a GPU: one warning, then the model runs on the CPU."""
    import torch

    from flare_sr.pipeline.inference import build_test_model
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    opt = {'name': 'gpu_server', 'model_type': 'HINetModel', 'num_gpu': 8,
           'network_g': {'type': 'HINet', 'wf': 4, 'depth': 2}, 'path': {}, 'val': {}}
    model = build_test_model(opt, 'server.yml')
    assert model.device.type == 'cpu'
    assert 'warning: num_gpu: 8, but no GPU is visible' in capsys.readouterr().err
    assert model.predict(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
