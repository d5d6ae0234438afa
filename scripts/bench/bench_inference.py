"""Full-resolution cascade inference on a 2448x3264 frame: ours (fp32, bf16, ONNX Runtime) vs the original method
vs the 512/256 sliding window, one table, all rows measured side by side in one run.

Rows (all from the CascadeModel that test.py and infer.py build, same option file, checkpoints and nets):
  fp32 ours         CascadeModel.predict: every tile through both networks at full resolution, blended with a
                    smooth window (flare_sr.utils.tiling); tiles of val.tile.size / overlap of the option file
                    (options/test_cascade.yml: 1792 / 64) unless --tile / --overlap say otherwise.
  bf16 ours         the same with val.precision bf16 (autocast; tiles still blend in fp32). On a CPU without
                    AMX / AVX512-BF16 this is emulated (the title says which).
  onnxruntime ours  the same tiling through ONNX Runtime, on the tile function scripts/export_onnx.py exports
                    (exported once before the rows run; export time not counted).
  original          the challenge solution: Pix2Pix on 512 windows at stride 256 (last window flush with the
                    border) averaged uniformly, then the frame down to half size (1224x1632), HINet there,
                    bicubic upsampling back.
  sliding           both networks on 512 windows at stride 256, averaged uniformly (the 3x target's baseline).
  infer.py process  the fp32 row as a user runs it: ``python flare_sr/infer.py`` on the frame saved as a PNG, timed
                    from the process's start to its end (imports, option checks, network builds, decoding, the
                    tiles, PNG encoding); no warm-up, peak RSS of that process.
The baselines run the model's own nets (same weights, memory format and allocator setting).

Each row runs in a fresh subprocess: a warm-up call on one 512 window, then the timed frame (wall clock,
device synchronised), peak RSS (ru_maxrss; GPU: torch.cuda.max_memory_allocated) and the demo PSNR. The
CPU allocator keeps freed memory as infer.py / test.py do (flare_sr/utils/cpu_memory.py) unless
--default-malloc. "Pixels / padded frame" is what each net processed over one pass over the padded frame
(the archs are fully convolutional, so it is also their MAC ratio; GMACs are counted on the meta device).
PSNR: the challenge metric (8-bit, per image, averaged) on the demo's held-out test images
(datasets/demo, built by scripts/make_demo_dataset.py when missing); on their 192x256 frames the
original / sliding window and our tiles keep the fraction of the frame they have at 2448x3264 (512/2448 and
val.tile.size/2448 of the height, overlap alike), on the nets' grid.

Archs and weights: ``--arch tiny`` (default) reads options/tiny/test_cascade.yml's nets and checkpoints
(the demo's: ``bash scripts/run_demo.sh`` trains them in minutes) and options/test_cascade.yml's tiling;
``--arch full`` reads options/test_cascade.yml whole (challenge-size nets, for a GPU). ``-opt`` picks any
cascade option file; ``--main-ckpt`` / ``--post-ckpt`` override its checkpoints. Missing checkpoints
leave random weights (the PSNR column then says so), and a ``main_ensemble`` with a member missing is left out.
Every row runs the tiled nets only: the glow stage (a whole-frame net beside the tiles, which no ONNX export holds)
is left out of the options.

Examples:
    python scripts/bench/bench_inference.py
    python scripts/bench/bench_inference.py --device cuda --arch full --main-ckpt M.pth --post-ckpt P.pth
"""
import argparse
import copy
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from _common import (machine_name, natural_pair, parse_size, peak_rss_mib, print_table, run_child, size_text, timed,
                     write_png_rgb)
from basicsr.archs import build_network
from bench_model_cost import count_macs

