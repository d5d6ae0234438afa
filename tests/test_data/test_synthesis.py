"""Procedural (training) flare: each component's physical property, compositing, options."""
import dataclasses

import numpy as np
import pytest

from flare_sr.data.synthesis import COMPONENTS, FlareConfig, synthesize_flare
from flare_sr.data.synthesis.optics import chromatic_aberration, defocus
from flare_sr.data.synthesis.options import MAX_VALUE, draw
from flare_sr.data.synthesis.procedural import CAMERA_EFFECTS
from flare_sr.data.synthesis.sensor import bloom, tone_map
from flare_sr.data.synthesis.sources import inverse_square
from flare_sr.errors import FlareSRError

only = FlareConfig.only  # just the named components, always present, camera effects off
QUIET = dict(noise_prob=0.0)


@pytest.fixture(scope='module')
def scene():
    """A smooth, non-trivial 96x128 colour image."""
    ys, xs = np.mgrid[0:96, 0:128].astype(np.float32)
    return np.stack([xs / 127, ys / 95, 0.5 + 0.4 * np.sin(xs / 9) * np.cos(ys / 7)], axis=-1).astype(np.float32)


def test_same_generator_state_gives_same_flare_and_different_states_differ(scene):
    first, info_a = synthesize_flare(scene, np.random.default_rng(7))
    second, info_b = synthesize_flare(scene, np.random.default_rng(7))
    other, _ = synthesize_flare(scene, np.random.default_rng(8))
    assert first.dtype == np.float32 and first.shape == scene.shape
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(info_a['label'], info_b['label'])
    assert np.abs(first - other).mean() > 1e-3


@pytest.mark.parametrize('seed', range(4))
def test_flare_only_adds_light_in_linear_space(scene, seed):
    """Every component and camera effect on (exposure, tone curve, bloom): the input never falls below the label
    developed by the same camera, because flare only adds light and the camera's curve is monotone."""
    flared, info = synthesize_flare(scene, np.random.default_rng(seed), FlareConfig(**QUIET, light_count=(3, 4)))
    assert 1.8 <= info['gamma'] <= 2.2
    assert (flared >= info['label'] - 1e-5).all()
    assert flared.min() >= 0 and flared.max() <= 1
    assert (flared - info['label']).mean() > 1e-3  # and it does add something


def test_label_is_the_clean_image_unless_the_source_is_kept(scene):
    neutral_camera = dict(exposure_prob=0.0, tone_prob=0.0)
    config = FlareConfig(keep_source_in_label=False, **neutral_camera)
    _, info = synthesize_flare(scene, np.random.default_rng(1), config)
    np.testing.assert_array_equal(info['label'], scene)
    config = only('source', source_in_frame_prob=1.0)
    flared, info = synthesize_flare(scene, np.random.default_rng(1), config)
    x, y = (int(round(v)) for v in info['light_xy'])
    assert info['label'][y, x].min() == pytest.approx(1.0)  # saturated core kept in the target
    np.testing.assert_allclose(flared, info['label'], atol=1e-6)  # a bare source is no flare


def test_a_source_only_sample_is_its_label_with_the_lights_of_the_flared_sample_it_replaces(scene):
    """``source_only_prob``: input = label = the lights through the camera, no flare; the same draws as the flared
    sample otherwise made, so the label (lights and camera) is that sample's label."""
    config = FlareConfig(source_in_frame_prob=1.0, source_only_prob=1.0)
    flared, info = synthesize_flare(scene, np.random.default_rng(5), config)
    np.testing.assert_array_equal(flared, info['label'])
    assert info['components'] == ['source'] and info['effects'] == []
    x, y = (int(round(v)) for v in info['light_xy'])
    assert info['label'][y, x].min() == pytest.approx(1.0)  # the lamp is there, saturated
    assert np.abs(info['label'] - scene).max() > 0.5
    rng = np.random.default_rng(5)
    rng.random()  # the source-only coin: after it, the flared sample makes the same draws
    flared_twin, twin = synthesize_flare(scene, rng, FlareConfig(source_in_frame_prob=1.0))
    np.testing.assert_array_equal(info['label'], twin['label'])
    assert np.abs(flared_twin - twin['label']).max() > 0.1  # the flared twin differs from the shared label
    config = FlareConfig(source_only_prob=0.3, clean_prob=0.5)
    rng = np.random.default_rng(0)
    samples = [synthesize_flare(scene, rng, config) for _ in range(200)]
    kinds = ['clean' if not sample['lights'] else 'source only' if np.array_equal(image, sample['label']) else 'flared'
             for image, sample in samples]
    lit = len(kinds) - kinds.count('clean')
    assert 80 <= kinds.count('clean') <= 120 and 0.2 <= kinds.count('source only') / lit <= 0.4  # 0.5, then 0.3


