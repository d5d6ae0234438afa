"""train_pipeline.py: three real stages on tiny data; an interrupted stage resumes, finished ones are skipped.
The keys the pipeline derives may be left out (or are overridden with a warning); the former flags still work."""
import copy
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from flare_sr.cli import pipeline_main, renamed_pipeline_flags
from flare_sr.data.lmdb_pack import pack_lmdb
from flare_sr.data.meta_csv import resolve_pairs, select_rows, write_split_csv
from flare_sr.errors import FlareSRError
from flare_sr.pipeline.stages import option_changes, resolve, stage_title, trained_options
from flare_sr.utils.img_util import write_image
from tests.helpers import REPO, make_photo_pairs, run_main_in_process, unique_name, write_clean_photos

VAL = dict(val_freq=1000, save_img=False, tile=dict(size=None),
           metrics=dict(psnr=dict(type='calculate_psnr', crop_border=0, test_y_channel=False)))


def _dataset(lq, gt, train):
    opt = dict(name='train' if train else 'val', type='PairedFlareDataset', dataroot_lq=str(lq), dataroot_gt=str(gt),
               io_backend=dict(type='disk'))
    if train:
        opt.update(gt_size=32, use_hflip=True, use_rot=False, batch_size_per_gpu=2, num_worker_per_gpu=0,
                   dataset_enlarge_ratio=1)
    return opt


def _options(tmp_path, tag):
    """Tiny stage options (seconds per stage) with unique experiment names."""
    rng = np.random.default_rng(0)
    for split, count in (('train', 4), ('val', 1)):
        for index in range(count):
            label = rng.uniform(0, 1, (64, 64, 3))
            write_image(tmp_path / split / 'gt' / f'{split}_label_{index}.png', label)
            write_image(tmp_path / split / 'lq' / f'{split}_input_{index}.png', np.clip(label + 0.2, 0, 1))
    train = _dataset(tmp_path / 'train' / 'lq', tmp_path / 'train' / 'gt', True)
    val = _dataset(tmp_path / 'val' / 'lq', tmp_path / 'val' / 'gt', False)
    common = dict(num_gpu=0, manual_seed=0, val=VAL, path=dict(pretrain_network_g=None, resume_state=None),
                  logger=dict(print_freq=2, save_checkpoint_freq=2, use_tb_logger=False))
    adam = dict(type='Adam', lr=1e-3, betas=[0.9, 0.999])
    scheduler = dict(type='MultiStepLR', milestones=[1000], gamma=0.5)
    main = dict(name=f'{tag}_p2p', model_type='Pix2PixModel', datasets=dict(train=train, val=val),
                network_g=dict(type='Pix2PixUNet', num_downs=5, num_feat=4),
                network_d=dict(type='PatchGANDiscriminator', num_in_ch=6, num_feat=4, num_layers=2),
                train=dict(total_iter=4, optim_g=adam, optim_d=adam, scheduler=scheduler,
                           pixel_opt=dict(type='L1Loss', loss_weight=100.0),
                           gan_opt=dict(type='GANLoss', gan_type='lsgan', loss_weight=1.0)), **common)
    hinet_train = dict(total_iter=60, optim_g=adam, scheduler=scheduler,  # long enough to be killed mid-way
                       pixel_opt=dict(type='L1Loss', loss_weight=1.0))
    stage2 = dict(name=f'{tag}_h1', model_type='HINetModel', datasets=dict(train=train, val=val),
                  network_g=dict(type='HINet', wf=4, depth=2), train=hinet_train, **common)
    stage3_data = tmp_path / 'stage3'
    # No path.pretrain_network_g, stage3_source.main_opt or main_checkpoint: the pipeline derives them.
    stage3 = dict(stage2, name=f'{tag}_h2', train=dict(hinet_train, total_iter=4),
                  datasets=dict(train=dict(train, io_backend=dict(type='lmdb'),
                                           dataroot_lq=str(stage3_data / 'lq.lmdb'),
                                           dataroot_gt=str(stage3_data / 'gt.lmdb')), val=val),
                  path=dict(resume_state=None),
                  stage3_source=dict(tile=dict(size=None), dataroot_lq=train['dataroot_lq'],
                                     dataroot_gt=train['dataroot_gt'], patch_size=32, stride=32))
    files = []
    for stage, opt in (('stage1', main), ('stage2', stage2), ('stage3', stage3)):
        path = tmp_path / f'{stage}.yml'
        path.write_text(yaml.safe_dump(opt, sort_keys=False))
        files += [f'--{stage}', str(path)]
    return files, [main['name'], stage2['name'], stage3['name']]


