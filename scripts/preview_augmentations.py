"""Write a PNG grid of augmented training pairs, exactly as the training dataset produces them.

    python scripts/preview_augmentations.py --opt options/tiny/pix2pix.yml --out preview.png --n 8
    python scripts/preview_augmentations.py --lq datasets/demo/train_input_img --gt datasets/demo/train_label_img \
        --out preview.png
    python scripts/preview_augmentations.py --gt datasets/demo/train_label_img \
        --dataset-type SyntheticFlareDataset --out preview.png
    python scripts/preview_augmentations.py --components datasets/demo/train_clean_img/clean_00_0.png \
        --out components.png

``--components IMAGE`` shows each synthesis component on its own instead (flare_sr.data.synthesis): one
row per component (glow, bleed, haze, streaks, scatter, ghosts, highlights, source) and per camera
effect (chromatic, defocus, bloom, exposure, tone), ``--n`` random draws each, on that clean image.
The ``highlights`` row glares only where the image has near-white pixels (clean_00_0.png does).

The dataset is built through BasicSR's ``build_dataset`` from the option file's ``datasets.train``
block (or from a folder pair), so the preview shows the real crops, flips and synthetic flare.
Each cell pair is labelled ``#k input`` / ``#k label``. flare_sr datasets are asked for sampler
keys of the first epoch, so the same option file and ``--seed`` give the same picture.
"""
import argparse
import math

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import cv2
import numpy as np
import torch
from basicsr.data import build_dataset
from basicsr.utils import set_random_seed

from flare_sr.data.sampling import SampleKey
from flare_sr.data.synthesis import COMPONENTS, FlareConfig, synthesize_flare
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import check_output_file
from flare_sr.utils.img_util import read_image, write_image
from flare_sr.utils.options_check import load_option_file

LABEL_HEIGHT = 20


def dataset_options(args):
    """The ``datasets.train`` block of ``--opt``, or one built from ``--lq/--gt``."""
    if args.opt:
        opt = load_option_file(args.opt)  # read safely: a python tag is refused, never run
        train = (opt.get('datasets') or {}).get(args.phase)
        if not train:
            raise FlareSRError(f'{args.opt}: has no datasets.{args.phase} block')
        dataset_opt = dict(train)
        dataset_opt.setdefault('scale', opt.get('scale', 1))
    else:
        if not args.gt:
            raise FlareSRError('give --opt, or --gt (with --lq for a paired dataset)')
        dataset_opt = dict(type=args.dataset_type, name='preview', dataroot_gt=args.gt, io_backend={'type': 'disk'},
                           gt_size=args.gt_size, use_hflip=True, use_rot=True, scale=1, seed=args.seed)
        if args.lq:
            dataset_opt['dataroot_lq'] = args.lq
    dataset_opt['phase'] = 'train'
    dataset_opt.setdefault('seed', args.seed)
    return dataset_opt


