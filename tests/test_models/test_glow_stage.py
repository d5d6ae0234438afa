"""CascadeModel's glow stage: a net on the whole frame, downscaled, whose glow is taken off beside the tiled cascade
(each pixel the larger removal), with its self-ensemble; trained by HINetModel on SyntheticFlareDataset's whole
downscaled frames (``downscale_to``, ``pool_size``); refused by the ONNX export."""
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.models import build_model

from flare_sr.archs.hinet_arch import HINet
from flare_sr.data.meta_csv import write_split_csv
from flare_sr.errors import FlareSRError
from flare_sr.models.onnx_backend import NO_GLOW, export_onnx
from flare_sr.pipeline.inference import build_onnx_predictor
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import OptionChecker, load_option_file, resolve_cascade_sources
from flare_sr.utils.safe_yaml import plain
from tests.helpers import (POST, REPO, TEST_SCRIPT, cascade_checkpoints, cascade_options, make_photo_pairs,
                           read_metrics, run_script, run_train, write_clean_photos, write_options, zero_output_layer)

GLOW = dict(type='HINet', in_chn=3, wf=4, depth=2)


class Halving(torch.nn.Module):
    """A glow net whose output is half its input: the glow is then half the downscaled frame."""

    def forward(self, x):
        return x * 0.5


class Lopsided(torch.nn.Module):
    """A glow net that is not equivariant to flips: it darkens each pixel by its column's share of the width."""

    def forward(self, x):
        ramp = torch.linspace(0, 0.4, x.shape[-1], device=x.device)
        return x - ramp * x


def _identity_post(tmp_path):
    """A post HINet whose last conv is zero (its output is its input), saved: (path, options)."""
    post = HINet(**{k: v for k, v in POST.items() if k != 'type'})
    zero_output_layer(post)
    path = str(tmp_path / 'identity_post.pth')
    torch.save({'params': post.state_dict()}, path)
    return path


def _glow_model(tmp_path, glow_net=None, **cascade):
    """A CascadeModel of stage II (identity) and a glow stage; ``glow_net`` replaces the built glow net."""
    _, _, paths = cascade_checkpoints(tmp_path)
    paths['post'] = _identity_post(tmp_path)
    glow_path = str(tmp_path / 'glow.pth')
    torch.manual_seed(3)
    torch.save({'params': HINet(**{k: v for k, v in GLOW.items() if k != 'type'}).state_dict()}, glow_path)
    opt = cascade_options(paths, network_glow=dict(GLOW), val=dict(tile=dict(size=None)),
                          cascade=dict(use_main=False, glow_size=12, **cascade))
    opt['path']['pretrain_network_glow'] = glow_path
    model = build_model(opt)
    if glow_net is not None:
        model.nets['glow'] = glow_net
    return model


def _image(height=48, width=64, seed=5):
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_glow_is_taken_off_where_it_removes_more_than_the_cascade(tmp_path):
    """out = min(cascade, clip(lq - max(glow - floor, 0))), glow = relu(small - net(small)) upsampled bilinearly:
    checked against an independent cv2 computation (INTER_AREA down, INTER_LINEAR up)."""
    lq = _image()
    model = _glow_model(tmp_path, Halving(), glow_floor=0.1, glow_self_ensemble=False)
    cascade_only = _glow_model(tmp_path, use_glow=False)
    assert 'glow' not in cascade_only.nets
    cascade = cascade_only.predict(lq)
    torch.testing.assert_close(cascade, lq, atol=1e-6, rtol=0)  # the identity post net
    image = lq[0].permute(1, 2, 0).numpy()
    small = cv2.resize(image, (16, 12), interpolation=cv2.INTER_AREA)
    glow = cv2.resize(np.maximum(small - small * 0.5, 0), (64, 48), interpolation=cv2.INTER_LINEAR)
    expected = np.minimum(cascade[0].permute(1, 2, 0).numpy(), np.clip(image - np.maximum(glow - 0.1, 0), 0, 1))
    out = model.predict(lq)
    torch.testing.assert_close(out, torch.from_numpy(expected).permute(2, 0, 1)[None], atol=1e-5, rtol=0)
    assert (lq - out).mean() > 0.05  # the glow stage removed light