@pytest.mark.slow
def test_pipeline_resumes_an_interrupted_stage_and_skips_finished_ones(tmp_path, repo_root):
    tag = f'pytest_pipe_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag]
    experiments = os.path.join(repo_root, 'experiments')
    try:
        first = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
        states = os.path.join(experiments, names[1], 'training_states')
        deadline = time.time() + 240
        while not glob.glob(os.path.join(states, '*.state')) and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # stage II dies mid-way, as with a power cut
        first.wait()
        assert glob.glob(os.path.join(states, '*.state')), first.stdout.read()[-3000:]
        assert os.path.isfile(os.path.join(experiments, names[0], 'models', 'net_g_latest.pth'))
        assert not os.path.isfile(os.path.join(experiments, names[1], 'models', 'net_g_latest.pth'))

        second = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=400)
        assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
        assert f'stage I (Pix2Pix, {names[0]}): done, skipped' in second.stdout
        log = ''.join(open(path).read() for path in sorted(glob.glob(os.path.join(experiments, names[1], '*.log'))))
        assert 'Resuming training from' in log
        assert 'stage-III data: 4 stage-I outputs -> 16 patch pairs' in second.stdout
        resolved = yaml.safe_load(open(os.path.join(experiments, tag, f'stage_III_{names[2]}.yml')))
        assert resolved['path']['pretrain_network_g'].endswith(f'{names[1]}/models/net_g_latest.pth')
        table = second.stdout[second.stdout.index('stage  '):]
        for name in names:  # the summary shows each stage's last validation from its metrics.json
            row = next(line for line in table.splitlines() if name in line)
            with open(os.path.join(experiments, name, 'metrics.json'), encoding='utf-8') as handle:
                psnr = list(json.load(handle)['validations'][-1]['datasets'].values())[-1]['mean']['psnr']
            assert f"{psnr['output']:.2f}" in row.split() and f"{psnr['input']:.2f}" in row.split(), row

        former_flags = [{'--stage1': '--main', '--stage2': '--phase1', '--stage3': '--phase2'}.get(arg, arg)
                        for arg in command]
        third = subprocess.run(former_flags, cwd=repo_root, capture_output=True, text=True, timeout=200)
        assert third.returncode == 0 and third.stdout.count('done, skipped') == 3, third.stderr[-3000:]
        assert [line for line in third.stderr.splitlines() if 'deprecated' in line] == [
            'warning: --main is deprecated; use --stage1', 'warning: --phase1 is deprecated; use --stage2',
            'warning: --phase2 is deprecated; use --stage3']
    finally:
        for name in [*names, tag]:
            shutil.rmtree(os.path.join(experiments, name), ignore_errors=True)
            shutil.rmtree(os.path.join(repo_root, 'tb_logger', name), ignore_errors=True)


def _glow_options(tmp_path, tag):
    """A tiny glow stage: HINet on a pool of whole frames of clean photos, downscaled to 12 px; (path, name)."""
    clean = write_clean_photos(tmp_path / 'clean', size=(48, 64))
    opt = dict(name=f'{tag}_glow', model_type='HINetModel', num_gpu=0, manual_seed=0,
               datasets=dict(train=dict(name='frames', type='SyntheticFlareDataset', dataroot_gt=str(clean),
                                        io_backend=dict(type='disk'), downscale_to=12, pool_size=6, seed=0,
                                        use_hflip=True, use_rot=True, batch_size_per_gpu=3, num_worker_per_gpu=0)),
               network_g=dict(type='HINet', wf=4, depth=2), path=dict(pretrain_network_g=None, resume_state=None),
               train=dict(total_iter=4, optim_g=dict(type='Adam', lr=1e-3),
                          scheduler=dict(type='MultiStepLR', milestones=[1000]),
                          pixel_opt=dict(type='L1Loss', loss_weight=1.0)),
               logger=dict(print_freq=2, save_checkpoint_freq=4, use_tb_logger=False))
    path = tmp_path / 'glow.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path), opt['name']


@pytest.mark.slow
def test_the_glow_stage_trains_beside_the_others_on_half_the_threads_and_is_skipped_when_done(tmp_path, repo_root):
    """G gets half the threads and stages I-III the rest, so none waits for G's core: on 2 threads, one each. The
    fold models (``parallel: 2``) then train in turn: side by side, three trainings shared two cores."""
    tag = f'pytest_glowpipe_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    glow_file, glow_name = _glow_options(tmp_path, tag)
    stage3_file = files[files.index('--stage3') + 1]
    stage3 = yaml.safe_load(open(stage3_file))
    stage3['stage3_source']['cross_fit'] = dict(folds=2, parallel=2)
    open(stage3_file, 'w').write(yaml.safe_dump(stage3))
    folds = [f'{names[0]}_fold{k}of2' for k in (1, 2)]
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--glow', glow_file, '--name', tag]
    experiments = os.path.join(repo_root, 'experiments')
    try:
        run = _run_pipeline(command, repo_root, env=dict(os.environ, OMP_NUM_THREADS='2'))
        started = f'stage G (glow HINet, {glow_name}): training with'
        for name in [*names, *folds, glow_name]:
            log = ''.join(open(path).read() for path in glob.glob(os.path.join(experiments, name, 'train_*.log')))
            assert 'CPU training: 1 thread, NCHW.' in log, name
        assert run.stdout.index(started) < run.stdout.index(f'stage I (Pix2Pix, {names[0]}): training with')
        assert os.path.isfile(os.path.join(experiments, glow_name, 'models', 'net_g_latest.pth'))
        assert os.path.isfile(os.path.join(experiments, tag, 'stage_G_console.txt'))  # beside: its own console
        assert os.path.isfile(os.path.join(experiments, tag, f'stage_G_{glow_name}.yml'))
        assert any(line.startswith('G glow HINet') and glow_name in line for line in run.stdout.splitlines())
        assert '6 stages done' in run.stdout
        # in turn: the second fold model starts after the first ended, and neither needed a console of its own
        first, second = (json.load(open(os.path.join(experiments, tag, f'stage_I.{k}.done'))) for k in (1, 2))
        assert second['finished'] - second['seconds'] >= first['finished'] - 0.1, (first, second)
        assert not glob.glob(os.path.join(experiments, tag, 'stage_I.*_console.txt'))
        markers = {label: json.load(open(os.path.join(experiments, tag, f'stage_{label}.done')))
                   for label in ('I', 'II', 'III', 'G')}
        # timed to its own end, not to when the pipeline waited for it after stage III: 4 iterations end early
        assert markers['G']['finished'] < markers['III']['finished'], markers
        assert 0 < markers['G']['seconds'] < markers['I']['seconds'] + markers['II']['seconds'], markers
        for label, marker in markers.items():  # the summary's time column
            row = next(line for line in run.stdout.splitlines() if line.startswith(f'{label} '))
            assert f"{marker['seconds']:.0f} s" in row, row
        again = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=200)
        assert again.returncode == 0 and again.stdout.count('done, skipped') == 6, again.stdout[-3000:]
    finally:
        _remove_runs(repo_root, [*names, *folds, glow_name, tag])


