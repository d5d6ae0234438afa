"""A tiny job on a busy machine: OpenMP's default wait policy against the passive one flare_sr sets, with and
without a competing CPU-bound process, one table, all rows measured side by side in one run.

The job runs in a fresh process: a 3k-parameter HINet (wf 4, depth 2, as the tests train) on ``--images``
tiny ``--size`` images, one at a time, without gradients (a small inference or validation pass: many
short parallel regions, which is where idle threads spin). Two ways to start it:

  OpenMP default  ``import torch`` before ``import flare_sr``: libgomp reads its settings when torch loads it,
                  so flare_sr's default comes too late and idle threads spin before they sleep (GOMP_SPINCOUNT)
  flare_sr        ``import flare_sr`` first, as every entry point (train.py, test.py, infer.py, the pipeline,
                  the console scripts) does: OMP_WAIT_POLICY=PASSIVE unless the user set it

The competitor is one single-threaded busy loop (``python -c 'while True: pass'``), started before the job
and killed after it. Each cell is the best of ``--repeats`` runs; rows alternate so load from elsewhere
falls on both alike.

    python scripts/bench/bench_busy_machine.py [--images 200] [--size 64x64] [--repeats 2]
"""
import os
import subprocess
import sys

from _common import machine_name, parse_size, print_table, run_child, size_text

from flare_sr.errors import ArgumentParser  # the job's environment is set per child (run_job)

JOB = '''
import json, sys, time
{first}
from flare_sr.archs.hinet_arch import HINet
count, height, width = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
net = HINet(wf=4, depth=2).eval()
images = torch.rand(count, 1, 3, height, width)
with torch.no_grad():
    net(images[0])
    start = time.perf_counter()
    for image in images:
        net(image)
print(json.dumps({{'seconds': time.perf_counter() - start}}))
'''
STARTS = {'OpenMP default': 'import torch\nimport flare_sr', 'flare_sr (passive)': 'import flare_sr\nimport torch'}


def run_job(first, images, size, competing):
    env = {key: value for key, value in os.environ.items() if key not in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}
    competitor = subprocess.Popen([sys.executable, '-c', 'while True: pass']) if competing else None
    try:
        return run_child(['-c', JOB.format(first=first), str(images), *map(str, size)], env=env)['seconds']
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=200)
    parser.add_argument('--size', type=size_text, default='64x64', help='HxW of each image')
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args()
    size = parse_size(args.size)
    best = {}
    for _ in range(args.repeats):
        for competing in (False, True):
            for name, first in STARTS.items():
                seconds = run_job(first, args.images, size, competing)
                best[name, competing] = min(seconds, best.get((name, competing), float('inf')))
    rows = []
    for competing in (False, True):
        default, passive = best['OpenMP default', competing], best['flare_sr (passive)', competing]
        rows.append(['1 busy-loop process' if competing else 'none', f'{default:.2f}', f'{passive:.2f}',
                     f'{default / passive:.1f}x'])
    slowdown = [best[name, True] / best[name, False] for name in STARTS]
    print_table(f'A tiny job on a busy machine: HINet wf 4 depth 2, {args.images} images of {args.size}, one at a '
                f'time; {machine_name()}; best of {args.repeats}',
                ['competing', 'OpenMP default (s)', 'flare_sr passive (s)', 'passive speed-up'], rows,
                [f'Slow-down from the competitor: OpenMP default {slowdown[0]:.1f}x, flare_sr {slowdown[1]:.1f}x.'])


if __name__ == '__main__':
    main()
