"""A run killed with SIGKILL resumes to the very state of an uninterrupted run; a kill during a save
leaves the previous checkpoint loadable; NaN losses stop (or skip) as the options say; bad option
files fail before training with the key named."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_option_file
from tests.helpers import (assert_same_weights, experiment_dirs, flare7kpp_dataset_options, flare_data, hinet_options,
                           load_params, make_flare7kpp_tree, pix2pix_options, run_train, subprocess_env, train_command,
                           write_options)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('flare_pairs')
    return flare_data(root, 7, 1, seed=3)


def _state(name, iteration):
    path = os.path.join(experiment_dirs(name)[0], 'training_states', f'{iteration}.state')
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def tiny_layers(tmp_path_factory):
    return make_flare7kpp_tree(tmp_path_factory.mktemp('flare_layers'), backgrounds=7)


@pytest.mark.slow
@pytest.mark.parametrize('train_set', ['pairs', 'layers', 'synthetic', 'pairs with a worker'])
def test_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, tiny_data, tiny_layers, experiment, train_set):
    """Pix2Pix with dropout, BatchNorm, random crops/flips/rotations and two optimizers (AdamW as HINet and
    NAFNet write it, and Adam) under TrueCosineAnnealingLR: every source of randomness and state must
    survive. 7 images, batch 2: epochs of 3 iterations and checkpoints every 5 (at 5 and 10, both inside
    an epoch), so the run resumes mid-epoch and must skip exactly the samples already trained on. With
    ``layers`` the 7 images are backgrounds of Flare7kpp_Pair_Loader, with ``synthetic`` the clean images of
    SyntheticFlareDataset: each sample a fresh composite, which the resumed run must redraw bit for bit. With a
    DataLoader worker, BasicSR's prefetcher starts an iterator before the loop sets the resumed epoch, and the
    worker draws from it at once: the skip must still apply to the epoch trained on."""
    total, every, lr, eta_min = 14, 5, 2e-3, 1e-4
    names = {'whole': experiment('test_kill_whole'), 'killed': experiment('test_kill_killed')}
    paths = {}
    for key, name in names.items():
        opt = pix2pix_options(tiny_data, name, total_iter=total,
                              scheduler={'type': 'TrueCosineAnnealingLR', 'T_max': total, 'eta_min': eta_min})
        if train_set == 'layers':
            opt['datasets']['train'] = flare7kpp_dataset_options(tiny_layers, img_size=64, mask_type='flare')
        elif train_set == 'synthetic':
            opt['datasets']['train'].update(type='SyntheticFlareDataset', seed=5, flare={'frame_scale': 2.0})
            del opt['datasets']['train']['dataroot_lq']
        elif train_set == 'pairs with a worker':
            opt['datasets']['train']['num_worker_per_gpu'] = 1
        opt['train']['optim_g'] = {'type': 'AdamW', 'lr': lr, 'betas': [0.9, 0.9], 'weight_decay': 0.01}
        opt['logger']['save_checkpoint_freq'] = every
        opt['val']['val_freq'] = 5  # validation between checkpoints must not shift any RNG
        paths[key] = write_options(tmp_path / f'{key}.yml', opt)
    whole = subprocess.Popen(train_command(paths['whole']), cwd=tmp_path, env=subprocess_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = subprocess.Popen(train_command(paths['killed']), cwd=tmp_path, env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_dir = os.path.join(experiment_dirs(names['killed'])[0], 'training_states')
    deadline = time.time() + 180
    while not os.path.isfile(os.path.join(state_dir, '5.state')):
        assert killed.poll() is None and time.time() < deadline, 'the run to kill ended before its checkpoint'
        time.sleep(0.05)
    time.sleep(0.1)  # a few iterations after the checkpoint
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert whole.wait(timeout=180) == 0
    states = sorted(int(name.split('.')[0]) for name in os.listdir(state_dir) if name.endswith('.state'))
    assert states[-1] < total, 'the kill must come before the end of training'

    result = run_train(paths['killed'], tmp_path / '..', '--auto_resume')
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'iter: {states[-1]}.' in result.stdout + result.stderr

    for label in ('net_g', 'net_d'):
        models = [os.path.join(experiment_dirs(name)[0], 'models', f'{label}_latest.pth') for name in names.values()]
        assert_same_weights(*models, atol=1e-6)
    assert states[-1] % 3 != 0, 'the resumed checkpoint must lie inside an epoch'
    final = [_state(name, 10) for name in names.values()]
    cosine = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * 9 / total)) / 2  # 9 scheduler steps by iteration 10
    for optimizer in range(2):
        lrs = [state['optimizers'][optimizer]['param_groups'][0]['lr'] for state in final]
        steps = [state['optimizers'][optimizer]['state'][0]['step'] for state in final]
        assert lrs[0] == lrs[1] == pytest.approx(cosine, rel=1e-9) and steps[0] == steps[1]
        assert final[0]['schedulers'][optimizer] == final[1]['schedulers'][optimizer]
    assert final[0]['optimizer_types'] == final[1]['optimizer_types'] == ['AdamW', 'Adam']
    assert final[0]['epoch'] == final[1]['epoch']


SAVE_LOOP = textwrap.dedent('''
    import sys
    import flare_sr
    import torch
    from flare_sr.models.hinet_model import HINetModel
    opt = {'is_train': False, 'dist': False, 'num_gpu': 0, 'path': {'models': sys.argv[1]},
           'network_g': {'type': 'HINet', 'wf': 48, 'depth': 3}}
    model = HINetModel(opt)
    version = 0
    while True:
        version += 1
        with torch.no_grad():
            for param in model.net_g.parameters():
                param.fill_(version)
        model.save_network(model.net_g, 'net_g', -1)
''')


@pytest.mark.slow
def test_sigkill_during_save_leaves_previous_checkpoint_loadable(tmp_path):
    """The real save path (FlareBaseModel.save_network) rewrites net_g_latest.pth in a loop; it is
    killed while a temporary file exists, i.e. mid-write, and the checkpoint must still load whole."""
    models = tmp_path / 'models'
    models.mkdir()
    script = tmp_path / 'save_loop.py'
    script.write_text(SAVE_LOOP)
    process = subprocess.Popen([sys.executable, str(script), str(models)], env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = models / 'net_g_latest.pth'
    deadline = time.time() + 120
    try:
        while not (target.exists() and any(name.endswith('.tmp') for name in os.listdir(models))):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.time() < deadline
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    params = load_params(target)
    versions = {float(value.flatten()[0]) for value in params.values()}
    assert len(versions) == 1, 'a checkpoint must hold one complete version, never a mix'
    version = versions.pop()
    assert all(bool((value == version).all()) for value in params.values())


@pytest.mark.slow
def test_nonfinite_loss_stops_naming_the_iteration_and_keeps_last_checkpoint(tmp_path, tiny_data, experiment):
    """A learning rate of 1e30 makes the weights explode after the first step; the second loss is inf/NaN."""
    name = experiment('test_nan_stop')
    opt = hinet_options(tiny_data, name, total_iter=6, lr=1e30)
    opt['logger']['save_checkpoint_freq'] = 1
    result = run_train(write_options(tmp_path / 'nan.yml', opt), tmp_path)
    assert result.returncode == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(error_lines) == 1 and 'Traceback' not in result.stderr
    assert 'non-finite loss' in error_lines[0] and 'iteration 2' in error_lines[0]
    models = os.path.join(experiment_dirs(name)[0], 'models')
    assert sorted(os.listdir(models)) == ['net_g_1.pth']  # nothing written after the failure
    assert all(torch.isfinite(value).all() for value in load_params(os.path.join(models, 'net_g_1.pth')).values())


@pytest.mark.slow
def test_nonfinite_loss_skip_mode_drops_steps_and_finishes(tmp_path, tiny_data, experiment):
    """Also: prefetch_mode cuda on a CPU-only run falls back to the CPU prefetcher instead of crashing."""
    name = experiment('test_nan_skip')
    opt = hinet_options(tiny_data, name, total_iter=5, lr=1e30, nonfinite='skip')
    opt['datasets']['train'].update(prefetch_mode='cuda', pin_memory=True)
    result = run_train(write_options(tmp_path / 'skip.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'prefetch_mode: cuda needs a GPU; using the CPU prefetcher instead' in log
    assert 'iteration 2: non-finite loss' in log and 'step skipped (4 so far)' in log
    assert 'skipped_steps: 4' in log
    params = load_params(os.path.join(experiment_dirs(name)[0], 'models', 'net_g_latest.pth'))
    assert all(torch.isfinite(value).all() for value in params.values())


@pytest.mark.parametrize('edit, message', [
    (lambda o: o['train']['optim_g'].update(lrr=1e-4), 'train.optim_g.lrr: unknown key (did you mean lr?)'),
    (lambda o: o['train']['optim_g'].update(lr='2e-4'), "train.optim_g.lr: expected a number, got the string '2e-4'"),
    (lambda o: o['train'].update(total_iter=10.5), 'train.total_iter: expected an integer, got 10.5'),
    (lambda o: o['network_g'].update(widht=8), 'network_g.widht: unknown key'),
    (lambda o: o['network_g'].update(depth='4'), "network_g.depth: expected an integer, got the string '4'"),
    (lambda o: o['datasets']['train'].update(use_flip=False),
     'datasets.train.use_flip: False contradicts use_hflip: True'),
    (lambda o: o['train']['optim_g'].update(type='Adamm'),
     "train.optim_g.type: unknown optimizer 'Adamm' (one of Adam, AdamW, "),
    (lambda o: o['train']['scheduler'].update(type='CosineLR'), "train.scheduler.type: unknown scheduler 'CosineLR'"),
    (lambda o: o['train']['scheduler'].pop('milestones'), 'train.scheduler.milestones: missing'),
    (lambda o: o['datasets']['train'].update(dataroot_gt='/no/such/folder'), 'datasets.train.dataroot_gt: '
                                                                             '/no/such/folder does not exist'),
    (lambda o: o['path'].update(pretrain_network_g='missing.pth'), 'path.pretrain_network_g: missing.pth does not'),
    (lambda o: o['train'].update(amp='fp32'), "train.amp: expected true or false or 'bf16' or 'fp16' or 'auto'"),
    (lambda o: o['train'].update(nonfinite='ignore'), "train.nonfinite: expected 'stop' or 'skip'"),
    (lambda o: o['val']['tile'].update(overlapp=8), 'val.tile.overlapp: unknown key (did you mean overlap?)'),
    (lambda o: o['val']['metrics']['psnr'].update(better='hihger'), "val.metrics.psnr.better: expected 'higher' or "
                                                                    "'lower', got the string 'hihger'"),
    (lambda o: o.update(model_type='HINetModle'), "model_type: unknown 'HINetModle' (did you mean HINetModel?)"),
    (lambda o: o.update(dist_params={'backend': 'mpi'}), "dist_params.backend: expected 'nccl' or 'gloo'"),
])
def test_option_mistakes_name_the_key(tmp_path, tiny_data, edit, message):
    opt = hinet_options(tiny_data, 'unused', total_iter=2)
    edit(opt)
    path = write_options(tmp_path / 'bad.yml', opt)
    with pytest.raises(FlareSRError) as error:
        check_option_file(path)
    assert str(error.value).startswith(f'{path}: ')
    assert message in str(error.value)


@pytest.mark.slow
def test_good_options_pass_and_broken_files_fail_in_one_line(tmp_path, tiny_data):
    check_option_file(write_options(tmp_path / 'good.yml', hinet_options(tiny_data, 'ok', total_iter=2)))
    broken = tmp_path / 'broken.yml'
    broken.write_text('name: x\ntrain: {total_iter: 3\n')
    with pytest.raises(FlareSRError, match=r'broken.yml: not valid YAML at line 3'):
        check_option_file(str(broken))
    with pytest.raises(FlareSRError, match='missing.yml: option file not found'):
        check_option_file(str(tmp_path / 'missing.yml'))
    # and through the command line: exit status 2, one line, nothing created
    opt = hinet_options(tiny_data, 'never_created', total_iter=2)
    opt['train']['optim_g']['lrr'] = 1e-3
    result = run_train(write_options(tmp_path / 'typo.yml', opt), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'error: {tmp_path / "typo.yml"}: train.optim_g.lrr: unknown key (did you mean lr?)']
    assert not os.path.exists(experiment_dirs('never_created')[0])


@pytest.mark.slow
def test_ctrl_c_says_which_training_state_the_same_command_goes_on_from(tmp_path, tiny_data, experiment):
    """A real train.py stopped by SIGINT (Ctrl-C): one line naming the newest training state, and --auto_resume
    when the run had none; before the first state, that the run starts again."""
    def interrupted(option_file, *args, state=None):
        """SIGINT once ``state`` exists, else once the training loop has started; the last stderr line."""
        # Python acts on SIGINT only if it is not ignored at start, and a background job of a non-interactive shell
        # (a suite started with `&`) passes SIGINT ignored to its children: the child gets the default, as in a shell
        process = subprocess.Popen(train_command(option_file, *args), cwd=tmp_path, env=subprocess_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            for line in process.stderr:  # BasicSR's logger: "Start training from epoch: 0, iter: 0"
                if 'Start training' in line:
                    break
            assert process.poll() is None, 'the run ended before its training loop'
            deadline = time.time() + 180
            while state is not None and not os.path.isfile(state):
                assert process.poll() is None and time.time() < deadline, 'the run ended before its checkpoint'
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            stderr = process.communicate(timeout=60)[1]
        finally:
            if process.poll() is None:  # never left training on
                process.kill()
                process.wait()
        assert process.returncode == 130 and 'Traceback' not in stderr, stderr[-2000:]
        return stderr.splitlines()[-1]

    name = experiment('test_ctrl_c')
    opt = hinet_options(tiny_data, name, total_iter=100000)
    opt['logger'].update(save_checkpoint_freq=3, print_freq=100000)
    opt['val']['val_freq'] = 100000
    option_file = write_options(tmp_path / 'ctrl_c.yml', opt)
    state_dir = os.path.join(experiment_dirs(name)[0], 'training_states')
    for args in ((), ('--auto_resume',)):
        last = interrupted(option_file, *args, state=os.path.join(state_dir, '6.state' if args else '3.state'))
        newest = max(int(entry.split('.')[0]) for entry in os.listdir(state_dir) if entry.endswith('.state'))
        resume = '' if args else ' with --auto_resume'
        assert last == (f'interrupted: the same command{resume} goes on from iteration {newest} '
                        f'({os.path.join(state_dir, f"{newest}.state")})')
    early = hinet_options(tiny_data, experiment('test_ctrl_c_early'), total_iter=100000)
    early['logger'].update(save_checkpoint_freq=100000, print_freq=100000)
    early['val']['val_freq'] = 100000
    assert interrupted(write_options(tmp_path / 'early.yml', early)) == (
        'interrupted: no training state was saved yet (logger.save_checkpoint_freq: 100000): the same command starts '
        'again from iteration 0')


INTERRUPTING_LAUNCHER = '''
import os, runpy, signal, sys
import torch
real_save, states = torch.save, []


class Interrupting:
    """The file a training state is written to; Ctrl-C arrives while torch.save writes it (at its 3rd write: at the
    1st, torch passes the KeyboardInterrupt on as it is)."""

    def __init__(self, handle):
        self.handle, self.writes = handle, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return self.handle.write(data)

    def flush(self):
        return self.handle.flush()


def save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and 'optimizers' in obj:
        states.append(f)
        if len(states) == 2:
            f = Interrupting(f)
    return real_save(obj, f, *args, **kwargs)


torch.save = save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@pytest.mark.slow
def test_ctrl_c_while_a_training_state_is_written_says_where_to_go_on(tmp_path, tiny_data, experiment):
    """torch.save turns a Ctrl-C during its write into RuntimeError "unexpected pos" (a traceback, status 1): it is
    the interrupted line too, naming the state before, and --auto_resume goes on from it."""
    name = experiment('test_ctrl_c_saving')
    opt = hinet_options(tiny_data, name, total_iter=6)
    opt['logger'].update(save_checkpoint_freq=2, print_freq=100000)
    option_file = write_options(tmp_path / 'saving.yml', opt)
    launcher = tmp_path / 'launcher.py'
    launcher.write_text(INTERRUPTING_LAUNCHER)
    command = train_command(option_file)
    result = subprocess.run([command[0], str(launcher), *command[1:]], cwd=tmp_path, env=subprocess_env(),
                            capture_output=True, text=True, timeout=240,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state_dir = os.path.join(experiment_dirs(name)[0], 'training_states')
    assert result.returncode == 130 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == ('interrupted: the same command with --auto_resume goes on from iteration '
                                              f'2 ({os.path.join(state_dir, "2.state")})')
    assert sorted(os.listdir(state_dir)) == ['2.state']  # no half-written 4.state, no temporary file
    result = run_train(option_file, tmp_path, '--auto_resume')
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(state_dir)) == ['2.state', '4.state', '6.state']
