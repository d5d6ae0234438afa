"""Check an option file before BasicSR parses it, so a typo fails in a second instead of hours in.

BasicSR reads options with ``dict.get`` and a default, so ``lrr: 1e-4`` is silently ignored and
``lr: 1e-4`` (a *string* in YAML 1.1) crashes deep inside the optimizer. ``check_option_file`` reports
every unknown key, wrong type and missing path as one line naming the file and the key path, e.g.
``options/x.yml: train.optim_g.lrr: unknown key (did you mean lr?)``.

Where the keys come from: networks, losses, metrics, optimizers and schedulers by ``inspect`` of the
class they build (so a new arch argument needs no edit here); datasets from the set below plus every
``opt['key']`` / ``opt.get('key')`` their source reads; the other sections from the schemas below.
"""
import difflib
import inspect
import os
import re
from os import path as osp

from flare_sr.errors import FlareSRError

NUMBER, INT, BOOL, STR, DICT, LIST = 'a number', 'an integer', 'true or false', 'a string', 'a mapping', 'a list'

TOP_LEVEL = {
    'name': STR, 'model_type': STR, 'scale': INT, 'num_gpu': (INT, 'auto'), 'manual_seed': INT,
    'find_unused_parameters': BOOL, 'datasets': DICT, 'path': DICT, 'train': DICT, 'val': DICT, 'logger': DICT,
    'dist_params': DICT, 'stage3_source': DICT, 'cascade': DICT,
    'residual': BOOL,  # Pix2PixModel: the generator's output is added to the input (flare_sr/models/main_net.py)
}
DATASET = {
    'type': STR, 'name': STR, 'phase': STR, 'dataroot_lq': STR, 'dataroot_gt': STR, 'io_backend': DICT,
    'meta_info_file': STR, 'meta_csv': STR, 'fold': (STR, INT, LIST), 'gt_size': INT, 'use_hflip': BOOL,
    'use_rot': BOOL,
    'seed': INT, 'batch_size_per_gpu': INT, 'num_worker_per_gpu': INT, 'dataset_enlarge_ratio': INT,
    'prefetch_mode': ('cpu', 'cuda', None), 'pin_memory': BOOL, 'persistent_workers': BOOL, 'num_prefetch_queue': INT,
    'filename_tmpl': STR, 'scale': INT,
}
PATH = {'resume_state': (STR, None), 'ignore_resume_networks': (LIST, None)}
PATH_PREFIXES = {'pretrain_network_': (STR, None), 'strict_load_': BOOL, 'param_key_': (STR, None)}
TRAIN = {
    'total_iter': INT, 'warmup_iter': INT, 'ema_decay': NUMBER, 'optim_g': DICT, 'optim_d': DICT, 'scheduler': DICT,
    'pixel_opt': DICT, 'perceptual_opt': DICT, 'gan_opt': DICT, 'net_d_iters': INT, 'net_d_init_iters': INT,
    'amp': (BOOL, 'bf16', 'fp16'), 'nonfinite': ('stop', 'skip'), 'grad_clip': (NUMBER, None),
    'channels_last': BOOL,
    'fft_opt': DICT, 'saturation_mask': (DICT, BOOL),  # flare_sr/models/flare_base.py reconstruction_losses
}
VAL = {'val_freq': INT, 'save_img': BOOL, 'suffix': (STR, None), 'pbar': BOOL, 'metrics': DICT, 'tile': DICT,
       'tb_images': INT, 'restore_light_source': (DICT, BOOL)}
TILE = {'size': (INT, None), 'overlap': INT, 'batch': INT, 'self_ensemble': BOOL}
LOGGER = {'print_freq': INT, 'save_checkpoint_freq': INT, 'use_tb_logger': BOOL, 'wandb': DICT}
WANDB = {'project': (STR, None), 'resume_id': (STR, None)}
DIST_PARAMS = {'backend': ('nccl', 'gloo', None), 'port': INT}
IO_BACKEND = {'type': ('disk', 'lmdb')}
# Consumed by flare_sr/data/stage_outputs.py (stage-III data = stage-I outputs of the training images).
STAGE3_SOURCE = {'main_opt': STR, 'main_checkpoint': STR, 'tile': DICT, 'dataroot_lq': STR, 'dataroot_gt': STR,
                 'meta_csv': (STR, None), 'fold': (STR, INT, LIST, None), 'patch_size': INT, 'stride': INT}