@pytest.mark.slow
def test_a_failing_glow_stage_stops_the_pipeline_before_the_next_stage_not_after_the_last(tmp_path, repo_root):
    tag = f'pytest_glowfail_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    glow_file, glow_name = _glow_options(tmp_path, tag)
    glow = yaml.safe_load(open(glow_file))
    glow['train']['optim_g']['lr'] = 1e30  # passes every check; the loss is no longer finite once it trains
    open(glow_file, 'w').write(yaml.safe_dump(glow))
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--glow', glow_file, '--name', tag]
    try:
        run = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=400)
        assert run.returncode == 2, (run.stdout + run.stderr)[-3000:]
        assert f'stage III (HINet, {names[2]}): training' not in run.stdout
        assert run.stderr.strip().splitlines()[-1].startswith(f'error: stage G ({glow_name}) stopped with exit status')
        console = open(os.path.join(repo_root, 'experiments', tag, 'stage_G_console.txt')).read()
        assert 'non-finite' in console or 'nonfinite' in console, console[-2000:]
    finally:
        _remove_runs(repo_root, [*names, glow_name, tag])


def test_a_glow_file_that_does_not_train_whole_frames_is_one_line(tmp_path, capsys):
    files, names = _options(tmp_path, unique_name('glowfile'))
    stage2 = files[files.index('--stage2') + 1]
    code, lines = _pipeline_in_process(capsys, [*files, '--glow', stage2])
    assert (code, lines) == (2, [f'error: --glow {stage2}: datasets.train.downscale_to: missing; the glow stage trains '
                                 'on whole frames, downscaled (options/glow.yml: real pairs; options/tiny/glow.yml: '
                                 'synthetic flare)'])
    glow_file, _ = _glow_options(tmp_path, names[1].rsplit('_', 1)[0])
    glow = yaml.safe_load(open(glow_file))
    glow['name'] = names[0]
    open(glow_file, 'w').write(yaml.safe_dump(glow))
    code, lines = _pipeline_in_process(capsys, [*files, '--glow', glow_file])
    assert code == 2 and lines[0].startswith('error: the 4 option files need different `name`s')
    for name in names + [f'pipeline_{names[2]}']:
        assert not os.path.exists(os.path.join(REPO, 'experiments', name))


def test_a_glow_file_its_train_py_would_refuse_is_one_line_before_anything_trains(tmp_path, capsys):
    """The glow stage trains beside the others, so a file its train.py refuses (a missing folder, a bad
    downscale_to, photos a batch cannot stack) is said by the pipeline first, not when stage I has ended."""
    tag = unique_name('glowcheck')
    files, names = _options(tmp_path, tag)
    glow_file, glow_name = _glow_options(tmp_path, tag)
    glow = yaml.safe_load(open(glow_file))
    for change, line in (
            (dict(downscale_to=0), 'datasets.train.downscale_to: expected a positive integer (or ~: off), got 0'),
            (dict(dataroot_gt=str(tmp_path / 'nowhere')), f'datasets.train.dataroot_gt: {tmp_path / "nowhere"} does '
                                                          'not exist'),
            (dict(downscale_to=60), "datasets.train.downscale_to 60: "),  # larger than the 48x64 photos
    ):
        broken = copy.deepcopy(glow)
        broken['datasets']['train'].update(change)
        open(glow_file, 'w').write(yaml.safe_dump(broken))
        code, lines = _pipeline_in_process(capsys, [*files, '--glow', glow_file])
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f'error: --glow {glow_file}: {line}'), lines
    stage2 = files[files.index('--stage2') + 1]  # both files at once, stage II's first
    broken = yaml.safe_load(open(stage2))
    broken['datasets']['train']['dataroot_lq'] = str(tmp_path / 'nowhere')
    open(stage2, 'w').write(yaml.safe_dump(broken))
    code, lines = _pipeline_in_process(capsys, [*files, '--glow', glow_file])
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f'error: --stage2 {stage2}: datasets.train.'), lines
    assert f'; --glow {glow_file}: datasets.train.downscale_to 60: ' in lines[0]
    for name in [*names, glow_name, f'pipeline_{names[2]}']:
        assert not os.path.exists(os.path.join(REPO, 'experiments', name))


