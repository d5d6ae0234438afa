"""Every fix flare_sr needs in BasicSR 1.4.2, in one place, each a small wrapper around BasicSR's own code.

``apply()`` installs the wrappers into the module globals that ``basicsr.train``, ``basicsr.test`` and
``basicsr.utils.options`` look up at call time; BasicSR's functions themselves are never copied. It is
idempotent. What each wrapper fixes:

- ``load_resume_state``: BasicSR maps every tensor to ``storage.cuda()`` (crashes on CPU), unpickles
  the state with ``weights_only=False`` (a state from someone else can run code) and looks for states
  under a cwd-relative ``experiments/<name>``, so ``--auto_resume`` from another directory silently
  starts over. Ours loads as weights only (``flare_sr/utils/checkpoint.py``: a network file, folder or
  broken file is one line), maps to the model's device, reads ``opt['path']['training_states']``
  (absolute, from ``root_path``) and refuses a state of another model type.
- ``ordered_yaml``: BasicSR's is YAML's full loader, so a python tag in an option file runs code while
  ``parse_options`` reads it (CodeFormer#446). Ours returns ``flare_sr.utils.safe_yaml.OrderedSafeLoader`` (the same
  ordered mappings; any tag that would build a Python object is one ``error:`` line naming the file and line).
- ``init_dist``: BasicSR hard-wires NCCL and divides by ``torch.cuda.device_count()`` (zero on CPU).
  Ours picks ``dist_params.backend`` from the option file, else NCCL with CUDA and gloo without; an
  explicit ``nccl`` without GPUs becomes gloo with a warning (``flare_sr/utils/hardware.py``), and a
  launcher started without its environment is one ``error:`` line.
- ``parse_options``: accepts ``--local-rank`` (what ``torch.distributed.launch`` passes) and, for test.py,
  ``--precision`` (overrides ``val.precision``; ``--auto_resume`` leaves test.py's help), fits GPU-only
  settings to this machine (``num_gpu``, ``prefetch_mode: cuda``, ``pin_memory``; one warning line each),
  refuses two validation sets of one name (their images and metrics are kept apart by name), and
  gives runs default ``val.save_img`` / ``val.suffix`` (and training ``logger.use_tb_logger``) instead of a KeyError
  after the iterations, and says in one warning line what BasicSR does to a training run whose ``name`` holds
  ``debug`` (validation and checkpoints every 8 iterations, no TensorBoard).
- ``parse_options``' command-line parser reports a bad argument as one ``error:`` line (flare_sr.errors.ArgumentParser)
  instead of argparse's usage block.
- ``parse_options`` also checks the options once, as parsed (``--force_yml`` included), before any
  folder exists (``flare_sr.utils.options_check``). A refused run prints its ``error:`` line alone: BasicSR's
  prints while parsing ("Disable distributed.") and the notes and warnings wait until the options are accepted.
- Run folders (``flare_sr/utils/run_folder.py``): ``parse_options`` refuses a ``name``, validation set ``name`` or
  ``val.suffix`` that is not one folder name (absolute, ``..``, ``group/run``, ...: BasicSR archived whatever folder
  it named) and, on rank 0, locks ``experiments/<name>`` (or ``results/<name>``) before anything is archived or
  created, so a second run of a live run's name stops in one line naming it. ``mkdir_and_rename`` archives to a
  free name (BasicSR's one-second timestamp collided); ``copy_opt_file`` keeps a changed option copy instead of
  overwriting it; a new run refuses inputs inside the folder it is about to archive.
- ``load_resume_state`` also refuses a state past ``train.total_iter`` (BasicSR trained nothing and recorded its
  weights at ``total_iter``) and a state whose networks do not fit the options' (BasicSR blamed
  ``path.pretrain_network_g`` and advised ``strict_load_g: false``, which replaced the checkpoint with a mostly
  random network), and looks only at the networks the model builds.
- ``create_train_val_dataloader``: trains flare_sr datasets through ``ResumableSampler`` with the
  dataset seed set to ``manual_seed``, skips the part of the epoch a resumed run already trained on,
  keeps DataLoader set-up off the global RNG, and corrects the epoch count BasicSR derives with
  ``ceil`` where the loader drops the last partial batch (a run could end before ``total_iter``), and refuses a
  validation image too small for a ``calculate_niqe`` metric before the first iteration.
- BasicSR's ``PairedImageDataset`` path lists (``meta_info_file``, an LMDB's ``meta_info.txt``): a UTF-8 BOM
  is no part of the first name (flare_sr's own readers open these files as ``utf-8-sig``).
- ``calculate_niqe`` (METRIC_REGISTRY): one line naming the minimum size instead of ``LinAlgError`` on an image
  with fewer than two 96x96 blocks; a textureless image is not scored (NaN) (``flare_sr/metrics/niqe_size.py``).
  ``calculate_ssim`` under 11x11 pixels and ``calculate_psnr`` with nothing left after ``crop_border`` (a silent NaN)
  are one line too, checked before the first iteration as NIQE's size.
- ``PrefetchGenerator`` (``prefetch_mode: cpu``): its daemon thread, caught inside a torch operation when the
  process ends, aborted it (SIGABRT, most often rank 1 of a torchrun); ours is stopped at exit
  (``flare_sr/data/prefetch.py``).
"""
import argparse
import contextlib
import functools
import importlib.metadata
import io
import math
import os
import subprocess
import sys
import types
from os import path as osp

