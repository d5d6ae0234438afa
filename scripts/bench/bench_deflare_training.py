"""Flare7K++'s recipe, training throughput and memory: DeflareModel + Uformer through flare_sr's loop
(BasicSR's train_pipeline with flare_sr's fixes) against a bare PyTorch loop on the same arch, data, DataLoader,
optimizer, loss and EMA.

Data: flare layers of flare_sr's own families, rendered by scripts/render_flare_layers.py in the Flare7K++ layout
(compound flare + light source), composited on the fly onto scikit-image photos by Flare7kpp_Pair_Loader, as
Flare7K++ trains on its 7,000 flares and Flickr24K. Both loops read them through the same dataset, BasicSR's
build_dataloader and ResumableSampler, so only the loop differs.
  ours: DeflareModel (the L_Abs_pure terms, EMA, NaN guard) in BasicSR's loop; BasicSR's timers per iteration.
  bare: next(loader) / .to(device) + forward + the same three L1 terms + backward + Adam step + EMA update.
The perceptual (VGG19) term is left out of both: it needs ImageNet weights that nothing here downloads.
Iterations/s is wall clock over the timed iterations, after ``--warmup``; peak memory is
torch.cuda.max_memory_allocated on ``cuda`` (the process's peak RSS on ``cpu``). The two loops run in their own
subprocesses, ``--repeats`` times, alternating; the best run of each is reported.

Examples:
    python scripts/bench/bench_deflare_training.py --device cuda                  # Flare7K++: 512 px, batch 2
    python scripts/bench/bench_deflare_training.py --img-size 128 --iters 4 --warmup 1 --layers 4 --layer-size 160
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
import yaml
from _common import PHOTOS, machine_name, peak_rss_mib, print_table, read_options
from bench_training import add_loop_arguments, bare_setup, best_of_alternating_runs, child_record

from flare_sr.errors import ArgumentParser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILY = 'procedural'  # the training family; the held-out ones stay held out


def make_tree(folder, args):
    """Render ``--layers`` procedural flare layers and write the scikit-image photos as backgrounds."""
    import skimage.io
    from skimage import data as skdata

    layers = os.path.join(folder, 'layers')
    subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'render_flare_layers.py'), '--out', layers,
                    '--family', FAMILY, '--count', str(args.layers), '--size', str(args.layer_size),
                    '--seed', str(args.seed)], check=True)
    backgrounds = os.path.join(folder, 'backgrounds')
    os.makedirs(backgrounds)
    for index, name in enumerate(PHOTOS):
        photo = skimage.io.imread(os.path.join(skdata.data_dir, name))
        photo = np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]
        cv2.imwrite(os.path.join(backgrounds, f'{index:05d}.png'), np.ascontiguousarray(photo[..., ::-1]))
    return {'image_path': backgrounds,
            'scattering_dict': {'ours': os.path.join(layers, FAMILY, 'Compound_Flare')},
            'light_dict': {'ours_light': os.path.join(layers, FAMILY, 'Light_Source')}}


def build_options(args, tree):
    """Flare7K++'s option file (options/deflare_uformer_flare7kpp.yml) with our tree, sizes and no validation."""
    base = read_options(os.path.join(ROOT, 'options', 'deflare_uformer_flare7kpp.yml'))
    cuda = args.device.startswith('cuda')
    train_set = dict(base['datasets']['train'], **tree, reflective_dict=None, data_ratio=[1],
                     transform_base={'img_size': args.img_size}, batch_size_per_gpu=args.batch,
                     num_worker_per_gpu=args.workers, dataset_enlarge_ratio=1000, pin_memory=cuda)
    train = dict(base['train'], total_iter=args.warmup + args.iters)
    train.pop('perceptual')
    return {'name': 'bench_deflare_training', 'model_type': 'DeflareModel', 'scale': 1,
            'num_gpu': 1 if cuda else 0, 'manual_seed': args.seed, 'datasets': {'train': train_set},
            'network_g': dict(base['network_g'], img_size=args.img_size),
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
            'train': train,
            'logger': {'print_freq': 10, 'save_checkpoint_freq': 10**9, 'use_tb_logger': False},
            'dist_params': {'backend': 'gloo', 'port': 29500}}


