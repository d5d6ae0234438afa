"""Full-resolution cascade inference (Pix2Pix U-Net -> HINet) on a 2448x3264 frame: ours vs the original method.

Methods, all computed in the same run on the same frame and weights:
  ours      flare_sr.utils.tiling.tiled_forward: each tile through both stages at full resolution,
            blended with a smooth window; the tile size is chosen to minimise the overlap overhead
            under ``--max-tile`` (or fixed with ``--tile``).
  original  the challenge solution: Pix2Pix on 512 windows at stride 256 (last window flush with the
            border) averaged uniformly, then the whole frame down to half size (1224x1632), HINet
            there, and bicubic upsampling back to full size.
  sliding   full-resolution sliding window at stride = patch/2, both stages per window, averaged
            uniformly (the issue's 3x target baseline).
Each method's time and peak memory come from a fresh subprocess (CPU: peak RSS from ru_maxrss, minus
the RSS before the method ran; GPU: torch.cuda.max_memory_allocated). "Pixels / padded frame" is the
pixels every net processed over the pixels of one pass over the frame padded to the nets' multiple; the
archs are fully convolutional, so it is also their MAC ratio (GMACs are counted on the meta device).
PSNR: on the demo test set (challenge metric: 8-bit, per image, averaged), with ``--main-ckpt`` and
``--post-ckpt`` (random weights otherwise, which only shows the methods run). On the demo's small
images the original's window keeps the same fraction of the frame (512/2448 of the height).

Archs: ``--arch tiny`` (default; options/tiny/*.yml when present, else Pix2PixUNet ngf 16 / 5 downs and
HINet wf 16 / depth 3) keeps the 8-megapixel CPU run to minutes; ``--arch full`` is the challenge
size (unet_256 ngf 64, HINet wf 64 depth 4), for a GPU.

Examples:
    python scripts/bench/bench_inference.py
    python scripts/bench/bench_inference.py --arch full --device cuda --main-ckpt M.pth --post-ckpt P.pth
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys

import flare_sr  # noqa: F401  (first: torchvision alias and registrations)
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from basicsr.archs import build_network

from _common import (machine_name, natural_pair, parse_size, peak_rss_mib, print_table,
                     run_child, timed)
from bench_model_cost import count_macs
from flare_sr.data.image_io import pair_paths, read_image
from flare_sr.data.patches import patch_grid
from flare_sr.models.main_net import is_residual, restore_image
from flare_sr.utils.cpu_memory import keep_freed_cpu_memory
from flare_sr.utils.tiling import TileLayout, pad_to_multiple, tiled_forward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORIGINAL_PATCH, ORIGINAL_HEIGHT = 512, 2448
METHODS = ('ours', 'original', 'sliding')
FULL_ARCHS = ({'type': 'Pix2PixUNet', 'num_downs': 8, 'ngf': 64, 'norm': 'batch'},
              {'type': 'HINet', 'wf': 64, 'depth': 4})
TINY_FALLBACK = ({'type': 'Pix2PixUNet', 'num_downs': 5, 'ngf': 16, 'norm': 'batch'},
                 {'type': 'HINet', 'wf': 16, 'depth': 3})


def tiny_archs():
    """network_g of options/tiny/*pix2pix*.yml and *hinet*.yml when the team's tiny configs exist."""
    found = []
    for pattern, fallback in zip(('*pix2pix*.yml', '*hinet*.yml'), TINY_FALLBACK):
        paths = sorted(glob.glob(os.path.join(ROOT, 'options', 'tiny', pattern)))
        if paths:
            with open(paths[0], encoding='utf-8') as handle:
                found.append((yaml.safe_load(handle)['network_g'], os.path.relpath(paths[0], ROOT)))
        else:
            found.append((fallback, 'built-in'))
    return found


def arch_options(arch):
    return tiny_archs() if arch == 'tiny' else [(opt, 'full size') for opt in FULL_ARCHS]


def main_residual(args):
    """Whether the main net is residual: ``--main-residual``, else what options/tiny/pix2pix.yml says for tiny archs."""
    if args.main_residual != 'auto':
        return args.main_residual == 'true'
    if args.arch != 'tiny':
        return False
    with open(os.path.join(ROOT, 'options', 'tiny', 'pix2pix.yml'), encoding='utf-8') as handle:
        return is_residual(yaml.safe_load(handle))


def load_nets(args):
    """(main, post) in eval mode on the device; checkpoints hold the weights under ``params`` (BasicSR)."""
    torch.manual_seed(0)
    nets = []
    for (opt, _), ckpt in zip(arch_options(args.arch), (args.main_ckpt, args.post_ckpt)):
        net = build_network(dict(opt))
        if ckpt:
            state = torch.load(ckpt, map_location='cpu', weights_only=True)
            net.load_state_dict(state.get('params', state), strict=True)
        nets.append(net.to(args.device).eval())
    return nets


class Cascade:
    """The three methods over one (main, post) pair; every call takes and returns a 1x3xHxW CPU tensor."""

    def __init__(self, main, post, device, batch, residual):
        self.main, self.post, self.device, self.batch, self.residual = main, post, device, batch, residual
        self.multiple = math.lcm(main.size_multiple, post.size_multiple)

    def run_main(self, tiles):
        return restore_image(self.main, tiles, self.residual)

    def run_post(self, tiles):
        return self.post(tiles)[-1].clamp(0, 1)

    def run_both(self, tiles):
        return self.run_post(self.run_main(tiles))

    def ours(self, lq, tile, overlap):
        return tiled_forward(self.run_both, lq, tile, overlap, batch=self.batch, multiple=self.multiple,
                             device=self.device)

    def uniform_windows(self, net_fn, lq, patch):
        """Average of ``net_fn`` over patch windows at stride patch/2 (the original's vote averaging)."""
        height, width = lq.shape[-2:]
        accum = torch.zeros_like(lq)
        votes = torch.zeros(1, 1, height, width)
        boxes = patch_grid(height, width, patch, patch // 2)
        with torch.inference_mode():
            for first in range(0, len(boxes), self.batch):
                chunk = boxes[first:first + self.batch]
                tiles = torch.cat([lq[..., y:y + patch, x:x + patch] for y, x in chunk]).to(self.device)
                outputs = net_fn(tiles).float().cpu()
                for (y, x), out in zip(chunk, outputs):
                    accum[0, :, y:y + patch, x:x + patch] += out
                    votes[0, 0, y:y + patch, x:x + patch] += 1
        return accum / votes

    def original(self, lq, patch):
        height, width = lq.shape[-2:]
        main_out = self.uniform_windows(self.run_main, lq, patch)
        half = F.interpolate(main_out, size=(height // 2, width // 2), mode='bicubic', antialias=True,
                             align_corners=False).clamp(0, 1)
        with torch.inference_mode():
            padded = pad_to_multiple(half, self.post.size_multiple).to(self.device)
            post_out = self.run_post(padded).float().cpu()[..., :height // 2, :width // 2]
        return F.interpolate(post_out, size=(height, width), mode='bicubic', align_corners=False).clamp(0, 1)

    def sliding(self, lq, patch):
        return self.uniform_windows(self.run_both, lq, patch)

    def run(self, method, lq, args, patch):
        if method == 'ours':
            return self.ours(lq, args.tile, args.overlap)
        return getattr(self, method)(lq, patch)


def choose_tile(height, width, overlap, multiple, max_tile):
    """The tile bound (<= max_tile, on the multiple grid) whose layout processes the fewest pixels."""
    best = None
    for tile in range(multiple, max(max_tile, multiple) + 1, multiple):
        if tile <= 2 * overlap:
            continue
        try:
            layout = TileLayout(height, width, tile, overlap, multiple)
        except Exception:  # noqa: BLE001  (a bound too small for the grid: not a candidate)
            continue
        pixels = len(layout) * layout.tile_h * layout.tile_w
        if best is None or pixels < best[0]:
            best = (pixels, tile)
    return best[1]


def work(method, height, width, args, multiple, main_multiple, post_multiple):
    """[(stage, tile height, tile width, count)] every net processes for one frame."""
    if method == 'ours':
        layout = TileLayout(height, width, args.tile, args.overlap, multiple)
        return [(stage, layout.tile_h, layout.tile_w, len(layout)) for stage in ('main', 'post')]
    windows = len(patch_grid(height, width, args.patch, args.patch // 2))
    if method == 'sliding':
        return [(stage, args.patch, args.patch, windows) for stage in ('main', 'post')]
    half_h, half_w = (-(-(side // 2) // post_multiple) * post_multiple for side in (height, width))
    return [('main', args.patch, args.patch, windows), ('post', half_h, half_w, 1)]


def gmacs(work_items, args):
    """Total GMACs of the work list, counted on the meta device (free at any size)."""
    with torch.device('meta'):
        nets = {stage: build_network(dict(opt)).eval()
                for stage, (opt, _) in zip(('main', 'post'), arch_options(args.arch))}
    return sum(count_macs(nets[stage], (1, 3, h, w)) * count for stage, h, w, count in work_items) / 1e9


def child(args):
    """One method on one synthetic frame in this fresh process: seconds and peak memory as JSON."""
    if args.keep_cpu_memory:
        keep_freed_cpu_memory()
    height, width = parse_size(args.size)
    lq_uint8, _ = natural_pair((height, width), np.random.default_rng(args.seed))
    lq = torch.from_numpy(lq_uint8).permute(2, 0, 1)[None].float() / 255
    cascade = Cascade(*load_nets(args), args.device, args.batch, main_residual(args))
    warm = torch.rand(1, 3, args.patch, args.patch)  # first-call costs (allocator, cuDNN) out of the timing
    cascade.run(args.child, warm, argparse.Namespace(tile=None, overlap=0), args.patch)
    rss_before = peak_rss_mib()
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    out, seconds = timed(lambda: cascade.run(args.child, lq, args, args.patch), args.device)
    assert out.shape == lq.shape
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith('cuda') else None
    return {'seconds': seconds, 'rss_growth_mib': peak_rss_mib() - rss_before, 'rss_peak_mib': peak_rss_mib(),
            'gpu_peak_mib': gpu_peak}


def psnr_uint8(output, label):
    """Challenge metric: 20*log10(255/RMSE) on the 8-bit images."""
    out = (output.clamp(0, 1) * 255).round()
    ref = (label.clamp(0, 1) * 255).round()
    mse = ((out - ref) ** 2).mean().item()
    return float('inf') if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def demo_psnr(args):
    """Mean PSNR per method on the demo test set (plus the raw input); builds the set when missing."""
    lq_dir, gt_dir = (os.path.join(args.demo, name) for name in ('test_input_img', 'test_label_img'))
    if not os.path.isdir(lq_dir):
        subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'make_demo_dataset.py'), '--out', args.demo,
                        '--seed', '0', '--scale', str(args.demo_scale)], check=True)
    cascade = Cascade(*load_nets(args), args.device, args.batch, main_residual(args))
    scores = {name: [] for name in ('input', *METHODS)}
    patch = None
    for _, lq_path, gt_path in pair_paths(lq_dir, gt_dir):
        lq = torch.from_numpy(read_image(lq_path)).permute(2, 0, 1)[None]
        gt = torch.from_numpy(read_image(gt_path)).permute(2, 0, 1)[None]
        height, width = lq.shape[-2:]
        # The original's window as the same fraction of the frame height, on the U-Net's grid.
        multiple = cascade.main.size_multiple
        patch = max(multiple, int(ORIGINAL_PATCH * height / ORIGINAL_HEIGHT) // multiple * multiple)
        patch = min(patch, height // multiple * multiple, width // multiple * multiple)
        tile = choose_tile(height, width, args.overlap, cascade.multiple, args.max_tile)
        demo_args = argparse.Namespace(tile=tile, overlap=args.overlap)
        scores['input'].append(psnr_uint8(lq, gt))
        for method in METHODS:
            scores[method].append(psnr_uint8(cascade.run(method, lq, demo_args, patch), gt))
    return {name: float(np.mean(values)) for name, values in scores.items()}, len(scores['input']), patch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', default='2448x3264', help='HxW of the synthetic full-resolution frame')
    parser.add_argument('--arch', choices=['tiny', 'full'], default='tiny', help='tiny for CPU, full for GPU')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--patch', type=int, default=ORIGINAL_PATCH, help='window of original/sliding (stride patch/2)')
    parser.add_argument('--tile', type=int, help='our tile bound (default: least overhead under --max-tile)')
    parser.add_argument('--max-tile', type=int, help='largest tile side to consider (default 1536 CPU, 2560 GPU)')
    parser.add_argument('--overlap', type=int, default=64, help='our tile overlap (val.tile.overlap)')
    parser.add_argument('--batch', type=int, default=1, help='tiles/windows per forward pass')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--main-ckpt', help='trained Pix2PixUNet checkpoint (weights under params)')
    parser.add_argument('--post-ckpt', help='trained HINet checkpoint (weights under params)')
    parser.add_argument('--main-residual', choices=['auto', 'true', 'false'], default='auto',
                        help="the main model's `residual` option (auto: options/tiny/pix2pix.yml for tiny archs)")
    parser.add_argument('--demo', default=os.path.join(ROOT, 'datasets', 'demo'), help='demo set for PSNR')
    parser.add_argument('--demo-scale', type=float, default=1, help='make_demo_dataset --scale if --demo is missing')
    parser.add_argument('--no-psnr', action='store_true', help='skip the demo-set PSNR')
    parser.add_argument('--keep-cpu-memory', action='store_true',
                        help='glibc keeps freed memory for reuse (no mmap per large tensor); see the profile notes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--child', choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.max_tile is None:
        args.max_tile = 2560 if args.device.startswith('cuda') else 1536
    return args


def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    if args.child:
        print(json.dumps(child(args)))
        return
    height, width = parse_size(args.size)
    main_net, post_net = load_nets(args)
    multiples = (main_net.size_multiple, post_net.size_multiple)
    multiple = math.lcm(*multiples)
    del main_net, post_net
    if args.tile is None:
        args.tile = choose_tile(height, width, args.overlap, multiple, args.max_tile)
    layout = TileLayout(height, width, args.tile, args.overlap, multiple)
    padded_pixels = layout.padded_h * layout.padded_w
    archs = arch_options(args.arch)
    ideal_gmacs = gmacs([('main', layout.padded_h, layout.padded_w, 1), ('post', layout.padded_h, layout.padded_w, 1)],
                        args)
    descriptions = {
        'ours': f'tiled_forward, {len(layout)} tiles of {layout.tile_h}x{layout.tile_w} (bound {args.tile}, '
                f'overlap {args.overlap}), both stages at full res',
        'original': f'Pix2Pix {args.patch} windows stride {args.patch // 2} averaged; HINet at '
                    f'{height // 2}x{width // 2}, bicubic up',
        'sliding': f'both stages on {args.patch} windows at stride {args.patch // 2}, averaged',
    }
    results = {}
    for method in args.methods:
        print(f'running {method} ...', flush=True)
        argv = [os.path.abspath(__file__), '--child', method, '--size', args.size, '--arch', args.arch,
                '--device', args.device, '--patch', str(args.patch), '--tile', str(args.tile),
                '--overlap', str(args.overlap), '--batch', str(args.batch), '--seed', str(args.seed),
                '--main-residual', args.main_residual]
        argv += ['--keep-cpu-memory'] if args.keep_cpu_memory else []
        for flag, value in (('--main-ckpt', args.main_ckpt), ('--post-ckpt', args.post_ckpt)):
            if value:
                argv += [flag, value]
        results[method] = run_child(argv)
        items = work(method, height, width, args, multiple, *multiples)
        pixels = {stage: sum(h * w * count for s, h, w, count in items if s == stage) for stage in ('main', 'post')}
        results[method]['pixel_ratio'] = {stage: value / padded_pixels for stage, value in pixels.items()}
        results[method]['gmacs'] = gmacs(items, args)

    psnr, images, demo_patch = ({}, 0, None) if args.no_psnr else demo_psnr(args)
    reference = results.get('sliding')
    rows = []
    for method in args.methods:
        result = results[method]
        speedup = f"{reference['seconds'] / result['seconds']:.2f}x" if reference else 'n/a'
        ratio = result['pixel_ratio']
        rows.append([method, descriptions[method], f"{result['seconds']:.1f}", speedup,
                     f"{result['rss_growth_mib']:.0f} / {result['rss_peak_mib']:.0f}",
                     'n/a' if result['gpu_peak_mib'] is None else f"{result['gpu_peak_mib']:.0f}",
                     f"{ratio['main']:.2f} / {ratio['post']:.2f}", f"{result['gmacs']:.0f}",
                     f"{psnr[method]:.2f}" if psnr else 'skipped'])
    allocator = 'glibc keeps freed memory (--keep-cpu-memory)' if args.keep_cpu_memory else 'default glibc malloc'
    weights = 'trained checkpoints' if args.main_ckpt and args.post_ckpt else 'RANDOM weights (PSNR not meaningful)'
    notes = [f'archs: main {archs[0][0]} ({archs[0][1]}); post {archs[1][0]} ({archs[1][1]}); {weights}; {allocator}',
             f'frame {height}x{width}, padded to {layout.padded_h}x{layout.padded_w} (multiple {multiple}); '
             f'one pass of both nets over the padded frame = {ideal_gmacs:.0f} GMACs',
             f"our tile-overlap overhead: {results['ours']['pixel_ratio']['main'] - 1:.1%} (target <= 15%)"
             if 'ours' in results else '']
    if 'ours' in results and reference:
        notes.append(f"ours vs sliding window: {reference['seconds'] / results['ours']['seconds']:.2f}x faster "
                     '(target >= 3x)')
    if 'ours' in results and 'original' in results:
        notes.append(f"ours vs original: {results['original']['seconds'] / results['ours']['seconds']:.2f}x the speed "
                     '(original runs HINet on a quarter of the pixels)')
    if psnr:
        notes.append(f"demo PSNR: {images} images of {args.demo}, raw input {psnr['input']:.2f} dB; original/sliding "
                     f'window there {demo_patch}px (same fraction of the frame as 512 of 2448)')
    print_table(f'Cascade inference at {height}x{width} - {machine_name(args.device)}; --arch {args.arch}',
                ['method', 'what runs', 'time (s)', 'speed-up vs sliding', 'peak RSS growth / peak (MiB)',
                 'GPU peak (MiB)', 'pixels / padded frame (main / post)', 'GMACs', 'demo PSNR (dB)'],
                rows, [note for note in notes if note])


if __name__ == '__main__':
    main()
