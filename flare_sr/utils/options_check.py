"""Check the options once, after BasicSR has parsed them (``--force_yml`` included), before anything is created.

BasicSR reads options with ``dict.get`` and a default, so a typo is silently ignored and ``lr: 2e-4``
(a *string* in YAML 1.1) crashes deep inside the optimizer. The field's own files, however, carry keys
that flare_sr does not read (``use_shuffle``, ``wandb``, Real-ESRGAN's ``l1_gt_usm``) and forks' names
for keys it does (HINet's ``use_flip``, ``val.grids``). So the checker is strict only where strictness
cannot refuse someone else's file:

- **errors** (one ``FlareSRError`` line listing every problem): keys flare_sr owns (``val.tile``,
  ``val.restore_light_source``, ``cascade``, ``stage3_source``, ``train.amp``, ``train.nonfinite``, a
  dataset's ``flare`` settings), unknown ``type`` names, a value of the wrong type, keys a constructor
  would reject (networks, losses, optimizers, schedulers), missing files, and what would crash or be
  silently ignored later (a loss the model does not apply, a tile the network's grid makes impossible).
- **warnings** (one ``warning:`` line each): keys BasicSR or a fork owns that flare_sr does not read.
  A correction is suggested only when it is likely a typo (close spelling and length).
- **notes** (one ``note:`` line each): a fork's setting mapped to flare_sr's (``use_flip`` ->
  ``use_hflip``, ``val.grids/crop_size/max_minibatch`` -> ``val.tile``, ``use_grad_clip`` ->
  ``grad_clip: 0.01``), and a deprecated key moved to its new name (``network_g.ngf`` -> ``network_g.num_feat``,
  :func:`fold_deprecated_keys`).

Whole-number floats (``val_freq: !!float 5e3``) count as integers and are stored as ints.

Where the keys come from: networks, losses, metrics, optimizers and schedulers by ``inspect`` of the
class they build (:mod:`flare_sr.utils.optim` for the last two); flare_sr's own sections from the code
that reads them (``TILE_OPTIONS`` in :mod:`flare_sr.utils.tiling`, ``CascadeModel.CASCADE_OPTIONS``, the
signature of :func:`flare_sr.utils.light_source.restore_light_source_tensor`, a dataset class's
``check_options``); models declare ``train_losses`` (the ``train.*_opt`` they apply) and
``tiled_networks`` (whose ``size_multiple`` the tile grid follows) and ``networks`` (the ones they build).
"""
import ast
import difflib
import importlib.util
import inspect
import math
import os
import re
import sys
from os import path as osp

import torch
import yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.utils.checkpoint import load_checked_state_dict, named_checkpoints, repeated_checkpoints
from flare_sr.utils.light_source import LIGHT_SOURCE_METHODS, restore_light_source_tensor
from flare_sr.utils.optim import OPTIMIZERS, REFUSED_SCHEDULERS, SCHEDULERS, build_scheduler
from flare_sr.utils.safe_yaml import load_yaml, yaml_shown
from flare_sr.utils.tiling import TILE_OPTIONS, tile_problems
from flare_sr.utils.yaml_numbers import positive_whole, text_number_hint

NUMBER, INT, BOOL, STR, DICT, LIST = 'a number', 'an integer', 'true or false', 'a string', 'a mapping', 'a list'
NULL = None

# Keys BasicSR (or a fork) owns: known here so they pass silently; anything else in these sections warns.
TOP_LEVEL = {
    'name': STR, 'model_type': STR, 'scale': INT, 'num_gpu': (INT, 'auto'), 'manual_seed': INT,
    'find_unused_parameters': BOOL, 'datasets': DICT, 'path': DICT, 'train': DICT, 'val': DICT, 'logger': DICT,
    'dist_params': DICT,
    # flare_sr's own (checked strictly below)
    'stage3_source': DICT, 'cascade': DICT,
}
PARSER_ADDED = {'is_train', 'dist', 'rank', 'world_size', 'auto_resume'}  # set by BasicSR's parse_options
DATASET = {
    'type': STR, 'name': STR, 'phase': STR, 'dataroot_lq': STR, 'dataroot_gt': STR, 'io_backend': DICT,
    'meta_info_file': STR, 'meta_csv': STR, 'fold': (STR, INT, LIST), 'gt_size': (INT, NULL), 'use_hflip': BOOL,
    'use_rot': BOOL, 'use_flip': BOOL, 'use_shuffle': BOOL, 'color': (STR, NULL),
    'seed': INT, 'batch_size_per_gpu': INT, 'num_worker_per_gpu': INT, 'dataset_enlarge_ratio': INT,
    'prefetch_mode': ('cpu', 'cuda', NULL), 'pin_memory': BOOL, 'persistent_workers': BOOL, 'num_prefetch_queue': INT,
    'filename_tmpl': STR, 'scale': INT,
}
# Dataset integers that torch's DataLoader, BasicSR's samplers and the crops take unchecked (a batch of 0 is a
# traceback in BatchSampler, a negative gt_size a crop of a few pixels), with the least value that means something.
DATASET_MINIMUMS = {'batch_size_per_gpu': 1, 'num_worker_per_gpu': 0, 'dataset_enlarge_ratio': 1, 'gt_size': 1,
                    'num_prefetch_queue': 1, 'scale': 1}
IO_BACKEND = {'type': ('disk', 'lmdb'), 'readonly': BOOL, 'lock': BOOL, 'readahead': BOOL, 'meminit': BOOL}
PATH = {'resume_state': (STR, NULL), 'ignore_resume_networks': (LIST, NULL), 'visualization': STR,
        'experiments_root': STR, 'models': STR, 'training_states': STR, 'log': STR, 'results_root': STR}
PATH_PREFIXES = {'pretrain_network_': (STR, NULL), 'strict_load_': BOOL, 'param_key_': (STR, NULL)}
FLARE_FLOOR_WARN = 0.1  # val.flare_floor above it (10 % of full scale) undoes most flare: said as a warning
# BasicSR's make_exp_dirs makes a folder of every other path key's value (basicsr/utils/misc.py)
BASICSR_UNMADE_PATH_KEYS = ('strict_load', 'pretrain_network', 'resume', 'param_key')
# Keys read in one section only, and that section: one turning up elsewhere is an error naming it (nobody reads it
# there, and the run would go on without it). flare_sr's own keys:
KEY_HOMES = {'main_ensemble': 'cascade.main_ensemble', 'flare_floor': 'val.flare_floor',
             'darken_only': 'val.darken_only', 'restore_light_source': 'val.restore_light_source',
             'cross_fit': 'stage3_source.cross_fit'}
# Keys of common names (BasicSR's, the tile's; "<phase>": train, val, test_1, ...), named only inside another section:
# at the top level other projects' models read some of them (Real-ESRGAN's gt_size)
SECTION_KEY_HOMES = {
    **{key: f'datasets.<phase>.{key}' for key in (
        'dataroot_lq', 'dataroot_gt', 'io_backend', 'meta_info_file', 'meta_csv', 'filename_tmpl', 'gt_size',
        'use_hflip', 'use_rot', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio', 'frame_size',
        'downscale_to', 'pool_size')},
    **{key: f'train.{key}' for key in ('total_iter', 'warmup_iter', 'ema_decay', 'optim_g', 'pixel_opt')},
    **{key: f'val.{key}' for key in ('val_freq', 'save_img', 'metrics')},
    **{key: f'val.tile.{key}' for key in ('size', 'overlap', 'self_ensemble')},
    **{key: f'logger.{key}' for key in ('print_freq', 'save_checkpoint_freq', 'use_tb_logger')},
    **{key: f'path.{key}' for key in ('pretrain_network_g', 'resume_state', 'strict_load_g')},
    **{key: key for key in ('model_type', 'manual_seed', 'num_gpu')}}
TRAIN = {
    'total_iter': INT, 'warmup_iter': INT, 'ema_decay': NUMBER, 'scheduler': DICT,
    'net_d_iters': INT, 'net_d_init_iters': INT, 'grad_clip': (NUMBER, NULL), 'use_grad_clip': BOOL,
    'mixing_augs': DICT,
    # flare_sr's own
    'amp': (BOOL, 'bf16', 'fp16', 'auto'), 'nonfinite': ('stop', 'skip'), 'channels_last': BOOL,
    'saturation_mask': (DICT, BOOL),  # flare_sr/losses/saturation_mask.py (Wu et al.)
    'out_deflare': BOOL,  # Flare7K++'s (DeflareModel: the net's image keeps the light sources)
}
VAL = {'val_freq': INT, 'save_img': BOOL, 'suffix': (STR, NULL), 'pbar': BOOL, 'metrics': DICT, 'tile': DICT,
       'tb_images': INT, 'restore_light_source': (DICT, BOOL),
       'precision': ('fp32', 'bf16', 'fp16', 'auto'),  # flare_sr's own: flare_sr/utils/precision.py
       'darken_only': BOOL,  # flare_sr's own: TiledValidationMixin.darken_only
       'flare_floor': NUMBER,  # flare_sr's own: flare_sr/utils/flare_floor.py
       'save_flare': BOOL,  # flare_sr's own: DeflareModel saves its predicted flare layer
       # HINet / NAFNet
       'grids': BOOL, 'crop_size': INT, 'max_minibatch': INT, 'use_image': BOOL, 'rgb2bgr': BOOL}
