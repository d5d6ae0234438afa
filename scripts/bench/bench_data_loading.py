"""Training samples/s through BasicSR's dataloader: packed LMDB patches vs decoding full PNGs and cropping.

Both sides use PairedFlareDataset, BasicSR's build_dataloader, the ResumableSampler the training
pipeline uses, and the same batch size, workers, gt_size and flips. Only the storage differs:
  lmdb: 512x512 patches (stride 256) packed by scripts/create_lmdb.py, a random gt_size crop of one patch;
  disk: the full PNG pair decoded per sample, a random gt_size crop of the frame in the file's dtype;
  disk, float first: the same, but the whole frame converted to float before the crop (the path before
  issue 12; a subclass that only moves the conversion), to measure what cropping first saves.
The data is generated in a temp folder: upscaled scikit-image photos plus noise (so the PNGs compress
and decode like camera images), written as PNG pairs of ``--size`` and packed with the real
scripts/create_lmdb.py. Timing starts after ``--warmup`` batches (worker start-up, first LMDB open).

Example (quick defaults, a few minutes on 2 cores):
    python scripts/bench/bench_data_loading.py
    python scripts/bench/bench_data_loading.py --pairs 8 --batches 50 --workers 8 --batch 16 --device cuda
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import numpy as np
from _common import machine_name, natural_pair, parse_size, print_table, size_text, write_png_rgb
from basicsr.data import build_dataloader, build_dataset

from flare_sr.data.paired_flare_dataset import PairedFlareDataset
from flare_sr.data.sampling import ResumableSampler
from flare_sr.errors import ArgumentParser
from flare_sr.utils.img_util import to_float32

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_pairs(folder, count, size, seed):
    """Write ``count`` Dacon-named PNG pairs of ``size``; returns (lq_dir, gt_dir, bytes per PNG)."""
    lq_dir, gt_dir = os.path.join(folder, 'train_input_img'), os.path.join(folder, 'train_label_img')
    os.makedirs(lq_dir)
    os.makedirs(gt_dir)
    rng = np.random.default_rng(seed)
    for index in range(count):
        lq, gt = natural_pair(size, rng, photo_index=index)
        write_png_rgb(os.path.join(lq_dir, f'train_input_{10000 + index}.png'), lq)
        write_png_rgb(os.path.join(gt_dir, f'train_label_{10000 + index}.png'), gt)
    sizes = [os.path.getsize(os.path.join(d, name)) for d in (lq_dir, gt_dir) for name in os.listdir(d)]
    return lq_dir, gt_dir, sum(sizes) / len(sizes)


def pack(lq_dir, gt_dir, out, patch, stride, workers):
    """Pack through the real command line, exactly as a user would."""
    command = [sys.executable, os.path.join(ROOT, 'scripts', 'create_lmdb.py'), '--lq', lq_dir, '--gt', gt_dir,
               '--out', out, '--patch-size', str(patch), '--stride', str(stride), '--workers', str(workers)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'create_lmdb.py failed:\n{result.stderr[-2000:]}')
    return result.stdout.strip().splitlines()[-1]


def dataset_options(backend, lq_root, gt_root, args):
    return {
        'name': f'bench_{backend}', 'type': 'PairedFlareDataset', 'phase': 'train',
        'dataroot_lq': lq_root, 'dataroot_gt': gt_root, 'io_backend': {'type': backend},
        'gt_size': args.gt_size, 'use_hflip': True, 'use_rot': True, 'seed': args.seed,
        'batch_size_per_gpu': args.batch, 'num_worker_per_gpu': args.workers,
        'pin_memory': args.device.startswith('cuda'),
    }


class FloatFirstDataset(PairedFlareDataset):
    """The disk path before issue 12: every decoded frame becomes float32 before the crop."""

    def _read(self, path, client_key):
        return to_float32(super()._read(path, client_key))


def measure(opt, args, float_first=False):
    """Samples/s over ``--batches`` batches after ``--warmup`` (one loader iterator, as in one epoch)."""
    dataset = FloatFirstDataset(opt) if float_first else build_dataset(opt)
    needed = (args.warmup + args.batches) * args.batch
    ratio = max(1, math.ceil(needed / len(dataset)))  # a tiny disk set is enlarged like dataset_enlarge_ratio
    sampler = ResumableSampler(dataset, num_replicas=1, rank=0, ratio=ratio)
    loader = build_dataloader(dataset, opt, num_gpu=0, dist=False, sampler=sampler, seed=args.seed)
    batches = iter(loader)
    for _ in range(args.warmup):
        next(batches)
    start = time.perf_counter()
    for _ in range(args.batches):
        batch = next(batches)
        batch['lq'].to(args.device, non_blocking=True)
        batch['gt'].to(args.device, non_blocking=True)
    seconds = time.perf_counter() - start
    del batches
    return len(dataset), args.batches * args.batch / seconds, seconds / args.batches


def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=size_text, default='2448x3264',
                        help='HxW of the generated PNG pairs (challenge size)')
    parser.add_argument('--pairs', type=int, default=3, help='generated image pairs')
    parser.add_argument('--patch', type=int, default=512, help='LMDB patch size (create_lmdb --patch-size)')
    parser.add_argument('--stride', type=int, default=256, help='LMDB patch stride (create_lmdb --stride)')
    parser.add_argument('--gt-size', type=int, default=256, help='training crop (same for both backends)')
    parser.add_argument('--batch', type=int, default=8, help='batch_size_per_gpu')
    parser.add_argument('--workers', type=int, default=2, help='num_worker_per_gpu')
    parser.add_argument('--batches', type=int, default=10, help='timed batches per backend')
    parser.add_argument('--warmup', type=int, default=2, help='untimed batches first')
    parser.add_argument('--device', default='cpu', help='where batches are copied to (cpu, cuda)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workdir', help='keep the generated data here (default: a temp dir, deleted)')
    args = parser.parse_args()
    size = parse_size(args.size)

    with tempfile.TemporaryDirectory(prefix='bench_data_', dir=args.workdir) as folder:
        start = time.perf_counter()
        lq_dir, gt_dir, png_bytes = make_pairs(folder, args.pairs, size, args.seed)
        print(f'generated {args.pairs} PNG pairs of {size[0]}x{size[1]} ({png_bytes / 2**20:.1f} MiB per PNG) '
              f'in {time.perf_counter() - start:.1f} s', flush=True)
        lmdb_dir = os.path.join(folder, 'patches')
        # No more pack workers than pairs: create_lmdb.py's Pool was seen hanging at exit with an idle worker.
        print(pack(lq_dir, gt_dir, lmdb_dir, args.patch, args.stride, min(args.workers, args.pairs)), flush=True)

        rows, rates = [], {}
        for name, backend, lq_root, gt_root, storage, float_first in (
                ('lmdb', 'lmdb', os.path.join(lmdb_dir, 'lq.lmdb'), os.path.join(lmdb_dir, 'gt.lmdb'),
                 f'LMDB {args.patch}px patches, stride {args.stride}', False),
                ('disk', 'disk', lq_dir, gt_dir, f'full {size[0]}x{size[1]} PNG, decode + crop', False),
                ('disk, float first', 'disk', lq_dir, gt_dir, 'the same, whole frame to float before the crop',
                 True)):
            items, rate, per_batch = measure(dataset_options(backend, lq_root, gt_root, args), args, float_first)
            rates[name] = rate
            rows.append([name, storage, items, f'{rate:.1f}', f'{per_batch * 1000:.0f}'])
    ratio = rates['lmdb'] / rates['disk']
    crop_first = rates['disk'] / rates['disk, float first']
    print_table(
        f'Data loading, PairedFlareDataset through BasicSR build_dataloader - {machine_name()}; '
        f'batch {args.batch}, workers {args.workers}, gt_size {args.gt_size}, {args.batches} batches after '
        f'{args.warmup} warm-up',
        ['backend', 'storage', 'dataset items', 'samples/s', 'ms/batch'], rows,
        [f'LMDB / disk: {ratio:.1f}x (target >= 10x)',
         f'disk, crop in the file dtype / float first: {crop_first:.2f}x'])


if __name__ == '__main__':
    main()
