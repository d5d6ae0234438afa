"""Shared helpers of the test suite (a plain module, no tests): tiny generated data, option files, tiny networks
and checkpoints, real train.py/test.py runs and scripts/*.py loaded or run in this process."""
import contextlib
import copy
import functools
import hashlib
import importlib
import importlib.util
import json
import logging.handlers
import os
import shlex
import shutil
import subprocess
import sys
import uuid

import cv2
import lmdb
import numpy as np
import torch
import yaml
from skimage import data as skdata

from flare_sr.archs.hinet_arch import HINet
from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.data.sampling import SampleKey
from flare_sr.utils.img_util import read_image, write_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO, 'tests', 'data')  # checked-in test data (provenance: tests/data/README.md)
TRAIN_SCRIPT = os.path.join(REPO, 'flare_sr', 'train.py')
TEST_SCRIPT = os.path.join(REPO, 'flare_sr', 'test.py')
METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
           'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False}}


@contextlib.contextmanager
def basicsr_log(capacity=1000):
    """The messages BasicSR's logger (which does not propagate to pytest's) takes at INFO and above, as a list that
    fills while the block runs."""
    logger, handler, said = logging.getLogger('basicsr'), logging.handlers.BufferingHandler(capacity), []
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel('INFO')
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        said.extend(record.getMessage() for record in handler.buffer)


def write_clean_photos(folder, names=('astronaut.png', 'chelsea.png', 'coffee.png'), size=(48, 64)):
    """scikit-image's photographs ``names``, shrunk to ``size`` (H, W), as clean images in ``folder``; returns it."""
    height, width = size
    for name in names:
        photo = read_image(os.path.join(skdata.data_dir, name))
        write_image(os.path.join(folder, name), cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA))
    return folder


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


def flare_data(root, train, val, seed=1):
    """Train and val pair folders of ``make_flare_pairs`` under ``root``: ``{"train": (lq, gt), "val": (lq, gt)}``."""
    return {'train': make_flare_pairs(str(root / 'train'), train, seed=seed),
            'val': make_flare_pairs(str(root / 'val'), val, seed=seed + 1, prefix='test')}


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
    for top in ('experiments', 'results'):  # its run lock (flare_sr/utils/run_folder.py)
        lock = os.path.join(REPO, top, '.locks', f'{name}.lock')
        if os.path.isfile(lock):
            os.remove(lock)


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


# the tiny cascade of the model, infer.py and precision tests: a Pix2PixUNet main net and a HINet post net
MAIN = dict(type='Pix2PixUNet', num_in_ch=3, num_out_ch=3, num_downs=5, num_feat=8, norm='batch', use_dropout=False)
POST = dict(type='HINet', in_chn=3, wf=8, depth=3)


def cascade_networks():
    torch.manual_seed(0)
    main = Pix2PixUNet(**{k: v for k, v in MAIN.items() if k != 'type'}).eval()
    post = HINet(**{k: v for k, v in POST.items() if k != 'type'}).eval()
    return main, post


def cascade_checkpoints(tmp_path):
    """The two seeded networks, saved as ``net_main.pth`` / ``net_post.pth``: (main, post, {'main', 'post': path})."""
    main, post = cascade_networks()
    paths = {}
    for name, net in (('main', main), ('post', post)):
        paths[name] = str(tmp_path / f'net_{name}.pth')
        torch.save({'params': net.state_dict()}, paths[name])
    return main, post, paths


def cascade_options(paths, **extra):
    """Parsed-style CascadeModel options for ``build_model`` in this process; ``extra`` replaces top-level keys."""
    opt = dict(name='cascade_unit', model_type='CascadeModel', is_train=False, dist=False, num_gpu=0, scale=1,
               rank=0, world_size=1, network_main=dict(MAIN), network_post=dict(POST),
               path=dict(pretrain_network_main=paths['main'], pretrain_network_post=paths['post']),
               val=dict(tile=dict(size=96, overlap=16, batch=2)))
    opt.update(extra)
    return opt


def run_cascade_test(paths, tmp_path, name, folders, timeout=120, cascade=None, **val):
    """flare_sr/test.py as a subprocess on the tiny cascade (``cascade_checkpoints`` paths), one PairedFlareDataset
    per ``folders`` entry (dataset name -> folder holding ``lq/`` and ``gt/``), ``val`` merged into its val options,
    ``cascade`` (if given) as its ``cascade:`` section. Returns the finished process and ``results/<name>``, which the
    caller removes."""
    opt = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    if cascade is not None:
        opt['cascade'] = cascade
    opt.update(name=name, datasets={f'test_{index}': dict(
        name=set_name, type='PairedFlareDataset', phase='test', dataroot_lq=str(folder / 'lq'),
        dataroot_gt=str(folder / 'gt'), io_backend=dict(type='disk'))
        for index, (set_name, folder) in enumerate(folders.items(), start=1)})
    opt['val'].update(save_img=True, suffix=None, **val)
    option_file = tmp_path / f'{name}.yml'
    option_file.write_text(yaml.safe_dump(opt))
    return run_train(option_file, tmp_path, timeout=timeout, script=TEST_SCRIPT), os.path.join(REPO, 'results', name)


