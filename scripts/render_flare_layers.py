"""Render flare_sr's flare families as flare layers in the Flare7K++ layout, to train with Flare7kpp_Pair_Loader.

    python scripts/render_flare_layers.py --out datasets/flare_layers --count 500 --size 640
    python scripts/render_flare_layers.py --out datasets/flare_layers --family psf raytrace --count 100

For every family it writes ``<out>/<family>/Compound_Flare/NNNNN.png`` (the flare with its light source,
photographed on black) and ``<out>/<family>/Light_Source/NNNNN.png`` (the light alone, same name), plus
``<out>/<family>/contact_sheet.png`` (the first 8 pairs side by side). A family is rendered on a black frame
through its own random camera (flare_sr/data/synthesis/compositing.py): the compound flare is the flared
black frame, the light source its label, which holds the light only (``keep_source_in_label``; the procedural
family's ``source`` component, the held-out families' source discs). 8-bit sRGB, as captured layers are.
Layer ``i`` of family ``f`` uses the generator seeded by ``(seed, f's index in FAMILIES, i)``.

``procedural`` is the training family; ``psf``, ``raytrace``, ``anamorphic``, ``overlay`` and ``veiling`` are
held out (flare_sr/data/heldout): train on them only to measure something else. The loader centre-crops
``transform_base.img_size`` from each layer without resizing, so render at about 1.25 x that size. A
family's folder is written whole or not at all, and an existing one is never replaced.
"""
import argparse
import os
import time

import cv2
import numpy as np
from tqdm import tqdm

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.synthesis import synthesize_flare
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import atomic_path, refuse_file_on_path
from flare_sr.utils.img_util import to_uint8, write_image

FAMILIES = {'procedural': synthesize_flare, **HELDOUT_FAMILIES}  # the order fixes each family's seeds
SHEET_PAIRS, SHEET_TILE = 8, 160


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='folder that receives one <family>/ folder per family')
    parser.add_argument('--family', nargs='+', choices=list(FAMILIES), default=['procedural'])
    parser.add_argument('--count', type=int, default=100, help='flare layers per family')
    parser.add_argument('--size', type=int, default=640, help='side of the square layers, pixels')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def render_layer(family, size, rng):
    """(compound, light): HxWx3 uint8 sRGB of one flare of ``family`` on black, with and without the flare."""
    flared, info = FAMILIES[family](np.zeros((size, size, 3), np.float32), rng)
    return to_uint8(flared), to_uint8(info['label'])


def contact_sheet(pairs):
    """One row per pair: compound flare | light source, each SHEET_TILE pixels, on a dark grey frame."""
    rows = []
    for compound, light in pairs:
        tiles = [cv2.resize(img, (SHEET_TILE, SHEET_TILE), interpolation=cv2.INTER_AREA) for img in (compound, light)]
        rows.append(np.concatenate([tiles[0], np.full((SHEET_TILE, 4, 3), 60, np.uint8), tiles[1]], axis=1))
    return np.concatenate(rows, axis=0)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.count < 1 or args.size < 16:
        raise FlareSRError(f'--count {args.count} / --size {args.size}: need at least 1 layer of 16 pixels')
    # else '<out>/procedural: File exists' from making the family's folder
    refuse_file_on_path(args.out, '--out', ' (it receives one <family>/ folder per family)')
    for family in args.family:
        if os.path.exists(os.path.join(args.out, family)):
            raise FlareSRError(f'{os.path.join(args.out, family)}: already exists; choose another --out or remove it')
    summary = []
    for family in args.family:
        started, pairs, lit = time.time(), [], 0
        family_index = list(FAMILIES).index(family)
        with atomic_path(os.path.join(args.out, family), is_dir=True) as folder:
            for index in tqdm(range(args.count), desc=f'{family} layers', unit='layer'):
                compound, light = render_layer(family, args.size, np.random.default_rng([args.seed, family_index,
                                                                                         index]))
                write_image(os.path.join(folder, 'Compound_Flare', f'{index:05d}.png'), compound)
                write_image(os.path.join(folder, 'Light_Source', f'{index:05d}.png'), light)
                lit += bool(light.max() > 127)
                if len(pairs) < SHEET_PAIRS:
                    pairs.append((compound, light))
            write_image(os.path.join(folder, 'contact_sheet.png'), contact_sheet(pairs))
        summary.append(f'{family}: {args.count} layers of {args.size} px in {time.time() - started:.0f} s, '
                       f'{lit} with their light in the frame -> {os.path.join(args.out, family)}')
    print('\n'.join(summary))
    print('Train on them with Flare7kpp_Pair_Loader: scattering_dict {<family>: <out>/<family>/Compound_Flare}, '
          'light_dict {<family>: <out>/<family>/Light_Source} (docs/data.md, "Flare layers").')


if __name__ == '__main__':
    main()
