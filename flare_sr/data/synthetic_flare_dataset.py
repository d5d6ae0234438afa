"""Clean images in, freshly flared pairs out: a new procedural flare for every sample drawn.

Training on synthetic flare (Wu et al. 2021, Flare7K) needs only clean photographs; each epoch sees
new flares, so the model cannot memorise them. All randomness (crop, flips, rotation, flare) comes
from ``sample_rng(opt, key, len)``, so a sample is a pure function of its ``SampleKey`` and a resumed
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
test sets only (tests/test_data/test_heldout.py checks it on sampled data).
"""
import os

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from flare_sr.data.lmdb_pack import LmdbImages, read_meta_info
from flare_sr.data.sampling import item_index, sample_rng
from flare_sr.data.synthesis import FlareConfig, synthesize_flare
from flare_sr.data.synthesis.options import settings_problems
from flare_sr.data.transforms import augment, img2tensor, paired_random_crop
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import list_images, read_image_native, to_float32


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
        if self.io_opt['type'] == 'lmdb':
            if not os.path.isfile(os.path.join(self.root, 'meta_info.txt')):
                raise FlareSRError(f'{self.root}: not an LMDB made by basicsr.utils.lmdb_util (no meta_info.txt)')
            if not self.root.endswith('.lmdb'):
                raise FlareSRError(f'option dataroot_gt {self.root}: an LMDB folder name must end with .lmdb')
            self.paths = [key for key, _ in read_meta_info(self.root)]
            self.lmdb = LmdbImages(self.root, self.io_opt.get('readahead', False))
        elif self.io_opt['type'] == 'disk':
            self.paths = list_images(self.root)
        else:
            raise FlareSRError(f'option io_backend.type {self.io_opt["type"]!r}: expected disk or lmdb')

    @staticmethod
    def check_options(opt, key_path):
        """Problems with the ``flare`` overrides (FlareConfig's fields), as option-checker lines; [] when none."""
        flare = opt.get('flare')
        return [] if flare is None else settings_problems(FlareConfig, flare, f'{key_path}.flare')[1]

    def __len__(self):
        return len(self.paths)

    def _read_clean(self, path):
        """HxWx3 RGB in the file's own dtype: crop before converting to float."""
        return read_image_native(path) if self.io_opt['type'] == 'disk' else self.lmdb.get(path)

    def __getitem__(self, key):
        index = item_index(key, len(self))
        path = self.paths[index]
        clean = self._read_clean(path)
        if self.opt.get('phase', 'train') == 'train':
            rng = sample_rng(self.opt, key, len(self))
            if self.gt_size:
                clean = paired_random_crop(clean, [], int(self.gt_size), rng, path)[0]
            clean = augment(clean, self.opt.get('use_hflip', False), self.opt.get('use_rot', False), rng)
        else:  # validation compares like with like: whole image i, the same flare every time
            rng = np.random.default_rng([int(self.opt.get('seed', 0)), index])
        flared, info = synthesize_flare(np.ascontiguousarray(to_float32(clean)), rng, self.flare_config)
        source = path if self.io_opt['type'] == 'disk' else f'{self.root}/{path}'
        return {'lq': img2tensor(flared), 'gt': img2tensor(info['label']), 'lq_path': source, 'gt_path': source}
