"""Reading a YAML ``flare:`` block into a settings dataclass, with one clear line per bad key.

Every value is checked by type, sign and bounds before a sample is drawn: a value that passes must not
hang, crash or make the flare subtract light later. A settings class may declare

* ``POSITIVE``: ranges and numbers that must be above 0 (they divide, or set a width or a search band);
* ``LIMITS``: ``{key: (low, high)}`` inclusive bounds, the only way to allow a negative value.

Everything else is non-negative and at most ``MAX_VALUE``. A class with a ``log_ranges`` field lets the user name
number ranges that :func:`draw` samples log-uniformly.
"""
import dataclasses
import difflib
import math

from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import strict_keys
from flare_sr.utils.yaml_numbers import text_number_hint

MAX_VALUE = 1e6  # no setting means anything beyond this; above it float32 arithmetic overflows to inf/NaN
LOG_RANGES = 'log_ranges'  # the field naming the ranges that draw() samples log-uniformly


def draw(rng, settings, key):
    """One float from the number range ``settings.<key>`` (``(low, high)``): uniform, or log-uniform (equal odds
    for each factor of ten) where ``key`` is in ``settings.log_ranges``. One ``rng`` draw either way."""
    low, high = getattr(settings, key)
    if key in getattr(settings, LOG_RANGES, ()):
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))