import basicsr.data.paired_image_dataset
import basicsr.data.prefetch_dataloader
import basicsr.test
import basicsr.train
import basicsr.utils.misc
import basicsr.utils.options
import torch
import torch.distributed as dist
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from flare_sr.data.prefetch import StoppablePrefetchGenerator
from flare_sr.data.sampling import ResumableSampler
from flare_sr.errors import ArgumentParser, FlareSRError, expand_home
from flare_sr.metrics.mask_inputs import check_mask_inputs
from flare_sr.metrics.niqe_size import MIN_SIDE, check_metric_sizes, checked_niqe, checked_size
from flare_sr.utils.atomic import inside
from flare_sr.utils.checkpoint import (check_state_types, later_checkpoints, latest_training_state, load_training_state,
                                       load_weights_only, misfit, network_state_dict)
from flare_sr.utils.hardware import check_launcher_env, choose_backend, fit_to_hardware, warn
from flare_sr.utils.img_util import peek_size
from flare_sr.utils.optim import OPTIMIZERS, SCHEDULERS, build_scheduler
from flare_sr.utils.options_check import (DATASET_PATHS, build_network_quietly, check_options, check_parseable,
                                          load_option_file)
from flare_sr.utils.precision import PRECISIONS
from flare_sr.utils.run_folder import archive, check_name, lock_run, set_aside
from flare_sr.utils.safe_yaml import OrderedSafeLoader, load_yaml

_MARK = '_flare_sr_fixes_applied'


BASICSR_VERSION = '1.4.2'  # the version these wrappers were written against


def check_basicsr_version(installed=None):
    """One line instead of a wrapper that silently patches the wrong functions of another BasicSR."""
    installed = installed or importlib.metadata.version('basicsr')
    if installed != BASICSR_VERSION:
        raise FlareSRError(f'basicsr {installed} is installed, but flare_sr needs basicsr=={BASICSR_VERSION} '
                           f'(its fixes wrap that version): '
                           f'pip install --no-build-isolation basicsr=={BASICSR_VERSION}')


def apply():
    """Check the BasicSR version, then install all wrappers (once per process)."""
    check_basicsr_version()
    if getattr(basicsr.train, _MARK, False):
        return
    basicsr.utils.options.ordered_yaml = _wrap_ordered_yaml(basicsr.utils.options.ordered_yaml)
    basicsr.utils.options.init_dist = _wrap_init_dist(basicsr.utils.options.init_dist)
    basicsr.train.parse_options = _wrap_parse_options(basicsr.train.parse_options)
    basicsr.test.parse_options = _wrap_parse_options(basicsr.test.parse_options)
    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.create_train_val_dataloader = _wrap_create_train_val_dataloader(
        basicsr.train.create_train_val_dataloader)
    basicsr.train.EnlargedSampler = _choose_train_sampler
    METRIC_REGISTRY._obj_map['calculate_niqe'] = checked_niqe(METRIC_REGISTRY.get('calculate_niqe'))
    for metric_type in MIN_SIDE:
        METRIC_REGISTRY._obj_map[metric_type] = checked_size(metric_type, METRIC_REGISTRY.get(metric_type))
    for reader in ('paired_paths_from_meta_info_file', 'paired_paths_from_lmdb'):  # what PairedImageDataset calls
        setattr(basicsr.data.paired_image_dataset, reader,
                _without_bom(getattr(basicsr.data.paired_image_dataset, reader)))
    basicsr.utils.misc.mkdir_and_rename = basicsr.train.mkdir_and_rename = _wrap_mkdir_and_rename(
        basicsr.utils.misc.mkdir_and_rename)  # misc's make_exp_dirs and train's tb_logger folder
    basicsr.train.copy_opt_file = _wrap_copy_opt_file(basicsr.train.copy_opt_file)
    basicsr.data.prefetch_dataloader.PrefetchGenerator = StoppablePrefetchGenerator  # PrefetchDataLoader.__iter__'s
    setattr(basicsr.train, _MARK, True)


# ----------------------------------------------------------------------------------------------
# command line and options
class TrainArgumentParser(ArgumentParser):
    """The parser BasicSR's ``parse_options`` builds for train.py, with the project's error format and help:
    ``--local-rank`` (what torch.distributed.launch passes) beside BasicSR's ``--local_rank``."""

    def add_argument(self, *names, **kwargs):
        if names == ('--local_rank', ):
            names = ('--local_rank', '--local-rank')
            kwargs.setdefault('help', "this process's rank on its machine (set by the launcher)")
        elif names == ('--auto_resume', ):
            kwargs.setdefault('help', 'resume from the newest state in experiments/<name>/training_states')
        return super().add_argument(*names, **kwargs)


