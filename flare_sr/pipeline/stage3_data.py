"""Stage-III training data: stage-I (Pix2Pix) outputs of the training inputs, paired with the labels.

In stage III the post net learns to clean what the U-Net leaves behind, so its inputs are the U-Net's outputs
on the training images themselves (the original solution's ``source: {config, checkpoint}``). The
stage-III option file names its source:

    stage3_source:
      main_opt: options/pix2pix.yml            # stage I's options (network_g builds the U-Net, with its
                                               # `residual` switch)
      main_checkpoint: experiments/pix2pix/models/net_g_latest.pth   # (these two: train_pipeline derives them)
      tile: {size: 512, overlap: 64, batch: 1} # full-resolution tiled inference, as in testing
      dataroot_lq: datasets/dacon/train_input_img   # training inputs and labels (folders)
      dataroot_gt: datasets/dacon/train_label_img
      meta_csv: datasets/dacon/split.csv       # optional: only the rows of `fold`
      fold: train
      patch_size: 512                          # packed like scripts/create_lmdb.py
      stride: 256
      cross_fit: ~                             # optional: out-of-fold outputs too (flare_sr/pipeline/cross_fit.py)

and its ``datasets.train`` reads ``<OUT>/lq.lmdb`` and ``<OUT>/gt.lmdb`` (io_backend lmdb), which
this module writes: full-size outputs to ``<OUT>_images/``, patches via the data issue's packer.

With ``cross_fit``, each pair is also given as the output of the fold model that never saw its photo
(``stage3_source.fold_checkpoints``, one per fold), under the key ``<key>_oof``.

Stage I runs as the cascade runs it before stage III: with its ``val.darken_only`` and ``val.precision``, without
the light-source restore and the flare floor that the cascade applies only after its last stage (``STAGE1_VAL_KEYS``).

Cache: ``<OUT>.manifest.json`` records the sha256 of the stage-I checkpoint (and of the fold models'), the U-Net
options (with its ``residual`` switch), those val keys, the tile and patch options and every input/label file's size
and mtime. A matching manifest means the LMDBs are reused; any change (a new checkpoint above all) rebuilds them. The
manifest is written only after the LMDBs are complete, so an interrupted build is redone, never trusted.

    python -m flare_sr.pipeline.stage3_data -opt options/hinet_phase2.yml [--force]

flare_sr/train.py calls ``prepare_stage3_data`` before it checks a stage-III option file, and
flare_sr/pipeline/stages.py calls ``ensure_stage3_data`` between stages I and III.
"""
import json
import os
import sys
import time
from os import path as osp

import torch
from tqdm import tqdm

from flare_sr.data.lmdb_pack import check_output_folder, pack_lmdb
from flare_sr.data.meta_csv import read_split_csv, resolve_pairs, select_rows
from flare_sr.data.pairing import pair_paths
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.pipeline.cross_fit import cross_fit_settings, pair_folds
from flare_sr.pipeline.inference import build_test_model
from flare_sr.utils.atomic import atomic_path, inside
from flare_sr.utils.checkpoint import sha256_of
from flare_sr.utils.img_util import read_image, write_image
from flare_sr.utils.options_check import fold_deprecated_keys, load_option_file, stage3_source_problems
from flare_sr.utils.safe_yaml import yaml_shown

REQUIRED = ('main_opt', 'main_checkpoint', 'dataroot_lq', 'dataroot_gt', 'patch_size', 'stride')
# Stage I's val keys that shape what stage III is given: those CascadeModel applies between its stages. Its
# restore_light_source and flare_floor come only after the last stage, so stage III never sees them.
STAGE1_VAL_KEYS = ('darken_only', 'precision')


def stage1_val(main_opt):
    """The part of stage I's ``val`` that the stage-III data is made with (``STAGE1_VAL_KEYS``)."""
    val = main_opt.get('val') or {}
    return {key: val[key] for key in STAGE1_VAL_KEYS if key in val}


