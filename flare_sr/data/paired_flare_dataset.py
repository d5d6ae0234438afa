"""Paired flare/clean images from folders or from packed LMDBs, with resumable random crops and flips.

Options (BasicSR style):
    dataroot_lq, dataroot_gt: folders of images, paired by flare_sr.data.pairing's rules (``filename_tmpl``,
        identical stems, Dacon ``train_input_N``/``train_label_N``, Flare7K ``input_N``/``gt_N``, ...) or,
        with ``io_backend: {type: lmdb}``, LMDBs made by scripts/create_lmdb.py or by BasicSR's
        ``make_lmdb_from_imgs`` (identical key sets, or keys paired by the same rules).
        In phase ``test`` ``dataroot_gt`` may be left out: samples then carry no ``gt``.
    filename_tmpl: BasicSR's ``'{}'`` template: the lq stem is ``filename_tmpl.format(gt stem)``.
    meta_info_file: optional, BasicSR's: one gt file name per line (disk), optionally followed by
        `` (h,w,c)``, or LMDB keys / ``meta_info.txt`` lines (lmdb). Only the listed pairs are used.
    meta_csv + fold: optional split CSV (scripts/split_dataset.py); keeps rows whose fold tags include
        ``fold`` (``val``, ``train``, ``2`` or a list such as ``['0', '1', '3', '4']``). With lmdb, keeps
        the patches of the selected images. ``fold`` without ``meta_csv``, or ``meta_csv`` with
        ``meta_info_file`` or a ``filename_tmpl``, is an error (``check_options``): one of them would be ignored.
    gt_size, use_hflip, use_rot: paired random crop and flips/rotations, in phase ``train`` only;
        ``val``/``test`` return whole images. Without ``gt_size`` a training sample is the whole pair, which
        ``use_rot`` transposes only where it is square, and a batch above 1 needs pairs of one shape (one
        FlareSRError naming two that differ, from the image headers, when the dataset is built).
    downscale_to: short side in px: every pair whole, area-downscaled (and in training turned to landscape;
        flare_sr.data.whole_frames), for a net that sees the whole frame small (CascadeModel's glow stage, trained
        on real pairs). The pairs are read and downscaled once, when the dataset is built (a progress bar), and
        kept as float32: 2 x 3 x 4 bytes per pixel of the small frame (the challenge's 622 pairs at 384: 2.9 GB).
        Excludes ``gt_size``; applies in every phase. It needs whole images: an LMDB of patches is refused.
        Frames smaller than it, and in training whole samples of mixed shapes, are one line from the headers
        (the option checker's too), before any pair is read.
Returns dict(lq, gt, lq_path, gt_path): float32 RGB CHW tensors in [0, 1]; outside phase ``train`` also
``bit_depth`` (8 or 16, the input file's), so saved outputs keep a 16-bit input's depth.

Randomness comes only from ``sample_rng(opt, key, len(self))`` so a resumed run sees the same crops (``key``:
a ``SampleKey`` from ResumableSampler, or a plain index with fresh randomness; flare_sr/data/sampling.py).
Pairing is checked when the dataset is built (and the LMDB key sets, cheaply); pixel sizes are
checked per sample, since decoding hundreds of large photos up front would stall every start.
Images are read in their own dtype and cropped before the conversion to float (flare_sr.data.transforms).
"""
import os

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data
from tqdm import tqdm

from flare_sr.data.lmdb_pack import (LmdbImages, image_key_of_patch, key_of_name, lmdb_image_key, lmdb_keys,
                                     quick_check_lmdb, read_meta_info, read_meta_info_names)
from flare_sr.data.meta_csv import read_split_csv, resolve_pairs, select_rows
from flare_sr.data.pairing import pair_names, pair_paths
from flare_sr.data.sampling import item_index, sample_rng
from flare_sr.data.transforms import augment, img2tensor, paired_random_crop
from flare_sr.data.whole_frames import (dataset_phase, downscale_frames, downscale_problems, sample_problem,
                                        store_whole, whole_sample_shape)
from flare_sr.errors import FlareSRError
from flare_sr.utils.atomic import same_file
from flare_sr.utils.img_util import list_images, peek_size, read_image_native, to_float32
from flare_sr.utils.yaml_numbers import positive_whole


