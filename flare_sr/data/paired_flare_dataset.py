"""Paired flare/clean images from folders or from packed LMDBs, with resumable random crops and flips.

Options (BasicSR style):
    dataroot_lq, dataroot_gt: folders of images (Dacon ``train_input_N``/``train_label_N`` or identical
        names) or, with ``io_backend: {type: lmdb}``, the ``lq.lmdb``/``gt.lmdb`` made by scripts/create_lmdb.py.
        In phase ``test`` ``dataroot_gt`` may be left out: samples then carry no ``gt``.
    meta_info_file: optional; its first token per line names the images (disk) or patch keys (lmdb) to use.
    meta_csv + fold: optional split CSV (scripts/split_dataset.py); keeps rows whose fold tags include
        ``fold`` (``val``, ``train``, ``2`` or a list such as ``['0', '1', '3', '4']``). With lmdb, keeps
        the patches of the selected images.
    gt_size, use_hflip, use_rot: paired random crop and flips/rotations, in phase ``train`` only;
        ``val``/``test`` return whole images.
Returns dict(lq, gt, lq_path, gt_path): float32 RGB CHW tensors in [0, 1].

Randomness comes only from ``sample_rng(opt, key, len(self))`` so a resumed run sees the same crops.
Pairing is checked when the dataset is built (and the LMDB key sets, cheaply); pixel sizes are
checked per sample, since decoding hundreds of large photos up front would stall every start.
"""
import os

import cv2
import numpy as np
import torch
from basicsr.utils import FileClient
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from flare_sr.data.image_io import list_images, pair_key, pair_paths, read_image
from flare_sr.data.lmdb_pack import image_key_of_patch, lmdb_image_key, quick_check_lmdb
from flare_sr.data.meta_csv import read_split_csv, resolve_pairs, select_rows
from flare_sr.data.sampling import sample_rng
from flare_sr.errors import FlareSRError


def _read_meta_info_names(meta_info_file):
    if not os.path.isfile(meta_info_file):
        raise FlareSRError(f'{meta_info_file}: meta_info_file not found')
    with open(meta_info_file, encoding='utf-8') as handle:
        names = [line.split()[0] for line in handle if line.strip()]
    if not names:
        raise FlareSRError(f'{meta_info_file}: meta_info_file lists no images')
    return names


def _augment(images, rng, use_hflip, use_rot):
    """The same flip / vertical flip / transpose on every image (the 8 dihedral transforms with use_rot)."""
    hflip = use_hflip and rng.random() < 0.5
    vflip = use_rot and rng.random() < 0.5
    transpose = use_rot and rng.random() < 0.5
    out = []
    for img in images:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if transpose:
            img = img.transpose(1, 0, 2)
        out.append(img)
    return out


_LMDB_CLIENTS = {}


def _shared_lmdb_client(io_backend_opt):
    """One FileClient per process and LMDB pair: py-lmdb refuses a second handle on an environment a process
    already has open (e.g. train and val datasets on the same LMDB). Opened lazily, so handles never cross
    into worker processes."""
    cache_key = (os.getpid(), tuple(io_backend_opt['db_paths']))
    if cache_key not in _LMDB_CLIENTS:
        backend_opt = dict(io_backend_opt)
        _LMDB_CLIENTS[cache_key] = FileClient(backend_opt.pop('type'), **backend_opt)
    return _LMDB_CLIENTS[cache_key]


