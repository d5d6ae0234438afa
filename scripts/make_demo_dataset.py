"""Build a small flare dataset in the Dacon layout from the photographs that ship with scikit-image.

Nothing is downloaded: ``skimage.data.data_dir`` holds the photos. The train part gets the
procedural flare used for on-the-fly training; the test part uses *other* photos and the held-out
Fourier-optics flare family (``psf_flare``), so the demo test measures generalisation both to
unseen scenes and to flare the training synthesis never produced. Sizes keep the challenge's 2:1
ratio (2448x3264 and 1224x1632, H:W = 3:4) at demo scale. Same seed -> byte-identical files.

``--clean-share`` adds flare-free training pairs (input = label: a crop's label, light source
included, paired with itself) until they make that share of the training set. Real photos are
often nearly flare-free; without such pairs a short schedule learns "always change the image"
and damages them. The flared pairs are the same with or without clean ones.

    python scripts/make_demo_dataset.py --out datasets/demo --seed 0 --scale 1 --clean-share 0.4
"""
import argparse
import os

import flare_sr  # noqa: F401  (first: torchvision alias for BasicSR)
import cv2
import numpy as np
from tqdm import tqdm

from flare_sr.data.flare_synthesis import FAMILIES, FIRST_ID, dacon_names, psnr, write_dacon_csv
from flare_sr.data.image_io import read_image, to_uint8, write_image
from flare_sr.errors import FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_path

# Natural photographs only (no microscopy, astronomy, text or synthetic charts). Gray ones become 3 equal channels.
TRAIN_PHOTOS = ('astronaut.png', 'chelsea.png', 'motorcycle_left.png', 'motorcycle_right.png',
                'camera.png', 'grass.png', 'gravel.png', 'brick.png')
TEST_PHOTOS = ('coffee.png', 'rocket.jpg', 'coins.png')  # held out: never seen in training
LARGE_SIZE = (192, 256)  # (H, W) at --scale 1; 'small' is exactly half, as 1224x1632 is half of 2448x3264
SPLIT_CODE = {'train': 1, 'test': 2}


def demo_sizes(scale):
    """(large, small) as (H, W); even sizes so that small is exactly half of large."""
    if not scale > 0:
        raise FlareSRError(f'--scale {scale}: must be positive')
    half_h, half_w = (max(4, int(round(side * scale / 2))) for side in LARGE_SIZE)
    return (2 * half_h, 2 * half_w), (half_h, half_w)


def random_crop_resize(photo, size, rng):
    """A 3:4 crop of 60-100 % of the largest such crop, at a random place, area-resized to ``size``."""
    height, width = photo.shape[:2]
    target_h, target_w = size
    fit = min(height / target_h, width / target_w)
    crop_scale = rng.uniform(0.6, 1.0)
    crop_h, crop_w = int(target_h * fit * crop_scale), int(target_w * fit * crop_scale)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = photo[top:top + crop_h, left:left + crop_w]
    return np.clip(cv2.resize(crop, (target_w, target_h), interpolation=cv2.INTER_AREA), 0.0, 1.0)


def clean_count(flared, share):
    """How many clean pairs make ``share`` of a training set that has ``flared`` flared pairs."""
    if not 0 <= share < 1:
        raise FlareSRError(f'--clean-share {share}: must be in [0, 1)')
    return int(round(flared * share / (1 - share)))