@pytest.mark.parametrize('seed', range(3))
def test_light_outside_the_frame_still_casts_glow_brightest_at_the_nearest_border(scene, seed):
    config = only('glow', source_in_frame_prob=0.0)
    _, info = synthesize_flare(scene, np.random.default_rng(seed), config)
    x, y = info['light_xy']
    height, width = scene.shape[:2]
    assert not info['light_in_frame'] and not (0 <= x <= width - 1 and 0 <= y <= height - 1)
    glow = info['flare_linear'].sum(axis=2)
    assert glow.max() > 1e-3
    peak_y, peak_x = np.unravel_index(np.argmax(glow), glow.shape)
    nearest = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    assert np.hypot(peak_x - nearest[0], peak_y - nearest[1]) <= 1.5


@pytest.mark.parametrize('seed', range(5))
def test_ghosts_lie_on_the_line_through_the_optical_centre(seed):
    height, width = 192, 256
    config = only('ghosts', source_in_frame_prob=1.0, ghost_position=(-0.7, 0.7), ghost_radius=(0.01, 0.02))
    _, info = synthesize_flare(np.zeros((height, width, 3), np.float32), np.random.default_rng(seed), config)
    layer = info['flare_linear'].sum(axis=2)
    ys, xs = np.mgrid[0:height, 0:width]
    centroid = np.array([(xs * layer).sum(), (ys * layer).sum()]) / layer.sum()
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    axis = np.array(info['light_xy']) - centre
    offset = centroid - centre
    distance_to_line = abs(axis[0] * offset[1] - axis[1] * offset[0]) / np.linalg.norm(axis)
    assert distance_to_line < 1.0
    assert np.linalg.norm(offset) > 0 or len(info['ghost_positions']) == 0


def test_each_component_can_be_switched_on_alone_and_all_off_leaves_the_scene(scene):
    for name in COMPONENTS:
        config = only(name, source_in_frame_prob=1.0)
        _, info = synthesize_flare(scene, np.random.default_rng(3), config)
        assert info['components'] == [name]
        assert info['flare_linear'].max() > 1e-3, name
    flared, info = synthesize_flare(scene, np.random.default_rng(3), only())
    assert info['components'] == []
    np.testing.assert_allclose(flared, scene, atol=1e-5)


def test_a_non_finite_image_is_refused():
    image = np.zeros((8, 8, 3), np.float32)
    image[2, 3, 1] = np.nan
    with pytest.raises(FlareSRError, match='finite'):
        synthesize_flare(image, np.random.default_rng(0))


def test_config_overrides_are_checked_by_name():
    assert FlareConfig.from_options({'ghost_count': [1, 2]}).ghost_count == (1, 2)
    with pytest.raises(FlareSRError, match='flare.ghost_cuont'):
        FlareConfig.from_options({'ghost_cuont': [1, 2]})
    with pytest.raises(FlareSRError, match='flare.gamma'):
        FlareConfig.from_options({'gamma': [2.2, 1.8]})


def test_one_number_fixes_a_range_and_an_integer_range_excludes_its_high():
    config = FlareConfig.from_options({'frame_scale': 2, 'ghost_count': 3, 'intensity': 0.5})
    assert (config.frame_scale, config.ghost_count, config.intensity) == ((2, 2), (3, 4), (0.5, 0.5))
    rng = np.random.default_rng(0)
    assert {int(rng.integers(*config.ghost_count)) for _ in range(20)} == {3}


