"""Add synthetic flare to a folder of clean photos and write input/label pairs in the Dacon layout.

    python scripts/synthesize_flare.py --clean photos/ --out datasets/synth --per-image 3
    python scripts/synthesize_flare.py --clean held_out/ --out datasets/synth --split test --family psf

Each split owns its folders and CSV, so train and test can share one --out folder.

Train pairs are numbered from 10000 (``train_input_img/train_input_10000.png`` and
``train_label_img/train_label_10000.png``), test pairs from 20000 (``test_input_img/`` plus
``test_label_img/`` for scoring). ``--family psf``, ``raytrace`` or ``anamorphic`` are the held-out
families (flare_sr.data.heldout): use them for test sets so that they measure generalisation beyond
the training synthesis. Pair ``k`` of image
``i`` uses the generator seeded by ``(seed, i, k)``: the same inputs and seed give the same files.
"""
import argparse
import os

import numpy as np
from skimage.metrics import peak_signal_noise_ratio
from tqdm import tqdm

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.meta_csv import FIRST_ID, dacon_names, write_dacon_csv
from flare_sr.data.synthesis import synthesize_flare
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_path, inside, refuse_file_on_path, same_file
from flare_sr.utils.img_util import list_images, read_image, to_uint8, write_image

FAMILIES = {'procedural': synthesize_flare, **HELDOUT_FAMILIES}  # training family first, then the held-out ones


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clean', required=True, help='folder of clean images (png/jpg/bmp/tif)')
    parser.add_argument('--out', required=True,
                        help='Dacon folder; the split\'s input/label folders appear in it atomically when complete')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--per-image', type=int, default=1, help='flared versions of every clean image')
    parser.add_argument('--family', choices=sorted(FAMILIES), default='procedural',
                        help='procedural (the training family) or a held-out family for test sets: '
                             f'{", ".join(sorted(HELDOUT_FAMILIES))} (docs/synthesis.md)')
    parser.add_argument('--split', choices=sorted(FIRST_ID), default='train')
    parser.add_argument('--overwrite', action='store_true', help='replace this split if --out already has it')
    return parser.parse_args(argv)


def split_outputs(out, split):
    """The folders and CSV a split owns inside ``out``; other splits in the same folder are left alone."""
    _, _, _, input_dir, label_dir = dacon_names(split, FIRST_ID[split])
    return os.path.join(out, input_dir), os.path.join(out, label_dir), os.path.join(out, f'{split}.csv')


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.per_image < 1:
        raise FlareSRError(f'--per-image {args.per_image}: must be at least 1')
    clean_paths = list_images(args.clean)
    refuse_file_on_path(args.out, '--out', ' (it receives the split\'s folders and CSV)')
    input_dir, label_dir, csv_path = split_outputs(args.out, args.split)
    for folder in (input_dir, label_dir):  # replaced whole
        if os.path.exists(folder) and (same_file(args.clean, folder) or inside(args.clean, folder)):
            raise FlareSRError(f'--clean {args.clean}: inside {folder}, which this run replaces; choose another '
                               '--out or --split')
    existing = [path for path in (input_dir, label_dir, csv_path) if os.path.exists(path)]
    if existing and not args.overwrite:
        raise FlareSRError(f'{existing[0]}: already exists; pass --overwrite to replace the {args.split} split')
    synthesize = FAMILIES[args.family]
    numbers, input_psnr = [], []
    with atomic_path(input_dir, is_dir=True) as tmp_inputs, atomic_path(label_dir, is_dir=True) as tmp_labels:
        progress = tqdm(total=len(clean_paths) * args.per_image, desc=f'{args.family} flare', unit='pair')
        for image_index, path in enumerate(clean_paths):
            clean = read_image(path)
            for k in range(args.per_image):
                number = FIRST_ID[args.split] + len(numbers)
                flared, info = synthesize(clean, np.random.default_rng([args.seed, image_index, k]))
                flared, label = to_uint8(flared), to_uint8(info['label'])
                _, input_name, label_name, _, _ = dacon_names(args.split, number)
                write_image(os.path.join(tmp_inputs, input_name), flared)
                write_image(os.path.join(tmp_labels, label_name), label)
                input_psnr.append(peak_signal_noise_ratio(label, flared, data_range=255))
                numbers.append(number)
                progress.update()
        progress.close()
    write_dacon_csv(csv_path, args.split, numbers)
    print(f'{args.out}: {len(numbers)} {args.split} pairs from {len(clean_paths)} clean images '
          f'({args.family} flare, seed {args.seed}); input PSNR mean {np.mean(input_psnr):.2f} dB')


if __name__ == '__main__':
    main()
