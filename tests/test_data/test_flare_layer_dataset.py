"""Flare_Pair_Loader / Flare7kpp_Pair_Loader: the compositing is exact by hand, a sample is a pure function of
its key (across processes), bad setups fail at start-up in one line, and flare_sr's models train on layers."""
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from flare_sr.data.flare_layer_dataset import (TRANSFORM_FLARE, Flare7kpp_Pair_Loader, Flare_Pair_Loader, LayerDraw,
                                               composite_layers, draw_layers)
from flare_sr.data.sampling import SampleKey
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import write_image
from flare_sr.utils.options_check import check_option_file
from tests.helpers import (REPO, experiment_dirs, flare7kpp_dataset_options, flare_data, hinet_options,
                           make_flare7kpp_tree, pix2pix_options, run_train, subprocess_env, write_options)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    return make_flare7kpp_tree(tmp_path_factory.mktemp('flare7kpp'))


def _layers():
    """A 6x6 background, a flare whose per-channel min is 0 and max 1 (background removal leaves it), its light."""
    background = np.linspace(0.1, 0.9, 6 * 6 * 3, dtype=np.float32).reshape(6, 6, 3)
    flare = np.zeros((6, 6, 3), np.float32)
    flare[1:4, 2:5] = [[0.3], [0.6], [1.0]]
    light = np.zeros_like(flare)
    light[2, 3] = 0.8
    return background, flare, light


@pytest.mark.parametrize('with_light', [True, False])
def test_compositing_is_exact_against_values_by_hand(with_light):
    background, flare, light = _layers()
    gamma, gain = 2.0, 0.8
    draw = LayerDraw(gamma=gamma, gain=gain)  # no noise, identity affine, no flips, jitter, blur or offset
    out = composite_layers(background, flare, draw, 6, light if with_light else None, mask_type='color')
    bg, fl, li = gain * background**gamma, flare**gamma, (light if with_light else 0 * light)**gamma
    assert np.allclose(out['lq'], np.clip(bg + fl, 0, 1)**(1 / gamma), atol=1e-6)  # the flare only in lq
    assert np.allclose(out['gt'], np.clip(bg + li, 0, 1)**(1 / gamma), atol=1e-6)  # the light kept in gt (++)
    assert np.allclose(out['flare'], np.clip(fl - li, 0, 1)**(1 / gamma), atol=1e-6)
    assert np.array_equal(out['mask'], (np.clip(bg + fl, 0, 1) > 0.99**gamma).astype(np.float32))
    if with_light:
        assert out['gt'][2, 3].min() > out['gt'][2, 2].max() - 0.2 and out['flare'][2, 3].max() < 0.75


def test_jitter_offset_blur_and_noise_follow_the_draw():
    background, flare, _ = _layers()
    draw = LayerDraw(gamma=2.2, brightness=1.5, offset=0.01)
    out = composite_layers(background, flare, draw, 6)
    expected = np.clip(np.clip(1.5 * flare**2.2, 0, 1) + 0.01, 0, 1)
    assert np.allclose(out['flare'], expected**(1 / 2.2), atol=1e-6)
    blurred = composite_layers(background, flare, LayerDraw(gamma=2.2, blur_sigma=1.0), 6)['flare']
    assert blurred[0, 3].max() > 0 and blurred.max() < 1.0  # spread, peak lowered
    noisy = [composite_layers(background, flare, LayerDraw(noise_sigma=0.05, noise_seed=seed), 6)['gt']
             for seed in (1, 1, 2)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])


def test_one_stream_of_draws_and_jitter_and_offset_only_where_they_apply():
    """Turning the jitter or offset off changes no other number; the draws stay inside the original's ranges."""
    def draw(jitter, offset):
        return draw_layers(np.random.default_rng(3), (50, 20, 3), 1440, 32, TRANSFORM_FLARE, jitter, offset)

    full, plain = draw(True, True), draw(False, False)
    assert dataclasses.replace(full, brightness=1.0, offset=0.0) == plain
    assert 0.8 <= full.brightness <= 3 and abs(full.offset) <= 0.02 and 1.8 <= full.gamma <= 2.2
    assert 0.5 <= full.gain <= 1.2 and 0.1 <= full.blur_sigma <= 3 and max(map(abs, full.translate)) <= 300
    assert 0 <= full.crop[0] <= 50 - 32 and 0 <= full.crop[1] <= (20 + 2 * 12) - 32  # width reflect-padded


