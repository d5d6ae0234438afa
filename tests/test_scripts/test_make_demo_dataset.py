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
