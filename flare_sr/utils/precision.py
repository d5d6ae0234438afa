"""Inference precision: ``val.precision: fp32 | bf16 | fp16 | auto`` and ``--precision`` of infer.py / test.py.

The networks run under ``torch.autocast`` in the chosen dtype; tiles are blended into float32
accumulators whatever it is (``flare_sr.utils.tiling.tiled_forward``), so only the convolutions
lose precision, never the blend.

``auto`` picks bf16 only where it is native, because emulated bf16 is slower than fp32 and still
loses precision:
- CPU: the kernel reports AMX-BF16 (``amx_bf16``, Intel Sapphire Rapids and later) or AVX512-BF16
  (``avx512_bf16``: Intel Cooper Lake and later, AMD Zen 4 and later) in /proc/cpuinfo;
- GPU: ``torch.cuda.is_bf16_supported()`` (Ampere and later).
Everywhere else ``auto`` is fp32. fp16 is a GPU format: asked for on the CPU it becomes bf16
(as ``train.amp`` does), which the CPU runs natively or emulates.
"""
import contextlib
import functools

import torch

from flare_sr.errors import FlareSRError

PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
NATIVE_BF16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')


@functools.lru_cache(maxsize=1)
def cpu_flags():
    """The CPU feature flags the kernel reports (/proc/cpuinfo ``flags``); empty where it cannot be read."""
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as handle:
            for line in handle:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_support():
    """'AMX-BF16', 'AVX512-BF16' (native) or None (bf16 would be emulated); for logs and bench headers."""
    flags = cpu_flags()
    if 'amx_bf16' in flags:
        return 'AMX-BF16'
    if 'avx512_bf16' in flags:
        return 'AVX512-BF16'
    return None


def resolve_precision(precision, device='cpu'):
    """The concrete precision ('fp32', 'bf16' or 'fp16') for ``precision`` on ``device``.

    Raises FlareSRError for a value outside :data:`PRECISIONS`.
    """
    precision = 'fp32' if precision is None else str(precision).lower()
    if precision not in PRECISIONS:
        raise FlareSRError(f'val.precision / --precision: {precision!r} is not one of {", ".join(PRECISIONS)}')
    device_type = torch.device(device).type
    if precision == 'auto':
        if device_type == 'cuda':
            return 'bf16' if torch.cuda.is_bf16_supported() else 'fp32'
        return 'bf16' if device_type == 'cpu' and cpu_bf16_support() else 'fp32'
    if precision == 'fp16' and device_type == 'cpu':
        return 'bf16'
    return precision


def autocast(precision, device='cpu'):
    """Context for the networks' forward pass at a resolved ``precision`` (a no-op for fp32)."""
    if precision == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision])
