"""The demo's training with and without the glow stage, side by side in one run, and the step of each of its nets on
1 and 2 threads, beside a busy core, in channels_last and bf16 (why each stage trains on one thread on 2 cores).

Table 1 runs ``flare_sr/train_pipeline.py`` twice on the demo's option files (``options/tiny``: stage I, its fold
models, stages II and III), the second time with ``--glow options/tiny/glow.yml``, as ``scripts/run_demo.sh`` does.
Each row is a fresh run in a temp copy of ``flare_sr/`` and ``options/`` with ``datasets/demo`` linked in, so the
repository's ``experiments/`` are untouched. The cells are each stage's wall seconds from its done marker (a stage
beside others is timed to its own end) and the pipeline's wall seconds. Beside the glow stage, stages I-III train on
the threads it leaves them (one on 2 cores), so the first row runs on those threads too; the last column says whether
stages I-III trained the same in both rows (every stage's last validation PSNR and SSIM equal).

Table 2 times one training step of each file's ``network_g`` (Adam, L1 against a random label; Pix2Pix's
discriminator is left out) on a batch of the file's sample size (``gt_size``, or the ``downscale_to`` frame), each
cell in a fresh process (the best of ``--repeats`` rounds of ``--steps`` steps after 5 warm-up steps): on 1 and on 2
threads, on 2 threads beside one busy-loop process (a stage beside the glow stage), and on 1 thread in channels_last,
without and with bf16 autocast.

    python scripts/bench/bench_pipeline.py [--scale 1.0] [--steps 20] [--repeats 3] [--workdir DIR]

``--scale`` multiplies every file's ``total_iter`` (and the glow file's ``pool_size``) for a quick look; the figures
in docs/benchmarks.md use 1.0, the demo's own files. datasets/demo must exist (``bash scripts/run_demo.sh`` or
``python scripts/make_demo_dataset.py --out datasets/demo --seed 0 --clean-share 0.4``). About 23 minutes on 2
cores at 1.0 (an Intel Xeon).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import ROOT, machine_name, print_table, read_options, run_child, scale_schedule, write_options

from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.pipeline.cross_fit import beside_share
from flare_sr.pipeline.stages import read_marker
from flare_sr.utils.img_util import short_side_size

STAGE_FILES = (('--stage1', 'pix2pix'), ('--stage2', 'hinet_phase1'), ('--stage3', 'hinet_phase2'))
GLOW_FILE = ('--glow', 'glow')
DEMO_DATA = 'python scripts/make_demo_dataset.py --out datasets/demo --seed 0 --clean-share 0.4'

STEP = '''
import json, sys, time
import flare_sr  # noqa: F401 (registers the archs; sets the OpenMP wait policy before torch starts it)
import torch
from basicsr.archs import build_network
opt, batch, height, width, steps, repeats, channels_last, bf16 = json.loads(sys.argv[1])
torch.manual_seed(0)
net = build_network(opt)
optimizer = torch.optim.Adam(net.parameters(), 1e-4)
lq, gt = torch.rand(batch, 3, height, width), torch.rand(batch, 3, height, width)
if channels_last:
    net, lq = net.to(memory_format=torch.channels_last), lq.contiguous(memory_format=torch.channels_last)

def step():
    optimizer.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        out = net(lq)
    sum((o.float() - gt).abs().mean() for o in (out if isinstance(out, (list, tuple)) else [out])).backward()
    optimizer.step()

for _ in range(5):
    step()
best = float('inf')
for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    best = min(best, (time.perf_counter() - start) / steps)
print(json.dumps({'seconds': best}))
'''


# (threads, beside one busy-loop process, channels_last, bf16 autocast) per cell of table 2; the first is the baseline
STEP_CELLS = ((1, False, False, False), (2, False, False, False), (2, True, False, False), (1, False, True, False),
              (1, False, True, True))
STEP_HEADER = ('1 thread', '2 threads', '2 threads, a busy core', '1 thread, channels_last', '+ bf16 autocast')


def sample_size(train):
    """(height, width) of one training sample of ``datasets.train``: ``gt_size`` square, or the ``downscale_to``
    frame of ``frame_size`` (landscape)."""
    if train.get('downscale_to') is not None:
        frame = train['frame_size']
        sides = [frame] * 2 if isinstance(frame, int) else frame
        return tuple(sorted(short_side_size(sides[0], sides[1], train['downscale_to'])))
    return train['gt_size'], train['gt_size']


def step_rows(files, steps, repeats):
    rows = []
    for flag, name in files:
        opt = read_options(os.path.join(ROOT, 'options', 'tiny', f'{name}.yml'))
        train = opt['datasets']['train']
        batch, (height, width) = train['batch_size_per_gpu'], sample_size(train)
        cells = []
        for threads, busy, channels_last, bf16 in STEP_CELLS:
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            job = json.dumps([opt['network_g'], batch, height, width, steps, repeats, channels_last, bf16])
            competitor = subprocess.Popen([sys.executable, '-c', 'while True: pass']) if busy else None
            try:
                cells.append(run_child(['-c', STEP, job], env=env)['seconds'] * 1000)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
        rows.append([f'{flag} {name}.yml: {opt["network_g"]["type"]}', f'{batch} x {height}x{width}',
                     *[f'{cell:.1f}' for cell in cells], *[f'{cells[0] / cell:.2f}' for cell in cells[1:]]])
    return rows


def scaled_copy(workdir, scale):
    """A temp repository for one pipeline run: flare_sr/ and options/ copied (the files scaled by ``scale``),
    datasets/demo linked; returns its path."""
    root = tempfile.mkdtemp(prefix='pipeline_', dir=workdir)
    for folder in ('flare_sr', 'options'):
        shutil.copytree(os.path.join(ROOT, folder), os.path.join(root, folder),
                        ignore=shutil.ignore_patterns('__pycache__'))
    os.makedirs(os.path.join(root, 'datasets'))
    os.symlink(os.path.join(ROOT, 'datasets', 'demo'), os.path.join(root, 'datasets', 'demo'))
    if scale != 1.0:
        for _, name in (*STAGE_FILES, GLOW_FILE):
            opt = read_options(os.path.join(root, 'options', 'tiny', f'{name}.yml'))
            scale_schedule(opt['train'], max(1, round(opt['train']['total_iter'] * scale)))
            train = opt['datasets']['train']
            if train.get('pool_size'):
                train['pool_size'] = max(train['batch_size_per_gpu'], round(train['pool_size'] * scale))
            write_options(os.path.join(root, 'options', 'tiny'), name, opt)
    return root


def run_pipeline(workdir, scale, glow, log_dir):
    """Train the demo's stages in a fresh temp repository; ({label: seconds}, {label: (psnr, ssim)}, total s).
    Without ``glow`` on the threads stages I-III get beside it (flare_sr/pipeline/stages.py)."""
    root = scaled_copy(workdir, scale)
    env = None if glow else dict(os.environ, OMP_NUM_THREADS=str(beside_share()[1]))
    files = [*STAGE_FILES, *([GLOW_FILE] if glow else [])]
    command = [os.path.join(root, 'flare_sr', 'train_pipeline.py'), '--quiet', '--name', 'bench_pipeline']
    for flag, name in files:
        command += [flag, os.path.join('options', 'tiny', f'{name}.yml')]
    log = os.path.join(log_dir, f'pipeline_{"glow" if glow else "plain"}.txt')
    print(f'training the demo pipeline{" with --glow" if glow else ""} (output in {log}) ...', flush=True)
    try:
        start = time.perf_counter()
        with open(log, 'w') as handle:
            code = subprocess.run([sys.executable, *command], cwd=root, stdout=handle, stderr=subprocess.STDOUT,
                                  env=env).returncode
        total = time.perf_counter() - start
        if code:
            raise FlareSRError(f'train_pipeline.py stopped with exit status {code}; see {log}')
        pipeline_dir = os.path.join(root, 'experiments', 'bench_pipeline')
        seconds, scores = {}, {}
        for marker in sorted(os.listdir(pipeline_dir)):
            if marker.startswith('stage_') and marker.endswith('.done'):
                label, record = marker[len('stage_'):-len('.done')], read_marker(os.path.join(pipeline_dir, marker))
                seconds[label] = record['seconds']
                experiment = os.path.join(root, 'experiments', record['experiment'])
                with open(os.path.join(experiment, 'metrics.json'), encoding='utf-8') as handle:
                    validation = list(json.load(handle)['validations'][-1]['datasets'].values())[-1]['mean']
                scores[label] = (validation['psnr']['output'], validation['ssim']['output'])
        return seconds, scores, total
    finally:
        shutil.rmtree(root, ignore_errors=True)  # the temp copy, also after a failure (the log stays)


@exit_on_user_error
def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scale', type=float, default=1.0, help="multiplies every file's total_iter (default 1.0)")
    parser.add_argument('--steps', type=int, default=20, help='steps per round in table 2')
    parser.add_argument('--repeats', type=int, default=3, help='rounds in table 2 (the best one counts)')
    parser.add_argument('--workdir', default=None, help='an existing folder for the temp repositories (default: the '
                        'system temp)')
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(ROOT, 'datasets', 'demo', 'test.csv')):
        raise FlareSRError(f'{os.path.join(ROOT, "datasets", "demo")}: no demo dataset; run {DEMO_DATA}')
    if not 0 < args.scale <= 1:
        raise FlareSRError(f'--scale {args.scale}: expected a number in (0, 1]')
    for flag, value in (('--steps', args.steps), ('--repeats', args.repeats)):
        if value < 1:
            raise FlareSRError(f'{flag} {value}: expected 1 or more')
    if args.workdir is not None:
        if not os.path.isdir(args.workdir):
            raise FlareSRError(f'--workdir {args.workdir}: not an existing folder')
        args.workdir = os.path.abspath(args.workdir)  # each pipeline runs from its own temp copy
    log_dir = tempfile.mkdtemp(prefix='bench_pipeline_logs_', dir=args.workdir)

    steps = step_rows((*STAGE_FILES, GLOW_FILE), args.steps, args.repeats)
    runs = {glow: run_pipeline(args.workdir, args.scale, glow, log_dir) for glow in (False, True)}
    labels = sorted(set(runs[True][0]), key=lambda label: ('G' in label, label))
    same = all(runs[False][1][label] == runs[True][1][label] for label in runs[False][1])
    plain_total = runs[False][2]
    rows = []
    for glow, (seconds, _, total) in runs.items():
        rows.append(['stages I-III + G (--glow)' if glow else 'stages I-III',
                     *[f'{seconds[label]:.0f}' if label in seconds else '-' for label in labels],
                     f'{total:.0f}', f'{total / plain_total:.2f}', '' if not glow else ('yes' if same else 'NO')])
    title = f'Demo pipeline (options/tiny, --scale {args.scale}), wall seconds; {machine_name()}'
    print_table(title, ['run', *[f'stage {label}' for label in labels], 'pipeline', 'x stages I-III',
                        'I-III trained the same'], rows,
                [f'Stage seconds from each done marker (to the stage\'s own end; the fold models I.k side by side). '
                 f'Logs: {log_dir}'])
    print_table(f'One training step per net, milliseconds (best of {args.repeats} x {args.steps}); {machine_name()}',
                ['file: network_g', 'batch x sample', *STEP_HEADER, *[f'x: {cell}' for cell in STEP_HEADER[1:]]],
                steps, ['Adam and L1 on network_g alone, in a fresh process per cell (OMP_NUM_THREADS); "a busy core": '
                        'one busy-loop process beside it, as the glow stage is beside stages I-III; x: the speed-up '
                        'over 1 thread, NCHW, fp32.'])
    print(f'last validation of stages I-III: {"equal" if same else "DIFFERENT"} with and without the glow stage '
          f'({", ".join(f"{label} {runs[True][1][label][0]:.2f} dB" for label in labels if label != "G")})')


if __name__ == '__main__':
    main()
