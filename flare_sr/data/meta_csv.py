"""Train/val split files: one CSV row per image pair, and the ``fold`` selection the datasets apply to it.

Columns: ``img_id,input_img,label_img,fold,width,height``. ``input_img``/``label_img`` are file names
inside the lq/gt folders (as in the challenge's train.csv), so a CSV stays valid when the data moves.
``fold`` holds one or more tags joined by ``+``: ``train``, ``val``, ``except`` (never used) or a
k-fold number ``0``..``k-1``. ``train+val`` is a validation pair that ``--full-train`` also trains on.
A dataset option ``fold: val`` or ``fold: ['0', '1', '3']`` keeps the rows carrying any of those tags.
"""
import csv
import difflib
import io
import os
from collections import Counter

import numpy as np

from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path, same_file
from flare_sr.utils.hardware import warn

COLUMNS = ('img_id', 'input_img', 'label_img', 'fold', 'width', 'height')
REQUIRED_COLUMNS = COLUMNS[:4]
STRATEGIES = ('random', 'kfold', 'size')
RESERVED_TAGS = ('train', 'val', 'except')  # fold tags with a meaning of their own
TEST_SIZE = (2448, 3264)  # (height, width) of every challenge test image


def split_csv_text(rows):
    """The text of a split CSV holding ``rows`` (dicts with COLUMNS; a missing column is left empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row.get(column, '') for column in COLUMNS})
    return buffer.getvalue()


def write_split_csv(path, rows):
    """Write rows (dicts with COLUMNS) atomically: an interrupted write keeps the previous CSV."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as handle:
            handle.write(split_csv_text(rows))


def _fold_cell(tags):
    """A fold cell as written back: tags stripped, the reserved ones lower-cased (``Train + val`` -> ``train+val``)."""
    tags = (tag.strip() for tag in tags.split('+'))
    return '+'.join(tag.lower() if tag.lower() in RESERVED_TAGS else tag for tag in tags)


def read_split_csv(path):
    """Rows as dicts of strings, cells stripped, reserved fold tags lower-cased; errors name the line: a missing file,
    column or cell, a row with extra cells, an img_id or input_img listed twice."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FlareSRError(f'{path}: meta CSV not found')
    try:
        with open(path, encoding='utf-8-sig', newline='') as handle:
            return _read_rows(csv.DictReader(handle), path)
    except UnicodeDecodeError:
        raise FlareSRError(f'{path}: meta CSV is not UTF-8 text (save it as UTF-8)') from None


def _read_rows(reader, path):
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]  # "img_id, input_img" by hand
    missing = [column for column in REQUIRED_COLUMNS if column not in reader.fieldnames]
    if missing:
        header = ','.join(reader.fieldnames)
        hint = '; columns must be separated by commas' if ';' in header or '\t' in header else ''
        raise FlareSRError(f'{path}: missing column(s) {", ".join(missing)} (need {",".join(REQUIRED_COLUMNS)}{hint}; '
                           'write a split with scripts/split_dataset.py)')
    rows, first_line = [], {}
    for line_number, row in enumerate(reader, start=2):
        where = f'{path}: line {line_number}'
        if row.get(None):  # DictReader's key for cells beyond the header: an unquoted comma in a file name
            raise FlareSRError(f'{where} has {len(reader.fieldnames) + len(row[None])} cells, the header '
                               f'{len(reader.fieldnames)} (quote a name holding a comma: "a, b.png")')
        empty = [column for column in REQUIRED_COLUMNS if not (row.get(column) or '').strip()]
        if empty:
            raise FlareSRError(f'{where} has an empty {empty[0]}')
        row = {key: (value or '').strip() for key, value in row.items() if key}
        for column in ('img_id', 'input_img'):  # a pair listed twice is trained or packed twice
            if (column, row[column]) in first_line:
                raise FlareSRError(f'{where}: {column} {row[column]} is listed twice (also line '
                                   f'{first_line[column, row[column]]}); keep one row')
            first_line[column, row[column]] = line_number
        row['fold'] = _fold_cell(row['fold'])
        rows.append(row)
    if not rows:
        raise FlareSRError(f'{path}: meta CSV has no rows')
    return rows


def fold_tags(row):
    return set(row['fold'].split('+'))


def normalize_fold(fold):
    """The dataset option ``fold`` (a name, a number or a list of them) as a set of strings."""
    if fold is None:
        return None
    values = fold if isinstance(fold, (list, tuple)) else [fold]
    tags = {str(value).strip() for value in values}
    return {tag.lower() if tag.lower() in RESERVED_TAGS else tag for tag in tags}


_WARNED = set()  # (csv path, tag): said once per process (the option check and the dataset both select)


def select_rows(rows, fold, csv_path):
    """Rows carrying any of the requested fold tags; an empty selection names the folds that do exist. Rows left out
    whose tag is close to a requested one (``trian`` for ``train``, ``valid`` for ``val``) get one ``warning:`` line:
    a misspelt tag drops its rows, and a tag of one's own (``rain``) may look alike."""
    wanted = normalize_fold(fold)
    if wanted is None:
        raise FlareSRError(f'{csv_path}: a meta CSV needs the option "fold" (e.g. fold: train)')
    chosen = [row for row in rows if fold_tags(row) & wanted]
    if not chosen:
        available = sorted(set().union(*(fold_tags(row) for row in rows)))
        raise FlareSRError(f'{csv_path}: no row has fold {sorted(wanted)}; folds present: {available}')
    left = Counter(tag for row in rows if not fold_tags(row) & wanted for tag in fold_tags(row))
    for tag, count in sorted(left.items()):
        near = difflib.get_close_matches(tag.lower(), sorted(wanted), n=1, cutoff=0.7)
        if near and (csv_path, tag) not in _WARNED:
            _WARNED.add((csv_path, tag))
            warn(f'{csv_path}: {count} row(s) tagged "{tag}" are not selected by fold {near[0]} (a misspelling? '
                 'tags are joined with "+", e.g. train+val)')
    return chosen


