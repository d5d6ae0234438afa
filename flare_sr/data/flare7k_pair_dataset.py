"""Flare7K's pair loaders under their registered names (ykdai/Flare7K ``basicsr/data/flare7k_dataset.py``):
``Image_Pair_Loader`` (its option files' validation set) and ``ImageMask_Pair_Loader`` (the same with a mask folder).

Options, as Flare7K defines them:
    dataroot_lq, dataroot_gt: folders of flared inputs and clean labels. Paired by flare_sr's rules
        (flare_sr/data/pairing.py: Flare7K's ``input_000000.png`` <-> ``gt_000000.png``, identical names, ...);
        folders whose names those rules cannot pair are paired by sorted order, as Flare7K pairs every folder,
        when both hold the same number of images (one ``warning:`` line says so).
    dataroot_mask (ImageMask_Pair_Loader): Flare7K's colour masks (``mask_000000.png``: glare yellow, streak red,
        light blue), matched to each pair by its key (``000000``), else by sorted order.
    gt_size: every image resized so its short side is ``gt_size`` (bilinear with antialiasing: PIL's, which
        torchvision's ``Resize`` calls), then centre-cropped to ``gt_size`` x ``gt_size``, in every phase, as
        Flare7K's ``Resize(gt_size)`` + ``CenterCrop(gt_size)``. Left out: whole images, which flare_sr's tiled
        validation takes at any size.
Returns dict(lq, gt[, mask], lq_path, gt_path[, mask_path], bit_depth): float32 RGB CHW tensors in [0, 1]
(Flare7K returns lq, gt and mask; the paths name saved images and feed metrics that read masks by file).
"""
import os
import re

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image

from flare_sr.data.paired_flare_dataset import PairedFlareDataset
from flare_sr.data.pairing import pair_paths
from flare_sr.data.sampling import item_index
from flare_sr.data.transforms import img2tensor
from flare_sr.errors import FlareSRError
from flare_sr.utils.hardware import warn
from flare_sr.utils.img_util import list_images, read_image_native


def resize_center_crop(image, size):
    """HxWxC uint8/uint16 -> ``size`` x ``size`` x C of the same dtype: torchvision's ``Resize(size)`` (short side to
    ``size``, the long side ``int(size * long / short)``, PIL bilinear) then ``CenterCrop(size)``."""
    height, width = image.shape[:2]
    if height <= width:
        new_h, new_w = size, int(size * width / height)
    else:
        new_h, new_w = int(size * height / width), size
    if image.dtype == np.uint8:
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    else:  # PIL has no 16-bit RGB: each channel as a float image
        resized = np.stack([np.asarray(Image.fromarray(image[..., c].astype(np.float32), 'F').resize(
            (new_w, new_h), Image.BILINEAR)) for c in range(image.shape[2])], axis=2)
        resized = np.clip(np.round(resized), 0, 65535).astype(np.uint16)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return resized[top:top + size, left:left + size]


def _pairs(lq_dir, gt_dir, quiet):
    """[(key, lq, gt)] by flare_sr's rules, else by sorted order where the counts agree (Flare7K's way)."""
    try:
        return pair_paths(lq_dir, gt_dir, quiet=True)
    except FlareSRError:
        lq_paths, gt_paths = list_images(lq_dir), list_images(gt_dir)
        if not lq_paths or len(lq_paths) != len(gt_paths):
            raise
    if not quiet:
        shifted = [(lq, gt) for lq, gt in zip(lq_paths, gt_paths) if _numbers(lq) and _numbers(gt)
                   and _numbers(lq) != _numbers(gt)]  # names without numbers say nothing
        lq, gt = (shifted or list(zip(lq_paths, gt_paths)))[0]
        numbers = f'; {len(shifted)} pairs join names with different numbers' if shifted else ''
        warn(f'{lq_dir} and {gt_dir}: file names do not pair by name, so they are paired by sorted order as Flare7K '
             f'does (e.g. {os.path.basename(lq)} <-> {os.path.basename(gt)}{numbers})')
    return [(os.path.splitext(os.path.basename(gt))[0], lq, gt) for lq, gt in zip(lq_paths, gt_paths)]


def _numbers(path):
    """The numbers in a file name, as integers (``input_000002.png`` -> [2])."""
    return [int(number) for number in re.findall(r'\d+', os.path.basename(path))]


