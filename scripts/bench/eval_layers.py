"""Does a model trained on flare *layers* learn that family's flare? HINet on Flare7kpp_Pair_Loader, on CPU.

    python scripts/bench/eval_layers.py --iters 400          # about 10 min on 2 shared cores

1. Backgrounds: 128-px crops of scikit-image photos at half size, training photos and test photos apart
   (the test photos are never seen in training).
2. Layers: ``scripts/render_flare_layers.py`` renders the procedural family for training (seed 0) and, with
   another seed, for testing, plus the held-out families named by ``--heldout`` (test only).
3. Test pairs: Flare7kpp_Pair_Loader in phase ``val`` (fixed by seed and index) composites each test layer set
   onto the test photos, written as PNG pairs.
4. ``flare_sr/train.py`` trains HINet (wf 16, depth 3) with Flare7kpp_Pair_Loader on the training layers
   and photos; its validation at the end scores every test set against the input (``metrics.json``).
"""
import argparse
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import yaml
from _common import machine_name
from skimage import data as skdata

from flare_sr.data.flare_layer_dataset import Flare7kpp_Pair_Loader
from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.img_util import read_image_uint8, to_uint8, write_image
from flare_sr.utils.run_folder import check_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_PHOTOS = ('astronaut.png', 'chelsea.png', 'motorcycle_left.png', 'motorcycle_right.png', 'camera.png',
                'grass.png', 'gravel.png', 'brick.png')
TEST_PHOTOS = ('coffee.png', 'rocket.jpg', 'coins.png')  # scripts/make_demo_dataset.py holds the same ones out
CROP, CROPS_PER_PHOTO = 128, 8


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default='datasets/eval_layers', help='folder for photos, layers and test pairs')
    parser.add_argument('--iters', type=int, default=400)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--img-size', type=int, default=96)
    parser.add_argument('--layers', type=int, default=200, help='procedural training layers')
    parser.add_argument('--heldout', nargs='*', default=['anamorphic'], help='held-out families to test as well')
    parser.add_argument('--name', default='eval_layers_hinet', help='experiment name')
    return parser.parse_args(argv)


def write_backgrounds(folder, photos, seed):
    rng = np.random.default_rng(seed)
    for name in photos:
        photo = read_image_uint8(os.path.join(skdata.data_dir, name))  # grey -> 3 equal channels
        photo = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
        for index in range(CROPS_PER_PHOTO):
            top, left = rng.integers(0, photo.shape[0] - CROP + 1), rng.integers(0, photo.shape[1] - CROP + 1)
            stem = os.path.splitext(name)[0]
            write_image(os.path.join(folder, f'{stem}_{index}.png'), photo[top:top + CROP, left:left + CROP])


def layer_options(backgrounds, layers, family, img_size):
    return {'name': family, 'type': 'Flare7kpp_Pair_Loader', 'image_path': backgrounds,
            'scattering_dict': {family: os.path.join(layers, family, 'Compound_Flare')},
            'light_dict': {family: os.path.join(layers, family, 'Light_Source')}, 'reflective_dict': None,
            'transform_base': {'img_size': img_size},
            'transform_flare': {'scale_min': 0.8, 'scale_max': 1.5, 'translate': 300, 'shear': 20}}


def write_test_pairs(folder, opt):
    """Every sample of a val-phase loader as ``input/<n>.png`` and ``gt/<n>.png``."""
    dataset = Flare7kpp_Pair_Loader(dict(opt, phase='val', seed=0))
    for index in range(len(dataset)):
        sample = dataset[index]
        for key, sub in (('lq', 'input'), ('gt', 'gt')):
            image = to_uint8(sample[key].numpy().transpose(1, 2, 0))
            write_image(os.path.join(folder, sub, f'{index:04d}.png'), image)


