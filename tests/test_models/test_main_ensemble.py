"""cascade.main_ensemble: stage I as the mean of several U-Net checkpoints (the cross-fit fold models at test time)."""
import os
import shutil
from collections import OrderedDict

import numpy as np
import pytest
import torch
from basicsr.models import build_model

from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.errors import FlareSRError
from flare_sr.pipeline.cross_fit import fold_name
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker, load_option_file
from tests.helpers import UNET, cascade_checkpoints, cascade_options, run_cascade_test, save_unet


def _members(tmp_path):
    main, _, paths = cascade_checkpoints(tmp_path)
    extra = [save_unet(tmp_path / f'fold{k}.pth', seed=10 + k) for k in (1, 2)]
    return [main] + extra, paths, [str(tmp_path / f'fold{k}.pth') for k in (1, 2)]


def test_stage_one_is_the_mean_of_the_checkpoints_outputs_before_the_clamp(tmp_path):
    nets, paths, extra = _members(tmp_path)
    lq = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))  # a multiple of the grid: no padding
    with torch.no_grad():
        raw = [net(lq * 2 - 1) for net in nets]
        expected = ((torch.stack(raw).mean(0) + 1) / 2).clamp(0, 1)
        alone = ((raw[0] + 1) / 2).clamp(0, 1)
    assert (expected - alone).abs().mean() > 0.01  # the members differ: the mean is not the main net's output
    whole = dict(tile=dict(size=None))
    model = build_model(cascade_options(paths, val=whole, cascade=dict(use_post=False, main_ensemble=extra)))
    torch.testing.assert_close(model.predict(lq), expected, atol=1e-5, rtol=0)
    tiled = build_model(cascade_options(paths, cascade=dict(use_post=False, main_ensemble=extra)))  # 96 px tiles
    assert (tiled.predict(lq) - expected).abs().mean() < 0.01
    with_post = build_model(cascade_options(paths, val=whole, cascade=dict(main_ensemble=extra)))
    assert with_post.predict(lq).shape == lq.shape