def cascade_option_file(tmp_path):
    """An infer.py option file for the tiny cascade (light-source restore on), written to ``tmp_path``."""
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    opt['datasets'] = {}
    opt['val']['restore_light_source'] = {'threshold': 0.97}
    path = tmp_path / 'cascade.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def infer_in_process(capsys, *args):
    """main() in this process (the CLI wrapper included): exit status and stderr, without a 10 s interpreter start."""
    from flare_sr.cli import infer_main

    code, _, err = run_main_in_process(infer_main, args, capsys)
    return code, err


@functools.lru_cache(maxsize=None)
def icc_profile(space=b'RGB '):
    """ICC profile bytes whose header declares the colour space ``space`` (b'RGB ', b'GRAY', b'CMYK'): Pillow's sRGB
    profile with that field set, the same bytes on every call (the header holds the time it was made). flare_sr
    reads only that field; a colour manager would refuse the gray and CMYK ones."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    return profile[:16] + space + profile[20:]


# the stage-I U-Net of the residual, cascade-option and stage-III data tests (Pix2PixUNet's arguments)
UNET = dict(num_in_ch=3, num_out_ch=3, num_downs=5, num_feat=8, norm='batch', use_dropout=False)


def save_unet(path, seed):
    """A Pix2PixUNet(**UNET) drawn with ``seed``, saved as a BasicSR checkpoint at ``path``; returned in eval mode."""
    torch.manual_seed(seed)
    net = Pix2PixUNet(**UNET).eval()
    torch.save({'params': net.state_dict()}, path)
    return net


def unet_output(net, png_path):
    """What stage I writes for the PNG at ``png_path`` on one whole tile: uint8 RGB HxWx3."""
    image = torch.from_numpy(cv2.imread(str(png_path))[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = ((net(image * 2 - 1) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return (out * 255 + 0.5).astype(np.uint8)


def zero_output_layer(net):
    """Zero the U-Net's last (transposed) convolution: its Tanh then outputs exactly 0 everywhere."""
    last = [module for module in net.modules() if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    return net


def packed_lq(out_dir, key):
    """The RGB uint8 input patch ``key`` of the stage-III data written to ``out_dir`` (its lq.lmdb)."""
    env = lmdb.open(str(out_dir / 'lq.lmdb'), readonly=True, lock=False)
    with env.begin() as txn:
        data = txn.get(key.encode())
    env.close()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


def model_options(tmp_path, model_type='HINetModel', optim=None, scheduler=None):
    """Parsed-style options for building a model in this process (no data needed)."""
    for folder in ('models', 'training_states'):
        (tmp_path / folder).mkdir(exist_ok=True)
    train = {'optim_g': optim or {'type': 'AdamW', 'lr': 1e-2, 'betas': [0.9, 0.9], 'weight_decay': 0.1},
             'scheduler': scheduler or {'type': 'TrueCosineAnnealingLR', 'T_max': 10, 'eta_min': 1e-4},
             'total_iter': 10, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}
    opt = {'name': 'x', 'model_type': model_type, 'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0,
           'world_size': 1, 'network_g': {'type': 'HINet', 'wf': 4, 'depth': 2}, 'train': train,
           'path': {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'training_states'),
                    'resume_state': None, 'pretrain_network_g': None}}
    if model_type == 'Pix2PixModel':
        opt['network_g'] = {'type': 'Pix2PixUNet', 'num_downs': 5, 'num_feat': 2}
        opt['network_d'] = {'type': 'PatchGANDiscriminator', 'num_in_ch': 6, 'num_feat': 2, 'num_layers': 2}
        train['optim_d'] = {'type': 'Adam', 'lr': 1e-3}
        train['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'lsgan'}
    return opt


def train_steps(model, steps, start=1):
    """``steps`` real optimizer steps of ``model`` on seeded random 16x16 batches, from iteration ``start``."""
    generator = torch.Generator().manual_seed(start)
    for current_iter in range(start, start + steps):
        model.update_learning_rate(current_iter)
        model.feed_data({'lq': torch.rand(2, 3, 16, 16, generator=generator),
                         'gt': torch.rand(2, 3, 16, 16, generator=generator)})
        model.optimize_parameters(current_iter)


def load_script(name):
    """``scripts/<name>.py`` (``name`` may be ``bench/<script>``) as a module, without running its ``__main__``
    block. Its folder is on sys.path while it loads, as when run as a script (the benches import ``_common``)."""
    path = os.path.join(REPO, 'scripts', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'script_{name.replace("/", "_")}', path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.dirname(path))
    return module


def run_script(name, argv, capsys):
    """``scripts/<name>.py``'s main(argv) in this process: (exit status, stdout, stderr)."""
    return run_main_in_process(load_script(name).main, argv, capsys)


def make_photo_pairs(root, sizes, seed=0):
    """Dacon-named pairs from a real photo plus noise (so PNGs do not compress away); lq = 255 - gt."""
    rng = np.random.default_rng(seed)
    photo = skdata.astronaut()
    lq_dir, gt_dir = root / 'train_input_img', root / 'train_label_img'
    for number, (height, width) in enumerate(sizes):
        gt = np.clip(photo[:height, :width].astype(int) + rng.integers(-8, 9, (height, width, 3)), 0, 255)
        gt = gt.astype(np.uint8)
        write_image(gt_dir / f'train_label_{10000 + number}.png', gt)
        write_image(lq_dir / f'train_input_{10000 + number}.png', 255 - gt)
    return lq_dir, gt_dir


def snapshot(folder):
    """Every file under folder with its bytes, to prove nothing changed."""
    return {os.path.relpath(os.path.join(path, name), folder): open(os.path.join(path, name), 'rb').read()
            for path, _, names in os.walk(folder) for name in names if name != 'lock.mdb'}


class Payload:
    """Unpickling this runs ``open(marker, 'w')``: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("ran")',)


def make_flare7kpp_tree(root, backgrounds=6, flares=3, flare_size=96, seed=0):
    """A tiny Flare7K++ tree (docs/data.md), drawn: ``{'image_path', 'scattering_dict', 'reflective_dict',
    'light_dict', 'root'}`` as option values. Backgrounds are crops of real photos, some smaller than 64 px (they
    are reflect-padded); each compound flare is a glow and two streaks around its light source (a bright disc,
    alone in the Light_Source image of the same name); Flare-R has its own lights and no reflective flares."""
    rng = np.random.default_rng(seed)
    root = os.fspath(root)
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]
    folders = {'bg': os.path.join(root, 'Flickr24K'),
               '7k': os.path.join(root, 'Flare7Kpp', 'Flare7K', 'Scattering_Flare'),
               'ref': os.path.join(root, 'Flare7Kpp', 'Flare7K', 'Reflective_Flare'),
               'real': os.path.join(root, 'Flare7Kpp', 'Flare-R')}
    for index in range(backgrounds):
        height, width = (48, 80) if index % 3 == 2 else (72 + 8 * index, 96)
        photo = photos[index % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - height), rng.integers(0, photo.shape[1] - width)
        write_image(os.path.join(folders['bg'], f'{index:05d}.png'),
                    photo[top:top + height, left:left + width])
    yy, xx = np.mgrid[:flare_size, :flare_size].astype(np.float32)
    for family in ('7k', 'real'):
        for index in range(flares):
            cy, cx = rng.uniform(0.3, 0.7, 2) * flare_size
            radius = np.hypot(yy - cy, xx - cx)
            angle = rng.uniform(0, np.pi)
            streak = np.exp(-np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)) / 1.5 - radius / 30)
            glow = 0.8 * np.exp(-radius / rng.uniform(6, 14)) + 0.5 * streak
            color = rng.uniform(0.6, 1.0, 3)
            light = (radius < 3).astype(np.float32)[..., None] * np.ones(3)
            write_image(os.path.join(folders[family], 'Compound_Flare', f'{index:05d}.png'),
                        np.clip(glow[..., None] * color + light, 0, 1))
            write_image(os.path.join(folders[family], 'Light_Source', f'{index:05d}.png'), light)
    for index in range(2):
        cy, cx = rng.uniform(0.2, 0.8, 2) * flare_size
        ring = np.exp(-((np.hypot(yy - cy, xx - cx) - 8) / 2)**2)[..., None] * np.array([0.2, 0.5, 0.3])
        write_image(os.path.join(folders['ref'], f'{index:05d}.png'), ring)
    return {'root': root, 'image_path': folders['bg'],
            'scattering_dict': {'Flare7k_scattering': os.path.join(folders['7k'], 'Compound_Flare'),
                                'Real_scattering1': os.path.join(folders['real'], 'Compound_Flare')},
            'reflective_dict': {'Flare7k_reflective': folders['ref'], 'Real_reflective1': None},
            'light_dict': {'Flare7k_light': os.path.join(folders['7k'], 'Light_Source'),
                           'Real_light1': os.path.join(folders['real'], 'Light_Source')}}


def flare7kpp_dataset_options(tree, img_size=32, batch=2, **extra):
    """``datasets.train`` of Flare7K++'s ``uformer_flare7kpp_baseline_option.yml`` on ``make_flare7kpp_tree``."""
    opt = {'name': 'Flare7Kpp', 'type': 'Flare7kpp_Pair_Loader', 'image_path': tree['image_path'],
           'scattering_dict': dict(tree['scattering_dict']), 'reflective_dict': dict(tree['reflective_dict']),
           'light_dict': dict(tree['light_dict']), 'data_ratio': [0.5, 0.5], 'transform_base': {'img_size': img_size},
           'transform_flare': {'scale_min': 0.8, 'scale_max': 1.5, 'translate': 300, 'shear': 20}, 'mask_type': None,
           'use_shuffle': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': batch, 'dataset_enlarge_ratio': 1,
           'prefetch_mode': None}
    opt.update(extra)
    return opt


class SystemPayload(Payload):
    """Unpickling this runs ``os.system('touch marker')`` (torch names ``posix.system`` otherwise than ``exec``)."""

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}',)


