"""Out-of-fold stage-I outputs for stage III (stacked generalisation: Wolpert, *Stacked generalization*, 1992).

Stage III learns to clean what stage I leaves behind, from stage I's outputs on the training images. On the photos
it trained on, stage I leaves less than on new ones (demo: flare-free crops of the training photos come out at
45.7 dB, new flare-free photos at 37.4 dB), so stage III learns the wrong leftovers. With ``cross_fit`` the
pipeline also trains K **fold models**, each a copy of stage I trained without one fold of the photos. Every
stage-III training image is then also given as the output of the fold model that never saw its photo::

    stage3_source:
      cross_fit:
        folds: 2                                # K >= 2: K more stage-I trainings
        groups: datasets/demo/train_photos.csv  # optional CSV with columns name,group: files that show one
                                                # photo or scene share a group, and a group one fold
        include_main: true                      # also stage I's own outputs (default); false: out-of-fold only
        parallel: 1                             # fold models trained at once (CPU threads are split among them)
      fold_checkpoints: [...]                   # train_pipeline.py derives them (a standalone run needs them)

Groups and folds. A stage-III pair belongs to the group of its label file, a stage-I training image to the group
of its file; ``groups`` names them by file name (with or without extension). Without ``groups``, every file is its
own group: right when stage I trains on the same label files as stage III (the challenge's recipe), useless when it
trains on other files (clean photos for synthetic flare), which is refused. The groups of the stage-III pairs are
dealt to the folds as scikit-learn's ``GroupKFold`` does: largest group first, each to the fold with the fewest
pairs, so the folds hold about equal numbers of pairs. Fold model k trains on stage I's options with
``datasets.train.meta_info_file`` listing the training images outside fold k's groups.

Stage I must read its training images from a folder (``io_backend: disk``) without a ``meta_info_file`` or
``meta_csv`` of its own; anything else is one error line naming the key.
"""
import csv
import os
import sys
from os import path as osp

from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.img_util import list_images

SETTINGS = {'folds': None, 'groups': None, 'include_main': True, 'parallel': 1}  # key: default (None: required)
STAGE1_TYPES = ('SyntheticFlareDataset', 'PairedFlareDataset')


def cross_fit_settings(source, option_file):
    """The ``stage3_source.cross_fit`` block with defaults filled in, or None when absent or ``~``.
    One FlareSRError naming the key for an unknown key or a bad value."""
    block = source.get('cross_fit')
    if block is None:
        return None
    where = f'{option_file}: stage3_source.cross_fit'
    if not isinstance(block, dict):
        raise FlareSRError(f'{where}: expected a mapping (folds, groups, include_main, parallel), got {block!r}')
    unknown = sorted(set(block) - set(SETTINGS))
    if unknown:
        raise FlareSRError(f'{where}.{unknown[0]}: unknown key (known: {", ".join(SETTINGS)})')
    settings = {key: block.get(key, default) for key, default in SETTINGS.items()}
    for key in ('folds', 'parallel'):
        value, least = settings[key], 2 if key == 'folds' else 1
        if isinstance(value, float) and value.is_integer():  # 2.0 is 2, as everywhere in the option checker
            value = settings[key] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise FlareSRError(f'{where}.{key}: expected a whole number >= {least}, got {value!r}')
    if not isinstance(settings['include_main'], bool):
        raise FlareSRError(f'{where}.include_main: expected true or false, got {settings["include_main"]!r}')
    groups = settings['groups']
    if groups is not None and not osp.isfile(str(groups)):
        raise FlareSRError(f'{where}.groups: {groups} ' + ('is a folder, not a CSV file' if osp.isdir(str(groups))
                                                           else 'does not exist'))
    settings['where'] = where  # named by later errors
    return settings


def _stem(name):
    return osp.splitext(osp.basename(str(name)))[0]