LOGGER = {'print_freq': INT, 'save_checkpoint_freq': INT, 'use_tb_logger': BOOL, 'wandb': DICT}
WANDB = {'project': (STR, NULL), 'resume_id': (STR, NULL), 'entity': (STR, NULL)}
DIST_PARAMS = {'backend': ('nccl', 'gloo', NULL), 'port': INT}
# flare_sr's own, read by flare_sr/pipeline/stage3_data.py (stage-III data = stage-I outputs of the training images)
STAGE3_SOURCE = {'main_opt': STR, 'main_checkpoint': STR, 'tile': DICT, 'dataroot_lq': STR, 'dataroot_gt': STR,
                 'meta_csv': (STR, NULL), 'fold': (STR, INT, LIST, NULL), 'patch_size': INT, 'stride': INT,
                 'cross_fit': (DICT, NULL), 'fold_checkpoints': (LIST, NULL)}  # cross_fit's own keys: cross_fit.py
SCHEDULER_COUNTS = ('milestones', 'periods', 'T_max', 'restarts')  # iteration counts inside train.scheduler
DATASET_PATHS = ('dataroot_lq', 'dataroot_gt', 'dataroot_mask', 'meta_info_file', 'meta_csv')
# Keys that choose a dataset's images: one its class never reads would silently select nothing (warned about).
DATASET_SELECTION = ('dataroot_lq', 'meta_info_file', 'meta_csv', 'fold', 'filename_tmpl')
# What a metric function receives from validation rather than from its options (TiledValidationMixin._score).
METRIC_INPUTS = ('img', 'img2', 'img_lq', 'lq_path', 'gt_path')
# BasicSR's tensor metrics: validation passes them 8-bit numpy images (an AttributeError at the first validation)
TENSOR_METRICS = {'calculate_psnr_pt': 'calculate_psnr', 'calculate_ssim_pt': 'calculate_ssim'}
# The image-channel arguments of flare_sr's archs (Uformer, HINet, NAFNet, Pix2PixUNet)
IMAGE_CHANNEL_ARGS = ('img_ch', 'in_chn', 'img_channel', 'num_in_ch')
HINET_GRAD_CLIP = 0.01  # HINet's ImageRestorationModel: use_grad_clip -> clip_grad_norm_(params, 0.01)
REGISTRIES = {'ARCH': ARCH_REGISTRY, 'LOSS': LOSS_REGISTRY, 'METRIC': METRIC_REGISTRY}
KNOWN_KEYS = {*TOP_LEVEL, *DATASET, *TRAIN, *VAL, *PATH, *LOGGER}  # read somewhere: never taken for a typo
# Option sections flare_sr owns whose reader lives in a layer above utils/ (``train.saturation_mask``: a loss
# helper): the reader registers itself with ``reads_options``, and its keyword parameters are the section's keys.
OPTION_READERS = {}


def reads_options(key_path, skip=()):
    """Decorator: the function's keyword parameters (less ``skip``) are the keys of option section ``key_path``.

    The checker then checks that section against the signature (unknown keys, types of the defaults) without
    importing the function's module: utils/ imports nothing above it, as BasicSR's registries do.
    """
    def register(function):
        OPTION_READERS[key_path] = (function, tuple(skip))
        return function

    return register


# Deprecated keys of the U-Net's residual switch, now Pix2PixUNet's own argument: (section or None for the top
# level, old key, the network whose ``residual`` it sets).
RESIDUAL_ALIASES = ((None, 'residual', 'network_g'), ('cascade', 'main_residual', 'network_main'))


def fold_residual_aliases(opt):
    """Move the deprecated residual switches into the U-Net's options, in place (sections are replaced, never
    written into, so option dicts that share them stay as they were).

    The top-level ``residual`` of a Pix2PixModel file becomes ``network_g.residual``, CascadeModel's
    ``cascade.main_residual`` becomes ``network_main.residual``. Returns (notes, warnings, problems): a
    deprecation note naming the new key for each moved key; a warning where the network is not a Pix2PixUNet
    (nothing reads the key); a problem for a value that is not true/false or contradicts the new key.
    """
    notes, warnings, problems = [], [], []
    for section, old, network in RESIDUAL_ALIASES:
        holder = opt if section is None else opt.get(section)
        if not isinstance(holder, dict) or old not in holder:
            continue
        old_path = old if section is None else f'{section}.{old}'  # removed whatever follows: reported here
        value, net = holder[old], opt.get(network)
        if section is None:
            del opt[old]
        else:
            opt[section] = {key: item for key, item in holder.items() if key != old}
        if not isinstance(value, bool):
            got = yaml_shown(value) if isinstance(value, (str, dict)) else repr(value)
            problems.append(f'{old_path}: expected true or false, got {got} (deprecated: use {network}.residual)')
            continue
        if not isinstance(net, dict) or net.get('type') != 'Pix2PixUNet':
            warnings.append(f'{old_path}: not read ({network} is not a Pix2PixUNet), ignored')
        elif net.get('residual', value) != value:
            problems.append(f'{old_path}: {str(value).lower()} contradicts {network}.residual: '
                            f'{str(net["residual"]).lower()} (it is the deprecated name of {network}.residual)')
        else:
            opt[network] = dict(net, residual=value)
            notes.append(f'{old_path} is deprecated: use {network}.residual: {str(value).lower()}')
    return notes, warnings, problems


def fold_renamed_arguments(opt):
    """Rewrite the former argument names of every ``network_*`` section to the arch's current ones, in place
    (sections are replaced, never written into).

    The arch class lists them as ``renamed_arguments`` (:mod:`flare_sr.utils.renamed`), e.g. Pix2PixUNet's
    ``ngf`` -> ``num_feat``. Returns (notes, problems): one deprecation note per renamed key, naming the new key;
    a problem where the old and the new key are both given with different values.
    """
    notes, problems = [], []
    for network, section in list(opt.items()):
        if not str(network).startswith('network_') or not isinstance(section, dict):
            continue
        type_name = section.get('type')
        renamed = getattr(ARCH_REGISTRY.get(type_name), 'renamed_arguments', {}) if (
            isinstance(type_name, str) and type_name in ARCH_REGISTRY) else {}
        if not any(old in section for old in renamed):
            continue
        folded, folded_from = {}, {}  # folded_from: new key -> the deprecated key that set it
        for key, value in section.items():
            new = renamed.get(key)
            if new is None:
                folded.setdefault(key, value)
            elif new in section and section[new] != value:
                problems.append(f'{network}.{key}: {value!r} contradicts {network}.{new}: {section[new]!r} '
                                f'({key} is the deprecated name of {new})')
            elif new in folded and folded[new] != value:
                other = folded_from[new]
                problems.append(f'{network}.{key}: {value!r} contradicts {network}.{other}: {folded[new]!r} (both are '
                                f'deprecated names of {network}.{new})')
            else:
                folded[new] = value
                folded_from.setdefault(new, key)
                notes.append(f'{network}.{key} is deprecated: use {network}.{new}')
        opt[network] = folded
    return notes, problems


def fold_deprecated_keys(opt):
    """Every deprecated key of ``opt`` moved to its current name, in place: the residual switches
    (:func:`fold_residual_aliases`) and the archs' renamed arguments (:func:`fold_renamed_arguments`).
    Returns (notes, warnings, problems), as :func:`fold_residual_aliases`."""
    notes, warnings, problems = fold_residual_aliases(opt)
    arch_notes, arch_problems = fold_renamed_arguments(opt)
    return notes + arch_notes, warnings, problems + arch_problems


# CascadeModel's networks from the stage option files: ``cascade.<key>: FILE`` fills ``<network>`` with FILE's
# network_g (its residual switch included), so the test options never copy a network block.
CASCADE_SOURCES = (('main_opt', 'network_main'), ('post_opt', 'network_post'), ('glow_opt', 'network_glow'))


def resolve_cascade_sources(opt):
    """Fill ``network_main`` / ``network_post`` / ``network_glow`` from ``cascade.main_opt`` / ``post_opt`` /
    ``glow_opt``, in place; ``glow_opt`` also gives ``cascade.glow_size`` (its ``datasets.train.downscale_to``).

    The keys are consumed (the ``cascade`` section is replaced, never written into). Paths are relative to the
    working directory, as every path in an option file. Returns (notes, problems): the stage files' own
    deprecation notes, and one problem per key that names a missing or unreadable file, a file without
    ``network_g``, a network that is also given directly, or a ``glow_size`` other than the file's.
    """
    cascade = opt.get('cascade')
    if not isinstance(cascade, dict) or not any(key in cascade for key, _ in CASCADE_SOURCES):
        return [], []
    notes, problems = [], []
    remaining = dict(cascade)
    for key, network in CASCADE_SOURCES:
        if key not in remaining:
            continue
        path = remaining.pop(key)
        if not isinstance(path, str):
            problems.append(f'cascade.{key}: expected a string (a stage option file), got {path!r}')
            continue
        if network in opt:
            problems.append(f'cascade.{key}: {network} is given too; keep one of them')
            continue
        try:
            stage = load_option_file(path)
        except FlareSRError as error:
            problems.append(f'cascade.{key}: {error}')
            continue
        stage_notes, _, stage_problems = fold_deprecated_keys(stage)
        notes += [f'cascade.{key}: {path}: {note}' for note in stage_notes]
        problems += [f'cascade.{key}: {path}: {problem}' for problem in stage_problems]
        if not isinstance(stage.get('network_g'), dict):
            problems.append(f'cascade.{key}: {path} has no network_g section')
            continue
        opt[network] = dict(stage['network_g'])
        if key == 'glow_opt':
            problems += _glow_size_from(stage, path, remaining)
    opt['cascade'] = remaining
    return notes, problems


