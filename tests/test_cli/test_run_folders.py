"""Run folders (issue 20): a ``name`` never reaches outside experiments/, results/ and tb_logger/; a live run's
folder is locked, so a second run of its name stops in one line before it archives anything; archiving never
collides; resuming past ``total_iter`` or with changed networks is one line that names the cause and keeps the
records and checkpoints; a full disk (or a file-size limit) while saving is one line and keeps the last state."""
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import basicsr.utils.misc
import pytest
import torch
import yaml

from flare_sr import basicsr_fixes, cli
from flare_sr.errors import FlareSRError
from flare_sr.utils import atomic
from flare_sr.utils.atomic import atomic_torch_save
from flare_sr.utils.run_folder import archive, lock_run, name_problem
from tests.helpers import (REPO, experiment_dirs, hinet_options, make_flare_pairs, read_metrics, remove_experiment,
                           run_main_in_process, run_script, run_train, subprocess_env, unique_name, write_options)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('run_folders')
    return {'train': make_flare_pairs(str(root / 'train'), 2, seed=1),
            'val': make_flare_pairs(str(root / 'val'), 1, seed=2, prefix='test')}


def _in_process(main, path, capsys, monkeypatch, *args):
    """train_main / test_main in this process: (exit status, stdout lines, stderr lines)."""
    monkeypatch.setattr(cli, 'keep_freed_cpu_memory', lambda: None)  # a setting of the whole (test) process
    monkeypatch.setattr(sys, 'argv', ['flare_sr/x.py', '-opt', str(path), *args])
    code, out, err = run_main_in_process(lambda argv: main(), [], capsys)
    return code, out.splitlines(), err.splitlines()


def _tree(folder):
    """{relative path: bytes} of every file under ``folder``."""
    tree = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, 'rb') as handle:
                tree[os.path.relpath(path, folder)] = handle.read()
    return tree


def _archived(parent, name):
    return [entry for entry in os.listdir(parent) if entry.startswith(f'{name}_archived_')] if os.path.isdir(
        parent) else []


@pytest.mark.parametrize('name', ['', '.', '..', 'group/run', 'group\\run', 'x\x00y', 'a' * 201, '~x', 'run.',
                                  'run ', ' run', '.hidden', 'a:b', 'CON', 'nul.txt'])
def test_a_name_that_is_not_one_portable_folder_name_is_refused(name):
    assert name_problem(name)


def test_portable_names_pass():
    assert [name_problem(name) for name in ('hinet_phase1', 'pix2pix-2024.v2', 'débruitage', 'a' * 200)] == [None] * 4


