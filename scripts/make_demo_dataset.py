"""Build a small flare dataset in the Dacon layout from the photographs that ship with scikit-image.

Nothing is downloaded: ``skimage.data.data_dir`` holds the photos. Folders written into ``--out``:

* ``train_clean_img/``: clean crops of the training photos, for on-the-fly synthesis
  (SyntheticFlareDataset draws a fresh procedural flare for every sample);
* ``train_input_img/``, ``train_label_img/``, ``train.csv``: fixed procedural-flare pairs (stage II/III
  inputs), plus ``--clean-share`` flare-free pairs (input = label);
* ``train_photos.csv``: the photo (``group``) that each training file (``name``: clean crop or label) shows, the
  stereo pair as one; stage III's ``cross_fit`` keeps a photo's files in one fold;
* ``val_input_img/``, ``val_label_img/``: procedural flare on other crops of the *training* photos, the
  validation set for every tuning choice (the held-out families are never used to choose anything);
* ``test_input_img/``, ``test_label_img/``, ``test.csv``: *other* photos with each held-out flare family
  (flare_sr.data.heldout: psf, raytrace, anamorphic, overlay, veiling) and flare-free pairs; ``test.csv`` has a ``fold``
  column naming the family (``clean`` for flare-free), so a dataset can select one with ``meta_csv``/``fold``.

Sizes keep the challenge's 2:1 ratio (2448x3264 and 1224x1632, H:W = 3:4) at demo scale. Same seed,
byte-identical files. Flare-free training pairs matter: real photos are often nearly flare-free, and
without such pairs a short schedule learns "always change the image" and damages them.

    python scripts/make_demo_dataset.py --out datasets/demo --seed 0 --scale 1 --clean-share 0.4
"""
import argparse
import os

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio
from tqdm import tqdm

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.meta_csv import FIRST_ID, dacon_names, write_dacon_csv
from flare_sr.data.synthesis import synthesize_flare
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_path, refuse_file_on_path
from flare_sr.utils.img_util import read_image, to_uint8, write_image

# Natural photographs only (no microscopy, astronomy, text or synthetic charts). Gray ones become 3 equal channels.
TRAIN_PHOTOS = ('astronaut.png', 'chelsea.png', 'motorcycle_left.png', 'motorcycle_right.png',
                'camera.png', 'grass.png', 'gravel.png', 'brick.png')
