"""Clean images in, freshly flared pairs out: a new procedural flare for every sample drawn.

Training on synthetic flare (Wu et al. 2021, Flare7K) needs only clean photographs; each epoch sees
new flares, so the model cannot memorise them. All randomness (crop, flips, rotation, flare) comes
from ``sample_rng(opt, key, len)``, so a sample is a pure function of its ``SampleKey`` and a resumed
run sees the same samples as an uninterrupted one.

Options (BasicSR style)::

    type: SyntheticFlareDataset
    dataroot_gt: datasets/clean          # folder of images, or an LMDB folder with io_backend: lmdb
    io_backend: {type: disk}             # or {type: lmdb}: keys from <dataroot_gt>/meta_info.txt
    meta_info_file: ~                    # optional, BasicSR's: only the images it lists (one file name or LMDB
                                         # key per line, optionally followed by `` (h,w,c)``)
    gt_size: 256                         # random crop (omit for whole images)
    frame_size: ~                        # [h, w] or one side: flare a random crop of this size, then take the
                                         # gt_size crop from it (~: flare the gt_size crop itself)
    downscale_to: ~                      # short side in px: the flared frame, whole, area-downscaled to it (the
                                         # glow stage's pairs; no gt_size then)
    pool_size: ~                         # draw this many flared samples once, then serve them with fresh flips
    use_hflip: true
    use_rot: true
    seed: 0
    flare: {ghost_count: [2, 4]}         # optional overrides of FlareConfig ranges

``frame_size`` gives the training crop the flare of a whole frame, as a crop of a real flared photo
has: mostly part of a broad glow or haze, a bit of a streak, a ghost, often not the light itself. In
order, from the sample's generator: a random ``frame_size`` window of the clean image (the image's
side where it is smaller; a ``[h, w]`` frame is turned to the image's orientation, so a portrait photo
gets a portrait frame; no padding, which would add a black border to the scene), the flare synthesized on
that window, the same ``gt_size`` window of input and label, then the flips. An image smaller than
``gt_size`` is the same error as without it. Left out (the default), a sample is the flare of its own
crop (crop, flips, flare), bit for bit the samples of runs made before the option existed.
``flare.frame_scale`` still scales the flare relative to the frame it is drawn on. Cost: the flare is
drawn on the whole frame, so a sample costs what the frame's pixels cost: on a 192x256 image with gt_size
64, 4.4 ms a sample without it and 22 ms with ``frame_size: [192, 256]`` (default FlareConfig; 2-core
Intel Xeon, load ~1.6; ``docs/synthesis.md``).

``downscale_to`` makes whole-frame pairs for a net that sees the whole frame small (CascadeModel's glow stage,
``cascade.glow_size``; flare_sr.data.whole_frames): the flare is drawn on the ``frame_size`` window (or the whole
image) at full resolution, then input and label are area-downscaled to a short side of ``downscale_to`` px (and in
training turned to landscape); drawing the flare small instead loses its fine structure (0.5 dB on flare from
elsewhere in docs/evaluation.md, round 17). It excludes ``gt_size``.

``pool_size`` draws that many flared samples once, when the dataset is built (a progress bar): sample ``k`` is photo
``k mod n``, its window and flare fixed by ``(seed, k)``. Training then serves them, ``pool_size`` per epoch, each
draw with fresh flips (and a fresh ``gt_size`` crop where one is set), keyed as every sample is, so a resumed run
sees the same draws. It is for flare that costs more than a training step: a whole 192x256 frame costs about what
a step of a wf-16 HINet on 48x64 frames does. Memory: two float32 images per sample (3,000 frames of 48x64: 221 MB).

Without ``gt_size`` a training sample is the whole frame (with ``downscale_to``) or the whole image, and ``use_rot``
transposes it only where it is square. A batch above 1 then needs every photo to give one shape: photos of another
shape, or smaller than ``frame_size``, are one FlareSRError naming two of them, read from the headers before the
pool is drawn, not a stacking error in the first batch.

Outside phase ``train`` images are whole (no crop, flip or rotation) and the flare of image ``i`` is
fixed by ``(seed, i)``, so validation scores stay comparable; ``downscale_to`` applies to them too.

The held-out families (``flare_sr.data.heldout``) are deliberately not reachable from here: they are for
test sets only (tests/test_data/test_heldout.py checks it on sampled data).
"""
import os
from functools import partial

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data
from tqdm import tqdm