@pytest.mark.parametrize('key, value, problem', [
    ('glow_prob', 'high', "expected a number, got 'high'"),
    ('glow', 'no', "expected true or false, got 'no'"),  # a string would switch it on
    ('clean_prob', 1.5, 'a probability must lie in [0, 1], got 1.5'),
    ('intensity', [-1.0, 1.0], 'must not be negative, got [-1.0, 1.0]'),  # light only adds
    ('frame_scale', 0, 'must be above 0, got 0'),
    ('glow_radius', [0.0, 0.05], 'must be above 0, got [0.0, 0.05]'),
    ('ghost_count', [2.5, 4], 'expected one number or [low, high] of integers, got [2.5, 4]'),
    ('light_count', [2, 2], 'expected [low, high] with low < high (high is excluded), got [2, 2]'),
    ('gamma', float('nan'), 'expected one number or [low, high] of numbers, got nan'),
    ('ghost_strength', [0.1], 'expected one number or [low, high] of numbers, got [0.1]'),
    # values of the right type that hung, crashed or made light subtract once samples were drawn
    ('source_outside', 0, 'must be above 0, got 0'),  # an empty band to draw an outside light from: a hang
    ('color_temperature', [2.5, 9], 'must lie in [1000, 40000], got [2.5, 9]'),  # kelvin in thousands: NaN
    ('light_distance', 1e-200, 'must lie in [1, 1000], got 1e-200'),  # inverse square: division by zero
    ('exposure_ev', 2000, 'must lie in [-20, 20], got 2000'),  # 2^2000 overflows
    ('light_count', [1, 1000], 'must lie in [1, 65) (64 at most), got [1, 1000]'),  # minutes per sample
    ('light_count', 10 ** 20, 'must lie in [1, 65) (64 at most), got 100000000000000000000'),
    ('rgb_gain_jitter', 1.5, 'must lie in [0, 0.9], got 1.5'),  # a negative gain subtracts light
    ('tone_contrast', -100, 'must lie in [-0.99, 1.99], got -100'),  # the curve stops rising
    ('glow_strength', 1e308, 'must not exceed 1e+06, got 1e+308'),
    ('frame_scale', '1e-3', "expected one number or [low, high] of numbers, got '1e-3' (YAML reads 1e-3 as text: "
                            'write 1.0e-3 or !!float 1e-3)'),
    ('frame_scale', {'low': 1, 'high': 2}, "expected one number or [low, high] of numbers, got {'low': 1, 'high': 2}"),
])
def test_a_bad_flare_value_is_one_error_naming_the_key_and_the_problem(key, value, problem):
    with pytest.raises(FlareSRError) as error:
        FlareConfig.from_options({key: value})
    assert str(error.value) == f'option flare.{key}: {problem}'


def test_every_bad_flare_value_is_named_not_only_the_first():
    with pytest.raises(FlareSRError) as error:
        FlareConfig.from_options({'clean_prob': 2, 'glow': 1, 'frame_scale': -1})
    assert str(error.value) == ('option flare.clean_prob: a probability must lie in [0, 1], got 2; '
                                'option flare.glow: expected true or false, got 1; '
                                'option flare.frame_scale: must lie in [0, 100], got -1')


def test_a_whole_float_counts_as_an_integer():
    assert FlareConfig.from_options({'light_count': 2.0, 'ghost_count': [1.0, 3]}).light_count == (2, 3)


def test_signed_ranges_accept_negative_values():
    config = FlareConfig.from_options({'exposure_ev': [-1.0, 0.5], 'tone_contrast': -0.2, 'ghost_position': [-1, 0]})
    assert config.exposure_ev == (-1.0, 0.5) and config.tone_contrast == (-0.2, -0.2)


def test_log_ranges_draw_each_factor_of_ten_as_often_and_stay_in_the_range():
    uniform = FlareConfig.from_options({'haze_strength': [0.001, 0.1]})
    logarithmic = FlareConfig.from_options({'haze_strength': [0.001, 0.1], 'log_ranges': ['haze_strength']})
    draws = {name: np.array([draw(rng, config, 'haze_strength') for _ in range(4000)])
             for name, config, rng in (('uniform', uniform, np.random.default_rng(0)),
                                       ('log', logarithmic, np.random.default_rng(0)))}
    assert 0.46 < np.mean(draws['log'] < 0.01) < 0.54  # the decade [0.001, 0.01) as often as [0.01, 0.1]
    assert 0.07 < np.mean(draws['uniform'] < 0.01) < 0.11  # uniform: 9 %
    assert draws['log'].min() >= 0.001 and draws['log'].max() <= 0.1
    assert 'glow_strength' not in logarithmic.log_ranges  # an unnamed range stays uniform
    assert draw(np.random.default_rng(1), logarithmic, 'glow_strength') == np.random.default_rng(1).uniform(0.3, 1.2)