class TestArgumentParser(TrainArgumentParser):
    """test.py's: also ``--precision`` (overrides ``val.precision``); ``--auto_resume`` (BasicSR reads it, but it
    means nothing in a test) is left out of the help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        super().add_argument('--precision', choices=PRECISIONS,
                             help='network precision (overrides val.precision; auto: bf16 where native, else fp32)')

    def add_argument(self, *names, **kwargs):
        if names == ('--auto_resume', ):
            kwargs['help'] = argparse.SUPPRESS
        return super().add_argument(*names, **kwargs)


def option_path_from_argv(argv=None):
    """The ``-opt`` value of a command line (a leading ``~`` expanded, as the parser does), or None."""
    argv = sys.argv[1:] if argv is None else argv
    for index, arg in enumerate(argv):
        if arg == '-opt' and index + 1 < len(argv):
            return expand_home(argv[index + 1])
        if arg.startswith('-opt='):
            return expand_home(arg.split('=', 1)[1])
    return None


def help_requested(argv=None):
    """Whether the command line asks for ``--help`` (BasicSR's parser prints it; nothing else is read)."""
    argv = sys.argv[1:] if argv is None else argv
    return '-h' in argv or '--help' in argv


def force_yml_from_argv(argv=None):
    """The ``--force_yml`` entries of a command line (BasicSR's ``nargs='+'``), or []."""
    argv = sys.argv[1:] if argv is None else argv
    if '--force_yml' not in argv:
        return []
    entries = []
    for arg in argv[argv.index('--force_yml') + 1:]:
        if arg.startswith('-'):
            break
        entries.append(arg)
    return entries


def _wrap_parse_options(parse_options):

    @functools.wraps(parse_options)
    def wrapper(root_path, is_train=True):
        option_path = option_path_from_argv()
        if option_path is not None and not help_requested():  # else the parser prints --help or wants -opt
            check_parseable(load_option_file(option_path), option_path, force_yml_from_argv(), is_train)
        # parse_options builds its parser as argparse.ArgumentParser(): the only use of argparse in that module
        basicsr.utils.options.argparse = types.SimpleNamespace(
            ArgumentParser=TrainArgumentParser if is_train else TestArgumentParser)
        # A refused run prints its one error line only: what BasicSR prints while parsing ("Disable distributed.")
        # and the checker's notes and warnings are held back and printed once the options are accepted.
        held_out, held_err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(held_out):
                opt, args = parse_options(root_path, is_train)
        except SystemExit as stop:
            if not stop.code:  # --help
                sys.stdout.write(held_out.getvalue())
            raise
        if getattr(args, 'precision', None):
            opt['val'] = dict(opt.get('val') or {}, precision=args.precision)
        # once, on what BasicSR parsed (--force_yml included), before train_pipeline creates any folder
        with open(os.devnull, 'w') as devnull, contextlib.redirect_stderr(held_err):
            check_options(opt, option_path, is_train, stream=None if opt['rank'] == 0 else devnull)
            for message in fit_to_hardware(opt, torch.cuda.device_count()):
                warn(message, opt['rank'])
            _check_dataset_names(opt)
            _check_scored_inputs(opt, option_path)
            if is_train and 'debug' in opt['name']:
                warn(debug_name_warning(opt['name'], args.debug), opt['rank'])
            _claim_run_folders(opt, option_path, root_path, is_train)
        sys.stdout.write(held_out.getvalue())
        sys.stdout.flush()
        sys.stderr.write(held_err.getvalue())
        sys.stderr.flush()
        # keys BasicSR reads only when it validates or logs (a KeyError after the iterations): BasicSR's defaults
        val = opt.setdefault('val', {}) if not is_train else opt.get('val')
        if isinstance(val, dict):
            val.setdefault('save_img', False)
            val.setdefault('suffix', None)
        if is_train:
            opt['logger'].setdefault('use_tb_logger', False)
            _TRAINING_RUN['opt'] = opt
        return opt, args

    return wrapper


_TRAINING_RUN = {}  # 'opt': this process's training options, once parse_options accepted them (for resume_hint)


def resume_hint():
    """What a training run stopped by Ctrl-C goes on from: ``'the same command goes on from iteration 400
    (experiments/<name>/training_states/400.state)'`` (``--auto_resume`` added when the run had none), or that no
    training state was saved yet; None before the options were accepted, and on ranks other than 0."""
    opt = _TRAINING_RUN.get('opt')
    if opt is None or opt['rank'] != 0:
        return None
    command = 'the same command' + ('' if opt['auto_resume'] else ' with --auto_resume')
    state = latest_training_state(opt['path']['training_states'])
    if state is None:
        return (f"no training state was saved yet (logger.save_checkpoint_freq: "
                f"{opt['logger']['save_checkpoint_freq']}): the same command starts again from iteration 0")
    shown = osp.relpath(state) if not osp.relpath(state).startswith('..') else state
    return f'{command} goes on from iteration {osp.basename(state).split(".")[0]} ({shown})'


def debug_name_warning(name, by_flag=False):
    """BasicSR's rule for a training ``name`` holding ``debug``, said once (it applies it silently)."""
    cause = '--debug adds debug_ to the name' if by_flag else "for a normal run, choose a name without 'debug'"
    return (f"name {name!r} contains 'debug', so BasicSR validates and saves a checkpoint every 8 iterations, logs "
            f'every iteration and writes no TensorBoard or wandb log (over val.val_freq, logger.save_checkpoint_freq, '
            f'logger.print_freq and logger.use_tb_logger); {cause}')


def _without_bom(read_paths):
    """A BasicSR path-list reader whose paths lose the UTF-8 BOM a Windows editor puts before a meta file's first
    name (BasicSR reads the file as it is; CRLF it strips itself)."""

    @functools.wraps(read_paths)
    def wrapper(*args, **kwargs):
        return [{key: value.replace('\ufeff', '') for key, value in paths.items()}
                for paths in read_paths(*args, **kwargs)]

    return wrapper


def _check_scored_inputs(opt, option_path):
    """Each validation or test set's pairs against ``val.metrics``, before any run folder exists (not at the first
    validation): images too small for a metric (``check_metric_sizes``) and masks that are missing or of another size
    (``check_mask_inputs``). Sets whose dataset lists its pairs without reading them (``select_items``); the others
    are checked when scored."""
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        dataset_cls = DATASET_REGISTRY.get(dataset_opt['type'])
        if phase.split('_')[0] == 'train' or not hasattr(dataset_cls, 'select_items'):
            continue
        dataset = types.SimpleNamespace(items=dataset_cls.select_items(dict(dataset_opt, phase=phase), quiet=True),
                                        opt=dataset_opt)
        try:
            check_metric_sizes(opt.get('val'), dataset, peek_size)
            check_mask_inputs(opt.get('val'), dataset)
        except FlareSRError as error:  # named as the option checker names its lines
            raise FlareSRError(f'{option_path}: {error}') from None


def _check_dataset_names(opt):
    """Validation images, logs and best metrics are kept apart by dataset name: two sets must not share one, and
    no set may be named as a folder another set writes (test.py: ``<name>_compare/``, ``<name>_flare/``)."""
    seen, folders = {}, {}
    save_flare = bool((opt.get('val') or {}).get('save_flare'))
    kinds = [('_compare', 'comparisons')] + [('_flare', 'flare layers')] * save_flare
    sets = [(phase, dataset_opt.get('name')) for phase, dataset_opt in (opt.get('datasets') or {}).items()
            if phase.split('_')[0] != 'train']
    for phase, name in sets:
        if name in seen:
            raise FlareSRError(f'datasets.{phase}.name: {name!r} is also the name of datasets.{seen[name]}; give '
                               'each validation set its own name (its images and metrics are kept under it)')
        seen[name] = phase
        for ending, what in kinds:
            folders[f'{name}{ending}'] = (phase, name, what)
    for phase, name in sets:
        if name in folders:
            owner, owner_name, what = folders[name]
            raise FlareSRError(f'datasets.{phase}.name: {name!r} is the folder visualization/{name}/ where '
                               f'datasets.{owner} ({owner_name!r}) saves its {what}; rename one of them')


# ----------------------------------------------------------------------------------------------
# run folders
def _claim_run_folders(opt, option_path, root_path, is_train):
    """``name``, each validation set's ``name`` and ``val.suffix`` (parts of the paths the run writes) are one
    folder name each; a test refuses inputs inside ``results/<name>``, which it archives; rank 0 locks
    ``experiments/<name>`` (which also covers ``tb_logger/<name>``) or ``results/<name>``. All before BasicSR
    archives or creates anything."""
    top = 'experiments' if is_train else 'results'
    try:
        check_name(opt['name'], 'name', f'{top}/' + (' and tb_logger/' if is_train else ''))
        for phase, dataset_opt in opt['datasets'].items():
            if phase.split('_')[0] != 'train':
                check_name(dataset_opt.get('name'), f'datasets.{phase}.name', f'{top}/<name>/visualization/')
        suffix = (opt.get('val') or {}).get('suffix')
        if suffix is not None:
            check_name(str(suffix), 'val.suffix', f'{top}/<name>/visualization/ (as <image>_<suffix>.png)')
    except FlareSRError as error:
        raise FlareSRError(f'{option_path}: {error}') from None
    if not is_train:
        check_inputs_outside(opt, opt['path']['results_root'], 'this test run')
    if opt['rank'] == 0:
        lock_run(osp.join(root_path, top), opt['name'])


def check_inputs_outside(opt, folder, run):
    """A new run renames its existing ``folder`` (``experiments/<name>``, ``results/<name>``) to ``*_archived_*``
    before it reads its inputs: a network file or dataset there would be gone. One FlareSRError naming the key."""
    if not osp.isdir(folder):
        return
    inputs = [(f'path.{key}', value) for key, value in opt['path'].items()
              if key.startswith('pretrain_network_') and isinstance(value, str)]
    inputs += [(f'datasets.{phase}.{key}', dataset_opt[key]) for phase, dataset_opt in opt['datasets'].items()
               for key in DATASET_PATHS if isinstance(dataset_opt.get(key), str)]
    for key, value in inputs:
        if inside(value, folder) or osp.abspath(value).startswith(osp.join(osp.abspath(folder), '')):  # or via a link
            raise FlareSRError(f'{key}: {value} lies in {folder}, which {run} archives (renames to *_archived_*) '
                               'before reading it; copy it out of there first, or give the run another name')


def _wrap_mkdir_and_rename(mkdir_and_rename):

    @functools.wraps(mkdir_and_rename)
    def wrapper(path):
        archived = archive(path)  # a free name, even for two runs in one second
        if archived is not None:
            print(f'Path already exists. Rename it to {archived}', flush=True)
        mkdir_and_rename(path)  # now only creates it

    return wrapper


def _option_text(path):
    """An option file's text without the header BasicSR's ``copy_opt_file`` puts over its copy (4 lines)."""
    with open(path, encoding='utf-8', errors='replace') as handle:
        lines = handle.readlines()
    return ''.join(lines[4:] if lines[:1] and lines[0].startswith('# GENERATE TIME:') else lines)


def _wrap_copy_opt_file(copy_opt_file):

    @functools.wraps(copy_opt_file)
    def wrapper(opt_file, experiments_root):
        copy = osp.join(experiments_root, osp.basename(opt_file))
        # a resumed run with edited options keeps the copy the run was started with (BasicSR overwrote it)
        try:
            if get_dist_info()[0] == 0 and osp.isfile(copy) and _option_text(copy) != _option_text(opt_file):
                archive(copy)
            copy_opt_file(opt_file, experiments_root)
        except OSError as error:  # a full disk, a read-only experiments/
            raise FlareSRError(f'cannot copy the option file to {copy}: {error.strerror or error}') from None

    return wrapper


def _wrap_ordered_yaml(ordered_yaml):

    @functools.wraps(ordered_yaml)
    def wrapper():
        return OrderedSafeLoader, ordered_yaml()[1]  # BasicSR's Dumper: writing builds nothing

    return wrapper


# ----------------------------------------------------------------------------------------------
# distributed start-up
def _dist_params_from_option_file():
    """``dist_params`` and ``num_gpu`` of the option file on the command line (init_dist is not given them)."""
    path = option_path_from_argv()
    if path is None or not osp.isfile(path):
        return {}, 'auto'
    with open(path, encoding='utf-8-sig') as handle:
        opt = load_yaml(handle) or {}
    return dict(opt.get('dist_params') or {}), opt.get('num_gpu', 'auto')


def _export_slurm_env(port):
    """Translate SLURM's variables into the env:// ones torch.distributed reads."""
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_ADDR', subprocess.getoutput(
        f"scontrol show hostname {os.environ['SLURM_NODELIST']} | head -n1"))
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')


