"""The one YAML loader flare_sr reads option files with: safe and ordered.

BasicSR 1.4.2's ``ordered_yaml()`` returns YAML's full ``Loader``, which builds whatever Python object a tag
names, so ``note: !!python/object/apply:os.system ["..."]`` runs a shell command while the file is read
(CodeFormer#446). ``OrderedSafeLoader`` is YAML's safe loader (mappings, lists, strings, numbers, booleans,
null, timestamps, binary) with mappings as ``OrderedDict``, as BasicSR's gives them: a normal file reads the
same (key order, ``!!float 5e3``, anchors and aliases), and merge keys (``<<: *base``), which BasicSR's loader
cannot construct, are merged. Any other tag is a FlareSRError naming the file and line; nothing is built from
it. ``flare_sr.basicsr_fixes`` makes BasicSR's own ``parse_options`` read with it.
"""
from collections import OrderedDict

import yaml

from flare_sr.errors import FlareSRError

_YAML_TAG = 'tag:yaml.org,2002:'
# What YAML's full loader builds from these: any function called, any class or module imported.
_CODE_TAGS = ('python/object', 'python/name', 'python/module')


class OrderedSafeLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):
    """``yaml.SafeLoader`` (LibYAML's where installed) with ordered mappings; unknown tags are refused."""


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


def load_yaml(stream):
    """``stream`` (an open file or a string) read with ``OrderedSafeLoader``; YAML errors propagate."""
    return yaml.load(stream, Loader=OrderedSafeLoader)
