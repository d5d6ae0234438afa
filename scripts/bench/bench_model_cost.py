"""Parameters and multiply-accumulates (MACs) of the flare_sr archs, at patch size and at full frame.

MACs are counted by forward hooks on every Conv2d / ConvTranspose2d / Linear (and the two matrix products of
Uformer's window attention) while the net runs on the meta device: shapes propagate but nothing is computed, so a
full 2448x3264 frame costs no time or memory.
Bias additions, norms and activations are not counted (the usual convention of thop/ptflops-style MAC
counts). Inputs are padded up to the arch's ``size_multiple``, as tiled_forward does.
``--time`` additionally times a real forward pass at the first size on ``--device``.

Example:
    python scripts/bench/bench_model_cost.py
    python scripts/bench/bench_model_cost.py --size 512x512 --time --device cuda
"""
import argparse
import inspect
import math
import time

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import torch
from _common import machine_name, parse_size, size_text
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from flare_sr.errors import ArgumentParser, exit_on_user_error

CONFIGS = [
    ('HINet default', {'type': 'HINet'}),
    ('HINet depth 4 (original solution)', {'type': 'HINet', 'wf': 64, 'depth': 4}),
    ('Pix2PixUNet unet_256', {'type': 'Pix2PixUNet', 'num_downs': 8, 'num_feat': 64}),
    ('PatchGAN num_layers 4', {'type': 'PatchGANDiscriminator', 'num_layers': 4}),
    ('NAFNet width 32 (SIDD)', {'type': 'NAFNet', 'width': 32, 'middle_blk_num': 12, 'enc_blk_nums': [2, 2, 4, 8],
                                'dec_blk_nums': [2, 2, 2, 2]}),
    ('NAFNet width 64 (GoPro)', {'type': 'NAFNet', 'width': 64, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1, 1, 28],
                                 'dec_blk_nums': [1, 1, 1, 1]}),
    ('HINet tiny (wf 16, depth 3)', {'type': 'HINet', 'wf': 16, 'depth': 3}),
    ('Pix2PixUNet tiny (num_feat 16, downs 5)', {'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 16}),
    ('NAFNet tiny (width 16, [1, 1, 1])', {'type': 'NAFNet', 'width': 16, 'middle_blk_num': 1,
                                           'enc_blk_nums': [1, 1, 1], 'dec_blk_nums': [1, 1, 1]}),
    ('Uformer Flare7K++ (img_size 512, 6 ch)', {'type': 'Uformer', 'img_size': 512, 'output_ch': 6}),
]


def conv_macs(module, inputs, output):
    """MACs of one layer call: every output element of a conv sums (in/groups)*k*k products; a transposed
    conv scatters every input element into (out/groups)*k*k outputs."""
    if isinstance(module, nn.ConvTranspose2d):
        return inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.Conv2d):
        return output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return module.attention_macs(inputs[0])  # Uformer's window attention: its two matrix products


def count_macs(net, input_shape):
    """Total MACs of ``net`` on one input of ``input_shape``; build ``net`` on the meta device for free runs."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += conv_macs(module, inputs, output)

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)  # ConvTranspose2d is no Conv2d subclass
    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, counted) or hasattr(m, 'attention_macs')]
    try:
        with torch.no_grad():
            net(torch.empty(input_shape, device=next(net.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return total


def padded(size, multiple):
    return tuple(math.ceil(side / multiple) * multiple for side in size)


def input_channels(opt):
    """Image channels the arch expects: its in_chn/num_in_ch/img_channel/img_ch option, else the constructor default."""
    params = inspect.signature(ARCH_REGISTRY.get(opt['type'])).parameters
    name = next(name for name in ('in_chn', 'num_in_ch', 'img_channel', 'img_ch') if name in params)
    return opt.get(name, params[name].default)


def time_forward(opt, size, device, repeats=3):
    """Median seconds of an eval forward pass on real random weights (one warm-up run first)."""
    net = build_network(opt).to(device).eval()
    shape = (1, input_channels(opt), *padded(size, getattr(net, 'size_multiple', 1)))
    x = torch.rand(shape, device=device)
    timings = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            net(x)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
    return sorted(timings[1:])[repeats // 2]


@exit_on_user_error
def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=size_text, action='append',
                        help='input HxW; repeatable (default: 256x256 and 2448x3264)')
    parser.add_argument('--time', action='store_true', help='also time a real forward pass at the first size')
    parser.add_argument('--device', default='cpu', help='device for --time (cpu, cuda)')
    args = parser.parse_args()
    sizes = [parse_size(text) for text in args.size or ['256x256', '2448x3264']]

    header = ['arch', 'params (M)'] + [f'GMACs {h}x{w}' for h, w in sizes]
    if args.time:
        header.append(f'time {sizes[0][0]}x{sizes[0][1]} {args.device} (s)')
    rows = []
    for label, opt in CONFIGS:
        with torch.device('meta'):
            net = build_network(opt).eval()
        multiple = getattr(net, 'size_multiple', 1)
        row = [label, f'{sum(p.numel() for p in net.parameters()) / 1e6:.2f}']
        for size in sizes:
            run_size = padded(size, multiple)
            macs = count_macs(net, (1, input_channels(opt), *run_size)) / 1e9
            row.append(f'{macs:.2f}' + ('' if run_size == size else f' (padded {run_size[0]}x{run_size[1]})'))
        if args.time:
            row.append(f'{time_forward(opt, sizes[0], args.device):.3f}')
        rows.append(row)

    print(f'Model cost - {machine_name(args.device)}')
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in [header, ['-' * width for width in widths], *rows]:
        print(' | '.join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    print(f'{len(rows)} archs, {len(sizes)} sizes; MACs from conv/linear hooks on the meta device '
          '(bias, norm and activation costs excluded)')


if __name__ == '__main__':
    main()
