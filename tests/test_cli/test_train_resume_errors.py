"""train.py resumed from a network file or a malicious state: one error line, non-zero exit, no traceback."""
import os

import pytest
import torch

from tests.helpers import (Payload, experiment_dirs, hinet_options, make_flare_pairs, read_metrics, run_train,
                           write_options)


def _pairs(tmp_path, count):
    return {'train': make_flare_pairs(str(tmp_path / 'train'), count, seed=1),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=2, prefix='test')}


def _options(data, name, total_iter=2, **train_extra):
    """A tiny HINet run's options, a training state every 2 iterations."""
    opt = hinet_options(data, name, total_iter=total_iter, **train_extra)
    opt['logger']['save_checkpoint_freq'] = 2
    return opt


def _trained(tmp_path, opt):
    """``opt`` trained to its end in a real train.py process; returns it."""
    result = run_train(write_options(tmp_path / f'{opt["name"]}.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return opt


@pytest.mark.slow
def test_command_line_resume_from_network_file_or_malicious_state_is_one_error_line(tmp_path, experiment):
    name = experiment('test_resume_misuse')
    opt = _trained(tmp_path, _options(_pairs(tmp_path, 2), name))
    exp_dir = experiment_dirs(name)[0]
    before = sorted(os.listdir(exp_dir))
    network = os.path.join(exp_dir, 'models', 'net_g_2.pth')
    state = os.path.join(exp_dir, 'training_states', '2.state')
    marker = tmp_path / 'payload_ran'
    evil = tmp_path / 'evil.state'
    torch.save({'epoch': 0, 'iter': 2, 'optimizers': [Payload(marker)], 'schedulers': []}, evil)
    for resume_state, message in ((network, f'is a network file (weights only), not a training state; resume from '
                                            f'its training state with path.resume_state: {state}'),
                                  (str(evil), 'refused: it holds the Python object exec')):
        opt['path']['resume_state'] = resume_state
        result = run_train(write_options(tmp_path / 'resume.yml', opt), tmp_path)
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'error: path.resume_state: {resume_state}'), lines
        assert message in lines[0]
    assert not marker.exists()
    assert sorted(os.listdir(exp_dir)) == before
    assert not [entry for entry in os.listdir(os.path.dirname(exp_dir)) if entry.startswith(f'{name}_archived')]


@pytest.mark.slow
def test_resume_with_a_changed_schedule_or_learning_rate_is_one_error_line(tmp_path, experiment):
    # torch loads a state's lr and scheduler settings over the options': a raised total_iter under LinearLR trained
    # on with a negative rate, a new lr or milestones was ignored. Unchanged options resume as before.
    data = _pairs(tmp_path, 2)
    name = experiment('test_resume_schedule')
    opt = _trained(tmp_path, _options(data, name, scheduler={'type': 'LinearLR'}))
    exp_dir = experiment_dirs(name)[0]
    before = sorted(os.listdir(os.path.join(exp_dir, 'models')))
    state = os.path.join(exp_dir, 'training_states', '2.state')
    # each changed key is named in the one line, so one run checks the schedule's length and the optimizer's settings
    for changes, message in (({'total_iter': 4, 'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.5, 0.9],
                                                            'weight_decay': 0.1}},
                              'was saved with train.optim_g.lr 0.002 (the options give 0.0001); train.optim_g.betas '
                              '[0.9, 0.999] (the options give [0.5, 0.9]); train.optim_g.weight_decay 0 (the options '
                              'give 0.1); train.total_iter 2 (the options give 4): '),
                             ({'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5}},
                              'was saved with scheduler(s) LinearLR')):
        changed = _options(data, name, scheduler={'type': 'LinearLR'})
        changed['train'].update(changes)
        result = run_train(write_options(tmp_path / 'resume.yml', changed), tmp_path, '--auto_resume')
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'error: path.resume_state: {state}'), lines
        assert message in lines[0]
        assert 'note:' not in result.stdout  # "nothing left to train" is said only for a state that resumes
    assert sorted(os.listdir(os.path.join(exp_dir, 'models'))) == before
    result = run_train(write_options(tmp_path / 'same.yml', opt), tmp_path, '--auto_resume')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'is at train.total_iter (2): nothing left to train' in result.stdout


