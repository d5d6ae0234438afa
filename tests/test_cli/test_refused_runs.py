"""A refused train.py / test.py run: exactly one ``error:`` line (nothing before it: no "Disable distributed.", no
note or warning), exit status 2, and no experiments/, results/ or tb_logger/ folder created or archived. What the
option values and the folders already tell (pairing, selection, a checkpoint that does not fit the network) is
said by the option check, before BasicSR's banner and folders."""
import copy
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from flare_sr import cli
from flare_sr.archs.hinet_arch import HINet
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker
from tests.helpers import (REPO, TEST_SCRIPT, TRAIN_SCRIPT, flare_data, hinet_options, pix2pix_options,
                           remove_experiment, run_main_in_process, run_train, subprocess_env, unique_name,
                           write_options)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('refused')
    return flare_data(root, 2, 1)


def _no_folders(name):
    leftovers = [os.path.join(REPO, top, entry) for top in ('experiments', 'results', 'tb_logger')
                 if os.path.isdir(os.path.join(REPO, top)) for entry in os.listdir(os.path.join(REPO, top))
                 if entry == name or entry.startswith(f'{name}_archived_')]
    remove_experiment(name)
    return leftovers == []


def _in_process(main, path, capsys, monkeypatch, *args):
    """train_main / test_main in this process: (exit status, stdout + stderr lines)."""
    monkeypatch.setattr(cli, 'keep_freed_cpu_memory', lambda: None)  # a setting of the whole (test) process
    monkeypatch.setattr(sys, 'argv', ['flare_sr/x.py', '-opt', str(path), *args])
    code, out, err = run_main_in_process(lambda argv: main(), [], capsys)
    return code, (out + err).splitlines()


def _bad_template(data, name):
    opt = hinet_options(data, name, total_iter=1)
    opt['datasets']['val']['filename_tmpl'] = '{}_flare'
    return opt


@pytest.mark.parametrize('main', [cli.train_main, cli.test_main], ids=['train', 'test'])
def test_a_filename_tmpl_that_pairs_nothing_is_said_by_the_option_check(data, tmp_path, capsys, monkeypatch, main):
    name = unique_name('refused_tmpl')
    opt = _bad_template(data, name)
    if main is cli.test_main:
        del opt['datasets']['train'], opt['train']
    path = write_options(tmp_path / 'tmpl.yml', opt)
    lq_dir, gt_dir = data['val']
    code, lines = _in_process(main, path, capsys, monkeypatch)
    assert code == 2
    assert lines == [
        f"error: {path}: datasets.val.filename_tmpl: '{{}}_flare' pairs no file: for test_label_10000.png in {gt_dir} "
        f'it looks for the lq stem "test_label_10000_flare" in {lq_dir}, whose files are like test_input_10000.png '
        "(lq stem = filename_tmpl.format(gt stem), as BasicSR's); fix or remove filename_tmpl"]
    assert _no_folders(name)


@pytest.mark.parametrize('main', [cli.train_main, cli.test_main], ids=['train', 'test'])
@pytest.mark.parametrize('metric, words', [
    ({'type': 'calculate_flare_psnr', 'mask_folder': 'MASKS'}, ': calculate_flare_psnr: no mask for '),
    ({'type': 'calculate_flare_psnr', 'mask_folder': 'MASKS', 'mask_type': 'glare', 'gray': True},
     'a grayscale mask has no classes, so mask_type glare cannot be read from it'),
    ({'type': 'calculate_flare_psnr', 'threshold': 3}, '.threshold must be a fraction of full scale in [0, 1)'),
    ({'type': 'calculate_flare_psnr', 'mask_type': 'streak'}, '.mask_type streak reads annotated masks, but no '
                                                              'mask_folder is set'),
    ({'type': 'calculate_niqe', 'crop_border': 0}, 'calculate_niqe fits a covariance to the blocks'),
    ({'type': 'calculate_ssim', 'crop_border': 30}, 'crop_border 30: calculate_ssim needs at least 71x71 pixels')])
def test_validation_pairs_a_metric_cannot_score_are_said_before_any_folder(data, tmp_path, capsys, monkeypatch, main,
                                                                           metric, words):
    """A mask missing for a validation pair or unable to give the metric's region, metric options that score
    nothing, or an image too small for a metric, were found when the validation set was built or scored: after
    BasicSR had made (or archived) experiments/<name> and tb_logger/<name>, or after training."""
    name = unique_name('refused_metric')
    opt = hinet_options(data, name, total_iter=1)
    (tmp_path / 'masks').mkdir()
    metric = dict(metric)
    if metric.pop('gray', False):  # binary masks, one per validation input, of its size
        for lq_name in os.listdir(data['val'][0]):
            write_image(tmp_path / 'masks' / lq_name, np.zeros((64, 64), np.uint8), gray=True)
    opt['val']['metrics']['scored'] = {key: str(tmp_path / 'masks') if value == 'MASKS' else value
                                       for key, value in metric.items()}
    if main is cli.test_main:
        del opt['datasets']['train'], opt['train']
    path = write_options(tmp_path / 'metric.yml', opt)
    code, lines = _in_process(main, path, capsys, monkeypatch)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f'error: {path}: val.metrics.scored'), lines
    assert words in lines[0], lines[0]
    assert _no_folders(name)


