"""atomic_path / atomic_torch_save: the old file survives every failure, and errors name the path."""
import errno
import os

import pytest
import torch

from flare_sr.errors import FlareSRError
from flare_sr.utils import atomic
from flare_sr.utils.atomic import atomic_path, atomic_torch_save


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.endswith('.tmp')]


def test_file_is_replaced_only_on_success(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, 'w') as handle:
                handle.write('half')
            raise RuntimeError('killed mid-write')
    assert target.read_text() == 'old'
    assert _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        with open(tmp, 'w') as handle:
            handle.write('new')
    assert target.read_text() == 'new'
    assert _leftovers(tmp_path) == []


def test_new_files_and_folders_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_path(tmp_path / 'a.png') as tmp:
        open(tmp, 'w').close()
    with atomic_path(tmp_path / 'db.lmdb', is_dir=True) as tmp:
        open(os.path.join(tmp, 'data.mdb'), 'w').close()
    assert os.stat(tmp_path / 'a.png').st_mode & 0o777 == 0o666 & ~umask
    assert os.stat(tmp_path / 'db.lmdb').st_mode & 0o777 == 0o777 & ~umask


def test_folder_replacement_keeps_the_old_folder_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / 'lq.lmdb'
    target.mkdir()
    (target / 'data.mdb').write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_path(target, is_dir=True) as tmp:
            (open(os.path.join(tmp, 'data.mdb'), 'w')).write('partial')
            raise RuntimeError('interrupted')
    assert (target / 'data.mdb').read_text() == 'old'
    with atomic_path(target, is_dir=True) as tmp:
        with open(os.path.join(tmp, 'data.mdb'), 'w') as handle:
            handle.write('new')
    assert (target / 'data.mdb').read_text() == 'new'
    assert sorted(os.listdir(tmp_path)) == ['lq.lmdb']


@pytest.mark.parametrize('code, words', [(errno.ENOSPC, 'no space left on device'),
                                         (errno.EROFS, 'cannot write here')])
def test_full_or_read_only_disk_is_one_error_naming_the_file_and_the_old_checkpoint_survives(
        tmp_path, monkeypatch, code, words):
    target = tmp_path / 'net_g_10.pth'
    atomic_torch_save({'params': torch.ones(3)}, target)

    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, 'replace', failing_replace)
    with pytest.raises(FlareSRError) as caught:
        atomic_torch_save({'params': torch.zeros(3)}, target)
    assert str(target) in str(caught.value) and words in str(caught.value)
    monkeypatch.undo()
    assert torch.equal(torch.load(target)['params'], torch.ones(3))
    assert _leftovers(tmp_path) == []