from flare_sr.data.pairing import pair_paths
from flare_sr.data.patches import patch_grid
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.models.main_net import restore_image
from flare_sr.models.onnx_backend import OnnxRuntimePredictor, export_onnx
from flare_sr.pipeline.inference import build_test_model
from flare_sr.utils.cpu_memory import keep_freed_cpu_memory
from flare_sr.utils.img_util import read_image
from flare_sr.utils.options_check import load_option_file, resolve_cascade_sources
from flare_sr.utils.precision import cpu_bf16_support
from flare_sr.utils.tiling import TileLayout, pad_to_multiple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORIGINAL_PATCH, ORIGINAL_HEIGHT = 512, 2448
ROWS = ('fp32', 'bf16', 'onnxruntime', 'original', 'sliding', 'process')
LABELS = {'fp32': 'fp32 ours', 'bf16': 'bf16 ours', 'onnxruntime': 'ONNX Runtime ours', 'original': 'original method',
          'sliding': 'sliding window', 'process': 'infer.py, whole process'}
SHIPPED = os.path.join(ROOT, 'options', 'test_cascade.yml')
TINY = os.path.join(ROOT, 'options', 'tiny', 'test_cascade.yml')


def bench_options(args):
    """The cascade option dict every row builds its model from (nets, residual switch, checkpoints, tiling)."""
    option_file = args.opt or (TINY if args.arch == 'tiny' else SHIPPED)
    opt = load_option_file(option_file)
    _, problems = resolve_cascade_sources(opt)  # network_main / network_post from the stage files it names
    if problems:
        raise FlareSRError(f'{option_file}: ' + '; '.join(problems))
    shipped_tile = (load_option_file(SHIPPED).get('val') or {}).get('tile') or {}
    tile = dict((opt.get('val') or {}).get('tile') or {}) if args.opt else dict(shipped_tile)
    tile.update({key: value for key, value in (('size', args.tile), ('overlap', args.overlap)) if value is not None})
    tile['batch'] = args.batch
    path = dict(opt.get('path') or {})
    for role, ckpt in (('main', args.main_ckpt), ('post', args.post_ckpt)):
        if ckpt:
            path[f'pretrain_network_{role}'] = ckpt
        if not _on_disk(path.get(f'pretrain_network_{role}')):
            path.pop(f'pretrain_network_{role}', None)  # the bench still runs; the table says "random weights"
    # the tiled nets, as the baselines run them: the glow stage is a whole-frame net beside the tiles, not exportable
    opt.pop('network_glow', None)
    path.pop('pretrain_network_glow', None)
    cascade = {key: value for key, value in (opt.get('cascade') or {}).items()
               if not key.startswith('glow_') and key != 'use_glow'}
    members = cascade.get('main_ensemble') or []
    if members and not (path.get('pretrain_network_main') and all(_on_disk(member) for member in members)):
        cascade['main_ensemble'] = []  # fold models not trained (or stage I untrained): the main U-Net alone
    opt.update(path=path, cascade=cascade, num_gpu=1 if args.device.startswith('cuda') else 0, name='bench_inference')
    opt['val'] = dict(opt.get('val') or {}, tile=tile, precision='fp32', restore_light_source=False)
    return opt


def _on_disk(value):
    """A checkpoint path of the option file (relative to the repository) that names a file."""
    return bool(value) and os.path.isfile(value if os.path.isabs(value) else os.path.join(ROOT, value))


def trained(opt):
    return all(opt['path'].get(f'pretrain_network_{role}') for role in ('main', 'post'))


