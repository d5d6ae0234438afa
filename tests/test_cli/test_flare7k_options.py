"""Flare7K's three option files run (issue 18, item 4): test copies of uformer_flare7k_option.yml,
uformer_flare7k_noreflection_option.yml and uformer_flare7kpp_baseline_option.yml (tests/data/field_options/flare7k*,
every key of the originals, only paths, sizes and num_gpu changed, CRLF line ends as shipped) train 2 iterations on
the CPU through flare_sr/train.py on a drawn Flare7K++ tree, validation with Image_Pair_Loader included; without VGG19
weights the perceptual term is dropped with one warning line."""
import os
import re
import subprocess

import numpy as np
import pytest
import torch
import yaml

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import check_option_file
from tests.helpers import (DATA_DIR, REPO, experiment_dirs, make_flare7kpp_tree, read_metrics, remove_experiment,
                           subprocess_env, train_command, unique_name)

TEMPLATES = os.path.join(DATA_DIR, 'field_options')
FLARE7K_FILES = ('flare7k_uformer.yml', 'flare7k_uformer_noreflection.yml', 'flare7kpp_uformer_baseline.yml')
VGG_WARNING = 'train.perceptual (L_percepture): no VGG19 ImageNet weights: put torchvision\'s vgg19-dcbb9e9d.pth at '


@pytest.fixture(scope='module')
def flare7k_root(tmp_path_factory):
    """A drawn Flare7K++ tree plus a validation set in Flare7K's test layout (input_00000N / gt_00000N), at 80x96 so
    Image_Pair_Loader's gt_size resizes and crops it."""
    root = tmp_path_factory.mktemp('flare7k')
    make_flare7kpp_tree(root)
    rng = np.random.default_rng(5)
    for index in range(2):
        gt = rng.uniform(0.1, 0.6, (80, 96, 3)).astype(np.float32)
        lq = np.clip(gt + 0.4 * np.exp(-((np.mgrid[:80, :96] - 40.0)**2).sum(0) / 400)[..., None], 0, 1)
        write_image(os.path.join(root, 'val', 'gt', f'gt_{index:06d}.png'), gt)
        write_image(os.path.join(root, 'val', 'input', f'input_{index:06d}.png'), lq)
    return str(root)


def fill_flare7k_template(name, data_root, folder):
    """The template with @DATA@ and @UID@ filled in, written with CRLF line ends; returns (path, options)."""
    with open(os.path.join(TEMPLATES, name), encoding='utf-8') as handle:
        text = handle.read().replace('@DATA@', data_root).replace('@UID@', unique_name('x')[2:])
    path = os.path.join(folder, name)
    with open(path, 'w', encoding='utf-8', newline='\r\n') as handle:
        handle.write(text)
    return path, yaml.safe_load(text)


