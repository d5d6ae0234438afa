"""Write files and folders under a temporary name and rename them into place; check output paths first.

A crash, a kill or a full disk then leaves either the old file or the new one, never half of one. Before any
work, ``check_writable`` and ``check_output_file`` refuse an output that cannot be written or that would
replace one of the run's own inputs (``same_file``: after symlinks, and hard links).
"""
import contextlib
import errno
import os
import shutil
import tempfile

import torch

from flare_sr.errors import FlareSRError


def _current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _current_umask()


def _describe_os_error(error, path):
    if error.errno == errno.ENOSPC:
        return f'{path}: no space left on device; nothing was replaced'
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f'{path}: cannot write here (permission denied or read-only)'
    return f'{path}: {error.strerror or error}'


@contextlib.contextmanager
def atomic_path(path, is_dir=False):
    """Yield a temporary sibling of ``path``; on success rename it onto ``path``, on failure delete it.

    A directory target that already exists is replaced only after the new one is complete.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        if is_dir:
            tmp = tempfile.mkdtemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=parent)
            os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; outputs get the usual umask mode
        else:
            fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=parent)
            os.close(fd)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual umask mode
    except OSError as error:
        raise FlareSRError(_describe_os_error(error, path)) from error
    try:
        yield tmp
        if is_dir and os.path.isdir(path):
            old = f'{tmp}.old'
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as error:
        if is_dir:
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(error, OSError) and not isinstance(error, FlareSRError):
            raise FlareSRError(_describe_os_error(error, path)) from error
        raise


def same_file(path, other):
    """True when two paths name one file: equal after resolving symlinks, or the same inode (a hard link)."""
    if os.path.realpath(path) == os.path.realpath(other):
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them does not exist (yet)
        return False


def inside(path, folder):
    """True when ``path`` lies in ``folder`` or below it, symlinks resolved."""
    folder = os.path.join(os.path.realpath(folder), '')
    return os.path.realpath(path).startswith(folder)


def file_on_path(folder):
    """The absolute path of ``folder``, or of the nearest of its parents, that exists and is not a folder (a file
    where a folder must go); None when there is none."""
    path = os.path.abspath(folder)
    while True:
        if os.path.exists(path):
            return None if os.path.isdir(path) else path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def refuse_file_on_path(folder, flag, note=''):
    """FlareSRError when ``folder`` (given by ``flag``) is a file, or lies inside one: ``<folder>: --out is a file,
    not a folder`` (making it would fail as 'File exists' or 'Not a directory'). ``note``: appended, e.g. what the
    folder receives."""
    blocker = file_on_path(folder)
    if blocker is not None:
        where = '' if blocker == os.path.abspath(folder) else f' inside {blocker}, which is'
        raise FlareSRError(f'{folder}: {flag} is{where} a file, not a folder{note}')


def check_folders_clear(folders, files):
    """FlareSRError where a folder the run will make is, or lies inside, a file: one the run reads or writes
    (``files``: ``(what, path)`` pairs as ``check_output_file`` takes them, outputs included, existing or not), or any
    existing file (``refuse_file_on_path``). ``folders``: ``(flag, value, folder)``, e.g. ``('--output', 'out',
    'out')`` or ``('--zip', 'a/b.zip', 'a')`` for the zip's folder; None values are skipped. Found before anything is
    made: ``--output x.zip --zip x.zip``, or ``--zip out/photo.png/sub.zip`` where out/photo.png is an output, would
    otherwise fail after the work. Paths are compared after resolving symlinks (``same_file``, ``inside``)."""
    owners = [(what, path) for what, path in files if path and not os.path.isdir(path)]  # a path section names folders
    for flag, value, folder in folders:
        if not value:
            continue
        holders = [(what, path) for what, path in owners if same_file(folder, path) or inside(folder, path)]
        if holders:
            what, path = max(holders, key=lambda holder: len(os.path.realpath(holder[1])))  # the nearest
            raise FlareSRError(f'{flag} {value}: {"" if folder == value else f"its folder {folder} "}'
                               f'{"is" if same_file(folder, path) else "lies inside"} {what} {path}, a file, where a '
                               f'folder must go; choose another {flag}')
        refuse_file_on_path(folder, flag)


def check_writable(output_dir, flag='--output'):
    """Create the folder and prove it takes a file now, before any work is done; FlareSRError names the
    folder and the command-line ``flag`` that set it: a file given (or lying on its path) where the folder goes
    is said as such, not as the OS error of making a folder inside it."""
    refuse_file_on_path(output_dir, flag)
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        raise FlareSRError(f'{output_dir}: {flag} folder is not writable ({error.strerror or error})') from None


def check_output_file(path, flag, suffix=None, written=None, inputs=(), input_folders=(), make_folder=True):
    """Refuse, before any work is done, an output file that would replace one of the run's own files, is a
    folder, lacks ``suffix`` or cannot be written.

    ``suffix`` (e.g. ``'.png'``) and ``written`` (what the file holds, e.g. ``'a PNG picture'``): the name must end in
    ``suffix``, so that a file of any other kind (a photo, a checkpoint) is never replaced, and the name says what
    was written whatever the format. ``inputs``: ``(what, path)`` pairs (e.g. ``('the option file', 'a.yml')``,
    also the run's other outputs); ``input_folders``: ``(what, folder)`` pairs whose files the run reads, which the
    output must not join. ``make_folder`` False: its folder is not made (nor proven writable) yet; ``check_writable``
    it later, once everything else is checked. FlareSRError names ``flag``, the path and what is wrong; what the file
    would replace comes before a wrong suffix, the better line.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FlareSRError(f'{path}: {flag} is a folder; give a file name')
    for what, other in inputs:
        if other and same_file(path, other):
            raise FlareSRError(f'{flag} {path}: is {what} {other}, which it would replace; choose another name')
    for what, folder in input_folders:
        if folder and inside(path, folder):
            raise FlareSRError(f'{flag} {path}: inside {what} {folder}, whose files it would join or replace; '
                               'choose another folder')
    if suffix and not path.lower().endswith(suffix):
        raise FlareSRError(f'{flag} {path}: must end in {suffix} (the file written is {written})')
    if make_folder:
        check_writable(os.path.dirname(os.path.abspath(path)), flag=flag)


def _tensor_bytes(value):
    """Bytes of the tensors in ``value`` (dicts, lists and tuples walked): about the size of its ``torch.save``."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _write_error(error):
    """The OSError behind a failed ``torch.save`` to a file object (torch raises a RuntimeError of its own while
    handling it), or None."""
    while error is not None and not isinstance(error, OSError):
        error = error.__context__
    return error


def atomic_torch_save(obj, path):
    """``torch.save`` through a temporary file, fsynced before the rename so a power cut cannot expose it empty.

    A failed write (a full disk, a file-size limit) is one FlareSRError,
    ``cannot save <path>: No space left on device (needs about N MiB); <path> is unchanged``, and the temporary file
    is removed.
    """
    with atomic_path(path) as tmp:
        try:
            with open(tmp, 'wb') as handle:
                torch.save(obj, handle)
                handle.flush()
                os.fsync(handle.fileno())
        except (OSError, RuntimeError) as error:
            cause = _write_error(error)
            if cause is None:
                raise
            limit = ' (over the file-size limit: ulimit -f)' if cause.errno == errno.EFBIG else ''
            kept = f'{path} is unchanged' if os.path.exists(path) else 'nothing was written'
            raise FlareSRError(f'cannot save {path}: {cause.strerror or cause}{limit} (needs about '
                               f'{max(_tensor_bytes(obj) / 2**20, 0.1):.1f} MiB); {kept}') from None