def test_a_stage3_source_that_cannot_make_stage3_data_is_one_line_before_anything_trains(tmp_path, capsys):
    """stage3_source.tile runs stage I's network (Pix2PixUNet, num_downs 5: a 32-pixel grid) once stages I and II
    have trained, and stage III crops gt_size from its patches; the pipeline says either first, naming --stage3."""
    files, names = _options(tmp_path, unique_name('s3tile'))
    stage3 = files[files.index('--stage3') + 1]
    broken = yaml.safe_load(open(stage3))
    broken['stage3_source']['tile'] = dict(size=40, overlap=16)
    open(stage3, 'w').write(yaml.safe_dump(broken))
    code, lines = _pipeline_in_process(capsys, files)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: --stage3 {stage3}: stage3_source.tile: size 40 with overlap 16 cannot tile "
                               "on the network's 32-pixel grid")
    broken['stage3_source']['tile'] = dict(size=None)  # the same kind: stage III's crops are cut from its patches
    broken['datasets']['train']['gt_size'] = 48
    open(stage3, 'w').write(yaml.safe_dump(broken))
    code, lines = _pipeline_in_process(capsys, files)
    assert (code, lines) == (2, [f'error: --stage3 {stage3}: datasets.train.gt_size: 48 is larger than '
                                 'stage3_source.patch_size 32, the side of every stage-III patch; use gt_size 32 or '
                                 'less, or a larger patch_size'])
    broken['datasets']['train']['gt_size'] = 32  # the same kind: a stride that leaves pixels out of every patch
    broken['stage3_source']['stride'] = 48
    open(stage3, 'w').write(yaml.safe_dump(broken))
    code, lines = _pipeline_in_process(capsys, files)
    assert (code, lines) == (2, [f'error: --stage3 {stage3}: stage3_source.stride: 48 is larger than patch_size 32: '
                                 'the pixels between patches would never be packed; use a stride of at most the '
                                 'patch size'])
    for name in [*names, f'pipeline_{names[2]}']:
        assert not os.path.exists(os.path.join(REPO, 'experiments', name))


def test_stage_titles_name_the_arch_or_the_role():
    hinet = {'network_g': {'type': 'HINet'}}
    assert [stage_title(label, opt) for label, opt in (('I', hinet), ('II', hinet), ('G', hinet), ('II', {}),
                                                       ('G', {}), ('G', {'network_g': 'HINet'}))] == [
        'Pix2Pix', 'HINet', 'glow HINet', 'post net', 'glow net', 'glow net']


def _run_pipeline(command, repo_root, env=None):
    """train_pipeline.py's ``command`` run from the repository, which must succeed."""
    run = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=400, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return run


def _remove_runs(repo_root, names):
    """The experiments (archived ones too), TensorBoard folders and run locks of ``names``."""
    for name in names:
        pattern = os.path.join(repo_root, 'experiments', name)
        for folder in glob.glob(pattern) + glob.glob(f'{pattern}_archived_*'):
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(os.path.join(repo_root, 'tb_logger', name), ignore_errors=True)
        lock = os.path.join(repo_root, 'experiments', '.locks', f'{name}.lock')
        if os.path.exists(lock):
            os.remove(lock)


@pytest.mark.slow
def test_cross_fit_trains_fold_models_side_by_side_and_feeds_stage3_their_out_of_fold_outputs(tmp_path, repo_root):
    tag = f'pytest_crossfit_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    stage3_file = files[files.index('--stage3') + 1]
    stage3 = yaml.safe_load(open(stage3_file))
    stage3['stage3_source']['cross_fit'] = dict(folds=2, parallel=2)  # stage I trains on stage III's own pairs
    open(stage3_file, 'w').write(yaml.safe_dump(stage3))
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag, '--quiet']
    experiments = os.path.join(repo_root, 'experiments')
    folds = [f'{names[0]}_fold{k}of2' for k in (1, 2)]
    try:
        run = _run_pipeline(command, repo_root)
        for k, fold in enumerate(folds, start=1):
            assert f'stage I.{k} (Pix2Pix, fold {k}/2, {fold}): training with' in run.stdout
            assert os.path.isfile(os.path.join(experiments, fold, 'models', 'net_g_latest.pth'))
            assert os.path.isfile(os.path.join(experiments, tag, f'stage_I.{k}_console.txt'))  # side by side
        lists = [open(os.path.join(experiments, tag, f'fold{k}of2_train.txt')).read().split() for k in (1, 2)]
        labels = sorted(os.listdir(tmp_path / 'train' / 'gt'))
        assert len(lists[0]) == len(lists[1]) == 2 and sorted(lists[0] + lists[1]) == labels  # each without its fold
        resolved = yaml.safe_load(open(os.path.join(experiments, tag, f'stage_I.1_{folds[0]}.yml')))
        assert resolved['datasets']['train']['meta_info_file'] == os.path.join(experiments, tag, 'fold1of2_train.txt')
        assert 'stage-III data: 8 stage-I outputs (4 out of fold) -> 32 patch pairs' in run.stdout
        again = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=200)
        assert again.returncode == 0 and again.stdout.count('done, skipped') == 5, again.stdout[-3000:]
        # An input of stage III's source changes: its data is rebuilt, and stage III, trained on the old data, moves
        # aside (nothing deleted) and trains anew instead of being skipped as done.
        os.utime(tmp_path / 'train' / 'lq' / 'train_input_0.png', ns=(1, 10 ** 18))
        rebuilt = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=200)
        assert rebuilt.returncode == 0, (rebuilt.stdout + rebuilt.stderr)[-3000:]
        assert rebuilt.stdout.count('done, skipped') == 4
        assert f'stage III (HINet, {names[2]}): training' in rebuilt.stdout
        archived = glob.glob(os.path.join(experiments, f'{names[2]}_archived_*'))
        assert len(archived) == 1 and os.path.isfile(os.path.join(archived[0], 'models', 'net_g_latest.pth'))
        assert 'its data was rebuilt' in rebuilt.stderr
    finally:
        _remove_runs(repo_root, [*names, *folds, tag])