def test_the_glow_self_ensemble_makes_the_stage_equivariant_to_flips(tmp_path):
    lq = _image(seed=6)
    with_ensemble = _glow_model(tmp_path, Lopsided(), glow_floor=0.0)
    without = _glow_model(tmp_path, Lopsided(), glow_floor=0.0, glow_self_ensemble=False)
    flipped = with_ensemble.predict(lq.flip(-1)).flip(-1)
    torch.testing.assert_close(flipped, with_ensemble.predict(lq), atol=1e-5, rtol=0)
    assert (without.predict(lq.flip(-1)).flip(-1) - without.predict(lq)).abs().max() > 0.05


def test_a_glow_net_that_restores_nothing_leaves_the_cascade_as_it_is(tmp_path):
    identity = HINet(**{k: v for k, v in GLOW.items() if k != 'type'})
    zero_output_layer(identity)
    lq = _image(seed=7)
    model = _glow_model(tmp_path, identity.eval(), glow_floor=0.0)
    torch.testing.assert_close(model.predict(lq), _glow_model(tmp_path, use_glow=False).predict(lq), atol=1e-6,
                               rtol=0)


def test_a_glow_ensemble_is_the_mean_of_its_checkpoints(tmp_path):
    model = _glow_model(tmp_path)
    member = str(tmp_path / 'glow2.pth')
    torch.manual_seed(4)
    torch.save({'params': HINet(**{k: v for k, v in GLOW.items() if k != 'type'}).state_dict()}, member)
    ensemble = _glow_model(tmp_path, glow_ensemble=[member])
    assert len(ensemble.get_bare_model(ensemble.nets['glow']).members) == 2
    assert not torch.equal(ensemble.predict(_image()), model.predict(_image()))
    with pytest.raises(FlareSRError, match=r'^cascade.glow_ensemble: the glow stage does not run'):
        _glow_model(tmp_path, use_glow=False, glow_ensemble=[member])


def test_the_onnx_export_and_runtime_refuse_the_glow_stage(tmp_path, capsys):
    model = _glow_model(tmp_path)
    export_advice = '; set cascade.use_glow: false to export the tiled networks alone'
    with pytest.raises(FlareSRError) as error:
        export_onnx(model, str(tmp_path / 'x.onnx'))
    assert str(error.value) == NO_GLOW + export_advice
    opt = {k: v for k, v in model.opt.items() if k not in ('is_train', 'dist', 'rank', 'world_size', 'path')}
    opt.update(datasets={}, path={k: v for k, v in model.opt['path'].items() if k.startswith('pretrain_network')})
    option_file = write_options(tmp_path / 'glow_test.yml', opt)
    (tmp_path / 'some.onnx').write_bytes(b'not read')
    with pytest.raises(FlareSRError) as error:
        build_onnx_predictor(str(option_file), str(tmp_path / 'some.onnx'))
    assert str(error.value) == (f'{option_file}: {NO_GLOW}; use --backend pytorch, or cascade.use_glow: false for '
                                'the tiled networks alone')
    code, _, err = run_script('export_onnx', ['-opt', option_file, '--out', tmp_path / 'glow.onnx'], capsys)
    assert (code, err) == (2, f'error: {option_file}: {NO_GLOW}{export_advice}\n')  # the option file named
    assert not os.path.exists(tmp_path / 'glow.onnx')


