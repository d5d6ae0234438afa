"""Shared fixtures: small real images and folders, written fresh for each test."""
import os

import pytest

# Before any test module: registers flare_sr and aliases the torchvision module BasicSR 1.4.2 imports.
import flare_sr  # noqa: F401

os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def experiment():
    """Unique experiment names for real train.py runs (they write under the repository root), removed afterwards."""
    from flare_sr.tests.test_train_support import remove_experiment, unique_name

    names = []

    def new(stem):
        names.append(unique_name(stem))
        return names[-1]

    yield new
    for name in names:
        remove_experiment(name)