@pytest.mark.slow
def test_cross_fit_on_the_full_size_recipe_stage_one_on_an_lmdb_of_a_split_csv(tmp_path, repo_root):
    """The challenge's recipe: stage I trains on an LMDB of patches packed from a split CSV's fold ``train``, stage
    III's source is the same CSV. Each fold model reads the patches of the other photos only, through a
    meta_info_file of patch keys (its meta_csv and fold dropped)."""
    tag = f'pytest_crossfit_lmdb_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    lq_dir, gt_dir = make_photo_pairs(tmp_path / 'dacon', [(64, 64)] * 6)
    rows = [dict(img_id=f'train_{10000 + k}', input_img=f'train_input_{10000 + k}.png',
                 label_img=f'train_label_{10000 + k}.png', fold='val' if k == 5 else 'train') for k in range(6)]
    split = tmp_path / 'split.csv'
    write_split_csv(split, rows)
    pack_lmdb(resolve_pairs(select_rows(rows, 'train', split), lq_dir, gt_dir, split), tmp_path / 'lmdb', 32, 32,
              progress=False)  # 5 photos x 4 patches, keys train_1000k_s0000_0000 ...
    stages = {stage: yaml.safe_load(open(files[files.index(f'--{stage}') + 1])) for stage in ('stage1', 'stage3')}
    lmdb = tmp_path / 'lmdb'
    stages['stage1']['datasets']['train'].update(io_backend=dict(type='lmdb'), dataroot_lq=str(lmdb / 'lq.lmdb'),
                                                 dataroot_gt=str(lmdb / 'gt.lmdb'))
    stages['stage3']['stage3_source'].update(dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir), meta_csv=str(split),
                                             fold='train', cross_fit=dict(folds=2))
    for stage, opt in stages.items():
        open(files[files.index(f'--{stage}') + 1], 'w').write(yaml.safe_dump(opt))
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag, '--quiet']
    experiments = os.path.join(repo_root, 'experiments')
    folds = [f'{names[0]}_fold{k}of2' for k in (1, 2)]
    try:
        run = _run_pipeline(command, repo_root)
        # photos dealt one by one to the lighter fold: 10000, 10002, 10004 -> fold 1; 10001, 10003 -> fold 2
        held_out = [{10000, 10002, 10004}, {10001, 10003}]
        for k, fold in enumerate(folds, start=1):
            keys = open(os.path.join(experiments, tag, f'fold{k}of2_train.txt')).read().split()
            photos = {int(key.split('_')[1]) for key in keys}
            assert photos == {10000, 10001, 10002, 10003, 10004} - held_out[k - 1]
            assert len(keys) == 4 * len(photos)
            resolved = yaml.safe_load(open(os.path.join(experiments, tag, f'stage_I.{k}_{fold}.yml')))['datasets']
            assert 'meta_csv' not in resolved['train'] and 'fold' not in resolved['train']
            assert os.path.isfile(os.path.join(experiments, fold, 'models', 'net_g_latest.pth'))
        assert 'stage-III data: 10 stage-I outputs (5 out of fold)' in run.stdout
    finally:
        _remove_runs(repo_root, [*names, *folds, tag])


def _cross_fit_files(tmp_path, stem, monkeypatch):
    """The tiny stage files with stage III cross-fitted on 2 folds, as {'stage1', 'stage2', 'stage3'}: paths, and
    the stage names; the fold experiments live under tmp_path/experiments."""
    from flare_sr.pipeline import stages

    files, names = _options(tmp_path, stem)
    paths = dict(zip(('stage1', 'stage2', 'stage3'), files[1::2]))
    stage3 = yaml.safe_load(open(paths['stage3']))
    stage3['stage3_source']['cross_fit'] = dict(folds=2)
    open(paths['stage3'], 'w').write(yaml.safe_dump(stage3))
    monkeypatch.setattr(stages, 'ROOT', str(tmp_path))
    return paths, names