def test_glow_opt_gives_the_network_and_the_size_it_was_trained_at(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    opt = load_option_file('options/tiny/test_cascade.yml')
    assert resolve_cascade_sources(opt) == ([], [])
    glow = load_option_file('options/tiny/glow.yml')
    assert opt['network_glow'] == glow['network_g']
    assert opt['cascade']['glow_size'] == glow['datasets']['train']['downscale_to'] == 48
    assert opt['path']['pretrain_network_glow'] == f'experiments/{glow["name"]}/models/net_g_latest.pth'
    trained = {'name': 'g', 'network_g': dict(GLOW), 'datasets': {'train': {'downscale_to': 24}}}
    (tmp_path / 'glow.yml').write_text(yaml.safe_dump(trained))
    mismatch = dict(cascade=dict(glow_opt=str(tmp_path / 'glow.yml'), glow_size=48))
    assert resolve_cascade_sources(mismatch)[1] == [
        f'cascade.glow_size: 48, but the glow net of {tmp_path / "glow.yml"} was trained at downscale_to 24; '
        'remove glow_size (it follows the file)']
    trained['datasets']['train']['downscale_to'] = 24.0  # a whole float trains as 24 (SyntheticFlareDataset)
    (tmp_path / 'glow.yml').write_text(yaml.safe_dump(trained))
    whole = dict(cascade=dict(glow_opt=str(tmp_path / 'glow.yml')))
    assert resolve_cascade_sources(whole)[1] == [] and whole['cascade']['glow_size'] == 24
    del trained['datasets']
    (tmp_path / 'glow.yml').write_text(yaml.safe_dump(trained))
    assert resolve_cascade_sources(dict(cascade=dict(glow_opt=str(tmp_path / 'glow.yml'))))[1] == [
        f'cascade.glow_opt: {tmp_path / "glow.yml"} trains on no whole downscaled frames '
        '(datasets.train.downscale_to is not set); set cascade.glow_size']


@pytest.mark.slow
def test_a_glow_net_trained_on_pooled_frames_runs_beside_the_cascade_in_test_py(tmp_path):
    """Real processes: train.py trains a glow HINet on a pool of whole downscaled frames; test.py runs it beside the
    cascade through cascade.glow_opt; without a glow_size the test stops with one line and makes no results folder."""
    clean = write_clean_photos(tmp_path / 'clean', size=(48, 64))
    pair = tmp_path / 'set'
    for folder in ('lq', 'gt'):
        write_image(pair / folder / 'a.png', np.full((48, 64, 3), 0.6 if folder == 'lq' else 0.4, np.float32))
    name = f'pytest_glow_{os.getpid()}'
    train = dict(name=name, model_type='HINetModel', scale=1, num_gpu=0, manual_seed=0,
                 datasets=dict(train=dict(name='frames', type='SyntheticFlareDataset', dataroot_gt=str(clean),
                                          io_backend=dict(type='disk'), downscale_to=12, pool_size=6, seed=0,
                                          use_hflip=True, use_rot=True, batch_size_per_gpu=3, num_worker_per_gpu=0)),
                 network_g=dict(GLOW), path=dict(pretrain_network_g=None, resume_state=None),
                 train=dict(optim_g=dict(type='Adam', lr=1e-3), scheduler=dict(type='MultiStepLR', milestones=[99]),
                            total_iter=4, pixel_opt=dict(type='L1Loss', loss_weight=1.0)),
                 logger=dict(print_freq=2, save_checkpoint_freq=4, use_tb_logger=False))
    glow_file = write_options(tmp_path / 'glow.yml', train)
    results = os.path.join(REPO, 'results', f'{name}_test')
    try:
        trained = run_train(glow_file, tmp_path)
        assert trained.returncode == 0, trained.stderr[-3000:]
        checkpoint = os.path.join(REPO, 'experiments', name, 'models', 'net_g_latest.pth')
        _, _, paths = cascade_checkpoints(tmp_path)
        test = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
        test.update(name=f'{name}_test', cascade=dict(glow_opt=str(glow_file)),
                    datasets=dict(test_1=dict(name='set', type='PairedFlareDataset', phase='test',
                                              dataroot_lq=str(pair / 'lq'), dataroot_gt=str(pair / 'gt'),
                                              io_backend=dict(type='disk'))))
        test['path']['pretrain_network_glow'] = checkpoint
        test['val'].update(metrics=dict(psnr=dict(type='calculate_psnr', crop_border=0, test_y_channel=False)))
        run = run_train(write_options(tmp_path / 'test.yml', test), tmp_path, script=TEST_SCRIPT)
        assert run.returncode == 0, run.stderr[-3000:]
        assert 'beside them the glow net on the frame at 12 px (floor 0.06, self-ensemble)' in run.stdout + run.stderr
        assert read_metrics(os.path.join(results, 'metrics.json'))['datasets']['set']['images'] == 1
        shutil.rmtree(results)
        test['cascade'] = {}
        test['network_glow'] = dict(GLOW)
        run = run_train(write_options(tmp_path / 'test.yml', test), tmp_path, script=TEST_SCRIPT)
        assert run.returncode == 2 and 'Traceback' not in run.stderr, run.stderr[-3000:]
        assert [line for line in (run.stdout + run.stderr).splitlines() if line.startswith('error:')] == [
            f'error: {tmp_path / "test.yml"}: cascade.glow_size: not set; give the short side (px) the glow net was '
            'trained at (its datasets.train.downscale_to), or cascade.glow_opt: its option file']
        assert not os.path.exists(results)
    finally:
        for folder in (os.path.join(REPO, 'experiments', name), results, os.path.join(REPO, 'tb_logger', name)):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_the_full_size_glow_recipe_trains_on_real_pairs_and_runs_beside_the_cascade(tmp_path):
    """options/glow.yml as shipped (HINet wf 32, depth 4, whole real pairs downscaled, bf16 where the CPU has it),
    pointed at a tiny challenge-style folder and split, trained for 4 iterations by train.py; test.py then runs it
    beside the cascade through cascade.glow_opt, at the file's downscale_to."""
    lq_dir, gt_dir = make_photo_pairs(tmp_path / 'dacon', [(96, 128)] * 3 + [(128, 96)])  # one portrait: turned
    rows = [dict(img_id=f'train_{10000 + k}', input_img=f'train_input_{10000 + k}.png',
                 label_img=f'train_label_{10000 + k}.png', fold='val' if k == 3 else 'train') for k in range(4)]
    write_split_csv(tmp_path / 'split.csv', rows)
    name = f'pytest_fullglow_{os.getpid()}'
    opt = plain(load_option_file(os.path.join(REPO, 'options', 'glow.yml')))
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir),
                                      meta_csv=str(tmp_path / 'split.csv'), downscale_to=48)
    opt['datasets']['train'].update(batch_size_per_gpu=3, num_worker_per_gpu=0, pin_memory=False)
    opt['train'].update(total_iter=4, scheduler=dict(opt['train']['scheduler'], periods=[4]))
    opt.update(name=name, num_gpu=0, val=dict(opt['val'], val_freq=4),
               logger=dict(opt['logger'], print_freq=2, save_checkpoint_freq=4, use_tb_logger=False))
    glow_file = write_options(tmp_path / 'glow.yml', opt)
    results = os.path.join(REPO, 'results', f'{name}_test')
    try:
        trained = run_train(glow_file, tmp_path)
        assert trained.returncode == 0, trained.stderr[-3000:]
        validation = read_metrics(os.path.join(REPO, 'experiments', name, 'metrics.json'))['validations'][-1]
        assert validation['iter'] == 4 and validation['datasets']['dacon_val_frames_384']['images'] == 1
        _, _, paths = cascade_checkpoints(tmp_path)
        test = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
        test.update(name=f'{name}_test', cascade=dict(glow_opt=str(glow_file)),
                    datasets=dict(test_1=dict(name='set', type='PairedFlareDataset', phase='test',
                                              dataroot_lq=str(lq_dir), dataroot_gt=str(gt_dir),
                                              io_backend=dict(type='disk'))))
        test['path']['pretrain_network_glow'] = os.path.join(REPO, 'experiments', name, 'models', 'net_g_latest.pth')
        test['val'].update(metrics=dict(psnr=dict(type='calculate_psnr', crop_border=0, test_y_channel=False)))
        run = run_train(write_options(tmp_path / 'test.yml', test), tmp_path, script=TEST_SCRIPT)
        assert run.returncode == 0, run.stderr[-3000:]
        assert 'beside them the glow net on the frame at 48 px (floor 0.06, self-ensemble)' in run.stdout + run.stderr
        assert read_metrics(os.path.join(results, 'metrics.json'))['datasets']['set']['images'] == 4
    finally:
        for folder in (os.path.join(REPO, 'experiments', name), results, os.path.join(REPO, 'tb_logger', name)):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize('change, line', [
    (dict(downscale_to=50), 'datasets.train.downscale_to: training samples of 50x67 do not fit network_g '
                            '(HINet(depth=3) needs H and W divisible by 4, got 50x67'),
    (dict(downscale_to=400), "datasets.train.downscale_to: 400 is larger than the frame's short side 192 (frame_size "
                             '[192, 256]); it downscales the frame'),
])
def test_a_glow_training_frame_the_net_cannot_take_is_one_checker_line(repo_root, tmp_path, change, line):
    opt = load_option_file(os.path.join(repo_root, 'options', 'tiny', 'glow.yml'))
    opt['datasets']['train'].update(change, dataroot_gt=str(write_clean_photos(tmp_path / 'clean', size=(192, 256))))
    opt['datasets'].pop('val')
    problems = OptionChecker(True).check(opt)
    assert len(problems) == 1 and problems[0].startswith(line), problems


