"""make_demo_dataset --clean-share: flare-free (input = label) training pairs are added, deterministic,
and neither the flared training pairs nor the held-out test set change."""
import hashlib
import os

import pytest

from flare_sr.errors import FlareSRError
from tests.helpers import load_script

ARGS = ['--scale', '0.25', '--per-photo-train', '2', '--per-photo-test', '1', '--seed', '3']


def _digests(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), 'rb').read()).hexdigest()
            for name in sorted(os.listdir(folder))}


def test_clean_share_adds_identity_pairs_and_keeps_the_rest(tmp_path, capsys):
    demo = load_script('make_demo_dataset')
    demo.main(['--out', str(tmp_path / 'none'), '--clean-share', '0', *ARGS])
    demo.main(['--out', str(tmp_path / 'share'), '--clean-share', '0.25', *ARGS])
    n_flared = 2 * len(demo.TRAIN_PHOTOS)
    n_clean = round(n_flared * 0.25 / 0.75)
    assert f'{n_flared} train pairs' in capsys.readouterr().out.splitlines()[-1]
    root = tmp_path / 'share'
    inputs = _digests(root / 'train_input_img')
    labels = _digests(root / 'train_label_img')
    assert len(inputs) == n_flared + n_clean
    identical = [name for name in inputs if inputs[name] == labels[name.replace('input', 'label')]]
    assert len(identical) == n_clean, 'exactly the clean pairs have input = label'
    flared = sorted(digest for name, digest in inputs.items() if name not in identical)
    assert flared == sorted(_digests(tmp_path / 'none' / 'train_input_img').values())  # the same flared pairs
    for folder in ('test_input_img', 'test_label_img'):
        assert _digests(root / folder) == _digests(tmp_path / 'none' / folder)
    assert len(open(root / 'train.csv').read().splitlines()) == 1 + n_flared + n_clean
    demo.main(['--out', str(tmp_path / 'again'), '--clean-share', '0.25', *ARGS])
    assert _digests(tmp_path / 'again' / 'train_input_img') == inputs  # deterministic


def test_clean_share_out_of_range_is_refused(tmp_path):
    demo = load_script('make_demo_dataset')
    with pytest.raises(FlareSRError, match='--clean-share 1.0'):
        demo.plan(0, 2, 1, demo.demo_sizes(0.25), clean_share=1.0)


def test_photo_groups_name_every_training_file_with_its_scene(tmp_path):
    """train_photos.csv (stage III's cross_fit groups): each label and clean crop with its photo, the stereo pair as
    one scene, so that no fold model trains on a view of a photo whose pairs it makes."""
    import csv

    from flare_sr.data.pairing import pair_paths
    from flare_sr.pipeline.cross_fit import cross_fit_settings, fold_training_lists, pair_folds

    demo = load_script('make_demo_dataset')
    root = tmp_path / 'demo'
    demo.main(['--out', str(root), '--clean-share', '0.25', *ARGS])
    rows = list(csv.DictReader(open(root / 'train_photos.csv')))
    listed = sorted(row['name'] for row in rows)
    assert listed == sorted(os.listdir(root / 'train_label_img') + os.listdir(root / 'train_clean_img'))
    groups = {row['name']: row['group'] for row in rows}
    scenes = ['astronaut', 'chelsea', 'motorcycle', 'motorcycle', 'camera', 'grass', 'gravel', 'brick']
    assert [groups[f'clean_{index:02d}_0.png'] for index in range(len(demo.TRAIN_PHOTOS))] == scenes
    scene_of = dict(zip(demo.TRAIN_PHOTOS, scenes))
    trained = [(number, photo) for split, number, photo, *_ in demo.plan(3, 2, 1, demo.demo_sizes(0.25), 0.25)
               if split == 'train']
    assert len(trained) == len(os.listdir(root / 'train_label_img'))
    assert all(groups[f'train_label_{number}.png'] == scene_of[photo] for number, photo in trained)

    settings = cross_fit_settings({'cross_fit': {'folds': 2, 'groups': str(root / 'train_photos.csv')}}, 'demo')
    pairs = pair_paths(root / 'train_input_img', root / 'train_label_img')
    stage1 = {'datasets': {'train': {'type': 'SyntheticFlareDataset', 'dataroot_gt': str(root / 'train_clean_img')}}}
    kind, lists = fold_training_lists(settings, stage1, 'pix2pix.yml', pairs)
    assert kind == 'files'
    folds = pair_folds(settings, pairs)
    for fold, kept in enumerate(lists):
        held_out = {groups[os.path.basename(gt)] for (_, _, gt), f in zip(pairs, folds) if f == fold}
        assert held_out and {groups[name] for name in kept}.isdisjoint(held_out)
        assert {groups[name] for name in kept} | held_out == set(scenes)
