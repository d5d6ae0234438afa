"""Importing this package registers every `*_metric.py` in it with BasicSR's METRIC_REGISTRY.

BasicSR imports its own metrics by name (``basicsr/metrics/__init__.py``); flare_sr finds its plugin files by
suffix instead, as it does for archs, losses and models, so a new metric file registers by existing.
"""
from flare_sr.utils.registration import import_modules_by_suffix

import_modules_by_suffix(__name__, __file__, '_metric')
