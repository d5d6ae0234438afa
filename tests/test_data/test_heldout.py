"""Held-out flare families: their physics, and proof by behaviour that training never draws from them."""
import os
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from skimage import data as skimage_data

from flare_sr.data.heldout import HELDOUT_FAMILIES, anamorphic_flare, psf_flare, raytrace_flare
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
    assert (first >= info['label'] - 1e-5).all() and (first - info['label']).mean() > 1e-4


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