def _to_tensor(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@DATASET_REGISTRY.register()
class PairedFlareDataset(data.Dataset):
    """Flared input (lq) and clean label (gt) pairs; see the module docstring for options."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.phase = opt.get('phase', 'train')
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.backend = self.io_backend_opt.get('type', 'disk')
        self.lq_root = opt['dataroot_lq']
        self.gt_root = opt.get('dataroot_gt')
        if self.gt_root is None and self.phase != 'test':
            raise FlareSRError(f'dataset {opt.get("name")}: dataroot_gt is required in phase {self.phase}')
        self.gt_size = opt.get('gt_size')
        self.file_client = None
        if self.backend == 'lmdb':
            self.items = self._lmdb_items()
        elif self.backend == 'disk':
            self.items = self._disk_items()
        else:
            raise FlareSRError(f'dataset {opt.get("name")}: io_backend type "{self.backend}" (use disk or lmdb)')

    def _disk_items(self):
        """[(lq_path, gt_path or None)] after pairing and the optional CSV / meta_info selection."""
        if self.gt_root is None:
            return [(path, None) for path in list_images(self.lq_root)]
        if self.opt.get('meta_csv'):
            csv_path = self.opt['meta_csv']
            rows = select_rows(read_split_csv(csv_path), self.opt.get('fold'), csv_path)
            pairs = resolve_pairs(rows, self.lq_root, self.gt_root, csv_path)
        else:
            pairs = pair_paths(self.lq_root, self.gt_root)
        if self.opt.get('meta_info_file'):
            by_key = {key: (lq, gt) for key, lq, gt in pairs}
            selected = []
            for name in _read_meta_info_names(self.opt['meta_info_file']):
                key = pair_key(name)
                if key not in by_key:
                    raise FlareSRError(f'{self.opt["meta_info_file"]}: {name} has no pair in {self.lq_root} and '
                                       f'{self.gt_root}')
                selected.append(by_key[key])
            return selected
        return [(lq, gt) for _, lq, gt in pairs]

    def _lmdb_items(self):
        """[(key, key)] from the LMDBs' meta_info.txt after the cheap integrity check and selections."""
        if self.gt_root is None:
            raise FlareSRError(f'dataset {self.opt.get("name")}: io_backend lmdb needs dataroot_gt')
        for root in (self.lq_root, self.gt_root):
            if not str(root).endswith('.lmdb'):
                raise FlareSRError(f'{root}: io_backend lmdb needs a folder ending in .lmdb (e.g. OUT/lq.lmdb)')
        keys = quick_check_lmdb(self.lq_root, self.gt_root)
        if self.opt.get('meta_info_file'):
            available = set(keys)
            keys = [name.split('.')[0] for name in _read_meta_info_names(self.opt['meta_info_file'])]
            missing = [key for key in keys if key not in available]
            if missing:
                raise FlareSRError(f'{self.opt["meta_info_file"]}: key {missing[0]} is not in {self.lq_root} '
                                   f'({len(missing)} missing)')
        if self.opt.get('meta_csv'):
            csv_path = self.opt['meta_csv']
            images = {lmdb_image_key(row['img_id']) for row in
                      select_rows(read_split_csv(csv_path), self.opt.get('fold'), csv_path)}
            keys = [key for key in keys if image_key_of_patch(key) in images]
            if not keys:
                raise FlareSRError(f'{csv_path}: no patch in {self.lq_root} belongs to the selected fold '
                                   f'{self.opt.get("fold")}')
        self.io_backend_opt['db_paths'] = [self.lq_root, self.gt_root]
        self.io_backend_opt['client_keys'] = ['lq', 'gt']
        return [(key, key) for key in keys]

    def __len__(self):
        return len(self.items)

    def _read_lmdb(self, key, client_key):
        if self.file_client is None:
            self.file_client = _shared_lmdb_client(self.io_backend_opt)
        root = self.lq_root if client_key == 'lq' else self.gt_root
        value = self.file_client.get(key, client_key)
        if value is None:
            raise FlareSRError(f'{root}: record {key} is missing')
        img = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise FlareSRError(f'{root}: record {key} does not decode (run scripts/check_lmdb.py)')
        return img[:, :, ::-1].astype(np.float32) / 255.0

    def _read(self, path, client_key):
        return self._read_lmdb(path, client_key) if self.backend == 'lmdb' else read_image(path)

    def _crop(self, lq, gt, lq_path, gt_path, rng):
        height, width = gt.shape[:2]
        size = self.gt_size
        if height < size or width < size:
            raise FlareSRError(f'{lq_path} / {gt_path}: {height}x{width} is smaller than gt_size {size}')
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        window = (slice(top, top + size), slice(left, left + size))
        return lq[window], gt[window]

    def __getitem__(self, key):
        index = key % len(self)
        lq_path, gt_path = self.items[index]
        lq = self._read(lq_path, 'lq')
        if gt_path is None:
            return {'lq': _to_tensor(lq), 'lq_path': lq_path}
        gt = self._read(gt_path, 'gt')
        if lq.shape != gt.shape:
            raise FlareSRError(f'{lq_path}: size {lq.shape[0]}x{lq.shape[1]} differs from its label {gt_path} '
                               f'({gt.shape[0]}x{gt.shape[1]})')
        if self.phase == 'train':
            rng = sample_rng(self.opt, key, len(self))
            if self.gt_size:
                lq, gt = self._crop(lq, gt, lq_path, gt_path, rng)
            lq, gt = _augment([lq, gt], rng, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        return {'lq': _to_tensor(lq), 'gt': _to_tensor(gt), 'lq_path': lq_path, 'gt_path': gt_path}
