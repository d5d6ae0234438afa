"""Training throughput: our BasicSR-driven loop (HINetModel through basicsr.train.train_pipeline with
flare_sr's fixes) against a bare PyTorch loop on the same arch, data, DataLoader, optimizer and loss.

Data: natural-looking PNG pairs generated in a temp folder and packed into LMDB patches with
scripts/create_lmdb.py (the recommended training storage). Both loops read them through
PairedFlareDataset + BasicSR's build_dataloader + ResumableSampler, so only the loop differs.
  ours: BasicSR's own timers, recorded per iteration: ``data`` is the wait in prefetcher.next(),
        ``iter`` is data wait + feed_data + optimize_parameters (NaN guard, grad clip, AMP hooks).
  bare: next(loader) / .to(device) + forward + loss on both HINet outputs + backward + clip + Adam step.
Iterations/s is wall clock over the timed iterations (logging included), after ``--warmup``.
Each loop runs in its own subprocess, ``--repeats`` times, alternating with the other loop (the best
run of each is reported, so a change in machine load does not decide the comparison); the model options come
from ``--opt`` (default
options/tiny/hinet_phase1.yml: network_g and the train section), its datasets are replaced.

Examples:
    python scripts/bench/bench_training.py
    python scripts/bench/bench_training.py --opt options/hinet_phase1.yml --device cuda --batch 8 --gt-size 256 \
        --workers 8 --iters 200
"""
import argparse
import copy
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
import yaml
from _common import machine_name, parse_size, print_table, read_options, run_child, size_text
from bench_data_loading import make_pairs, pack

from flare_sr.errors import ArgumentParser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPS = ('ours', 'bare')


def build_options(args, lmdb_dir):
    """The option dict both loops use: --opt's network_g and train section, our LMDB, no validation."""
    base = read_options(args.opt)
    cuda = args.device.startswith('cuda')
    train = copy.deepcopy(base['train'])
    train['total_iter'] = args.warmup + args.iters
    if args.amp is not None:
        train['amp'] = args.amp
    return {
        'name': 'bench_training', 'model_type': base.get('model_type', 'HINetModel'), 'scale': 1,
        'num_gpu': 1 if cuda else 0, 'manual_seed': args.seed,
        'datasets': {'train': {
            'name': 'bench_lmdb', 'type': 'PairedFlareDataset',
            'dataroot_lq': os.path.join(lmdb_dir, 'lq.lmdb'), 'dataroot_gt': os.path.join(lmdb_dir, 'gt.lmdb'),
            'io_backend': {'type': 'lmdb'}, 'gt_size': args.gt_size, 'use_hflip': True, 'use_rot': True,
            'batch_size_per_gpu': args.batch, 'num_worker_per_gpu': args.workers, 'dataset_enlarge_ratio': 100,
            'pin_memory': cuda, 'prefetch_mode': None}},
        'network_g': base['network_g'],
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': train,
        'logger': {'print_freq': 10, 'save_checkpoint_freq': 10**9, 'use_tb_logger': False},
        'dist_params': {'backend': 'gloo', 'port': 29500},
    }


def run_ours(option_path, work_root):
    """basicsr.train.train_pipeline with flare_sr's fixes; BasicSR's two AvgTimers record every iteration."""
    import basicsr.train

    from flare_sr import basicsr_fixes
    from flare_sr.utils.options_check import check_option_file

    timers = []

    class RecordingTimer(basicsr.train.AvgTimer):
        def __init__(self, *a, **kw):
            self.history, self.stamps = [], []
            super().__init__(*a, **kw)
            timers.append(self)

        def record(self):
            super().record()
            self.history.append(self.current_time)
            self.stamps.append(self.toc)

    basicsr.train.AvgTimer = RecordingTimer
    basicsr_fixes.apply()
    sys.argv = ['train.py', '-opt', option_path]
    check_option_file(option_path, is_train=True)
    basicsr.train.train_pipeline(work_root)
    data_timer, iter_timer = timers[:2]  # created in this order by train_pipeline
    steps = len(iter_timer.history)  # the loop records data once more per epoch before it breaks
    return {'data': data_timer.history[:steps], 'iter': iter_timer.history, 'stamps': iter_timer.stamps}


