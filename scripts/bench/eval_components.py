"""Single-component validation: does a model remove each training component of the flare on its own?

    python scripts/bench/eval_components.py -opt options/tiny/test_cascade.yml
    python scripts/bench/eval_components.py -opt options/test_cascade.yml --clean my_clean_photos/ --count 32

Training mixes every component of the procedural family (flare_sr.data.synthesis) in one flare, and a
net can score well on the mixture by learning what the mixture has on average. Around a visible light it
then subtracts the glow and veil that usually come with one, even when there are none. Flare from another
source comes in other mixtures. This script takes the mixture apart. Each component
(``FlareConfig.only(name, 'source')``: that component and the emitter, no camera effects) is added to
``--count`` clean images. The test model of ``-opt`` (its tiling and ``val.darken_only``, as test.py runs
it) restores them, and the script prints one table, one row per component, plus the whole training family.
The columns are the input and output PSNR, their gain, the flare region's PSNR (``calculate_flare_psnr``'s
derived region: |input - label| > ``--threshold``) and the rest of the image's PSNR. The rest shows what the
model does to pixels the flare did not touch.

Everything is the training family, so this is a validation measure that may guide choices (for example a
component's probability), unlike the held-out families of ``eval_heldout.py``. A model that transfers
should gain on every row and keep the rest's PSNR high; the last line says whether it does. The figures for
the demo are in docs/evaluation.md. ``--picture`` (default experiments/eval_components.png, "" for none) is a
PNG with one row per component: input | output | label | 4x |output - label|.

Refused in one line, before any work: a training option file (its checkpoints are where training starts), a
model with no checkpoint to score, a ``--picture`` that is not a .png,
lies in the ``--clean`` folder or cannot be written, a missing or empty ``--clean`` folder or an image in it
smaller than 8 pixels, a count below 1, a negative seed, a threshold outside (0, 1).
"""
import argparse
import os

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import numpy as np
from _common import machine_name, print_table, restore
from tqdm import tqdm

from flare_sr.data.synthesis import synthesize_flare
from flare_sr.data.synthesis.procedural import COMPONENTS, FlareConfig
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.metrics.flare_psnr_metric import derived_flare_region, region_psnr
from flare_sr.models.cascade_model import CascadeModel
from flare_sr.pipeline.inference import build_inference_model, refuse_training_file
from flare_sr.utils.atomic import check_output_file
from flare_sr.utils.img_util import list_images, read_image_uint8, to_uint8, write_image
from flare_sr.utils.options_check import load_option_file

MIXTURE = 'all (training family)'


def component_configs():
    """(row name, FlareConfig): each component alone with its emitter, camera off; then the full family."""
    configs = [(name, FlareConfig.only(name, 'source')) for name in COMPONENTS if name != 'source']
    return configs + [(MIXTURE, FlareConfig())]


def crop_to_grid(image, path, multiple=8):
    """HxWx3 cropped to multiples of ``multiple``; FlareSRError names ``path`` when a side is shorter."""
    height, width = (side - side % multiple for side in image.shape[:2])
    if not height or not width:
        raise FlareSRError(f'--clean image {path}: {image.shape[1]}x{image.shape[0]} is smaller than {multiple} pixels')
    return image[:height, :width]


def pair_scores(lq, out, gt, threshold):
    """(input, output, flare region in, flare region out, rest in, rest out) PSNRs in dB of one HxWx3 uint8
    triple.

    The flare region is ``derived_flare_region(lq, gt, threshold)``; the rest is every other pixel. A region
    that is empty gives NaN; a perfect match gives inf.
    """
    region = derived_flare_region(lq, gt, threshold).astype(np.float64)
    whole = np.ones_like(region)
    return (region_psnr(lq, gt, whole), region_psnr(out, gt, whole), region_psnr(lq, gt, region),
            region_psnr(out, gt, region), region_psnr(lq, gt, 1.0 - region), region_psnr(out, gt, 1.0 - region))


def evaluate(model, cleans, seed, threshold):
    """{row name: [per-image scores]} and {row name: first (lq, out, gt)} over ``component_configs()``.

    ``cleans``: a list of clean HxWx3 uint8 images (repeats allowed)."""
    scores, examples = {}, {}
    configs = component_configs()
    with tqdm(total=len(configs) * len(cleans), desc='components', unit='image') as progress:
        for row_index, (row, config) in enumerate(configs):
            scores[row] = []
            progress.set_postfix_str(row)
            for image_index, clean in enumerate(cleans):
                rng = np.random.default_rng([seed, row_index, image_index])
                flared, info = synthesize_flare(clean.astype(np.float32) / 255.0, rng, config)
                lq, gt = to_uint8(flared), to_uint8(info['label'])
                out = restore(model, lq)
                scores[row].append(pair_scores(lq, out, gt, threshold))
                examples.setdefault(row, (lq, out, gt))
                progress.update()
    return scores, examples


def mean_db(values):
    """Mean of the finite PSNRs; inf when every value is inf, NaN when none is scored (an empty region)."""
    values = np.array(values, dtype=float)
    values = values[~np.isnan(values)]
    if not values.size:
        return float('nan')
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float('inf')