def test_flare_and_light_move_together_under_the_affine():
    """Rotation 90 deg about the centre (clockwise on screen) and a 1-px shift move the flare and its light alike;
    the background stays."""
    background, flare, light = _layers()
    bare = composite_layers(background, flare, LayerDraw(), 6)['gt']  # the background alone

    def light_at(draw):
        out = composite_layers(background, flare, draw, 6, light)
        where = np.unravel_index(np.argmax((out['gt'] - bare).sum(axis=2)), (6, 6))
        return out, tuple(int(i) for i in where)

    (still, at), (turned, turned_at), (shifted, shifted_at) = (light_at(LayerDraw(angle=angle, translate=shift))
                                                               for angle, shift in ((0, (0, 0)), (90, (0, 0)),
                                                                                    (0, (1, 0))))
    assert (at, turned_at, shifted_at) == ((2, 3), (3, 3), (2, 4))
    assert np.allclose(turned['flare'], np.rot90(still['flare'], k=-1), atol=1e-6)
    assert np.allclose(shifted['flare'][:, 1:], still['flare'][:, :-1], atol=1e-6)
    assert not shifted['flare'][:, 0].any()  # zeros come in, nothing wraps round


def _dataset(tree, cls=Flare7kpp_Pair_Loader, **extra):
    opt = flare7kpp_dataset_options(tree, img_size=40, phase='train', seed=5, **extra)
    if cls is Flare_Pair_Loader:
        opt.update(type='Flare_Pair_Loader', light_dict=None, data_ratio=None)
    return cls(opt)


DIGEST = textwrap.dedent('''
    import hashlib, sys
    import flare_sr
    from tests.helpers import flare7kpp_dataset_options
    from flare_sr.data.flare_layer_dataset import Flare7kpp_Pair_Loader
    from flare_sr.data.sampling import SampleKey
    tree = {'image_path': sys.argv[1], 'scattering_dict': eval(sys.argv[2]), 'reflective_dict': eval(sys.argv[3]),
            'light_dict': eval(sys.argv[4])}
    dataset = Flare7kpp_Pair_Loader(flare7kpp_dataset_options(tree, img_size=40, phase='train', seed=5,
                                                              mask_type='flare'))
    for draw in (0, 1, 17):
        sample = dataset[SampleKey(draw % len(dataset), draw)]
        print(hashlib.sha256(b''.join(sample[k].numpy().tobytes() for k in ('lq', 'gt', 'flare', 'mask'))).hexdigest(),
              repr(sample['gamma']))
''')


def test_a_sample_is_the_same_bytes_in_another_process(tree):
    dataset = _dataset(tree, mask_type='flare')
    here = []
    for draw in (0, 1, 17):
        sample = dataset[SampleKey(draw % len(dataset), draw)]
        digest = hashlib.sha256(b''.join(sample[k].numpy().tobytes() for k in ('lq', 'gt', 'flare', 'mask')))
        here.append(f'{digest.hexdigest()} {sample["gamma"]!r}')
    args = [tree['image_path'], repr(tree['scattering_dict']), repr(tree['reflective_dict']), repr(tree['light_dict'])]
    there = subprocess.run([sys.executable, '-c', DIGEST, *args], cwd=REPO, env=subprocess_env(), check=True,
                           capture_output=True, text=True).stdout.split('\n')[:3]
    assert there == here and len(set(here)) == 3
    assert not torch.equal(dataset[SampleKey(0, 0)]['lq'], dataset[SampleKey(0, 6)]['lq'])  # same image, new draw


