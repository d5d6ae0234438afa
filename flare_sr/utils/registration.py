"""Find plugin files by suffix, as BasicSR and Real-ESRGAN do, so a new file registers by existing."""
import importlib
from os import path as osp

from basicsr.utils import scandir


def import_modules_by_suffix(package, init_file, suffix):
    """Import every ``*<suffix>.py`` beside ``init_file`` as ``<package>.<name>``; the import registers it."""
    folder = osp.dirname(osp.abspath(init_file))
    names = sorted(osp.splitext(name)[0] for name in scandir(folder) if name.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package}.{name}') for name in names]