def resolve_pairs(rows, lq_dir, gt_dir, csv_path):
    """[(img_id, lq_path, gt_path)] with the CSV's file names joined to the folders; a missing file, or inputs that are
    all their own labels (one folder given twice, a symlink), is an error (some are flare-free pairs)."""
    pairs = []
    for row in rows:
        lq_path = os.path.join(lq_dir, row['input_img'])
        gt_path = os.path.join(gt_dir, row['label_img'])
        for path in (lq_path, gt_path):
            if not os.path.isfile(path):
                raise FlareSRError(f'{path}: listed in {csv_path} (img_id {row["img_id"]}) but not found')
        pairs.append((row['img_id'], lq_path, gt_path))
    if pairs and all(same_file(lq_path, gt_path) for _, lq_path, gt_path in pairs):  # flare-free pairs may be links
        raise FlareSRError(f'{pairs[0][1]}: listed in {csv_path} (img_id {pairs[0][0]}) as its own label '
                           f'{pairs[0][2]}, as is every input ({len(pairs)} row(s)): the input and label folders are '
                           'one; give the flared inputs and the labels in two folders')
    return pairs


def _validation_count(candidates, val_ratio, total):
    if not 0 < val_ratio < 1:
        raise FlareSRError(f'--val-ratio must be between 0 and 1, got {val_ratio}')
    return min(len(candidates), max(1, round(val_ratio * total)))


def make_split(pairs, sizes, strategy, val_ratio=0.1, folds=5, seed=0, full_train=False, test_size=TEST_SIZE):
    """Rows for ``pairs`` [(key, lq, gt)] with ``sizes`` [(h, w)] by strategy.

    random: a seeded ``val_ratio`` share is ``val``. kfold: a seeded permutation dealt into ``folds``
    folds. size: the ``val`` share is drawn only from images of ``test_size``, so validation looks
    like the test set. ``full_train`` tags validation rows ``train+val`` (optimistic validation).
    """
    if strategy not in STRATEGIES:
        raise FlareSRError(f'unknown split strategy "{strategy}" (choose from {", ".join(STRATEGIES)})')
    if len(pairs) < 2:
        raise FlareSRError(f'{len(pairs)} pair(s): a split needs at least 2')
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    if strategy == 'kfold':
        if full_train:
            raise FlareSRError('--full-train has no meaning with k-fold: list every fold in the train dataset instead')
        if not 2 <= folds <= len(pairs):
            raise FlareSRError(f'--folds must be between 2 and the number of pairs ({len(pairs)}), got {folds}')
        tags = [''] * len(pairs)
        for rank, index in enumerate(order):
            tags[index] = str(rank % folds)
    else:
        candidates = list(order)
        if strategy == 'size':
            candidates = [index for index in order if tuple(sizes[index]) == tuple(test_size)]
            if not candidates:
                found = sorted({f'{height}x{width}' for height, width in map(tuple, sizes)})
                found = ', '.join(found[:5]) + (f' and {len(found) - 5} more sizes' if len(found) > 5 else '')
                raise FlareSRError(f'no pair of the test size {test_size[0]}x{test_size[1]} (HxW) to validate on (the '
                                   f'pairs are {found}); give --test-size HxW of the photos yours will be judged on, '
                                   'or --strategy random')
        val = set(candidates[:_validation_count(candidates, val_ratio, len(pairs))])
        val_tag = 'train+val' if full_train else 'val'
        tags = [val_tag if index in val else 'train' for index in range(len(pairs))]
    return [
        dict(img_id=key, input_img=os.path.basename(lq), label_img=os.path.basename(gt), fold=tag,
             width=size[1], height=size[0])
        for (key, lq, gt), size, tag in zip(pairs, sizes, tags)
    ]


# Dacon challenge naming: the one home of ``{split}_input_{n}.png`` and the challenge's train.csv/test.csv.
FIRST_ID = {'train': 10000, 'test': 20000, 'val': 30000}  # the challenge: train from 10000, test from 20000


def dacon_names(split, number):
    """(img_id, input file, label file, input folder, label folder) of pair ``number`` in ``split``."""
    return (f'{split}_{number}', f'{split}_input_{number}.png', f'{split}_label_{number}.png',
            f'{split}_input_img', f'{split}_label_img')


def write_dacon_csv(path, split, numbers, folds=None):
    """``train.csv`` (img_id,input_img,label_img) or ``test.csv`` (img_id,input_img) as the challenge has them.

    With ``folds`` (one tag per number) a ``label_img`` and a ``fold`` column are added, so the file is
    also a split CSV (``meta_csv`` + ``fold``) that selects e.g. one flare family of a test set.
    """
    columns = ['img_id', 'input_img'] + (['label_img'] if split == 'train' or folds else []) + \
        (['fold'] if folds else [])
    rows = [','.join(columns)]
    for index, number in enumerate(numbers):
        img_id, input_name, label_name = dacon_names(split, number)[:3]
        values = {'img_id': img_id, 'input_img': input_name, 'label_img': label_name}
        if folds:
            values['fold'] = folds[index]
        rows.append(','.join(values[column] for column in columns))
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as handle:
            handle.write('\n'.join(rows) + '\n')
