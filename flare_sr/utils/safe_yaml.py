"""The one YAML loader flare_sr reads option files with: safe and ordered.

BasicSR 1.4.2's ``ordered_yaml()`` returns YAML's full ``Loader``, which builds whatever Python object a tag
names, so ``note: !!python/object/apply:os.system ["..."]`` runs a shell command while the file is read
(CodeFormer#446). ``OrderedSafeLoader`` is YAML's safe loader (mappings, lists, strings, numbers, booleans,
null, timestamps, binary) with mappings as ``OrderedDict``, as BasicSR's gives them: a normal file reads the
same (key order, ``!!float 5e3``, anchors and aliases), and merge keys (``<<: *base``), which BasicSR's loader
cannot construct, are merged. Any other tag is a FlareSRError naming the file and line; nothing is built from
it. So is a key given twice in one mapping, which YAML's loaders let the last silently win (a second
``pixel_opt`` replaced the first). ``flare_sr.basicsr_fixes`` makes BasicSR's own ``parse_options`` read with it.
"""
from collections import OrderedDict

import yaml

from flare_sr.errors import FlareSRError

_YAML_TAG = 'tag:yaml.org,2002:'
# What YAML's full loader builds from these: any function called, any class or module imported.
_CODE_TAGS = ('python/object', 'python/name', 'python/module')


# Values an option file may expand to through aliases: real ones hold hundreds; a "billion laughs" file (9 levels
# of 9 aliases) reads as shared lists at once, but every walk of the options (the checker, BasicSR's dict2str)
# visits 9^9 values.
MAX_VALUES = 1_000_000


class OrderedSafeLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):
    """``yaml.SafeLoader`` (LibYAML's where installed) with ordered mappings; unknown tags are refused, and so is a
    document that refers to itself or expands to more than ``MAX_VALUES`` values through aliases."""

    def construct_document(self, node):
        _refuse_duplicate_keys(self, node, '', set())
        data = super().construct_document(node)
        _expanded_size(data, {}, node.start_mark.name)
        return data


def _refuse_duplicate_keys(loader, node, key_path, seen):
    """FlareSRError for the first mapping that gives a key twice, naming the file, the line of the second and the
    key path (``train.pixel_opt``): YAML keeps the last silently, so a second ``pixel_opt`` replaced the first, or a
    second flare folder under one ``scattering_dict`` name dropped the first. Each node is walked once (aliases
    share theirs); a key that merges in (``<<: *base``) may be overridden, as YAML means it."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(loader, item, f'{key_path}[{index}]', seen)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    first = {}
    for key_node, value_node in node.value:
        if key_node.tag == _YAML_TAG + 'merge':
            key = '<<'
        elif isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node)  # as the mapping will hold it: 1, 1.0 and true are one key
        else:
            continue  # a list or mapping as a key: YAML's own error follows
        shown = f'{key_path}.{key}' if key_path else str(key)
        try:
            if key in first:
                raise FlareSRError(
                    f'{key_node.start_mark.name} line {key_node.start_mark.line + 1}: {shown} is given twice (first '
                    f'at line {first[key] + 1}; the second would silently replace the first)')
            first[key] = key_node.start_mark.line
        except TypeError:  # unhashable: YAML's own error follows
            continue
        _refuse_duplicate_keys(loader, value_node, shown, seen)


def _expanded_size(value, sizes, name):
    """How many values ``value`` holds with every alias expanded, counted once per shared object (``sizes``: id ->
    size, None while counting); FlareSRError past MAX_VALUES or for an object inside itself."""
    if not isinstance(value, (dict, list)):
        return 1
    key = id(value)
    if key in sizes:
        if sizes[key] is None:
            raise FlareSRError(f'{name}: an anchor refers to itself (a value inside itself); option files are trees')
        return sizes[key]
    sizes[key] = None
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    size = 1 + sum(_expanded_size(item, sizes, name) for item in items)
    if size > MAX_VALUES:
        raise FlareSRError(f'{name}: its aliases expand to more than {MAX_VALUES:,} values (a "billion laughs" '
                           'file?); flare_sr refuses it')
    sizes[key] = size
    return size


def _ordered_mapping(loader, node):
    loader.flatten_mapping(node)  # merge keys, as the safe loader's own mappings do
    return OrderedDict(loader.construct_pairs(node))


def _refuse_tag(loader, node):
    tag = node.tag
    shown = '!!' + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag
    where = f'{node.start_mark.name} line {node.start_mark.line + 1}'
    if tag.startswith(tuple(_YAML_TAG + prefix for prefix in _CODE_TAGS)):
        raise FlareSRError(f'{where}: the tag {shown} can run code; flare_sr reads option files safely and refuses it')
    raise FlareSRError(f'{where}: the tag {shown} is not plain YAML; flare_sr reads option files safely (mappings, '
                       'lists, strings, numbers, booleans, null) and refuses it')


OrderedSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _ordered_mapping)
OrderedSafeLoader.add_constructor(None, _refuse_tag)


def yaml_shown(value, limit=3):
    """An option value as the option file spells it, for messages: ``a mapping (keys a, b)``, ``a list of 2``,
    ``the string 'x'``, ``null (~)``, ``true``, ``5`` (not Python's ``OrderedDict([('a', ...)])``)."""
    if isinstance(value, dict):
        if not value:
            return 'an empty mapping'
        keys = ', '.join(map(str, list(value)[:limit])) + (', ...' if len(value) > limit else '')
        return f'a mapping (keys {keys})'
    if isinstance(value, (list, tuple)):
        return f'a list of {len(value)}' if value else 'an empty list'
    if isinstance(value, str):
        return f'the string {value!r}'
    if value is None:
        return 'null (~)'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return repr(value)


def plain(value):
    """``value`` with the loader's OrderedDicts as plain dicts (lists walked), so ``yaml.safe_dump`` writes it."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def load_yaml(stream):
    """``stream`` (an open file or a string) read with ``OrderedSafeLoader``; YAML errors propagate."""
    return yaml.load(stream, Loader=OrderedSafeLoader)
