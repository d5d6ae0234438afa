"""Support for the training tests (no tests here): tiny generated data, option files, real train.py runs."""
import copy
import json
import os
import shutil
import subprocess
import sys
import uuid

import cv2
import numpy as np
import torch
import yaml
from skimage import data as skdata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(REPO, 'flare_sr', 'train.py')
TEST_SCRIPT = os.path.join(REPO, 'flare_sr', 'test.py')
METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
           'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False}}


def make_flare_pairs(folder, count, size=(64, 64), seed=0, prefix='train'):
    """Dacon-named pairs: a photo crop as label, the same crop plus a bright glow as input."""
    rng = np.random.default_rng(seed)
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]
    height, width = size
    lq_dir, gt_dir = os.path.join(folder, f'{prefix}_input_img'), os.path.join(folder, f'{prefix}_label_img')
    os.makedirs(lq_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    yy, xx = np.mgrid[:height, :width]
    for index in range(count):
        photo = photos[index % len(photos)]
        top = rng.integers(0, photo.shape[0] - 4 * height)
        left = rng.integers(0, photo.shape[1] - 4 * width)
        gt = cv2.resize(photo[top:top + 4 * height, left:left + 4 * width], (width, height),
                        interpolation=cv2.INTER_AREA).astype(np.float32)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        glow = 120 * np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * (width / 5)**2))
        lq = np.clip(gt + glow[..., None] * np.array([1.0, 0.9, 0.7]), 0, 255)
        number = 10000 + index
        cv2.imwrite(os.path.join(gt_dir, f'{prefix}_label_{number}.png'), gt.astype(np.uint8)[..., ::-1])
        cv2.imwrite(os.path.join(lq_dir, f'{prefix}_input_{number}.png'), lq.round().astype(np.uint8)[..., ::-1])
    return lq_dir, gt_dir


def dataset_options(lq_dir, gt_dir, phase, gt_size=32, batch=2):
    opt = {'name': phase, 'type': 'PairedFlareDataset', 'dataroot_lq': lq_dir, 'dataroot_gt': gt_dir,
           'io_backend': {'type': 'disk'}}
    if phase == 'train':
        opt.update(gt_size=gt_size, use_hflip=True, use_rot=True, batch_size_per_gpu=batch, num_worker_per_gpu=0,
                   dataset_enlarge_ratio=1)
    return opt


def hinet_options(data, name, total_iter, lr=2e-3, **train_extra):
    """A 3k-parameter HINet (wf 4, depth 2) on 32px crops."""
    train = {'optim_g': {'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
             'total_iter': total_iter, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}
    train.update(train_extra)
    return base_options(data, name, 'HINetModel', {'type': 'HINet', 'wf': 4, 'depth': 2}, train)


def pix2pix_options(data, name, total_iter, **train_extra):
    """Pix2PixUNet (num_downs 6, num_feat 4, BatchNorm, dropout) + PatchGAN on 64px crops."""
    train = {'optim_g': {'type': 'Adam', 'lr': 2e-3, 'betas': [0.5, 0.999]},
             'optim_d': {'type': 'Adam', 'lr': 2e-3, 'betas': [0.5, 0.999]},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
             'total_iter': total_iter, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 100.0},
             'gan_opt': {'type': 'GANLoss', 'gan_type': 'lsgan', 'loss_weight': 1.0}}
    train.update(train_extra)
    opt = base_options(data, name, 'Pix2PixModel',
                       {'type': 'Pix2PixUNet', 'num_downs': 6, 'num_feat': 4, 'norm': 'batch', 'use_dropout': True},
                       train, gt_size=64)
    opt['network_d'] = {'type': 'PatchGANDiscriminator', 'num_in_ch': 6, 'num_feat': 4, 'num_layers': 2,
                        'norm': 'batch'}
    return opt


def base_options(data, name, model_type, network_g, train, gt_size=32):
    return {
        'name': name, 'model_type': model_type, 'num_gpu': 0, 'manual_seed': 7,
        'datasets': {'train': dataset_options(*data['train'], 'train', gt_size=gt_size),
                     'val': dataset_options(*data['val'], 'val')},
        'network_g': network_g,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': train,
        'val': {'val_freq': 1000, 'save_img': True, 'tile': {'size': None, 'overlap': 16},
                'metrics': copy.deepcopy(METRICS)},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 1000, 'use_tb_logger': True},
    }


def write_options(path, opt):
    with open(path, 'w') as handle:
        yaml.safe_dump(opt, handle, sort_keys=False)
    return str(path)


def unique_name(stem):
    return f'{stem}_{uuid.uuid4().hex[:8]}'


def experiment_dirs(name):
    return os.path.join(REPO, 'experiments', name), os.path.join(REPO, 'tb_logger', name)


def read_metrics(path):
    """The ``metrics.json`` a validation or test wrote (flare_sr/models/tiled_validation.py)."""
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def remove_experiment(name):
    for folder in (*experiment_dirs(name), os.path.join(REPO, 'results', name)):
        shutil.rmtree(folder, ignore_errors=True)


def train_command(opt_path, *args, script=TRAIN_SCRIPT):
    return [sys.executable, script, '-opt', str(opt_path), *args]


def subprocess_env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    return env


def run_train(opt_path, cwd, *args, timeout=240, script=TRAIN_SCRIPT):
    """train.py (or test.py) as a real subprocess, from ``cwd`` (never the repository root)."""
    return subprocess.run(train_command(opt_path, *args, script=script), cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def load_params(path, key='params'):
    return torch.load(path, map_location='cpu', weights_only=True)[key]


def assert_same_weights(path_a, path_b, atol=1e-6):
    a, b = load_params(path_a), load_params(path_b)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=atol, rtol=0), key


def tb_scalars(tb_dir):
    """{tag: [(step, value), ...]} from every event file in ``tb_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = {}
    for name in sorted(os.listdir(tb_dir)):
        accumulator = EventAccumulator(os.path.join(tb_dir, name), size_guidance={'scalars': 0, 'images': 0})
        accumulator.Reload()
        for tag in accumulator.Tags()['scalars']:
            scalars.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
        for tag in accumulator.Tags()['images']:
            scalars.setdefault(f'image:{tag}', []).append(len(accumulator.Images(tag)))
    return scalars


def run_main_in_process(main, argv, capsys):
    """A script's ``main(argv)`` in this process: (exit status, stdout, stderr)."""
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