def stage3_settings(stage3_opt, option_file):
    """(source options, OUT folder, cross_fit settings or None) from a stage-III option dict; one-line errors
    naming the missing key."""
    source = stage3_opt.get('stage3_source')
    if not isinstance(source, dict):
        raise FlareSRError(f'{option_file}: stage3_source: missing (stage III needs the stage-I outputs)')
    for key in REQUIRED:
        if source.get(key) is None:
            derived = ' (train_pipeline.py derives it; a standalone run needs it)' if key.startswith('main_') else ''
            raise FlareSRError(f'{option_file}: stage3_source.{key}: missing{derived}')
    train = ((stage3_opt.get('datasets') or {}).get('train')) or {}
    lq_root, gt_root = train.get('dataroot_lq', ''), train.get('dataroot_gt', '')
    out_dir = osp.dirname(osp.normpath(lq_root))
    if osp.basename(osp.normpath(lq_root)) != 'lq.lmdb' or osp.normpath(gt_root) != osp.join(out_dir, 'gt.lmdb'):
        raise FlareSRError(f'{option_file}: datasets.train must read the stage-III LMDBs: dataroot_lq '
                           f'<OUT>/lq.lmdb and dataroot_gt <OUT>/gt.lmdb (got {yaml_shown(lq_root)}, '
                           f'{yaml_shown(gt_root)})')
    if source.get('fold') is not None and not source.get('meta_csv'):
        raise FlareSRError(f'{option_file}: stage3_source.fold: selects rows of a split CSV, but meta_csv is not set')
    for key in ('main_opt', 'main_checkpoint'):
        if not osp.isfile(source[key]):
            raise FlareSRError(f'{option_file}: stage3_source.{key}: {source[key]} does not exist')
    cross_fit = cross_fit_settings(source, option_file)
    if cross_fit is not None:
        folds = source.get('fold_checkpoints')
        if not isinstance(folds, list) or len(folds) != cross_fit['folds']:
            raise FlareSRError(f'{option_file}: stage3_source.fold_checkpoints: expected {cross_fit["folds"]} '
                               f'checkpoints, one per fold, got {yaml_shown(folds)} (train_pipeline.py trains the '
                               'fold models and derives them; a standalone run needs them)')
        for checkpoint in folds:
            if not osp.isfile(str(checkpoint)):
                raise FlareSRError(f'{option_file}: stage3_source.fold_checkpoints: {checkpoint} does not exist '
                                   '(train_pipeline.py trains the fold models)')
    return source, out_dir, cross_fit


def select_pairs(source, option_file):
    """[(key, input, label)] from the source folders, restricted to ``meta_csv``'s ``fold`` when given."""
    if source.get('meta_csv'):
        rows = select_rows(read_split_csv(source['meta_csv']), source.get('fold'), source['meta_csv'])
        return resolve_pairs(rows, source['dataroot_lq'], source['dataroot_gt'], source['meta_csv'])
    return pair_paths(source['dataroot_lq'], source['dataroot_gt'])


def build_manifest(source, main_opt, pairs, cross_fit=None, pair_fold=None):
    """Everything the stage-III data depends on; equal manifests mean equal data. With ``cross_fit``,
    ``pair_fold`` holds the fold of each pair."""
    def stamp(path):
        info = os.stat(path)
        return [osp.abspath(path), info.st_size, info.st_mtime_ns]

    network_g = dict(main_opt.get('network_g') or {})
    residual = bool(network_g.pop('residual', False))  # kept apart, as before the switch moved into network_g
    manifest = {
        'checkpoint_sha256': sha256_of(source['main_checkpoint']),
        'network_g': network_g,
        'residual': residual,
        'tile': source.get('tile') or {},
        'patch_size': source['patch_size'], 'stride': source['stride'],
        'pairs': [[key, stamp(lq), stamp(gt)] for key, lq, gt in pairs],
    }
    val = stage1_val(main_opt)
    if val:  # absent otherwise, so that the caches of earlier runs stay current
        manifest['stage1_val'] = val
    if cross_fit is not None:  # absent otherwise, so that the caches of earlier runs stay current
        manifest['cross_fit'] = {'include_main': cross_fit['include_main'],
                                 'folds': pair_fold,
                                 'fold_sha256': [sha256_of(path) for path in source['fold_checkpoints']]}
    return manifest