def read_groups(path):
    """{file stem: group} from a CSV with columns ``name,group``; errors name the file and line."""
    try:
        with open(path, encoding='utf-8-sig', newline='') as handle:
            reader = csv.reader(handle)
            header = [column.strip().lower() for column in next(reader, [])]
            if not {'name', 'group'} <= set(header):
                raise FlareSRError(f'{path}: needs the columns name,group (got {",".join(header)})')
            at_name, at_group = header.index('name'), header.index('group')
            groups = {}
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                name, group = (row[at].strip() if at < len(row) else '' for at in (at_name, at_group))
                if not name or not group:
                    raise FlareSRError(f'{path}: line {reader.line_num} has an empty {"name" if not name else "group"}')
                if groups.setdefault(_stem(name), group) != group:
                    raise FlareSRError(f'{path}: line {reader.line_num}: {name} is in group {groups[_stem(name)]} '
                                       'already')
    except UnicodeDecodeError:
        raise FlareSRError(f'{path}: not UTF-8 text (save the groups CSV as UTF-8)') from None
    if not groups:
        raise FlareSRError(f'{path}: lists no files')
    return groups


def group_of(name, groups):
    """The group of a file: its ``groups`` entry, else the file itself."""
    return groups.get(_stem(name), f'file:{_stem(name)}') if groups else f'file:{_stem(name)}'


def assign_folds(pair_groups, folds, where='stage3_source.cross_fit'):
    """{group: fold index} for the groups of the stage-III pairs (one entry per pair): largest group first,
    each to the fold with the fewest pairs so far (ties: the lower index), as scikit-learn's GroupKFold."""
    sizes = {}
    for group in pair_groups:
        sizes[group] = sizes.get(group, 0) + 1
    if len(sizes) < folds:
        raise FlareSRError(f'{where}.folds: {folds} folds need at least {folds} groups of pairs, found {len(sizes)}')
    loads, fold_of = [0] * folds, {}
    for group in sorted(sizes, key=lambda name: (-sizes[name], name)):
        fold = loads.index(min(loads))
        fold_of[group] = fold
        loads[fold] += sizes[group]
    return fold_of


def group_folds(settings, pairs):
    """(groups or None, {group: fold index}) for the stage-III pairs ([(key, lq, gt)])."""
    groups = read_groups(settings['groups']) if settings['groups'] else None
    if groups:  # a pair left out would be its own group: its photo's other files could train its fold model
        missing = [osp.basename(gt) for _, _, gt in pairs if _stem(gt) not in groups]
        if missing:
            raise FlareSRError(f'{settings["groups"]}: lists no group for {missing[0]} ({len(missing)} of stage '
                               "III's label files are missing); every pair needs its photo's group")
    return groups, assign_folds([group_of(gt, groups) for _, _, gt in pairs], settings['folds'], settings['where'])


def pair_folds(settings, pairs):
    """Fold index of each stage-III pair ([(key, lq, gt)], in order)."""
    groups, fold_of = group_folds(settings, pairs)
    return [fold_of[group_of(gt, groups)] for _, _, gt in pairs]


def stage1_images(stage1_opt, stage1_file):
    """File names of the images stage I trains on (its ``datasets.train``: clean images, or the labels of pairs)."""
    train = ((stage1_opt.get('datasets') or {}).get('train')) or {}
    where = f'{stage1_file}: datasets.train'
    if train.get('type') not in STAGE1_TYPES:
        raise FlareSRError(f'{where}.type: {train.get("type")}; stage3_source.cross_fit trains fold models on '
                           f'{" or ".join(STAGE1_TYPES)}')
    backend = train.get('io_backend') or {}
    if not isinstance(backend, dict) or backend.get('type', 'disk') != 'disk':
        raise FlareSRError(f'{where}.io_backend: stage3_source.cross_fit needs stage I\'s images in a folder '
                           f'({{type: disk}}), got {backend!r}')
    for key in ('meta_info_file', 'meta_csv'):
        if train.get(key):
            raise FlareSRError(f'{where}.{key}: already selects images; stage3_source.cross_fit selects each fold '
                               "model's images itself")
    if not train.get('dataroot_gt'):
        raise FlareSRError(f'{where}.dataroot_gt: missing (the fold models train on its images)')
    try:
        return [osp.basename(path) for path in list_images(train['dataroot_gt'])]
    except FlareSRError as error:
        raise FlareSRError(f'{where}.dataroot_gt: {error}') from None


