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
        parallel: 1                             # fold models trained at once (threads split among them; at most
                                                # one per thread: run_stages)
      fold_checkpoints: [...]                   # train_pipeline.py derives them (a standalone run needs them)

Groups and folds. A stage-III pair belongs to the group of its label file, a stage-I training image to the group
of its file; ``groups`` names them by file name (with or without extension). Without ``groups``, every file is its
own group: right when stage I trains on the same label files as stage III (the challenge's recipe), useless when it
trains on other files (clean photos for synthetic flare), which is refused. The groups of the stage-III pairs are
dealt to the folds as scikit-learn's ``GroupKFold`` does: largest group first, each to the fold with the fewest
pairs, so the folds hold about equal numbers of pairs. Fold model k trains on stage I's options with a selection
of stage I's training data outside fold k's groups (``stage1_units``):
- images in a folder (``io_backend: disk``), all or those of stage I's own ``meta_info_file``: a
  ``meta_info_file`` of the kept file names;
- pairs chosen by ``meta_csv`` + ``fold`` (the challenge's recipe): a split CSV of the kept rows;
- a PairedFlareDataset's LMDBs of patches (the full-size recipe): a ``meta_info_file`` of the kept patch keys. A
  patch belongs to the group of the stage-III pair whose key is its image key, as ``scripts/create_lmdb.py`` names
  them when it packs the same split CSV.
"""
import csv
import io
import os
import sys
from os import path as osp

from flare_sr.data.lmdb_pack import image_key_of_patch, lmdb_image_key, read_meta_info_names
from flare_sr.data.meta_csv import read_split_csv, select_rows, split_csv_text
from flare_sr.data.paired_flare_dataset import lmdb_items
from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.img_util import list_images
from flare_sr.utils.safe_yaml import yaml_shown

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
        raise FlareSRError(f'{where}: expected a mapping (folds, groups, include_main, parallel), '
                           f'got {yaml_shown(block)}')
    unknown = sorted(set(block) - set(SETTINGS))
    if unknown:
        raise FlareSRError(f'{where}.{unknown[0]}: unknown key (known: {", ".join(SETTINGS)})')
    settings = {key: block.get(key, default) for key, default in SETTINGS.items()}
    for key in ('folds', 'parallel'):
        value, least = settings[key], 2 if key == 'folds' else 1
        if isinstance(value, float) and value.is_integer():  # 2.0 is 2, as everywhere in the option checker
            value = settings[key] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise FlareSRError(f'{where}.{key}: expected a whole number >= {least}, got {yaml_shown(value)}')
    if not isinstance(settings['include_main'], bool):
        raise FlareSRError(f'{where}.include_main: expected true or false, got {yaml_shown(settings["include_main"])}')
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


def stage1_units(stage1_opt, stage1_file):
    """What stage I trains on (its ``datasets.train``), in the units a fold model's selection lists:
    ``(kind, units, names)``, ``names[i]`` the file that decides the group of ``units[i]``.

    - ``files``: images in ``dataroot_gt`` (clean images, or the labels of pairs), or those of its own
      ``meta_info_file``; units and names are file names; a fold model gets a ``meta_info_file``.
    - ``csv``: pairs selected by ``meta_csv`` + ``fold``; units are the CSV rows, names their ``label_img``; a fold
      model gets a split CSV of its rows (same ``fold``).
    - ``lmdb``: patches of a PairedFlareDataset on LMDBs (after its own ``meta_info_file`` or ``meta_csv``); units
      are the patch keys, names their image keys (``image_key_of_patch``); a fold model gets a ``meta_info_file`` of
      keys.
    Errors are one FlareSRError naming the option file and key."""
    train = ((stage1_opt.get('datasets') or {}).get('train')) or {}
    where = f'{stage1_file}: datasets.train'
    if train.get('type') not in STAGE1_TYPES:
        raise FlareSRError(f'{where}.type: {train.get("type")}; stage3_source.cross_fit trains fold models on '
                           f'{" or ".join(STAGE1_TYPES)}')
    backend = train.get('io_backend') or {}
    kind = backend.get('type', 'disk') if isinstance(backend, dict) else None
    if kind not in ('disk', 'lmdb') or (kind == 'lmdb' and train['type'] != 'PairedFlareDataset'):
        raise FlareSRError(f'{where}.io_backend: stage3_source.cross_fit needs stage I\'s images in a folder '
                           f'({{type: disk}}) or a PairedFlareDataset\'s LMDBs ({{type: lmdb}}), '
                           f'got {yaml_shown(backend)}')
    if not train.get('dataroot_gt'):
        raise FlareSRError(f'{where}.dataroot_gt: missing (the fold models train on its images)')
    if train.get('meta_csv') and train['type'] != 'PairedFlareDataset':
        raise FlareSRError(f'{where}.meta_csv: {train["type"]} does not read it, so its fold models would train on '
                           'every image; select its images with a meta_info_file')
    key = next((name for name in ('meta_info_file', 'meta_csv') if train.get(name)), 'dataroot_gt')
    try:
        if kind == 'lmdb':
            keys = [gt_key for _, gt_key in lmdb_items(train, quiet=True)]
            return 'lmdb', keys, [image_key_of_patch(gt_key) for gt_key in keys]
        if train.get('meta_csv'):
            rows = select_rows(read_split_csv(train['meta_csv']), train.get('fold'), train['meta_csv'])
            return 'csv', rows, [row['label_img'] for row in rows]
        if train.get('meta_info_file'):
            names = read_meta_info_names(train['meta_info_file'])
        else:
            names = [osp.basename(path) for path in list_images(train['dataroot_gt'])]
        return 'files', names, names
    except FlareSRError as error:
        raise FlareSRError(f'{where}.{key}: {error}') from None


def fold_training_lists(settings, stage1_opt, stage1_file, pairs):
    """``(kind, lists)``: ``kind`` as :func:`stage1_units`, and for each fold k the units of stage I outside fold
    k's groups. A stage-I unit belongs to the group of its file (``groups``), or, for an LMDB patch, to the group of
    the stage-III pair of its image key (an LMDB packed from the same pairs). A fold whose groups no stage-I unit
    belongs to would train on everything, its outputs in-sample: refused."""
    groups, fold_of = group_folds(settings, pairs)
    kind, units, names = stage1_units(stage1_opt, stage1_file)
    what = 'patches' if kind == 'lmdb' else 'training images'
    if kind == 'lmdb':
        pair_group = {lmdb_image_key(key): group_of(gt, groups) for key, _, gt in pairs}
        unit_groups = [pair_group.get(name) or group_of(name, groups) for name in names]
        unlisted = [name for name in names if name not in pair_group and groups and _stem(name) not in groups]
        foreign = sorted({name for name in names if name not in pair_group})
        if foreign and len(foreign) < len(set(names)):  # none matching at all is refused below
            print(f'note: {stage1_file}: {len(foreign)} of the images in stage I\'s LMDB (e.g. {foreign[0]}) are no '
                  'stage-III pair; every fold model trains on them: if they show stage III\'s photos under other keys, '
                  'the fold models see those photos', file=sys.stderr, flush=True)
    else:
        unit_groups = [group_of(name, groups) for name in names]
        unlisted = [name for name in names if groups and _stem(name) not in groups]
    if unlisted:  # an image left out would be its own group, in every fold: a fold model could see its own photo
        raise FlareSRError(f'{settings["groups"]}: lists no group for {unlisted[0]} ({len(unlisted)} of stage I\'s '
                           f'{what} in {stage1_file} are missing); '
                           'every image needs its photo\'s group')
    strays = sorted({group for group in unit_groups if not group.startswith('file:')} - set(fold_of))
    if strays:
        print(f'note: {settings["groups"]}: no stage-III pair is in group {", ".join(strays[:3])}; every fold '
              'model trains on its stage-I images', file=sys.stderr, flush=True)
    train = stage1_opt['datasets']['train']
    batch = int(train.get('batch_size_per_gpu') or 1)
    lists = []
    for fold in range(settings['folds']):
        kept = [unit for unit, group in zip(units, unit_groups) if fold_of.get(group) != fold]
        if len(kept) == len(units):
            hint = ('list each file with its photo in stage3_source.cross_fit.groups (CSV name,group)' if not groups
                    else f'{settings["groups"]} gives none of them a group of those pairs')
            if kind == 'lmdb':
                hint = 'pack stage I\'s LMDB from stage III\'s pairs (their img_id or pairing keys), or ' + hint
            raise FlareSRError(f'{settings["where"]}: fold {fold + 1}/{settings["folds"]} would train on all of '
                               f'stage I\'s {what} ({stage1_file}), which are not the files of stage III\'s pairs; '
                               f'{hint}')
        if len(kept) * int(train.get('dataset_enlarge_ratio') or 1) < batch:
            raise FlareSRError(f'{settings["where"]}: fold {fold + 1}/{settings["folds"]} leaves stage I '
                               f'{len(kept)} {what}, less than a batch ({stage1_file}: datasets.train.'
                               f'batch_size_per_gpu {batch}); use more groups or fewer folds')
        lists.append(kept)
    return kind, lists


def fold_name(stage1_opt, fold, folds):
    """The experiment name of fold model ``fold`` (0-based): ``<stage I name>_fold<k>of<K>``."""
    return f'{stage1_opt["name"]}_fold{fold + 1}of{folds}'


def fold_selection(kind, pipeline_dir, fold, folds, units):
    """(path, text) of fold model ``fold``'s selection file in ``pipeline_dir``: a BasicSR ``meta_info_file`` (one
    name or patch key per line) or, for ``csv``, a split CSV of its rows."""
    if kind == 'csv':
        return osp.join(pipeline_dir, f'fold{fold + 1}of{folds}_train.csv'), split_csv_text(units)
    return osp.join(pipeline_dir, f'fold{fold + 1}of{folds}_train.txt'), ''.join(f'{unit}\n' for unit in units)


def fold_options(stage1_opt, fold, folds, kind, selection):
    """Stage I's options for fold model ``fold``: its own name, and its selection file (``fold_selection``) as
    ``datasets.train.meta_csv`` (``csv``) or as ``meta_info_file`` in place of stage I's own selection."""
    opt = dict(stage1_opt, name=fold_name(stage1_opt, fold, folds))
    opt['path'] = dict(opt.get('path') or {}, resume_state=None)  # stage I's state is not a fold model's
    datasets = dict(opt['datasets'])
    train = dict(datasets['train'])
    if kind == 'csv':
        train['meta_csv'] = selection
    else:
        for key in ('meta_csv', 'fold'):
            train.pop(key, None)
        train['meta_info_file'] = selection
    datasets['train'] = train
    opt['datasets'] = datasets
    return opt


def selection_members(text, path):
    """The photos a fold selection's ``text`` selects, order aside: its lines (file names, patch keys) or, for a split
    CSV (``path`` ending in .csv), its rows' label files, which a folder selection of the same pairs names too."""
    if path.endswith('.csv'):
        return {row.get('label_img') for row in csv.DictReader(io.StringIO(text))}
    return {line.strip() for line in text.splitlines() if line.strip()}


def write_text(path, text):
    """``text`` into ``path``, atomically (an interrupted write keeps the previous file)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
    return path


def beside_share():
    """(OMP_NUM_THREADS of a training run beside the others from the start, those left to the others): half of this
    process's threads, and the rest (at least 1 each)."""
    beside = thread_share(2)
    return beside, max(1, thread_share(1) - beside)


def thread_share(parallel, total=None):
    """OMP_NUM_THREADS for each of ``parallel`` trainings at once: ``total`` threads (default: this process's
    OMP_NUM_THREADS, else the CPU count), split; at least 1."""
    if total is None:
        value = os.environ.get('OMP_NUM_THREADS', '')
        total = int(value) if value.strip().isdigit() else os.cpu_count() or 1
    return max(1, total // parallel)