def test_log_ranges_change_the_named_strengths_but_not_where_the_lights_are(scene):
    """One generator draw per range either way: naming a range changes its values, not the rest of the stream."""
    log_veils = FlareConfig.from_options({'log_ranges': ['haze_strength', 'bleed_strength'], 'haze_prob': 1.0,
                                          'bleed_prob': 1.0})
    uniform_veils = FlareConfig.from_options({'haze_prob': 1.0, 'bleed_prob': 1.0})
    _, log_info = synthesize_flare(scene, np.random.default_rng(3), log_veils)
    _, uniform_info = synthesize_flare(scene, np.random.default_rng(3), uniform_veils)
    assert log_info['components'] == uniform_info['components']
    assert [(light['x'], light['y']) for light in log_info['lights']] == \
        [(light['x'], light['y']) for light in uniform_info['lights']]
    assert not np.allclose(log_info['flare_linear'], uniform_info['flare_linear'])


@pytest.mark.parametrize('value, problem', [
    (['hze_strength'], "'hze_strength' is not a range of FlareConfig (did you mean 'haze_strength'?)"),
    (['glow'], "'glow' is not a range of FlareConfig"),  # a switch, not a range
    (['ghost_count'], "'ghost_count' is an integer range; only number ranges are drawn log-uniformly"),
    (['shot_noise'], "'shot_noise' is [0.0, 0.004]: a log-uniform range needs a low end above 0"),  # default's 0
    (['exposure_ev'], "'exposure_ev' is [-0.7, 0.5]: a log-uniform range needs a low end above 0"),
    (5, 'expected a list of range names, such as [haze_strength], got 5'),
    ([['haze_strength']], "expected a list of range names, such as [haze_strength], got [['haze_strength']]"),
])
def test_a_bad_log_range_is_one_error_naming_it(value, problem):
    with pytest.raises(FlareSRError) as error:
        FlareConfig.from_options({'log_ranges': value})
    assert str(error.value) == f'option flare.log_ranges: {problem}'


def test_log_ranges_are_checked_against_the_ranges_given_beside_them():
    assert FlareConfig.from_options({'log_ranges': 'haze_strength'}).log_ranges == {'haze_strength'}  # one name
    assert FlareConfig.from_options({'log_ranges': ['shot_noise'], 'shot_noise': [1e-4, 4e-3]}).log_ranges == \
        {'shot_noise'}
    # whole numbers given for a number range keep it a number range (its kind is the default's)
    assert FlareConfig.from_options({'log_ranges': ['frame_scale'], 'frame_scale': [1, 3]}).log_ranges == \
        {'frame_scale'}
    with pytest.raises(FlareSRError) as error:  # a range refused on its own is not judged again
        FlareConfig.from_options({'log_ranges': ['haze_strength'], 'haze_strength': [0.2, 0.1]})
    assert str(error.value) == 'option flare.haze_strength: expected [low, high] with low <= high, got [0.2, 0.1]'
    with pytest.raises(FlareSRError) as error:
        FlareConfig.from_options({'log_ranges': ['haze_strength'], 'haze_strength': [0, 0.1]})
    assert str(error.value) == ("option flare.log_ranges: 'haze_strength' is [0, 0.1]: a log-uniform range needs a "
                                'low end above 0')


def _flare_alone(config, seed, size=(96, 128)):
    """(flare_linear, info) of ``config`` on a black frame."""
    _, info = synthesize_flare(np.zeros((*size, 3), np.float32), np.random.default_rng(seed), config)
    return info['flare_linear'], info


FIXED_WHITE = dict(color_temperature=(6500.0, 6500.0), rgb_gain_jitter=0.0, intensity=(1.0, 1.0))