def test_samples_shapes_masks_and_both_loaders(tree):
    for cls in (Flare7kpp_Pair_Loader, Flare_Pair_Loader):
        for mask_type in ('luminance', 'color', 'flare') + (('light',) if cls is Flare7kpp_Pair_Loader else ()):
            sample = _dataset(tree, cls, mask_type=mask_type)[SampleKey(2, 3)]  # background 2 is 80x48: padded
            assert {k: tuple(sample[k].shape) for k in ('lq', 'gt', 'flare', 'mask')} == dict.fromkeys(
                ('lq', 'gt', 'flare', 'mask'), (3, 40, 40))
            assert set(sample['mask'].unique().tolist()) <= {0.0, 1.0} and 1.8 <= sample['gamma'] <= 2.2
    # img_size 100 > every background; 48 px rows need more than one reflection (torchvision's pad fails there)
    padded = _dataset(tree, transform_base={'img_size': 100})[SampleKey(2, 0)]
    assert padded['gt'].shape == (3, 100, 100) and padded['gt'].std() > 0.05
    plain = _dataset(tree, mask_type=None)[SampleKey(0, 0)]
    assert 'mask' not in plain and plain['lq_path'] == plain['gt_path'] and plain['lq'].dtype == torch.float32


def test_google_layout_own_flares_without_light_and_weighted_sources(tmp_path, tree):
    google = tmp_path / 'lens-flare'
    for sub, count in (('captured/set1', 2), ('simulated', 3)):
        for index in range(count):
            write_image(google / sub / f'{index}.png', np.full((30, 50, 3), 0.2 * (index + 1), np.float32))
    opt = dict(scattering_dict={'captured': str(google / 'captured'), 'simulated': str(google / 'simulated'),
                                'ours': tree['scattering_dict']['Flare7k_scattering']},
               light_dict={'captured': None, 'simulated': None, 'ours': tree['light_dict']['Flare7k_light']},
               reflective_dict=None, data_ratio=[0, 1, 0])
    dataset = _dataset(tree, **opt)
    assert [len(source.flares) for source in dataset.sources] == [2, 3, 4 - 1]
    assert [source.lights is None for source in dataset.sources] == [True, True, False]
    paths = {dataset[SampleKey(i % 6, i)]['flare_path'] for i in range(12)}
    assert paths and all('simulated' in path for path in paths)  # weight 0 never drawn


def _layer_options(tmp_path, tree, name='layers', **dataset):
    data = flare_data(tmp_path / 'pairs', 1, 1)
    opt = hinet_options(data, name, total_iter=2)
    opt['datasets']['train'] = flare7kpp_dataset_options(tree, img_size=32, **dataset)
    return opt


def _copy_tree(tree, root):
    """A copy of the tree under ``root`` to break; its option values."""
    shutil.copytree(tree['root'], root)
    return {key: ({k: v and v.replace(tree['root'], str(root)) for k, v in value.items()} if isinstance(value, dict)
                  else value.replace(tree['root'], str(root))) for key, value in tree.items()}


