"""Cut aligned, overlapping lq/gt patch pairs and pack them into OUT/lq.lmdb and OUT/gt.lmdb (BasicSR format).

Example:
    python scripts/create_lmdb.py --lq datasets/demo/train_input_img --gt datasets/demo/train_label_img \
        --out datasets/demo/patches_512 --patch-size 512 --stride 256 --meta datasets/demo/split.csv --fold train
"""
import argparse
import os
import signal
import sys

from flare_sr.data.lmdb_pack import pack_lmdb
from flare_sr.data.meta_csv import read_split_csv, resolve_pairs, select_rows
from flare_sr.data.pairing import pair_paths
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lq', required=True, help='folder of degraded inputs')
    parser.add_argument('--gt', required=True, help='folder of clean labels')
    parser.add_argument('--out', required=True, help='folder to create, holding lq.lmdb and gt.lmdb')
    parser.add_argument('--patch-size', type=int, required=True, help='square patch side in pixels')
    parser.add_argument('--stride', type=int, required=True,
                        help='step between patches; the last row and column touch the border')
    parser.add_argument('--filename-tmpl', default='{}',
                        help="BasicSR's filename_tmpl: the lq stem is this template of the gt stem, e.g. '{}_flare' "
                             '(pairing rules: docs/data.md)')
    parser.add_argument('--meta', help='split CSV from scripts/split_dataset.py; packs only the rows of --fold')
    parser.add_argument('--fold', nargs='+', help='fold tag(s) to pack from --meta, e.g. train, or 0 1 3 4')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1), help='parallel processes')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing LMDB in OUT (the old one survives until the new one is complete)')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression of the stored patches (1: fast, as BasicSR)')
    return parser.parse_args(argv)


def select_pairs(args):
    if args.meta is None:
        if args.fold:
            raise FlareSRError('--fold needs --meta CSV')
        return pair_paths(args.lq, args.gt, args.filename_tmpl)
    rows = select_rows(read_split_csv(args.meta), args.fold, args.meta)
    return resolve_pairs(rows, args.lq, args.gt, args.meta)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # SystemExit unwinds through atomic_path, which deletes the half-built LMDB


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.stride > args.patch_size:
        raise FlareSRError(f'--stride {args.stride} is larger than --patch-size {args.patch_size}: the pixels between '
                           'patches would never be packed')
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    summary = pack_lmdb(select_pairs(args), args.out, args.patch_size, args.stride, workers=args.workers,
                        overwrite=args.overwrite, compress_level=args.compress_level)
    megabytes = (summary['lq_bytes'] + summary['gt_bytes']) / 1024**2
    print(f"packed {summary['pairs']} pairs into {summary['patches']} patch pairs of {args.patch_size}px "
          f"(stride {args.stride}), {megabytes:.1f} MB of PNG, in {summary['seconds']:.1f} s "
          f"({summary['patches'] / max(summary['seconds'], 1e-9):.1f} patch pairs/s) -> {summary['out']}")


if __name__ == '__main__':
    main()