def test_glow_options_that_would_be_ignored_or_fail_late_are_said_before_the_run(tmp_path):
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    opt.update(datasets={}, cascade=dict(use_glow=False, glow_ensemble=[paths['post']]), network_glow=dict(GLOW))
    checker = OptionChecker(False)
    assert checker.check(dict(opt)) == ['cascade.glow_ensemble: the glow stage does not run (use_glow: false, or no '
                                        'network_glow); remove the ensemble or switch it on']
    opt.update(cascade=dict(glow_size=12, glow_ensemble=[str(tmp_path)]))
    assert OptionChecker(False).check(dict(opt)) == [f'cascade.glow_ensemble[0]: {tmp_path} is a folder, not a '
                                                     'checkpoint']
    del opt['network_glow']
    opt['cascade'] = {}
    opt['path'] = dict(opt['path'], pretrain_network_glow=paths['post'])
    checker = OptionChecker(False)
    assert checker.check(dict(opt)) == []
    assert 'path.pretrain_network_glow: there is no network_glow (nor cascade.glow_opt), so the glow stage does not ' \
           'run and it is ignored' in checker.warnings
    opt['cascade'] = dict(glow_floor=0.06, glow_self_ensemble=True)  # only the keys the file has are named
    checker = OptionChecker(False)
    assert checker.check(dict(opt)) == []
    assert 'path.pretrain_network_glow / cascade.glow_floor / cascade.glow_self_ensemble: there is no network_glow ' \
           '(nor cascade.glow_opt), so the glow stage does not run and they are ignored' in checker.warnings


