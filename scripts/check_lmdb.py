"""Verify a packed dataset folder (lq.lmdb + gt.lmdb): keys against meta_info.txt, equal lq/gt key sets,
every record decodes with the shape its meta line states. --quick checks key sets and counts only.

Example:
    python scripts/check_lmdb.py datasets/demo/patches_512
"""
import argparse
import os

from flare_sr.data.lmdb_pack import LMDB_NAMES, full_check_lmdb, quick_check_lmdb
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dir', help='folder holding lq.lmdb and gt.lmdb (the --out of create_lmdb.py)')
    parser.add_argument('--quick', action='store_true', help='key sets and record counts only (no decoding)')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.dir):
        raise FlareSRError(f'{args.dir}: folder not found')
    lq_path, gt_path = (os.path.join(args.dir, name) for name in LMDB_NAMES)
    if args.quick:
        count = len(quick_check_lmdb(lq_path, gt_path))
        print(f'ok (quick): {args.dir}: {count} patch pairs, lq and gt key sets equal and match meta_info.txt counts')
    else:
        count = full_check_lmdb(lq_path, gt_path)
        print(f'ok: {args.dir}: {count} patch pairs, all records decode with the shapes in meta_info.txt')


if __name__ == '__main__':
    main()
