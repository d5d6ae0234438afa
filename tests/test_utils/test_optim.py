"""Optimizers and schedulers of BasicSR (1.4.2 and master) and the HINet/NAFNet forks, built from
flare_sr/utils/optim.py by every flare_sr model: the right learning rates, states that survive a
weights-only save and load, options never modified, and one line for what cannot work."""

import copy
import io
import math

import pytest
import torch

from flare_sr.errors import FlareSRError
from flare_sr.models.hinet_model import HINetModel
from flare_sr.models.pix2pix_model import Pix2PixModel
from flare_sr.utils.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler
from flare_sr.utils.options_check import OptionChecker
from tests.helpers import model_options, train_steps

SCHEDULER_OPTIONS = {
    'MultiStepLR': {'milestones': [3, 6], 'gamma': 0.5},
    'MultiStepRestartLR': {'milestones': [3], 'gamma': 0.5, 'restarts': [5], 'restart_weights': [0.5]},
    'CosineAnnealingRestartLR': {'periods': [4, 8], 'restart_weights': [1, 0.5], 'eta_min': 1e-5},
    'TrueCosineAnnealingLR': {'T_max': 10, 'eta_min': 1e-5},
    'LinearLR': {},
    'VibrateLR': {},
    'Constant': {},
}


def lrs(scheduler, steps):
    values = []
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        values.append(scheduler.optimizer.param_groups[0]['lr'])
    return values


def new_optimizer(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


@pytest.mark.parametrize('kind', sorted(OPTIMIZERS))
def test_every_optimizer_trains_a_model_and_leaves_the_options_alone(tmp_path, kind):
    opt = model_options(tmp_path, optim={'type': kind, 'lr': 1e-3})
    written = copy.deepcopy(opt)
    model = HINetModel(opt)
    assert type(model.optimizer_g) is OPTIMIZERS[kind]
    before = [param.clone() for param in model.net_g.parameters()]
    train_steps(model, 2)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net_g.parameters()))
    assert opt['train'] == written['train']  # BasicSR pops 'type'; a second model from the same options works
    assert type(HINetModel(opt).optimizer_g) is OPTIMIZERS[kind]


def test_pix2pix_builds_both_optimizers_from_the_tables(tmp_path):
    opt = model_options(tmp_path, 'Pix2PixModel')
    model = Pix2PixModel(opt)
    assert [type(each).__name__ for each in model.optimizers] == ['AdamW', 'Adam']
    assert [type(each).__name__ for each in model.schedulers] == ['CosineAnnealingLR', 'CosineAnnealingLR']
    assert opt['train']['optim_d'] == {'type': 'Adam', 'lr': 1e-3}


def test_true_cosine_linear_and_vibrate_follow_their_formulas():
    cosine = build_scheduler(new_optimizer(0.1), {'type': 'TrueCosineAnnealingLR', 'T_max': 10, 'eta_min': 1e-3}, 10)
    expected = [1e-3 + (0.1 - 1e-3) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(1, 11)]
    assert lrs(cosine, 10) == pytest.approx(expected, rel=1e-12)
    linear = build_scheduler(new_optimizer(0.1), {'type': 'LinearLR'}, total_iter=8)
    assert lrs(linear, 8) == pytest.approx([0.1 * (1 - t / 8) for t in range(1, 9)], rel=1e-12)
    # 800 iterations: period 10, half period 5; envelope 1 - 8p/3, then 0.2 from 300, 0.1 from 500
    vibrate = build_scheduler(new_optimizer(1.0), {'type': 'VibrateLR'}, total_iter=800)
    assert vibrate.optimizer.param_groups[0]['lr'] == 0.1  # step 0: the wave is 0, held at 0.1
    values = lrs(vibrate, 700)
    assert values[3 - 1] == pytest.approx((1 - 3 / 800 * 8 / 3) * 0.6)
    assert values[305 - 1] == pytest.approx(0.2 * 1.0)  # envelope 0.2, wave at its top (phase 5)
    assert values[508 - 1] == pytest.approx(0.1 * (2 - 8 / 5))  # falling half of the wave
    assert values[700 - 1] == 0.0


