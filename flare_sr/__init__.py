"""flare_sr: lens-flare removal as a BasicSR plugin.

Importing the package registers every arch, dataset, loss, metric and model with BasicSR's
registries. Always import through the package name (``import flare_sr``), never by putting
``flare_sr/`` itself on ``sys.path``: a module imported under two names registers twice.
"""
import sys

import torchvision.transforms._functional_tensor as _functional_tensor

# BasicSR 1.4.2 imports a torchvision module that torchvision has since renamed.
sys.modules.setdefault('torchvision.transforms.functional_tensor', _functional_tensor)

from flare_sr import archs, data, losses, metrics, models  # noqa: E402,F401  (registration side effects)
from flare_sr.version import __version__  # noqa: E402,F401