# Consumed by flare_sr/models/cascade_model.py.
CASCADE = {'use_main': BOOL, 'use_post': BOOL, 'main_residual': BOOL}
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
DATASET_PATHS = ('dataroot_lq', 'dataroot_gt', 'meta_info_file', 'meta_csv')


def load_option_file(path):
    """The YAML as BasicSR reads it (ordered), or a one-line FlareSRError for a missing or broken file."""
    import yaml
    from basicsr.utils.options import ordered_yaml

    if path is None:
        raise FlareSRError('no option file given: use -opt options/<name>.yml')
    if not osp.isfile(path):
        raise FlareSRError(f'{path}: option file not found')
    try:
        with open(path, encoding='utf-8') as handle:
            opt = yaml.load(handle, Loader=ordered_yaml()[0])
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


def check_option_file(path, is_train=True):
    """Load and check ``path``; raise one FlareSRError listing every problem found. Returns the options."""
    opt = load_option_file(path)
    problems = OptionChecker(is_train).check(opt)
    if problems:
        raise FlareSRError(f'{path}: ' + '; '.join(problems))
    return opt


def _matches(value, expected):
    if isinstance(expected, tuple):
        return any(_matches(value, each) for each in expected)
    if expected == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == BOOL:
        return isinstance(value, bool)
    if expected == STR:
        return isinstance(value, str)
    if expected == DICT:
        return isinstance(value, dict)
    if expected == LIST:
        return isinstance(value, (list, tuple))
    return value == expected  # a literal choice (including None)


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