@pytest.mark.parametrize('kind', ['absolute', 'dotdot', 'group'])
def test_a_name_that_is_a_path_is_one_line_and_no_folder_moves(data, tmp_path, capsys, monkeypatch, kind):
    """The user's unrelated folder (named absolutely or through ..) stays where it is, with its files; nothing is
    archived or created (BasicSR archived it to *_archived_* and crashed; group/run crashed)."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'holiday.jpg').write_bytes(b'jpeg bytes')
    name = {'absolute': str(photos), 'dotdot': os.path.relpath(photos, os.path.join(REPO, 'experiments')),
            'group': f'{unique_name("group")}/run'}[kind]
    path = write_options(tmp_path / 'bad_name.yml', hinet_options(data, name, total_iter=1))
    code, out, err = _in_process(cli.train_main, path, capsys, monkeypatch)
    assert code == 2 and out == [] and len(err) == 1
    assert err[0].startswith(f'error: {path}: name: {name!r} holds the path separator')
    assert 'it names one folder under experiments/ and tb_logger/' in err[0]
    assert _tree(photos) == {'holiday.jpg': b'jpeg bytes'} and os.listdir(tmp_path).count('photos') == 1
    assert not _archived(tmp_path, 'photos')
    # by its own name: other tests (pytest-xdist workers) create and remove their runs' folders meanwhile
    own = name.split('/')[0] if kind == 'group' else 'photos'
    assert not [entry for top in ('experiments', 'tb_logger') if os.path.isdir(os.path.join(REPO, top))
                for entry in os.listdir(os.path.join(REPO, top)) if entry.startswith(own)]


@pytest.mark.parametrize('where, value, key', [('dataset', '../../escaped', 'datasets.test_1.name'),
                                               ('suffix', '../escaped', 'val.suffix'),
                                               ('name', '/tmp/x', 'name')])
def test_every_string_that_becomes_a_test_output_path_is_one_folder_name(
        data, tmp_path, capsys, monkeypatch, where, value, key):
    """test.py writes results/<name>/visualization/<dataset name>/<image>_<suffix>.png: each part is checked."""
    name = unique_name('test_names')
    opt = hinet_options(data, name, total_iter=1)
    del opt['datasets']['train'], opt['train']
    opt['datasets'] = {'test_1': dict(opt['datasets']['val'], name='val')}
    opt['path']['pretrain_network_g'] = None
    if where == 'dataset':
        opt['datasets']['test_1']['name'] = value
    elif where == 'suffix':
        opt['val']['suffix'] = value
    else:
        opt['name'] = value
    path = write_options(tmp_path / 'test.yml', opt)
    code, _, err = _in_process(cli.test_main, path, capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and err[0].startswith(f'error: {path}: {key}: {value!r}'), err
    assert not os.path.exists(os.path.join(REPO, 'results', name)) and not os.path.exists('/tmp/x_archived')


def test_a_test_run_refuses_inputs_inside_the_results_folder_it_archives(data, tmp_path, capsys, monkeypatch):
    """test.py renames an existing results/<name> to *_archived_* first: a dataset kept in there would be gone."""
    name = unique_name('test_inputs_inside')
    results = os.path.join(REPO, 'results', name)
    os.makedirs(results)
    lq = os.path.join(results, 'lq')
    os.symlink(data['val'][0], lq)  # the inputs, reached through the results folder
    opt = hinet_options(data, name, total_iter=1)
    del opt['datasets']['train'], opt['train']
    opt['datasets'] = {'test_1': dict(opt['datasets']['val'], dataroot_lq=lq)}
    try:
        code, _, err = _in_process(cli.test_main, write_options(tmp_path / 'inside.yml', opt), capsys, monkeypatch)
        assert code == 2 and err == [f'error: datasets.test_1.dataroot_lq: {lq} lies in {results}, which this test '
                                     'run archives (renames to *_archived_*) before reading it; copy it out of there '
                                     'first, or give the run another name'], err
        assert os.listdir(results) == ['lq'] and not _archived(os.path.join(REPO, 'results'), name)
    finally:
        for entry in _archived(os.path.join(REPO, 'results'), name):
            shutil.rmtree(os.path.join(REPO, 'results', entry))
        remove_experiment(name)


def test_the_held_out_benchmark_prefix_is_one_folder_name(tmp_path, capsys):
    """scripts/bench/eval_heldout.py makes experiments/<prefix>_heldout and datasets/lmdb/<prefix>_...: a prefix
    that is a path is one line, and nothing is created outside."""
    code, _, err = run_script('bench/eval_heldout', ['--prefix', f'../{tmp_path.name}_out', '--data', str(tmp_path)],
                              capsys)
    assert code == 2 and err.splitlines() == [f"error: --prefix: '../{tmp_path.name}_out' holds the path separator "
                                              f"'/': it must be one folder name, e.g. '{tmp_path.name}_out'; it "
                                              'names one folder under experiments/, results/ and datasets/lmdb/, so '
                                              'it cannot reach outside it']
    assert not [entry for entry in os.listdir(REPO) if entry.startswith(tmp_path.name)]


@pytest.mark.parametrize('flag, expected', [
    (['--name', '../outside'], "error: --name: '../outside' holds the path separator '/'"),
    (['--name', ''], 'error: --name: is empty'),
    (['--name', '{stage1}'], 'error: --name {stage1}: is also the name of a stage'),
    ([], None)])
def test_the_pipeline_name_is_one_folder_and_no_stages(tmp_path, capsys, flag, expected):
    """train_pipeline.py's --name (and the stages' names, which name its resolved files) before anything is written;
    a pipeline whose folder another live pipeline holds stops naming it."""
    stage_names = {key: unique_name(key) for key in ('stage1', 'stage2', 'stage3')}
    files = []
    for key, model_type in (('stage1', 'Pix2PixModel'), ('stage2', 'HINetModel'), ('stage3', 'HINetModel')):
        opt = {'name': stage_names[key], 'model_type': model_type}
        if key == 'stage3':
            opt['stage3_source'] = {}
        (tmp_path / f'{key}.yml').write_text(yaml.safe_dump(opt))
        files += [f'--{key}', str(tmp_path / f'{key}.yml')]
    flag = [arg.format(**stage_names) for arg in flag]
    if expected is None:  # the default name, held by another process
        holder = _hold_lock(os.path.join(REPO, 'experiments'), f'pipeline_{stage_names["stage3"]}')
        try:
            code, _, err = run_main_in_process(cli.pipeline_main, files, capsys)
        finally:
            holder.kill()
            holder.wait()
        expected = (f'error: {os.path.join(REPO, "experiments", "pipeline_" + stage_names["stage3"])} is in use by '
                    f'another run (pid {holder.pid} ')
    else:
        code, _, err = run_main_in_process(cli.pipeline_main, files + flag, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(expected.format(**stage_names)), err
    assert not [entry for entry in os.listdir(os.path.join(REPO, 'experiments')) if 'outside' in entry or
                any(stage in entry for stage in stage_names.values())]


HOLD = '''
import sys, time
from flare_sr.utils.run_folder import lock_run
lock_run(sys.argv[1], sys.argv[2], command='run A')
print('locked', flush=True)
time.sleep(300)
'''


def _hold_lock(root, name):
    """Another process holding the run lock of ``root/name`` through the same helper (as a live run does)."""
    holder = subprocess.Popen([sys.executable, '-c', HOLD, root, name], env=subprocess_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert holder.stdout.readline().strip() == 'locked'
    return holder


HOLD_AND_FORK = '''
import os, sys, time
from flare_sr.utils.run_folder import lock_run
lock_run(sys.argv[1], sys.argv[2], command='run A')
child = os.fork()  # as a DataLoader worker is forked, after the lock
if child == 0:
    time.sleep(300)
    os._exit(0)
print(child, flush=True)
time.sleep(300)
'''


def test_a_killed_runs_lock_is_free_at_once_though_its_forked_workers_live_on(tmp_path):
    """kill -9 of a training leaves its DataLoader workers alive for a few seconds; the lock is the process's, so the
    resume started at once is not refused."""
    killed = subprocess.Popen([sys.executable, '-c', HOLD_AND_FORK, str(tmp_path), 'run'], env=subprocess_env(),
                              text=True, stdout=subprocess.PIPE)
    worker = int(killed.stdout.readline())
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        os.kill(worker, 0)  # the worker lives on
        resumed = _hold_lock(str(tmp_path), 'run')  # asserts it gets the lock
        resumed.kill()
        resumed.wait()
    finally:
        os.kill(worker, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize('main, top', [(cli.train_main, 'experiments'), (cli.test_main, 'results')],
                         ids=['train', 'test'])
def test_a_second_run_of_a_live_runs_name_stops_and_leaves_its_folder_alone(
        data, tmp_path, capsys, monkeypatch, main, top):
    """Run A (another process) holds the lock of its folder; run B of the same name is one line naming A's pid
    and the folder, and A's files stay where they are, unchanged, with nothing archived (BasicSR moved A's folder
    away and A then overwrote B's files). Once A is killed (SIGKILL), the OS releases its lock: a resume works."""
    name = unique_name(f'live_{top}')
    folder = os.path.join(REPO, top, name)
    os.makedirs(os.path.join(folder, 'models'))
    with open(os.path.join(folder, 'models', 'net_g_2.pth'), 'wb') as handle:
        handle.write(b'run A checkpoint')
    opt = hinet_options(data, name, total_iter=1)
    if top == 'results':
        del opt['datasets']['train'], opt['train']
        opt['datasets'] = {'test_1': dict(opt['datasets']['val'])}
    path = write_options(tmp_path / 'b.yml', opt)
    holder = _hold_lock(os.path.join(REPO, top), name)
    try:
        code, _, err = _in_process(main, path, capsys, monkeypatch)
        assert code == 2 and err == [f'error: {folder} is in use by another run (pid {holder.pid} on '
                                     f'{os.uname().nodename}, since {err[0].split(", since ")[1][:19]}: run A); let '
                                     'it finish or stop it, or give this run another name (nothing was archived or '
                                     'created)'], err
        assert _tree(folder) == {os.path.join('models', 'net_g_2.pth'): b'run A checkpoint'}
        assert not _archived(os.path.join(REPO, top), name) and not _archived(os.path.join(REPO, 'tb_logger'), name)
        assert not os.path.exists(os.path.join(REPO, 'tb_logger', name))
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in A
        holder.wait()
        lock_run(os.path.join(REPO, top), name)  # free again: this process takes it
        remove_experiment(name)