@pytest.mark.slow
@pytest.mark.parametrize('template', FLARE7K_FILES)
def test_flare7k_option_file_trains_two_iterations_and_validates(flare7k_root, tmp_path, template):
    path, opt = fill_flare7k_template(template, flare7k_root, str(tmp_path))
    assert b'\r\n' in open(path, 'rb').read()
    env = dict(subprocess_env(), TORCH_HOME=str(tmp_path / 'torch_home'))  # no VGG19 weights there
    env.pop('FLARE_SR_VGG19', None)
    try:
        result = subprocess.run(train_command(path), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        lines = [line for line in result.stderr.splitlines() if line.startswith(('warning:', 'note:', 'error:'))]
        assert len(lines) == 1 and lines[0].startswith(f'warning: {VGG_WARNING}'), lines
        assert lines[0].endswith('; trained without the perceptual term')
        experiment = experiment_dirs(opt['name'])[0]
        saved = torch.load(os.path.join(experiment, 'models', 'net_g_2.pth'), weights_only=True)
        assert sorted(saved) == (['params', 'params_ema'] if opt['train']['ema_decay'] else ['params'])
        assert len(saved['params']) == 308  # the Flare7K++ release's keys
        metrics = read_metrics(os.path.join(experiment, 'metrics.json'))
        record = metrics['validations'][-1]['datasets']['flare_test']
        assert metrics['validations'][-1]['iter'] == 2 and record['images'] == 2
        assert record['mean']['psnr']['scored'] == 2 and record['mean']['ssim']['output'] > 0
        log = open(next(os.path.join(experiment, name) for name in os.listdir(experiment)
                        if name.endswith('.log'))).read()
        assert 'l1_recons' in log and 'l1_flare' in log and 'l1_base' in log and 'l_vgg' not in log
    finally:
        remove_experiment(opt['name'])


def test_the_example_option_file_passes_the_checker_silently(flare7k_root, tmp_path, capsys):
    """options/deflare_uformer_flare7kpp.yml, its datasets/ paths pointed at the drawn tree: no error, note or
    warning (every Flare7K++ key and flare_sr's own are known)."""
    with open(os.path.join(REPO, 'options', 'deflare_uformer_flare7kpp.yml'), encoding='utf-8') as handle:
        text = handle.read().replace('datasets/Flare7Kpp/test_data/real', f'{flare7k_root}/val')
    path = tmp_path / 'example.yml'
    path.write_text(text.replace('datasets/', f'{flare7k_root}/'), encoding='utf-8')
    check_option_file(str(path))
    assert capsys.readouterr().err == ''


def test_a_vgg19_file_named_but_missing_is_said_by_the_option_check(flare7k_root, tmp_path, monkeypatch):
    """A vgg_path or $FLARE_SR_VGG19 naming no file was refused when the model was built, after train.py had made (or
    archived) experiments/<name>; the option check, which runs before any folder, says it now. VGG19 weights simply
    absent from torchvision's folder stay a warning (the term is dropped)."""
    with open(os.path.join(REPO, 'options', 'deflare_uformer_flare7kpp.yml'), encoding='utf-8') as handle:
        opt = yaml.safe_load(handle.read().replace('datasets/Flare7Kpp/test_data/real', f'{flare7k_root}/val')
                             .replace('datasets/', f'{flare7k_root}/'))
    monkeypatch.delenv('FLARE_SR_VGG19', raising=False)
    missing = str(tmp_path / 'vgg19.pth')
    opt['train']['perceptual']['vgg_path'] = missing
    path = tmp_path / 'vgg_path.yml'
    path.write_text(yaml.safe_dump(opt), encoding='utf-8')
    with pytest.raises(FlareSRError, match=re.escape(f"train.perceptual.vgg_path: {missing} does not exist "
                                                     "(torchvision's vgg19-dcbb9e9d.pth)")):
        check_option_file(str(path))
    del opt['train']['perceptual']['vgg_path']
    path.write_text(yaml.safe_dump(opt), encoding='utf-8')
    monkeypatch.setenv('FLARE_SR_VGG19', str(tmp_path))
    with pytest.raises(FlareSRError, match=re.escape(f"$FLARE_SR_VGG19: {tmp_path} is a folder, not a file")):
        check_option_file(str(path))


PEER_OPTIONS = os.path.join(os.path.dirname(REPO), 'shared', 'peer_options')  # the shipped files, not in the repo


@pytest.mark.parametrize('template, shipped', [
    ('flare7k_uformer.yml', 'flare7k-uformer_flare7k_option.yml'),
    ('flare7k_uformer_noreflection.yml', 'flare7k-uformer_flare7k_noreflection_option.yml'),
    ('flare7kpp_uformer_baseline.yml', 'flare7k-uformer_flare7kpp_baseline_option.yml')])
def test_the_test_copies_hold_every_key_of_the_shipped_files(template, shipped):
    """Key paths of our copy and of Flare7K's file, where a copy of the shipped files is beside the repository."""
    if not os.path.isfile(os.path.join(PEER_OPTIONS, shipped)):
        pytest.skip(f'{shipped} is not beside the repository')

    def key_paths(node, prefix=''):
        if not isinstance(node, dict):
            return set()
        return set().union(*({prefix + str(key)} | key_paths(value, f'{prefix}{key}.') for key, value in node.items()))

    with open(os.path.join(PEER_OPTIONS, shipped), encoding='utf-8') as handle:
        theirs = key_paths(yaml.safe_load(handle))
    with open(os.path.join(TEMPLATES, template), encoding='utf-8') as handle:
        ours = key_paths(yaml.safe_load(handle.read().replace('@DATA@', '/data').replace('@UID@', 'x')))
    assert ours == theirs


def test_the_example_test_file_passes_the_checker_silently(flare7k_root, tmp_path, capsys):
    """options/test_deflare_uformer_flare7kpp.yml with its paths on the drawn tree and a checkpoint of the Flare7K++
    release's layout (random weights, params_ema): no error, note or warning."""
    from flare_sr.archs.uformer_arch import Uformer

    checkpoint = tmp_path / 'net_g_last.pth'
    torch.save({'params_ema': Uformer(img_size=512, output_ch=6).state_dict()}, checkpoint)
    os.makedirs(tmp_path / 'mask')
    with open(os.path.join(REPO, 'options', 'test_deflare_uformer_flare7kpp.yml'), encoding='utf-8') as handle:
        text = handle.read().replace('experiments/pretrained_models/flare7kpp/net_g_last.pth', str(checkpoint))
    text = text.replace('datasets/Flare7Kpp/test_data/real/mask', str(tmp_path / 'mask'))
    path = tmp_path / 'test.yml'
    path.write_text(text.replace('datasets/Flare7Kpp/test_data/real', f'{flare7k_root}/val'), encoding='utf-8')
    check_option_file(str(path), is_train=False)
    assert capsys.readouterr().err == ''