def _wrap_init_dist(init_dist):

    @functools.wraps(init_dist)
    def wrapper(launcher, backend=None, **kwargs):
        check_launcher_env(launcher)
        params, num_gpu = _dist_params_from_option_file()
        params.update(kwargs)
        backend, warning = choose_backend(backend or params.pop('backend', None), num_gpu, torch.cuda.device_count())
        if warning:
            warn(warning)
        params.pop('backend', None)
        if backend == 'nccl':  # BasicSR's own path is right for GPUs
            init_dist(launcher, backend=backend, **(params if launcher == 'slurm' else {}))
        else:
            if launcher == 'slurm':
                _export_slurm_env(params.get('port'))
            if torch.cuda.is_available() and num_gpu != 0:
                torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
            dist.init_process_group(backend=backend)
        if dist.get_rank() == 0:
            print(f'torch.distributed: {backend} backend, {dist.get_world_size()} processes', flush=True)

    return wrapper


# ----------------------------------------------------------------------------------------------
# resume
def resume_map_location(opt):
    """Where resumed tensors go: the current CUDA device when the run uses GPUs, else the CPU."""
    if opt['num_gpu'] != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def load_resume_state(opt):
    """Replacement for ``basicsr.train.load_resume_state``: CPU-safe and independent of the working directory."""
    if opt['auto_resume']:
        state_path = latest_training_state(opt['path']['training_states'])
        if state_path is not None:
            opt['path']['resume_state'] = state_path
    else:
        state_path = opt['path'].get('resume_state')
    if state_path is None:
        check_inputs_outside(opt, opt['path']['experiments_root'], 'this new run')
        return None
    try:
        state = load_training_state(state_path, map_location=resume_map_location(opt))
    except FlareSRError as error:
        if not opt['auto_resume']:
            raise
        raise FlareSRError(f'{error}; --auto_resume picked it as the latest state: move it away to resume from the '
                           'one before') from None
    _check_state_experiment(opt, state_path, state['iter'])
    saved_by = state.get('model_type')
    if saved_by is not None and saved_by != opt['model_type']:
        raise FlareSRError(f'path.resume_state: {state_path} was saved by {saved_by}, but model_type is '
                           f"{opt['model_type']}; resume with the options it was trained with, or start from its "
                           'weights with path.pretrain_network_g')
    note = _check_total_iter(opt, state_path, state['iter'])
    _check_state_schedule(opt, state_path, state)
    said = io.StringIO()
    with contextlib.redirect_stdout(said):  # "Set pretrain_network_g to ...": said once the networks fit
        basicsr.train.check_resume(opt, state['iter'])
    _check_state_networks(opt, state_path, state['iter'])
    if note and opt['rank'] == 0:  # only once nothing refused the state
        print(note, flush=True)
    set_aside_folder = None
    if not opt['auto_resume'] and opt['rank'] == 0:
        set_aside_folder = _set_later_checkpoints_aside(opt, state_path, state['iter'])
    sys.stdout.write(said.getvalue())
    # later_set_aside: where metrics.json's later validations go too (MetricsFile, at the first validation)
    opt['resumed_from'] = {'epoch': state['epoch'], 'iter': state['iter'], 'epoch_layout': state.get('epoch_layout'),
                           'later_set_aside': set_aside_folder}
    return state


