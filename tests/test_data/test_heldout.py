"""Held-out flare families: their physics, and proof by behaviour that training never draws from them."""
import os
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from skimage import data as skimage_data

from flare_sr.data.heldout import (HELDOUT_FAMILIES, anamorphic_flare, overlay_flare, psf_flare, raytrace_flare,
                                   veiling_flare)
from flare_sr.data.heldout.statistics import (REAL_FLARE_REFERENCE, clipped_share, flare_coverage, input_psnr,
                                              pair_statistics, summarize)
from flare_sr.data.heldout.veiling import glare_spread_function
from flare_sr.data.sampling import SampleKey, sample_rng
from flare_sr.data.synthesis import FlareConfig, synthesize_flare
from flare_sr.utils.img_util import read_image, read_image_uint8, to_uint8
from tests.helpers import load_script, write_clean_photos

BLACK = np.zeros((128, 160, 3), np.float32)


@pytest.fixture(scope='module')
def scene():
    ys, xs = np.mgrid[0:96, 0:128].astype(np.float32)
    return np.stack([xs / 127, ys / 95, 0.5 + 0.4 * np.sin(xs / 9) * np.cos(ys / 7)], axis=-1).astype(np.float32)


@pytest.mark.parametrize('family', sorted(HELDOUT_FAMILIES))
def test_each_family_is_deterministic_and_only_adds_light(scene, family):
    generate = HELDOUT_FAMILIES[family]
    first, info = generate(scene, np.random.default_rng(4), {'noise_prob': 0.0})
    second, _ = generate(scene, np.random.default_rng(4), {'noise_prob': 0.0})
    np.testing.assert_array_equal(first, second)
    assert info['family'] == family and first.shape == scene.shape
    assert isinstance(info['light_in_frame'], bool) and len(info['light_xy']) == 2
    if family != 'overlay':  # overlay alpha-blends: it may darken a pixel brighter than a flare colour
        assert (first >= info['label'] - 1e-5).all()
    assert (first - info['label']).mean() > 1e-4


def _colour_structure(flare_linear):
    """L1 distance between the red and the blue flare pattern, each normalised to unit energy."""
    red, blue = flare_linear[..., 0], flare_linear[..., 2]
    return float(np.abs(red / red.sum() - blue / blue.sum()).sum())


def test_psf_family_scales_its_diffraction_pattern_with_wavelength():
    """Fourier optics: red and blue PSFs differ in shape (rainbow speckle) even for a white light."""
    white = dict(source_in_frame_prob=1.0, color_temperature=(6500.0, 6500.0), rgb_gain_jitter=0.0, noise_prob=0.0)
    for seed in range(3):
        _, info = psf_flare(BLACK, np.random.default_rng(seed), white)
        assert _colour_structure(info['flare_linear']) > 0.1


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


@pytest.mark.parametrize('seed', range(3))
def test_raytraced_ghosts_lie_on_the_line_through_the_optical_centre(seed):
    """A rotationally symmetric lens keeps each ghost in the light's meridional plane."""
    _, info = raytrace_flare(BLACK, np.random.default_rng(seed), {'noise_prob': 0.0, 'source_in_frame_prob': 1.0})
    centre = np.array([(160 - 1) / 2, (128 - 1) / 2])
    axis = np.array(info['light_xy']) - centre
    assert len(info['ghost_centres']) >= 10
    for ghost in info['ghost_centres']:
        offset = np.array(ghost) - centre
        assert abs(axis[0] * offset[1] - axis[1] * offset[0]) / np.linalg.norm(axis) < 1e-6


def test_anamorphic_streak_is_horizontal():
    for seed in range(3):
        streak_only = {'noise_prob': 0.0, 'source_in_frame_prob': 1.0, 'ring_prob': 0.0, 'ghost_count': (0, 1),
                       'source_brightness': (0.0, 0.0)}
        _, info = anamorphic_flare(BLACK, np.random.default_rng(seed), streak_only)
        x, y = (int(round(v)) for v in info['light_xy'])
        energy = info['flare_linear'].sum(axis=2)
        assert energy[y, :].sum() > 5 * energy[:, x].sum()


def test_overlay_family_is_deterministic_per_generator_and_keeps_the_sun_in_the_label(scene):
    """Same generator state, same pair; the sun disc is in the label (Flare7K++'s convention) and equal in
    both; the glow and the circles are in the input only, blended in sRGB (darker pixels brighten most)."""
    in_frame = {'source_in_frame_prob': 1.0}
    first, info = overlay_flare(scene, np.random.default_rng(11), in_frame)
    second, again = overlay_flare(scene, np.random.default_rng(11), in_frame)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(info['label'], again['label'])
    other, _ = overlay_flare(scene, np.random.default_rng(12), in_frame)
    assert not np.array_equal(first, other)
    x, y = (int(round(v)) for v in info['light_xy'])
    assert info['light_in_frame'] and np.abs(info['label'][y, x] - scene[y, x]).max() > 0.1  # the sun, in the label
    np.testing.assert_allclose(first[y, x], info['label'][y, x], atol=1e-6)
    flare_only = np.abs(first - info['label']).max(axis=2) > 0.03
    assert flare_only.mean() > 0.02 and info['flare_alpha'].shape == scene.shape[:2]
    assert info['flare_rgb'].shape == scene.shape and info['flare_rgb'].max() <= 1.0


