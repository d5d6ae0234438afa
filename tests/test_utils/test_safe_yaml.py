"""Option files are read safely: a python tag is refused in one line (file and line) and never runs; a normal file
reads as BasicSR's loader reads it (order, !!float, anchors), and merge keys work."""
from collections import OrderedDict

import basicsr.utils.options
import pytest
import yaml

from flare_sr import basicsr_fixes
from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_option_file, load_option_file
from flare_sr.utils.safe_yaml import OrderedSafeLoader, load_yaml
from tests.helpers import load_script

NORMAL = '''name: run
model_type: HINetModel
base: &optim
  type: AdamW
  lr: !!float 2e-4
  betas: [0.9, 0.99]
train:
  total_iter: !!float 5e3
  optim_g: *optim
  z_last: ~
  a_first: true
'''


def tagged_file(tmp_path, marker, tag='!!python/object/apply:os.system'):
    path = tmp_path / 'evil.yml'
    path.write_text(f'# from someone else\nname: evil\nnote: {tag} ["touch {marker}"]\nnum_gpu: 0\n')
    return path


def test_normal_file_reads_as_basicsr_reads_it(tmp_path):
    path = tmp_path / 'normal.yml'
    path.write_text(NORMAL)
    ours = load_option_file(str(path))
    basicsr_ordered_yaml = getattr(basicsr.utils.options.ordered_yaml, '__wrapped__',
                                   basicsr.utils.options.ordered_yaml)  # BasicSR's own, wrapped or not
    with open(path) as handle:
        theirs = yaml.load(handle, Loader=basicsr_ordered_yaml()[0])
    assert ours == theirs and isinstance(ours['train'], OrderedDict)
    assert list(ours['train']) == ['total_iter', 'optim_g', 'z_last', 'a_first']  # file order, not sorted
    assert ours['train']['total_iter'] == 5000.0 and ours['train']['optim_g']['lr'] == 2e-4
    assert ours['train']['optim_g'] is ours['base']  # an alias is the anchored mapping, as in BasicSR's loader


def test_merge_keys_are_merged(tmp_path):
    """BasicSR's loader cannot construct ``<<`` (ConstructorError); ours merges it as YAML's safe loader does."""
    text = 'base: &b {lr: 1, k: 1}\ntrain:\n  <<: *b\n  k: 2\n'
    assert load_yaml(text)['train'] == OrderedDict([('lr', 1), ('k', 2)])


@pytest.mark.parametrize('tag', ['!!python/object/apply:os.system', '!!python/object/new:os.system',
                                 '!!python/name:os.system', '!!python/module:os'])
def test_python_tags_are_refused_in_one_line_and_never_run(tmp_path, tag):
    marker = tmp_path / 'payload_ran'
    path = tagged_file(tmp_path, marker, tag)
    with pytest.raises(FlareSRError) as error:
        load_option_file(str(path))
    assert str(error.value) == (f'{path} line 3: the tag {tag} can run code; flare_sr reads option files safely and '
                                'refuses it')
    assert not marker.exists()


def test_other_unknown_tags_are_refused(tmp_path):
    with pytest.raises(FlareSRError, match=r'^<unicode string> line 2: the tag !foo is not plain YAML; flare_sr reads '
                                           r'option files safely'):
        load_yaml('a: 1\nb: !foo 3\n')


def test_every_reader_of_option_files_refuses_the_tag(tmp_path, capsys):
    """load_option_file, check_option_file, BasicSR's own ordered_yaml once the fixes are applied, and the scripts
    that read option files themselves (preview_augmentations)."""
    marker = tmp_path / 'payload_ran'
    path = tagged_file(tmp_path, marker)
    expected = f'{path} line 3: the tag !!python/object/apply:os.system can run code'
    for read in (load_option_file, check_option_file):
        with pytest.raises(FlareSRError, match=expected):
            read(str(path))
    basicsr_fixes.apply()
    assert basicsr.utils.options.ordered_yaml()[0] is OrderedSafeLoader  # parse_options looks it up at call time
    with open(path) as handle, pytest.raises(FlareSRError, match=expected):
        yaml.load(handle, Loader=basicsr.utils.options.ordered_yaml()[0])
    preview = load_script('preview_augmentations')
    with pytest.raises(FlareSRError, match=expected):
        preview.dataset_options(type('Args', (), {'opt': str(path), 'phase': 'train'})())
    assert not marker.exists()


def _bomb(depth=9, width=9):
    text = 'a0: &a0 [' + ', '.join(['lol'] * width) + ']\n'
    for level in range(1, depth):
        text += f'a{level}: &a{level} [' + ', '.join([f'*a{level - 1}'] * width) + ']\n'
    return text


@pytest.mark.parametrize('text, words', [(_bomb(), 'expand to more than 1,000,000 values'),
                                         ('a: &a [1, *a]\n', 'refers to itself')])
def test_a_yaml_bomb_or_a_self_reference_is_refused_not_walked(tmp_path, text, words):
    """Aliases nest: 9 levels of 9 read as shared lists in no time, but every walk of the options (the checker,
    BasicSR's dict2str) visits 9^9 values: the command hung. A list holding itself recursed without end."""
    path = tmp_path / 'bomb.yml'
    path.write_text('name: x\nnum_gpu: 0\n' + text)
    with pytest.raises(FlareSRError) as error:
        load_option_file(str(path))
    assert str(error.value).startswith(f'{path}: ') and words in str(error.value), error.value
    assert load_yaml(_bomb(depth=3))['a2'][0][0] == ['lol'] * 9  # a few levels are fine
