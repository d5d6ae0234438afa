"""Peak memory of tiled vs whole-frame inference on a 2448x3264 frame (the challenge's test size).

Each mode runs in a fresh subprocess; we report peak RSS growth (ru_maxrss) over the RSS after the
input frame exists, in units of one frame buffer (3x2448x3264 float32 = 91 MiB). Tiled growth must
stay a few frame buffers (padded copy, accumulator, weight sum, output) whatever the network's
width; whole-frame growth scales with the network's activations.
Usage: python scripts/bench/tiling_memory.py [--width 32] [--tile 512]
"""
import argparse
import json
import resource
import subprocess
import sys

from _common import machine_name

from flare_sr.errors import ArgumentParser

HEIGHT, WIDTH = 2448, 3264


def measure(mode, width, tile):
    import torch
    from torch import nn

    import flare_sr  # noqa: F401
    from flare_sr.utils.tiling import tiled_forward
    torch.set_num_threads(2)
    net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(width, 3, 3, padding=1)).eval()
    image = torch.rand(1, 3, HEIGHT, WIDTH)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = tiled_forward(net, image, None if mode == 'whole' else tile, 32, multiple=16)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.shape == image.shape
    return (peak - base) * 1024  # ru_maxrss is KiB on Linux


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=32, help='channels of the cheap 3-conv test net')
    parser.add_argument('--tile', type=int, default=512)
    parser.add_argument('--child', choices=['tiled', 'whole'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.width, args.tile)))
        return
    frame = 3 * HEIGHT * WIDTH * 4
    print(f'Tiled vs whole-frame peak memory - {machine_name()}')
    print(f'frame {HEIGHT}x{WIDTH}, one float32 image buffer = {frame / 2**20:.0f} MiB, net width {args.width}')
    for mode in ('tiled', 'whole'):
        result = subprocess.run([sys.executable, __file__, '--child', mode, '--width', str(args.width),
                                 '--tile', str(args.tile)], capture_output=True, text=True, check=True)
        growth = json.loads(result.stdout.strip().splitlines()[-1])
        label = f'tiled (tile {args.tile})' if mode == 'tiled' else 'whole frame'
        print(f'{label:>18}: peak RSS growth {growth / 2**20:7.0f} MiB = {growth / frame:5.1f} frame buffers')


if __name__ == '__main__':
    main()