def test_started_fold_models_are_kept_across_the_way_stage_one_reads_its_photos_and_refused_all_at_once(
        tmp_path, monkeypatch):
    """The same photos read from a split CSV instead of the folder: the fold models stand (the old record goes).
    Other photos: one error naming every started fold model; nothing is deleted."""
    paths, names = _cross_fit_files(tmp_path, 'pytest_foldkinds', monkeypatch)
    pipe = str(tmp_path / 'pipe')
    resolve(paths, pipe)
    for k in (1, 2):  # both fold models started
        os.makedirs(tmp_path / 'experiments' / f'{names[0]}_fold{k}of2')
    rows = [dict(img_id=f'train_{k}', input_img=f'train_input_{k}.png', label_img=f'train_label_{k}.png',
                 fold='train') for k in range(4)]
    write_split_csv(tmp_path / 'split.csv', rows)
    stage1 = yaml.safe_load(open(paths['stage1']))
    stage1['datasets']['train'].update(meta_csv=str(tmp_path / 'split.csv'), fold='train')
    open(paths['stage1'], 'w').write(yaml.safe_dump(stage1))
    resolve(paths, pipe)
    assert sorted(os.listdir(pipe)) == ['fold1of2_train.csv', 'fold2of2_train.csv']
    # New photos: pair 4 joins (stage III reads the folder, stage I the CSV), photo 3 leaves stage I's training.
    write_image(tmp_path / 'train' / 'gt' / 'train_label_4.png', np.full((64, 64, 3), 0.4))
    write_image(tmp_path / 'train' / 'lq' / 'train_input_4.png', np.full((64, 64, 3), 0.6))
    new = dict(img_id='train_4', input_img='train_input_4.png', label_img='train_label_4.png', fold='train')
    write_split_csv(tmp_path / 'split.csv', rows[:3] + [dict(rows[3], fold='val'), new])
    stage1['datasets']['train']['batch_size_per_gpu'] = 1
    open(paths['stage1'], 'w').write(yaml.safe_dump(stage1))
    with pytest.raises(FlareSRError) as error:
        resolve(paths, pipe)
    assert str(error.value) == (
        f'{pipe}: fold models were trained on other photos than their folds now hold; delete '
        f'{os.path.relpath(tmp_path / "experiments" / f"{names[0]}_fold1of2")} and '
        f'{os.path.relpath(tmp_path / "experiments" / f"{names[0]}_fold2of2")} to train them again')
    assert sorted(os.listdir(tmp_path / 'experiments')) == [f'{names[0]}_fold1of2', f'{names[0]}_fold2of2']


def test_derived_keys_are_filled_in_and_a_different_value_is_overridden_with_one_line(tmp_path, capsys):
    files, names = _options(tmp_path, 'pytest_derive')
    paths = dict(zip(('stage1', 'stage2', 'stage3'), files[1::2]))
    planned, cross_fit = resolve(paths, str(tmp_path / 'pipe'))
    assert cross_fit is None
    assert [(label, title) for label, title, _, _ in planned] == [('I', 'Pix2Pix'), ('II', 'HINet'), ('III', 'HINet')]
    stage3 = planned[2][3]
    assert stage3['path']['pretrain_network_g'].endswith(f'experiments/{names[1]}/models/net_g_latest.pth')
    assert stage3['stage3_source']['main_opt'] == os.path.abspath(paths['stage1'])
    assert stage3['stage3_source']['main_checkpoint'].endswith(f'experiments/{names[0]}/models/net_g_latest.pth')
    assert capsys.readouterr().err == ''  # left out: nothing to say

    opt = yaml.safe_load(open(paths['stage3']))
    opt['path']['pretrain_network_g'] = 'experiments/elsewhere/net_g.pth'
    opt['stage3_source'].update(main_opt=paths['stage1'], main_checkpoint=stage3['stage3_source']['main_checkpoint'])
    paths['stage3'] = str(tmp_path / 'stage3_set.yml')
    open(paths['stage3'], 'w').write(yaml.safe_dump(opt))
    resolve(paths, str(tmp_path / 'pipe'))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'warning: {paths["stage3"]}: path.pretrain_network_g: '
                                                   'experiments/elsewhere/net_g.pth is overridden by stage II')


def test_former_pipeline_flags_are_renamed_with_one_warning_each():
    argv = ['--main', 'a.yml', '--phase1=b.yml', '--stage3', 'c.yml', '--quiet']
    assert renamed_pipeline_flags(argv) == (['--stage1', 'a.yml', '--stage2=b.yml', '--stage3', 'c.yml', '--quiet'],
                                            ['warning: --main is deprecated; use --stage1',
                                             'warning: --phase1 is deprecated; use --stage2'])
    with pytest.raises(FlareSRError, match='--stage2 is given twice [(]--phase1 is its former name[)]'):
        renamed_pipeline_flags(['--stage2', 'b.yml', '--phase1', 'b.yml'])