def _set_later_checkpoints_aside(opt, state_path, state_iter):
    """A run resumed from an earlier state than its last trains over the later iterations and overwrote their
    checkpoints and states, without a word: they are moved into a folder of their own first, with one warning.
    Returns that folder, or None when there were none."""
    root = opt['path']['experiments_root']
    later = later_checkpoints(root, state_iter)
    if not later:
        return None
    folder = set_aside(root, later, f'after_iter_{state_iter}')
    warn(f'path.resume_state: {state_path} is at iteration {state_iter}, and this run had saved later ones: '
         f'their {len(later)} files (checkpoints, training states, *_latest.pth) were moved to {folder}, since '
         'training on from it writes those names again', rank=0)
    return folder


def _check_state_experiment(opt, state_path, state_iter):
    """A state in another experiment's ``training_states/`` is refused: BasicSR resumed it with the network files of
    this run's ``experiments/<name>/models/`` (another run's weights under its optimizer state, silently, or "missing")
    and went on overwriting this run's later checkpoints. A state kept elsewhere (a copy) resumes as before."""
    state_dir = osp.dirname(osp.abspath(state_path))
    if osp.basename(state_dir) != 'training_states' or \
            osp.realpath(state_dir) == osp.realpath(opt['path']['training_states']):
        return
    other = osp.dirname(state_dir)
    raise FlareSRError(f"path.resume_state: {state_path} is a training state of the experiment {other}, but this run "
                       f"is {opt['path']['experiments_root']} (name: {opt['name']}): a resumed run takes its networks "
                       f'from its own models/ and goes on writing there; resume it under name: {osp.basename(other)}, '
                       f'or start a new run from its weights (path.pretrain_network_g: '
                       f"{osp.join(other, 'models', f'net_g_{state_iter}.pth')})")


