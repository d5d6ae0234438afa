"""Score the demo's cascade outputs per held-out flare family, and write the input | output | label picture.

    python scripts/demo_summary.py --results results/demo_cascade --data datasets/demo

Reads ``<data>/test.csv`` (its ``fold`` column names the flare family of each test pair), the labels and
inputs, and the outputs ``<results>/visualization/demo_<family>/test_input_<n>.png`` written by
``flare_sr/test.py -opt options/tiny/test_cascade.yml``. Prints, per family, the mean input and output
PSNR (skimage), the gain, and the flare-region PSNR (``calculate_flare_psnr``) beside them.
"""
import argparse
import os

import flare_sr  # noqa: F401  (first: torchvision alias for BasicSR, registers our metrics)
import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY
from skimage.metrics import peak_signal_noise_ratio

from flare_sr.utils.img_util import read_image_uint8, write_image
from flare_sr.data.meta_csv import read_split_csv
from flare_sr.errors import FlareSRError, exit_on_user_error

FAMILY_ORDER = ('psf', 'raytrace', 'anamorphic', 'clean')


def flare_psnr_metric():
    """BasicSR's registered ``calculate_flare_psnr``, or None when this checkout does not have it."""
    return METRIC_REGISTRY.get('calculate_flare_psnr') if 'calculate_flare_psnr' in METRIC_REGISTRY else None


def score(results, data):
    """{family: [(name, input dB, output dB, input flare dB, output flare dB)]} and the compare rows."""
    rows = read_split_csv(os.path.join(data, 'test.csv'))
    flare_psnr = flare_psnr_metric()
    scores, pictures = {}, []
    for row in rows:
        family = row['fold']
        stem = os.path.splitext(row['input_img'])[0]
        output_path = os.path.join(results, 'visualization', f'demo_{family}', f'{stem}.png')
        if not os.path.isfile(output_path):
            raise FlareSRError(f'{output_path}: cascade output missing; run flare_sr/test.py -opt '
                               'options/tiny/test_cascade.yml first')
        lq = read_image_uint8(os.path.join(data, 'test_input_img', row['input_img']))
        gt = read_image_uint8(os.path.join(data, 'test_label_img', row['label_img']))
        out = read_image_uint8(output_path)
        clean = family == 'clean'
        entry = (stem, peak_signal_noise_ratio(gt, lq, data_range=255) if not clean else float('inf'),
                 peak_signal_noise_ratio(gt, out, data_range=255),
                 flare_psnr(lq, gt, img_lq=lq) if flare_psnr and not clean else float('nan'),
                 flare_psnr(out, gt, img_lq=lq) if flare_psnr and not clean else float('nan'))
        scores.setdefault(family, []).append(entry)
        if len([p for p in pictures if p[0] == family]) < 1:
            pictures.append((family, np.concatenate([lq, out, gt], axis=1)))
    return scores, [picture for _, picture in sorted(pictures, key=lambda p: FAMILY_ORDER.index(p[0]))]


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', default='results/demo_cascade')
    parser.add_argument('--data', default='datasets/demo')
    parser.add_argument('--picture', default='experiments/demo_results.png')
    args = parser.parse_args(argv)
    scores, pictures = score(args.results, args.data)
    for family in sorted(scores, key=FAMILY_ORDER.index):
        entries = scores[family]
        output = np.mean([e[2] for e in entries])
        if family == 'clean':
            print(f'  flare-free photos: output PSNR {output:.2f} dB '
                  f'(worst {min(e[2] for e in entries):.2f} dB; the input is the label)')
            continue
        inp = np.mean([e[1] for e in entries])
        region_in, region_out = np.nanmean([e[3] for e in entries]), np.nanmean([e[4] for e in entries])
        region = f'; flare region {region_in:.2f} -> {region_out:.2f} dB'
        print(f'  held-out {family:10s}: whole image {inp:.2f} -> {output:.2f} dB ({output - inp:+.2f} dB)'
              + (region if flare_psnr_metric() else ''))
    write_image(args.picture, np.concatenate(pictures, axis=0))
    flared = [e for family, entries in scores.items() if family != 'clean' for e in entries]
    inp, out = np.mean([e[1] for e in flared]), np.mean([e[2] for e in flared])
    line = f'demo test PSNR (held-out flare): input {inp:.2f} dB -> cascade output {out:.2f} dB ({out - inp:+.2f} dB)'
    if flare_psnr_metric():
        region_in, region_out = np.nanmean([e[3] for e in flared]), np.nanmean([e[4] for e in flared])
        line += f'; flare region {region_in:.2f} -> {region_out:.2f} dB'
    print(line)
    print(f'input | output | label, one row per family: {args.picture}')


if __name__ == '__main__':
    main()
