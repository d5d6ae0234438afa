"""Option files are read safely: a python tag is refused in one line (file and line) and never runs; a normal file
reads as BasicSR's loader reads it (order, !!float, anchors), and merge keys work; a key given twice in one mapping is
refused in one line (file, line, key path), where YAML lets the last silently win."""
import os
from collections import OrderedDict

import basicsr.utils.options
import cv2
import numpy as np
import pytest
import yaml

from flare_sr import basicsr_fixes
from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_option_file, load_option_file
from flare_sr.utils.safe_yaml import OrderedSafeLoader, load_yaml
from tests.helpers import REPO, TRAIN_SCRIPT, infer_in_process, load_script, run_train

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


DUPLICATE_LOSS = '''name: dup
model_type: HINetModel
num_gpu: 0
train:
  total_iter: 10
  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
  optim_g: {type: Adam, lr: 1e-3}
  pixel_opt:
    type: L1Loss
    loss_weight: 0
'''


@pytest.mark.parametrize('text, message', [
    (DUPLICATE_LOSS, 'line 10: train.pixel_opt is given twice (first at line 6; the second would silently replace '
                     'the first)'),
    ('datasets:\n  train:\n    scattering_dict:\n      Flare7K: a/Compound_Flare\n      Flare7K: b/Compound_Flare\n',
     'line 5: datasets.train.scattering_dict.Flare7K is given twice (first at line 4; the second would silently '
     'replace the first)'),
    ('val:\n  metrics:\n    - {type: psnr, crop_border: 0, crop_border: 4}\n',
     'line 3: val.metrics[0].crop_border is given twice (first at line 3; the second would silently replace the '
     'first)'),
    ('name: a\nname: b\n', 'line 2: name is given twice (first at line 1; the second would silently replace the '
                           'first)'),
    ('num_gpu: 1\nnum_gpu: 1\n', 'line 2: num_gpu is given twice'),  # the same value: still a mistake to fix once
])
def test_a_key_given_twice_is_refused_naming_file_line_and_key_path(tmp_path, text, message):
    path = tmp_path / 'dup.yml'
    path.write_text(text)
    with pytest.raises(FlareSRError) as error:
        load_option_file(str(path))
    assert str(error.value).startswith(f'{path} {message}'), error.value


def test_merge_keys_aliases_and_equal_keys_in_other_mappings_are_not_duplicates():
    text = ('base: &b {type: Adam, lr: 1}\noptim_g: {<<: *b, lr: 2}\noptim_d: *b\n'
            'a: {x: 1}\nb: {x: 1}\nlist: [{x: 1}, {x: 2}]\n')
    opt = load_yaml(text)
    assert opt['optim_g'] == OrderedDict([('type', 'Adam'), ('lr', 2)])  # an explicit key overrides a merged one
    assert opt['optim_d'] is opt['base'] and opt['list'][1]['x'] == 2


@pytest.mark.slow
def test_train_py_refuses_a_duplicate_key_in_one_line_with_exit_2(tmp_path):
    """The real command line: two pixel_opt gave l_pix 0 at every step; now one error line before anything starts."""
    path = tmp_path / 'dup.yml'
    path.write_text(DUPLICATE_LOSS)
    result = run_train(path, tmp_path, script=TRAIN_SCRIPT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f'error: {path} line 10: train.pixel_opt is given twice (first at line 6; '
                                          'the second would silently replace the first)']
    assert not os.path.exists(os.path.join(REPO, 'experiments', 'dup'))


def test_infer_and_the_bench_scripts_read_option_files_through_the_same_loader(tmp_path, capsys):
    path = tmp_path / 'dup.yml'
    path.write_text('name: dup\nmodel_type: CascadeModel\nval:\n  tile: {size: 64, size: 128}\n')
    expected = f'{path} line 4: val.tile.size is given twice'
    photo = str(tmp_path / 'photo.png')
    cv2.imwrite(photo, np.full((16, 16, 3), 100, np.uint8))
    code, err = infer_in_process(capsys, '-opt', path, '--input', photo, '--output', tmp_path / 'out')
    assert code == 2 and err.startswith(f'error: {expected}'), err
    with pytest.raises(FlareSRError, match=expected):
        load_script('bench/_common').read_options(str(path))


def test_values_are_shown_in_yaml_terms_not_python_reprs():
    from flare_sr.utils.safe_yaml import yaml_shown as shown

    assert shown(load_yaml('a: {x: 1, y: 2, z: 3, w: 4}')['a']) == 'a mapping (keys x, y, z, ...)'
    assert [shown(value) for value in ([1, 2], [], {}, 'x', None, True, 2.5)] == [
        'a list of 2', 'an empty list', 'an empty mapping', "the string 'x'", 'null (~)', 'true', '2.5']
