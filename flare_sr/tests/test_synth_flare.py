"""Procedural flare physics and the held-out Fourier-optics family."""
import cv2
import numpy as np
import pytest

import flare_sr  # noqa: F401
from flare_sr.data import flare_synthesis, synthetic_flare_dataset
from flare_sr.data.flare_synthesis import FlareConfig, psf_flare, synthesize_flare
from flare_sr.errors import FlareSRError

ALL_OFF = dict(glow=False, streaks=False, ghosts=False, haze=False, source=False)
QUIET = dict(noise_prob=0.0, blur_prob=0.0)


def only(*components, **settings):
    """A noise- and blur-free FlareConfig with just the named components on."""
    return FlareConfig(**{**ALL_OFF, **{name: True for name in components}, **QUIET, **settings})


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
    flared, info = synthesize_flare(scene, np.random.default_rng(seed), FlareConfig(**QUIET))
    gamma = info['gamma']
    assert 1.8 <= gamma <= 2.2
    clean_linear, flared_linear = scene.astype(np.float64) ** gamma, flared.astype(np.float64) ** gamma
    assert (flared_linear >= clean_linear - 1e-5).all()
    assert flared.min() >= 0 and flared.max() <= 1
    assert (flared_linear - clean_linear).mean() > 1e-3  # and it does add something


def test_label_is_the_clean_image_unless_the_source_is_kept(scene):
    _, info = synthesize_flare(scene, np.random.default_rng(1), FlareConfig(keep_source_in_label=False))
    np.testing.assert_array_equal(info['label'], scene)
    config = only('source', source_in_frame_prob=1.0)
    flared, info = synthesize_flare(scene, np.random.default_rng(1), config)
    x, y = (int(round(v)) for v in info['light_xy'])
    assert info['label'][y, x].min() == pytest.approx(1.0)  # saturated core kept in the target
    np.testing.assert_allclose(flared, info['label'], atol=1e-6)  # a bare source is no flare


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
    for name in ('glow', 'streaks', 'ghosts', 'haze', 'source'):
        config = only(name, source_in_frame_prob=1.0)
        _, info = synthesize_flare(scene, np.random.default_rng(3), config)
        assert info['components'] == [name]
        assert info['flare_linear'].max() > 1e-3, name
    flared, info = synthesize_flare(scene, np.random.default_rng(3), only())
    assert info['components'] == []
    np.testing.assert_allclose(flared, scene, atol=1e-5)


def test_config_overrides_are_checked_by_name():
    assert FlareConfig.from_options({'ghost_count': [1, 2]}).ghost_count == (1, 2)
    with pytest.raises(FlareSRError, match='flare.ghost_cuont'):
        FlareConfig.from_options({'ghost_cuont': [1, 2]})
    with pytest.raises(FlareSRError, match='flare.gamma'):
        FlareConfig.from_options({'gamma': [2.2, 1.8]})


def _colour_structure(flare_linear):
    """L1 distance between the red and the blue flare pattern, each normalised to unit energy."""
    red, blue = flare_linear[..., 0], flare_linear[..., 2]
    return float(np.abs(red / red.sum() - blue / blue.sum()).sum())


def test_psf_family_has_wavelength_dependent_structure_and_the_procedural_one_does_not():
    """Fourier optics scales the diffraction pattern with wavelength, so red and blue flare differ in shape
    (rainbow speckle); the procedural glow and streaks are one pattern times one colour."""
    black = np.zeros((128, 128, 3), np.float32)
    white_light = dict(source_in_frame_prob=1.0, color_temperature=(6500.0, 6500.0), rgb_gain_jitter=0.0)
    for seed in range(3):
        _, info = psf_flare(black, np.random.default_rng(seed), {**white_light, 'noise_prob': 0.0})
        assert _colour_structure(info['flare_linear']) > 0.1
        _, info = synthesize_flare(black, np.random.default_rng(seed), only('glow', 'streaks', **white_light))
        assert _colour_structure(info['flare_linear']) < 1e-4


def test_psf_family_is_deterministic_and_only_adds_light(scene):
    first, info = psf_flare(scene, np.random.default_rng(4), {'noise_prob': 0.0})
    second, _ = psf_flare(scene, np.random.default_rng(4), {'noise_prob': 0.0})
    np.testing.assert_array_equal(first, second)
    assert info['family'] == 'psf'
    assert (first.astype(np.float64) ** info['gamma'] >= scene.astype(np.float64) ** info['gamma'] - 1e-5).all()


def test_held_out_psf_family_is_not_reachable_from_the_training_dataset():
    assert 'psf_flare' not in vars(synthetic_flare_dataset)
    assert 'point_spread_rgb' not in vars(synthetic_flare_dataset)
    assert synthetic_flare_dataset.synthesize_flare is flare_synthesis.synthesize_flare
    with pytest.raises(FlareSRError, match='flare.family'):
        FlareConfig.from_options({'family': 'psf'})


def test_psf_family_above_work_size_matches_the_full_resolution_convolution():
    """Large photos are convolved downscaled and upsampled: same energy and, blurred, the same pattern."""
    black = np.zeros((150, 200, 3), np.float32)
    settings = {'source_in_frame_prob': 1.0, 'noise_prob': 0.0}
    for seed in range(2):
        flared, fast = psf_flare(black, np.random.default_rng(seed), {**settings, 'work_size': 100})
        _, exact = psf_flare(black, np.random.default_rng(seed), {**settings, 'work_size': 1000})
        assert flared.shape == black.shape and fast['flare_linear'].shape == black.shape
        fast_map, exact_map = (cv2.GaussianBlur(info['flare_linear'], (0, 0), 3) for info in (fast, exact))
        assert abs(fast_map.sum() / exact_map.sum() - 1) < 0.15
        assert np.abs(fast_map - exact_map).sum() / exact_map.sum() < 0.15