def _stem_without_mask_word(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    for separator in '_-':
        for word in ('mask', 'Mask', 'MASK'):
            stem = stem.removeprefix(word + separator).removesuffix(separator + word)
    return stem


@DATASET_REGISTRY.register()
class Image_Pair_Loader(PairedFlareDataset):  # noqa: N801  (Flare7K's registered name)
    """Flare7K's validation pairs; see the module docstring for the options."""

    extra_roots = ()  # ('mask',) for ImageMask_Pair_Loader: dataroot_<name> folders matched to each pair

    @classmethod
    def check_options(cls, opt, key_path):
        """Option-checker lines (missing folders, a bad gt_size, folders that do not pair); [] when none."""
        problems = []
        for role in ('lq', 'gt', *cls.extra_roots):
            if not opt.get(f'dataroot_{role}'):
                problems.append(f'{key_path}.dataroot_{role}: missing')
        size = opt.get('gt_size')
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            problems.append(f'{key_path}.gt_size: expected a positive integer (the side images are resized and '
                            f'cropped to), got {size!r}')
        if not problems and all(os.path.isdir(opt[f'dataroot_{role}']) for role in ('lq', 'gt', *cls.extra_roots)):
            try:
                cls.select_items(opt, quiet=True)
            except FlareSRError as error:
                problems.append(f'{key_path}: {error}')
        return problems

    @classmethod
    def select_items(cls, opt, quiet=False):
        """[(lq, gt[, extra...])] paths; one FlareSRError for folders that pair neither by name nor by count."""
        pairs = _pairs(opt['dataroot_lq'], opt['dataroot_gt'], quiet)
        items = [(lq, gt) for _, lq, gt in pairs]
        by_stem = {}  # validation names each output by its input's stem
        for lq in sorted(lq for lq, _ in items):
            stem = os.path.splitext(os.path.basename(lq))[0]
            if stem in by_stem:
                raise FlareSRError(f'dataroot_lq: {opt["dataroot_lq"]} holds {os.path.basename(by_stem[stem])} and '
                                   f'{os.path.basename(lq)}, whose outputs would both be named {stem}.png; rename one '
                                   'of them')
            by_stem[stem] = lq
        for role in cls.extra_roots:
            root = opt[f'dataroot_{role}']
            paths = list_images(root)
            by_key = {_stem_without_mask_word(path): path for path in paths}
            matched = [by_key.get(key) for key, _, _ in pairs]
            if None in matched:
                if len(paths) != len(pairs):
                    missing = pairs[matched.index(None)][2]
                    raise FlareSRError(f'dataroot_{role}: {root} has no file for {os.path.basename(missing)} and '
                                       f'{len(paths)} files for {len(pairs)} pairs')
                matched = paths  # sorted order, as Flare7K
            items = [(*item, path) for item, path in zip(items, matched)]
        return items

    def __init__(self, opt):
        super().__init__(dict(opt, io_backend={'type': 'disk'}))  # Flare7K's files give no io_backend

    def __getitem__(self, key):
        paths = self.items[item_index(key, len(self))]
        size = self.opt.get('gt_size')
        sample = {}
        for role, path in zip(('lq', 'gt', *self.extra_roots), paths):
            image = read_image_native(path)
            if size:
                image = resize_center_crop(image, size)
            sample[role] = image
            sample[f'{role}_path'] = path
        if sample['lq'].shape != sample['gt'].shape:
            raise FlareSRError(f'{paths[0]}: size {sample["lq"].shape[0]}x{sample["lq"].shape[1]} differs from its '
                               f'label {paths[1]} ({sample["gt"].shape[0]}x{sample["gt"].shape[1]}); set gt_size')
        sample['bit_depth'] = 16 if sample['lq'].dtype == np.uint16 else 8
        for role in ('lq', 'gt', *self.extra_roots):
            sample[role] = img2tensor(sample[role])
        return sample


@DATASET_REGISTRY.register()
class ImageMask_Pair_Loader(Image_Pair_Loader):  # noqa: N801  (Flare7K's registered name)
    """Image_Pair_Loader plus ``dataroot_mask`` (returned as ``mask``, resized as the images)."""

    extra_roots = ('mask',)
