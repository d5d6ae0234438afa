"""Reading a YAML ``flare:`` block into a settings dataclass, with one clear line per bad key."""
import dataclasses

from flare_sr.errors import FlareSRError


def settings_from_options(cls, options, option_name):
    """``cls(**options)`` after checking names and ``[low, high]`` ranges; ``None`` gives the defaults.

    Tuple-valued fields are ranges: the value must be a 2-item list with ``low <= high``.
    Raises FlareSRError naming ``option_name.key`` for an unknown key or a bad range.
    """
    if options is None:
        return cls()
    if isinstance(options, cls):
        return options
    if not isinstance(options, dict):
        raise FlareSRError(f'option {option_name}: expected a mapping of flare settings, got {options!r}')
    known = {field.name: field for field in dataclasses.fields(cls)}
    values = {}
    for key, value in options.items():
        if key not in known:
            raise FlareSRError(f'option {option_name}.{key}: unknown flare setting (known: {", ".join(sorted(known))})')
        default = known[key].default
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != 2 or value[0] > value[1]:
                raise FlareSRError(f'option {option_name}.{key}: expected [low, high] with low <= high, got {value!r}')
            value = tuple(value)
        values[key] = value
    return cls(**values)