def bare_setup(opt):
    """(device, loader, net) of a bare loop: the option file's training set through BasicSR's build_dataloader
    and ResumableSampler, as ours reads it, and its network_g in train mode."""
    from basicsr.archs import build_network
    from basicsr.data import build_dataloader, build_dataset

    from flare_sr.data.sampling import ResumableSampler

    torch.manual_seed(opt['manual_seed'])
    device = torch.device('cuda' if opt['num_gpu'] else 'cpu')
    dataset_opt = dict(opt['datasets']['train'], phase='train', seed=opt['manual_seed'])
    dataset = build_dataset(dataset_opt)
    sampler = ResumableSampler(dataset, 1, 0, dataset_opt['dataset_enlarge_ratio'])
    loader = build_dataloader(dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=False, sampler=sampler,
                              seed=opt['manual_seed'])
    loader.generator = torch.Generator().manual_seed(opt['manual_seed'])
    return device, loader, build_network(dict(opt['network_g'])).to(device).train()


def run_bare(opt):
    """The same work without BasicSR's loop or model class."""
    from basicsr.losses import build_loss

    device, loader, net = bare_setup(opt)
    optim_opt = dict(opt['train']['optim_g'])
    assert optim_opt.pop('type') == 'Adam'
    optimizer = torch.optim.Adam(net.parameters(), **optim_opt)
    criterion = build_loss(dict(opt['train']['pixel_opt'])).to(device)
    grad_clip = opt['train'].get('grad_clip')
    total = opt['train']['total_iter']
    data_times, iter_times, stamps = [], [], []
    epoch, iteration = 0, 0
    while iteration < total:
        loader.sampler.set_epoch(epoch)
        batches = iter(loader)
        epoch += 1
        tic = time.time()
        for batch in batches:
            lq, gt = batch['lq'].to(device), batch['gt'].to(device)
            data_done = time.time()
            outputs = net(lq)
            loss = sum(criterion(output, gt) for output in outputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            optimizer.step()
            if device.type == 'cuda':
                torch.cuda.synchronize()
            toc = time.time()
            data_times.append(data_done - tic)
            iter_times.append(toc - tic)
            stamps.append(toc)
            iteration += 1
            if iteration >= total:
                break
            tic = time.time()
    return {'data': data_times, 'iter': iter_times, 'stamps': stamps}


def summarise(record, warmup):
    """its/s (wall clock between the warm-up's end and the last step), mean step, data-wait share."""
    data = np.array(record['data'][warmup:])
    iters = np.array(record['iter'][warmup:])
    stamps = record['stamps']
    its = (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1]) if warmup else len(stamps) / sum(iters)
    return {'its': its, 'step_ms': iters.mean() * 1000, 'data_ms': data.mean() * 1000,
            'data_share': data.sum() / iters.sum(), 'data_max_share': (data / iters).max(), 'n': len(iters)}


def child_record(loop, option_path, bare):
    """One loop's record, in a child process: ``run_ours`` on the option file, or ``bare`` on its options."""
    if loop == 'ours':
        return run_ours(option_path, os.path.dirname(option_path))
    return bare(read_options(option_path))


