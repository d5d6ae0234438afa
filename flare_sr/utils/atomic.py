"""Write files and folders under a temporary name and rename them into place.

A crash, a kill or a full disk then leaves either the old file or the new one, never half of one.
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


def atomic_torch_save(obj, path):
    """``torch.save`` through a temporary file, fsynced before the rename so a power cut cannot expose it empty."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
