"""Layers import downward only: entry scripts -> cli -> pipeline -> models -> archs, data, losses, metrics -> utils.

Every import statement of the package (module top and inside functions alike) is read with ``ast`` and its
target's layer compared with the importing module's. Siblings of one layer (archs, data, losses, metrics)
do not import each other, and the entry scripts import flare_sr.cli only.
"""
import ast
import os
from os import path as osp

import pytest

PACKAGE_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'flare_sr')
# Rank of each part of the package: a module may import only parts of a lower rank, or its own part.
LAYERS = {
    'flare_sr.errors': 0, 'flare_sr.version': 0,
    'flare_sr.utils': 1,
    'flare_sr.archs': 2, 'flare_sr.data': 2, 'flare_sr.losses': 2, 'flare_sr.metrics': 2,
    'flare_sr.models': 3,
    # basicsr_fixes wires data's ResumableSampler and the option checker into BasicSR's loops: above data
    'flare_sr.pipeline': 4, 'flare_sr.basicsr_fixes': 4,
    'flare_sr.cli': 5,
    'flare_sr.train': 6, 'flare_sr.test': 6, 'flare_sr.infer': 6, 'flare_sr.train_pipeline': 6,
    'flare_sr': 7,  # the package itself: importing it runs every registration
}
ENTRY_SCRIPTS = ('flare_sr.train', 'flare_sr.test', 'flare_sr.infer', 'flare_sr.train_pipeline')


def part_of(module):
    """The LAYERS key that owns ``module`` (the longest matching prefix)."""
    parts = module.split('.')
    for end in range(len(parts), 0, -1):
        name = '.'.join(parts[:end])
        if name in LAYERS:
            return name
    raise KeyError(module)


def is_module(name):
    relative = name.split('.')[1:]
    base = osp.join(PACKAGE_DIR, *relative)
    return osp.isfile(base + '.py') or osp.isfile(osp.join(base, '__init__.py'))


def imported_modules(source):
    """Sorted (line, flare_sr module) of every import of a flare_sr module in ``source``, once each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split('.')[0] == 'flare_sr']
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f'line {node.lineno}: relative import (flare_sr imports by absolute name)'
            if (node.module or '').split('.')[0] != 'flare_sr':
                continue
            for alias in node.names:  # `from flare_sr import basicsr_fixes` imports flare_sr.basicsr_fixes
                target = f'{node.module}.{alias.name}'
                found.append((node.lineno, target if is_module(target) else node.module))
    return sorted(set(found))


def violations(module, source):
    """'module:line imports target (why)' for each import that runs up the layers."""
    own = part_of(module)
    problems = []
    for line, target in imported_modules(source):
        theirs = part_of(target)
        if theirs == own:
            continue
        if module in ENTRY_SCRIPTS and target != 'flare_sr.cli':
            problems.append(f'{module}:{line} imports {target} (an entry script imports flare_sr.cli only)')
        elif LAYERS[theirs] > LAYERS[own]:
            problems.append(f'{module}:{line} imports {target} (a higher layer)')
        elif LAYERS[theirs] == LAYERS[own] and module != 'flare_sr':
            problems.append(f'{module}:{line} imports {target} (a sibling of the same layer)')
    return problems


def package_modules():
    for folder, _, files in os.walk(PACKAGE_DIR):
        if '__pycache__' in folder:
            continue
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(folder, name)
                parts = osp.relpath(path, osp.dirname(PACKAGE_DIR))[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts.pop()
                yield '.'.join(parts), path


def test_every_import_of_the_package_runs_down_the_layers():
    problems = []
    modules = 0
    for module, path in package_modules():
        with open(path, encoding='utf-8') as handle:
            problems += violations(module, handle.read())
        modules += 1
    assert modules > 50  # the walk really read the package
    assert problems == []


@pytest.mark.parametrize('module, source, expected', [
    ('flare_sr.utils.tiling', 'def f():\n    from flare_sr.data.pairing import pair_paths\n',
     'flare_sr.utils.tiling:2 imports flare_sr.data.pairing (a higher layer)'),
    ('flare_sr.data.lmdb_pack', 'import flare_sr.models.main_net\n',
     'flare_sr.data.lmdb_pack:1 imports flare_sr.models.main_net (a higher layer)'),
    ('flare_sr.models.cascade_model', 'from flare_sr.pipeline import inference\n',
     'flare_sr.models.cascade_model:1 imports flare_sr.pipeline.inference (a higher layer)'),
    ('flare_sr.metrics.flare_psnr_metric', 'from flare_sr.data import pairing\n',
     'flare_sr.metrics.flare_psnr_metric:1 imports flare_sr.data.pairing (a sibling of the same layer)'),
    ('flare_sr.pipeline.stages', 'import flare_sr\n', 'flare_sr.pipeline.stages:1 imports flare_sr (a higher layer)'),
    ('flare_sr.test', 'from flare_sr.utils.precision import PRECISIONS\n',
     'flare_sr.test:1 imports flare_sr.utils.precision (an entry script imports flare_sr.cli only)'),
])
def test_an_upward_import_is_named(module, source, expected):
    assert violations(module, source) == [expected]


def test_the_package_and_the_scripts_never_import_the_tests():
    """tests/ is not shipped (setup.py packages flare_sr only): nothing outside it may import it."""
    repo = osp.dirname(PACKAGE_DIR)
    importers = []
    for root in (PACKAGE_DIR, osp.join(repo, 'scripts')):
        for folder, _, files in os.walk(root):
            for name in (name for name in files if name.endswith('.py')):
                with open(osp.join(folder, name), encoding='utf-8') as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                             [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
                    if any(module.split('.')[0] == 'tests' for module in names):
                        importers.append(osp.relpath(osp.join(folder, name), repo))
    assert importers == []


def test_downward_and_own_part_imports_pass():
    source = ('from flare_sr.errors import FlareSRError\nfrom flare_sr.utils.img_util import read_image\n'
              'from flare_sr.models.flare_base import FlareBaseModel\nfrom flare_sr.pipeline import stage3_data\n')
    assert violations('flare_sr.pipeline.inference', source) == []
