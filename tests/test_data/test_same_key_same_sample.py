"""Same key, same sample: every dataset and flare family gives the same bytes for the same key, in one process,
in other processes (other thread counts, other memory alignments); a training run killed and resumed on
SyntheticFlareDataset is tests/test_cli/test_train_reliability.py's.

The cause these tests pin down: ``geometry.offsets`` took the radius of every radial flare component from
``cv2.magnitude``, whose Intel IPP path rounds some pixels differently when the output array it allocates is
32-byte aligned than when it is only 16-byte aligned; where numpy's allocator put that array changed from
draw to draw, so one key gave two flares.
"""
import os

import numpy as np
import pytest

from flare_sr.data.heldout import HELDOUT_FAMILIES
from flare_sr.data.synthesis import synthesize_flare
from flare_sr.utils.img_util import read_image
from tests.helpers import (assert_samples_pure, dataset_options, dataset_sampler, make_flare_pairs,
                           repeated_sample_digests, write_clean_photos)

PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png')


@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
    return write_clean_photos(tmp_path_factory.mktemp('clean'), PHOTOS)


def synthetic_options(root, phase='train', **extra):
    return dict(type='SyntheticFlareDataset', name='synth', dataroot_gt=str(root), io_backend={'type': 'disk'},
                gt_size=40, use_hflip=True, use_rot=True, phase=phase, seed=2, flare={'frame_scale': 2.0}, **extra)


def every_sampler(clean, pairs):
    """``draw(key)`` over every sample source, the source named first in the key: ``['synthetic', index, draw]``,
    ``['synthetic_frame', index, draw]`` (the flare of a 48x56 frame), ``['synthetic_val', index]``,
    ``['paired', index, draw]``, ``[family, seed]`` (procedural or held-out)."""
    datasets = {'synthetic': dataset_sampler(synthetic_options(clean)),
                'synthetic_frame': dataset_sampler(synthetic_options(clean, frame_size=[48, 56])),
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
    keys += [['synthetic_frame', index, 2] for index in range(3)]
    keys += [['paired', index, 2] for index in range(3)] + [[family, 5] for family in ('procedural', 'psf')]
    digests = repeated_sample_digests(every_sampler(str(clean_dir), pairs), keys)
    assert len(set(digests)) == len(keys)


@pytest.mark.slow
def test_samples_repeat_across_processes(clean_dir, tmp_path):
    """The same digests in this process and in two fresh ones (one thread and another memory alignment; the
    default ones): the 9 SyntheticFlareDataset samples of issue 20, one with frame_size, validation, pairs and every
    flare family."""
    pairs = make_flare_pairs(str(tmp_path), 3, size=(48, 48))
    keys = [['synthetic', index, draw] for draw in range(1, 4) for index in range(3)] + [['synthetic_val', 2]]
    keys += [['synthetic_frame', 1, 3], ['paired', 1, 7]]
    keys += [[family, 3] for family in ('procedural', *sorted(HELDOUT_FAMILIES))]
    assert_samples_pure('tests.test_data.test_same_key_same_sample:every_sampler', [str(clean_dir), list(pairs)],
                        keys, repeats=2)