def _check_total_iter(opt, state_path, state_iter):
    """A state past ``train.total_iter`` is refused (BasicSR trained nothing, said nothing and recorded the state's
    weights as iteration ``total_iter``); for one at ``total_iter``, which only finishes the run, the ``note:`` line
    that says so (None otherwise)."""
    total = (opt.get('train') or {}).get('total_iter')
    if total is None or state_iter < total:
        return None
    if state_iter > total:
        network = osp.join(opt['path']['models'], f'net_g_{state_iter}.pth')
        raise FlareSRError(f'path.resume_state: {state_path} is at iteration {state_iter}, past train.total_iter '
                           f'{int(total)}: there is nothing to train; set train.total_iter above {state_iter} to '
                           f'train on, or test its weights ({network}) with test.py')
    return (f'note: path.resume_state: {state_path} is at train.total_iter ({int(total)}): nothing left to train; '
            'its networks are saved as *_latest.pth and validated')


# What a scheduler's state_dict holds besides its settings: its position and the rates it derived.
SCHEDULER_PROGRESS = ('base_lrs', 'last_epoch', '_step_count', '_is_initial', '_get_lr_called_within_step', '_last_lr',
                      'verbose', 'cumulative_period')  # cumulative_period: derived from periods


def _plain_setting(value):
    """A scheduler setting comparable across a save and a load, as the options write it: milestones (a Counter) as
    a sorted list, tuples as lists."""
    if isinstance(value, dict):
        return sorted(key for key, count in value.items() for _ in range(count))
    if isinstance(value, (list, tuple)):
        return [_plain_setting(item) for item in value]
    return value


