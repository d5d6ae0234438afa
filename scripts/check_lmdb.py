"""Verify a packed dataset folder (lq.lmdb + gt.lmdb): keys against meta_info.txt, equal lq/gt key sets,
every record decodes with the shape its meta line states. --quick checks key sets and counts only.

Example:
    python scripts/check_lmdb.py datasets/demo/patches_512
"""
import argparse
import os

from flare_sr.data.lmdb_pack import LMDB_NAMES, full_check_lmdb, killed_packs, quick_check_lmdb
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
        left = killed_packs(args.dir)
        raise FlareSRError(f'{args.dir}: ' + ('is a file, not a folder' if os.path.exists(args.dir) else
                                              'folder not found') +
                           (f'; {left[0]} is a pack killed half way: delete it and pack again' if left else ''))
    lq_path, gt_path = (os.path.join(args.dir, name) for name in LMDB_NAMES)
    if not any(os.path.exists(path) for path in (lq_path, gt_path)):
        lone = os.path.isfile(os.path.join(args.dir, 'data.mdb'))
        inside = ('it is itself an LMDB; give the folder holding lq.lmdb and gt.lmdb' if lone
                  else 'it is not a folder made by create_lmdb.py')
        raise FlareSRError(f'{args.dir}: holds no {" or ".join(LMDB_NAMES)} ({inside})')
    if args.quick:
        count = len(quick_check_lmdb(lq_path, gt_path))
        print(f'ok (quick): {args.dir}: {count} patch pairs, lq and gt key sets equal and match meta_info.txt counts')
    else:
        count = full_check_lmdb(lq_path, gt_path)
        print(f'ok: {args.dir}: {count} patch pairs, all records decode with the shapes in meta_info.txt')


if __name__ == '__main__':
    main()