@pytest.mark.parametrize('kind', sorted(SCHEDULERS))
def test_every_scheduler_resumes_exactly_through_a_weights_only_file(kind):
    options = dict(type=kind, **SCHEDULER_OPTIONS[kind])
    first = build_scheduler(new_optimizer(), options, total_iter=12)
    lrs(first, 4)
    buffer = io.BytesIO()
    torch.save({'optimizer': first.optimizer.state_dict(), 'scheduler': first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    second = build_scheduler(new_optimizer(), options, total_iter=12)
    second.optimizer.load_state_dict(saved['optimizer'])
    second.load_state_dict(saved['scheduler'])
    assert lrs(second, 8) == lrs(first, 8)


def test_unknown_refused_and_bad_arguments_are_one_line():
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(FlareSRError, match=r"^train.optim_g.type: unknown optimizer 'Adamm' \(one of Adam, AdamW"):
        build_optimizer(params, {'type': 'Adamm', 'lr': 1e-3}, 'train.optim_g')
    with pytest.raises(FlareSRError, match=r"^train.optim_g: AdamW: .*unexpected keyword argument 'lrr'"):
        build_optimizer(params, {'type': 'AdamW', 'lrr': 1e-3}, 'train.optim_g')
    with pytest.raises(FlareSRError, match=r'^train.scheduler.type: ReduceLROnPlateau is not supported: it steps on '
                                           r'a validation metric'):
        build_scheduler(new_optimizer(), {'type': 'ReduceLROnPlateau'}, 10)
    with pytest.raises(FlareSRError, match=r"^train.scheduler.type: unknown scheduler 'StepLR' \(one of "):
        build_scheduler(new_optimizer(), {'type': 'StepLR', 'step_size': 3}, 10)
    with pytest.raises(FlareSRError, match=r'^train.scheduler: LinearLR needs train.total_iter > 0, got None'):
        build_scheduler(new_optimizer(), {'type': 'LinearLR'}, None)
    with pytest.raises(FlareSRError, match=r'^train.scheduler.periods: they add up to 10 iterations, but '
                                           r'train.total_iter is 12; CosineAnnealingRestartLR fails after'):
        build_scheduler(new_optimizer(), {'type': 'CosineAnnealingRestartLR', 'periods': [4, 6],
                                          'restart_weights': [1, 1]}, 12)


def test_option_checker_accepts_the_forks_optimizers_and_schedulers():
    """HINet/NAFNet write AdamW with betas [0.9, 0.9] and TrueCosineAnnealingLR; LinearLR and VibrateLR carry only
    their type (the forks size them with train.total_iter)."""
    base = {'total_iter': 100, 'pixel_opt': {'type': 'L1Loss'}}
    cases = [({'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.0, 'betas': [0.9, 0.9]},
              {'type': 'TrueCosineAnnealingLR', 'T_max': 400000, 'eta_min': 1e-7}),
             ({'type': 'SGD', 'lr': 0.1, 'momentum': 0.9}, {'type': 'LinearLR'}),
             ({'type': 'Adam', 'lr': 1e-3}, {'type': 'VibrateLR'})]
    for optim, scheduler in cases:
        checker = OptionChecker(is_train=True)
        checker._train(dict(base, optim_g=optim, scheduler=scheduler))
        assert checker.problems == []


def test_without_a_scheduler_the_rate_is_constant_after_the_warm_up(tmp_path):
    opt = model_options(tmp_path, optim={'type': 'SGD', 'lr': 0.1})
    del opt['train']['scheduler']
    model = HINetModel(opt)
    rates = []
    for current_iter in range(1, 8):
        model.update_learning_rate(current_iter, warmup_iter=4)
        rates.extend(model.get_current_learning_rate())
        model.optimizer_g.step()
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1])
