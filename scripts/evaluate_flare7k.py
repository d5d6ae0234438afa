"""Score a folder of results as Flare7K's evaluate.py does: PSNR, SSIM, G-PSNR, S-PSNR, Global-PSNR and Score.

    python scripts/evaluate_flare7k.py --result results/flare7kpp/visualization/real \
        --gt datasets/Flare7Kpp/test_data/real/gt --mask datasets/Flare7Kpp/test_data/real/mask

The protocol is flare_sr/metrics/flare7k_metric.py's (documented in docs/metrics_and_losses.md), the numbers
are evaluate.py's to the last bit. As evaluate.py, the i-th result, label and mask in sorted name order are
scored together (Flare7K names them input_000000, gt_000000, mask_000000); only image files count here,
where evaluate.py took every file, and pairs whose names carry different numbers are warned about on stderr (the
first named). ``--input`` is accepted for ``--result`` (evaluate.py's flag). LPIPS (AlexNet, as evaluate.py feeds
it) with ``--lpips``, from local weights only (flare_sr/metrics/lpips_alexnet.py). Exit status: 0 scored, 2 bad
input (one ``error:`` line): two flags naming one folder, different counts, sizes, or a grayscale result against a
colour label (or the reverse), 16-bit or unreadable files.
"""
import argparse
import os
import re
from os import path as osp

import torch
from PIL import Image
from tqdm import tqdm

from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.metrics.flare7k_metric import (FIXED_AREA, GRAY_MODES, PROTOCOL, REGION_NAMES, flare7k_scores,
                                             flare7k_summary, read_image_8bit, read_mask)
from flare_sr.metrics.lpips_alexnet import ALEXNET_FILE, LIN_FILE, flare7k_lpips, load_lpips_alex
from flare_sr.utils.hardware import warn
from flare_sr.utils.img_util import list_images

_NUMBER = re.compile(r'\d+')


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--result', '--input', dest='result', required=True,
                        help='folder of restored images (evaluate.py: --input)')
    parser.add_argument('--gt', required=True, help='folder of flare-free labels')
    parser.add_argument('--mask', help='folder of Flare7K colour masks (G-PSNR, S-PSNR, Global-PSNR and Score)')
    parser.add_argument('--lpips', action='store_true',
                        help='also LPIPS (AlexNet), from local weights: --alexnet and --lpips-lin or their defaults')
    parser.add_argument('--alexnet', help=f'torchvision\'s {ALEXNET_FILE} (default: in the torch hub checkpoints '
                        'folder); implies --lpips')
    parser.add_argument('--lpips-lin', help=f'LPIPS v0.1 {LIN_FILE} (default: the one inside an installed lpips '
                        'package); implies --lpips')
    return parser.parse_args(argv)


def folder_images(flag, folder):
    """Sorted image paths of ``folder``; FlareSRError naming the flag when it is missing or has none."""
    try:
        return list_images(os.path.expanduser(folder))
    except FlareSRError as error:
        raise FlareSRError(f'{flag} {error}') from None


def check_distinct_folders(args):
    """FlareSRError when two of --result, --gt and --mask are one folder (also through a symlink or ``a/../a``):
    results scored against themselves give PSNR inf everywhere."""
    given = [(flag, folder) for flag, folder in (('--result', args.result), ('--gt', args.gt), ('--mask', args.mask))
             if folder is not None]
    for index, (flag, folder) in enumerate(given):
        for other_flag, other in given[:index]:
            if osp.realpath(osp.expanduser(folder)) == osp.realpath(osp.expanduser(other)):
                raise FlareSRError(f'{flag} {folder} is the {other_flag} folder {other}; each must be its own folder '
                                   '(results scored against themselves give PSNR inf)')


def paired_lists(args):
    """[(result, gt, mask or None)] by sorted order; FlareSRError when two flags name one folder or the folders
    hold different counts."""
    check_distinct_folders(args)
    lists = {'--result': folder_images('--result', args.result), '--gt': folder_images('--gt', args.gt)}
    if args.mask is not None:
        lists['--mask'] = folder_images('--mask', args.mask)
    counts = {flag: len(paths) for flag, paths in lists.items()}
    if len(set(counts.values())) > 1:
        raise FlareSRError('the folders hold different numbers of images (' + ', '.join(
            f'{flag} {count}' for flag, count in counts.items()) + '); evaluate.py pairs them by sorted order')
    masks = lists.get('--mask', [None] * counts['--gt'])
    return list(zip(lists['--result'], lists['--gt'], masks))


def image_number(path):
    """The image's number in a file name: its longest run of digits (the last of equals), as a value; None without
    one. ``flare7kpp_real_000000`` -> 0 (not its 7), ``v2_out_000003`` -> 3, Flare7K's ``00000_deflare`` -> 0."""
    runs = _NUMBER.findall(os.path.splitext(os.path.basename(path))[0])
    return int(max(reversed(runs), key=len)) if runs else None


