"""Run folders: what a run's ``name`` may be, a lock that tells a live run, and archiving that never collides.

BasicSR joins ``name`` under ``experiments/`` and ``tb_logger/`` (train) or ``results/`` (test), and a new run
renames an existing folder of that name to ``<name>_archived_<time>``. So a name that is a path (absolute, ``..``,
``group/run``) moved an unrelated folder of the user's away, and a second run of a live run's name moved the live
run's folder from under it. Here:

- ``check_name``: a name (and each other string that becomes one path part: a validation set's ``name``,
  ``val.suffix``, the pipeline's ``--name``) is ONE folder name that means the same on Linux, macOS and Windows;
  anything else is refused, never rewritten (a rewritten name would put the run, and a later ``--auto_resume``,
  somewhere the user did not name).
- ``lock_run``: ``fcntl.lockf`` on ``<root>/.locks/<name>.lock``, held until the process ends (the OS releases
  it on SIGKILL too, so kill-and-resume works); a second run of that name stops with one line naming the first
  run's pid, before it archives or creates anything. A POSIX record lock belongs to the process, so the DataLoader
  workers it forks do not hold it (an ``flock`` they inherited outlived a killed run by seconds, and its resume
  was refused). POSIX only (no ``fcntl`` on Windows: no lock there).
- ``archive``: ``<path>_archived_<time>`` with ``_2``, ``_3``, ... when that name is taken (BasicSR's one-second
  timestamp made two runs of one second crash with "Directory not empty").
"""
import itertools
import os
import socket
import sys
import time
import unicodedata
from os import path as osp

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from flare_sr.errors import FlareSRError
from flare_sr.utils.safe_yaml import yaml_shown

MAX_NAME_BYTES = 200  # file systems allow 255 bytes per folder name; BasicSR adds _archived_<time> and log suffixes
WINDOWS_FORBIDDEN = '<>:"|?*'
WINDOWS_RESERVED = {'CON', 'PRN', 'AUX', 'NUL', *(f'COM{i}' for i in range(1, 10)), *(f'LPT{i}' for i in range(1, 10))}

_held = {}  # lock file path -> its open file, kept open (locked) until the process ends


def name_problem(value):
    """Why ``value`` is not one portable folder name, or None when it is."""
    if not isinstance(value, str):
        return f'expected a folder name, got {yaml_shown(value)}'
    if value.strip() == '':
        return 'is empty'
    if value in ('.', '..'):
        return f'{value!r} is not a folder name'
    separator = next((char for char in '/\\' if char in value), None)
    if separator:
        return f'{value!r} holds the path separator {separator!r}: it must be one folder name, e.g. ' \
               f'{value.replace(separator, "_").strip("._ ")!r}'
    control = next((char for char in value if unicodedata.category(char) == 'Cc'), None)
    if control:
        return f'{value!r} holds the control character {control!r}'
    if value.startswith('~'):
        return f"{value!r} starts with '~' (not your home folder here: a folder named ~...)"
    if value.startswith('.'):
        return f'{value!r} starts with a dot (a hidden folder)'
    if value != value.strip() or value.endswith('.'):
        return f'{value!r} starts or ends with a space, or ends with a dot (Windows drops them, so two names would ' \
               'share one folder)'
    forbidden = next((char for char in value if char in WINDOWS_FORBIDDEN), None)
    if forbidden:
        return f'{value!r} holds {forbidden!r}, which Windows does not allow in a folder name'
    if value.split('.')[0].upper() in WINDOWS_RESERVED:
        return f'{value!r} is a device name on Windows'
    size = len(value.encode('utf-8', 'surrogatepass'))
    if size > MAX_NAME_BYTES:
        return f'is {size} bytes long; at most {MAX_NAME_BYTES} (a folder name has 255, and archiving adds to it)'
    return None