def test_veiling_glare_spread_function_is_the_cie_general_disability_glare_equation():
    """CIE 146:2002: 10/t^3 + (5/t^2 + 0.1 p/t)(1 + (A/62.5)^4) + 0.0025 p, by hand at two angles."""
    # 1 deg, age 25, p 0.5: 10 + 5.05 (1 + 0.4^4) + 0.00125
    assert glare_spread_function(1.0, 25.0, 0.5) == pytest.approx(10 + 5.05 * 1.0256 + 0.00125, rel=1e-12)
    # 10 deg, age 70, p 1: 0.01 + 0.06 (1 + 1.12^4) + 0.0025
    assert glare_spread_function(10.0, 70.0, 1.0) == pytest.approx(0.01 + 0.06 * 2.57351936 + 0.0025, rel=1e-12)


def test_veiling_veil_falls_with_distance_from_an_isolated_light_and_stays_out_of_the_label():
    """One light on a black scene: the veil's mean over rings around it falls at every step outward and still
    reaches the far side of the frame; the label holds the light and nothing else; same generator, same pair."""
    one_light = {'source_in_frame_prob': 1.0, 'second_source_prob': 0.0, 'noise_prob': 0.0}
    for seed in range(2):
        flared, info = veiling_flare(BLACK, np.random.default_rng(seed), one_light)
        again, _ = veiling_flare(BLACK, np.random.default_rng(seed), one_light)
        np.testing.assert_array_equal(flared, again)
        x, y = info['light_xy']
        ys, xs = np.mgrid[0:BLACK.shape[0], 0:BLACK.shape[1]]
        distance = np.hypot(xs - x, ys - y)
        source = info['label'].max(axis=2) > 0
        assert info['label'][int(round(y)), int(round(x))].max() > 0.9  # the light, in the label
        assert distance[source].max() < 0.02 * np.hypot(*BLACK.shape[:2]) + 2  # ... and only the light
        veil = info['flare_linear'].sum(axis=2)
        rings = [veil[(distance >= r) & (distance < r * 1.5)].mean() for r in (6, 9, 13.5, 20, 30, 45, 67)
                 if ((distance >= r) & (distance < r * 1.5)).any()]
        assert len(rings) >= 5 and all(inner > outer for inner, outer in zip(rings, rings[1:])), rings
        assert (flared - info['label'])[distance > 0.8 * distance.max()].max() > 0  # a veil reaches the far side
    other, _ = veiling_flare(BLACK, np.random.default_rng(5), one_light)
    assert not np.array_equal(other, flared)


def test_input_statistics_on_constructed_pairs():
    """Known answers: one pixel in 16 off by 255 levels; a quarter of a frame lifted by 0.05, one pixel clipped
    by the flare, one clipped in both (the source: not counted)."""
    label = np.zeros((4, 4, 3), np.float32)
    flared = label.copy()
    flared[0, 0] = 1.0
    assert input_psnr(flared, label) == pytest.approx(10 * np.log10(16), abs=1e-9)  # MSE = 255^2 / 16
    assert input_psnr(label, label) == float('inf')
    assert input_psnr(to_uint8(flared), to_uint8(label)) == input_psnr(flared, label)  # uint8 and float agree
    label = np.full((8, 8, 3), 0.5, np.float32)
    label[7, 7] = 1.0                  # a light source, clipped in the label already
    flared = label.copy()
    flared[:4, :4, 1] += 0.05          # above the 0.03 threshold in one channel: 16 of 64 pixels
    flared[4, 4, 2] = 0.02 + 0.5       # below it: not flare
    flared[0, 0, 0] = 254 / 255        # clipped by the flare
    assert flare_coverage(flared, label) == pytest.approx(16 / 64)
    assert clipped_share(flared, label) == pytest.approx(1 / 64)
    record = pair_statistics(flared, {'label': label, 'light_in_frame': True})
    assert record['coverage'] == pytest.approx(0.25) and record['light_in_frame'] is True
    row = summarize([record, dict(record, input_psnr=float('inf'), light_in_frame=False)])
    assert row['count'] == 2 and row['light_in_frame'] == 0.5
    assert row['psnr_mean'] == pytest.approx(record['input_psnr'])  # inf left out
    summary = summarize([dict(record, input_psnr=value) for value in range(10, 21)])
    assert (summary['psnr_p10'], summary['psnr_p50'], summary['psnr_p90']) == pytest.approx((11, 15, 19))