def _same_setting(saved, given):
    """Whether an optimizer setting saved in a state equals the options' (numbers to rounding, tuples as lists)."""
    saved, given = _plain_setting(saved), _plain_setting(given)
    if isinstance(saved, list) and isinstance(given, list):
        return len(saved) == len(given) and all(_same_setting(a, b) for a, b in zip(saved, given))
    if isinstance(saved, (int, float)) and isinstance(given, (int, float)) and not isinstance(given, bool):
        return math.isclose(saved, given, rel_tol=1e-9, abs_tol=1e-12)
    return saved == given


def _check_state_schedule(opt, state_path, state):
    """The learning rates and the schedule a state was saved with are what its resume trains with: torch loads the
    saved ``lr`` and scheduler settings over the options'. So options that changed them are refused in one line
    naming each key: a raised ``total_iter`` under ``LinearLR`` trained on with a negative rate, a longer
    ``periods`` crashed after the old one (TypeError), a new ``lr`` or ``milestones`` was silently ignored. Another
    optimizer or scheduler type is refused here too, before BasicSR logs anything."""
    train = opt.get('train') or {}
    scheduler_opt = train.get('scheduler') or {'type': 'Constant'}
    weights = osp.join(opt['path']['models'], f"net_g_{state['iter']}.pth")
    names = [key for key in ('optim_g', 'optim_d') if isinstance(train.get(key), dict)]
    # the model refuses other types too, but only once BasicSR has logged its start (and written its log file)
    built = {'optimizer': [OPTIMIZERS.get(train[name].get('type')) for name in names],
             'scheduler': [SCHEDULERS.get(scheduler_opt.get('type'))] * len(names)}
    for kind, classes in built.items():
        own_types = [each.__name__ for each in classes if each is not None]
        if len(own_types) == len(names) == len(state.get(f'{kind}_types') or []):  # other counts: the model's line
            check_state_types(state, kind, own_types, f'path.resume_state: {state_path}', weights)
    differences = []
    for name, saved in zip(names, state.get('optimizers') or []):
        group = (saved.get('param_groups') or [{}])[0]
        saved_lr, lr = group.get('initial_lr', group.get('lr')), train[name].get('lr')
        if isinstance(lr, (int, float)) and isinstance(saved_lr, (int, float)) and not math.isclose(lr, saved_lr):
            differences.append(f'train.{name}.lr {saved_lr:g} (the options give {lr:g})')
        for key, value in train[name].items():  # betas, weight_decay, momentum, ...: loaded over the options too
            if key not in ('type', 'lr') and key in group and not _same_setting(group[key], value):
                differences.append(f'train.{name}.{key} {_plain_setting(group[key])} (the options give '
                                   f'{_plain_setting(value)})')
    saved_types, saved_schedulers = state.get('scheduler_types'), state.get('schedulers') or []
    kind = SCHEDULERS.get(scheduler_opt.get('type'))
    if saved_schedulers and kind is not None and saved_types and saved_types[0] == kind.__name__:
        # a scheduler of another type is refused by the model, with its own line
        fresh = build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), scheduler_opt,
                                train.get('total_iter')).state_dict()
        for key, value in fresh.items():
            saved = saved_schedulers[0].get(key)
            if key in SCHEDULER_PROGRESS or saved is None or _plain_setting(saved) == _plain_setting(value):
                continue
            # the forks' LinearLR and VibrateLR take train.total_iter unless the scheduler gives its own
            key_path = 'train.total_iter' if key == 'total_iter' and key not in scheduler_opt else \
                f'train.scheduler.{key}'
            differences.append(f'{key_path} {_plain_setting(saved)} (the options give {_plain_setting(value)})')
    if differences:
        raise FlareSRError(f'path.resume_state: {state_path} was saved with {"; ".join(differences)}: a resumed run '
                           'keeps the learning rates and the schedule of its state (torch loads them over the '
                           'options), so it would not train as these options say; resume with the settings the run '
                           f"was trained with (copied in {opt['path']['experiments_root']}), or start a new run under "
                           f'another name from its weights (path.pretrain_network_g: {weights})')