def test_selections_that_select_nothing_are_option_problems(data, tmp_path):
    """A fold no row has, a split CSV naming a missing file, a meta_info_file listing a missing image: said by the
    check (folders listed, meta files read, no image decoded)."""
    lq_dir, gt_dir = data['val']
    csv = tmp_path / 'split.csv'
    csv.write_text('img_id,input_img,label_img,fold\n'
                   'test_10000,test_input_10000.png,test_label_10000.png,val\n')
    meta = tmp_path / 'meta.txt'
    meta.write_text('nosuch.png (64,64,3)\n')
    cases = [({'meta_csv': str(csv), 'fold': 'train'},
              f"datasets.val: {csv}: no row has fold ['train']; folds present: ['val']"),
             ({'meta_info_file': str(meta)}, f'datasets.val: {meta}: lists nosuch.png, which is not in {gt_dir}'),
             ({'meta_info_file': str(tmp_path / 'gone.txt')},
              f'datasets.val.meta_info_file: {tmp_path / "gone.txt"} does not exist')]
    for extra, expected in cases:
        opt = {'type': 'PairedFlareDataset', 'name': 'val', 'dataroot_lq': lq_dir, 'dataroot_gt': gt_dir, **extra}
        problems = OptionChecker(is_train=False).check({'datasets': {'val': opt}})
        assert [line.split(' (relative paths')[0] for line in problems if line.startswith('datasets')] == [expected]
    fine = {'type': 'PairedFlareDataset', 'name': 'val', 'dataroot_lq': lq_dir, 'dataroot_gt': gt_dir,
            'meta_csv': str(csv), 'fold': 'val'}
    assert [line for line in OptionChecker(is_train=False).check({'datasets': {'val': fine}})
            if line.startswith('datasets')] == []


def test_a_checkpoint_that_does_not_fit_is_one_line_and_nothing_is_archived(data, tmp_path, capsys, monkeypatch):
    """path.pretrain_network_g of another size: said before BasicSR would archive experiments/<name>."""
    name = unique_name('refused_ckpt')
    wrong = tmp_path / 'wide.pth'
    torch.save({'params': HINet(wf=8, depth=2).state_dict()}, wrong)
    opt = hinet_options(data, name, total_iter=1)
    opt['path']['pretrain_network_g'] = str(wrong)
    path = write_options(tmp_path / 'ckpt.yml', opt)
    existing = os.path.join(REPO, 'experiments', name)
    os.makedirs(existing)  # a run the user has: it must stay where it is
    try:
        code, lines = _in_process(cli.train_main, path, capsys, monkeypatch)
        assert code == 2
        assert len(lines) == 1 and lines[0].startswith(
            f'error: {path}: path.pretrain_network_g: {wrong} does not fit HINet: ')
        assert ('keys of another shape (e.g. down_path_1.0.identity.weight: 8x8x1x1 in the file, 4x4x1x1 in the '
                'network)') in lines[0]
        # strict_load_g: false would not help: a few biases fit, the rest would keep random weights
        assert re.search(r'; only \d+\.\d% of its weights would load$', lines[0])
        assert os.listdir(os.path.join(REPO, 'experiments')).count(name) == 1
    finally:
        os.rmdir(existing)
    assert _no_folders(name)


def test_a_fitting_checkpoint_and_strict_load_false_pass_the_check(data, tmp_path):
    """The same check passes what BasicSR would load: the right size, or strict_load_g: false with keys that fit."""
    opt = hinet_options(data, 'never', total_iter=1)
    good, partial = tmp_path / 'good.pth', tmp_path / 'partial.pth'
    state = HINet(wf=4, depth=2).state_dict()
    torch.save({'params': state}, good)
    torch.save({'params': {**state, 'extra.weight': torch.zeros(1)}}, partial)
    for path, strict in ((good, True), (partial, False)):
        checked = copy.deepcopy(opt)
        checked['path'].update(pretrain_network_g=str(path), strict_load_g=strict)
        assert OptionChecker(is_train=True).check(checked) == []
    checked['path']['strict_load_g'] = True
    assert OptionChecker(is_train=True).check(checked) == [
        f'path.pretrain_network_g: {partial} does not fit HINet: 1 unexpected keys (e.g. extra.weight) (a checkpoint '
        'of another network or size?); set path.strict_load_g: false to load the keys that fit']