def plan(seed, per_photo_train, per_photo_test, sizes, clean_share=0.0):
    """Every pair to build: (split, number, photo, size, family, rng, clean). Each pair has its own
    generator, keyed by its photo and its index k there; clean pairs (training only) take the k after
    the flared ones, spread round-robin over the photos, so adding them changes no flared pair."""
    large, small = sizes
    n_clean = clean_count(per_photo_train * len(TRAIN_PHOTOS), clean_share)
    jobs = []
    for split, photos, count, family in (('train', TRAIN_PHOTOS, per_photo_train, 'procedural'),
                                         ('test', TEST_PHOTOS, per_photo_test, 'psf')):
        number = FIRST_ID[split]
        for photo_index, photo in enumerate(photos):
            extra = len(range(photo_index, n_clean, len(photos))) if split == 'train' else 0
            for k in range(count + extra):
                size = large if split == 'test' or k % 2 == 0 else small  # the challenge tests at full size
                rng = np.random.default_rng([seed, SPLIT_CODE[split], photo_index, k])
                jobs.append((split, number, photo, size, family, rng, k >= count))
                number += 1
    return jobs


def build(out, seed, scale, per_photo_train, per_photo_test, clean_share=0.0):
    """Write the dataset into ``out`` atomically; returns {split: [input PSNR per flared pair]}, the
    number of clean pairs and the sizes."""
    from skimage import data as skimage_data

    sizes = demo_sizes(scale)
    photos = {}
    jobs = plan(seed, per_photo_train, per_photo_test, sizes, clean_share)
    input_psnr = {'train': [], 'test': []}
    with atomic_path(out, is_dir=True) as tmp:
        for split, number, photo, size, family, rng, is_clean in tqdm(jobs, desc='demo pairs', unit='pair'):
            if photo not in photos:
                photos[photo] = read_image(os.path.join(skimage_data.data_dir, photo))
            clean = random_crop_resize(photos[photo], size, rng)
            flared, info = FAMILIES[family](clean, rng)
            flared, label = to_uint8(flared), to_uint8(info['label'])
            if is_clean:
                flared = label
            else:
                input_psnr[split].append(psnr(flared / 255.0, label / 255.0))
            _, input_name, label_name, input_dir, label_dir = dacon_names(split, number)
            write_image(os.path.join(tmp, input_dir, input_name), flared)
            write_image(os.path.join(tmp, label_dir, label_name), label)
        for split in ('train', 'test'):
            numbers = [job[1] for job in jobs if job[0] == split]
            write_dacon_csv(os.path.join(tmp, f'{split}.csv'), split, numbers)
    return input_psnr, sum(job[-1] for job in jobs), sizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='datasets/demo', help='output folder, replaced atomically when complete')
    parser.add_argument('--seed', type=int, default=0, help='same seed, byte-identical dataset')
    parser.add_argument('--scale', type=float, default=1.0,
                        help=f'size factor: large = {LARGE_SIZE[0]}x{LARGE_SIZE[1]} * scale, small = half of it')
    parser.add_argument('--per-photo-train', type=int, default=4,
                        help=f'flared crops per training photo ({len(TRAIN_PHOTOS)} photos), alternating large/small')
    parser.add_argument('--per-photo-test', type=int, default=2,
                        help=f'flared crops per held-out test photo ({len(TEST_PHOTOS)} photos), all large')
    parser.add_argument('--clean-share', type=float, default=0.4,
                        help='share of flare-free (input = label) pairs in the training set, in [0, 1); '
                             'the test set is never changed')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.per_photo_train < 1 or args.per_photo_test < 1:
        raise FlareSRError('--per-photo-train/--per-photo-test: must be at least 1')
    input_psnr, n_clean, (large, small) = build(args.out, args.seed, args.scale, args.per_photo_train,
                                                args.per_photo_test, args.clean_share)
    print(f'demo dataset {args.out}: {len(input_psnr["train"])} train pairs (procedural flare, '
          f'{large[0]}x{large[1]} and {small[0]}x{small[1]}) + {n_clean} flare-free train pairs '
          f'(input = label), {len(input_psnr["test"])} test pairs '
          f'(held-out photos, psf flare, {large[0]}x{large[1]}); input PSNR train '
          f'{np.mean(input_psnr["train"]):.2f} dB, test {np.mean(input_psnr["test"]):.2f} dB')


if __name__ == '__main__':
    main()
