"""Keys BasicSR reads only after the iterations have run (at validation, logging or checkpoint time): defaulted as
BasicSR's test path does, or refused at start-up in one line, never a KeyError or ZeroDivisionError after training."""
import copy
import os
import re

import pytest

from flare_sr.errors import FlareSRError
from flare_sr.utils.options_check import check_options
from tests.helpers import experiment_dirs, hinet_options, make_flare_pairs, make_photo_pairs, run_train, write_options


def _data(tmp_path):
    return {'train': make_flare_pairs(str(tmp_path / 'train'), 2, seed=1),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=2, prefix='test')}


@pytest.mark.slow
def test_val_without_save_img_and_a_debug_name_train_to_the_end_with_one_warning(tmp_path, experiment):
    """``val`` without ``save_img``/``suffix`` and ``logger`` without ``use_tb_logger`` ended in ``KeyError:
    'save_img'`` after every iteration had run; a name holding ``debug`` silently changed the intervals."""
    name = experiment('debug_late_keys')
    opt = hinet_options(_data(tmp_path), name, total_iter=2)
    for key in ('save_img', 'suffix'):
        opt['val'].pop(key, None)
    opt['logger'].pop('use_tb_logger')
    result = run_train(write_options(tmp_path / 'run.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning: ')]
    assert warnings == [f"warning: name {name!r} contains 'debug', so BasicSR validates and saves a checkpoint every 8 "
                        'iterations, logs every iteration and writes no TensorBoard or wandb log (over val.val_freq, '
                        'logger.save_checkpoint_freq, logger.print_freq and logger.use_tb_logger); for a normal run, '
                        "choose a name without 'debug'"], result.stderr[-3000:]
    exp_dir, tb_dir = experiment_dirs(name)
    assert os.path.isfile(os.path.join(exp_dir, 'models', 'net_g_latest.pth'))
    assert os.path.isfile(os.path.join(exp_dir, 'metrics.json'))  # the final validation ran
    assert not os.path.isdir(os.path.join(exp_dir, 'visualization', 'val'))  # save_img defaulted to false
    assert not os.path.exists(tb_dir)


@pytest.mark.parametrize('section, key, value, message', [
    ('logger', 'print_freq', None, 'logger.print_freq: missing (every how many iterations)'),
    ('logger', 'save_checkpoint_freq', None, 'logger.save_checkpoint_freq: missing (every how many iterations)'),
    ('logger', 'print_freq', 0, 'logger.print_freq: 0; expected a number of iterations, at least 1'),
    ('logger', 'save_checkpoint_freq', 0, 'logger.save_checkpoint_freq: 0; expected a number of iterations, at '
                                          'least 1'),
    ('val', 'val_freq', 0, 'val.val_freq: 0; expected a number of iterations, at least 1'),
    ('val', 'val_freq', -5, 'val.val_freq: -5; expected a number of iterations, at least 1'),
    ('val', 'val_freq', None, 'val.val_freq: missing (every how many iterations)'),
    ('logger', 'wandb', {'project': 'flare'}, 'logger.wandb.project: set, but logger.use_tb_logger is not true'),
    ('val', 'metrics', {'p': {'type': 'calculate_psnr_pt', 'crop_border': 0}},
     'val.metrics.p.type: calculate_psnr_pt scores float tensors, but validation scores the 8-bit images: use '
     'calculate_psnr'),
    ('val', 'metrics', {'s': {'type': 'calculate_ssim_pt', 'crop_border': 0}}, 'use calculate_ssim'),
    ('val', 'metrics', {'p': {'type': 'calculate_psnr', 'crop_border': 'x'}},  # a TypeError at validation
     "val.metrics.p.crop_border: expected a whole number of pixels, 0 or more, got 'x'"),
    ('val', 'metrics', {'p': {'type': 'calculate_psnr', 'crop_border': -3}},  # an empty slice: NaN
     'val.metrics.p.crop_border: expected a whole number of pixels, 0 or more, got -3'),
])
def test_intervals_read_at_every_iteration_are_checked_at_start_up(tmp_path, section, key, value, message):
    """Before: accepted, then ``current_iter % 0`` (ZeroDivisionError) or a KeyError after the first iteration."""
    opt = hinet_options(_data(tmp_path), 'late_keys', total_iter=2)
    opt.update(dist=False, rank=0, world_size=1, is_train=True, auto_resume=False)
    for phase, dataset_opt in opt['datasets'].items():
        dataset_opt['phase'] = phase
    opt = copy.deepcopy(opt)
    opt['logger']['use_tb_logger'] = False
    if value is None:
        opt[section].pop(key)
    else:
        opt[section][key] = value
    with pytest.raises(FlareSRError, match=f'^x.yml: .*{re.escape(message)}'):
        check_options(opt, 'x.yml', True, stream=open(os.devnull, 'w'))


@pytest.mark.slow
def test_niqe_on_validation_images_too_small_is_refused_before_the_first_iteration(tmp_path, experiment):
    """BasicSR's calculate_niqe raised LinAlgError at the first validation on 96x128 images (one 96x96 block)."""
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 2, seed=1),
            'val': tuple(map(str, make_photo_pairs(tmp_path / 'val', [(96, 128)])))}
    name = experiment('late_keys_niqe')
    opt = hinet_options(data, name, total_iter=2)
    opt['val']['metrics']['niqe'] = {'type': 'calculate_niqe', 'crop_border': 0}
    result = run_train(write_options(tmp_path / 'run.yml', opt), tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert result.returncode == 2 and len(errors) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert errors[0].startswith(f"error: {tmp_path / 'run.yml'}: val.metrics.niqe: ") and errors[0].endswith(
        'train_input_10000.png is 128x96 pixels (width x height), crop_border 0: 1 block(s) of 96x96; calculate_niqe '
        'fits a covariance to the blocks and needs at least 2, so at least 192x96 or 96x192 pixels'), errors[0]
    assert 'Start training' not in result.stderr + result.stdout  # before the first iteration
    assert not os.path.exists(experiment_dirs(name)[0])  # and before any run folder