def test_misspelt_former_arch_argument_names_get_the_current_name(data):
    opt = pix2pix_options(data, 'never', total_iter=1)
    opt['network_g']['ngff'] = 4
    opt['network_d']['n_layer'] = 2
    opt['network_d'].pop('num_layers')
    problems = OptionChecker(is_train=True).check(opt)
    assert 'network_g.ngff: unknown key (did you mean num_feat? ngf is its former name)' in problems
    assert 'network_d.n_layer: unknown key (did you mean num_layers? n_layers is its former name)' in problems
    opt = pix2pix_options(data, 'never', total_iter=1)
    del opt['network_d']['num_in_ch']
    opt['network_d'].update(in_ch=6, input_nc=3)
    assert 'network_d.input_nc: 3 contradicts network_d.in_ch: 6 (both are deprecated names of network_d.num_in_ch)' \
        in OptionChecker(is_train=True).check(opt)


@pytest.mark.slow
@pytest.mark.parametrize('script', ['train', 'test'])
def test_a_refused_run_prints_its_error_line_alone(data, tmp_path, script):
    """A fork's key (a note), an unknown key (a warning) and BasicSR's "Disable distributed." would come before
    the error: a refused run prints the error line and nothing else."""
    name = unique_name('refused_alone')
    opt = _bad_template(data, name)
    opt['datasets']['val']['use_flip'] = False  # a note (HINet's name for use_hflip)
    opt['bogus'] = 1  # a warning
    if script == 'test':
        del opt['datasets']['train'], opt['train']
    write_options(tmp_path / 'bad.yml', opt)
    result = run_train('bad.yml', tmp_path, script=TEST_SCRIPT if script == 'test' else TRAIN_SCRIPT)
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.yml: datasets.val.filename_tmpl: '{}_flare' pairs no")
    assert _no_folders(name)


@pytest.mark.slow
def test_an_accepted_run_prints_what_was_held_back(data, tmp_path):
    """BasicSR's "Disable distributed." and the checker's warnings come out once the options are accepted."""
    name = unique_name('accepted')
    opt = hinet_options(data, name, total_iter=1)
    del opt['datasets']['train'], opt['train']
    write_options(tmp_path / 'ok.yml', opt)
    try:
        result = run_train('ok.yml', tmp_path, script=TEST_SCRIPT)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith('Disable distributed.\n')
        assert result.stderr.startswith('warning: ok.yml: path.pretrain_network_g: not set, so network_g is tested '
                                        'with random weights\n')
    finally:
        remove_experiment(name)


def test_help_of_train_and_test_is_honest(capsys, monkeypatch):
    monkeypatch.setattr(cli, 'keep_freed_cpu_memory', lambda: None)
    monkeypatch.setattr(sys, 'argv', ['test.py', '--help'])
    code, out, _ = run_main_in_process(lambda argv: cli.test_main(), [], capsys)
    assert code == 0 and '--precision {fp32,bf16,fp16,auto}' in out and '--auto_resume' not in out
    assert '--local_rank LOCAL_RANK, --local-rank LOCAL_RANK' in out
    monkeypatch.setattr(sys, 'argv', ['train.py', '--help'])
    code, out, _ = run_main_in_process(lambda argv: cli.train_main(), [], capsys)
    assert code == 0 and '--auto_resume' in out and '--precision' not in out
    assert '--local_rank LOCAL_RANK, --local-rank LOCAL_RANK' in out


def test_precision_without_a_value_says_it_needs_one(data, tmp_path, capsys, monkeypatch):
    path = write_options(tmp_path / 'x.yml', hinet_options(data, 'never', total_iter=1))
    code, lines = _in_process(cli.test_main, path, capsys, monkeypatch, '--precision')
    assert (code, lines) == (2, ['error: --precision: expected one argument'])


@pytest.mark.slow
def test_the_cli_module_is_not_a_command():
    result = subprocess.run([sys.executable, '-m', 'flare_sr.cli', '--help'], cwd=REPO, env=subprocess_env(),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode != 0 and result.stdout == ''
    assert result.stderr.splitlines() == [
        'error: flare_sr.cli is not a command: run flare-sr-train, flare-sr-test, flare-sr-infer or flare-sr-pipeline '
        '(or flare_sr/train.py, test.py, infer.py, train_pipeline.py)']


def test_a_network_whose_arch_refuses_its_arguments_is_said_by_the_option_check(data, tmp_path, capsys, monkeypatch):
    """BasicSR's MSRResNet accepts ``upscale: 1`` by signature but its constructor fails: one line, no folder."""
    name = unique_name('refused_arch')
    opt = hinet_options(data, name, total_iter=1)
    opt.update(model_type='SRModel', network_g={'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8,
                                                'num_block': 1, 'upscale': 1})
    path = write_options(tmp_path / 'arch.yml', opt)
    code, lines = _in_process(cli.train_main, path, capsys, monkeypatch)
    assert code == 2
    assert lines == [f"error: {path}: network_g: MSRResNet cannot be built with these arguments (AttributeError: "
                     "'MSRResNet' object has no attribute 'upconv1')"]
    assert _no_folders(name)
    opt['network_g']['upscale'] = 2  # the same network with a value it takes passes the check
    assert not [line for line in OptionChecker(is_train=True).check(opt) if line.startswith('network_g')]
