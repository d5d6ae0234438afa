"""torchrun with 2 CPU processes (gloo), stopped and resumed with --auto_resume: the ranks end with
identical weights, equal to one process training on the same global batch without a break; only
rank 0 writes. Also: torch.distributed.launch's --local-rank."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import (TRAIN_SCRIPT, assert_same_weights, experiment_dirs, hinet_options, make_flare_pairs,
                           remove_experiment, run_train, subprocess_env, unique_name, write_options)

# Test instrumentation only: after BasicSR's final save, every rank also writes the weights it holds.
RANK_DUMP = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(TRAIN_SCRIPT)))  # this checkout, not an installed copy
    import torch
    import flare_sr
    from flare_sr.models.flare_base import FlareBaseModel

    original_save = FlareBaseModel.save

    def save_and_dump(self, epoch, current_iter):
        original_save(self, epoch, current_iter)
        if current_iter == -1:
            state = self.get_bare_model(self.net_g).state_dict()
            torch.save({'params': state}, os.path.join(os.environ['RANK_DUMP_DIR'], f"rank{os.environ['RANK']}.pth"))

    FlareBaseModel.save = save_and_dump
    sys.argv = [TRAIN_SCRIPT] + sys.argv[1:]
    from flare_sr.cli import train_main
    train_main()
''')


@pytest.fixture
def names():
    created = []
    yield lambda stem: created.append(unique_name(stem)) or created[-1]
    for name in created:
        remove_experiment(name)


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_resume_and_match_single_process_on_the_global_batch(tmp_path, names):
    """Two ranks with batch 1 see, at every iteration, exactly the two samples one process with batch 2
    sees (ResumableSampler interleaves one key sequence), and DDP averages their gradients, so Adam
    takes the same steps. HINet with its half-instance norms switched off: nothing depends on batch
    statistics, and no bias sits before a norm (such biases get rounding-noise gradients, which Adam's
    normalisation would blow up into full-size, run-dependent steps)."""
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 6, seed=5),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=6, prefix='test')}
    iters = 6
    dist_opt = hinet_options(data, names('test_ddp'), total_iter=iters, grad_clip=1.0)
    dist_opt['datasets']['train']['batch_size_per_gpu'] = 1
    single_opt = hinet_options(data, names('test_ddp_single'), total_iter=iters, grad_clip=1.0)
    single_opt['datasets']['train']['batch_size_per_gpu'] = 2
    for opt in (dist_opt, single_opt):
        opt['network_g']['hin_position_right'] = -1

    dump_dir = tmp_path / 'ranks'
    dump_dir.mkdir()
    launcher = tmp_path / 'train_with_rank_dump.py'
    launcher.write_text(f'TRAIN_SCRIPT = {TRAIN_SCRIPT!r}\n' + RANK_DUMP)
    env = dict(subprocess_env(), RANK_DUMP_DIR=str(dump_dir))
    outputs = []
    # 4 iterations (checkpoint at 4, inside the second epoch of 3 per rank), then --auto_resume to 6
    for stop, extra in ((4, []), (iters, ['--auto_resume'])):
        dist_opt['train']['total_iter'] = stop
        dist_opt['logger']['save_checkpoint_freq'] = 4
        command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(launcher),
                   '-opt', write_options(tmp_path / f'dist_{stop}.yml', dist_opt), '--launcher', 'pytorch', *extra]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-4000:]
        outputs.append(result.stdout + result.stderr)
    assert 'Resuming training from epoch: 1, iter: 4.' in outputs[1]
    single = run_train(write_options(tmp_path / 'single.yml', single_opt), tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]

    rank0, rank1 = dump_dir / 'rank0.pth', dump_dir / 'rank1.pth'
    assert_same_weights(rank0, rank1, atol=0)
    dist_dir = experiment_dirs(dist_opt['name'])[0]
    assert_same_weights(os.path.join(dist_dir, 'models', 'net_g_latest.pth'), rank0, atol=0)
    single_model = os.path.join(experiment_dirs(single_opt['name'])[0], 'models', 'net_g_latest.pth')
    assert_same_weights(single_model, rank0, atol=1e-5)
    logs = [name for name in os.listdir(dist_dir) if name.endswith('.log')]
    assert len(logs) == 2, f'one log per run, from rank 0 only: {logs}'
    assert 'torch.distributed: gloo backend, 2 processes' in outputs[0]


def test_local_rank_argument_of_torch_distributed_launch_is_accepted(tmp_path, monkeypatch):
    """torch.distributed.launch passes --local-rank=N, which BasicSR's parser rejects."""
    import basicsr.train

    from flare_sr import basicsr_fixes

    basicsr_fixes.apply()
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 2, seed=7),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=8, prefix='test')}
    opt_path = write_options(tmp_path / 'opt.yml', hinet_options(data, 'argv_only', total_iter=1))
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', opt_path, '--local-rank=1'])
    opt, args = basicsr.train.parse_options(str(tmp_path), is_train=True)
    assert args.local_rank == 1 and opt['dist'] is False
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', opt_path, '--local-rank', '3'])
    assert basicsr.train.parse_options(str(tmp_path), is_train=True)[1].local_rank == 3


@pytest.mark.slow
def test_torchrun_on_cpu_trains_an_option_file_written_for_8_gpus(tmp_path, names):
    """What BasicSR's templates carry (dist_params nccl on port 29500, num_gpu 8, prefetch_mode cuda with
    pin_memory) plus flare_sr's GPU settings: two CPU ranks train, each setting falls back with one
    warning line (from rank 0 only), and the run ends with a checkpoint."""
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 4, seed=9),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=10, prefix='test')}
    opt = hinet_options(data, names('test_ddp_gpu_file'), total_iter=2, amp='fp16', channels_last=True)
    opt.update(num_gpu=8, dist_params={'backend': 'nccl', 'port': 29500})
    opt['datasets']['train'].update(prefetch_mode='cuda', pin_memory=True, batch_size_per_gpu=1)
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', TRAIN_SCRIPT,
               '-opt', write_options(tmp_path / 'gpu_file.yml', opt), '--launcher', 'pytorch']
    result = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert 'torch.distributed: gloo backend, 2 processes' in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning: ')]
    assert warnings == [
        'warning: dist_params.backend: nccl needs GPUs, but no GPU is visible; using gloo',
        'warning: num_gpu: 8, but no GPU is visible (CUDA unavailable); training on the CPU (num_gpu: 0)',
        'warning: datasets.train.prefetch_mode: cuda needs a GPU; using the CPU prefetcher instead',
        'warning: datasets.train.pin_memory: true only speeds up copies to a GPU; off on the CPU',
    ]
    assert 'Traceback' not in result.stderr
    log = result.stdout + result.stderr
    assert 'train.amp: fp16 needs a GPU; using bf16 autocast on the CPU instead.' in log
    assert os.path.isfile(os.path.join(experiment_dirs(opt['name'])[0], 'models', 'net_g_latest.pth'))