def _check_state_networks(opt, state_path, state_iter):
    """Each network the model builds fits the network file saved with the state (``check_resume`` points
    ``path.pretrain_network_<x>`` at it, except for ``path.ignore_resume_networks``). BasicSR blamed
    ``path.pretrain_network_g`` and advised ``strict_load_g: false``, which resumed a mostly random network over
    the checkpoint; the cause is that the options changed since the state was saved."""
    model_cls = MODEL_REGISTRY.get(opt['model_type'])
    keys = getattr(model_cls, 'networks', None) or [key for key in opt if key.startswith('network_')]
    for key in keys:
        role = key[len('network_'):]
        path = opt['path'].get(f'pretrain_network_{role}')
        saved_with_state = osp.join(opt['path']['models'], f'net_{role}_{state_iter}.pth')
        if not isinstance(opt.get(key), dict) or path != saved_with_state:
            continue  # not built, or an ignore_resume_networks entry (its own file, checked as options)
        if not osp.isfile(path):
            raise FlareSRError(f'path.resume_state: {state_path}: its network file {path} is missing')
        where = f'path.resume_state: {state_path}: network file'
        state_dict = network_state_dict(load_weights_only(path, where), path,
                                        opt['path'].get(f'param_key_{role}') or 'params', where,
                                        options_of=f'path.pretrain_network_{role}')
        net = build_network_quietly(opt[key])
        differences, _ = misfit(net, state_dict)
        if differences:
            raise FlareSRError(
                f'path.resume_state: {state_path}: the options changed since it was saved: {key} '
                f'({type(net).__name__}) does not fit its network file {path}: {", ".join(differences)}; resume '
                f"with the options the run was trained with (copied in {opt['path']['experiments_root']}), or train "
                'the changed network as a new run under another name')


# ----------------------------------------------------------------------------------------------
# data order
def _is_flare_sr_dataset(dataset):
    return type(dataset).__module__.startswith('flare_sr.')


def _choose_train_sampler(dataset, num_replicas, rank, ratio=1):
    """Stands in for BasicSR's EnlargedSampler: our datasets accept sample keys, so they get ResumableSampler."""
    sampler_class = ResumableSampler if _is_flare_sr_dataset(dataset) else EnlargedSampler
    return sampler_class(dataset, num_replicas, rank, ratio)


def _registered_in_flare_sr(dataset_type):
    try:
        return DATASET_REGISTRY.get(dataset_type).__module__.startswith('flare_sr.')
    except KeyError:
        return False


def resumed_epoch_skip(iters_done, epoch, iters_per_epoch, batch_size):
    """Samples of ``epoch`` this rank already trained on when the run stopped after ``iters_done`` iterations.

    Every epoch runs exactly ``iters_per_epoch`` iterations (the loader drops the partial batch), so
    epoch ``e`` covers iterations ``e*n+1 .. (e+1)*n``. None means the numbers do not fit (the batch
    size or the data changed since the checkpoint).
    """
    consumed_iters = iters_done - epoch * iters_per_epoch
    if not 0 <= consumed_iters <= iters_per_epoch:
        return None
    return consumed_iters * batch_size


def _wrap_create_train_val_dataloader(create_train_val_dataloader):

    @functools.wraps(create_train_val_dataloader)
    def wrapper(opt, logger):
        train_opt = opt['datasets'].get('train')
        if train_opt is not None and _registered_in_flare_sr(train_opt['type']):
            train_opt['seed'] = opt['manual_seed']
        train_loader, sampler, val_loaders, total_epochs, total_iters = create_train_val_dataloader(opt, logger)
        # The loader's own generator seeds its workers, so building an iterator (every epoch, and
        # once more on resume) leaves the global torch RNG, which the model uses, untouched.
        train_loader.generator = torch.Generator().manual_seed(int(opt['manual_seed']) + int(opt['rank']))
        iters_per_epoch = len(train_loader)
        if iters_per_epoch == 0:  # BasicSR drops the last partial batch: no batch at all, then a ZeroDivisionError
            raise FlareSRError(f"datasets.train: {len(train_loader.dataset)} samples (x dataset_enlarge_ratio) make no "
                               f"full batch of batch_size_per_gpu {train_loader.batch_size}: lower batch_size_per_gpu "
                               "or add pairs")
        total_epochs = math.ceil(total_iters / iters_per_epoch)
        # kept in every training state (FlareBaseModel), so that a resume knows how its epoch was cut
        opt['epoch_layout'] = {'batch_size_per_gpu': train_loader.batch_size, 'iters_per_epoch': iters_per_epoch}
        resumed = opt.get('resumed_from')
        if resumed and hasattr(sampler, 'skip_next'):
            saved = resumed.get('epoch_layout')  # None in states saved before it was kept
            skip = resumed_epoch_skip(resumed['iter'], resumed['epoch'], iters_per_epoch, train_loader.batch_size)
            if saved is not None and saved != opt['epoch_layout']:
                logger.warning(f"Resume: the batch size or the training set changed since iteration {resumed['iter']} "
                               f"(then {saved['batch_size_per_gpu']} per batch, {saved['iters_per_epoch']} iterations "
                               f'per epoch; now {train_loader.batch_size}, {iters_per_epoch}); epoch '
                               f"{resumed['epoch']} restarts from its first sample.")
            elif skip is None:
                logger.warning(f"Resume: iteration {resumed['iter']} is not inside epoch {resumed['epoch']} "
                               'with the current batch size; the epoch restarts from its first sample.')
            else:
                sampler.skip_next(skip, resumed['epoch'])
                logger.info(f"Resume: skipping the {skip} samples of epoch {resumed['epoch']} already trained on.")
        return train_loader, sampler, val_loaders, total_epochs, total_iters

    return wrapper