def _glow_size_from(stage, path, cascade):
    """Set ``cascade['glow_size']`` to the glow net's training ``downscale_to`` where absent; problem lines when the
    file trains no whole-frame net and none is given, or when the two differ."""
    train = ((stage.get('datasets') or {}).get('train') or {}) if isinstance(stage.get('datasets'), dict) else {}
    trained = train.get('downscale_to') if isinstance(train, dict) else None
    given = cascade.get('glow_size')
    if trained is None:
        return [] if given else [f'cascade.glow_opt: {path} trains on no whole downscaled frames '
                                 '(datasets.train.downscale_to is not set); set cascade.glow_size']
    if positive_whole(trained) is None:
        return [f'cascade.glow_opt: {path}: datasets.train.downscale_to: expected a positive integer, got '
                f'{trained!r}']
    trained = positive_whole(trained)  # 48.0 trains as 48
    if given is not None and (not isinstance(given, int) or isinstance(given, bool)):
        return []  # another type: the schema's line names it
    if given is not None and given != trained:
        return [f'cascade.glow_size: {given!r}, but the glow net of {path} was trained at downscale_to {trained!r}; '
                'remove glow_size (it follows the file)']
    cascade['glow_size'] = trained
    return []


def load_option_file(path):
    """The YAML as BasicSR reads it (ordered), read safely (``flare_sr.utils.safe_yaml``: a tag that would build a
    Python object is refused), or a one-line FlareSRError for a missing or broken file."""
    if path is None:
        raise FlareSRError('no option file given: use -opt options/<name>.yml')
    if not osp.isfile(path):
        raise FlareSRError(f'{path}: ' + ('the option file is a folder, not a file' if osp.isdir(path) else
                                          'option file not found'))
    try:
        with open(path, encoding='utf-8') as handle:
            opt = load_yaml(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
        problem = getattr(error, 'problem', None) or str(error).splitlines()[0]
        raise FlareSRError(f'{path}: not valid YAML{where}: {problem}') from None
    except UnicodeDecodeError:
        raise FlareSRError(f'{path}: not a text file (YAML expected)') from None
    if not isinstance(opt, dict):
        raise FlareSRError(f'{path}: expected a mapping of options at the top level')
    return opt


def files_named_by(option_file):
    """``(what, path)`` pairs a run's output files must never replace: the option file and every file its ``path``
    section names (checkpoints, resume state, weights), as ``flare_sr.utils.atomic.check_output_file`` takes them."""
    named = [('the option file', option_file)]
    paths = load_option_file(option_file).get('path')
    for key, value in (paths.items() if isinstance(paths, dict) else ()):  # another shape: the checker names it
        if isinstance(value, str) and value:
            named.append((f'path.{key}', osp.expanduser(value)))
    return named


def check_parseable(opt, path, force_yml=None, is_train=True):
    """What BasicSR's ``parse_options`` dereferences before flare_sr sees the options, as one line.

    ``force_yml``: the ``--force_yml`` entries (``a:b:c=value``); BasicSR can set a new last key but
    not create the sections above it. ``is_train``: a training run whose ``name`` holds ``debug`` has its
    ``logger`` (and ``val``) intervals overwritten while parsing.
    """
    problems = []
    if not isinstance(opt.get('name'), str):
        problems.append('name: missing (every option file names its experiment)')
    if 'num_gpu' not in opt:
        problems.append('num_gpu: missing (0 for the CPU, auto for every visible GPU)')
    if not isinstance(opt.get('datasets'), dict) or not all(isinstance(d, dict) for d in opt['datasets'].values()):
        problems.append('datasets: missing or not a mapping of datasets (train, val, test_1, ...)')
    if not isinstance(opt.get('path'), dict):
        problems.append('path: missing or not a mapping (e.g. path: {pretrain_network_g: ~, resume_state: ~})')
    if is_train and 'debug' in str(opt.get('name')) and not isinstance(opt.get('logger'), dict):
        problems.append('logger: missing (print_freq, save_checkpoint_freq, use_tb_logger)')
    if is_train and 'debug' in str(opt.get('name')) and 'val' in opt and not isinstance(opt['val'], dict):
        problems.append('val: not a mapping (leave it out to train without validation)')
    for entry in force_yml or ():
        if entry.count('=') != 1:
            problems.append(f'--force_yml {entry}: expected one key:path=value')
            continue
        keys, value = (part.strip() for part in entry.split('='))
        keys = keys.split(':')
        # BasicSR execs 'opt["<key>"]...=value' and evals a value that starts with '[': only plain keys and literals
        if not all(key and key.isprintable() and not set('"\\') & set(key) for key in keys):
            problems.append(f'--force_yml {entry}: a key is empty or holds a quote, backslash or control character')
            continue
        if value.startswith('[') and not _is_literal(value):
            problems.append(f'--force_yml {entry}: a list value must be a plain literal list, e.g. [1, 2]')
            continue
        section = opt
        for depth, key in enumerate(keys[:-1]):
            section = section.get(key) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                problems.append(f'--force_yml {entry}: {":".join(keys[:depth + 1])} is not a section of {path}')
                break
    if problems:
        raise FlareSRError(f'{path}: ' + '; '.join(problems))


def _is_literal(text):
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def check_options(opt, source, is_train=True, stream=None):
    """Check (and normalise in place) parsed options; print warnings and notes; raise one FlareSRError.

    Args:
        opt: the options as BasicSR's ``parse_options`` returns them (or as read from the YAML).
        source: the option file, named in every message.
        is_train: training (train, logger sections required) or testing.
        stream: where notes and warnings go (default stderr; ranks other than 0 pass a null device).
    Returns:
        ``opt``, normalised: whole-number floats of counts as ints, ``use_flip`` as ``use_hflip``,
        HINet's ``val.grids`` as ``val.tile``, ``use_grad_clip`` as ``grad_clip``.
    """
    checker = OptionChecker(is_train)
    problems = checker.check(opt)
    stream = sys.stderr if stream is None else stream
    for kind, lines in (('note', checker.notes), ('warning', checker.warnings)):
        for line in lines:
            print(f'{kind}: {source}: {line}', file=stream, flush=True)
    if problems:
        raise FlareSRError(f'{source}: ' + '; '.join(problems))
    return opt


def stage3_source_problems(opt, main_opt=None):
    """Lines for a stage-III option dict ``opt`` whose ``stage3_source`` cannot make the data its training reads;
    [] when it can. ``stage3_source.tile`` values out of range, or, given stage I's option dict ``main_opt``, off the
    grid of its networks (``tile_problems``); a ``datasets.train.gt_size`` crop larger than
    ``stage3_source.patch_size``, the side of every packed patch; a ``stride`` larger than it (gaps). Said before
    stage I trains (``train_pipeline.py``) and before stage I runs on the pairs (``ensure_stage3_data``), not on the
    first pair or the first sample."""
    source = opt.get('stage3_source') if isinstance(opt.get('stage3_source'), dict) else {}
    multiple = None
    if isinstance(main_opt, dict):
        checker = OptionChecker(is_train=False)
        multiple = checker._size_multiple(main_opt, checker._model_type(main_opt.get('model_type')))
    problems = tile_problems(source.get('tile') if isinstance(source.get('tile'), dict) else None, multiple,
                             prefix='stage3_source.tile')
    train = (opt.get('datasets') or {}).get('train') if isinstance(opt.get('datasets'), dict) else None
    gt_size, patch = (train or {}).get('gt_size'), source.get('patch_size')
    if _matches(gt_size, INT) and _matches(patch, INT) and gt_size > patch > 0:
        problems.append(f'datasets.train.gt_size: {gt_size} is larger than stage3_source.patch_size {patch}, the side '
                        f'of every stage-III patch; use gt_size {patch} or less, or a larger patch_size')
    stride = source.get('stride')
    if _matches(stride, INT) and _matches(patch, INT) and stride > patch > 0:  # as create_lmdb.py --stride
        problems.append(f'stage3_source.stride: {stride} is larger than patch_size {patch}: the pixels between '
                        'patches would never be packed; use a stride of at most the patch size')
    return problems


def check_option_file(path, is_train=True, stream=None):
    """Load and check ``path`` as it stands (no command-line overrides); returns the normalised options."""
    opt = load_option_file(path)
    check_parseable(opt, path)
    return check_options(opt, path, is_train, stream)


def closest(key, known, cutoff=0.8):
    """The one of ``known`` that ``key`` is likely a typo of, or None.

    Likely typo: difflib ratio of at least ``cutoff`` and a length within 2 (``use_shuffle`` is not a
    misspelt ``use_hflip``; ``lrr`` is a misspelt ``lr``).
    """
    key = str(key)
    close = [name for name in difflib.get_close_matches(key, [str(k) for k in known], n=3, cutoff=cutoff)
             if abs(len(name) - len(key)) <= 2]
    return close[0] if close else None


def home_hint(key, key_path):
    """`` (it belongs in X)`` when ``key``, read in one section only (``KEY_HOMES``; inside a section also
    ``SECTION_KEY_HOMES``), is at ``key_path``, elsewhere; else ''. A dataset key's home is the dataset ``key_path``
    lies in (``datasets.train.io_backend.gt_size``: ``datasets.train.gt_size``), from the ``train`` and ``val``
    sections that phase's set, else ``datasets.<phase>.<key>``."""
    parts = str(key_path).split('.')
    home = KEY_HOMES.get(str(key)) or (SECTION_KEY_HOMES.get(str(key)) if len(parts) > 1 else None)
    if home and home.startswith('datasets.<phase>.') and parts[0] == 'datasets' and len(parts) > 2:
        home = f'datasets.{parts[1]}.{key}'
    elif home and home.startswith('datasets.<phase>.') and parts[0] in ('train', 'val'):  # the same phase's set
        home = f'datasets.{parts[0]}.{key}'
    if not home or home == key_path:
        return ''
    return f' (it belongs {"at the top level" if "." not in home else "in " + home})'


def suggestion(key, known, cutoff=0.8):
    """`` (did you mean X?)`` when ``key`` is a likely typo of one of ``known`` (:func:`closest`), else ''."""
    close = closest(key, known, cutoff)
    return f' (did you mean {close}?)' if close else ''


def _suggestion_with_former_names(key, target, by_name):
    """``suggestion`` among a constructor's parameters and its deprecated names (``renamed_arguments``): a misspelt
    former name gets the current one, `` (did you mean num_feat? ngf is its former name)``."""
    hint = suggestion(key, list(by_name))
    old = closest(key, getattr(target, 'renamed_arguments', {})) if not hint else None
    return f' (did you mean {target.renamed_arguments[old]}? {old} is its former name)' if old else hint


def strict_keys(values, known, key_path):
    """Problems for a section flare_sr owns: every key must be one of ``known`` (a typo gets a suggestion)."""
    problems = []
    for key in values:
        if key not in known:
            hint = home_hint(key, f'{key_path}.{key}') or suggestion(key, known) or \
                f' (known: {", ".join(sorted(map(str, known)))})'
            problems.append(f'{key_path}.{key}: unknown key{hint}')
    return problems


def _is_whole_float(value):
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _matches(value, expected):
    if isinstance(expected, tuple):
        return any(_matches(value, each) for each in expected)
    if expected == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == INT:
        return (isinstance(value, int) and not isinstance(value, bool)) or _is_whole_float(value)
    if expected == BOOL:
        return isinstance(value, bool)
    if expected == STR:
        return isinstance(value, str)
    if expected == DICT:
        return isinstance(value, dict)
    if expected == LIST:
        return isinstance(value, (list, tuple))
    return value == expected  # a literal choice (including None)


def _wants_int(expected):
    return expected == INT or (isinstance(expected, tuple) and INT in expected and NUMBER not in expected)


def _describe(expected):
    if isinstance(expected, tuple):
        return ' or '.join(_describe(each) for each in expected)
    if expected is None:
        return 'null (~)'
    return expected if expected in (NUMBER, INT, BOOL, STR, DICT, LIST) else repr(expected)


def _type_of_default(default):
    """Expected type from a constructor default (bool before int: True is an int)."""
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return NUMBER if default == 0 else INT
    if isinstance(default, float):
        return NUMBER
    if isinstance(default, str):
        return STR
    if isinstance(default, (list, tuple)):
        return LIST
    return None  # None or another object: any value


def parameters_of(target, skip=()):
    """``({name: inspect.Parameter}, takes_kwargs)``: the named parameters of a constructor or function ``target``
    (an arch class, a loss, a metric) but those in ``skip`` and ``*args`` / ``**kwargs``, and whether it also takes
    ``**kwargs``; ``(None, True)`` where its signature cannot be read. What the option checker checks keys against and
    what the ONNX export fills in as an arch's defaults (flare_sr/models/onnx_backend.py)."""
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None, True
    named = {p.name: p for p in parameters if p.name not in skip and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named, any(p.kind == p.VAR_KEYWORD for p in parameters)


class OptionChecker:
    """Collects ``key.path: what is wrong`` strings in ``problems``, ``warnings`` and ``notes``."""

    def __init__(self, is_train):
        self.is_train = is_train
        self.problems, self.warnings, self.notes = [], [], []
        self._built = {}  # network key -> the built network or the exception its constructor raised

    def check(self, opt):
        """Check ``opt`` (normalising it in place); returns the problems (errors)."""
        self._built = {}  # network key -> the built network or the exception its constructor raised
        notes, problems = resolve_cascade_sources(opt)
        self.notes += notes
        self.problems += problems
        notes, warnings, problems = fold_deprecated_keys(opt)
        self.notes += notes
        self.warnings += warnings
        self.problems += problems
        self._top_level(opt)
        model_cls = self._model_type(opt.get('model_type'))
        built = getattr(model_cls, 'networks', None)
        for key, value in opt.items():
            if str(key).startswith('network_') and isinstance(value, dict):
                if built is not None and key not in built:  # not checked either: e.g. Real-ESRGAN's network_d
                    self.warnings.append(f'{key}: {model_cls.__name__} builds no such network (it builds '
                                         f'{" and ".join(built)}); ignored')
                else:
                    self._registered('ARCH', key, value)
        if built is not None and ('network_g' in built or hasattr(model_cls, 'enabled_roles')):
            self._required_networks(opt, model_cls, built)
        self._buildable_networks(opt, built)
        self._datasets(opt.get('datasets'))
        if isinstance(opt.get('path'), dict):
            self._path(opt['path'])
            self._pretrained_networks(opt, model_cls)
        if self.is_train:
            if not isinstance(opt.get('train'), dict):
                self.problems.append('train: missing (training needs a train section)')
            else:
                self._train(opt['train'], model_cls)
            if not isinstance(opt.get('logger'), dict):
                self.problems.append('logger: missing (print_freq, save_checkpoint_freq, use_tb_logger)')
            self._intervals(opt)
        if isinstance(opt.get('val'), dict):
            self._val(opt['val'], model_cls)
        if isinstance(opt.get('logger'), dict):
            self._keys('logger', opt['logger'], LOGGER)
            if isinstance(opt['logger'].get('wandb'), dict):
                self._keys('logger.wandb', opt['logger']['wandb'], WANDB)
        if isinstance(opt.get('dist_params'), dict):
            self._keys('dist_params', opt['dist_params'], DIST_PARAMS)
        self._flare_sr_sections(opt, model_cls)
        # each line once, even where two checks see the same fault (e.g. a type and a cross-key check)
        self.problems, self.warnings, self.notes = (list(dict.fromkeys(lines))
                                                    for lines in (self.problems, self.warnings, self.notes))
        return self.problems

    # ------------------------------------------------------------------ generic
    def _network(self, opt, key):
        """``opt[key]``'s network, built once per check (:func:`build_network_quietly`); re-raises what its
        constructor raised."""
        if key not in self._built:
            try:
                self._built[key] = build_network_quietly(opt.get(key) or {})
            except Exception as error:  # noqa: BLE001  (kept, and raised to each caller that asks)
                self._built[key] = error
        if isinstance(self._built[key], Exception):
            raise self._built[key]
        return self._built[key]

    def _required_networks(self, opt, model_cls, built):
        """The networks the model builds are there (BasicSR would raise KeyError after creating the folders);
        a test without ``path.pretrain_network_<x>`` would score random weights. A model with ``enabled_roles``
        (CascadeModel) needs the networks its switches run, those from ``cascade.<role>_opt`` files included."""
        if self.is_train:
            needed = built
        elif hasattr(model_cls, 'enabled_roles'):
            if not isinstance(opt.get('cascade') or {}, dict):
                return  # the schema reports the section
            needed = [f'network_{role}' for role in model_cls.enabled_roles(opt)]
        else:
            needed = getattr(model_cls, 'tiled_networks', ('network_g',))
        for key in needed:
            if any(line.startswith(f'cascade.{key[len("network_"):]}_opt:') for line in self.problems):
                continue  # its option file's own line says why the network is not there
            if not isinstance(opt.get(key), dict):
                typo = difflib.get_close_matches(key, [str(k) for k in opt if k not in built], n=1, cutoff=0.8)
                hint = f' (is {typo[0]} meant to be {key}?)' if typo else ''
                source = f": give {key}, or cascade.{key[len('network_'):]}_opt: its option file" if hasattr(
                    model_cls, 'enabled_roles') else ''
                self.problems.append(f'{key}: missing ({model_cls.__name__} builds it{source}){hint}')
            elif not self.is_train and not (opt.get('path') or {}).get(f'pretrain_network_{key[len("network_"):]}'):
                self.warnings.append(f'path.pretrain_network_{key[len("network_"):]}: not set, so {key} is tested '
                                     'with random weights')

    def _buildable_networks(self, opt, built):
        """Each network the model builds (every ``network_*`` for BasicSR's own models) accepts its arguments'
        values, said before the experiment folder exists: an arch can refuse a value its signature allows
        (BasicSR's MSRResNet with ``upscale: 1``). Networks whose keys already have a problem are not built again."""
        for key, net_opt in opt.items():
            if not str(key).startswith('network_') or not isinstance(net_opt, dict) or (
                    built is not None and key not in built) or net_opt.get('type') not in ARCH_REGISTRY or any(
                        line.startswith((f'{key}.', f'{key}:')) for line in self.problems):
                continue
            try:
                self._network(opt, key)
            except Exception as error:  # noqa: BLE001  (any constructor fault is the option's fault here)
                reason = (str(error).strip().splitlines() or [''])[0]
                self.problems.append(f'{key}: {net_opt["type"]} cannot be built with these arguments '
                                     f'({type(error).__name__}: {reason})')

    def _pretrained_networks(self, opt, model_cls):
        """Each ``path.pretrain_network_<x>`` fits ``network_<x>`` (BasicSR's ``strict_load_<x>``, ``param_key_<x>``),
        said before the experiment folder exists. The network is built on the meta device (no memory, no init); the
        file is loaded as weights only. A missing file or a network option that does not build is reported on its
        own key; a network the model does not load (a test run's ``network_d``) is not checked."""
        paths = opt['path']
        loaded = (getattr(model_cls, 'networks', None) if self.is_train else
                  getattr(model_cls, 'tested_networks', getattr(model_cls, 'tiled_networks', None)))
        for key, load_path in paths.items():
            if not str(key).startswith('pretrain_network_') or not isinstance(load_path, str):
                continue
            role = key[len('pretrain_network_'):]
            net_opt = opt.get(f'network_{role}')
            if not isinstance(net_opt, dict) or not osp.isfile(load_path) or (
                    loaded is not None and f'network_{role}' not in loaded):
                continue
            try:
                net = self._network(opt, f'network_{role}')
            except Exception:  # noqa: BLE001  (a bad network option is reported on its own key)
                continue
            strict = paths.get(f'strict_load_{role}', True) is not False
            param_key = paths.get(f'param_key_{role}', 'params')
            members = [(key_path, member) for key_path, member in named_checkpoints(opt, role) if osp.isfile(member)]
            for key_path, member in members:  # with CascadeModel's ensemble, its members too
                try:
                    load_checked_state_dict(net, member, key_path, strict, param_key, options_of=f'path.{key}')
                except FlareSRError as error:
                    self.problems.append(str(error))
            # CascadeModel refuses them too, but only once results/<name> exists
            self.problems += repeated_checkpoints(members)

    def _warn_unknown(self, key_path, key, known, reader='flare_sr'):
        """A key nobody reads here: a warning (BasicSR's keys of other models and datasets are ignored), but an
        error when it is misplaced (``KEY_HOMES``) or a likely typo of a key that is read (``light_dic``): ignoring
        either would silently run without it."""
        home = home_hint(key, key_path)
        if home:
            self.problems.append(f'{key_path}: not read here{home}; move it')
            return
        close = closest(key, known)
        if close and str(key) not in KNOWN_KEYS:  # a key some other dataset or model reads is not a typo
            self.problems.append(f'{key_path}: unknown key (did you mean {close}?); a misspelt key would be ignored')
            return
        self.warnings.append(f'{key_path}: not read by {reader}, ignored')

    def _value(self, section, key, key_path, expected):
        """Type check of ``section[key]``; a whole-number float where an integer is expected becomes an int."""
        value = section[key]
        if _matches(value, expected):
            if _wants_int(expected) and _is_whole_float(value):
                section[key] = int(value)
            return True
        got = yaml_shown(value) if isinstance(value, (str, dict)) else repr(value)
        self.problems.append(f'{key_path}: expected {_describe(expected)}, got {got}{text_number_hint(value)}')
        return False

    def _counts(self, section, key, key_path):
        """An iteration count or a list of them (milestones, periods): whole numbers, stored as ints."""
        value = section.get(key)
        if isinstance(value, (list, tuple)):
            section[key] = list(value)
            for index in range(len(value)):
                self._value(section[key], index, f'{key_path}[{index}]', INT)
        elif value is not None:
            self._value(section, key, key_path, INT)

    def _keys(self, section, values, schema, prefixes=None, strict=False):
        """Known keys type-checked; unknown ones are errors (``strict``) or warnings."""
        prefixes = prefixes or {}
        known = list(schema) + [f'{p}<x>' for p in prefixes]
        for key in list(values):
            key_path = f'{section}.{key}' if section else str(key)
            expected = schema.get(key, 'unknown')
            if expected == 'unknown':
                expected = next((kind for prefix, kind in prefixes.items() if str(key).startswith(prefix)), 'unknown')
            if expected == 'unknown':
                if strict:
                    self.problems += strict_keys({key: None}, list(schema), section)
                else:
                    self._warn_unknown(key_path, key, known)
            else:
                self._value(values, key, key_path, expected)

    def _constructor_keys(self, key_path, values, target, skip=('img', 'img2'), extra=None, filled=()):
        """Keys against the named parameters of a constructor or function; required ones must be there.

        A key the target cannot take is an error (it would raise TypeError later), except for targets that
        swallow ``**kwargs`` (BasicSR's metrics), where it is ignored and so only warned about. ``extra``:
        further keys the caller reads, with their types (a metric's ``better``). ``filled``: required
        parameters the caller fills in when the options leave them out.
        """
        by_name, takes_kwargs = parameters_of(target, skip)
        if by_name is None:
            return
        extra = extra or {}
        for key in list(values):
            if key == 'type':
                continue
            if key in extra:
                self._value(values, key, f'{key_path}.{key}', extra[key])
            elif key in by_name:
                expected = _type_of_default(by_name[key].default)
                if expected is not None and values[key] is not None:
                    self._value(values, key, f'{key_path}.{key}', expected)
            elif takes_kwargs:
                self._warn_unknown(f'{key_path}.{key}', key, list(by_name) + list(extra), getattr(
                    target, '__name__', 'it'))
            else:
                hint = _suggestion_with_former_names(key, target, by_name)
                self.problems.append(f'{key_path}.{key}: unknown key{hint}')
        for name, parameter in by_name.items():
            if parameter.default is inspect.Parameter.empty and name not in values and name not in filled:
                self.problems.append(f'{key_path}.{name}: missing ({getattr(target, "__name__", "it")} needs it)')

    def _registered(self, kind, key_path, values, skip=('img', 'img2'), extra=None):
        """``type`` in the BasicSR registry of ``kind``, other keys against that class's constructor."""
        table = REGISTRIES[kind]
        type_name = values.get('type')
        if type_name is None:
            self.problems.append(f'{key_path}.type: missing')
            return None
        if type_name not in table:
            self._unknown_choice(f'{key_path}.type', type_name, list(table.keys()))
            return None
        target = table.get(type_name)
        self._constructor_keys(key_path, values, target, skip=skip, extra=extra)
        check = getattr(target, 'check_options', None)  # e.g. a loss's weights file (L_percepture's vgg_path)
        if check is not None:
            self.problems += check(values, key_path)
        return target

    def _unknown_choice(self, key_path, value, choices):
        hint = suggestion(value, choices, cutoff=0.6) or f' (one of {", ".join(sorted(choices))})'
        self.problems.append(f'{key_path}: unknown {value!r}{hint}')

    def _existing_path(self, key_path, value):
        if isinstance(value, str) and not osp.exists(osp.expanduser(value)):
            self.problems.append(f'{key_path}: {value} does not exist (relative paths start at {os.getcwd()})')

    # ------------------------------------------------------------------ sections
    def _top_level(self, opt):
        for required in ('name', 'model_type', 'datasets'):
            if required not in opt:
                self.problems.append(f'{required}: missing')
        for key in list(opt):
            if key in PARSER_ADDED:
                continue
            if str(key).startswith('network_'):
                self._value(opt, key, str(key), DICT)
            elif key in TOP_LEVEL:
                self._value(opt, key, str(key), TOP_LEVEL[key])
            else:
                self._warn_unknown(str(key), key, list(TOP_LEVEL))
        if opt.get('scale', 1) != 1 and _matches(opt.get('scale'), INT):
            self.warnings.append(f'scale: {opt["scale"]} is ignored: flare_sr restores images at their own size '
                                 '(lq and gt must be the same size)')

    def _model_type(self, model_type):
        if not isinstance(model_type, str):
            return None
        if model_type not in MODEL_REGISTRY:
            self._unknown_choice('model_type', model_type, [k for k in MODEL_REGISTRY.keys() if 'Model' in k])
            return None
        return MODEL_REGISTRY.get(model_type)

    def _datasets(self, datasets):
        if not isinstance(datasets, dict):
            return
        for phase, dataset_opt in datasets.items():
            key_path = f'datasets.{phase}'
            if str(phase).split('_')[0] not in ('train', 'val', 'test'):
                self.problems.append(f'{key_path}: unknown phase (use train, val or test, e.g. val_1)')
                continue
            # BasicSR's training loop knows "train" and val_*; any other name stops it with a traceback, after the
            # run's folder was made (or an earlier run's archived)
            if self.is_train and str(phase).startswith('train') and phase != 'train':
                self.problems.append(f'{key_path}: BasicSR trains on one set, named train; merge the sets (e.g. one '
                                     'meta_csv) or rename this one')
                continue
            if self.is_train and str(phase).split('_')[0] == 'test':
                self.problems.append(f'{key_path}: training validates the val* sets only; rename it val_{phase[5:]} '
                                     '(validated in training) or keep it for test.py')
                continue
            if not isinstance(dataset_opt, dict):
                self._value(datasets, phase, key_path, DICT)
                continue
            if not self.is_train and str(phase).split('_')[0] == 'train':
                self.problems.append(f'{key_path}: a training set cannot be tested (test.py scores every dataset of '
                                     'the file, and training sets are random crops): use a test option file, with '
                                     'val_* or test_* datasets only')
                continue
            self._dataset(key_path, dataset_opt)
        self._validated_frames(datasets)

    def _validated_frames(self, datasets):
        """A net trained on whole downscaled frames (``downscale_to``) validated at another size: its scores would not
        be the ones CascadeModel gets, which runs it at the training size (``cascade.glow_size``)."""
        train = datasets.get('train')
        short = train.get('downscale_to') if isinstance(train, dict) else None
        if short is None:
            return
        for phase, dataset_opt in datasets.items():
            if str(phase).split('_')[0] == 'val' and isinstance(dataset_opt, dict) and \
                    dataset_opt.get('downscale_to') != short:
                self.warnings.append(f'datasets.{phase}.downscale_to: {dataset_opt.get("downscale_to")!r}, but '
                                     f'datasets.train.downscale_to is {short!r}: the net is validated on frames of '
                                     'another size than it trains on and runs at (cascade.glow_size)')

    def _dataset(self, key_path, dataset_opt):
        type_name = dataset_opt.get('type')
        if type_name not in DATASET_REGISTRY:
            self._unknown_choice(f'{key_path}.type', type_name, list(DATASET_REGISTRY.keys()))
            return
        dataset_cls = DATASET_REGISTRY.get(type_name)
        read = _keys_read_by(dataset_cls)
        known = {key: kind for key, kind in DATASET.items() if key not in DATASET_SELECTION or key in read}
        for key in read:
            known.setdefault(key, None)
        for key in list(dataset_opt):
            if key not in known:
                self._warn_unknown(f'{key_path}.{key}', key, list(known), type_name)
            elif known[key] is not None:
                self._value(dataset_opt, key, f'{key_path}.{key}', known[key])
        self._fork_dataset_keys(key_path, dataset_opt)
        if isinstance(dataset_opt.get('io_backend'), dict):
            self._keys(f'{key_path}.io_backend', dataset_opt['io_backend'], IO_BACKEND)
        for key in DATASET_PATHS:
            if isinstance(dataset_opt.get(key), str):  # BasicSR expands ~ in path.* only; its datasets read these
                dataset_opt[key] = osp.expanduser(dataset_opt[key])
            self._existing_path(f'{key_path}.{key}', dataset_opt.get(key))
        if key_path.split('.')[-1].split('_')[0] == 'train':
            for key in ('batch_size_per_gpu', 'num_worker_per_gpu'):
                if key not in dataset_opt:
                    self.problems.append(f'{key_path}.{key}: missing')
        for key, least in DATASET_MINIMUMS.items():
            value = dataset_opt.get(key)
            if _matches(value, INT) and value < least:
                self.problems.append(f'{key_path}.{key}: {value}; expected an integer >= {least}')
        check = getattr(dataset_cls, 'check_options', None)
        if check is not None:
            self.problems += check(dataset_opt, key_path)
        check_warnings = getattr(dataset_cls, 'check_warnings', None)  # e.g. images a folder holds but are not read
        if check_warnings is not None:
            self.warnings += check_warnings(dataset_opt, key_path)

    def _fork_dataset_keys(self, key_path, dataset_opt):
        """HINet/NAFNet's ``use_flip`` honoured as ``use_hflip``; ``use_shuffle`` and ``color`` as far as they go."""
        if 'use_flip' in dataset_opt:
            use_flip = dataset_opt.pop('use_flip')
            if 'use_hflip' in dataset_opt and dataset_opt['use_hflip'] != use_flip:
                self.problems.append(f'{key_path}.use_flip: {use_flip} contradicts use_hflip: '
                                     f'{dataset_opt["use_hflip"]} (use_flip is the HINet/NAFNet name for it)')
            elif 'use_hflip' not in dataset_opt:
                dataset_opt['use_hflip'] = use_flip
                self.notes.append(f'{key_path}.use_flip: {use_flip} (HINet/NAFNet) used as use_hflip: {use_flip}')
        if dataset_opt.get('use_shuffle') is False and key_path.split('.')[-1].startswith('train'):
            self.warnings.append(f'{key_path}.use_shuffle: false is ignored; training samples are always shuffled '
                                 '(reproducibly, by manual_seed)')
        if isinstance(dataset_opt.get('color'), str) and dataset_opt['color'].lower() == 'y':
            self.problems.append(f'{key_path}.color: y (luminance-only images) is not supported: flare removal '
                                 'needs colour; remove it')

    def _path(self, paths):
        known = list(PATH) + [f'{prefix}<x>' for prefix in PATH_PREFIXES]
        made = [key for key in paths if key not in PATH and not str(key).startswith(tuple(PATH_PREFIXES))
                and not any(part in str(key) for part in BASICSR_UNMADE_PATH_KEYS)]
        for key in made:  # BasicSR's make_exp_dirs would os.makedirs its value (a list or null: a traceback)
            self.problems.append(f'path.{key}: unknown key; BasicSR would make a folder of its value '
                                 f'({paths[key]!r}){home_hint(key, f"path.{key}") or suggestion(key, known)}; '
                                 'remove it')
        self._keys('path', {key: value for key, value in paths.items() if key not in made}, PATH,
                   prefixes=PATH_PREFIXES)
        for key, value in paths.items():
            if str(key).startswith('pretrain_network_') or key == 'resume_state':
                self._existing_path(f'path.{key}', value)

    def _train(self, train, model_cls=None):
        # a model's losses may have other names than *_opt (DeflareModel's ``perceptual``, as Flare7K names it)
        loss_keys = (*getattr(model_cls, 'train_losses', ()), *getattr(model_cls, 'optional_train_losses', ()))
        for key in list(train):
            named = str(key).startswith('optim_') or str(key).endswith('_opt') or key in loss_keys
            if named and (train[key] is None or isinstance(train[key], dict)):
                continue  # an optimizer or a loss: checked below
            if key in TRAIN:
                self._value(train, key, f'train.{key}', TRAIN[key])
            else:
                self._warn_unknown(f'train.{key}', key, list(TRAIN) + ['optim_g', 'pixel_opt'])
        if 'total_iter' not in train:
            self.problems.append('train.total_iter: missing')
        self._train_ranges(train)
        for name in [key for key in train if str(key).startswith('optim_')]:
            if isinstance(train[name], dict):
                self._optimizer(f'train.{name}', train[name])
        if isinstance(train.get('scheduler'), dict):
            self._scheduler(train['scheduler'], train.get('total_iter'))
        losses = [key for key in train if (str(key).endswith('_opt') or key in loss_keys)
                  and isinstance(train[key], dict)]
        for name in losses:
            self._registered('LOSS', f'train.{name}', train[name])
        self._losses_applied(train, losses, model_cls, LOSS_REGISTRY)
        if isinstance(train.get('saturation_mask'), dict):
            reader, skip = OPTION_READERS['train.saturation_mask']  # flare_sr/losses/saturation_mask.py
            self._constructor_keys('train.saturation_mask', train['saturation_mask'], reader, skip=skip)
        for key in getattr(model_cls, 'unapplied_train_options', ()):
            if train.get(key):
                self.problems.append(f'train.{key}: {model_cls.__name__} does not apply it; remove it')
        if train.get('use_grad_clip') and train.get('grad_clip') is None:
            train['grad_clip'] = HINET_GRAD_CLIP
            self.notes.append(f'train.use_grad_clip: true (HINet) used as grad_clip: {HINET_GRAD_CLIP} '
                              '(max gradient norm, as HINet clips)')
        mixing = train.get('mixing_augs')
        if isinstance(mixing, dict) and mixing.get('mixup'):
            self.warnings.append('train.mixing_augs.mixup: not implemented by flare_sr; trained without mixup')

    def _train_ranges(self, train):
        """Numbers BasicSR takes unchecked whose wrong value trains silently wrong."""
        def number(key):
            value = train.get(key)
            return value if _matches(value, NUMBER) else None

        total, decay, clip = number('total_iter'), number('ema_decay'), number('grad_clip')
        if total is not None and total < 1:  # BasicSR would save the untrained net as the result
            self.problems.append(f'train.total_iter: {total} trains nothing; expected an integer >= 1')
        if decay is not None and not 0 <= decay < 1:
            self.problems.append(f'train.ema_decay: {decay} is not in [0, 1): the share of the EMA copy kept at each '
                                 'step (0: no EMA; Flare7K++ uses 0.9, BasicSR 0.999); outside it params_ema '
                                 'diverges or never moves')
        if clip is not None and clip < 0:
            self.problems.append(f'train.grad_clip: {clip}: a maximal gradient norm is >= 0 (0 or ~: no clipping); '
                                 'a negative one reverses every gradient')

    def _losses_applied(self, train, losses, model_cls, loss_registry):
        """A flare_sr model applies exactly its ``train_losses``: a missing one would crash, another is ignored."""
        applied = getattr(model_cls, 'train_losses', None)
        if applied is None:
            return
        optional = getattr(model_cls, 'optional_train_losses', ())
        model = model_cls.__name__
        for name in applied:
            if name not in losses:
                self.problems.append(f'train.{name}: missing ({model} trains with {" and ".join(applied)})')
        for name in losses:
            if name not in applied and name not in optional:
                self.problems.append(f'train.{name}: {model} does not apply it (it trains with '
                                     f'{" and ".join(applied)} only); remove it')

    def _optimizer(self, key_path, optim):
        kind = optim.get('type')
        if kind not in OPTIMIZERS:
            self.problems.append(f'{key_path}.type: unknown optimizer {kind!r} (one of {", ".join(OPTIMIZERS)})')
            return
        self._constructor_keys(key_path, optim, OPTIMIZERS[kind], skip=('params',))
        betas = optim.get('betas')
        if betas is not None and not (isinstance(betas, (list, tuple)) and len(betas) == 2
                                      and all(_matches(beta, NUMBER) for beta in betas)):
            self.problems.append(f'{key_path}.betas: expected two numbers, e.g. [0.5, 0.999], got {betas!r}')
        if _matches(optim.get('lr'), NUMBER) and optim['lr'] < 0:
            self.problems.append(f'{key_path}.lr: {optim["lr"]}: a negative learning rate climbs the loss')

    def _scheduler(self, scheduler, total_iter=None):
        kind = scheduler.get('type')
        if kind in REFUSED_SCHEDULERS:
            self.problems.append(f'train.scheduler.type: {kind} is not supported: {REFUSED_SCHEDULERS[kind]}')
            return
        if kind not in SCHEDULERS:
            self.problems.append(f'train.scheduler.type: unknown scheduler {kind!r} (one of {", ".join(SCHEDULERS)})')
            return
        before = len(self.problems)
        for key in SCHEDULER_COUNTS:
            self._counts(scheduler, key, f'train.scheduler.{key}')
        self._constructor_keys('train.scheduler', scheduler, SCHEDULERS[kind],
                               skip=('self', 'optimizer', 'last_epoch', 'verbose'),
                               filled=('total_iter',))  # the forks' LinearLR/VibrateLR: from train.total_iter
        if len(self.problems) > before:
            return
        for key in ('periods', 'T_max'):  # a period of 0 divides by zero at the first step
            value = scheduler.get(key)
            if any(isinstance(each, int) and each < 1 for each in (value if isinstance(value, list) else [value])):
                self.problems.append(f'train.scheduler.{key}: {value!r}: a period is at least 1 iteration')
                return
        self._scheduler_rates(scheduler, total_iter)
        # built once here, as the model builds it: what only the scheduler refuses (periods shorter than total_iter,
        # restart_weights of another length) is said before BasicSR creates or archives the run's folder
        try:
            build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), scheduler,
                            total_iter if _matches(total_iter, INT) else None)
        except FlareSRError as error:
            self.problems.append(str(error))

    def _scheduler_rates(self, scheduler, total_iter):
        """Settings that train with a negative learning rate (gradient ascent, without a word) or never apply: a
        ``gamma``, ``eta_min`` or restart weight below 0, a milestone below 1, the forks' ``LinearLR`` / ``VibrateLR``
        sized shorter than ``train.total_iter`` (their rate falls below 0 after it)."""
        for key in ('gamma', 'eta_min'):
            if _matches(scheduler.get(key), NUMBER) and scheduler[key] < 0:
                self.problems.append(f'train.scheduler.{key}: {scheduler[key]}: below 0, the learning rate would be '
                                     'negative (gradient ascent)')
        for key, least, why in (('restart_weights', 0, 'the learning rate would be negative after that restart'),
                                ('milestones', 1, 'a milestone before iteration 1 is never reached')):
            values = scheduler.get(key)
            low = [value for value in (values if isinstance(values, list) else []) if _matches(value, NUMBER)
                   and value < least]
            if low:
                self.problems.append(f'train.scheduler.{key}: {low[0]} is below {least}: {why}')
        own = scheduler.get('total_iter')
        if _matches(own, INT) and _matches(total_iter, INT) and own < total_iter:
            self.problems.append(f'train.scheduler.total_iter: {own} is below train.total_iter {total_iter}: the '
                                 f'{scheduler.get("type")} rate falls below 0 after iteration {own} (gradient ascent); '
                                 'leave it out (it is train.total_iter) or make it at least that')

    def _val(self, val, model_cls):
        self._keys('val', val, VAL)
        self._grids_as_tile(val)
        if val.get('use_image') is False:
            self.notes.append('val.use_image: false (NAFNet: metrics on float tensors); flare_sr scores the saved '
                              '8-bit images, as use_image: true')
        for name, metric in list((val.get('metrics') or {}).items()):
            if isinstance(metric, dict) and metric.get('type') in TENSOR_METRICS:
                self.problems.append(f'val.metrics.{name}.type: {metric["type"]} scores float tensors, but validation '
                                     f'scores the 8-bit images: use {TENSOR_METRICS[metric["type"]]}')
            elif isinstance(metric, dict):
                self._registered('METRIC', f'val.metrics.{name}', metric, skip=METRIC_INPUTS,
                                 extra={'better': ('higher', 'lower')})
                self._existing_path(f'val.metrics.{name}.mask_folder', metric.get('mask_folder'))
                crop = metric.get('crop_border', 0)
                if isinstance(crop, bool) or not isinstance(crop, int) or crop < 0:  # slices: a TypeError or NaN
                    self.problems.append(f'val.metrics.{name}.crop_border: expected a whole number of pixels, 0 or '
                                         f'more, got {crop!r}')
            else:
                self._value(val['metrics'], name, f'val.metrics.{name}', DICT)

    def _intervals(self, opt):
        """What BasicSR's training loop reads only once iterations have run (``current_iter % freq`` at every
        iteration, wandb at the first log): each interval present and at least 1, else a KeyError or
        ZeroDivisionError after the first iteration; wandb only beside TensorBoard (BasicSR asserts it)."""
        for section, key in (('logger', 'print_freq'), ('logger', 'save_checkpoint_freq'), ('val', 'val_freq')):
            values = opt.get(section)
            if not isinstance(values, dict):
                continue
            value = values.get(key)
            if value is None:
                self.problems.append(f'{section}.{key}: missing (every how many iterations)')
            elif _matches(value, NUMBER) and value < 1:
                self.problems.append(f'{section}.{key}: {value}; expected a number of iterations, at least 1')
        logger = opt.get('logger') if isinstance(opt.get('logger'), dict) else {}
        wandb = logger.get('wandb') if isinstance(logger.get('wandb'), dict) else {}
        if wandb.get('project') is None or 'debug' in str(opt.get('name')):
            return
        if logger.get('use_tb_logger') is not True:
            self.problems.append('logger.wandb.project: set, but logger.use_tb_logger is not true (BasicSR logs to '
                                 'wandb through TensorBoard)')
        elif importlib.util.find_spec('wandb') is None:
            self.problems.append('logger.wandb.project: set, but the wandb package is not installed (pip install '
                                 'wandb, or leave out logger.wandb)')

    def _grids_as_tile(self, val):
        """HINet's ``grids: true`` + ``crop_size`` + ``max_minibatch`` as ``val.tile`` (size and batch)."""
        if not val.get('grids'):
            return
        if isinstance(val.get('tile'), dict):
            self.notes.append('val.grids: val.tile is set too and is used instead')
            return
        size = val.get('crop_size')
        if not isinstance(size, int) or size <= 0:
            self.problems.append('val.grids: true needs val.crop_size (the grid size in pixels)')
            return
        overlap = min(TILE_OPTIONS['overlap'], size // 4)
        batch = val.get('max_minibatch', TILE_OPTIONS['batch'])
        val['tile'] = {'size': size, 'overlap': overlap, 'batch': batch}
        self.notes.append(f'val.grids (HINet): mapped to val.tile: {{size: {size}, overlap: {overlap}, batch: {batch}}}'
                          ' (blended tiles instead of averaged grids)')

    # ------------------------------------------------------------------ flare_sr's own sections
    def _flare_sr_sections(self, opt, model_cls):
        if model_cls is not None and model_cls.__module__.startswith('flare_sr.'):
            for key in getattr(model_cls, 'tiled_networks', ('network_g',)):
                net_opt = opt.get(key) if isinstance(opt.get(key), dict) else {}
                for arg in IMAGE_CHANNEL_ARGS:  # else a conv's channel error at the first iteration
                    if arg in net_opt and net_opt[arg] != 3:
                        self.problems.append(f'{key}.{arg}: {net_opt[arg]!r}, but flare_sr\'s datasets and photos '
                                             'give RGB images (3 channels); set it to 3')
        val = opt.get('val') if isinstance(opt.get('val'), dict) else {}
        tile = val.get('tile')
        if isinstance(tile, dict):
            self._keys('val.tile', tile, _schema(TILE_OPTIONS), strict=True)
            self._tile(tile, opt, model_cls)
        if val.get('restore_light_source'):
            self._light_source(val['restore_light_source'], model_cls)
        if val.get('save_flare') and model_cls is not None and not getattr(model_cls, 'predicts_flare', False):
            self.problems.append(f'val.save_flare: {model_cls.__name__} predicts no flare layer (DeflareModel does); '
                                 'remove it')
        floor = val.get('flare_floor')
        if _matches(floor, NUMBER) and not 0 <= floor < 1:
            self.problems.append(f'val.flare_floor: {floor!r}, but it is a fraction of full scale in [0, 1) '
                                 '(2 levels of 255: 0.0078; 0: off)')
        elif _matches(floor, NUMBER) and floor > FLARE_FLOOR_WARN:
            self.warnings.append(f'val.flare_floor: {floor} undoes every change under {floor:.0%} of full scale: the '
                                 'output is nearly the input (it is a fraction of full scale; 2 levels of 255: 0.0078)')
        if floor and model_cls is not None and not hasattr(model_cls, 'darken_only'):
            self.problems.append(f'val.flare_floor: {model_cls.__name__} does not apply it; use a flare_sr model '
                                 '(HINetModel, Pix2PixModel, CascadeModel) or remove it')
        if val.get('darken_only') and model_cls is not None and not hasattr(model_cls, 'darken_only'):
            self.problems.append(f'val.darken_only: {model_cls.__name__} does not apply it; use a flare_sr model '
                                 '(HINetModel, Pix2PixModel, CascadeModel) or remove it')
        train = (opt.get('datasets') or {}).get('train') if isinstance(opt.get('datasets'), dict) else None
        if self.is_train and isinstance(train, dict) and isinstance(opt.get('network_g'), dict):
            self._training_sample_fits(opt, train)
        source = opt.get('stage3_source')
        if isinstance(source, dict):
            self._keys('stage3_source', source, STAGE3_SOURCE, strict=True)
            if isinstance(source.get('tile'), dict):
                self._keys('stage3_source.tile', source['tile'], _schema(TILE_OPTIONS), strict=True)
            main_opt = source.get('main_opt')
            try:  # stage I's networks, for the tile's grid; a main_opt that cannot be read is said on its own key
                main = load_option_file(main_opt) if isinstance(main_opt, str) and osp.isfile(main_opt) else None
            except FlareSRError:
                main = None
            self.problems += stage3_source_problems(opt, main)
        cascade = opt.get('cascade')
        if isinstance(cascade, dict):
            known = getattr(model_cls, 'CASCADE_OPTIONS', None)
            if known is None:
                self.problems.append(f'cascade: only CascadeModel reads it, not {opt.get("model_type")}; remove it')
            else:
                self._keys('cascade', cascade, dict(_schema(known), main_ensemble=(LIST, NULL),
                                                    glow_ensemble=(LIST, NULL)), strict=True)
                if not any(line.startswith('cascade.') for line in self.problems):
                    self.problems += model_cls.switch_problems(opt)
                for role in ('main', 'glow'):
                    key = f'{role}_ensemble'
                    ensemble = cascade.get(key)
                    for index, value in enumerate(ensemble if isinstance(ensemble, list) else []):
                        if isinstance(value, str) and osp.isdir(osp.expanduser(value)):
                            self.problems.append(f'cascade.{key}[{index}]: {value} is a folder, not a checkpoint')
                        elif isinstance(value, str):
                            self._existing_path(f'cascade.{key}[{index}]', value)
                        else:
                            self.problems.append(f'cascade.{key}[{index}]: {value!r} is not a checkpoint path')
                self._glow(opt, cascade, model_cls)

    def _training_sample_fits(self, opt, train):
        """network_g takes the training samples' size (the dataset's ``sample_shape``: ``gt_size``, or the whole
        frame ``downscale_to`` makes, from the image headers; ``gt_size`` for other datasets), tried on the meta
        device: HINet and the U-Net refuse sides that are not multiples of theirs, which would stop the first
        iteration with a traceback."""
        if any(line.startswith(('datasets.train.', 'network_g')) for line in self.problems):
            return
        dataset_cls = DATASET_REGISTRY.get(train['type']) if train.get('type') in DATASET_REGISTRY else None
        try:
            if hasattr(dataset_cls, 'sample_shape'):
                size = dataset_cls.sample_shape(train, 'train')
            else:
                size = (train['gt_size'],) * 2 if isinstance(train.get('gt_size'), int) else None
        except FlareSRError:  # the dataset's check_options said it
            return
        if size is None:
            return
        try:
            net = self._network(opt, 'network_g')
            with torch.no_grad():
                net(torch.empty(1, 3, *size, device='meta'))
        except ValueError as error:  # the arch's own size check
            reason = (str(error).strip().splitlines() or [''])[0]
            if train.get('downscale_to') or train.get('gt_size'):
                key = 'downscale_to' if train.get('downscale_to') else 'gt_size'
                self.problems.append(f'datasets.train.{key}: training samples of {size[0]}x{size[1]} do not fit '
                                     f'network_g ({reason})')
            else:  # whole images: the size is the photos'
                self.problems.append(f'datasets.train: whole training samples of {size[0]}x{size[1]} (the images\' '
                                     f'size, without gt_size) do not fit network_g ({reason}); set gt_size to crop '
                                     'them')
        except Exception:  # noqa: BLE001  (a net the meta device cannot run, or a bad network option: said elsewhere)
            return

    def _glow(self, opt, cascade, model_cls):
        """CascadeModel's glow stage: a size and floor it can use; a checkpoint or size with no glow net (ignored)."""
        size, floor = cascade.get('glow_size'), cascade.get('glow_floor')
        if isinstance(size, int) and not isinstance(size, bool) and size < 1:
            self.problems.append(f'cascade.glow_size: {size!r}, but it is the short side in px of the frame the glow '
                                 'net sees (48 for the demo)')
        if _matches(floor, NUMBER) and not 0 <= floor < 1:
            self.problems.append(f'cascade.glow_floor: {floor!r}, but it is a fraction of full scale in [0, 1)')
        ignored = [f'path.{key}' for key in ('pretrain_network_glow',) if (opt.get('path') or {}).get(key)] + [
            f'cascade.{key}' for key in ('glow_size', 'glow_floor', 'glow_self_ensemble') if key in cascade]
        if 'network_glow' not in opt and ignored:
            self.warnings.append(f'{" / ".join(ignored)}: there is no network_glow (nor cascade.glow_opt), so the glow '
                                 f'stage does not run and {"they are" if len(ignored) > 1 else "it is"} ignored')

    def _tile(self, tile, opt, model_cls):
        """Tile values that cannot run: each out of its range, or a size and overlap the networks' grid does not allow,
        said at start-up (not at the first validation). Values of another type are the schema's to report."""
        size = tile.get('size')
        multiple = self._size_multiple(opt, model_cls) if type(size) is int and size > 0 else None
        problems = tile_problems(tile, multiple)
        self.problems += problems
        if problems or multiple is None:
            return
        tile = max(multiple, size // multiple * multiple)
        for key in getattr(model_cls, 'tiled_networks', ('network_g',)):
            try:
                net = self._network(opt, key)
            except Exception:  # noqa: BLE001  (a bad network option is reported on its own key)
                continue
            # Uformer fixes its attention windows at build time (img_size); tiles of another size run other windows
            mismatch = net.window_mismatch(tile, tile) if hasattr(net, 'window_mismatch') else None
            if mismatch:
                self.warnings.append(f'val.tile.size {size}: {mismatch}')

    def _size_multiple(self, opt, model_cls):
        """Least common multiple of the ``size_multiple`` of the networks the model tiles."""
        multiples = [1]
        for key in getattr(model_cls, 'tiled_networks', ('network_g',)):
            try:
                net = self._network(opt, key)
            except Exception:  # noqa: BLE001  (a bad network option is reported on its own key)
                continue
            multiples.append(int(getattr(net, 'size_multiple', 1)))
        return math.lcm(*multiples)

    def _light_source(self, restore, model_cls):
        if model_cls is not None and not hasattr(model_cls, 'restore_light_sources'):
            self.problems.append(f'val.restore_light_source: {model_cls.__name__} does not apply it; use a flare_sr '
                                 'model (HINetModel, Pix2PixModel, CascadeModel) or remove it')
        if isinstance(restore, dict):
            known, _ = parameters_of(restore_light_source_tensor, skip=('lq', 'out'))
            schema = {key: LIGHT_SOURCE_METHODS if key == 'method' else _type_of_default(parameter.default)
                      for key, parameter in known.items()}
            self._keys('val.restore_light_source', restore, schema, strict=True)
            threshold, scale = restore.get('threshold'), restore.get('scale')
            if _matches(threshold, NUMBER) and not 0 < threshold < 1:  # pixels above it are lights: 1 finds none, 0 all
                self.problems.append(f'val.restore_light_source.threshold: {threshold!r}, but it is a luminance in '
                                     '(0, 1) above which the input counts as a light (default 0.97)')
            if _matches(scale, NUMBER) and not scale > 0:
                self.problems.append(f'val.restore_light_source.scale: {scale!r}, but it is how far each light is '
                                     'grown, in its diameters, and must be > 0 (default 1.5)')


def _schema(defaults):
    """Expected types from a table of defaults (None: an integer or null, as ``val.tile.size``)."""
    return {key: (INT, NULL) if default is None else _type_of_default(default) for key, default in defaults.items()}


def build_network_quietly(net_opt):
    """The network of ``net_opt`` (``type`` plus arguments) on the meta device: no memory, no initialisation.
    Constructors that compute with tensor values cannot run there; those are built on the CPU, so a fault raised
    on both is the options' fault. Raises what the constructor raises. Not BasicSR's ``build_network``: its log line
    would set up BasicSR's logger before train_pipeline does."""
    net_opt = dict(net_opt)
    arch = ARCH_REGISTRY.get(net_opt.pop('type'))
    try:
        with torch.device('meta'):
            return arch(**net_opt)
    except Exception:  # noqa: BLE001  (the CPU build below decides)
        return arch(**net_opt)


def _keys_read_by(dataset_class):
    """Option keys a dataset's module reads as ``opt['key']`` or ``opt.get('key')`` (any ``*opt`` name)."""
    try:
        source = inspect.getsource(inspect.getmodule(dataset_class))
    except (OSError, TypeError):
        return set()
    return set(re.findall(r"opt\s*(?:\[\s*|\.get\(\s*)['\"](\w+)['\"]", source))