def _read_manifest(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_manifest(path, manifest):
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as handle:
            json.dump(manifest, handle, indent=1)


def _stage1_model(source, main_opt, checkpoint):
    opt = dict(main_opt)
    opt['path'] = dict(opt.get('path') or {}, pretrain_network_g=checkpoint, strict_load_g=True)
    opt['val'] = dict(stage1_val(main_opt), tile=dict(source.get('tile') or {}))
    return build_test_model(opt, source['main_opt'])


def run_stage1(source, main_opt, pairs, images_dir, option_file, pair_fold=None, include_main=True, progress=True):
    """Tiled stage-I inference of every input; full-size PNGs named by pairing key, written atomically. With
    ``pair_fold`` (the fold of each pair), also each pair's output of its fold model, named ``<key>_oof``; with
    ``include_main`` false, only those. Returns [(key, output, label)] to pack. ``option_file``: the stage-III file,
    named by errors in its ``stage3_source``."""
    keys = {key for key, _, _ in pairs}
    clash = [key for key in keys if f'{key}_oof' in keys] if pair_fold is not None else []
    if clash:  # before any model is built: the out-of-fold output of one pair would replace another pair's output
        raise FlareSRError(f'{option_file}: stage3_source: the pairs {clash[0]} and {clash[0]}_oof clash with '
                           f'cross_fit, which names out-of-fold outputs <key>_oof; rename the files of {clash[0]}_oof')
    jobs = []
    if pair_fold is None or include_main:
        main = _stage1_model(source, main_opt, source['main_checkpoint'])
        jobs += [(key, main, lq, gt) for key, lq, gt in pairs]
    if pair_fold is not None:
        fold_models = [_stage1_model(source, main_opt, path) for path in source['fold_checkpoints']]
        jobs += [(f'{key}_oof', fold_models[fold], lq, gt) for (key, lq, gt), fold in zip(pairs, pair_fold)]
    packed = []
    for key, model, lq_path, gt_path in tqdm(jobs, desc='stage-I outputs', unit='image', disable=not progress):
        image = torch.from_numpy(read_image(lq_path)).permute(2, 0, 1)[None]
        target = osp.join(images_dir, f'{key}.png')
        write_image(target, model.predict(image)[0].permute(1, 2, 0).numpy())
        packed.append((key, target, gt_path))
    return packed


def _check_output_folders(out_dir, images_dir, source, option_file):
    """Before stage I runs (it may take hours): the pack's OUT takes an LMDB, and neither OUT nor ``<OUT>_images``
    is, holds or lies in a folder the stage-I inputs or labels come from (its outputs, named by pairing key,
    replaced inputs of those names)."""
    check_output_folder(out_dir, overwrite=True)
    for key in ('dataroot_lq', 'dataroot_gt'):
        folder = source[key]
        for target in (out_dir, images_dir):
            if osp.realpath(target) == osp.realpath(folder) or inside(target, folder) or inside(folder, target):
                raise FlareSRError(f'{option_file}: stage-III data {target} (from datasets.train.dataroot_lq) is, '
                                   f'holds or lies in stage3_source.{key} {folder}, whose files it would join or '
                                   'replace; choose another folder for the LMDBs')


def ensure_stage3_data(stage3_opt, option_file, force=False, progress=True):
    """Build (or reuse) the stage-III LMDBs for a stage-III option dict. Returns (OUT folder, rebuilt?)."""
    source, out_dir, cross_fit = stage3_settings(stage3_opt, option_file)
    main_opt = load_option_file(source['main_opt'])
    notes, _, problems = fold_deprecated_keys(main_opt)  # its other checks: when build_test_model builds it
    if problems:
        raise FlareSRError(f"{source['main_opt']}: " + '; '.join(problems))
    for note in notes:
        print(f"note: {source['main_opt']}: {note}", file=sys.stderr)
    problems = stage3_source_problems(stage3_opt, main_opt)  # before stage I runs on every pair
    if problems:
        raise FlareSRError(f'{option_file}: ' + '; '.join(problems))
    pairs = select_pairs(source, option_file)
    pair_fold = None if cross_fit is None else pair_folds(cross_fit, pairs)
    manifest = build_manifest(source, main_opt, pairs, cross_fit, pair_fold)
    if cross_fit is not None:  # the digests just taken: a fold model that saw every photo makes in-sample outputs
        digests = [manifest['checkpoint_sha256'], *manifest['cross_fit']['fold_sha256']]
        if len(set(digests)) < len(digests):
            raise FlareSRError(f'{option_file}: stage3_source.fold_checkpoints: two of them, or one and '
                               'main_checkpoint, are the same weights; each fold needs its own fold model')
    manifest_path = f'{out_dir}.manifest.json'
    complete = all(osp.isdir(osp.join(out_dir, name)) for name in ('lq.lmdb', 'gt.lmdb'))
    if not force and complete and _read_manifest(manifest_path) == manifest:
        return out_dir, False
    images_dir = f'{out_dir}_images'
    _check_output_folders(out_dir, images_dir, source, option_file)
    if osp.exists(manifest_path):
        os.remove(manifest_path)  # from here on the old LMDBs no longer count as current
    start = time.time()
    packed = run_stage1(source, main_opt, pairs, images_dir, option_file, pair_fold,
                        cross_fit is None or cross_fit['include_main'], progress)
    summary = pack_lmdb(packed, out_dir, source['patch_size'], source['stride'], overwrite=True, progress=progress)
    _write_manifest(manifest_path, manifest)
    out_of_fold = '' if cross_fit is None else f" ({sum(key.endswith('_oof') for key, _, _ in packed)} out of fold)"
    print(f"stage-III data: {len(packed)} stage-I outputs{out_of_fold} -> {summary['patches']} patch pairs in "
          f'{out_dir} ({time.time() - start:.1f} s)')
    return out_dir, True


def prepare_stage3_data(option_path):
    """Stage III trains on stage-I outputs: build them, or reuse the cache, before anything reads the options' LMDBs.

    For ``flare_sr/train.py``. Under torchrun every rank would build at once, so there the data must already
    exist (``python -m flare_sr.pipeline.stage3_data -opt ...`` or ``flare_sr/train_pipeline.py``).
    """
    opt = load_option_file(option_path)
    if opt.get('stage3_source') is not None and int(os.environ.get('WORLD_SIZE', '1')) == 1:
        ensure_stage3_data(opt, option_path)


@exit_on_user_error
def main(argv=None):
    """``python -m flare_sr.pipeline.stage3_data -opt STAGE3.yml [--force]``."""
    parser = ArgumentParser(description='Build or reuse the stage-III LMDBs of a stage-III option file.')
    parser.add_argument('-opt', required=True,
                        help='stage-III option file (e.g. options/hinet_phase2.yml) with a stage3_source block')
    parser.add_argument('--force', action='store_true', help='rebuild even when the cache is current')
    args = parser.parse_args(argv)
    out_dir, rebuilt = ensure_stage3_data(load_option_file(args.opt), args.opt, force=args.force)
    if not rebuilt:
        print(f'stage-III data: {out_dir} is current (same stage-I checkpoint and inputs); reused')


if __name__ == '__main__':
    main()