from flare_sr.data.lmdb_pack import LmdbImages, key_of_name, read_meta_info, read_meta_info_names
from flare_sr.data.sampling import item_index, sample_rng
from flare_sr.data.synthesis import FlareConfig, synthesize_flare
from flare_sr.data.synthesis.options import settings_problems
from flare_sr.data.transforms import augment, img2tensor, paired_random_crop
from flare_sr.data.whole_frames import (dataset_phase, downscale_frames, downscale_problems, sample_problem,
                                        store_whole, whole_sample_shape)
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import list_images, peek_size, read_image_native, to_float32
from flare_sr.utils.yaml_numbers import positive_whole

POOL_STREAM = 7  # the pool's generators are [seed, POOL_STREAM, k]: apart from the keyed samples' [seed, n]
WHOLE_FRAME_KEYS = ('downscale_to', 'pool_size')


@DATASET_REGISTRY.register()
class SyntheticFlareDataset(data.Dataset):
    """Clean images from a folder or LMDB; each sample gets a new random crop, flip/rotation and flare."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.paths = clean_images(opt)
        self.root = os.fspath(opt['dataroot_gt'])
        self.io_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.gt_size = opt.get('gt_size')
        problems = frame_size_problems(opt, 'option ') + whole_frame_problems(opt, 'option ')
        if problems:
            raise FlareSRError('; '.join(problems))
        self.frame_size = _pair(opt.get('frame_size'))
        self.downscale_to = positive_whole(opt.get('downscale_to'))
        self.flare_config = FlareConfig.from_options(opt.get('flare'), option_name='flare')
        if self.io_opt['type'] == 'lmdb':
            self.lmdb = LmdbImages(self.root, self.io_opt.get('readahead', False))
        phase = opt.get('phase', 'train')
        try:
            self.sample_shape(opt, phase, self.paths)
        except FlareSRError as error:
            raise FlareSRError(sample_problem(error)) from None
        self.pool = self._draw_pool(positive_whole(opt.get('pool_size'))) if phase == 'train' else None

    def _draw_pool(self, size):
        """``pool_size`` flared samples, drawn once (module docstring): [(label, flared)], or None without a pool."""
        if not size:
            return None
        pool = []
        for k in tqdm(range(size), desc=f'flare pool {os.path.basename(self.root)}', unit='sample'):
            path = self.paths[k % len(self.paths)]
            rng = np.random.default_rng([int(self.opt.get('seed', 0)), POOL_STREAM, k])
            clean = self._read_clean(path)
            if self.downscale_to or self.frame_size is not None:
                clean = self._window(clean, rng, path)
            flared, label = self._flare(clean, rng)
            pool.append(self._downscaled(label, flared))
        return pool

    @staticmethod
    def sample_shape(opt, phase='train', paths=None):
        """(height, width) of every sample in ``phase``: ``gt_size``'s square in training; otherwise the frame (the
        ``frame_size`` window or the whole image), downscaled and turned to landscape with ``downscale_to``, from the
        image headers (an LMDB's meta_info.txt) of ``paths`` (default: ``clean_images(opt)``); None where samples
        may differ (validation of whole images). FlareSRError, its text starting with the key at fault, for a frame
        smaller than ``downscale_to`` or whole samples of other shapes in a training batch
        (flare_sr.data.whole_frames.whole_sample_shape), before anything is drawn."""
        short = positive_whole(opt.get('downscale_to'))
        if phase == 'train' and opt.get('gt_size'):
            return int(opt['gt_size']), int(opt['gt_size'])
        if phase != 'train' and not short:
            return None
        paths = clean_images(opt) if paths is None else paths
        lmdb = (opt.get('io_backend') or {}).get('type') == 'lmdb'
        recorded = dict(read_meta_info(os.fspath(opt['dataroot_gt']))) if lmdb else {}
        sizes = ((path, recorded[path][:2] if lmdb else peek_size(path)) for path in paths)
        frame = _pair(opt.get('frame_size'))
        batch = (positive_whole(opt.get('batch_size_per_gpu')) or 1) if phase == 'train' else 1
        advice = f'use photos of one shape{" and no smaller than frame_size" if frame else ""}, gt_size crops'
        return whole_sample_shape(sizes, short, batch, advice, partial(frame_window, frame))

    @staticmethod
    def check_options(opt, key_path):
        """Problems with ``frame_size``, ``downscale_to``, ``pool_size`` and the ``flare`` overrides (FlareConfig's
        fields), as option-checker lines; [] when none. A whole float of ``downscale_to`` or ``pool_size`` is stored
        as an int."""
        flare = opt.get('flare')
        problems = frame_size_problems(opt, f'{key_path}.') + whole_frame_problems(opt, f'{key_path}.')
        store_whole(opt, WHOLE_FRAME_KEYS)
        if not problems and isinstance(opt.get('dataroot_gt'), str) and os.path.exists(opt['dataroot_gt']):
            try:
                paths = clean_images(opt)
            except FlareSRError:
                paths = None  # the dataset says it when it is built
            if paths is not None:
                try:  # the image headers, where samples are whole
                    SyntheticFlareDataset.sample_shape(opt, dataset_phase(key_path), paths)
                except FlareSRError as error:
                    problems.append(sample_problem(error, key_path))
        return problems + ([] if flare is None else settings_problems(FlareConfig, flare, f'{key_path}.flare')[1])

    def __len__(self):
        return len(self.pool) if self.pool is not None else len(self.paths)

    def _read_clean(self, path):
        """HxWx3 RGB in the file's own dtype: crop before converting to float."""
        return read_image_native(path) if self.io_opt['type'] == 'disk' else self.lmdb.get(path)

    def __getitem__(self, key):
        index = item_index(key, len(self))
        path = self.paths[index % len(self.paths)]
        flips = self.opt.get('use_hflip', False), self.opt.get('use_rot', False)
        if self.pool is not None:
            label, flared = self._pool_draw(self.pool[index], sample_rng(self.opt, key, len(self)), flips, path)
        elif self.opt.get('phase', 'train') != 'train':  # validation: like with like, whole image i, one flare
            flared, label = self._flare(self._read_clean(path),
                                        np.random.default_rng([int(self.opt.get('seed', 0)), index]))
            label, flared = self._downscaled(label, flared)
        elif self.downscale_to:  # the flare of a frame, downscaled whole
            rng = sample_rng(self.opt, key, len(self))
            clean = self._read_clean(path)
            flared, label = self._flare(self._window(clean, rng, path), rng)
            label, flared = augment(list(self._downscaled(label, flared)), *flips, rng, transpose=False)
        elif self.frame_size is None:  # the flare of the crop itself
            clean = self._read_clean(path)
            rng = sample_rng(self.opt, key, len(self))
            if self.gt_size:
                clean = paired_random_crop(clean, [], int(self.gt_size), rng, path)[0]
            flared, label = self._flare(augment(clean, *flips, rng, transpose=clean.shape[0] == clean.shape[1]), rng)
        else:  # the flare of a frame, then the training crop of it
            rng = sample_rng(self.opt, key, len(self))
            clean = self._read_clean(path)
            flared, label = self._flare(self._window(clean, rng, path), rng)
            label, flared = paired_random_crop(label, flared, int(self.gt_size), rng, path)
            label, flared = augment([label, flared], *flips, rng)
        source = path if self.io_opt['type'] == 'disk' else f'{self.root}/{path}'
        return {'lq': img2tensor(flared), 'gt': img2tensor(label), 'lq_path': source, 'gt_path': source}

    def _pool_draw(self, sample, rng, flips, path):
        """(label, flared) of one draw from a pooled sample: a fresh ``gt_size`` crop (where set), then fresh flips."""
        label, flared = sample
        if self.gt_size:
            label, flared = paired_random_crop(label, flared, int(self.gt_size), rng, path)
        return augment([label, flared], *flips, rng, transpose=label.shape[0] == label.shape[1])

    def _window(self, clean, rng, path):
        """A random frame window of ``clean`` (``frame_window``), for the flare of the whole frame."""
        return paired_random_crop(clean, [], frame_window(self.frame_size, *clean.shape[:2]), rng, path)[0]

    def _downscaled(self, label, flared):
        """(label, flared) area-downscaled with ``downscale_to`` (flare_sr.data.whole_frames), turned to landscape in
        training; unchanged when it is not set."""
        if not self.downscale_to:
            return label, flared
        landscape = self.opt.get('phase', 'train') == 'train'
        return tuple(downscale_frames([label, flared], self.downscale_to, landscape))

    def _flare(self, clean, rng):
        """(flared, label), HxWx3 float32 in [0, 1]: ``synthesize_flare`` on a clean image in its file's dtype."""
        flared, info = synthesize_flare(np.ascontiguousarray(to_float32(clean)), rng, self.flare_config)
        return flared, info['label']


def clean_images(opt):
    """The clean images ``opt`` selects: paths (``io_backend`` disk) or LMDB keys, all of ``dataroot_gt`` or those
    ``meta_info_file`` lists, in its order. FlareSRError for an LMDB without meta_info.txt or a name that does not end
    in .lmdb, another backend, or a listed name that is not there."""
    if not opt.get('dataroot_gt'):
        raise FlareSRError('option dataroot_gt: SyntheticFlareDataset needs a folder (or LMDB) of clean images')
    root, backend = os.fspath(opt['dataroot_gt']), (opt.get('io_backend') or {}).get('type', 'disk')
    if backend == 'lmdb':
        if not os.path.isfile(os.path.join(root, 'meta_info.txt')):
            raise FlareSRError(f'{root}: not an LMDB made by basicsr.utils.lmdb_util (no meta_info.txt)')
        if not root.endswith('.lmdb'):
            raise FlareSRError(f'option dataroot_gt {root}: an LMDB folder name must end with .lmdb')
        paths = [key for key, _ in read_meta_info(root)]
    elif backend == 'disk':
        paths = list_images(root)
    else:
        raise FlareSRError(f'option io_backend.type {backend!r}: expected disk or lmdb')
    if not opt.get('meta_info_file'):
        return paths
    available = {(key_of_name(name) if backend == 'lmdb' else os.path.basename(name)): name for name in paths}
    listed = []
    for name in read_meta_info_names(opt['meta_info_file']):
        found = available.get(key_of_name(name) if backend == 'lmdb' else os.path.basename(name))
        if found is None:
            raise FlareSRError(f'{opt["meta_info_file"]}: lists {name}, which is not in {root}')
        listed.append(found)
    return listed


def frame_window(frame_size, height, width):
    """(height, width) of the frame window in a ``height`` x ``width`` image: ``frame_size`` ((h, w) or None) turned
    to the image's orientation, clipped to it (the whole image without ``frame_size``)."""
    if frame_size is None:
        return height, width
    frame_h, frame_w = frame_size
    if (frame_h > frame_w) != (height > width) and frame_h != frame_w and height != width:
        frame_h, frame_w = frame_w, frame_h
    return min(frame_h, height), min(frame_w, width)


def _pair(size):
    """``frame_size`` as (height, width), or None when absent."""
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, int) else tuple(int(side) for side in size)


