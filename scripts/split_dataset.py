"""Write a train/val split of paired images as a meta CSV (img_id,input_img,label_img,fold,width,height).

Example:
    python scripts/split_dataset.py --lq datasets/demo/train_input_img --gt datasets/demo/train_label_img \
        --out datasets/demo/split.csv --strategy size --val-ratio 0.1 --seed 0
"""
import argparse
import collections

from flare_sr.data.meta_csv import STRATEGIES, TEST_SIZE, make_split, write_split_csv
from flare_sr.data.pairing import pair_paths
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.atomic import check_output_file
from flare_sr.utils.img_util import peek_size


def parse_size(text):
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HEIGHTxWIDTH such as 2448x3264, got "{text}"')
    return height, width


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lq', required=True, help='folder of degraded inputs (e.g. train_input_img)')
    parser.add_argument('--gt', required=True, help='folder of clean labels (e.g. train_label_img)')
    parser.add_argument('--out', required=True, help='CSV to write (replaced atomically)')
    parser.add_argument('--filename-tmpl', default='{}',
                        help="BasicSR's filename_tmpl: the lq stem is this template of the gt stem, e.g. '{}_flare' "
                             '(pairing rules: docs/data.md)')
    parser.add_argument('--strategy', choices=STRATEGIES, default='random',
                        help='random: seeded share; kfold: --folds folds; size: val only from --test-size images')
    parser.add_argument('--val-ratio', type=float, default=0.1, help='share of all pairs used for validation')
    parser.add_argument('--folds', type=int, default=5, help='number of folds for --strategy kfold')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--test-size', type=parse_size, default=TEST_SIZE,
                        help='HEIGHTxWIDTH of the test images for --strategy size (default 2448x3264)')
    parser.add_argument('--full-train', action='store_true',
                        help='also train on the validation pairs (fold "train+val"); validation becomes optimistic')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    pairs = pair_paths(args.lq, args.gt, args.filename_tmpl)
    check_output_file(args.out, '--out', '.csv', 'a CSV table',
                      inputs=[('the input', path) for _, lq, gt in pairs for path in (lq, gt)])
    sizes = []
    for _, lq_path, gt_path in pairs:
        size = peek_size(lq_path)
        if peek_size(gt_path) != size:
            raise FlareSRError(f'{lq_path}: size {size[0]}x{size[1]} differs from its label {gt_path}')
        sizes.append(size)
    rows = make_split(pairs, sizes, args.strategy, args.val_ratio, args.folds, args.seed, args.full_train,
                      args.test_size)
    write_split_csv(args.out, rows)
    counts = collections.Counter(row['fold'] for row in rows)
    summary = ', '.join(f'{fold}: {count}' for fold, count in sorted(counts.items()))
    print(f'wrote {args.out}: {len(rows)} pairs ({summary}), strategy {args.strategy}, seed {args.seed}')


if __name__ == '__main__':
    main()
