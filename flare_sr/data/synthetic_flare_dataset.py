"""Clean images in, freshly flared pairs out: a new procedural flare for every sample drawn.

Training on synthetic flare (Wu et al. 2021, Flare7K) needs only clean photographs; each epoch sees
new flares, so the model cannot memorise them. All randomness (crop, flips, rotation, flare) comes
from ``sample_rng(opt, key, len)``, so a sample is a pure function of its sampler key and a resumed
run sees the same samples as an uninterrupted one.

Options (BasicSR style)::

    type: SyntheticFlareDataset
    dataroot_gt: datasets/clean          # folder of images, or an LMDB folder with io_backend: lmdb
    io_backend: {type: disk}             # or {type: lmdb}: keys from <dataroot_gt>/meta_info.txt
    gt_size: 256                         # random crop (omit for whole images)
    use_hflip: true
    use_rot: true
    seed: 0
    flare: {ghost_count: [2, 4]}         # optional overrides of FlareConfig ranges

Outside phase ``train`` images are whole (no crop, flip or rotation) and the flare of image ``i`` is
fixed by ``(seed, i)``, so validation scores stay comparable.

The held-out families (``flare_sr.data.heldout``) are deliberately not reachable from here: they are for
test sets only (flare_sr/tests/test_synth_heldout.py checks it on sampled data).
"""
import os

import numpy as np
import torch
from basicsr.data.data_util import paths_from_lmdb
from basicsr.utils import FileClient, imfrombytes
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from flare_sr.data.synthesis import FlareConfig, synthesize_flare
from flare_sr.data.image_io import list_images, read_image
from flare_sr.data.sampling import sample_rng
from flare_sr.errors import FlareSRError


def random_crop(img, size, rng, path):
    """A ``size`` x ``size`` window at a random place; an image too small for it is a user error."""
    height, width = img.shape[:2]
    if height < size or width < size:
        raise FlareSRError(f'{path}: image is {height}x{width}, smaller than gt_size {size}')
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return img[top:top + size, left:left + size]


def random_flip_rotate(img, rng, hflip, rotate):
    """Horizontal flip, and with ``rotate`` a vertical flip and a transpose: the 8 symmetries of a square."""
    if hflip and rng.random() < 0.5:
        img = img[:, ::-1]
    if rotate:
        if rng.random() < 0.5:
            img = img[::-1]
        if rng.random() < 0.5:
            img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(img)


def to_chw_tensor(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()


@DATASET_REGISTRY.register()
class SyntheticFlareDataset(data.Dataset):
    """Clean images from a folder or LMDB; each sample gets a new random crop, flip/rotation and flare."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        root = opt.get('dataroot_gt')
        if not root:
            raise FlareSRError('option dataroot_gt: SyntheticFlareDataset needs a folder (or LMDB) of clean images')
        self.root = os.fspath(root)
        self.io_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.gt_size = opt.get('gt_size')
        self.flare_config = FlareConfig.from_options(opt.get('flare'), option_name='flare')
        self.file_client = None  # opened lazily: LMDB handles must not cross worker forks
        if self.io_opt['type'] == 'lmdb':
            if not os.path.isfile(os.path.join(self.root, 'meta_info.txt')):
                raise FlareSRError(f'{self.root}: not an LMDB made by basicsr.utils.lmdb_util (no meta_info.txt)')
            if not self.root.endswith('.lmdb'):
                raise FlareSRError(f'option dataroot_gt {self.root}: an LMDB folder name must end with .lmdb')
            self.paths = paths_from_lmdb(self.root)
            if not self.paths:
                raise FlareSRError(f'{self.root}/meta_info.txt: lists no images')
        elif self.io_opt['type'] == 'disk':
            self.paths = list_images(self.root)
        else:
            raise FlareSRError(f'option io_backend.type {self.io_opt["type"]!r}: expected disk or lmdb')

    def __len__(self):
        return len(self.paths)

    def _read_clean(self, path):
        if self.io_opt['type'] == 'disk':
            return read_image(path)
        if self.file_client is None:
            backend = {key: value for key, value in self.io_opt.items() if key != 'type'}
            self.file_client = FileClient('lmdb', db_paths=[self.root], client_keys=['gt'], **backend)
        payload = self.file_client.get(path, 'gt')
        if payload is None:
            raise FlareSRError(f'{self.root}: key {path!r} is listed in meta_info.txt but missing from the LMDB')
        return np.ascontiguousarray(imfrombytes(payload, float32=True)[:, :, ::-1])

    def __getitem__(self, key):
        index = key % len(self)
        path = self.paths[index]
        clean = self._read_clean(path)
        if self.opt.get('phase', 'train') == 'train':
            rng = sample_rng(self.opt, key, len(self))
            if self.gt_size:
                clean = random_crop(clean, int(self.gt_size), rng, path)
            clean = random_flip_rotate(clean, rng, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        else:  # validation compares like with like: whole image i, the same flare every time
            rng = np.random.default_rng([int(self.opt.get('seed', 0)), index])
        flared, info = synthesize_flare(clean, rng, self.flare_config)
        source = path if self.io_opt['type'] == 'disk' else f'{self.root}/{path}'
        return {'lq': to_chw_tensor(flared), 'gt': to_chw_tensor(info['label']), 'lq_path': source, 'gt_path': source}
