"""Numbers as YAML gives them: ``2e-4`` and ``1e3`` read as text (the hint every option check gives for such a
string), and ``48.0`` read as a float where a count is meant (``positive_whole``)."""
import re

import yaml

_NUMBER = re.compile(r'([-+]?\d+)(\.\d*)?[eE]([-+]?)(\d+)')


def text_number_hint(value):
    """`` (YAML reads 2e-4 as text: write 2.0e-4 or !!float 2e-4)`` for a string a user meant as a number;
    `` (quoted: remove the quotes)`` for a quoted float; ``''`` for anything else."""
    number = _NUMBER.fullmatch(value) if isinstance(value, str) else None
    if not number:
        return ''
    if isinstance(yaml.safe_load(value), float):
        return ' (quoted: remove the quotes)'
    fraction = number[2] if number[2] and len(number[2]) > 1 else (number[2] or '.') + '0'
    fixed = f'{number[1]}{fraction}e{number[3] or "+"}{number[4]}'
    return f' (YAML reads {value} as text: write {fixed} or !!float {value})'


def positive_whole(value):
    """``value`` as an int where it is a positive whole number (48, or 48.0 as the option checker takes counts), else
    None (booleans, fractions, text, 0 and below)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