def sample_keys(dataset, count):
    """Sampler keys of the first epoch for flare_sr datasets; plain indices for BasicSR's own."""
    length = len(dataset)
    if type(dataset).__module__.startswith('flare_sr.'):
        return [SampleKey(number % length, number // length + 1) for number in range(count)]
    return [number % length for number in range(count)]


def fit_cell(img_chw, cell):
    """HxWx3 uint8 letterboxed into a ``cell`` x ``cell`` square (aspect kept, black borders)."""
    img = np.clip(img_chw.numpy().transpose(1, 2, 0), 0, 1)
    height, width = img.shape[:2]
    factor = cell / max(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    resized = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_NEAREST)
    canvas = np.zeros((cell, cell, 3), np.uint8)
    top, left = (cell - new_h) // 2, (cell - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = (resized * 255 + 0.5).astype(np.uint8)
    return canvas


def labelled(cell_img, text):
    bar = np.zeros((LABEL_HEIGHT, cell_img.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (4, LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, cell_img], axis=0)


def preview_grid(dataset, count, cell, columns):
    """Rows of ``columns`` (input | label) pairs; size ceil(n/columns)*(cell+20) x 2*columns*cell."""
    columns = min(columns, count)
    tiles = []
    for number, key in enumerate(sample_keys(dataset, count)):
        sample = dataset[key]
        if 'gt' not in sample:
            raise FlareSRError(f'dataset {type(dataset).__name__}: samples have no label (gt); give dataroot_gt')
        tiles.append(labelled(fit_cell(sample['lq'], cell), f'#{number} input'))
        tiles.append(labelled(fit_cell(sample['gt'], cell), f'#{number} label'))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (2 * columns * math.ceil(count / columns) - len(tiles))
    rows = [np.concatenate(tiles[i:i + 2 * columns], axis=1) for i in range(0, len(tiles), 2 * columns)]
    return np.concatenate(rows, axis=0)


CAMERA_SHOWN = {'chromatic': dict(chromatic_prob=1.0), 'defocus': dict(defocus_prob=1.0, defocus_radius=(3.0, 6.0)),
                'bloom': dict(bloom_prob=1.0), 'exposure': dict(exposure_prob=1.0), 'tone': dict(tone_prob=1.0)}


def component_configs():
    """[(label, FlareConfig)]: each component alone, then the full flare with one camera effect on."""
    configs = [(name, FlareConfig.only(name, source_in_frame_prob=1.0)) for name in COMPONENTS]
    configs += [(f'+{effect}', FlareConfig.only(*COMPONENTS, **settings))
                for effect, settings in CAMERA_SHOWN.items()]
    return configs


def component_grid(path, count, cell, seed):
    """One row per component or camera effect: the clean image, then ``count`` random draws."""
    clean = read_image(path)
    tensor = lambda img: torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))  # noqa: E731
    configs = component_configs()
    rows = []
    for row, (label, config) in enumerate(configs):
        tiles = [labelled(fit_cell(tensor(clean), cell), 'clean')]
        for draw in range(count):
            flared, _ = synthesize_flare(clean, np.random.default_rng([seed, row, draw]), config)
            tiles.append(labelled(fit_cell(tensor(flared), cell), f'{label} #{draw}'))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--opt', help='BasicSR option file; its datasets.<phase> block is previewed')
    parser.add_argument('--phase', default='train', help='which datasets block of --opt (default train)')
    parser.add_argument('--lq', help='folder of flared inputs (paired datasets)')
    parser.add_argument('--gt', help='folder of labels, or of clean images for SyntheticFlareDataset')
    parser.add_argument('--dataset-type', default='PairedFlareDataset', help='dataset type for --lq/--gt')
    parser.add_argument('--gt-size', type=int, default=96,
                        help='crop size for --lq/--gt (the demo small images are 96x128)')
    parser.add_argument('--components', metavar='IMAGE',
                        help='show each synthesis component and camera effect on its own, on this clean image')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--n', type=int, default=8, help='number of pairs')
    parser.add_argument('--columns', type=int, default=4, help='pairs per row')
    parser.add_argument('--cell', type=int, default=160, help='pixel size of each square cell')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.n < 1 or args.columns < 1 or args.cell < 8:
        raise FlareSRError('--n and --columns must be at least 1, --cell at least 8')
    dataset_opt = None if args.components else dataset_options(args)
    folders = [(f'the {key} folder', root) for key, root in (dataset_opt or {}).items()
               if key.startswith('dataroot') and isinstance(root, str)]
    check_output_file(args.out, '--out', '.png', 'a PNG picture',
                      inputs=[('the option file', args.opt), ('the --components image', args.components)],
                      input_folders=folders)
    if args.components:
        grid = component_grid(args.components, args.n, args.cell, args.seed)
        write_image(args.out, grid)
        print(f'{args.out}: {len(component_configs())} synthesis components x {args.n} draws, '
              f'{grid.shape[1]}x{grid.shape[0]} px')
        return
    set_random_seed(args.seed)  # BasicSR's own datasets draw from the global generators
    try:
        dataset = build_dataset(dataset_opt)
    except KeyError as error:
        raise FlareSRError(f'dataset type {dataset_opt.get("type")!r}: unknown or missing option {error}') from error
    grid = preview_grid(dataset, args.n, args.cell, args.columns)
    write_image(args.out, grid)
    print(f'{args.out}: {args.n} augmented pairs from {dataset_opt["type"]} ({len(dataset)} items), '
          f'{grid.shape[1]}x{grid.shape[0]} px')


if __name__ == '__main__':
    main()