def frame_size_problems(opt, where):
    """Lines about ``opt['frame_size']`` (``where`` starts each: ``'datasets.train.'``); [] when absent or fine."""
    size = opt.get('frame_size')
    if size is None:
        return []
    sides = list(size) if isinstance(size, (list, tuple)) else [size]
    if len(sides) != (2 if isinstance(size, (list, tuple)) else 1) or not all(
            isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in sides):
        return [f'{where}frame_size: expected a positive integer or [height, width] of positive integers, got {size!r}']
    gt_size = opt.get('gt_size')
    if not gt_size and opt.get('downscale_to') is None:
        return [f'{where}frame_size: needs gt_size (the training crop taken from the flared frame) or downscale_to '
                '(the whole frame, downscaled)']
    if isinstance(gt_size, int) and min(sides) < gt_size:
        return [f'{where}frame_size: {size!r} is smaller than gt_size {gt_size}, the crop taken from the frame']
    return []


def whole_frame_problems(opt, where):
    """Lines about ``downscale_to`` and ``pool_size`` (``where`` starts each); [] when absent or fine."""
    problems = downscale_problems(opt, where)
    if opt.get('pool_size') is not None and positive_whole(opt['pool_size']) is None:
        problems.append(f'{where}pool_size: expected a positive integer (or ~: off), got {opt["pool_size"]!r}')
    short = positive_whole(opt.get('downscale_to'))
    frame = _pair(opt.get('frame_size')) if not frame_size_problems(opt, where) else None
    if frame and short and short > min(frame):
        problems.append(f'{where}downscale_to: {short} is larger than the frame\'s short side '
                        f'{min(frame)} (frame_size {opt["frame_size"]!r}); it downscales the frame')
    return problems
