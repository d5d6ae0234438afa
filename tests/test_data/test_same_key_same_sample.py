"""Same key, same sample: every dataset and flare family gives the same bytes for the same key, in one process,
in other processes (other thread counts, other memory alignments) and across a training run killed and resumed.

The cause these tests pin down: ``geometry.offsets`` took the radius of every radial flare component from
``cv2.magnitude``, whose Intel IPP path rounds some pixels differently when the output array it allocates is
32-byte aligned than when it is only 16-byte aligned; where numpy's allocator put that array changed from
draw to draw, so one key gave two flares.
"""
import os
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.synthesis import synthesize_flare
from flare_sr.utils.img_util import read_image, write_image
from tests.helpers import (assert_same_weights, assert_samples_pure, dataset_options, dataset_sampler, experiment_dirs,
                           flare_data, hinet_options, make_flare_pairs, repeated_sample_digests, run_train,
                           subprocess_env, train_command, write_options)

PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png')


@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clean')
    for name in PHOTOS:
        photo = read_image(os.path.join(skimage_data.data_dir, name))
        write_image(folder / name, cv2.resize(photo, (64, 48), interpolation=cv2.INTER_AREA))
    return folder


def synthetic_options(root, phase='train'):
    return dict(type='SyntheticFlareDataset', name='synth', dataroot_gt=str(root), io_backend={'type': 'disk'},
                gt_size=40, use_hflip=True, use_rot=True, phase=phase, seed=2, flare={'frame_scale': 2.0})


def every_sampler(clean, pairs):
    """``draw(key)`` over every sample source, the source named first in the key: ``['synthetic', index, draw]``,
    ``['synthetic_val', index]``, ``['paired', index, draw]``, ``[family, seed]`` (procedural or held-out)."""
    datasets = {'synthetic': dataset_sampler(synthetic_options(clean)),
                'synthetic_val': dataset_sampler(synthetic_options(clean, 'val')),
                'paired': dataset_sampler(dataset_options(*pairs, 'train'))}
    photo = read_image(os.path.join(clean, PHOTOS[0]))
    families = dict(HELDOUT_FAMILIES, procedural=synthesize_flare)

    def draw(key):
        source, *rest = key
        if source in datasets:
            return datasets[source](rest if len(rest) > 1 else rest[0])
        flared, info = families[source](photo, np.random.default_rng(rest[0]))
        return flared, info['label']

    return draw


def test_every_source_gives_the_same_bytes_for_the_same_key(clean_dir, tmp_path):
    """Three rounds in one process, memory moved between them; keys differ from each other."""
    pairs = make_flare_pairs(str(tmp_path), 3, size=(48, 48))
    keys = [['synthetic', index, draw] for draw in range(1, 4) for index in range(3)] + [['synthetic_val', 1]]
    keys += [['paired', index, 2] for index in range(3)] + [[family, 5] for family in ('procedural', 'psf')]
    digests = repeated_sample_digests(every_sampler(str(clean_dir), pairs), keys)
    assert len(set(digests)) == len(keys)


@pytest.mark.slow
def test_samples_repeat_across_processes(clean_dir, tmp_path):
    """The same digests in this process and in two fresh ones (one thread and another memory alignment; the
    default ones): the 9 SyntheticFlareDataset samples of issue 20, validation, pairs and every flare family."""
    pairs = make_flare_pairs(str(tmp_path), 3, size=(48, 48))
    keys = [['synthetic', index, draw] for draw in range(1, 4) for index in range(3)] + [['synthetic_val', 2]]
    keys += [['paired', 1, 7]] + [[family, 3] for family in ('procedural', *sorted(HELDOUT_FAMILIES))]
    assert_samples_pure('tests.test_data.test_same_key_same_sample:every_sampler', [str(clean_dir), list(pairs)],
                        keys, repeats=2)


@pytest.mark.slow
def test_sigkill_and_resume_with_synthetic_flares_equals_uninterrupted_run(tmp_path, clean_dir, experiment):
    """HINet on SyntheticFlareDataset (new crop, flips and flare every sample): 7 clean images, batch 2, epochs
    of 3 iterations. The killed run resumes from its iteration-5 state, inside an epoch, and must end with the
    uninterrupted run's weights bit for bit: every flare it redraws is the one the other run drew."""
    data = flare_data(tmp_path / 'pairs', 7, 1, seed=4)
    total, every = 9, 5
    names = {'whole': experiment('test_synth_whole'), 'killed': experiment('test_synth_killed')}
    paths = {}
    for key, name in names.items():
        opt = hinet_options(data, name, total_iter=total)
        opt['datasets']['train'] = {**dataset_options(*data['train'], 'train'), 'type': 'SyntheticFlareDataset',
                                    'dataroot_gt': data['train'][1], 'seed': 5, 'flare': {'frame_scale': 2.0}}
        del opt['datasets']['train']['dataroot_lq']
        opt['logger']['save_checkpoint_freq'] = every
        paths[key] = write_options(tmp_path / f'{key}.yml', opt)
    whole = subprocess.Popen(train_command(paths['whole']), cwd=tmp_path, env=subprocess_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = subprocess.Popen(train_command(paths['killed']), cwd=tmp_path, env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_dir = os.path.join(experiment_dirs(names['killed'])[0], 'training_states')
    deadline = time.time() + 180
    while not os.path.isfile(os.path.join(state_dir, f'{every}.state')):
        assert killed.poll() is None and time.time() < deadline, 'the run to kill ended before its checkpoint'
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert whole.wait(timeout=180) == 0
    for name in os.listdir(state_dir):  # a kill right after the checkpoint: resume from iteration 5, mid-epoch
        if name.endswith('.state') and name != f'{every}.state':
            os.remove(os.path.join(state_dir, name))

    result = run_train(paths['killed'], tmp_path, '--auto_resume')
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'iter: {every}.' in result.stdout + result.stderr
    models = [os.path.join(experiment_dirs(name)[0], 'models', 'net_g_latest.pth') for name in names.values()]
    assert_same_weights(*models, atol=0)