def run_bare(opt):
    """The same work without BasicSR's loop or flare_sr's model class."""
    import copy
    import time

    from flare_sr.models.deflare_model import recombine

    device, loader, net = bare_setup(opt)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    optim_opt = dict(opt['train']['optim_g'])
    optim_opt.pop('type')
    optimizer = torch.optim.Adam(net.parameters(), **optim_opt)
    weight, decay = opt['train']['l1_opt']['loss_weight'], opt['train']['ema_decay']
    l1 = torch.nn.functional.l1_loss
    total = opt['train']['total_iter']
    data_times, iter_times, stamps = [], [], []
    batches, tic = iter(loader), time.time()
    for _ in range(total):
        batch = next(batches)
        lq, gt, flare = (batch[key].to(device, non_blocking=True) for key in ('lq', 'gt', 'flare'))
        gamma = batch['gamma'].to(device)
        data_done = time.time()
        output = net(lq)
        image, flare_out = output[:, :3], output[:, 3:]
        loss = weight * (l1(flare_out, flare) + l1(image, gt) + 2 * l1(recombine(image, flare_out, gamma), lq))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for ema_param, param in zip(ema.parameters(), net.parameters()):
                ema_param.mul_(decay).add_(param, alpha=1 - decay)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        toc = time.time()
        data_times.append(data_done - tic)
        iter_times.append(toc - tic)
        stamps.append(toc)
        tic = time.time()
    return {'data': data_times, 'iter': iter_times, 'stamps': stamps}


def peak_memory_mib(device):
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mib()


def parse_args():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--img-size', type=int, default=512, help='training crop and Uformer img_size (Flare7K++: 512)')
    parser.add_argument('--batch', type=int, default=2, help='batch_size_per_gpu (Flare7K++: 2)')
    parser.add_argument('--workers', type=int, default=4, help='num_worker_per_gpu (Flare7K++: 4)')
    parser.add_argument('--layers', type=int, default=32, help='procedural flare layers rendered')
    parser.add_argument('--layer-size', type=int, default=640, help='side of the rendered layers (px)')
    add_loop_arguments(parser, iters=200, warmup=20)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.child:
        record = child_record(args.child, args.child_opt, run_bare)
        print(json.dumps(dict(record, peak_mib=peak_memory_mib(args.device))))
        return
    with tempfile.TemporaryDirectory(prefix='bench_deflare_') as folder:
        opt = build_options(args, make_tree(folder, args))
        option_path = os.path.join(folder, 'bench_deflare_training.yml')
        with open(option_path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(opt, handle)
        results = best_of_alternating_runs(os.path.abspath(__file__), option_path, args,
                                           ['--device', args.device])
    memory = 'peak GPU memory (MiB)' if args.device.startswith('cuda') else 'peak RSS (MiB)'
    rows = [[label, results[loop]['n'], f"{results[loop]['its']:.2f}", f"{results[loop]['step_ms']:.0f}",
             f"{results[loop]['data_ms']:.1f}", f"{results[loop]['peak_mib']:.0f}"]
            for loop, label in (('ours', 'ours: train_pipeline + DeflareModel'), ('bare', 'bare PyTorch loop'))]
    relative = results['ours']['its'] / results['bare']['its']
    print_table(
        f'Flare7K++ recipe, training - {machine_name(args.device)}; Uformer img_size {args.img_size}, output_ch 6, '
        f'batch {args.batch}, workers {args.workers}, {args.layers} procedural layers of {args.layer_size} px; '
        f'best of {args.repeats} alternating runs per loop',
        ['loop', 'timed iters', 'iters/s', 'mean step (ms)', 'mean data wait (ms)', memory], rows,
        [f'ours / bare: {relative:.3f} iterations/s ({relative - 1:+.1%}); memory ours / bare: '
         f"{results['ours']['peak_mib'] / results['bare']['peak_mib']:.3f}"])


if __name__ == '__main__':
    main()
