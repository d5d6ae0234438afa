"""YAML 1.1 reads ``2e-4`` and ``1e3`` as text: the hint every option check gives for such a string."""
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