def best_of_alternating_runs(script, option_path, args, extra=()):
    """{loop: summary} of the best of ``args.repeats`` child runs of ``script`` per loop; the loops alternate so a
    change in machine load hits both. A record's keys beyond the timings (``peak_mib``) stay in its summary."""
    results = {}
    for repeat in range(args.repeats):
        for loop in LOOPS:
            print(f'run {repeat + 1}/{args.repeats}: {loop} loop ({args.warmup} + {args.iters} iterations) ...',
                  flush=True)
            record = run_child([script, '--child', loop, '--child-opt', option_path, *extra])
            extras = {key: value for key, value in record.items() if key not in ('data', 'iter', 'stamps')}
            summary = dict(summarise(record, args.warmup), **extras)
            if loop not in results or summary['its'] > results[loop]['its']:
                results[loop] = summary
    return results


def parse_args():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--opt', default=os.path.join(ROOT, 'options', 'tiny', 'hinet_phase1.yml'),
                        help='option file whose network_g and train section are benchmarked')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--size', type=size_text, default='1224x1632', help='HxW of the generated training images')
    parser.add_argument('--pairs', type=int, default=2, help='generated image pairs')
    parser.add_argument('--patch', type=int, default=256, help='LMDB patch size (stride patch/2)')
    parser.add_argument('--gt-size', type=int, default=128, help='training crop')
    parser.add_argument('--batch', type=int, default=4, help='batch_size_per_gpu')
    parser.add_argument('--workers', type=int, default=1, help='num_worker_per_gpu')
    parser.add_argument('--amp', choices=['bf16', 'fp16', 'false'], help='override train.amp of --opt')
    add_loop_arguments(parser, iters=30, warmup=5)
    return parser.parse_args()


def add_loop_arguments(parser, iters, warmup):
    """The arguments of a loop-against-loop bench (best_of_alternating_runs), with its default counts."""
    parser.add_argument('--iters', type=int, default=iters, help='timed iterations per loop')
    parser.add_argument('--warmup', type=int, default=warmup, help='untimed iterations first')
    parser.add_argument('--repeats', type=int, default=2, help='alternating runs per loop; the best is reported')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--child', choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument('--child-opt', help=argparse.SUPPRESS)


def main():
    args = parse_args()
    if args.child:
        print(json.dumps(child_record(args.child, args.child_opt, run_bare)))
        return

    with tempfile.TemporaryDirectory(prefix='bench_train_') as folder:
        lq_dir, gt_dir, _ = make_pairs(folder, args.pairs, parse_size(args.size), args.seed)
        lmdb_dir = os.path.join(folder, 'patches')
        print(pack(lq_dir, gt_dir, lmdb_dir, args.patch, args.patch // 2, max(1, min(args.workers, args.pairs))),
              flush=True)
        opt = build_options(args, lmdb_dir)
        option_path = os.path.join(folder, 'bench_training.yml')
        with open(option_path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(opt, handle)
        results = best_of_alternating_runs(os.path.abspath(__file__), option_path, args)
    rows = []
    for loop, label in (('ours', 'ours: BasicSR train_pipeline + HINetModel'), ('bare', 'bare PyTorch loop')):
        result = results[loop]
        rows.append([label, result['n'], f"{result['its']:.3f}", f"{result['step_ms']:.0f}",
                     f"{result['data_ms']:.1f}", f"{result['data_share']:.1%}", f"{result['data_max_share']:.1%}"])
    relative = results['ours']['its'] / results['bare']['its']
    print_table(
        f'Training throughput - {machine_name(args.device)}; {os.path.relpath(args.opt, ROOT)} network_g '
        f"{opt['network_g']}, batch {args.batch}, gt_size {args.gt_size}, workers {args.workers}, LMDB {args.patch}px "
        f"patches, amp {opt['train'].get('amp', False)}; best of {args.repeats} alternating runs per loop",
        ['loop', 'timed iters', 'iters/s', 'mean step (ms)', 'mean data wait (ms)', 'data wait share',
         'worst step data share'], rows,
        [f'ours / bare: {relative:.3f} ({relative - 1:+.1%}; target within 5%); '
         f"data wait share of ours: {results['ours']['data_share']:.1%} (target < 5%)"])


if __name__ == '__main__':
    main()