def table_rows(scores):
    """Table rows, and {component: whole-image gain} for the single components (the mixture row excluded)."""
    rows, gains = [], []
    for row, entries in scores.items():
        columns = [round(mean_db(column), 2) for column in zip(*entries)]
        gain = columns[1] - columns[0]  # of the printed figures, so that the table adds up
        if row != MIXTURE:
            gains.append(gain)
        rows.append([row, f'{columns[0]:.2f}', f'{columns[1]:.2f}', f'{gain:+.2f}', f'{columns[2]:.2f}',
                     f'{columns[3]:.2f}', f'{columns[4]:.2f}', f'{columns[5]:.2f}'])
    return rows, dict(zip((row for row in scores if row != MIXTURE), gains))


def write_picture(path, examples):
    """One row per component: input | output | label | 4x |output - label| (PNG)."""
    rows = []
    for lq, out, gt in examples.values():
        error = np.clip(np.abs(out.astype(np.int16) - gt.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        rows.append(np.concatenate([lq, out, gt, error], axis=1))
    write_image(path, np.concatenate(rows, axis=0))


def read_cleans(folder, count):
    """``count`` clean HxWx3 uint8 images spread evenly over ``folder``'s sorted images, so that a folder
    sorted by photo gives every photo its share. A folder with fewer images repeats them; each file is
    decoded once, so memory stays that of the folder."""
    if os.path.isfile(folder):
        raise FlareSRError(f'--clean {folder}: a file, not a folder of clean images')
    if not os.path.isdir(folder):
        raise FlareSRError(f'--clean {folder}: folder not found (the default comes from the demo: bash '
                           'scripts/run_demo.sh, or python scripts/make_demo_dataset.py --out datasets/demo)')
    try:
        paths = list_images(folder)
    except FlareSRError as error:
        raise FlareSRError(f'--clean {error}') from None
    chosen = [paths[index * len(paths) // count] for index in range(count)]
    decoded = {path: crop_to_grid(read_image_uint8(path), path) for path in dict.fromkeys(chosen)}
    return [decoded[path] for path in chosen]


def untrained_networks(opt):
    """The ``path.pretrain_network_<x>`` keys a test of ``opt`` reads but that are not set (random weights)."""
    path = opt.get('path') or {}
    roles = CascadeModel.enabled_roles(opt) if opt.get('model_type') == 'CascadeModel' else ['g']
    return [f'path.pretrain_network_{role}' for role in roles if not path.get(f'pretrain_network_{role}')]


def check_picture(path, clean_folder, option_file):
    """Refuse a ``--picture`` that is not a .png, lies in the ``--clean`` folder, is the option file, is a folder
    or cannot be written, before any work is done."""
    check_output_file(path, '--picture', '.png', 'a PNG picture', inputs=[('the option file', option_file)],
                      input_folders=[('the --clean folder', clean_folder)])


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', default='options/tiny/test_cascade.yml',
                        help='test option file (CascadeModel, Pix2PixModel or HINetModel) with its checkpoints')
    parser.add_argument('--clean', default='datasets/demo/train_clean_img',
                        help='flare-free images to add each component to (the demo: its training crops)')
    parser.add_argument('--count', type=int, default=16, help='images per component')
    parser.add_argument('--seed', type=int, default=0, help='flare draws (non-negative)')
    parser.add_argument('--threshold', type=float, default=0.03,
                        help='flare region: |input - label| above this fraction of full scale')
    parser.add_argument('--picture', default='experiments/eval_components.png',
                        help='PNG with one example per component ("" for none)')
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f'--count {args.count}: must be at least 1')
    if args.seed < 0:
        parser.error(f'--seed {args.seed}: must be non-negative')
    if not 0 < args.threshold < 1:
        parser.error(f'--threshold {args.threshold}: must be in (0, 1)')
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    opt = load_option_file(args.opt)
    refuse_training_file(opt, args.opt)
    missing = untrained_networks(opt)
    if missing:
        raise FlareSRError(f'{args.opt}: {", ".join(missing)} not set; this script scores trained checkpoints '
                           '(set it to e.g. experiments/<name>/models/net_g_latest.pth)')
    if args.picture:
        check_picture(args.picture, args.clean, args.opt)
    cleans = read_cleans(args.clean, args.count)
    model = build_inference_model(args.opt)
    scores, examples = evaluate(model, cleans, args.seed, args.threshold)
    rows, gains = table_rows(scores)
    losing = [row for row, gain in gains.items() if gain <= 0]
    header = ['flare', 'input PSNR', 'output PSNR', 'gain', 'flare region in', 'flare region out', 'rest in',
              'rest out']
    print_table(f'Single-component validation, {args.opt} on {args.count} images of {args.clean}; machine: '
                f'{machine_name()}', header, rows,
                [f'Mean gain over the single components: {np.mean(list(gains.values())):+.2f} dB. Each component '
                 'with its emitter, camera effects off; the last row is the whole training family (FlareConfig '
                 'defaults).',
                 'Target, a gain on every component: ' + (f'not met ({", ".join(losing)})' if losing else 'met')])
    if args.picture:
        write_picture(args.picture, examples)
        print(f'picture: {args.picture}')


if __name__ == '__main__':
    main()