def check_name(value, key, where):
    """One FlareSRError when ``value`` (option ``key``, e.g. ``name``) is not one folder name under ``where``
    (e.g. ``experiments/``)."""
    problem = name_problem(value)
    if problem:
        raise FlareSRError(f'{key}: {problem}; it names one folder under {where}, so it cannot reach outside it')


def lock_run(root, name, command=None):
    """Hold ``<root>/.locks/<name>.lock`` (``root``: e.g. the repository's ``experiments``) until this process ends.

    A run that holds it already (this process) is fine. Another live process holding it is one FlareSRError naming
    ``<root>/<name>`` and that process (pid, host, start, command line), written into the file by its holder.
    A POSIX record lock is dropped when its process closes any handle of the file, so nothing else in the process may
    open the lock file (``_held`` keeps the one handle; a second ``lock_run`` of the path returns at once).
    """
    if fcntl is None:
        return
    path = osp.join(root, '.locks', f'{name}.lock')
    if path in _held:
        return
    folder = osp.join(root, name)
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        handle = open(path, 'a+', encoding='utf-8')
    except OSError as error:
        raise FlareSRError(f'{path}: cannot create the lock of {folder} ({error.strerror})') from None
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another process holds it
        handle.seek(0)
        holder = handle.read().strip() or 'a process that is starting'
        handle.close()
        raise FlareSRError(f'{folder} is in use by another run ({holder}); let it finish or stop it, or give this run '
                           'another name (nothing was archived or created)') from None
    command = command or ' '.join(sys.argv)
    handle.seek(0)
    handle.truncate()
    handle.write(f'pid {os.getpid()} on {socket.gethostname()}, since {time.strftime("%Y-%m-%d %H:%M:%S")}: '
                 f'{command}\n')
    handle.flush()
    _held[path] = handle


def run_in_use(root, name):
    """Whether another process holds ``<root>/.locks/<name>.lock`` (``lock_run``); False where there are no locks.
    Only for a process that holds no lock of that path itself: closing the probe's handle would drop its own."""
    path = osp.join(root, '.locks', f'{name}.lock')
    if fcntl is None or path in _held or not osp.isfile(path):
        return False
    with open(path, 'a+', encoding='utf-8') as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN)
    return False


def set_aside(root, paths, stem):
    """Move ``paths`` (relative to ``root``) into a new folder ``root/<stem>_archived_<time>`` (``_2``, ``_3``, ...
    when the name is taken), keeping their relative paths, and return the folder. Nothing is deleted."""
    target = _reserved_name(osp.join(root, stem), folder=True)
    for path in paths:
        os.makedirs(osp.dirname(osp.join(target, path)), exist_ok=True)
        os.replace(osp.join(root, path), osp.join(target, path))
    return target


def archive(path):
    """Rename an existing ``path`` to ``<path>_archived_<time>`` (a file keeps its extension after that; ``_2``,
    ``_3``, ... when the name is taken) and return the new name; None when ``path`` does not exist. The name is
    reserved first (an empty folder or file, created exclusively) and ``path`` is renamed onto it, which is atomic
    on POSIX, so two processes never pick the same one."""
    if not osp.lexists(path):
        return None
    is_dir = osp.isdir(path) and not osp.islink(path)
    base, ext = (path, '') if is_dir else osp.splitext(path)
    target = _reserved_name(base, ext, folder=is_dir)
    os.replace(path, target)
    return target


def _reserved_name(base, ext='', folder=False):
    """``<base>_archived_<time><ext>`` (``_2``, ``_3``, ... when taken), created empty and exclusively (a folder or a
    file), so two processes never pick the same one."""
    stamp = time.strftime('%Y%m%d_%H%M%S')
    for count in itertools.count(1):
        target = f'{base}_archived_{stamp}{"" if count == 1 else f"_{count}"}{ext}'
        try:
            if folder:
                os.mkdir(target)
            else:
                open(target, 'x').close()
        except FileExistsError:
            continue
        return target