@pytest.mark.parametrize('seed', range(3))
def test_light_bleed_is_wide_smooth_and_tinted(seed):
    narrowest = FlareConfig().bleed_radius[0]
    config = only('bleed', source_in_frame_prob=1.0, bleed_radius=(narrowest, narrowest), **FIXED_WHITE)
    flare, info = _flare_alone(config, seed)
    x, y = (int(round(v)) for v in info['light_xy'])
    energy = flare.sum(axis=2)
    distance = np.hypot(*np.mgrid[0:96, 0:128][::-1] - np.array([x, y])[:, None, None]) / np.hypot(96, 128)
    ring = np.abs(distance - 0.25) < 0.01
    assert energy[ring].mean() > 0.1 * energy[y, x]  # even the narrowest reaches a quarter diagonal
    assert np.abs(np.diff(energy, axis=1)).max() < 0.05 * energy.max()  # low frequency: no edges
    tint = flare[y, x] / flare[y, x].max()
    assert tint.min() < 0.97  # coloured although the light is white


def test_veiling_glare_lifts_blacks_and_lowers_contrast():
    scene = np.zeros((96, 128, 3), np.float32)
    scene[:, 64:] = 0.8
    config = only('haze', source_in_frame_prob=1.0)
    for seed in range(3):
        flared, info = synthesize_flare(scene, np.random.default_rng(seed), config)
        dark, bright = flared[:, :64].mean(), flared[:, 64:].mean()
        assert flared[:, :64].min() > 0.02  # every black pixel lifted
        assert (bright - dark) / (bright + dark) < 1.0 * 0.99  # Michelson contrast below the scene's 1.0


@pytest.mark.parametrize('seed', range(3))
def test_scratch_streaks_run_through_the_light(seed):
    config = only('scatter', source_in_frame_prob=1.0, scratch_count=(1, 2), dust_spread=(1e-4, 1e-4))
    flare, info = _flare_alone(config, seed, size=(128, 128))
    x, y = info['light_xy']
    energy = flare.sum(axis=2)
    ys, xs = np.mgrid[0:128, 0:128]
    keep = (np.hypot(xs - x, ys - y) > 10) & (energy > 0.3 * energy[np.hypot(xs - x, ys - y) > 10].max())
    points = np.stack([xs[keep] - x, ys[keep] - y], axis=1).astype(float)
    direction = np.linalg.svd(points, full_matrices=False)[2][0]  # best line through the light
    distance = np.abs(points[:, 0] * direction[1] - points[:, 1] * direction[0])
    assert len(points) > 10 and np.percentile(distance, 90) < 4.0


def test_several_lights_dim_with_the_inverse_square_of_their_distance():
    fixed = dict(glow_strength=(1.0, 1.0), glow_core=(1.0, 1.0), glow_radius=(0.03, 0.03), glow_power=(2.0, 2.0))
    config = only('glow', light_count=(4, 5), light_distance=(1.2, 3.0), source_in_frame_prob=1.0, **fixed,
                  **FIXED_WHITE)
    _, info = _flare_alone(config, 5)
    lights = sorted(info['lights'], key=lambda light: light['distance'])
    assert len(lights) == 4 and lights[0]['distance'] == 1.0
    peaks = [light['layers']['glow'].max() for light in lights]
    for light, peak in zip(lights, peaks):
        assert peak == pytest.approx(2.0 * inverse_square(light['distance']), rel=0.02)
    assert peaks == sorted(peaks, reverse=True)  # farther, dimmer


def test_bloom_spills_only_around_saturated_pixels_mostly_along_columns():
    linear = np.full((64, 64, 3), 0.5, np.float32)
    linear[32, 32] = 40.0
    spill = bloom(linear, strength=0.5, length=4.0)
    assert spill.min() >= 0 and spill[:8, :8].max() == 0
    assert spill.sum() <= 0.5 * 39.0 * 3 * 1.0001  # no more than the spilled share of the excess
    assert spill[32, :, 0].sum() < spill[:, 32, 0].sum()  # columns (CCD readout direction) get more
    assert bloom(np.full((8, 8, 3), 0.9, np.float32), 0.5, 4.0).max() == 0  # nothing saturated, no bloom


