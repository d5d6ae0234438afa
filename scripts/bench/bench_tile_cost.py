"""Per-pixel cost of the cascade's tile function against tile size, memory format and precision.

The question behind it: a few big tiles do the least work (little overlap), but on a CPU a big tile may
cost more per pixel than the sliding window's 512 windows (cache, page faults). If the cost per pixel
stays flat, the work ratio (3.3x with options/test_cascade.yml's tiles on the tiny nets) is the speed-up.

Each configuration times ``CascadeModel.run_networks`` (the function every tile goes through) on one
random tile: best of ``--repeats`` calls after a warm-up, in seconds per megapixel, all in this one
process with the configurations interleaved (so machine load hits them alike). The CPU allocator keeps
freed memory, as infer.py does.

    python scripts/bench/bench_tile_cost.py [--sizes 512x512 1280x1664] [--repeats 3]
"""
import argparse
import copy
import time

import torch
from _common import machine_name, parse_size, print_table, size_text
from bench_inference import ROOT, TINY

from flare_sr.errors import ArgumentParser
from flare_sr.pipeline.inference import build_test_model
from flare_sr.utils.cpu_memory import keep_freed_cpu_memory
from flare_sr.utils.options_check import load_option_file
from flare_sr.utils.precision import autocast

FORMATS = {'NCHW': torch.contiguous_format, 'NHWC (channels_last)': torch.channels_last}


def megapixels(size):
    height, width = parse_size(size)
    return height * width / 1e6


def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', default=TINY, help='cascade option file whose nets are timed (weights do not matter)')
    parser.add_argument('--sizes', type=size_text, nargs='+', default=['512x512', '1280x1664'], help='tile HxW sizes')
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args()
    keep_freed_cpu_memory()
    opt = load_option_file(args.opt)
    opt['path'] = {}
    model = build_test_model(copy.deepcopy(opt), args.opt)  # channels_last nets on the CPU
    configs = [(size, fmt, precision) for size in args.sizes for fmt in FORMATS for precision in args.precisions]
    best = {config: float('inf') for config in configs}
    with torch.inference_mode():
        for repeat in range(args.repeats + 1):  # round 0 is the warm-up
            for size, fmt, precision in configs:
                height, width = parse_size(size)
                for net in model.nets.values():
                    net.to(memory_format=FORMATS[fmt])
                tile = torch.rand(1, 3, height, width).contiguous(memory_format=FORMATS[fmt])
                start = time.perf_counter()
                with autocast(precision, 'cpu'):
                    model.run_networks(tile)
                seconds = time.perf_counter() - start
                if repeat:
                    best[(size, fmt, precision)] = min(best[(size, fmt, precision)], seconds)
    base = best[(args.sizes[0], 'NCHW', args.precisions[0])] / megapixels(args.sizes[0])
    rows = []
    for size, fmt, precision in configs:
        per_mpx = best[(size, fmt, precision)] / megapixels(size)
        rows.append([size, fmt, precision, f'{best[(size, fmt, precision)]:.2f}', f'{per_mpx:.2f}',
                     f'{per_mpx / base:.2f}'])
    print_table(f'Cascade tile function cost per pixel - {machine_name()}',
                ['tile', 'memory format', 'precision', 'time (s)', 's / Mpixel', f'vs {args.sizes[0]} NCHW fp32'],
                rows, [f'nets of {args.opt.replace(ROOT + "/", "")}; best of {args.repeats} calls after a warm-up, '
                       'configurations interleaved'])


if __name__ == '__main__':
    main()