@pytest.mark.parametrize('case, message', [
    ('duplicate of main', r'^cascade.main_ensemble\[0\]: .*net_main.pth is the same file as '
                          r'path.pretrain_network_main; list each checkpoint once$'),
    ('a byte copy of main', r'^cascade.main_ensemble\[0\]: .*copy.pth holds the same bytes as '
                            r'path.pretrain_network_main; list each checkpoint once$'),
    ('listed twice', r'^cascade.main_ensemble\[1\]: .*fold1.pth is the same file as '
                     r'cascade.main_ensemble\[0\]; list each checkpoint once$'),
    ('a HINet checkpoint', r'^cascade.main_ensemble\[0\]: .*net_post.pth does not fit Pix2PixUNet'),
    ('a wider U-Net', r'^cascade.main_ensemble\[0\]: .*wide.pth does not fit Pix2PixUNet: .*; only \d+\.\d% of its '
                      r'weights would load$'),
    ('an extra key', r'^cascade.main_ensemble\[0\]: .*extra.pth does not fit Pix2PixUNet: 1 unexpected keys .*; set '
                     r'path.strict_load_main: false to load the keys that fit$'),
    ('an EMA-only checkpoint', r"^cascade.main_ensemble\[0\]: .*ema.pth has no 'params' entry \(it holds params_ema\); "
                               r'set path.param_key_main to the entry that holds the weights$'),
    ('stage I off', r'^cascade.main_ensemble: stage I is switched off \(use_main: false\); remove the ensemble'),
    ('no main checkpoint', r'^cascade.main_ensemble: set path.pretrain_network_main too'),
    ('not a path', r'^cascade.main_ensemble\[0\]: 3 is not a checkpoint path$'),
    ('a string', r"^cascade.main_ensemble: expected a list of checkpoint paths, got the string '.*fold1.pth'$"),
    ('a mapping', r'^cascade.main_ensemble: expected a list of checkpoint paths, got a mapping \(keys a\)$'),
])
def test_a_wrong_ensemble_is_one_line(tmp_path, case, message):
    _, paths, extra = _members(tmp_path)
    ensemble, switches, path = extra, {}, dict(pretrain_network_main=paths['main'], pretrain_network_post=paths['post'])
    if case == 'duplicate of main':
        ensemble = [paths['main']]
    elif case == 'a byte copy of main':
        ensemble = [shutil.copy(paths['main'], tmp_path / 'copy.pth')]
    elif case == 'listed twice':
        ensemble = [extra[0], extra[0]]
    elif case == 'a HINet checkpoint':
        ensemble = [paths['post']]
    elif case == 'a wider U-Net':
        torch.save({'params': Pix2PixUNet(**dict(UNET, num_feat=16)).state_dict()}, tmp_path / 'wide.pth')
        ensemble = [str(tmp_path / 'wide.pth')]
    elif case == 'an extra key':
        torch.save({'params': dict(torch.load(extra[0])['params'], extra=torch.zeros(1))}, tmp_path / 'extra.pth')
        ensemble = [str(tmp_path / 'extra.pth')]
    elif case == 'an EMA-only checkpoint':
        torch.save({'params_ema': torch.load(extra[0])['params']}, tmp_path / 'ema.pth')
        ensemble = [str(tmp_path / 'ema.pth')]
    elif case == 'stage I off':
        switches = dict(use_main=False)
    elif case == 'no main checkpoint':
        path['pretrain_network_main'] = None
    elif case == 'not a path':
        ensemble = [3]
    elif case == 'a string':
        ensemble = extra[0]
    elif case == 'a mapping':  # was "got OrderedDict([('a', ...)])": Python's repr of what YAML read
        ensemble = OrderedDict(a=extra[0])
    opt = cascade_options(paths, path=path, cascade=dict(main_ensemble=ensemble, **switches))
    with pytest.raises(FlareSRError, match=message):
        build_model(opt)


def test_non_strict_loading_still_refuses_a_member_of_which_no_weight_fits(tmp_path):
    """path.strict_load_main: false loads what fits; a file of which no weight fits (batch norm's step counters do
    not count) is still refused, rather than averaging a network of random weights into stage I."""
    _, paths, _ = _members(tmp_path)
    torch.save({'params': Pix2PixUNet(**dict(UNET, num_feat=16)).state_dict()}, tmp_path / 'wide.pth')
    opt = cascade_options(paths, path=dict(pretrain_network_main=paths['main'], pretrain_network_post=paths['post'],
                                           strict_load_main=False),
                          cascade=dict(main_ensemble=[str(tmp_path / 'wide.pth')]))
    with pytest.raises(FlareSRError, match=r'wide.pth does not fit Pix2PixUNet: .*keys of another shape.*; only '
                                           r'\d+\.\d% of its weights would load$'):
        build_model(opt)