def run(command, log_path):
    with open(log_path, 'w') as log:
        result = subprocess.run([sys.executable, *command], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise FlareSRError(f'{" ".join(command)} failed (exit {result.returncode}); see {log_path}')


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    for flag in ('iters', 'batch', 'img_size', 'layers'):  # else train.py or the renderer stops minutes later
        if getattr(args, flag) < 1:
            raise FlareSRError(f'--{flag.replace("_", "-")} {getattr(args, flag)}: must be at least 1')
    unknown = [family for family in args.heldout if family not in HELDOUT_FAMILIES]
    if unknown:
        raise FlareSRError(f'--heldout: unknown {", ".join(unknown)}; choose from {", ".join(HELDOUT_FAMILIES)}')
    check_name(args.name, '--name', 'experiments/')
    work = os.path.abspath(args.work)
    if os.path.exists(work):
        raise FlareSRError(f'--work {work}: already exists; remove it or choose another folder')
    os.makedirs(work)
    write_backgrounds(os.path.join(work, 'photos_train'), TRAIN_PHOTOS, seed=0)
    write_backgrounds(os.path.join(work, 'photos_test'), TEST_PHOTOS, seed=1)
    size = str(round(args.img_size * 1.25))
    render = os.path.join(ROOT, 'scripts', 'render_flare_layers.py')
    run([render, '--out', os.path.join(work, 'layers_train'), '--count', str(args.layers), '--size', size,
         '--seed', '0'], os.path.join(work, 'render_train.log'))
    families = ['procedural', *args.heldout]
    run([render, '--out', os.path.join(work, 'layers_test'), '--family', *families, '--count', '48', '--size', size,
         '--seed', '1'], os.path.join(work, 'render_test.log'))
    val = {}
    for number, family in enumerate(families, start=1):
        pairs = os.path.join(work, f'test_{family}')
        write_test_pairs(pairs, layer_options(os.path.join(work, 'photos_test'), os.path.join(work, 'layers_test'),
                                              family, args.img_size))
        val[f'val_{number}'] = {'name': f'test_{family}', 'type': 'PairedFlareDataset', 'io_backend': {'type': 'disk'},
                                'dataroot_lq': os.path.join(pairs, 'input'), 'dataroot_gt': os.path.join(pairs, 'gt')}
    train_set = layer_options(os.path.join(work, 'photos_train'), os.path.join(work, 'layers_train'), 'procedural',
                              args.img_size)
    train_set.update(batch_size_per_gpu=args.batch, num_worker_per_gpu=0, dataset_enlarge_ratio=1, mask_type=None)
    opt = {'name': args.name, 'model_type': 'HINetModel', 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'train': train_set, **val},
           'network_g': {'type': 'HINet', 'in_chn': 3, 'wf': 16, 'depth': 3},
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 5e-4, 'betas': [0.9, 0.999]},
                     'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [args.iters], 'eta_min': 1e-6},
                     'total_iter': args.iters,
                     'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 2.0, 'eps': 1e-6},
                     'fft_opt': {'type': 'FFTLoss', 'loss_weight': 0.1}, 'grad_clip': 0.5},
           'val': {'val_freq': args.iters * 10, 'save_img': False,
                   'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
           'logger': {'print_freq': 50, 'save_checkpoint_freq': args.iters, 'use_tb_logger': False}}
    option_file = os.path.join(work, f'{args.name}.yml')
    with open(option_file, 'w') as handle:
        yaml.safe_dump(opt, handle, sort_keys=False)
    started = time.perf_counter()
    run(['flare_sr/train.py', '-opt', option_file], os.path.join(work, 'train.log'))
    seconds = time.perf_counter() - started
    with open(os.path.join(ROOT, 'experiments', args.name, 'metrics.json'), encoding='utf-8') as handle:
        scores = yaml.safe_load(handle)['validations'][-1]['datasets']
    print(f'HINet wf 16 depth 3, {args.iters} iterations x batch {args.batch} x {args.img_size} px on '
          f'{args.layers} procedural layers and {len(TRAIN_PHOTOS) * CROPS_PER_PHOTO} training crops: {seconds:.0f} s '
          f'train.py wall time on {machine_name()}')
    print(f'Test: {len(TEST_PHOTOS) * CROPS_PER_PHOTO} crops of unseen photos, new layers (seed 1); PSNR dB\n')
    print('| test flare | input | output | gain |\n|---|---|---|---|')
    for family in families:
        mean = scores[f'test_{family}']['mean']['psnr']
        print(f'| {family} | {mean["input"]:.2f} | {mean["output"]:.2f} | {mean["gain"]:+.2f} |')


if __name__ == '__main__':
    main()
