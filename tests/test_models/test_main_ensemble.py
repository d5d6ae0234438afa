"""cascade.main_ensemble: stage I as the mean of several U-Net checkpoints (the cross-fit fold models at test time)."""
import os

import numpy as np
import pytest
import torch
from basicsr.models import build_model

from flare_sr.errors import FlareSRError
from flare_sr.pipeline.cross_fit import fold_name
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker, load_option_file
from tests.helpers import cascade_checkpoints, cascade_options, run_cascade_test, save_unet


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
    ('duplicate of main', r'^cascade.main_ensemble\[0\]: .*net_main.pth is already in the ensemble as '
                          r'path.pretrain_network_main; list each checkpoint once$'),
    ('listed twice', r'^cascade.main_ensemble\[1\]: .*fold1.pth is already in the ensemble as '
                     r'cascade.main_ensemble\[0\]; list each checkpoint once$'),
    ('a HINet checkpoint', r'^cascade.main_ensemble\[0\]: .*net_post.pth does not fit Pix2PixUNet'),
    ('stage I off', r'^cascade.main_ensemble: stage I is switched off \(use_main: false\); remove the ensemble'),
    ('no main checkpoint', r'^cascade.main_ensemble: set path.pretrain_network_main too'),
    ('not a path', r'^cascade.main_ensemble\[0\]: 3 is not a checkpoint path$'),
])
def test_a_wrong_ensemble_is_one_line(tmp_path, case, message):
    _, paths, extra = _members(tmp_path)
    ensemble, switches, path = extra, {}, dict(pretrain_network_main=paths['main'], pretrain_network_post=paths['post'])
    if case == 'duplicate of main':
        ensemble = [paths['main']]
    elif case == 'listed twice':
        ensemble = [extra[0], extra[0]]
    elif case == 'a HINet checkpoint':
        ensemble = [paths['post']]
    elif case == 'stage I off':
        switches = dict(use_main=False)
    elif case == 'no main checkpoint':
        path['pretrain_network_main'] = None
    elif case == 'not a path':
        ensemble = [3]
    opt = cascade_options(paths, path=path, cascade=dict(main_ensemble=ensemble, **switches))
    with pytest.raises(FlareSRError, match=message):
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