def test_archiving_twice_in_one_second_keeps_both_folders(tmp_path, monkeypatch):
    """BasicSR's mkdir_and_rename (wrapped by apply()) with a clock stuck in one second: each earlier folder is
    archived under its own name with its files (BasicSR's crashed with "Directory not empty")."""
    basicsr_fixes.apply()
    monkeypatch.setattr(time, 'strftime', lambda *args: '20260101_000000')
    run = tmp_path / 'run'
    for attempt in range(3):
        basicsr.utils.misc.mkdir_and_rename(str(run))
        (run / 'log.txt').write_text(f'attempt {attempt}')
    assert sorted(os.listdir(tmp_path)) == ['run', 'run_archived_20260101_000000', 'run_archived_20260101_000000_2']
    assert [(tmp_path / folder / 'log.txt').read_text() for folder in sorted(os.listdir(tmp_path))] == [
        'attempt 2', 'attempt 0', 'attempt 1']
    option_copy = tmp_path / 'run' / 'a.yml'
    option_copy.write_text('x')
    assert archive(str(option_copy)) == str(tmp_path / 'run' / 'a_archived_20260101_000000.yml')


class _FullDisk:
    """A file object whose writes fail with ENOSPC after ``room`` bytes, as a full disk does."""

    def __init__(self, handle, room):
        self.handle, self.room = handle, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(28, 'No space left on device')
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_a_full_disk_while_saving_is_one_line_and_the_old_file_survives(tmp_path, monkeypatch):
    target = tmp_path / 'net_g_latest.pth'
    atomic_torch_save({'params': torch.ones(4)}, target)
    monkeypatch.setattr(atomic, 'open', lambda path, mode: _FullDisk(open(path, mode), 1000), raising=False)
    with pytest.raises(FlareSRError) as caught:
        atomic_torch_save({'params': torch.zeros(3 * 2**18)}, target)  # 3 MiB of float32
    assert str(caught.value) == (f'cannot save {target}: No space left on device (needs about 3.0 MiB); {target} is '
                                 'unchanged')
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)['params'], torch.ones(4))
    assert os.listdir(tmp_path) == ['net_g_latest.pth']