def _disk_items(opt, quiet):
    """[(lq_path, gt_path or None)] after pairing and the optional CSV / meta_info selection."""
    lq_root, gt_root, filename_tmpl = opt['dataroot_lq'], opt.get('dataroot_gt'), opt.get('filename_tmpl') or '{}'
    if gt_root is None:
        selection = next((key for key in ('meta_csv', 'meta_info_file') if opt.get(key)), None)
        if selection:  # they name pairs: without labels every image of dataroot_lq would be read, silently
            raise FlareSRError(f'{selection} selects pairs, but dataroot_gt is not set; set it, or remove {selection} '
                               'to read every image of dataroot_lq')
        return [(path, None) for path in list_images(lq_root)]
    if opt.get('meta_csv'):
        csv_path = opt['meta_csv']
        rows = select_rows(read_split_csv(csv_path), opt.get('fold'), csv_path)
        pairs = resolve_pairs(rows, lq_root, gt_root, csv_path)
    elif opt.get('meta_info_file'):
        pairs = _meta_info_pairs(opt, quiet)
    else:
        pairs = pair_paths(lq_root, gt_root, filename_tmpl, quiet=quiet)
    return [(lq, gt) for _, lq, gt in pairs]


def _meta_info_pairs(opt, quiet):
    """BasicSR's meta_info_file lists gt names; each finds its lq partner by the pairing rules."""
    meta_file, lq_root, gt_root = opt['meta_info_file'], opt['dataroot_lq'], opt['dataroot_gt']
    gt_paths = []
    for name in read_meta_info_names(meta_file):
        path = os.path.join(gt_root, name)
        if not os.path.isfile(path):
            raise FlareSRError(f'{meta_file}: lists {name}, which is not in {gt_root}')
        gt_paths.append(path)
    return pair_names(list_images(lq_root), gt_paths, opt.get('filename_tmpl') or '{}', lq_where=lq_root,
                      gt_where=meta_file, all_lq=False, quiet=quiet)