def _pipeline_in_process(capsys, argv):
    code, out, err = run_main_in_process(pipeline_main, argv, capsys)
    return code, (out + err).splitlines()


@pytest.mark.parametrize('order, expected', [
    (('stage2', 'stage1', 'stage3'),
     ['error: --stage1 {stage2}: model_type HINetModel; stage I trains the main network (Pix2PixModel); --stage2 '
      '{stage1}: model_type Pix2PixModel; stage II trains the post network on the flared inputs (HINetModel)']),
    (('stage1', 'stage3', 'stage2'),
     ['error: --stage2 {stage3}: has stage3_source, so it trains on stage-I outputs (stage III); stage II trains on '
      'the flared inputs (swapped with --stage3?); --stage3 {stage2}: stage3_source: missing (stage III trains on '
      'stage-I outputs)']),
])
def test_a_file_given_for_the_wrong_stage_is_one_line_before_anything_trains(tmp_path, capsys, order, expected):
    """Swapped files would train the wrong roles: each file's model_type (and stage3_source) must fit its flag. The
    former flag's warning is not printed for a refused run, and no folder is created."""
    files, names = _options(tmp_path, unique_name('roles'))
    paths = dict(zip(files[::2], files[1::2]))
    argv = ['--main', paths[f'--{order[0]}'], '--stage2', paths[f'--{order[1]}'], '--stage3', paths[f'--{order[2]}']]
    code, lines = _pipeline_in_process(capsys, argv)
    assert code == 2
    assert lines == [line.format(**{key.lstrip('-'): value for key, value in paths.items()}) for line in expected]
    for name in names + [f'pipeline_{names[2]}']:
        assert not os.path.exists(os.path.join(REPO, 'experiments', name))


def test_an_unknown_pipeline_flag_is_said_with_the_missing_one(capsys):
    code, lines = _pipeline_in_process(capsys, ['--stage1', 'a.yml', '--stage2', 'b.yml', '--phase3', 'c.yml'])
    assert (code, lines) == (2, ['error: unrecognized arguments: --phase3 c.yml; the following arguments are '
                                 'required: --stage3'])


@pytest.mark.slow
def test_a_stage_file_that_its_train_py_refuses_is_named_as_the_user_gave_it(tmp_path, repo_root):
    """Stage I's problems were said by its train.py about the pipeline's resolved copy
    (experiments/<pipeline>/stage_I_<name>.yml), followed by 'rerun the same command to resume it', which is refused
    again. Stage I is now checked up front with II and G, naming --stage1 and the user's file; stage III, checked
    when it starts, is said as refused, with its flag, not as a stage to resume."""
    tag = f'pytest_refused_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    paths = {key: files[files.index(f'--{key}') + 1] for key in ('stage1', 'stage3')}
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag]
    try:
        for key in ('stage1', 'stage3'):
            opt = yaml.safe_load(open(paths[key]))
            opt['datasets']['train']['batch_size_per_gpu'] = 0
            open(paths[key], 'w').write(yaml.safe_dump(opt))
            run = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)
            assert run.returncode == 2 and 'Traceback' not in run.stderr, (run.stdout + run.stderr)[-3000:]
            lines = run.stderr.strip().splitlines()
            if key == 'stage1':  # before anything trains
                assert lines == [f'error: --stage1 {paths[key]}: datasets.train.batch_size_per_gpu: 0; expected an '
                                 'integer >= 1']
                assert not os.path.exists(os.path.join(repo_root, 'experiments', names[0]))
                opt['datasets']['train']['batch_size_per_gpu'] = 2
                open(paths[key], 'w').write(yaml.safe_dump(opt))
            else:  # after stages I and II trained
                assert lines[-1] == (f'error: stage III ({names[2]}) was refused: the error line above names the '
                                     "pipeline's resolved copy of the --stage3 file; mend that file, then rerun the "
                                     'same command')
                assert lines[-2].endswith('datasets.train.batch_size_per_gpu: 0; expected an integer >= 1')
    finally:
        _remove_runs(repo_root, [*names, tag])


@pytest.mark.slow
def test_a_finished_stage_whose_file_changed_is_one_line_not_skipped_as_done(tmp_path, repo_root):
    """A rerun after editing a finished stage's file skipped it as done, ignoring the edit, and rewrote its resolved
    copy as if it had trained so; now one line names the stage and the key, and nothing is rewritten."""
    tag = f'pytest_pipe_edit_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    stage2_file = files[files.index('--stage2') + 1]
    stage2 = yaml.safe_load(open(stage2_file))
    stage2['train']['total_iter'] = 4
    with open(stage2_file, 'w') as handle:
        yaml.safe_dump(stage2, handle, sort_keys=False)
    command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag]
    resolved = os.path.join(repo_root, 'experiments', tag, f'stage_II_{names[1]}.yml')
    try:
        _run_pipeline(command, repo_root)
        with open(resolved) as handle:
            trained = handle.read()
        edited = copy.deepcopy(stage2)
        edited['train']['pixel_opt']['loss_weight'] = 0.5
        with open(stage2_file, 'w') as handle:
            yaml.safe_dump(edited, handle, sort_keys=False)
        run = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=400)
        assert run.returncode == 2, (run.stdout + run.stderr)[-3000:]
        assert 'done, skipped' not in run.stdout
        assert run.stderr.strip().splitlines() == [
            f'error: --stage2 {stage2_file}: stage II ({names[1]}) finished with other options '
            '(train.pixel_opt.loss_weight: 1.0 then, 0.5 now), and a finished stage is skipped: give the options it '
            f'was trained with (in experiments/{tag}/stage_II_{names[1]}.yml), or move experiments/{names[1]} and '
            f'experiments/{tag}/stage_II.done aside (and those of the later stages, trained from it) to train it anew']
        with open(resolved) as handle:
            assert handle.read() == trained
        with open(stage2_file, 'w') as handle:
            yaml.safe_dump(stage2, handle, sort_keys=False)
        assert _run_pipeline(command, repo_root).stdout.count('done, skipped') == 3
    finally:
        _remove_runs(repo_root, [*names, tag])


