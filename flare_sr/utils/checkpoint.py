"""Load network checkpoints and training states as weights only, and tell a misused file in one line.

``torch.load(..., weights_only=False)`` unpickles arbitrary Python objects, so a ``.state`` or ``.pth``
file from someone else could run code. Everything here loads with ``weights_only=True`` (tensors and
plain data: dicts, lists, tuples, numbers, strings); a file that needs more is refused, its payload
never runs. flare_sr's own training states hold only such data (RNG states included, see
``flare_sr/utils/rng.py``).

Misuses named in one line (BasicSR #717 and its kind): a network file given as ``path.resume_state``
(names the matching ``training_states/<iter>.state``), a training state given as
``path.pretrain_network_*``, a folder, a missing, empty, truncated or non-PyTorch file.
"""
import hashlib
import logging
import os
import pickle
import pickletools
import re
from os import path as osp

import numpy as np
import torch

from flare_sr.errors import FlareSRError
from flare_sr.utils.hardware import warn

_NETWORK_FILE = re.compile(r'^net_(?P<label>\w+?)_(?P<iter>\d+|latest)\.pth$')
_STATE_FILE = re.compile(r'^(?P<iter>\d+)\.state$')


# torch's advice around its own message: to load unsafely (weights_only=False) or to allow-list a global
_ADVICE = re.compile(r'weights_only|Weights only load failed|safe_globals|trust|documentation of torch.load')


def _first_line(error):
    """The first line of torch's message that says what is wrong; never its advice to load the file unsafely."""
    for line in str(error).splitlines():
        line = re.split(r'\.\s+(?=Please|Re-running|Check|Do it)', line.strip())[0]
        if line and not _ADVICE.search(line):
            return line.removeprefix('WeightsUnpickler error: ').rstrip('.')
    return type(error).__name__


def _numpy_globals():
    """What pickled numpy arrays, numbers and dtypes are rebuilt with: numpy's own constructors, which build data and
    call nothing the file chooses. Names as numpy 2 writes them, and as numpy 1 did (``numpy.core``)."""
    core = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    found = [core._reconstruct, core.scalar, np.ndarray, np.dtype]
    found += sorted({type(np.dtype(kind)) for kind in np.sctypeDict.values()}, key=lambda kind: kind.__name__)
    found += [(core._reconstruct, 'numpy.core.multiarray._reconstruct'), (core.scalar, 'numpy.core.multiarray.scalar')]
    return found


NUMPY_GLOBALS = _numpy_globals()
NUMPY_GLOBAL_NAMES = {entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'
                      for entry in NUMPY_GLOBALS}


def unsafe_globals(path, error=None):
    """The Python objects (``module.name``) the pickle of checkpoint ``path`` would import or call, read without
    unpickling it (torch's scan of the zip format; for the legacy format, the one torch's ``error`` names; for a
    bare pickle, which torch reports as 'Unsupported operand', its opcodes)."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        return re.findall(r'GLOBAL (\S+)', str(error or ''))[:1] or _pickle_globals(path)


_STRING_OPS = {'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'SHORT_BINSTRING', 'BINSTRING', 'STRING'}


def _pickle_globals(path, max_ops=100_000):
    """``module.name`` of each GLOBAL / STACK_GLOBAL in the first pickle of ``path``, from its opcodes alone
    (``pickletools.genops`` decodes, never builds or calls); what was found before a malformed opcode."""
    found, strings, memo = [], [], {}
    try:
        with open(path, 'rb') as handle:
            for count, (op, arg, _) in enumerate(pickletools.genops(handle)):
                if count >= max_ops:
                    break
                if op.name in _STRING_OPS:
                    strings.append(arg)
                elif op.name == 'MEMOIZE':
                    memo[len(memo)] = strings[-1] if strings else None
                elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                    memo[arg] = strings[-1] if strings else None
                elif op.name in ('GET', 'BINGET', 'LONG_BINGET') and isinstance(memo.get(arg), str):
                    strings.append(memo[arg])
                elif op.name == 'GLOBAL':
                    found.append(arg.replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
    except (ValueError, EOFError, OSError, UnicodeDecodeError):
        pass
    return list(dict.fromkeys(found))


def _shown(name):
    """``posix.system`` as ``posix.system (os.system)``; ``builtins.exec`` as ``exec``."""
    module, _, attr = name.rpartition('.')
    if module in ('posix', 'nt'):
        return f'{name} (os.{attr})'
    return name.removeprefix('builtins.')


def refused_globals_message(where, found):
    """``where``: refused, naming the first of ``found`` that is not numpy's (or the numpy objects), in one line."""
    code = [name for name in found if name not in NUMPY_GLOBAL_NAMES]
    if code:
        more = f' (and {len(code) - 1} more)' if len(code) > 1 else ''
        return (f'{where}: refused: it holds the Python object {_shown(code[0])}{more}, which unpickling would call, '
                'and that can run any code; flare_sr loads checkpoints as weights only (tensors and plain data), as '
                'it writes them')
    return (f'{where}: refused: it holds numpy arrays or numbers ({", ".join(sorted(found))}), which loading as '
            'weights only does not rebuild')