def _break(kind, tree, root):
    """(dataset overrides, the text the one line must hold) for a bad setup made in ``root``."""
    if kind == 'missing folder':
        return {'scattering_dict': {'Flare7k_scattering': str(root / 'nope'), 'Real_scattering1': 'x'}}, 'nope'
    if kind == 'empty folder':
        os.makedirs(root / 'empty')
        return {'light_dict': {**tree['light_dict'], 'Real_light1': str(root / 'empty')}}, \
            'light_dict.Real_light1: ' + str(root / 'empty') + ' has no images'
    if kind == 'counts differ':
        moved = _copy_tree(tree, root / 'copy')
        os.remove(os.path.join(moved['light_dict']['Real_light1'], '00001.png'))
        return {key: moved[key] for key in ('scattering_dict', 'light_dict')}, \
            'light_dict.Real_light1: 2 light sources in'
    if kind == 'ratio length':
        return {'data_ratio': [1.0]}, 'data_ratio: 1 weights for 2 sources'
    if kind == 'ratio negative':
        return {'data_ratio': [1.5, -0.5]}, 'data_ratio: [1.5, -0.5] must be weights >= 0'
    if kind == 'unreadable image':
        moved = _copy_tree(tree, root / 'copy')
        with open(os.path.join(moved['scattering_dict']['Real_scattering1'], '00002.png'), 'w') as handle:
            handle.write('not a png')
        return {key: moved[key] for key in ('scattering_dict', 'light_dict')}, \
            'scattering_dict.Real_scattering1: ' + moved['scattering_dict']['Real_scattering1']
    if kind == 'no backgrounds':
        os.makedirs(root / 'bg')
        (root / 'bg' / 'notes.txt').write_text('x')
        return {'image_path': str(root / 'bg')}, 'image_path: ' + str(root / 'bg') + ' has no images'
    if kind == 'light size differs':
        moved = _copy_tree(tree, root / 'copy')
        write_image(os.path.join(moved['light_dict']['Flare7k_light'], '00000.png'), np.zeros((8, 8, 3), np.uint8))
        return {key: moved[key] for key in ('scattering_dict', 'light_dict')}, 'is 8x8 but its flare'
    if kind == 'mask type':
        return {'mask_type': 'glare'}, "mask_type: 'glare' is not one of"
    if kind == 'light mask, no lights':
        return {'mask_type': 'light', 'light_dict': {**tree['light_dict'], 'Real_light1': None}}, \
            'mask_type: light needs light-source images, and scattering_dict.Real_scattering1 has none'
    if kind == 'a light missing, another doubled':  # same count, every pair after the gap shifted
        moved = _copy_tree(tree, root / 'copy')
        lights = moved['light_dict']['Real_light1']
        os.remove(os.path.join(lights, '00001.png'))
        shutil.copy(os.path.join(lights, '00002.png'), os.path.join(lights, '00003.png'))
        return {key: moved[key] for key in ('scattering_dict', 'light_dict')}, \
            (f'light_dict.Real_light1: light source {lights}/00002.png pairs with flare '
             f'{moved["scattering_dict"]["Real_scattering1"]}/00001.png (scattering_dict.Real_scattering1): they pair '
             'by sorted position, and 2 of 3 names disagree while the others agree')
    if kind == 'names differ in case only where they sort apart':
        moved = _copy_tree(tree, root / 'copy')
        flares, lights = moved['scattering_dict']['Real_scattering1'], moved['light_dict']['Real_light1']
        for folder, names in ((flares, ('a', 'B', 'c')), (lights, ('A', 'b', 'c'))):
            for index, name in enumerate(names):
                os.rename(os.path.join(folder, f'{index:05d}.png'), os.path.join(folder, f'{name}.png'))
        return {key: moved[key] for key in ('scattering_dict', 'light_dict')}, \
            f'light source {lights}/A.png pairs with flare {flares}/B.png'
    if kind == 'the parent of the flare and light folders':
        parent = os.path.dirname(tree['scattering_dict']['Flare7k_scattering'])
        return {'scattering_dict': {**tree['scattering_dict'], 'Flare7k_scattering': parent},
                'light_dict': {**tree['light_dict'], 'Flare7k_light': None}}, \
            (f'scattering_dict.Flare7k_scattering: {parent} has no images of its own, so all its sub-folders would '
             'be read as layers, Light_Source among them (light sources, not flares); point it at the flare folder')
    if kind == 'images beside the layer folders':  # render_flare_layers.py's <family>/ with its contact sheet
        moved = _copy_tree(tree, root / 'copy')
        family = os.path.dirname(moved['scattering_dict']['Real_scattering1'])
        write_image(os.path.join(family, 'contact_sheet.png'), np.zeros((8, 8, 3), np.uint8))
        return {'scattering_dict': {**moved['scattering_dict'], 'Real_scattering1': family},
                'light_dict': {**moved['light_dict'], 'Real_light1': None}}, \
            (f'scattering_dict.Real_scattering1: {family} holds images and sub-folders of images (Compound_Flare, '
             'Light_Source); only its own images would be read')
    if kind == 'light_dict in the other order':
        return {'light_dict': dict(reversed(list(tree['light_dict'].items())))}, \
            ('light_dict: pairs with scattering_dict by position, and its names say another order: Real_light1 is '
             'beside scattering_dict.Flare7k_scattering; list it as Flare7k_light, Real_light1')
    if kind == 'reflective_dict in the other order':
        return {'reflective_dict': {'Real_reflective1': None, **tree['reflective_dict']}}, \
            'reflective_dict: pairs with scattering_dict by position, and its names say another order'
    if kind == 'the flare folder as its light folder':
        flares = tree['scattering_dict']['Flare7k_scattering']
        return {'light_dict': {**tree['light_dict'], 'Flare7k_light': flares + '/'}}, \
            (f'light_dict.Flare7k_light: {flares}/ is also datasets.train.scattering_dict.Flare7k_scattering; a '
             'folder serves one role')
    return {'transform_flare': {'scale_min': 2, 'scale_max': 1, 'translate': 300, 'shear': 20}}, 'scale_min 2 >'


