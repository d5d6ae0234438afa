"""Shared fixtures (helpers that are not fixtures live in tests/helpers.py)."""
import os

import pytest

# Before any test module: registers flare_sr and aliases the torchvision module BasicSR 1.4.2 imports.
import flare_sr  # noqa: F401
from tests.helpers import REPO, remove_experiment, unique_name

os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def repo_root():
    return REPO


@pytest.fixture
def experiment():
    """Unique experiment names for real train.py runs (they write under the repository root), removed afterwards."""
    names = []

    def new(stem):
        names.append(unique_name(stem))
        return names[-1]

    yield new
    for name in names:
        remove_experiment(name)