def test_tone_curve_keeps_order_black_and_white():
    ramp = np.linspace(0, 1, 1001, dtype=np.float32)[None, :, None].repeat(3, axis=2)
    for contrast in (-0.3, 0.0, 0.6):
        curve = tone_map(ramp, 2.2, contrast)[0, :, 0]
        assert (np.diff(curve) > 0).all()
        assert curve[0] == 0 and curve[-1] == pytest.approx(1.0)


def test_chromatic_aberration_moves_red_out_and_blue_in():
    layer = np.zeros((101, 101, 3), np.float32)
    layer[50, 85] = 1.0  # a point 35 px right of the centre
    split = chromatic_aberration(layer, 0.05)
    columns = np.arange(101)
    centroid = [(split[..., c].sum(axis=0) * columns).sum() / split[..., c].sum() for c in range(3)]
    assert centroid[0] == pytest.approx(50 + 35 * 1.05, abs=0.2)
    assert centroid[1] == pytest.approx(85)
    assert centroid[2] == pytest.approx(50 + 35 * 0.95, abs=0.2)


def test_defocus_spreads_a_point_into_a_disc_and_keeps_its_energy():
    layer = np.zeros((41, 41, 3), np.float32)
    layer[20, 20] = 1.0
    blurred = defocus(layer, 3.0)
    assert blurred.sum() == pytest.approx(3.0, rel=1e-4)
    assert blurred[20, 20, 0] < 0.05 and blurred[20, 22, 0] > 0 and blurred[20, 26, 0] == 0


@pytest.mark.parametrize('seed', range(3))
def test_highlight_glare_surrounds_clipped_scene_highlights_and_falls_with_distance(seed):
    """A white (clipped) patch in a dark scene glares; the glare only adds, falls off with distance from the
    patch, and the label is the scene itself: the highlight stays, only its glare goes."""
    scene = np.full((96, 128, 3), 0.1, np.float32)
    scene[40:56, 20:36] = 1.0
    flared, info = synthesize_flare(scene, np.random.default_rng(seed), only('highlights'))
    assert info['components'] == ['highlights']
    np.testing.assert_array_equal(info['label'], scene)
    added = (flared - scene).sum(axis=2)
    assert added.min() >= -1e-5
    profile = added[48, 36:128]  # along the row through the patch, moving away from its right edge
    assert profile[0] > 0.05
    assert (np.diff(profile) <= 1e-5).all()
    assert profile[-1] < 0.5 * profile[0]


def test_a_scene_without_highlights_gets_no_highlight_glare(scene):
    dim = scene * 0.85  # nothing reaches the lowest clipping level (0.9)
    flared, info = synthesize_flare(dim, np.random.default_rng(0), only('highlights'))
    assert info['flare_linear'].max() == 0.0 and info['components'] == []
    np.testing.assert_allclose(flared, dim, atol=1e-6)


def _at_the_edge(end):
    """A FlareConfig with every range at the low or high end of what the checks allow, every effect on."""
    values = {}
    for field in dataclasses.fields(FlareConfig):
        if not isinstance(field.default, tuple):
            continue
        low, high = FlareConfig.LIMITS.get(field.name, (0, MAX_VALUE))
        if all(isinstance(bound, int) for bound in field.default):
            values[field.name] = [low, low + 1] if end == 'low' else [high - 1, high]
        else:
            low = 1e-6 if field.name in FlareConfig.POSITIVE and low == 0 else low
            values[field.name] = low if end == 'low' else high
    values.update({f'{name}_prob': 1.0 for name in COMPONENTS + CAMERA_EFFECTS if name != 'source'}, noise_prob=0.0)
    return FlareConfig.from_options(values)


@pytest.mark.parametrize('end', ['low', 'high'])
def test_every_accepted_setting_draws_a_finite_flare_that_only_adds_light(end):
    """The checks' bounds are the contract: at their edges a sample must not crash, hang, overflow or subtract."""
    image = np.random.default_rng(0).random((32, 40, 3)).astype(np.float32)
    image[:4, :4] = 1.0  # a highlight, so that every component has something to work on
    for seed in range(2):
        flared, info = synthesize_flare(image, np.random.default_rng(seed), _at_the_edge(end))
        assert np.isfinite(flared).all() and np.isfinite(info['label']).all()
        assert (flared >= info['label'] - 1e-5).all()
