"""Reading a YAML ``flare:`` block into a settings dataclass, with one clear line per bad key."""
import dataclasses
import math

from flare_sr.errors import FlareSRError


def _is_number(value, integer=False):
    """A finite int (or, unless ``integer``, float); YAML's true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return math.isfinite(value)


def _check_range(value, default, name, signed, positive):
    """``value`` as a ``(low, high)`` tuple like ``default``; FlareSRError naming ``name`` when it is not one."""
    integer = all(isinstance(bound, int) for bound in default)
    kind = 'integers' if integer else 'numbers'
    bounds = value
    if _is_number(value, integer):
        bounds = (value, value + 1) if integer else (value, value)
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(_is_number(bound, integer) for bound in bounds)):
        raise FlareSRError(f'option {name}: expected one number or [low, high] of {kind}, got {value!r}')
    low, high = bounds
    if low > high or (integer and low == high):
        relation = 'low < high (high is excluded)' if integer else 'low <= high'
        raise FlareSRError(f'option {name}: expected [low, high] with {relation}, got {value!r}')
    if positive and low <= 0:
        raise FlareSRError(f'option {name}: must be above 0, got {value!r}')
    if not signed and low < 0:
        raise FlareSRError(f'option {name}: must not be negative, got {value!r}')
    return tuple(bounds)


def _check_value(value, default, name):
    """A switch, a probability or a plain non-negative number, checked against the type of ``default``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise FlareSRError(f'option {name}: expected true or false, got {value!r}')
    elif not _is_number(value, isinstance(default, int)):
        raise FlareSRError(f'option {name}: expected {"an integer" if isinstance(default, int) else "a number"}, '
                           f'got {value!r}')
    elif name.endswith('_prob') and not 0 <= value <= 1:
        raise FlareSRError(f'option {name}: a probability must lie in [0, 1], got {value!r}')
    elif value < 0:
        raise FlareSRError(f'option {name}: must not be negative, got {value!r}')
    return value


def settings_from_options(cls, options, option_name):
    """``cls(**options)`` after checking every name, type and range; ``None`` gives the defaults.

    Tuple-valued fields are ranges: the value must be a 2-item list with ``low <= high``, or one number,
    which fixes the range (``frame_scale: 2`` is ``[2, 2]``; on an integer range ``[low, high)``,
    ``ghost_count: 3`` is ``[3, 4]``). A range is non-negative unless ``cls.SIGNED`` names it, and above
    0 where ``cls.POSITIVE`` names it (widths, scales, a gamma). Switches are true/false, ``*_prob``
    values lie in [0, 1], other numbers are non-negative. Raises FlareSRError naming ``option_name.key``
    and what is wrong.
    """
    if options is None:
        return cls()
    if isinstance(options, cls):
        return options
    if not isinstance(options, dict):
        raise FlareSRError(f'option {option_name}: expected a mapping of flare settings, got {options!r}')
    known = {field.name: field for field in dataclasses.fields(cls)}
    signed, positive = getattr(cls, 'SIGNED', ()), getattr(cls, 'POSITIVE', ())
    values = {}
    for key, value in options.items():
        if key not in known:
            raise FlareSRError(f'option {option_name}.{key}: unknown flare setting (known: {", ".join(sorted(known))})')
        default = known[key].default
        name = f'{option_name}.{key}'
        if isinstance(default, tuple):
            values[key] = _check_range(value, default, name, key in signed, key in positive)
        else:
            values[key] = _check_value(value, default, name)
    return cls(**values)
