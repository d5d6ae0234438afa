"""val.flare_floor: changes fainter than the floor are not made, larger ones are shrunk by it (soft thresholding)."""
import pytest
import torch
from basicsr.models import build_model

from flare_sr.utils.flare_floor import apply_flare_floor
from flare_sr.utils.options_check import OptionChecker
from tests.helpers import cascade_checkpoints, cascade_options


def test_soft_thresholding_of_the_change_per_pixel_and_channel():
    lq = torch.full((1, 3, 1, 4), 0.5)
    out = lq - torch.tensor([0.001, 0.01, -0.02, 0.0078]).view(1, 1, 1, 4)  # darker, darker, brighter, at the floor
    floored = apply_flare_floor(lq, out, 0.0078)
    expected = torch.tensor([0.5, 0.5 - 0.0022, 0.5 + 0.0122, 0.5]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    torch.testing.assert_close(floored, expected, atol=1e-7, rtol=0)
    assert apply_flare_floor(lq, out, 0) is out


def test_the_cascade_applies_the_floor_after_tiling_and_light_restore(tmp_path):
    _, _, paths = cascade_checkpoints(tmp_path)
    lq = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(2))
    lq[..., 10:20, 10:20] = 1.0  # a saturated light: restored to the input first, and the floor keeps it there
    light = dict(threshold=0.97)
    plain = build_model(cascade_options(paths, val=dict(tile=dict(size=64, overlap=16),
                                                        restore_light_source=light))).predict(lq)
    change = (lq - plain).abs()
    assert ((change > 0) & (change < 2 / 255)).float().mean() > 0.01  # faint changes exist: the floor has work
    floored = build_model(cascade_options(paths, val=dict(tile=dict(size=64, overlap=16), restore_light_source=light,
                                                          flare_floor=2 / 255))).predict(lq)
    torch.testing.assert_close(floored, apply_flare_floor(lq, plain, 2 / 255), atol=1e-6, rtol=0)
    assert torch.equal(floored[change < 2 / 255 - 1e-6], lq[change < 2 / 255 - 1e-6])
    torch.testing.assert_close(floored[..., 10:20, 10:20], lq[..., 10:20, 10:20])


@pytest.mark.parametrize('value, line', [
    (-0.01, 'val.flare_floor: -0.01, but it is a fraction of full scale in [0, 1) (2 levels of 255: 0.0078; 0: off)'),
    (2, 'val.flare_floor: 2, but it is a fraction of full scale in [0, 1) (2 levels of 255: 0.0078; 0: off)'),
    (float('nan'), 'val.flare_floor: nan, but it is a fraction of full scale in [0, 1) (2 levels of 255: 0.0078; '
                   '0: off)'),
])
def test_a_floor_outside_zero_to_one_is_one_line(tmp_path, value, line):
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths, val=dict(flare_floor=value)).items()
           if k not in ('is_train', 'dist', 'rank', 'world_size')}
    assert line in OptionChecker(is_train=False).check(dict(opt, datasets={}))


def test_the_checker_refuses_a_text_floor_and_a_model_that_does_not_apply_it(tmp_path):
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths, val=dict(flare_floor='2 levels')).items()
           if k not in ('is_train', 'dist', 'rank', 'world_size')}
    problems = OptionChecker(is_train=False).check(dict(opt, datasets={}))
    assert any(line.startswith('val.flare_floor:') for line in problems)
    sr = dict(name='x', model_type='SRModel', num_gpu=0, scale=1, path={}, datasets={},
              network_g=dict(type='HINet', in_chn=3, wf=8, depth=2), val=dict(flare_floor=0.01))
    assert 'val.flare_floor: SRModel does not apply it; use a flare_sr model (HINetModel, Pix2PixModel, ' \
           'CascadeModel) or remove it' in OptionChecker(is_train=False).check(sr)


def test_a_floor_of_most_of_full_scale_is_warned_and_one_in_the_wrong_section_named(tmp_path):
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths, val=dict(flare_floor=0.5)).items()
           if k not in ('is_train', 'dist', 'rank', 'world_size')}
    checker = OptionChecker(is_train=False)
    assert checker.check(dict(opt, datasets={})) == []
    assert any(line.startswith('val.flare_floor: 0.5 undoes every change under 50% of full scale') for line in
               checker.warnings)
    wrong = dict(opt, datasets={}, val={}, cascade=dict(flare_floor=0.0078))
    assert OptionChecker(is_train=False).check(wrong) == ['cascade.flare_floor: unknown key (it belongs in '
                                                          'val.flare_floor)']


@pytest.mark.parametrize('restore, line', [
    (dict(threshold=1.5), 'val.restore_light_source.threshold: 1.5, but it is a luminance in (0, 1) above which the '
                          'input counts as a light (default 0.97)'),
    (dict(threshold=-0.5), 'val.restore_light_source.threshold: -0.5, but it is a luminance in (0, 1) above which '
                           'the input counts as a light (default 0.97)'),
    (dict(threshold=0.5, scale=-3), 'val.restore_light_source.scale: -3, but it is how far each light is grown, in '
                                    'its diameters, and must be > 0 (default 1.5)'),
    (dict(scale=float('nan')), 'val.restore_light_source.scale: nan, but it is how far each light is grown, in its '
                               'diameters, and must be > 0 (default 1.5)'),
])
def test_a_light_source_setting_that_restores_nothing_or_everything_is_one_line(tmp_path, restore, line):
    """threshold 1.5 finds no light (a silent no-op), -0.5 makes every pixel a light (the output is the input)."""
    _, _, paths = cascade_checkpoints(tmp_path)
    opt = {k: v for k, v in cascade_options(paths, val=dict(restore_light_source=restore)).items()
           if k not in ('is_train', 'dist', 'rank', 'world_size')}
    assert OptionChecker(is_train=False).check(dict(opt, datasets={})) == [line]
    opt['val'] = dict(restore_light_source=dict(threshold=0.9, scale=2))
    assert OptionChecker(is_train=False).check(dict(opt, datasets={})) == []