def _is_number(value, integer=False):
    """A finite int (or, unless ``integer``, float; a whole float counts as an int); true/false are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return not integer or isinstance(value, int) or value.is_integer()


def _shown(value):
    """The value as the user wrote it (a YAML mapping prints as a dict, not an OrderedDict)."""
    return repr(dict(value)) if isinstance(value, dict) else repr(value)


def _bounds_problem(low, high, key, settings_cls, integer=False):
    """What is wrong with the numbers ``low <= high`` of ``key`` (``high`` excluded if ``integer``), or ''."""
    limits = getattr(settings_cls, 'LIMITS', {}).get(key)
    if limits:
        if low < limits[0] or high > limits[1]:
            if integer:
                return f'must lie in [{limits[0]}, {limits[1]}) ({limits[1] - 1} at most)'
            return f'must lie in [{limits[0]:g}, {limits[1]:g}]'
    elif high > MAX_VALUE:
        return f'must not exceed {MAX_VALUE:g}'
    if key in getattr(settings_cls, 'POSITIVE', ()) and low <= 0:
        return 'must be above 0'
    if low < 0 and not limits:
        return 'must not be negative'
    return ''


def _integer_range(default):
    """Whether the range whose default is ``default`` is an integer range, ``[low, high)``: its bounds are ints."""
    return all(isinstance(bound, int) for bound in default)


def _range(value, default, key, settings_cls):
    """(``(low, high)`` tuple, problem or ''): ``value`` read as a range like ``default``."""
    integer = _integer_range(default)
    bounds = value
    if _is_number(value, integer):
        bounds = (int(value), int(value) + 1) if integer else (value, value)
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(_is_number(bound, integer) for bound in bounds)):
        kind = 'integers' if integer else 'numbers'
        return None, f'expected one number or [low, high] of {kind}, got {_shown(value)}{text_number_hint(value)}'
    low, high = (int(bound) for bound in bounds) if integer else bounds
    if low > high or (integer and low == high):
        relation = 'low < high (high is excluded)' if integer else 'low <= high'
        return None, f'expected [low, high] with {relation}, got {_shown(value)}'
    problem = _bounds_problem(low, high, key, settings_cls, integer)
    return (low, high), problem and f'{problem}, got {_shown(value)}'


def _single(value, default, key, settings_cls):
    """(value, problem or ''): a switch, a probability or a plain number, typed like ``default``."""
    if isinstance(default, bool):
        return value, '' if isinstance(value, bool) else f'expected true or false, got {_shown(value)}'
    integer = isinstance(default, int)
    if not _is_number(value, integer):
        kind = 'an integer' if integer else 'a number'
        return value, f'expected {kind}, got {_shown(value)}{text_number_hint(value)}'
    value = int(value) if integer else value
    if key.endswith('_prob'):
        return value, '' if 0 <= value <= 1 else f'a probability must lie in [0, 1], got {value!r}'
    problem = _bounds_problem(value, value, key, settings_cls)
    return value, problem and f'{problem}, got {value!r}'


def _log_ranges(value, defaults, values, settings_cls):
    """(frozenset of range names, problem or ''): ``value`` read as ``log_ranges``, one name or a list of them, each a
    number range of ``settings_cls`` (its kind from ``defaults``) whose low end is above 0 (in ``values``, the ranges
    read from the options, else in ``defaults``; a range already refused is not judged again)."""
    names = [value] if isinstance(value, str) else value
    if names is None:
        names = []
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        return None, f'expected a list of range names, such as [haze_strength], got {_shown(value)}'
    number_ranges = [key for key, default in defaults.items()
                     if isinstance(default, tuple) and not _integer_range(default)]
    problems = []
    for name in names:
        current = values.get(name, defaults.get(name))
        if name not in defaults or not isinstance(defaults[name], tuple):
            close = [] if name in defaults else difflib.get_close_matches(name, number_ranges, n=1)  # a typo
            problems.append(f'{name!r} is not a range of {settings_cls.__name__}'
                            + (f' (did you mean {close[0]!r}?)' if close else ''))
        elif name not in number_ranges:
            problems.append(f'{name!r} is an integer range; only number ranges are drawn log-uniformly')
        elif current is not None and not current[0] > 0:
            problems.append(f'{name!r} is {list(current)}: a log-uniform range needs a low end above 0')
    return frozenset(names), '; '.join(problems)


def settings_problems(settings_cls, options, option_name):
    """(values, problems): the checked ``{key: value}`` of ``options`` and one ``'<option_name>.<key>: ...'``
    line per bad key (all of them, not only the first).

    Ranges (tuple-valued fields) are ``[low, high]`` with ``low <= high``, or one number that fixes the
    range (``frame_scale: 2`` is ``[2, 2]``; on an integer range ``[low, high)``, ``ghost_count: 3`` is
    ``[3, 4]``). Switches are true/false, ``*_prob`` values lie in [0, 1], whole floats count as integers.
    An unknown key is named with its likely correction (``strict_keys``). Bounds: see the module docstring.
    ``log_ranges`` is one range name or a list of them (:func:`_log_ranges`), checked after the ranges it names.
    """
    if not isinstance(options, dict):
        return {}, [f'{option_name}: expected a mapping of flare settings, got {_shown(options)}']
    known = {field.name: field.default for field in dataclasses.fields(settings_cls)}
    values, problems = {}, strict_keys(options, known, option_name)  # a typo gets a suggestion
    for key, value in options.items():
        if key not in known or key == LOG_RANGES:
            continue
        check = _range if isinstance(known[key], tuple) else _single
        values[key], problem = check(value, known[key], key, settings_cls)
        if problem:
            problems.append(f'{option_name}.{key}: {problem}')
    if LOG_RANGES in options and LOG_RANGES in known:
        values[LOG_RANGES], problem = _log_ranges(options[LOG_RANGES], known, values, settings_cls)
        if problem:
            problems.append(f'{option_name}.{LOG_RANGES}: {problem}')
    return values, problems


def settings_from_options(settings_cls, options, option_name):
    """``settings_cls(**options)`` after :func:`settings_problems`; ``None`` gives the defaults.

    Raises FlareSRError listing every bad key, each as ``option <option_name>.<key>: <what is wrong>``.
    """
    if options is None:
        return settings_cls()
    if isinstance(options, settings_cls):
        return options
    values, problems = settings_problems(settings_cls, options, option_name)
    if problems:
        raise FlareSRError('; '.join(f'option {problem}' for problem in problems))
    return settings_cls(**values)