class Baselines:
    """The original method and the sliding window over a CascadeModel's own nets (CPU 1x3xHxW in and out)."""

    def __init__(self, model, batch):
        self.model, self.batch = model, batch
        self.main, self.post = model.nets['main'], model.nets['post']

    def run_main(self, tiles):
        return restore_image(self.main, tiles)

    def run_post(self, tiles):
        return self.post(tiles)[-1].clamp(0, 1)

    def uniform_windows(self, net_fn, lq, patch):
        """Average of ``net_fn`` over patch windows at stride patch/2 (the original's vote averaging)."""
        height, width = lq.shape[-2:]
        accum = torch.zeros_like(lq)
        votes = torch.zeros(1, 1, height, width)
        boxes = patch_grid(height, width, patch, patch // 2)
        with torch.inference_mode():
            for first in range(0, len(boxes), self.batch):
                chunk = boxes[first:first + self.batch]
                tiles = self.model.tile_input(torch.cat([lq[..., y:y + patch, x:x + patch] for y, x in chunk]))
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
            padded = self.model.tile_input(pad_to_multiple(half, self.post.size_multiple))
            post_out = self.run_post(padded).float().cpu()[..., :height // 2, :width // 2]
        return F.interpolate(post_out, size=(height, width), mode='bicubic', align_corners=False).clamp(0, 1)

    def sliding(self, lq, patch):
        return self.uniform_windows(lambda tiles: self.run_post(self.run_main(tiles)), lq, patch)


def build_runner(row, opt, args):
    """(run(lq, tile, patch) -> output, the model): one row's method, built as infer.py builds it."""
    opt = copy.deepcopy(opt)
    if row == 'bf16':
        opt['val']['precision'] = 'bf16'
    model = build_test_model(opt, 'bench options')
    if row in ('fp32', 'bf16', 'onnxruntime'):
        predictor = OnnxRuntimePredictor(opt, args.onnx, device=args.device, reference=model.opt) if (
            row == 'onnxruntime') else model  # the export's records are of the built model's checked options

        def run(lq, tile, patch):
            predictor.opt['val']['tile'].update(tile)
            return predictor.predict(lq)
        return run, model
    baselines = Baselines(model, args.batch)
    return (lambda lq, tile, patch: getattr(baselines, row)(lq, patch)), model


def psnr_uint8(output, label):
    """Challenge metric: 20*log10(255/RMSE) on the 8-bit images."""
    out = (output.clamp(0, 1) * 255).round()
    ref = (label.clamp(0, 1) * 255).round()
    mse = ((out - ref) ** 2).mean().item()
    return float('inf') if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def demo_pairs(args):
    """[(lq, gt)] 1x3xHxW tensors of the demo's held-out test images; builds the demo set when missing."""
    lq_dir, gt_dir = (os.path.join(args.demo, name) for name in ('test_input_img', 'test_label_img'))
    if not os.path.isdir(lq_dir):
        subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'make_demo_dataset.py'), '--out', args.demo,
                        '--seed', '0'], check=True)
    return [tuple(torch.from_numpy(read_image(path)).permute(2, 0, 1)[None] for path in (lq_path, gt_path))
            for _, lq_path, gt_path in pair_paths(lq_dir, gt_dir)]