def to_plain(value):
    """``value`` with numpy scalars as Python numbers and numpy arrays as tensors, so it saves ``weights_only``
    loadable (BasicSR's metrics return numpy floats; dicts, lists and tuples are walked)."""
    if isinstance(value, dict):
        plain = type(value)()  # keeps OrderedDict and Counter (a scheduler's milestones)
        for key, item in value.items():
            plain[key] = to_plain(item)
        return plain
    if isinstance(value, (list, tuple)) and not hasattr(value, '_fields'):
        return type(value)(to_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    return value


def latest_training_state(state_dir):
    """Path of the highest-iteration ``<iter>.state`` file in ``state_dir`` (temporary files ignored), or None."""
    if not osp.isdir(state_dir):
        return None
    iters = [int(match['iter']) for match in map(_STATE_FILE.match, os.listdir(state_dir))
             if match and osp.isfile(osp.join(state_dir, match.string))]
    return osp.join(state_dir, f'{max(iters)}.state') if iters else None


def later_checkpoints(experiment_root, iteration):
    """The files of a run saved after ``iteration``: ``models/net_<label>_<k>.pth`` and ``training_states/<k>.state``
    with ``k > iteration``, and with any of them the ``models/net_<label>_latest.pth`` (the later run's last weights).
    Paths relative to ``experiment_root``, sorted; [] when there are none."""
    found = {folder: [(match['iter'], osp.join(folder, match.string))
                      for match in map(pattern.match, os.listdir(osp.join(experiment_root, folder))) if match]
             for folder, pattern in (('models', _NETWORK_FILE), ('training_states', _STATE_FILE))
             if osp.isdir(osp.join(experiment_root, folder))}
    files = [entry for entries in found.values() for entry in entries]
    later = [path for k, path in files if k != 'latest' and int(k) > iteration]
    return sorted(later + [path for k, path in files if k == 'latest'] if later else [])


def _folder_hint(folder):
    """For a folder given where a file belongs: the file that was probably meant."""
    for candidate in (folder, osp.join(folder, 'training_states')):
        latest = latest_training_state(candidate)
        if latest is not None:
            return f'; its latest training state is {latest}'
    return ''


def load_weights_only(path, key_path=None, map_location='cpu'):
    """``torch.load(path, weights_only=True)``; any failure is one FlareSRError naming ``key_path`` and the file.

    Args:
        path (str): a ``.pth`` / ``.state`` file.
        key_path (str | None): the option that named it (``path.resume_state``), for the message.
        map_location: as ``torch.load``.
    """
    where = f'{key_path}: {path}' if key_path else str(path)
    if osp.isdir(path):
        raise FlareSRError(f'{where} is a folder, not a file{_folder_hint(path)}')
    if not osp.isfile(path):
        raise FlareSRError(f'{where}: file not found')
    if osp.getsize(path) == 0:
        raise FlareSRError(f'{where}: empty file (an interrupted copy?)')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = unsafe_globals(path, error)
        if not found:
            raise FlareSRError(f'{where}: not a PyTorch checkpoint ({_first_line(error)})') from None
        message = refused_globals_message(where, found)
        if set(found) <= NUMPY_GLOBAL_NAMES:
            message += (f'; if it is a training state, python scripts/convert_training_state.py {path} rewrites them '
                        'as tensors and numbers (it runs nothing from the file)')
        raise FlareSRError(message) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise FlareSRError(f'{where}: truncated or not a PyTorch checkpoint ({_first_line(error)})') from None


def is_training_state(checkpoint):
    """True for a BasicSR/flare_sr training state (``{'epoch', 'iter', 'optimizers', ...}``)."""
    return isinstance(checkpoint, dict) and 'iter' in checkpoint and 'optimizers' in checkpoint


def state_for_network_file(path):
    """``(state path, exists)`` for a network file ``<exp>/models/net_<x>_<iter|latest>.pth``, or None.

    The training state saved with ``net_g_4.pth`` is ``<exp>/training_states/4.state``; ``_latest`` is
    written at the end of a run (without a state), so the latest state there is the match.
    """
    match = _NETWORK_FILE.match(osp.basename(path))
    if not match:
        return None
    state_dir = osp.join(osp.dirname(osp.dirname(osp.abspath(path))), 'training_states')
    if match['iter'] == 'latest':
        latest = latest_training_state(state_dir)
        return (latest, True) if latest else (osp.join(state_dir, '<iter>.state'), False)
    state_path = osp.join(state_dir, f'{match["iter"]}.state')
    return state_path, osp.isfile(state_path)


def network_file_instead_of_state(path, key_path='path.resume_state'):
    """The one-line message for a network file given where a training state belongs (BasicSR #717)."""
    message = f'{key_path}: {path} is a network file (weights only), not a training state'
    match = state_for_network_file(path)
    if match is not None and match[1]:
        message += f'; resume from its training state with {key_path}: {match[0]}'
    elif match is not None:
        message += f'; no training state was saved with it ({match[0]} is missing)'
    return message + f'; to start from its weights alone, set path.pretrain_network_g: {path}'


def load_training_state(path, key_path='path.resume_state', map_location='cpu'):
    """A training state loaded as weights only, or one FlareSRError saying what the file is instead."""
    checkpoint = load_weights_only(path, key_path, map_location)
    if is_training_state(checkpoint):
        return checkpoint
    if isinstance(checkpoint, dict) and (('params' in checkpoint or 'params_ema' in checkpoint)
                                         or all(torch.is_tensor(value) for value in checkpoint.values())):
        raise FlareSRError(network_file_instead_of_state(path, key_path))
    keys = ', '.join(map(str, list(checkpoint)[:5])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise FlareSRError(f'{key_path}: {path} is not a training state (it holds {keys}; a state holds iter, epoch, '
                       'optimizers and schedulers)')


def sha256_of(path, chunk=1 << 20):
    """The sha256 hex digest of a file's bytes (equal digests: the same checkpoint, whatever its path)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def named_checkpoints(opt, role=None):
    """[(option key, path)] of the network checkpoints an option file names, ``~`` expanded, in load order: each
    ``path.pretrain_network_<x>``, and right after it each ``cascade.<x>_ensemble[i]`` (CascadeModel's stage I or
    glow stage as a mean of checkpoints: main_ensemble, glow_ensemble). ``role``: only ``pretrain_network_<role>`` and
    its ensemble. Values that are not paths (``str``, ``os.PathLike``) are left out (the options checker and the model
    name them); files are not opened."""
    named = []
    for key, value in (opt.get('path') or {}).items():
        key = str(key)
        if not key.startswith('pretrain_network_') or not isinstance(value, (str, os.PathLike)):
            continue
        key_role = key[len('pretrain_network_'):]
        if role is not None and key_role != role:
            continue
        named.append((f'path.{key}', osp.expanduser(os.fspath(value))))
        cascade = opt.get('cascade') if isinstance(opt.get('cascade'), dict) else {}
        ensemble = cascade.get(f'{key_role}_ensemble')
        named += [(f'cascade.{key_role}_ensemble[{index}]', osp.expanduser(os.fspath(member)))
                  for index, member in enumerate(ensemble if isinstance(ensemble, (list, tuple)) else [])
                  if isinstance(member, (str, os.PathLike))]
    return named


def repeated_checkpoints(named):
    """One line for each checkpoint of ``named`` ([(option key, path)]) whose bytes (sha256) equal an earlier entry's:
    in a mean of checkpoints it would weigh twice. The line says whether it is the same file listed again or a copy.
    Files not on this machine are skipped; a single entry is not hashed."""
    if len(named) < 2:
        return []
    first, problems = {}, []  # sha256 -> (key, path) of its first entry
    for key, path in named:
        if not osp.isfile(path):
            continue
        digest = sha256_of(path)
        if digest in first:
            earlier, earlier_path = first[digest]
            same = 'is the same file as' if osp.samefile(path, earlier_path) else 'holds the same bytes as'
            problems.append(f'{key}: {path} {same} {earlier}; list each checkpoint once')
        first.setdefault(digest, (key, path))
    return problems


# (file, key) pairs already said to fall back to 'params': the options checker's pre-flight and the model both load
_SAID_FALLBACK = set()


def _say_ema_fallback(path, key_path):
    """BasicSR's one line for a checkpoint trained without EMA, once per file: in BasicSR's log once it exists, else
    on stderr (the options checker's pre-flight runs before the log; creating it here would lose its file handler)."""
    said = (osp.abspath(path), 'params_ema')
    if said in _SAID_FALLBACK:
        return
    _SAID_FALLBACK.add(said)
    message = f"{key_path}: {path} has no 'params_ema' entry (trained without EMA?); loading its 'params'"
    logger = logging.getLogger('basicsr')
    if logger.handlers:
        logger.warning(message)
    else:
        warn(message)


def network_state_dict(checkpoint, path, param_key, key_path, options_of=None):
    """The state_dict inside a network checkpoint: ``checkpoint[param_key]`` (``param_key`` None: the checkpoint
    itself). As BasicSR, an absent ``'params_ema'`` falls back to ``'params'`` (a network trained without EMA; one
    warning line), and a bare state_dict (all tensors) is taken for ``'params'`` / ``'params_ema'``. Any other absent
    key is a FlareSRError naming the key, the file and the entries it holds: BasicSR falls back to ``'params'`` for
    every key, so a misspelt ``param_key_g`` silently loaded other weights. ``'module.'`` prefixes are dropped. One
    FlareSRError for a training state too. ``options_of``: the ``path.pretrain_network_<x>`` key whose
    ``param_key_<x>`` the hint names (default ``key_path``)."""
    if is_training_state(checkpoint):
        raise FlareSRError(
            f'{key_path}: {path} is a training state (optimizers, schedulers, iteration), not a network file; resume '
            f'it with path.resume_state: {path}, or take the weights from models/net_g_{checkpoint["iter"]}.pth of '
            'the same experiment')
    if not isinstance(checkpoint, dict):
        raise FlareSRError(f'{key_path}: {path} holds a {type(checkpoint).__name__}, not a state_dict')
    bare = all(torch.is_tensor(value) for value in checkpoint.values())
    if param_key is None:
        state_dict = checkpoint
    elif param_key in checkpoint:
        state_dict = checkpoint[param_key]
    elif param_key == 'params_ema' and 'params' in checkpoint:
        _say_ema_fallback(path, key_path)
        state_dict = checkpoint['params']
    elif bare and param_key in ('params', 'params_ema'):
        state_dict = checkpoint  # a bare state_dict, as many repositories save them
    else:
        keys = ', '.join(map(str, list(checkpoint)[:5])) + (', ...' if len(checkpoint) > 5 else '')
        param_option = (options_of or key_path).replace('pretrain_network_', 'param_key_')
        if bare and checkpoint:
            raise FlareSRError(f'{key_path}: {path} has no {param_key!r} entry (it is a bare state_dict: {keys}); '
                               f'set {param_option}: params (or leave it out) to load it whole')
        raise FlareSRError(f'{key_path}: {path} has no {param_key!r} entry (it holds {keys or "nothing"}); set '
                           f'{param_option} to the entry that holds the weights')
    if not isinstance(state_dict, dict):
        raise FlareSRError(f'{key_path}: {path}: entry {param_key!r} is not a state_dict')
    return {name.removeprefix('module.'): value for name, value in state_dict.items()}


def _shape(tensor):
    return 'x'.join(map(str, tensor.shape)) or 'scalar'


def misfit(net, state_dict):
    """(differences, loadable): how ``state_dict`` differs from ``net``'s, as phrases (``2 missing keys (e.g. x)``,
    ``1 keys of another shape (e.g. y: 8x3 in the file, 4x3 in the network)``; [] when it fits exactly), and the share
    of the network's weights (elements; batch norm's step counters aside) that it would load, in [0, 1]."""
    own = net.state_dict()
    missing = [name for name in own if name not in state_dict]
    unexpected = [name for name in state_dict if name not in own]
    reshaped = [name for name in own if name in state_dict and tuple(own[name].shape) != tuple(state_dict[name].shape)]
    parts = [f'{len(items)} {label} keys (e.g. {items[0]})' for label, items in
             (('missing', missing), ('unexpected', unexpected)) if items]
    if reshaped:
        name = reshaped[0]
        parts.append(f'{len(reshaped)} keys of another shape (e.g. {name}: {_shape(state_dict[name])} in the file, '
                     f'{_shape(own[name])} in the network)')
    # batch norm's step counters fit any file that has them: they are not weights
    weights = {name: tensor.numel() for name, tensor in own.items() if not name.endswith('num_batches_tracked')}
    fitting = sum(count for name, count in weights.items() if name not in missing and name not in reshaped)
    return parts, fitting / sum(weights.values()) if weights else 1.0


# strict_load false: a file that fills less of the network than this (a bias or two: another width) is another
# network; growing a network (more blocks) from a smaller one loads far more (NAFNet 1 -> 12 middle blocks: 18 %)
MIN_LOADABLE = 0.01


def check_fits(net, state_dict, path, key_path, strict, options_of=None):
    """One FlareSRError when ``state_dict`` does not fit ``net``: with ``strict``, any missing, unexpected or
    differently shaped key; without, when it would fill less than ``MIN_LOADABLE`` of the network's weights (nearly all
    would keep random values). ``options_of``: the ``path.pretrain_network_<x>`` key whose ``strict_load_<x>`` the hint
    names (default ``key_path``)."""
    parts, loadable = misfit(net, state_dict)
    if (strict and parts) or loadable < MIN_LOADABLE:
        strict_option = (options_of or key_path).replace('pretrain_network_', 'strict_load_')
        hint = (f'; set {strict_option}: false to load the keys that fit' if loadable >= MIN_LOADABLE else
                f'; only {loadable:.1%} of its weights would load')
        raise FlareSRError(f'{key_path}: {path} does not fit {type(net).__name__}: ' + ', '.join(parts) +
                           ' (a checkpoint of another network or size?)' + hint)


def load_checked_state_dict(net, load_path, key_path, strict=True, param_key='params', options_of=None):
    """The state_dict of network checkpoint ``load_path`` for the bare ``net``, loaded as weights only, chosen as
    BasicSR does (``network_state_dict``) and checked to fit (``check_fits``); every misuse is one FlareSRError
    naming ``key_path`` (e.g. ``path.pretrain_network_g``). ``options_of``: the ``path.pretrain_network_<x>`` whose
    ``strict_load_<x>`` and ``param_key_<x>`` apply, when ``key_path`` is another key (``cascade.main_ensemble[0]``)."""
    checkpoint = load_weights_only(load_path, key_path)
    state_dict = network_state_dict(checkpoint, load_path, param_key, key_path, options_of)
    check_fits(net, state_dict, load_path, key_path, strict, options_of)
    return state_dict


def check_state_types(state, kind, own_types, where, weights):
    """One FlareSRError when a training state's ``<kind>_types`` (kind: optimizer or scheduler) are not ``own_types``,
    the classes the options build (a state without the record passes). ``where`` names the state; ``weights`` is its
    network file, which a new run under another name can start from."""
    saved_types = state.get(f'{kind}_types')
    if saved_types is not None and list(saved_types) != list(own_types):
        raise FlareSRError(f'{where} was saved with {kind}(s) {", ".join(saved_types)}, but the options build '
                           f'{", ".join(own_types)}; resume with the {kind} it was trained with, or start a new run '
                           f'under another name from its weights (path.pretrain_network_g: {weights})')