def numbers_disagree(paths):
    """True when the files of one pair carry different image numbers (``image_number``; a likely misalignment);
    names without a number say nothing."""
    numbers = {image_number(path) for path in paths if path} - {None}
    return len(numbers) > 1


def disagreeing_pairs_warning(pairs):
    """The warning line (without ``warning:``) for pairs whose names carry different numbers, naming the first; None
    when all agree. The pairing stays evaluate.py's sorted order: only the user knows which folder is shifted."""
    disagree = [paths for paths in pairs if numbers_disagree(paths)]
    if not disagree:
        return None
    return (f'{len(disagree)} of {len(pairs)} pairs join names with different numbers, the first: '
            + ' | '.join(os.path.basename(path) for path in disagree[0] if path)
            + '; pairs are by sorted name order, as evaluate.py: check the folders')


def is_gray(path):
    """Whether an image file is single-channel (grayscale, with or without alpha), from its header."""
    with Image.open(path) as img:
        return img.mode in GRAY_MODES


def score_pair(result_path, gt_path, mask_path, lpips_model=None):
    result, gt = read_image_8bit(result_path, 'result'), read_image_8bit(gt_path, 'label')
    gray = is_gray(result_path), is_gray(gt_path)
    if gray[0] != gray[1]:  # the readers give 3 equal channels; evaluate.py stops on the shape mismatch
        raise FlareSRError(f'{result_path}: a {"grayscale" if gray[0] else "colour"} result, its label {gt_path} '
                           f'{"grayscale" if gray[1] else "colour"}; the Flare7K protocol compares like with like '
                           '(evaluate.py stops on the shape mismatch)')
    if result.shape != gt.shape:
        raise FlareSRError(f'{result_path} is {result.shape[1]}x{result.shape[0]}, its label {gt_path} '
                           f'{gt.shape[1]}x{gt.shape[0]}')
    mask = None
    if mask_path is not None:
        mask = read_mask(mask_path)
        if mask.shape[:2] != gt.shape[:2]:
            raise FlareSRError(f'{mask_path} is {mask.shape[1]}x{mask.shape[0]}, its label {gt_path} '
                               f'{gt.shape[1]}x{gt.shape[0]}')
    try:  # too small for SSIM's or LPIPS's window: the message names the size, this the file
        scores = flare7k_scores(gt, result, mask)
        if lpips_model is not None:
            scores['lpips'] = flare7k_lpips(lpips_model, gt, result)
    except FlareSRError as error:
        raise FlareSRError(f'{result_path}: {error}') from None
    return scores, gt.shape[:2]


def table(summary):
    """The printed rows: metric, mean, images averaged."""
    rows = [('PSNR', summary['psnr']), ('SSIM', summary['ssim'])]
    rows += [('LPIPS (AlexNet)', summary['lpips'])] if 'lpips' in summary else []
    rows += [(REGION_NAMES[region], summary[region]) for region in REGION_NAMES if region in summary]
    lines = [f'{"metric (Flare7K protocol)":<27} {"mean":>9}  images']
    for name, (value, count) in rows:
        shown = f'{value:9.4f}' if count else f'{"-":>9}'
        lines.append(f'{name:<27} {shown}  {count}' + ('' if count else ' (no image has this region)'))
    if 'score' in summary:
        value = summary['score'][0]
        shown = f'{value:9.4f}' if value == value else f'{"-":>9}'
        lines.append(f'{"Score":<27} {shown}  mean of G-, S- and Global-PSNR')
    if 'lpips' not in summary:
        lines.append(f'{"LPIPS (AlexNet)":<27} {"-":>9}  not computed (--lpips, with local weights)')
    return lines


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    pairs = paired_lists(args)
    lpips_model = None
    if args.lpips or args.alexnet or args.lpips_lin:
        lpips_model = load_lpips_alex(args.alexnet, args.lpips_lin, 'cuda' if torch.cuda.is_available() else 'cpu')
    disagree = disagreeing_pairs_warning(pairs)
    if disagree:  # said before the scoring, on stderr: the table on stdout stays the table
        warn(disagree)
    per_image, off_size = [], 0
    for paths in tqdm(pairs, desc='Flare7K protocol', unit='image'):
        scores, size = score_pair(*paths, lpips_model)
        per_image.append(scores)
        off_size += size[0] * size[1] != FIXED_AREA
    print(f'protocol: {PROTOCOL}')
    print(f'pairs: {len(pairs)}, by sorted name order as evaluate.py (first: '
          + ' | '.join(os.path.basename(path) for path in pairs[0] if path) + ')')
    if off_size and args.mask is not None:
        print(f'note: {off_size} images are not 512x512 pixels: as in evaluate.py their G-, S- and Global-PSNR divide '
              'by a fixed 512^2 area, i.e. are shifted by 10*log10(H*W/512^2) dB from the region mean')
    for line in table(flare7k_summary(per_image)):
        print(line)


if __name__ == '__main__':
    main()