def demo_tile(tile, height, multiple):
    """Our ``val.tile`` size and overlap as the same fraction of a demo frame's height as of the full frame.

    The baselines' windows shrink by that fraction (:func:`demo_patch`); ours must too, or on the small demo
    frames every tile would be the whole frame, a size the tiny nets never trained near.
    """
    size = tile.get('size')
    if size is None:
        return dict(tile)
    size = max(multiple, int(size * height / ORIGINAL_HEIGHT) // multiple * multiple)
    overlap = min(int(round(tile.get('overlap', 32) * height / ORIGINAL_HEIGHT)), (size + 1) // 2 - 1)
    return dict(tile, size=size, overlap=overlap)


def demo_patch(height, width, multiple):
    """The original's 512 window as the same fraction of a demo frame's height, on the U-Net's grid."""
    patch = max(multiple, int(ORIGINAL_PATCH * height / ORIGINAL_HEIGHT) // multiple * multiple)
    return min(patch, height // multiple * multiple, width // multiple * multiple)


def infer_process(args, opt):
    """The ``process`` row: ``python flare_sr/infer.py`` on the frame saved as a PNG, wall clock from the process's
    start to its end (imports, option checks, network builds, decoding, the fp32 tiles, PNG encoding)."""
    cascade = {key: value for key, value in (opt.get('cascade') or {}).items() if key in ('use_main', 'use_post')}
    opt = dict(opt, cascade=cascade)  # network_main / network_post are resolved: not their stage files too
    with tempfile.TemporaryDirectory(prefix='bench_infer_') as workdir:
        frame = os.path.join(workdir, 'in', 'frame.png')
        os.makedirs(os.path.dirname(frame))
        write_png_rgb(frame, natural_pair(parse_size(args.size), np.random.default_rng(args.seed))[0])
        option_file = os.path.join(workdir, 'infer.yml')
        with open(option_file, 'w') as handle:
            yaml.safe_dump(opt, handle, sort_keys=False)
        command = [sys.executable, os.path.join(ROOT, 'flare_sr', 'infer.py'), '-opt', option_file,
                   '--input', os.path.dirname(frame), '--output', os.path.join(workdir, 'out')]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f'infer.py failed (exit {result.returncode}):\n{result.stderr[-3000:]}')
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {'seconds': seconds, 'rss_growth_mib': peak, 'rss_peak_mib': peak, 'gpu_peak_mib': None}


def child(args):
    """One row in this fresh process: seconds, peak memory and demo PSNR as JSON."""
    opt = json.loads(args.opt_json)
    if args.child == 'process':
        return infer_process(args, opt)
    if not args.default_malloc and not args.device.startswith('cuda'):
        keep_freed_cpu_memory()
    run, model = build_runner(args.child, opt, args)
    tile = dict(opt['val']['tile'])
    height, width = parse_size(args.size)
    lq_uint8, _ = natural_pair((height, width), np.random.default_rng(args.seed))
    lq = torch.from_numpy(lq_uint8).permute(2, 0, 1)[None].float() / 255
    run(torch.rand(1, 3, args.patch, args.patch), dict(tile, size=None), args.patch)  # first-call costs untimed
    rss_before = peak_rss_mib()
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    out, seconds = timed(lambda: run(lq, tile, args.patch), args.device)
    assert out.shape == lq.shape
    result = {'seconds': seconds, 'rss_growth_mib': peak_rss_mib() - rss_before, 'rss_peak_mib': peak_rss_mib(),
              'gpu_peak_mib': torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith('cuda') else None}
    if not args.no_psnr:
        scores, inputs = [], []
        main_multiple = model.nets['main'].size_multiple
        for demo_lq, demo_gt in demo_pairs(args):
            patch = demo_patch(*demo_lq.shape[-2:], main_multiple)
            scaled = demo_tile(tile, demo_lq.shape[-2], model.size_multiple)
            scores.append(psnr_uint8(run(demo_lq, scaled, patch), demo_gt))
            inputs.append(psnr_uint8(demo_lq, demo_gt))
        flared = [value for value in inputs if math.isfinite(value)]  # a flare-free input equals its label: inf
        result.update(psnr=float(np.mean(scores)), input_psnr=float(np.mean(flared)), images=len(scores),
                      demo_patch=patch, demo_tile=scaled.get('size'))
    return result


def work(row, height, width, args, opt, multiple, post_multiple):
    """[(role, tile height, tile width, count)] every net processes for one frame."""
    if row in ('fp32', 'bf16', 'onnxruntime', 'process'):
        tile = opt['val']['tile']
        layout = TileLayout(height, width, tile.get('size'), tile.get('overlap', 32), multiple)
        return [(role, layout.tile_h, layout.tile_w, len(layout)) for role in ('main', 'post')]
    windows = len(patch_grid(height, width, args.patch, args.patch // 2))
    if row == 'sliding':
        return [(role, args.patch, args.patch, windows) for role in ('main', 'post')]
    half_h, half_w = (-(-(side // 2) // post_multiple) * post_multiple for side in (height, width))
    return [('main', args.patch, args.patch, windows), ('post', half_h, half_w, 1)]


def gmacs(work_items, opt):
    """Total GMACs of the work list, counted on the meta device (free at any size)."""
    with torch.device('meta'):
        nets = {role: build_network(dict(opt[f'network_{role}'])).eval() for role in ('main', 'post')}
    return sum(count_macs(nets[role], (1, 3, h, w)) * count for role, h, w, count in work_items) / 1e9


def parse_args():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=size_text, default='2448x3264',
                        help='HxW of the synthetic full-resolution frame')
    parser.add_argument('--arch', choices=['tiny', 'full'], default='tiny',
                        help='tiny: options/tiny/test_cascade.yml nets (CPU); full: options/test_cascade.yml (GPU)')
    parser.add_argument('-opt', help='cascade option file (nets, checkpoints, val.tile); overrides --arch')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--patch', type=int, default=ORIGINAL_PATCH, help='window of original/sliding (stride patch/2)')
    parser.add_argument('--tile', type=int, help="our tile bound (default: the option file's val.tile.size)")
    parser.add_argument('--overlap', type=int, help="our tile overlap (default: the option file's val.tile.overlap)")
    parser.add_argument('--batch', type=int, default=1, help='tiles/windows per forward pass')
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=list(ROWS), help='a subset of the rows')
    parser.add_argument('--main-ckpt', help='trained Pix2PixUNet checkpoint (weights under params)')
    parser.add_argument('--post-ckpt', help='trained HINet checkpoint (weights under params)')
    parser.add_argument('--demo', default=os.path.join(ROOT, 'datasets', 'demo'), help='demo set for PSNR')
    parser.add_argument('--no-psnr', action='store_true', help='skip the demo-set PSNR')
    parser.add_argument('--default-malloc', action='store_true',
                        help="glibc's default allocator instead of keeping freed memory (see docs/benchmarks.md)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--child', choices=ROWS, help=argparse.SUPPRESS)
    parser.add_argument('--opt-json', help=argparse.SUPPRESS)
    parser.add_argument('--onnx', help=argparse.SUPPRESS)
    return parser.parse_args()


def child_argv(row, args, opt, onnx_path):
    argv = [os.path.abspath(__file__), '--child', row, '--opt-json', json.dumps(opt), '--size', args.size,
            '--device', args.device, '--patch', str(args.patch), '--batch', str(args.batch), '--seed', str(args.seed),
            '--demo', args.demo]
    argv += ['--default-malloc'] if args.default_malloc else []
    argv += ['--no-psnr'] if args.no_psnr else []
    argv += ['--onnx', onnx_path] if onnx_path else []
    return argv


@exit_on_user_error
def main():
    args = parse_args()
    torch.set_grad_enabled(False)
    if args.child:
        print(json.dumps(child(args)))
        return
    height, width = parse_size(args.size)
    opt = bench_options(args)
    model = build_test_model(copy.deepcopy(opt), 'bench options')
    multiple, post_multiple = model.size_multiple, model.nets['post'].size_multiple
    tile = opt['val']['tile']
    layout = TileLayout(height, width, tile.get('size'), tile.get('overlap', 32), multiple)
    with tempfile.TemporaryDirectory(prefix='bench_onnx_') as workdir:
        onnx_path = None
        if 'onnxruntime' in args.rows:
            onnx_path = os.path.join(workdir, 'cascade.onnx')
            print('exporting the cascade tile function to ONNX ...', flush=True)
            export_onnx(model, onnx_path)
        del model
        results = {}
        for row in args.rows:
            print(f'running {LABELS[row]} ...', flush=True)
            results[row] = run_child(child_argv(row, args, opt, onnx_path))
            items = work(row, height, width, args, opt, multiple, post_multiple)
            pixels = {role: sum(h * w * n for s, h, w, n in items if s == role) for role in ('main', 'post')}
            results[row]['pixel_ratio'] = {role: value / (layout.padded_h * layout.padded_w)
                                           for role, value in pixels.items()}
            results[row]['gmacs'] = gmacs(items, opt)

    ours = f'{len(layout)} tiles of {layout.tile_h}x{layout.tile_w} (val.tile.size {tile.get("size")}, overlap ' \
           f'{tile.get("overlap", 32)})'
    descriptions = {
        'fp32': f'CascadeModel.predict, {ours}',
        'bf16': f'same, val.precision bf16 ({"native " + cpu_bf16_support() if cpu_bf16_support() else "EMULATED"})'
        if not args.device.startswith('cuda') else 'same, val.precision bf16',
        'onnxruntime': 'same tiling, tile function through ONNX Runtime (fp32)',
        'original': f'Pix2Pix {args.patch} windows stride {args.patch // 2} averaged; HINet at '
                    f'{height // 2}x{width // 2}, bicubic up',
        'sliding': f'both networks on {args.patch} windows at stride {args.patch // 2}, averaged',
        'process': 'python flare_sr/infer.py on the frame as a PNG, fp32: process start, checks, network builds, '
                   'decoding, the tiles above, PNG encoding',
    }
    reference = results.get('sliding')
    rows = []
    for row in args.rows:
        result = results[row]
        ratio = result['pixel_ratio']
        memory = f"{result['rss_growth_mib']:.0f} / {result['rss_peak_mib']:.0f}"
        if result['gpu_peak_mib'] is not None:
            memory += f" (GPU {result['gpu_peak_mib']:.0f})"
        rows.append([LABELS[row], descriptions[row], f"{result['seconds']:.1f}",
                     f"{reference['seconds'] / result['seconds']:.2f}x" if reference else 'n/a', memory,
                     f"{ratio['main']:.2f} / {ratio['post']:.2f}", f"{result['gmacs']:.0f}",
                     f"{result['psnr']:.2f}" if 'psnr' in result else 'skipped'])
    weights = 'trained checkpoints' if trained(opt) else 'RANDOM weights (PSNR not meaningful)'
    allocator = "glibc's default malloc" if args.default_malloc else 'freed CPU memory kept (as infer.py/test.py)'
    nets = {role: ', '.join(f'{k} {v}' for k, v in opt[f'network_{role}'].items()) for role in ('main', 'post')}
    notes = [f"nets: main {nets['main']}; post {nets['post']}; {weights} "
             f"({opt['path'].get('pretrain_network_main')}, {opt['path'].get('pretrain_network_post')}); {allocator}; "
             f'load average before the run {os.getloadavg()[0]:.1f}',
             f'frame {height}x{width}, padded to {layout.padded_h}x{layout.padded_w} (multiple {multiple}); '
             f'our tile-overlap overhead {layout_overhead(layout):.1%}']
    if 'fp32' in results and reference:
        notes.append(f"fp32 ours vs sliding window: {reference['seconds'] / results['fp32']['seconds']:.2f}x faster "
                     f"(target >= 3x); work ratio {results['sliding']['gmacs'] / results['fp32']['gmacs']:.2f}x")
    if 'process' in results and reference:
        notes.append(f"infer.py whole process vs sliding window (in process, warmed up): "
                     f"{reference['seconds'] / results['process']['seconds']:.2f}x faster")
    targets = {'bf16': ' (target: cost <= 0.05 dB)', 'onnxruntime': ''}
    for row, target in targets.items():
        if row in results and 'fp32' in results and 'psnr' in results[row]:
            speed = results['fp32']['seconds'] / results[row]['seconds']
            cost = results[row]['psnr'] - results['fp32']['psnr']
            notes.append(f'{LABELS[row]}: {speed:.2f}x the speed of fp32, PSNR {cost:+.3f} dB{target}')
    first = next(iter(results.values()))
    if 'psnr' in first:
        notes.append(f"demo PSNR: {first['images']} held-out test images of {os.path.relpath(args.demo, ROOT)}, raw "
                     f"input {first['input_psnr']:.2f} dB on the flared ones; there, as the same share of the frame, "
                     f"original/sliding window {first['demo_patch']}px and our tiles "
                     f"{results.get('fp32', first).get('demo_tile')}px")
    print_table(f'Cascade inference at {height}x{width} - {machine_name(args.device)}',
                ['row', 'what runs', 'time (s)', 'vs sliding', 'peak RSS growth / peak (MiB)',
                 'pixels / padded frame (main / post)', 'GMACs', 'demo PSNR (dB)'], rows, notes)


def layout_overhead(layout):
    return len(layout) * layout.tile_h * layout.tile_w / (layout.padded_h * layout.padded_w) - 1


if __name__ == '__main__':
    main()