@pytest.mark.slow
def test_a_state_of_another_experiment_is_refused_and_this_runs_checkpoints_are_kept(tmp_path, experiment):
    """BasicSR resumed another experiment's state with the network files of this run's models/ (its own weights
    under the other run's optimizers, silently) and overwrote this run's later checkpoints."""
    data = _pairs(tmp_path, 2)
    names = [experiment('test_resume_theirs'), experiment('test_resume_mine')]
    for name in names:
        opt = _trained(tmp_path, _options(data, name, total_iter=4))
    theirs, mine = (experiment_dirs(name)[0] for name in names)
    state = os.path.join(theirs, 'training_states', '2.state')
    opt['path']['resume_state'] = state
    before = {path: os.path.getmtime(path) for path in
              [os.path.join(mine, folder, entry) for folder in ('models', 'training_states')
               for entry in os.listdir(os.path.join(mine, folder))]}
    result = run_train(write_options(tmp_path / 'resume.yml', opt), tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f'error: path.resume_state: {state} is a training state of the experiment {theirs}, but this run is {mine} '
        f'(name: {names[1]}): a resumed run takes its networks from its own models/ and goes on writing there; resume '
        f'it under name: {names[0]}, or start a new run from its weights (path.pretrain_network_g: '
        f'{os.path.join(theirs, "models", "net_g_2.pth")})']
    assert {path: os.path.getmtime(path) for path in before} == before


@pytest.mark.slow
def test_a_resume_with_another_batch_size_restarts_its_epoch_and_says_so(tmp_path, experiment):
    """8 pairs in batches of 2: iteration 2 is half of epoch 0 (4 samples). Resumed in batches of 1, iteration 2
    also lies inside epoch 0 (8 iterations), so the skip was 2 samples, not 4, without a word; the training state
    now keeps the loader's batch and epoch, and the resume restarts the epoch with a warning. The same batch resumes
    mid-epoch as before."""
    name = experiment('test_resume_batch')
    opt = _trained(tmp_path, _options(_pairs(tmp_path, 8), name))
    state = torch.load(os.path.join(experiment_dirs(name)[0], 'training_states', '2.state'), weights_only=True)
    assert state['epoch_layout'] == {'batch_size_per_gpu': 2, 'iters_per_epoch': 4}
    opt['train']['total_iter'] = 3
    for batch, line in ((1, 'Resume: the batch size or the training set changed since iteration 2 (then 2 per batch, '
                            '4 iterations per epoch; now 1, 8); epoch 0 restarts from its first sample.'),
                        (2, 'Resume: skipping the 4 samples of epoch 0 already trained on.')):
        opt['datasets']['train']['batch_size_per_gpu'] = batch
        result = run_train(write_options(tmp_path / f'batch{batch}.yml', opt), tmp_path, '--auto_resume')
        assert result.returncode == 0, result.stderr[-3000:]
        log = max((os.path.join(experiment_dirs(name)[0], entry) for entry in os.listdir(experiment_dirs(name)[0])
                   if entry.endswith('.log')), key=os.path.getmtime)
        assert line in open(log).read()
        opt['train']['total_iter'] += 1


@pytest.mark.slow
def test_a_resume_from_an_earlier_state_sets_the_later_checkpoints_aside_instead_of_overwriting_them(
        tmp_path, experiment):
    """path.resume_state at iteration 2 of a run saved at 4: training on wrote net_g_4.pth, 4.state and
    net_g_latest.pth again over the later run's, without a word. They are moved into a folder of their own first,
    and metrics.json's later validations (dropped from the run's own file, which tells one run) are kept there."""
    data = _pairs(tmp_path, 2)
    name = experiment('test_resume_earlier')
    opt = _options(data, name, total_iter=4)
    opt['val']['val_freq'] = 2
    _trained(tmp_path, opt)
    exp_dir = experiment_dirs(name)[0]
    later = ['models/net_g_4.pth', 'models/net_g_latest.pth', 'training_states/4.state']
    before = {path: open(os.path.join(exp_dir, path), 'rb').read() for path in later}
    metrics_before = read_metrics(os.path.join(exp_dir, 'metrics.json'))
    assert [entry['iter'] for entry in metrics_before['validations']] == [2, 4]
    state = os.path.join(exp_dir, 'training_states', '2.state')
    opt['path']['resume_state'] = state
    result = run_train(write_options(tmp_path / 'earlier.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    aside = [entry for entry in os.listdir(exp_dir) if entry.startswith('after_iter_2_archived_')]
    assert len(aside) == 1, os.listdir(exp_dir)
    folder = os.path.join(exp_dir, aside[0])
    assert [line for line in result.stderr.splitlines() if line.startswith('warning: path.resume_state')] == [
        f'warning: path.resume_state: {state} is at iteration 2, and this run had saved later ones: their 3 files '
        f'(checkpoints, training states, *_latest.pth) were moved to {folder}, since training on from it writes '
        'those names again']
    assert {path: open(os.path.join(folder, path), 'rb').read() for path in later} == before
    assert all(os.path.isfile(os.path.join(exp_dir, path)) for path in later)  # written again by the resumed run
    assert os.path.isfile(os.path.join(exp_dir, 'models', 'net_g_2.pth'))  # the state's own iteration stays
    assert read_metrics(os.path.join(folder, 'metrics.json')) == metrics_before
    metrics_after = read_metrics(os.path.join(exp_dir, 'metrics.json'))['validations']
    assert [entry['iter'] for entry in metrics_after] == [2, 4]
    assert metrics_after[0] == metrics_before['validations'][0]  # the earlier entry is kept; 4 is validated again