def test_every_family_is_calibrated_to_real_flare_input_psnr():
    """On 12 seeded crops of the demo's held-out photos (96x128), each family's mean input PSNR lies in
    [19, 25] dB, around real flare's 21.1 (Dacon) and 22.6 dB (Flare7K++), and the reference table names a
    source for every row (docs/evaluation.md, "Held-out families calibrated to real flare")."""
    rows = load_script('bench/heldout_statistics').measure(sorted(HELDOUT_FAMILIES), 12, scale=0.5)
    assert set(rows) == set(HELDOUT_FAMILIES)
    for family, row in rows.items():
        assert 19.0 <= row['psnr_mean'] <= 25.0, (family, row)
        assert row['light_in_frame'] >= 0.5 and row['clipped_share'] < 0.1, (family, row)
    assert all(reference['source'] for reference in REAL_FLARE_REFERENCE.values())


# -- unreachability, by behaviour ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
    return write_clean_photos(tmp_path_factory.mktemp('clean'), ('astronaut.png', 'chelsea.png'))


def _generators():
    return [('procedural', synthesize_flare)] + sorted(HELDOUT_FAMILIES.items())


def _executed_code(function):
    """The set of code objects that ran while calling ``function()``, and its result."""
    seen = set()

    def profile(frame, event, arg):
        if event == 'call':
            seen.add(frame.f_code)

    sys.setprofile(profile)
    try:
        result = function()
    finally:
        sys.setprofile(None)
    return seen, result


def _held_out_code():
    """Code objects the held-out generators run from their own source files (found by calling them once)."""
    codes, _ = _executed_code(lambda: [generate(BLACK[:32, :40], np.random.default_rng(0))
                                       for generate in HELDOUT_FAMILIES.values()])
    own_files = {generate.__code__.co_filename for generate in HELDOUT_FAMILIES.values()}
    return {code for code in codes if code.co_filename in own_files}


def test_training_dataset_samples_are_regenerated_by_the_training_family_only(clean_dir):
    """Each sample of SyntheticFlareDataset is rebuilt bit for bit by the procedural family from the sample's
    own generator, and by no held-out family; no held-out flare code runs while sampling."""
    options = dict(type='SyntheticFlareDataset', name='synth', dataroot_gt=str(clean_dir), io_backend={'type': 'disk'},
                   phase='train', seed=2, flare={'frame_scale': 2.0})
    dataset = build_dataset(options)
    held_out_code = _held_out_code()
    assert held_out_code  # the probe itself works
    keys = [SampleKey(index, draw) for draw in range(1, 4) for index in range(len(dataset))]
    ran, samples = _executed_code(lambda: [dataset[key] for key in keys])
    assert not ran & held_out_code, sorted(f"{c.co_filename}:{c.co_name}" for c in ran & held_out_code)
    config = FlareConfig.from_options(options['flare'])
    for key, sample in zip(keys, samples):
        clean = read_image(dataset.paths[key.index])
        for name, generate in _generators():
            flared, _ = generate(clean, sample_rng(options, key, len(dataset)),
                                 config if name == 'procedural' else None)
            same = torch.equal(torch.from_numpy(flared.transpose(2, 0, 1).copy()), sample['lq'])
            assert same == (name == 'procedural'), (key, name)


def test_demo_training_pairs_come_from_the_training_family_only(tmp_path):
    """Every flared training and validation pair of the demo dataset is regenerated exactly by the procedural
    family from its planned generator and by no held-out family; the test pairs by their own family only."""
    demo = load_script('make_demo_dataset')
    args = dict(seed=1, per_photo_train=1, per_photo_test=1)
    sizes = demo.demo_sizes(0.25)
    held_out_code = _held_out_code()
    ran, _ = _executed_code(lambda: [demo.FAMILIES[job[4]](demo.random_crop_resize(read_image(os.path.join(
        skimage_data.data_dir, job[2])), job[3], job[5]), job[5]) for job in demo.plan(
        args['seed'], args['per_photo_train'], args['per_photo_test'], sizes) if job[0] != 'test'])
    assert not ran & held_out_code, sorted(f"{c.co_filename}:{c.co_name}" for c in ran & held_out_code)
    demo.build(str(tmp_path / 'demo'), args['seed'], 0.25, args['per_photo_train'], args['per_photo_test'])
    checked = set()
    for split, number, photo, size, family, _, is_clean in demo.plan(args['seed'], args['per_photo_train'],
                                                                     args['per_photo_test'], sizes):
        if is_clean:
            continue
        folder = tmp_path / 'demo' / f'{split}_input_img'
        written = read_image_uint8(folder / f'{split}_input_{number}.png')
        photo_img = read_image(os.path.join(skimage_data.data_dir, photo))
        for name, generate in _generators():
            rng = [job for job in demo.plan(args['seed'], args['per_photo_train'], args['per_photo_test'], sizes)
                   if job[1] == number and job[0] == split][0][5]
            flared, _ = generate(demo.random_crop_resize(photo_img, size, rng), rng)
            same = np.array_equal(to_uint8(flared), written)
            assert same == (name == family), (split, number, name)
        checked.add((split, family))
    assert checked == {('train', 'procedural'), ('val', 'procedural')} | {('test', f) for f in HELDOUT_FAMILIES}
