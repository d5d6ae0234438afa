"""flare_sr: lens-flare removal as a BasicSR plugin.

Importing the package registers every arch, dataset, loss, metric and model with BasicSR's
registries. Always import through the package name (``import flare_sr``), never by putting
``flare_sr/`` itself on ``sys.path``: a module imported under two names registers twice.
"""
import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads take the cores other
# processes need, and tiny convolutions ran up to 100x slower (docs/benchmarks.md, "A busy machine"). Every
# entry point imports this package first, before torch loads its OpenMP runtime (libgomp, or Intel's, whose
# KMP_BLOCKTIME this policy also sets to 0); subprocesses inherit it; a value the user set wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torchvision.transforms._functional_tensor as _functional_tensor  # noqa: E402

# BasicSR 1.4.2 imports a torchvision module that torchvision has since renamed.
sys.modules.setdefault('torchvision.transforms.functional_tensor', _functional_tensor)

from flare_sr import archs, data, losses, metrics, models  # noqa: E402,F401  (registration side effects)
from flare_sr.version import __version__  # noqa: E402,F401