BAD_SETUPS = ['missing folder', 'empty folder', 'counts differ', 'ratio length', 'ratio negative', 'unreadable image',
              'no backgrounds', 'light size differs', 'mask type', 'light mask, no lights', 'scale range',
              'a light missing, another doubled', 'names differ in case only where they sort apart',
              'the parent of the flare and light folders', 'images beside the layer folders',
              'light_dict in the other order', 'reflective_dict in the other order',
              'the flare folder as its light folder']


@pytest.mark.parametrize('kind', BAD_SETUPS)
def test_bad_setups_fail_at_start_up_in_one_line_naming_key_and_folder(tmp_path, tree, kind):
    overrides, expected = _break(kind, tree, tmp_path)
    path = write_options(tmp_path / 'bad.yml', _layer_options(tmp_path, tree, **overrides))
    with pytest.raises(FlareSRError) as error:
        check_option_file(path)
    message = str(error.value)
    assert '\n' not in message and 'datasets.train.' in message and expected in message, message


@pytest.mark.parametrize('reflective', [None, 'None', {}, {'Flare7k_reflective': None, 'Real_reflective1': None}])
def test_reflective_dict_none_or_empty_is_accepted_flare7k_33(tmp_path, tree, reflective):
    """``~``, the YAML string ``None`` (Flare7K#33 wrote it), ``{}`` and all-``~`` entries: no reflective flares."""
    opt = _layer_options(tmp_path, tree, reflective_dict=reflective)
    check_option_file(write_options(tmp_path / 'ok.yml', opt))
    dataset = Flare7kpp_Pair_Loader(dict(opt['datasets']['train'], phase='train'))
    assert all(not source.reflectives for source in dataset.sources)


def test_flare7k_loader_refuses_the_plus_plus_keys_and_pools_reflective_flares(tree):
    problems = Flare_Pair_Loader.check_options(flare7kpp_dataset_options(tree, type='Flare_Pair_Loader'), 'd')
    assert [line.split(':')[0] for line in problems] == ['d.light_dict', 'd.data_ratio']
    dataset = _dataset(tree, Flare_Pair_Loader)
    assert len(dataset.sources) == 1 and len(dataset.sources[0].flares) == 6
    assert len(dataset.sources[0].reflectives) == 2