def test_the_checker_names_a_missing_or_misspelt_member_before_anything_runs(tmp_path):
    _, paths, extra = _members(tmp_path)
    missing = str(tmp_path / 'fold3.pth')
    opt = {k: v for k, v in cascade_options(paths, cascade=dict(main_ensemble=[extra[0], missing, 7])).items()
           if k not in ('is_train', 'dist', 'rank', 'world_size')}
    problems = OptionChecker(is_train=False).check(dict(opt, datasets={}))
    assert f'cascade.main_ensemble[1]: {missing} does not exist' in ' '.join(problems)
    assert 'cascade.main_ensemble[2]: 7 is not a checkpoint path' in problems
    assert not any('main_ensemble[0]' in line for line in problems)
    typo = OptionChecker(is_train=False).check(dict(opt, datasets={}, cascade=dict(main_ensembles=extra)))
    assert any(line.startswith('cascade.main_ensembles: unknown key') and 'main_ensemble' in line for line in typo)
    single = OptionChecker(is_train=False).check(dict(opt, datasets={}, cascade=dict(main_ensemble=extra[0])))
    assert any(line.startswith('cascade.main_ensemble:') and 'a list' in line for line in single)
    assert OptionChecker(is_train=False).check(dict(opt, datasets={}, cascade=dict(main_ensemble=None))) == []
    torch.save({'params': Pix2PixUNet(**dict(UNET, num_feat=16)).state_dict()}, tmp_path / 'wide.pth')
    misfit = OptionChecker(is_train=False).check(dict(opt, datasets={}, cascade=dict(main_ensemble=[
        extra[0], str(tmp_path / 'wide.pth')])))  # a member of another size: said before anything is created
    assert len(misfit) == 1 and misfit[0].startswith(f'cascade.main_ensemble[1]: {tmp_path / "wide.pth"} does not '
                                                     'fit Pix2PixUNet')
    copy = str(shutil.copy(paths['main'], tmp_path / 'copy.pth'))  # said before test.py makes results/<name>
    twice = OptionChecker(is_train=False).check(dict(opt, datasets={}, cascade=dict(main_ensemble=[extra[0], copy])))
    assert twice == [f'cascade.main_ensemble[1]: {copy} holds the same bytes as path.pretrain_network_main; list each '
                     'checkpoint once']


def test_an_ensemble_in_the_wrong_section_is_named_where_it_belongs(tmp_path):
    _, paths, extra = _members(tmp_path)
    opt = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    in_path = dict(opt, datasets={}, path=dict(opt['path'], main_ensemble=extra))
    assert OptionChecker(is_train=False).check(in_path) == [  # BasicSR would os.makedirs the list: a traceback
        f'path.main_ensemble: unknown key; BasicSR would make a folder of its value ({extra!r}) (it belongs in '
        'cascade.main_ensemble); remove it']
    misplaced = OptionChecker(is_train=False).check(dict(opt, datasets={}, val=dict(opt['val'], main_ensemble=extra)))
    assert misplaced == ['val.main_ensemble: not read here (it belongs in cascade.main_ensemble); move it']
    typo = OptionChecker(is_train=False).check(dict(opt, datasets={}, path=dict(opt['path'], modles='x')))
    assert typo == ["path.modles: unknown key; BasicSR would make a folder of its value ('x') (did you mean models?); "
                    'remove it']


def test_test_py_stops_on_a_missing_member_in_one_line_and_writes_nothing(tmp_path):
    _, paths, _ = _members(tmp_path)
    write_image(tmp_path / 'set' / 'lq' / 'a.png', np.full((32, 32, 3), 0.5, np.float32))
    write_image(tmp_path / 'set' / 'gt' / 'a.png', np.full((32, 32, 3), 0.5, np.float32))
    name = f'pytest_ensemble_missing_{os.getpid()}'
    missing = tmp_path / 'fold3.pth'
    run, results = run_cascade_test(dict(paths), tmp_path, name, {'set': tmp_path / 'set'},
                                    cascade=dict(main_ensemble=[str(missing)]))
    assert run.returncode != 0
    assert f'cascade.main_ensemble[0]: {missing} does not exist' in run.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in run.stderr and not os.path.exists(results)


def test_the_demo_test_averages_exactly_the_fold_models_that_its_stage_three_trains(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    test = load_option_file('options/tiny/test_cascade.yml')
    stage1 = load_option_file('options/tiny/pix2pix.yml')
    folds = load_option_file('options/tiny/hinet_phase2.yml')['stage3_source']['cross_fit']['folds']
    expected = [f'experiments/{fold_name(stage1, fold, folds)}/models/net_g_latest.pth' for fold in range(folds)]
    assert test['cascade']['main_ensemble'] == expected
    assert test['path']['pretrain_network_main'] == f'experiments/{stage1["name"]}/models/net_g_latest.pth'
