"""How strong and how large each held-out flare family is, beside what real flare photos show.

    python scripts/bench/heldout_statistics.py                 # 60 pairs per family
    python scripts/bench/heldout_statistics.py --count 20 --families psf overlay

Each family (flare_sr.data.heldout) is drawn ``--count`` times on random crops of the demo's held-out test
photos (scripts/make_demo_dataset.py: TEST_PHOTOS, random_crop_resize, 192x256 at --scale 1), one seeded
generator per pair; the statistics are flare_sr.data.heldout.statistics' (input PSNR, flare coverage, light
in frame, clipped share). Prints one Markdown table with the reference rows of real flare first, each with
its source, and the machine.
"""
import argparse
import os

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
from _common import demo_script, machine_name
from skimage import data as skimage_data

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.heldout.statistics import REAL_FLARE_REFERENCE, family_statistics
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.img_util import read_image


def measure(families, count, seed=0, scale=1.0):
    """{family: flare_sr.data.heldout.statistics.summarize row} over ``count`` pairs per family; pair k uses
    test photo k mod 3 and the generator ``default_rng([seed, 7, family index, k])`` for its crop and flare."""
    import numpy as np

    demo = demo_script()
    size = demo.demo_sizes(scale)[0]
    photos = [read_image(os.path.join(skimage_data.data_dir, name)) for name in demo.TEST_PHOTOS]
    rows = {}
    for family in families:
        index = sorted(HELDOUT_FAMILIES).index(family)

        def pairs():
            for k in range(count):
                rng = np.random.default_rng([seed, 7, index, k])
                yield demo.random_crop_resize(photos[k % len(photos)], size, rng), rng

        rows[family] = family_statistics(HELDOUT_FAMILIES[family], pairs())
    return rows


def table_lines(rows):
    """Markdown lines: the real-flare reference rows (source in the last column), then one row per family."""
    def cell(value, fmt):
        return '-' if value is None else format(value, fmt)

    lines = ['| flare | input PSNR mean / p10 / p50 / p90 (dB) | coverage | light in frame | clipped | source |',
             '|---|---|---|---|---|---|']
    for name, ref in REAL_FLARE_REFERENCE.items():
        lines.append(f'| real: {name} | {cell(ref["psnr_mean"], ".1f")} / - / - / - | {cell(ref["coverage"], ".2f")} | '
                     f'{cell(ref["light_in_frame"], ".2f")} | {cell(ref["clipped_share"], ".3f")} | '
                     f'{ref["source"]} |')
    for family, row in rows.items():
        lines.append(f'| {family} (n={row["count"]}) | {row["psnr_mean"]:.1f} / {row["psnr_p10"]:.1f} / '
                     f'{row["psnr_p50"]:.1f} / {row["psnr_p90"]:.1f} | {row["coverage"]:.2f} | '
                     f'{row["light_in_frame"]:.2f} | {row["clipped_share"]:.3f} | measured |')
    return lines


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--count', type=int, default=60, help='pairs per family')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=float, default=1.0, help='frame size factor, as make_demo_dataset.py')
    parser.add_argument('--families', nargs='+', default=sorted(HELDOUT_FAMILIES), help='held-out families')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    unknown = sorted(set(args.families) - set(HELDOUT_FAMILIES))
    if unknown:
        raise FlareSRError(f'--families: unknown {", ".join(unknown)}; '
                           f'choose from {", ".join(sorted(HELDOUT_FAMILIES))}')
    if args.count < 1:
        raise FlareSRError('--count: must be at least 1')
    if args.seed < 0:  # numpy's generators take non-negative seeds only
        raise FlareSRError(f'--seed {args.seed}: must be non-negative')
    rows = measure(args.families, args.count, args.seed, args.scale)
    print(f'Held-out flare statistics, {args.count} pairs per family on the demo test photos; '
          f'machine: {machine_name()}\n')
    print('\n'.join(table_lines(rows)))


if __name__ == '__main__':
    main()