@pytest.mark.slow
def test_bad_folder_fails_before_any_experiment_folder_exists(tmp_path, tree, experiment):
    name = experiment('test_layers_bad')
    opt = _layer_options(tmp_path, tree, name=name, image_path=str(tmp_path / 'Flickr24K'))
    result = run_train(write_options(tmp_path / 'bad.yml', opt), tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert result.returncode == 2 and len(lines) == 1 and 'datasets.train.image_path' in lines[0], result.stderr
    assert not os.path.exists(experiment_dirs(name)[0])


@pytest.mark.slow
@pytest.mark.parametrize('model', ['HINetModel', 'Pix2PixModel'])
def test_models_train_two_iterations_on_layers_through_train_py(tmp_path, tree, experiment, model):
    name = experiment(f'test_layers_{model}')
    data = flare_data(tmp_path / 'pairs', 1, 1)
    make = hinet_options if model == 'HINetModel' else pix2pix_options
    opt = make(data, name, total_iter=2)
    opt['datasets']['train'] = flare7kpp_dataset_options(tree, img_size=32 if model == 'HINetModel' else 64,
                                                         mask_type='luminance')
    opt['val']['val_freq'] = 2
    result = run_train(write_options(tmp_path / 'train.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'iter:       2' in result.stdout + result.stderr and 'warning' not in result.stderr
    assert os.path.isfile(os.path.join(experiment_dirs(name)[0], 'models', 'net_g_latest.pth'))


def test_sub_folders_beside_images_are_named_in_a_warning_not_skipped_silently(tmp_path, tree):
    """A folder with images in it is read alone (Flare7K's globs), so images in its sub-folders are not used: a
    start-up warning names the key and the sub-folders; the folders of the tree get none."""
    import io
    moved = _copy_tree(tree, tmp_path / 'copy')
    extra = os.path.join(moved['image_path'], 'more photos')
    write_image(os.path.join(extra, 'x.png'), np.zeros((40, 40, 3), np.uint8))
    os.makedirs(os.path.join(moved['image_path'], 'empty'))
    opt = _layer_options(tmp_path, tree, **{key: moved[key] for key in ('image_path', 'scattering_dict', 'light_dict')})
    stream = io.StringIO()
    check_option_file(write_options(tmp_path / 'sub.yml', opt), stream=stream)
    lines = [line for line in stream.getvalue().splitlines() if 'sub-folder' in line]
    assert lines == [f'warning: {tmp_path / "sub.yml"}: datasets.train.image_path: {moved["image_path"]} holds '
                     'images, so the images in its 1 sub-folder (more photos) are not read; move them up beside the '
                     'others to use them']
    stream = io.StringIO()
    check_option_file(write_options(tmp_path / 'ok.yml', _layer_options(tmp_path, tree)), stream=stream)
    assert 'sub-folder' not in stream.getvalue()


def test_layers_pair_by_name_read_upright_and_paths_may_start_at_home(tmp_path, monkeypatch):
    """Names that agree by number pair (``flare_0001`` / ``light_0001``); a flare JPEG turned by its EXIF tag is read
    as viewers show it, so it lines up with its light saved upright; ``~`` in every folder is the home folder."""
    from PIL import Image
    monkeypatch.setenv('HOME', str(tmp_path))
    home = tmp_path / 'layers'
    write_image(str(home / 'bg' / 'b.png'), np.full((64, 96, 3), 40, np.uint8))
    light = np.zeros((96, 64, 3), np.uint8)  # upright: 64 wide, 96 high, the light near the top left
    light[10:14, 20:24] = 255
    write_image(str(home / 'lights' / 'light_0001.png'), light)
    os.makedirs(home / 'flares')
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape; shown turned 90 degrees clockwise
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(light, 1)))
    stored.save(home / 'flares' / 'flare_0001.jpg', quality=100, exif=exif)
    opt = flare7kpp_dataset_options({'image_path': '~/layers/bg', 'scattering_dict': {'own': '~/layers/flares'},
                                     'reflective_dict': {}, 'light_dict': {'own': '~/layers/lights'}},
                                    img_size=32, data_ratio=None, phase='train', seed=0,
                                    transform_flare={'scale_min': 1, 'scale_max': 1, 'translate': 0, 'shear': 0})
    assert Flare7kpp_Pair_Loader.check_options(opt, 'datasets.train') == []
    dataset = Flare7kpp_Pair_Loader(opt)
    assert dataset.sources[0].flares == [str(home / 'flares' / 'flare_0001.jpg')]
    from flare_sr.utils.img_util import read_image_upright
    upright = read_image_upright(dataset.sources[0].flares[0])
    assert upright.shape == (96, 64, 3) and np.abs(upright.astype(int) - light).max() <= 8


def test_lights_named_in_another_scheme_pair_by_position_with_a_warning(tmp_path, tree):
    """No light's name agreeing with its flare's is another naming scheme, not a shift: paired by sorted position as
    Flare7K++ pairs them, with one start-up warning (some agreeing and some not is refused: BAD_SETUPS)."""
    import io
    moved = _copy_tree(tree, tmp_path / 'copy')
    lights = moved['light_dict']['Real_light1']
    for index, name in enumerate(('lamp_a', 'lamp_b', 'lamp_c')):
        os.rename(os.path.join(lights, f'{index:05d}.png'), os.path.join(lights, f'{name}.png'))
    opt = _layer_options(tmp_path, tree, **{key: moved[key] for key in ('scattering_dict', 'light_dict')})
    stream = io.StringIO()
    check_option_file(write_options(tmp_path / 'scheme.yml', opt), stream=stream)
    flares = moved['scattering_dict']['Real_scattering1']
    assert [line for line in stream.getvalue().splitlines() if 'agrees' in line] == [
        f'warning: {tmp_path / "scheme.yml"}: datasets.train.light_dict: no light source of '
        f'scattering_dict.Real_scattering1 has a name that agrees with its flare\'s (e.g. {flares}/00000.png <-> '
        f'{lights}/lamp_a.png); they are paired by sorted position, as Flare7K++ pairs them: check that both folders '
        'list them in one order']
    dataset = Flare7kpp_Pair_Loader(opt['datasets']['train'])
    assert [os.path.basename(path) for path in dataset.sources[1].lights] == ['lamp_a.png', 'lamp_b.png', 'lamp_c.png']