def lmdb_items(opt, quiet):
    """[(lq key, gt key)] from the LMDBs' meta_info.txt after the cheap integrity check and the selections
    (``meta_info_file`` or ``meta_csv`` + ``fold``): the patches a PairedFlareDataset on LMDBs reads."""
    lq_root, gt_root = opt['dataroot_lq'], opt.get('dataroot_gt')
    if gt_root is None:
        raise FlareSRError(f'dataset {opt.get("name")}: io_backend lmdb needs dataroot_gt')
    for root in (lq_root, gt_root):
        if not str(root).endswith('.lmdb'):
            raise FlareSRError(f'{root}: io_backend lmdb needs a folder ending in .lmdb (e.g. OUT/lq.lmdb)')
    if same_file(lq_root, gt_root):  # every key would pair with itself: inputs without flare
        raise FlareSRError(f'{gt_root}: the same LMDB as dataroot_lq {lq_root}; an input would be its own label '
                           '(dataroot_gt is OUT/gt.lmdb beside OUT/lq.lmdb)')
    lq_keys, gt_keys = lmdb_keys(lq_root), lmdb_keys(gt_root)
    if set(lq_keys) & set(gt_keys):  # BasicSR's convention: the same keys in both (a difference is an error)
        pairs = [(key, key, key) for key in quick_check_lmdb(lq_root, gt_root)]
    else:  # e.g. make_lmdb_from_imgs on Flare7K's input/ and gt/ folders: input_000000 <-> gt_000000
        pairs = pair_names(lq_keys, gt_keys, opt.get('filename_tmpl') or '{}', lq_where=lq_root, gt_where=gt_root,
                           keys=True, quiet=quiet)
    if opt.get('meta_info_file'):
        meta_file = opt['meta_info_file']
        by_key = {}
        for key, lq_key, gt_key in pairs:
            for name in (key, lq_key, gt_key):
                by_key.setdefault(name, (lq_key, gt_key))
        selected = [key_of_name(name) for name in read_meta_info_names(meta_file)]
        missing = [key for key in selected if key not in by_key]
        if missing:
            raise FlareSRError(f'{meta_file}: key {missing[0]} is not in {lq_root} ({len(missing)} missing)')
        return [by_key[key] for key in selected]
    if opt.get('meta_csv'):
        csv_path = opt['meta_csv']
        images = {lmdb_image_key(row['img_id']) for row in
                  select_rows(read_split_csv(csv_path), opt.get('fold'), csv_path)}
        pairs = [pair for pair in pairs if image_key_of_patch(pair[0]) in images]
        if not pairs:
            raise FlareSRError(f'{csv_path}: no patch in {lq_root} belongs to the selected fold {opt.get("fold")}')
    return [(lq_key, gt_key) for _, lq_key, gt_key in pairs]


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
        problems = downscale_problems(opt, 'option ')
        if problems:
            raise FlareSRError('; '.join(problems))
        self.downscale_to = positive_whole(opt.get('downscale_to'))
        self.items = self.select_items(opt)
        if self.backend == 'lmdb':
            readahead = self.io_backend_opt.get('readahead', False)
            self.lmdbs = {'lq': LmdbImages(self.lq_root, readahead), 'gt': LmdbImages(self.gt_root, readahead)}
        try:
            self.sample_shape(opt, self.phase, self.items)
        except FlareSRError as error:
            raise FlareSRError(sample_problem(error)) from None
        self.frames = self._read_frames() if self.downscale_to else None

    @staticmethod
    def check_options(opt, key_path):
        """Option-checker lines for settings that would crash later or select nothing silently; [] when none."""
        problems = []
        if not opt.get('dataroot_lq'):
            problems.append(f'{key_path}.dataroot_lq: missing (the folder or LMDB of flared inputs)')
        if not opt.get('dataroot_gt') and dataset_phase(key_path) != 'test':
            problems.append(f'{key_path}.dataroot_gt: missing (the clean labels; only a test_* set may leave it out)')
        if opt.get('fold') is not None and not opt.get('meta_csv'):
            problems.append(f'{key_path}.fold: selects rows of a split CSV, but meta_csv is not set')
        if opt.get('meta_csv') and opt.get('meta_info_file'):
            problems.append(f'{key_path}: meta_csv and meta_info_file both select the pairs; keep one of them')
        if opt.get('meta_csv') and opt.get('filename_tmpl', '{}') != '{}':
            problems.append(f'{key_path}.filename_tmpl: not read with meta_csv, whose rows name both files of each '
                            'pair; remove one of them')
        problems += downscale_problems(opt, f'{key_path}.')
        store_whole(opt, ('downscale_to',))
        paths = ('dataroot_lq', 'dataroot_gt', 'meta_info_file', 'meta_csv')
        paths_exist = all(os.path.exists(opt[key]) for key in paths if isinstance(opt.get(key), str))  # else reported
        if not problems and paths_exist:
            try:  # lists folders and meta files only: no image is read
                items = PairedFlareDataset.select_items(opt, quiet=True)
            except FlareSRError as error:
                key, _, rest = str(error).partition(' ')
                problems.append(f'{key_path}.{key}: {rest}' if key in opt else f'{key_path}: {error}')
            else:
                try:  # the image headers, where samples are whole
                    PairedFlareDataset.sample_shape(opt, dataset_phase(key_path), items)
                except FlareSRError as error:
                    problems.append(sample_problem(error, key_path))
        return problems

    @staticmethod
    def sample_shape(opt, phase='train', items=None):
        """(height, width) of every sample in ``phase``: ``gt_size``'s square in training; otherwise the whole pair,
        downscaled and turned to landscape with ``downscale_to``, from the inputs' headers (an LMDB's meta_info.txt)
        of ``items`` (default: ``select_items(opt)``); None where samples may differ (validation and test of whole
        images). FlareSRError, its text starting with the key at fault, for a frame smaller than ``downscale_to``,
        an LMDB of patches with ``downscale_to``, or whole samples of other shapes in a training batch
        (flare_sr.data.whole_frames.whole_sample_shape), before any pair is read."""
        short = positive_whole(opt.get('downscale_to'))
        lmdb = (opt.get('io_backend') or {}).get('type', 'disk') == 'lmdb'
        if phase == 'train' and opt.get('gt_size'):
            if lmdb:  # its meta_info.txt holds every size: a crop larger than a patch is said now, not at its sample
                _check_crop_fits(opt, PairedFlareDataset.select_items(opt, quiet=True) if items is None else items)
            return int(opt['gt_size']), int(opt['gt_size'])
        if phase != 'train' and not short:
            return None
        items = PairedFlareDataset.select_items(opt, quiet=True) if items is None else items
        recorded = dict(read_meta_info(opt['dataroot_lq'])) if lmdb else {}
        patch = next((lq for lq, _ in items if image_key_of_patch(lq) != lq), None) if lmdb and short else None
        if patch is not None:
            raise FlareSRError(f'downscale_to {short}: {opt["dataroot_lq"]} holds patches ({patch}), not whole frames; '
                               'read the image folders (io_backend: disk)')
        sizes = ((lq, recorded[lq][:2] if lmdb else peek_size(lq)) for lq, _ in items)
        batch = (positive_whole(opt.get('batch_size_per_gpu')) or 1) if phase == 'train' else 1
        return whole_sample_shape(sizes, short, batch, 'use pairs of one ' +
                                  ('aspect ratio' if short else 'size') + ', gt_size crops')

    @staticmethod
    def select_items(opt, quiet=False):
        """[(lq, gt or None)] paths (disk) or keys (lmdb) the options select, after pairing; one FlareSRError for a
        selection that fails (nothing paired, an empty fold, a listed file missing). Lists folders and reads meta
        files, never images. ``quiet``: no warning line for a template that pairs only some files (the option
        check runs this before the dataset is built)."""
        backend = (opt.get('io_backend') or {}).get('type', 'disk')
        if backend == 'lmdb':
            return lmdb_items(opt, quiet)
        if backend == 'disk':
            return _disk_items(opt, quiet)
        raise FlareSRError(f'dataset {opt.get("name")}: io_backend type "{backend}" (use disk or lmdb)')

    def __len__(self):
        return len(self.items)

    def _read(self, path, client_key):
        """HxWx3 RGB in the record's or file's own dtype (uint8 / uint16)."""
        return self.lmdbs[client_key].get(path) if self.backend == 'lmdb' else read_image_native(path)

    def _read_pair(self, lq_path, gt_path):
        """(lq, gt or None) in their own dtype; a label of another size than its input is one FlareSRError."""
        lq = self._read(lq_path, 'lq')
        gt = None if gt_path is None else self._read(gt_path, 'gt')
        if gt is not None and lq.shape != gt.shape:
            raise FlareSRError(f'{lq_path}: size {lq.shape[0]}x{lq.shape[1]} differs from its label {gt_path} '
                               f'({gt.shape[0]}x{gt.shape[1]})')
        return lq, gt

    def _read_frames(self):
        """``downscale_to``: [(lq, gt or None, bit depth)], every pair read once, whole, as float32, area-downscaled
        and, in training, turned to landscape (flare_sr.data.whole_frames)."""
        frames = []
        for lq_path, gt_path in tqdm(self.items, desc=f'frames {self.opt.get("name")} at {self.downscale_to} px',
                                     unit='pair'):
            lq, gt = self._read_pair(lq_path, gt_path)
            small = downscale_frames([to_float32(image) for image in (lq, gt) if image is not None], self.downscale_to,
                                     landscape=self.phase == 'train')
            frames.append((small[0], small[1] if gt is not None else None, 16 if lq.dtype == np.uint16 else 8))
        return frames

    def __getitem__(self, key):
        index = item_index(key, len(self))
        lq_path, gt_path = self.items[index]
        if self.frames is not None:
            lq, gt, bit_depth = self.frames[index]
        else:
            lq, gt = self._read_pair(lq_path, gt_path)
            bit_depth = 16 if lq.dtype == np.uint16 else 8
        depth = {} if self.phase == 'train' else {'bit_depth': bit_depth}  # saved outputs keep the input's depth
        if gt is None:
            return {'lq': img2tensor(lq), 'lq_path': lq_path, **depth}
        if self.phase == 'train':
            rng = sample_rng(self.opt, key, len(self))
            if self.gt_size:
                gt, lq = paired_random_crop(gt, lq, self.gt_size, rng, f'{lq_path} / {gt_path}')
            lq, gt = augment([lq, gt], self.opt.get('use_hflip', False), self.opt.get('use_rot', False), rng,
                             transpose=lq.shape[0] == lq.shape[1])  # a whole frame keeps its shape
        return {'lq': img2tensor(lq), 'gt': img2tensor(gt), 'lq_path': lq_path, 'gt_path': gt_path, **depth}


def _check_crop_fits(opt, items):
    """FlareSRError (text starting with ``gt_size``) when an LMDB input of ``items`` (keys) is smaller than the
    ``gt_size`` crop, from the LMDB's meta_info.txt: the smallest named with its size."""
    gt_size = int(opt['gt_size'])
    recorded = dict(read_meta_info(opt['dataroot_lq']))
    smallest = min((lq for lq, _ in items), key=lambda key: min(recorded[key][:2]), default=None)
    if smallest is not None and min(recorded[smallest][:2]) < gt_size:
        height, width = recorded[smallest][:2]
        raise FlareSRError(f'gt_size {gt_size}: larger than {smallest} ({height}x{width} in '
                           f'{os.path.join(opt["dataroot_lq"], "meta_info.txt")}); use gt_size {min(height, width)} or '
                           'less, or pack larger patches')
