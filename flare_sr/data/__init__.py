"""Importing this package registers every `*_dataset.py` in it with BasicSR."""
from flare_sr.utils.registration import import_modules_by_suffix

import_modules_by_suffix(__name__, __file__, '_dataset')