def test_a_finished_stage_is_compared_on_what_decides_its_weights_in_any_clone(monkeypatch):
    """The done marker's options: a moved or renamed clone (the pipeline's derived paths are absolute) and edits of
    logging, validation, the loader's speed or the memory format are no change, so its finished stages are skipped;
    a training setting is one."""
    from flare_sr.pipeline import stages

    def options(root, print_freq=100, val_freq=10, lr=1e-3, workers=0, channels_last=False):
        return {'name': 's', 'model_type': 'HINetModel', 'manual_seed': 0, 'network_g': {'type': 'HINet', 'wf': 4},
                'datasets': {'train': {'meta_info_file': f'{root}/experiments/pipe/fold1_train.txt', 'gt_size': 32,
                                       'num_worker_per_gpu': workers},
                             'val': {'dataroot_lq': f'{root}/val'}},
                'path': {'pretrain_network_g': f'{root}/experiments/s2/models/net_g_latest.pth', 'resume_state': None},
                'train': {'optim_g': {'type': 'Adam', 'lr': lr}, 'total_iter': 8, 'channels_last': channels_last},
                'val': {'val_freq': val_freq}, 'logger': {'print_freq': print_freq}}

    monkeypatch.setattr(stages, 'ROOT', '/data/old/flare_sr')
    trained = trained_options(options('/data/old/flare_sr'))
    monkeypatch.setattr(stages, 'ROOT', '/home/me/flare_sr copy')
    assert option_changes(trained, trained_options(options('/home/me/flare_sr copy', print_freq=5, val_freq=2,
                                                           workers=4, channels_last=True))) == []
    assert option_changes(trained, trained_options(options('/home/me/flare_sr copy', lr=2e-3))) == [
        'train.optim_g.lr: 0.001 then, 0.002 now']


def test_fold_models_of_a_pipeline_of_another_name_are_not_said_to_have_other_photos(tmp_path, monkeypatch):
    """The same files under another --name: the fold models were refused as "trained on other photos than their
    folds now hold", advice to delete models trained on exactly these photos; the line now says what is known."""
    paths, names = _cross_fit_files(tmp_path, 'pytest_foldname', monkeypatch)
    resolve(paths, str(tmp_path / 'first'))
    folds = [tmp_path / 'experiments' / f'{names[0]}_fold{k}of2' for k in (1, 2)]
    for folder in folds:  # both fold models started by the pipeline named "first"
        os.makedirs(folder)
    resolve(paths, str(tmp_path / 'first'))  # its own rerun goes on with them
    with pytest.raises(FlareSRError) as error:
        resolve(paths, str(tmp_path / 'second'))
    assert str(error.value) == (
        f'{tmp_path / "second"}: the fold models exist, but this pipeline holds no record of the photos they were '
        'trained on (a pipeline of another --name started them, or its fold files were removed): rerun with the '
        f'--name that trained them, or delete {os.path.relpath(folds[0])} and {os.path.relpath(folds[1])} to train '
        'them again')
    assert all(folder.is_dir() for folder in folds)


@pytest.mark.slow
def test_a_stage_whose_experiment_another_run_is_using_is_not_blamed_on_its_file(tmp_path, repo_root):
    """A stage's train.py refused because a standalone run of its name holds the experiment: the pipeline said
    "mend that file"; it now says which run is in the way."""
    tag = f'pytest_pipe_busy_{os.getpid()}'
    files, names = _options(tmp_path, tag)
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from flare_sr.utils.run_folder import lock_run; '
         'lock_run(sys.argv[1], sys.argv[2], "train.py -opt standalone.yml"); print("held", flush=True); '
         'time.sleep(300)', os.path.join(repo_root, 'experiments'), names[0]],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        command = [sys.executable, 'flare_sr/train_pipeline.py', *files, '--name', tag]
        run = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=400)
        assert run.returncode == 2, (run.stdout + run.stderr)[-3000:]
        assert run.stderr.strip().splitlines()[-1] == (
            f'error: stage I ({names[0]}) was refused: the error line above names another run that is using '
            f'experiments/{names[0]}; let it finish or stop it, then rerun the same command')
    finally:
        holder.kill()
        holder.wait()
        _remove_runs(repo_root, [*names, tag])