class OptionChecker:
    """Collects problems as ``key.path: what is wrong`` strings."""

    def __init__(self, is_train):
        self.is_train = is_train
        self.problems = []

    def check(self, opt):
        self._keys('', opt, TOP_LEVEL, prefixes={'network_': DICT})
        for required in ('name', 'model_type', 'datasets'):
            if required not in opt:
                self.problems.append(f'{required}: missing')
        self._model_type(opt.get('model_type'))
        for key, value in opt.items():
            if key.startswith('network_') and isinstance(value, dict):
                self._registered('ARCH', key, value)
        self._datasets(opt.get('datasets'))
        self._path(opt.get('path') or {})
        if self.is_train:
            if not isinstance(opt.get('train'), dict):
                self.problems.append('train: missing (training needs a train section)')
            else:
                self._train(opt['train'])
            if not isinstance(opt.get('logger'), dict):
                self.problems.append('logger: missing (print_freq, save_checkpoint_freq, use_tb_logger)')
        if isinstance(opt.get('val'), dict):
            self._val(opt['val'])
        for key, schema in (('logger', LOGGER), ('dist_params', DIST_PARAMS), ('stage3_source', STAGE3_SOURCE),
                            ('cascade', CASCADE)):
            if isinstance(opt.get(key), dict):
                self._keys(key, opt[key], schema)
        if isinstance(opt.get('logger'), dict) and isinstance(opt['logger'].get('wandb'), dict):
            self._keys('logger.wandb', opt['logger']['wandb'], WANDB)
        if isinstance(opt.get('stage3_source'), dict) and isinstance(opt['stage3_source'].get('tile'), dict):
            self._keys('stage3_source.tile', opt['stage3_source']['tile'], TILE)
        return self.problems

    # ------------------------------------------------------------------ generic
    def _unknown(self, key_path, key, known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f' (did you mean {close[0]}?)' if close else ''
        self.problems.append(f'{key_path}: unknown key{hint}')

    def _value(self, key_path, value, expected):
        if _matches(value, expected):
            return
        got = f'the string {value!r}' if isinstance(value, str) else repr(value)
        hint = ''
        if isinstance(value, str) and re.fullmatch(r'[-+]?\d+(\.\d*)?[eE][-+]?\d+', value):
            hint = ' (YAML reads 1e-4 as text: write 1.0e-4)'
        self.problems.append(f'{key_path}: expected {_describe(expected)}, got {got}{hint}')

    def _keys(self, section, values, schema, prefixes=None):
        """Every key known (exactly or by prefix), every value of the expected type."""
        prefixes = prefixes or {}
        for key, value in values.items():
            key_path = f'{section}.{key}' if section else str(key)
            expected = schema.get(key)
            if expected is None:
                expected = next((kind for prefix, kind in prefixes.items() if str(key).startswith(prefix)), None)
            if expected is None:
                self._unknown(key_path, str(key), list(schema) + [f'{p}...' for p in prefixes])
            else:
                self._value(key_path, value, expected)

    def _constructor_keys(self, key_path, values, target, skip=('img', 'img2', 'img_lq', 'lq_path', 'gt_path')):
        """Keys against the named parameters of a constructor or function: unknown names, defaults' types.

        ``**kwargs`` is not taken as "anything goes": BasicSR's metrics accept it and ignore a misspelt key.
        """
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return
        by_name = {p.name: p for p in parameters
                   if p.name not in skip and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        for key, value in values.items():
            if key == 'type':
                continue
            if key not in by_name:
                self._unknown(f'{key_path}.{key}', key, list(by_name))
                continue
            expected = _type_of_default(by_name[key].default)
            if expected is not None and value is not None:
                self._value(f'{key_path}.{key}', value, expected)

    def _registered(self, kind, key_path, values):
        """``type`` in the BasicSR registry of ``kind``, other keys against that class's constructor."""
        from basicsr.utils import registry

        table = getattr(registry, f'{kind}_REGISTRY')
        type_name = values.get('type')
        if type_name is None:
            self.problems.append(f'{key_path}.type: missing')
            return None
        if type_name not in table:
            self._unknown_choice(f'{key_path}.type', type_name, list(table.keys()))
            return None
        target = table.get(type_name)
        self._constructor_keys(key_path, values, target)
        return target

    def _unknown_choice(self, key_path, value, choices):
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f' (did you mean {close[0]}?)' if close else f' (one of {", ".join(sorted(choices))})'
        self.problems.append(f'{key_path}: unknown {value!r}{hint}')

    def _existing_path(self, key_path, value):
        if isinstance(value, str) and not osp.exists(osp.expanduser(value)):
            self.problems.append(f'{key_path}: {value} does not exist (relative paths start at {os.getcwd()})')

    # ------------------------------------------------------------------ sections
    def _model_type(self, model_type):
        from basicsr.utils.registry import MODEL_REGISTRY

        if isinstance(model_type, str) and model_type not in MODEL_REGISTRY:
            self._unknown_choice('model_type', model_type, [k for k in MODEL_REGISTRY.keys() if 'Model' in k])

    def _datasets(self, datasets):
        if not isinstance(datasets, dict):
            return
        for phase, dataset_opt in datasets.items():
            key_path = f'datasets.{phase}'
            if str(phase).split('_')[0] not in ('train', 'val', 'test'):
                self.problems.append(f'{key_path}: unknown phase (use train, val or test, e.g. val_1)')
                continue
            if not isinstance(dataset_opt, dict):
                self._value(key_path, dataset_opt, DICT)
                continue
            self._dataset(key_path, dataset_opt)

    def _dataset(self, key_path, dataset_opt):
        from basicsr.utils.registry import DATASET_REGISTRY

        type_name = dataset_opt.get('type')
        if type_name not in DATASET_REGISTRY:
            self._unknown_choice(f'{key_path}.type', type_name, list(DATASET_REGISTRY.keys()))
            return
        known = dict(DATASET)
        for key in _keys_read_by(DATASET_REGISTRY.get(type_name)):
            known.setdefault(key, None)
        for key, value in dataset_opt.items():
            if key not in known:
                self._unknown(f'{key_path}.{key}', key, list(known))
            elif known[key] is not None:
                self._value(f'{key_path}.{key}', value, known[key])
        if isinstance(dataset_opt.get('io_backend'), dict):
            self._keys(f'{key_path}.io_backend', dataset_opt['io_backend'], IO_BACKEND)
        for key in DATASET_PATHS:
            self._existing_path(f'{key_path}.{key}', dataset_opt.get(key))
        if key_path.endswith('train'):
            for key in ('batch_size_per_gpu', 'num_worker_per_gpu'):
                if key not in dataset_opt:
                    self.problems.append(f'{key_path}.{key}: missing')

    def _path(self, paths):
        self._keys('path', paths, PATH, prefixes=PATH_PREFIXES)
        for key, value in paths.items():
            if key.startswith('pretrain_network_') or key == 'resume_state':
                self._existing_path(f'path.{key}', value)

    def _train(self, train):
        from basicsr.models import lr_scheduler

        self._keys('train', train, TRAIN)
        if 'total_iter' not in train:
            self.problems.append('train.total_iter: missing')
        for name in ('optim_g', 'optim_d'):
            if isinstance(train.get(name), dict):
                self._optimizer(f'train.{name}', train[name])
        scheduler = train.get('scheduler')
        if isinstance(scheduler, dict):
            kind = scheduler.get('type')
            if kind not in SCHEDULERS:
                self._unknown_choice('train.scheduler.type', kind, list(SCHEDULERS))
            else:
                cls = lr_scheduler.MultiStepRestartLR if 'MultiStep' in kind else lr_scheduler.CosineAnnealingRestartLR
                self._constructor_keys('train.scheduler', scheduler, cls, skip=('optimizer', 'last_epoch'))
        for name in ('pixel_opt', 'perceptual_opt', 'gan_opt', 'fft_opt'):
            if isinstance(train.get(name), dict):
                self._registered('LOSS', f'train.{name}', train[name])
        if isinstance(train.get('saturation_mask'), dict):
            from flare_sr.losses.saturation_mask import saturation_keep_mask

            self._constructor_keys('train.saturation_mask', train['saturation_mask'], saturation_keep_mask,
                                   skip=('lq', 'gt'))

    def _optimizer(self, key_path, optim):
        import torch

        if optim.get('type') != 'Adam':
            self.problems.append(f'{key_path}.type: BasicSR 1.4.2 supports only Adam, got {optim.get("type")!r}')
            return
        self._constructor_keys(key_path, optim, torch.optim.Adam, skip=('params',))
        betas = optim.get('betas')
        if betas is not None and not (isinstance(betas, (list, tuple)) and len(betas) == 2
                                      and all(_matches(beta, NUMBER) for beta in betas)):
            self.problems.append(f'{key_path}.betas: expected two numbers, e.g. [0.5, 0.999], got {betas!r}')

    def _val(self, val):
        self._keys('val', val, VAL)
        if self.is_train and 'val_freq' not in val:
            self.problems.append('val.val_freq: missing')
        if isinstance(val.get('tile'), dict):
            self._keys('val.tile', val['tile'], TILE)
        for name, metric in (val.get('metrics') or {}).items():
            if isinstance(metric, dict):
                self._registered('METRIC', f'val.metrics.{name}', metric)
                self._existing_path(f'val.metrics.{name}.mask_folder', metric.get('mask_folder'))
            else:
                self._value(f'val.metrics.{name}', metric, DICT)


def _keys_read_by(dataset_class):
    """Option keys a dataset's module reads as ``opt['key']`` or ``opt.get('key')`` (any ``*opt`` name)."""
    try:
        source = inspect.getsource(inspect.getmodule(dataset_class))
    except (OSError, TypeError):
        return set()
    return set(re.findall(r"opt\s*(?:\[\s*|\.get\(\s*)['\"](\w+)['\"]", source))
