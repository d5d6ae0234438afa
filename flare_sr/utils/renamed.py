"""Renamed constructor arguments of flare_sr's archs: one signature, the old names still read from option files.

``@renamed_arguments(ngf='num_feat')`` records the old names on the class (``renamed_arguments``, which the
option checker reads to rewrite ``network_*`` sections with one deprecation note per key,
:func:`flare_sr.utils.options_check.fold_deprecated_keys`) and turns an old keyword in a direct Python call
into a TypeError that names the new one, instead of Python's bare "unexpected keyword argument".
"""
import functools


def renamed_arguments(**renamed):
    """Class decorator; ``renamed``: old keyword -> new keyword. ``inspect.signature`` still shows the new one."""

    def decorate(cls):
        init = cls.__init__

        @functools.wraps(init)
        def checked_init(self, *args, **kwargs):
            old = [key for key in kwargs if key in renamed]
            if old:
                raise TypeError(f'{cls.__name__}: ' + '; '.join(f'{key} was renamed {renamed[key]}' for key in old)
                                + ' (option files may still use the old name)')
            init(self, *args, **kwargs)

        cls.__init__ = checked_init
        cls.renamed_arguments = dict(renamed)
        return cls

    return decorate