# -- same key, same sample ---------------------------------------------------------------------------------

SAMPLE_DIGESTS = '''
import json, sys
import flare_sr
import cv2, torch
from tests.helpers import repeated_sample_digests, sampler
factory, args, keys, threads = json.loads(sys.argv[1])
if threads:
    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
print(json.dumps(repeated_sample_digests(sampler(factory, args), keys)))
'''


def sample_digest(sample):
    """SHA-256 hex digest of a sample: an array or tensor, or a dict / tuple / list of them and plain values
    (dtypes, shapes and bytes count, dict keys in sorted order)."""
    digest = hashlib.sha256()

    def add(value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            digest.update(f'{value.dtype}{value.shape}'.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, dict):
            for key in sorted(value):
                digest.update(repr(key).encode())
                add(value[key])
        elif isinstance(value, (tuple, list)):
            for item in value:
                add(item)
        else:
            digest.update(repr(value).encode())

    add(sample)
    return digest.hexdigest()


def repeated_sample_digests(draw, keys, repeats=3):
    """``[sample_digest(draw(key)) for key in keys]``, asserting each of ``repeats`` rounds gives the same bytes.

    ``keys``: JSON values ``draw`` takes (see ``dataset_sampler``). Between rounds, live allocations of odd sizes move
    where the next arrays land, so a result that depends on memory alignment (cv2.magnitude's IPP path did)
    shows up here rather than one run in two.
    """
    first, ballast = None, []
    for round_ in range(repeats):
        digests = [sample_digest(draw(key)) for key in keys]
        if first is None:
            first = digests
        mismatched = [key for key, a, b in zip(keys, first, digests) if a != b]
        assert not mismatched, f'round {round_}: keys {mismatched} gave other bytes than round 0'
        ballast += [np.empty(8 + 24 * size, np.uint8) for size in range(1, 6)]
    return first


def dataset_sampler(dataset_opt):
    """``draw(key) -> dataset[key]`` for the BasicSR dataset that ``dataset_opt`` (a dict with ``type``, ``name``)
    builds; a key ``[index, draw]`` is ``SampleKey(index, draw)``, an integer stays an integer."""
    from basicsr.data import build_dataset  # flare_sr, imported above, first aliases what BasicSR imports
    dataset = build_dataset(dataset_opt)
    return lambda key: dataset[SampleKey(*key) if isinstance(key, list) else key]


def sampler(factory, args):
    """``draw`` from a ``'module:function'`` factory called with the JSON-able list ``args`` (e.g.
    ``tests.helpers:dataset_sampler`` with ``[dataset options]``): a subprocess rebuilds it from the same two values."""
    module, name = factory.split(':')
    return getattr(importlib.import_module(module), name)(*args)


def assert_samples_pure(factory, args, keys, repeats=3, timeout=240):
    """Every key's sample is a pure function of the key: the same bytes in ``repeats`` rounds in this process and
    in two fresh processes. One runs OpenCV and torch on one thread and places every array of 4 KiB or more
    16 bytes past a page (glibc's mmap threshold), an alignment this process gives some arrays and not others;
    the other runs on the default thread counts and allocator.

    ``factory``, ``args``: see ``sampler``; ``keys``: JSON values its ``draw`` takes. Returns the digests.
    """
    here = repeated_sample_digests(sampler(factory, args), keys, repeats)
    for threads, extra_env in ((1, {'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=4096'}), (None, {})):
        spec = json.dumps([factory, args, keys, threads])
        result = subprocess.run([sys.executable, '-c', SAMPLE_DIGESTS, spec], cwd=REPO,
                                env={**subprocess_env(), **extra_env}, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr[-3000:]
        there = json.loads(result.stdout.splitlines()[-1])
        assert there == here, f'threads {threads}: keys {[k for k, a, b in zip(keys, here, there) if a != b]} differ'
    return here