def test_a_cascade_network_without_a_checkpoint_is_said_before_the_run(tmp_path):
    """Each network the cascade's switches run, from its own block or a stage option file (``glow_opt``), without
    ``path.pretrain_network_<role>`` is a warning line (it would be tested with random weights); a network switched
    off is not; a network with neither its block nor its option file is a problem."""
    _, _, paths = cascade_checkpoints(tmp_path)
    glow_file = tmp_path / 'glow.yml'
    glow_file.write_text(yaml.safe_dump(dict(name='g', network_g=dict(GLOW), datasets=dict(
        train=dict(type='SyntheticFlareDataset', downscale_to=12)))))
    opt = {k: v for k, v in cascade_options(paths).items() if k not in ('is_train', 'dist', 'rank', 'world_size')}
    opt.update(datasets={}, cascade=dict(glow_opt=str(glow_file)))
    del opt['path']['pretrain_network_post']
    checker = OptionChecker(False)
    assert checker.check(dict(opt)) == []
    assert [line for line in checker.warnings if 'random weights' in line] == [
        'path.pretrain_network_post: not set, so network_post is tested with random weights',
        'path.pretrain_network_glow: not set, so network_glow is tested with random weights']
    opt.update(cascade=dict(glow_opt=str(glow_file), use_post=False, use_glow=False))
    checker = OptionChecker(False)
    assert checker.check(dict(opt)) == []
    assert not [line for line in checker.warnings if 'random weights' in line]
    del opt['network_main']
    assert OptionChecker(False).check(dict(opt)) == [
        'network_main: missing (CascadeModel builds it: give network_main, or cascade.main_opt: its option file)']
    opt['cascade'] = dict(opt['cascade'], main_opt=str(tmp_path / 'gone.yml'))  # said by its own line, once
    problems = OptionChecker(False).check(dict(opt))
    assert len(problems) == 1 and problems[0].startswith(f'cascade.main_opt: {tmp_path / "gone.yml"}')


def test_an_image_smaller_than_glow_size_is_seen_at_its_own_size(tmp_path):
    model = _glow_model(tmp_path, Halving(), glow_floor=0.1, glow_self_ensemble=False)
    lq = _image(height=8, width=20)  # short side 8 < glow_size 12: no upscaling
    out = model.predict(lq)
    expected = torch.minimum(lq, (lq - (lq * 0.5 - 0.1).clamp(min=0)).clamp(0, 1))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