TEST_PHOTOS = ('coffee.png', 'rocket.jpg', 'coins.png')  # held out: never seen in training
LARGE_SIZE = (192, 256)  # (H, W) at --scale 1; 'small' is exactly half, as 1224x1632 is half of 2448x3264
SPLIT_CODE = {'train': 1, 'test': 2, 'val': 3, 'clean': 4}
FAMILIES = {'procedural': synthesize_flare, **HELDOUT_FAMILIES}


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
    generator, keyed by split, photo and index; training clean pairs take the indices after the flared
    ones, spread round-robin over the photos, so adding them changes no flared pair. The test split
    holds ``per_photo_test`` pairs per photo and held-out family, then one flare-free pair per photo."""
    large, small = sizes
    n_clean = clean_count(per_photo_train * len(TRAIN_PHOTOS), clean_share)
    jobs = []
    number = FIRST_ID['train']
    for photo_index, photo in enumerate(TRAIN_PHOTOS):
        extra = len(range(photo_index, n_clean, len(TRAIN_PHOTOS)))
        for k in range(per_photo_train + extra):
            size = large if k % 2 == 0 else small
            rng = np.random.default_rng([seed, SPLIT_CODE['train'], photo_index, k])
            jobs.append(('train', number, photo, size, 'procedural', rng, k >= per_photo_train))
            number += 1
    number = FIRST_ID['val']
    for photo_index, photo in enumerate(TRAIN_PHOTOS):
        rng = np.random.default_rng([seed, SPLIT_CODE['val'], photo_index])
        jobs.append(('val', number, photo, large, 'procedural', rng, False))
        number += 1
    number = FIRST_ID['test']
    for family_index, family in enumerate(sorted(HELDOUT_FAMILIES)):
        for photo_index, photo in enumerate(TEST_PHOTOS):
            for k in range(per_photo_test):
                rng = np.random.default_rng([seed, SPLIT_CODE['test'], family_index, photo_index, k])
                jobs.append(('test', number, photo, large, family, rng, False))
                number += 1
    for photo_index, photo in enumerate(TEST_PHOTOS):
        rng = np.random.default_rng([seed, SPLIT_CODE['clean'], photo_index])
        jobs.append(('test', number, photo, large, 'clean', rng, True))
        number += 1
    return jobs


def clean_crops(seed, sizes, per_photo):
    """(file name, photo, size, rng) of the clean training crops for on-the-fly synthesis, all ``large``."""
    return [(f'clean_{photo_index:02d}_{k}.png', photo, sizes[0],
             np.random.default_rng([seed, SPLIT_CODE['clean'], 100 + photo_index, k]))
            for photo_index, photo in enumerate(TRAIN_PHOTOS) for k in range(per_photo)]


def photo_group(photo):
    """The scene a training photo shows: the two views of the stereo pair are one."""
    return os.path.splitext(photo)[0].replace('_left', '').replace('_right', '')


def write_photo_groups(path, jobs, crops):
    """``name,group`` rows: every training label file and clean crop with the scene of its photo."""
    rows = [(dacon_names('train', number)[2], photo) for split, number, photo, *_ in jobs if split == 'train']
    rows += [(name, photo) for name, photo, _, _ in crops]
    with open(path, 'w', encoding='utf-8', newline='') as handle:
        handle.write('name,group\n' + ''.join(f'{name},{photo_group(photo)}\n' for name, photo in rows))


def own_entries():
    """The names ``build`` writes into ``out``."""
    folders = [name for split in FIRST_ID for name in dacon_names(split, FIRST_ID[split])[3:]]
    return {'train_clean_img', 'train.csv', 'train_photos.csv', 'test.csv', *folders}


def check_out(out):
    """Refuse an ``out`` that ``build`` would replace along with files it did not write (or is not a folder)."""
    refuse_file_on_path(out, '--out')  # also a file on its path: 'Not a directory' while building
    if not os.path.lexists(out):
        return
    if not os.path.isdir(out):  # a broken link
        raise FlareSRError(f'{out}: --out exists and is not a folder')
    foreign = sorted(set(os.listdir(out)) - own_entries())
    if foreign:
        raise FlareSRError(f'{out}: --out holds other files ({", ".join(foreign[:3])}); the dataset replaces the '
                           'whole folder, so choose a new or empty one')


def build(out, seed, scale, per_photo_train, per_photo_test, clean_share=0.0):
    """Write the dataset into ``out`` atomically; returns {split or test family: [input PSNR per flared
    pair]}, the number of flare-free training pairs and the sizes."""
    from skimage import data as skimage_data

    sizes = demo_sizes(scale)
    photos = {}

    def photo_of(name):
        if name not in photos:
            photos[name] = read_image(os.path.join(skimage_data.data_dir, name))
        return photos[name]

    jobs = plan(seed, per_photo_train, per_photo_test, sizes, clean_share)
    input_psnr = {}
    with atomic_path(out, is_dir=True) as tmp:
        for split, number, photo, size, family, rng, is_clean in tqdm(jobs, desc='demo pairs', unit='pair'):
            clean = random_crop_resize(photo_of(photo), size, rng)
            if family == 'clean':
                flared = label = to_uint8(clean)
            else:
                flared, info = FAMILIES[family](clean, rng)
                flared, label = to_uint8(flared), to_uint8(info['label'])
            if is_clean:
                flared = label
            else:
                key = family if split == 'test' else split
                input_psnr.setdefault(key, []).append(peak_signal_noise_ratio(label, flared, data_range=255))
            _, input_name, label_name, input_dir, label_dir = dacon_names(split, number)
            write_image(os.path.join(tmp, input_dir, input_name), flared)
            write_image(os.path.join(tmp, label_dir, label_name), label)
        for name, photo, size, rng in clean_crops(seed, sizes, per_photo_train):
            crop = random_crop_resize(photo_of(photo), size, rng)
            write_image(os.path.join(tmp, 'train_clean_img', name), to_uint8(crop))
        write_dacon_csv(os.path.join(tmp, 'train.csv'), 'train', [job[1] for job in jobs if job[0] == 'train'])
        write_photo_groups(os.path.join(tmp, 'train_photos.csv'), jobs, clean_crops(seed, sizes, per_photo_train))
        tests = [job for job in jobs if job[0] == 'test']
        write_dacon_csv(os.path.join(tmp, 'test.csv'), 'test', [job[1] for job in tests],
                        folds=[job[4] for job in tests])
    return input_psnr, sum(job[-1] for job in jobs if job[0] == 'train'), sizes


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='datasets/demo', help='output folder, replaced atomically when complete')
    parser.add_argument('--seed', type=int, default=0, help='same seed, byte-identical dataset')
    parser.add_argument('--scale', type=float, default=1.0,
                        help=f'size factor: large = {LARGE_SIZE[0]}x{LARGE_SIZE[1]} * scale, small = half of it')
    parser.add_argument('--per-photo-train', type=int, default=4,
                        help=f'flared crops per training photo ({len(TRAIN_PHOTOS)} photos), alternating large/small')
    parser.add_argument('--per-photo-test', type=int, default=2,
                        help=f'flared crops per held-out test photo ({len(TEST_PHOTOS)} photos) and held-out family '
                             f'({len(HELDOUT_FAMILIES)}), all large')
    parser.add_argument('--clean-share', type=float, default=0.4,
                        help='share of flare-free (input = label) pairs in the training set, in [0, 1); '
                             'the test set is never changed')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.per_photo_train < 1 or args.per_photo_test < 1:
        raise FlareSRError('--per-photo-train/--per-photo-test: must be at least 1')
    check_out(args.out)
    input_psnr, n_clean, (large, small) = build(args.out, args.seed, args.scale, args.per_photo_train,
                                                args.per_photo_test, args.clean_share)
    tests = ', '.join(f'{family} {np.mean(input_psnr[family]):.2f} dB' for family in sorted(HELDOUT_FAMILIES))
    print(f'demo dataset {args.out}: {len(input_psnr["train"])} train pairs (procedural flare, '
          f'{large[0]}x{large[1]} and {small[0]}x{small[1]}) + {n_clean} flare-free train pairs '
          f'(input = label), {len(TRAIN_PHOTOS) * args.per_photo_train} clean crops, {len(input_psnr["val"])} val '
          f'pairs, {sum(len(input_psnr[f]) for f in HELDOUT_FAMILIES)} test pairs (held-out photos and flare '
          f'families, {large[0]}x{large[1]}) + {len(TEST_PHOTOS)} flare-free test pairs; input PSNR train '
          f'{np.mean(input_psnr["train"]):.2f} dB, val {np.mean(input_psnr["val"]):.2f} dB, test {tests}')


if __name__ == '__main__':
    main()