def _limited(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_resume_refusals_name_their_cause_and_keep_records_and_checkpoints(
        data, tmp_path, capsys, monkeypatch, experiment):
    """One real run (HINet wf 8, states at 2 and 4), then resumes that must each stop in one line, changing nothing:
    - a file-size limit (ulimit -f; the kernel says EFBIG, as a full disk says ENOSPC) when iteration 6 is saved;
    - total_iter 2 < the state's 4 (BasicSR trained nothing and recorded the iteration-4 weights "@ 2 iter");
    - network_g changed, with and without strict_load_g: false (BasicSR blamed path.pretrain_network_g and advised
      strict_load_g: false, which then replaced net_g_latest.pth with a mostly random network);
    - a new run (no resume) whose pretrain_network_g lies inside the experiment folder it would archive."""
    name = experiment('resume_refusals')
    opt = hinet_options(data, name, total_iter=4)
    opt['network_g']['wf'] = 8
    opt['logger']['save_checkpoint_freq'] = 2
    first = write_options(tmp_path / 'first.yml', opt)
    result = run_train(first, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    exp_dir, tb_dir = experiment_dirs(name)
    models = os.path.join(exp_dir, 'models')
    checkpoints = {path: content for path, content in _tree(exp_dir).items()
                   if path.startswith(('models', 'training_'))}
    metrics = read_metrics(os.path.join(exp_dir, 'metrics.json'))
    assert [entry['iter'] for entry in metrics['validations']] == [4]

    opt['train']['total_iter'] = 6
    full = subprocess.run([sys.executable, os.path.join(REPO, 'flare_sr', 'train.py'), '-opt',
                           write_options(tmp_path / 'first.yml', opt), '--auto_resume'], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=240,
                          preexec_fn=_limited(64 * 1024))  # logs and events fit; a 100 KiB network file does not
    net_6 = os.path.join(models, 'net_g_6.pth')
    assert full.returncode == 2 and 'Traceback' not in full.stderr, full.stderr[-3000:]
    assert full.stderr.strip().splitlines()[-1] == (f'error: cannot save {net_6}: File too large (over the file-size '
                                                    'limit: ulimit -f) (needs about 0.1 MiB); nothing was written')
    assert {path: content for path, content in _tree(exp_dir).items() if path.startswith(('models', 'training_'))
            } == checkpoints  # no temporary file left either
    kept = {path: content for path, content in _tree(exp_dir).items() if not path.endswith('.log')}
    copies = sorted(path for path in kept if path.startswith('first'))  # the options each start was given
    assert len(copies) == 2 and b'total_iter: 4' in kept[copies[1]] and b'total_iter: 6' in kept['first.yml']

    state = os.path.join(exp_dir, 'training_states', '4.state')
    cases = [({'total_iter': 2}, f'error: path.resume_state: {state} is at iteration 4, past train.total_iter 2: '
                                 f'there is nothing to train; set train.total_iter above 4 to train on, or test its '
                                 f'weights ({models}/net_g_4.pth) with test.py'),
             ({'wf': 4}, f'error: path.resume_state: {state}: the options changed since it was saved: network_g '
                         f'(HINet) does not fit its network file {models}/net_g_4.pth: 70 keys of another shape (e.g. '
                         'down_path_1.0.identity.weight: 8x8x1x1 in the file, 4x4x1x1 in the network); resume with '
                         f'the options the run was trained with (copied in {exp_dir}), or train the changed network '
                         'as a new run under another name'),
             ({'wf': 4, 'strict_load_g': False}, None)]
    for change, expected in cases:
        changed = yaml.safe_load(yaml.safe_dump(opt))
        changed['train']['total_iter'] = change.get('total_iter', 6)
        changed['network_g']['wf'] = change.get('wf', 8)
        changed['path']['strict_load_g'] = change.get('strict_load_g', True)
        code, out, err = _in_process(cli.train_main, write_options(tmp_path / 'first.yml', changed), capsys,
                                     monkeypatch, '--auto_resume')
        assert code == 2 and out == ['Disable distributed.'] and err == [expected or cases[1][1]], (out, err)
        assert 'strict_load_g: false' not in err[0]
    assert {path: content for path, content in _tree(exp_dir).items() if not path.endswith('.log')} == kept
    assert read_metrics(os.path.join(exp_dir, 'metrics.json')) == metrics

    opt['path']['pretrain_network_g'] = os.path.join(models, 'net_g_4.pth')  # a new run: it archives exp_dir first
    code, _, err = _in_process(cli.train_main, write_options(tmp_path / 'first.yml', opt), capsys, monkeypatch)
    assert code == 2 and err == [f'error: path.pretrain_network_g: {models}/net_g_4.pth lies in {exp_dir}, which '
                                 'this new run archives (renames to *_archived_*) before reading it; copy it out of '
                                 'there first, or give the run another name'], err
    assert not _archived(os.path.dirname(exp_dir), name) and os.path.isdir(tb_dir)
