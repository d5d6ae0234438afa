"""Print the demo's cascade scores per held-out flare family, and write the input | output | label picture.

    python scripts/demo_summary.py --results results/demo_cascade --data datasets/demo

Reads the scores from ``<results>/metrics.json``, written by ``flare_sr/test.py -opt
options/tiny/test_cascade.yml`` (one dataset ``demo_<family>`` per held-out flare family): per family the mean
input and output PSNR, the gain, and the flare-region PSNR (``calculate_flare_psnr``) when it was scored. The
picture takes the first test pair of each family (``<data>/test.csv``'s ``fold`` column) and its output
``<results>/visualization/demo_<family>/test_input_<n>.png``.
"""
import argparse
import json
import os

import numpy as np

from flare_sr.data.meta_csv import read_split_csv
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import check_output_file
from flare_sr.utils.img_util import read_image_uint8, write_image

FAMILY_ORDER = ('psf', 'raytrace', 'anamorphic', 'overlay', 'veiling', 'clean')
RERUN = 'run python flare_sr/test.py -opt options/tiny/test_cascade.yml first'


def read_scores(results):
    """{family: the dataset record of ``demo_<family>``} from ``<results>/metrics.json`` (see
    flare_sr/models/tiled_validation.py: a score is a number, "inf" (identical images) or null (not scored))."""
    path = os.path.join(results, 'metrics.json')
    try:
        with open(path, encoding='utf-8') as handle:
            datasets = json.load(handle)['datasets']
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FlareSRError(f'{path}: no cascade test scores ({type(error).__name__}); {RERUN}') from None
    if not isinstance(datasets, dict):
        raise FlareSRError(f'{path}: no cascade test scores (datasets is not a mapping); {RERUN}')
    return {name.removeprefix('demo_'): record for name, record in datasets.items()
            if name.removeprefix('demo_') in FAMILY_ORDER}


def pictures(results, data):
    """input | output | label of the first test pair of each family, in FAMILY_ORDER."""
    rows = {}
    for row in read_split_csv(os.path.join(data, 'test.csv')):
        rows.setdefault(row['fold'], row)
    grid = []
    for family in sorted(rows, key=FAMILY_ORDER.index):
        row = rows[family]
        output_path = os.path.join(results, 'visualization', f'demo_{family}',
                                   f'{os.path.splitext(row["input_img"])[0]}.png')
        if not os.path.isfile(output_path):
            raise FlareSRError(f'{output_path}: cascade output missing; {RERUN}')
        grid.append(np.concatenate([read_image_uint8(os.path.join(data, 'test_input_img', row['input_img'])),
                                    read_image_uint8(output_path),
                                    read_image_uint8(os.path.join(data, 'test_label_img', row['label_img']))], axis=1))
    return grid


def _db(value):
    return '-' if value is None else f'{float(value):.2f}'


def _mean_over_images(records, metric, role):
    """The mean of one score over the scored images of several families (None: not scored anywhere)."""
    values = [float(scores[metric][role]) for record in records for scores in record['per_image'].values()
              if metric in scores and scores[metric][role] is not None]
    return float(np.mean(values)) if values else None


def score_lines(scores):
    """One line per family in FAMILY_ORDER, then the held-out flare mean, from ``read_scores``' records."""
    lines = []
    for family in sorted(scores, key=FAMILY_ORDER.index):
        record = scores[family]
        psnr = record['mean']['psnr']
        if family == 'clean':
            worst = min((float(entry['psnr']['output']) for entry in record['per_image'].values()
                         if entry['psnr']['output'] is not None), default=None)
            lines.append(f'  flare-free photos: output PSNR {_db(psnr["output"])} dB (worst {_db(worst)} dB; the '
                         'input is the label)')
            continue
        line = f'  held-out {family:10s}: whole image {_db(psnr["input"])} -> {_db(psnr["output"])} dB'
        if psnr['gain'] is not None:
            line += f' ({float(psnr["gain"]):+.2f} dB)'
        region = record['mean'].get('flare_psnr')
        if region and region['scored']:
            line += f'; flare region {_db(region["input"])} -> {_db(region["output"])} dB'
        lines.append(line)
    flared = [record for family, record in scores.items() if family != 'clean']
    inp, out = _mean_over_images(flared, 'psnr', 'input'), _mean_over_images(flared, 'psnr', 'output')
    line = f'demo test PSNR (held-out flare): input {_db(inp)} dB -> cascade output {_db(out)} dB'
    if inp is not None and out is not None:
        line += f' ({out - inp:+.2f} dB)'
    if any('flare_psnr' in record['mean'] for record in flared):
        line += (f"; flare region {_db(_mean_over_images(flared, 'flare_psnr', 'input'))} -> "
                 f"{_db(_mean_over_images(flared, 'flare_psnr', 'output'))} dB")
    lines.append(line)
    return lines


@exit_on_user_error
def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', default='results/demo_cascade')
    parser.add_argument('--data', default='datasets/demo')
    parser.add_argument('--picture', default='experiments/demo_results.png')
    args = parser.parse_args(argv)
    check_output_file(args.picture, '--picture', '.png', 'a PNG picture',
                      input_folders=[('the --results folder', args.results), ('the --data folder', args.data)])
    scores = read_scores(args.results)
    try:  # metrics.json is read back: a file of another shape is named, not a traceback
        lines = score_lines(scores)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise FlareSRError(f'{os.path.join(args.results, "metrics.json")}: not a cascade test record '
                           f'({type(error).__name__}: {error}); {RERUN}') from None
    for line in lines[:-1]:
        print(line)
    write_image(args.picture, np.concatenate(pictures(args.results, args.data), axis=0))
    print(lines[-1])
    print(f'input | output | label, one row per family: {args.picture}')


if __name__ == '__main__':
    main()