def fold_training_lists(settings, stage1_opt, stage1_file, pairs):
    """For each fold k, the stage-I training image names outside fold k's groups. A fold whose groups no stage-I
    image belongs to would train on everything, its outputs in-sample: refused."""
    groups, fold_of = group_folds(settings, pairs)
    names = stage1_images(stage1_opt, stage1_file)
    if groups:  # an image left out would be its own group, in every fold: a fold model could see its own photo
        missing = [name for name in names if _stem(name) not in groups]
        if missing:
            raise FlareSRError(f'{settings["groups"]}: lists no group for {missing[0]} ({len(missing)} of stage I\'s '
                               f'training images in {stage1_file} are missing); every image needs its photo\'s group')
        strays = sorted({groups[_stem(name)] for name in names} - set(fold_of))
        if strays:
            print(f'note: {settings["groups"]}: no stage-III pair is in group {", ".join(strays[:3])}; every fold '
                  'model trains on its stage-I images', file=sys.stderr, flush=True)
    train = stage1_opt['datasets']['train']
    batch = int(train.get('batch_size_per_gpu') or 1)
    lists = []
    for fold in range(settings['folds']):
        kept = [name for name in names if fold_of.get(group_of(name, groups)) != fold]
        if len(kept) == len(names):
            hint = ('list each file with its photo in stage3_source.cross_fit.groups (CSV name,group)' if not groups
                    else f'{settings["groups"]} gives none of them a group of those pairs')
            raise FlareSRError(f'{settings["where"]}: fold {fold + 1}/{settings["folds"]} would train on all of '
                               f'stage I\'s images ({stage1_file}), which are not the files of stage III\'s pairs; '
                               f'{hint}')
        if len(kept) * int(train.get('dataset_enlarge_ratio') or 1) < batch:
            raise FlareSRError(f'{settings["where"]}: fold {fold + 1}/{settings["folds"]} leaves stage I '
                               f'{len(kept)} training images, less than a batch ({stage1_file}: datasets.train.'
                               f'batch_size_per_gpu {batch}); use more groups or fewer folds')
        lists.append(kept)
    return lists


def fold_name(stage1_opt, fold, folds):
    """The experiment name of fold model ``fold`` (0-based): ``<stage I name>_fold<k>of<K>``."""
    return f'{stage1_opt["name"]}_fold{fold + 1}of{folds}'


def fold_options(stage1_opt, fold, folds, meta_info_file):
    """Stage I's options for fold model ``fold``: its own name and ``datasets.train.meta_info_file``."""
    opt = dict(stage1_opt, name=fold_name(stage1_opt, fold, folds))
    opt['path'] = dict(opt.get('path') or {}, resume_state=None)  # stage I's state is not a fold model's
    datasets = dict(opt['datasets'])
    datasets['train'] = dict(datasets['train'], meta_info_file=meta_info_file)
    opt['datasets'] = datasets
    return opt


def write_meta_info(path, names):
    """A BasicSR ``meta_info_file``: one file name per line, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as handle:
            handle.write(''.join(f'{name}\n' for name in names))
    return path


def thread_share(parallel):
    """OMP_NUM_THREADS for each of ``parallel`` trainings at once: this process's threads, split."""
    value = os.environ.get('OMP_NUM_THREADS', '')
    total = int(value) if value.strip().isdigit() else os.cpu_count() or 1
    return max(1, total // parallel)
