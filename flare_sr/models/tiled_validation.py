"""TiledValidationMixin: how every flare_sr model predicts a whole image and is validated and tested.

Used by the training models (FlareBaseModel, on BasicSR's SRModel) and by the test-only CascadeModel
(on BasicSR's BaseModel) alike. The host provides ``opt``, ``device`` and BasicSR's best-metric helpers
(every BaseModel does), plus two hooks:

- ``forward_tiles(batch)``: a CPU Bx3xhxw batch of [0,1] tiles -> the restored [0,1] batch (any device; Bx6xhxw,
  image and flare layer, where the host ``predicts_flare``);
- ``size_multiple``: the multiple the tile sides must have (the archs' ``size_multiple``).

What it does, from the options:
- ``predict`` (``TiledPredictionMixin``, which the ONNX Runtime predictor shares): a whole image through
  ``tiled_forward`` with ``val.tile`` (defaults ``TILE_OPTIONS``) and ``val.precision``; then the light sources
  (``light_source_setting``: ``val.restore_light_source``, DeflareModel adds Flare7K's default) put the input's
  saturated lights back and ``val.flare_floor`` undoes the changes fainter than it (flare_sr/utils/flare_floor.py).
- ``darken_only``: the hosts' tile functions apply ``val.darken_only`` (the output never brighter than the input).
- ``validation`` (BasicSR's hook; also what ``test.py`` calls): every configured metric on uint8 images for the
  output AND the raw input (the baseline); metrics that take ``img_lq`` (calculate_flare_psnr) get the input.
  The baseline never changes, so it is computed once per image (``_input_score``) and reused by later validations.
  Per image and mean go to the log, TensorBoard (``val.tb_images`` side-by-side input|output|label images)
  and ``metrics.json`` (see ``MetricsFile``); images are saved per dataset name, 16-bit for a 16-bit input.
  Validation never moves the global RNGs, so validating does not change how training continues.
"""
import hashlib
import inspect
import json
import math
import time
from collections import OrderedDict
from os import path as osp

import numpy as np
import torch
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import METRIC_REGISTRY
from tqdm import tqdm

from flare_sr.metrics.mask_inputs import check_mask_inputs
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.flare_floor import apply_flare_floor
from flare_sr.utils.img_util import read_metadata, write_image
from flare_sr.utils.light_source import restore_light_source_tensor
from flare_sr.utils.precision import resolve_precision
from flare_sr.utils.rng import preserved_rng_states
from flare_sr.utils.tiling import TILE_OPTIONS, tiled_forward

METRICS_FILE = 'metrics.json'


def side_by_side(*images):
    """Concatenate 1x3xHxW tensors left to right (input | output | label)."""
    return torch.cat([image.float().clamp(0, 1) for image in images], dim=-1)


def _number(value):
    """A score as strict JSON holds it: a float; None for NaN (not scored); "inf" / "-inf" for an infinite score
    (the PSNR of identical images), which ``float()`` reads back."""
    value = float(value)
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else ('inf' if value > 0 else '-inf')


def dataset_scores(per_image, metric_names):
    """The record of one dataset in ``metrics.json`` from ``{image: {metric: (output, input)}}``.

    Returns ``{'images': n, 'mean': {metric: {'output', 'input', 'gain', 'scored'}}, 'per_image': {image:
    {metric: {'output', 'input'}}}}``. A mean is over the images where both scores are not NaN (``scored`` of
    them); in the file NaN is null and an infinite score "inf" (``_number``).
    """
    mean = OrderedDict()
    for name in metric_names:
        pairs = [scores[name] for scores in per_image.values()
                 if not (math.isnan(scores[name][0]) or math.isnan(scores[name][1]))]
        output = sum(pair[0] for pair in pairs) / len(pairs) if pairs else float('nan')
        baseline = sum(pair[1] for pair in pairs) / len(pairs) if pairs else float('nan')
        mean[name] = {'output': output, 'input': baseline, 'gain': output - baseline, 'scored': len(pairs)}
    return {'images': len(per_image), 'mean': mean,
            'per_image': OrderedDict((image, OrderedDict((name, {'output': value, 'input': base})
                                                         for name, (value, base) in scores.items()))
                                     for image, scores in per_image.items())}


def _digest(image):
    """A short digest of an image's pixels, shape and dtype (a cache key)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.blake2b(f'{image.shape}{image.dtype}'.encode(), digest_size=16)
    digest.update(image.data)
    return digest.hexdigest()


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return _number(value) if isinstance(value, float) else value
    if hasattr(value, 'item'):  # numpy and torch scalars (BasicSR's metrics return numpy floats)
        return _json_ready(value.item())
    return value


class MetricsFile:
    """``metrics.json`` beside the log: the scores of every validated dataset, per image and mean, with the input
    baseline, written atomically after each dataset (so it is whole even when a run is killed).

    Test (``results/<name>/metrics.json``)::

        {"name": ..., "model": "CascadeModel", "datasets": {"<dataset name>": RECORD, ...}}

    Training (``experiments/<name>/metrics.json``), one entry per validation, oldest first; a resumed run drops
    the entries from its first validation on, so the file always tells one continuous run. A run resumed from an
    earlier state than its last first copies the whole file, later entries included, into the folder its later
    checkpoints were set aside in (``opt['resumed_from']['later_set_aside']``, basicsr_fixes)::

        {"name": ..., "model": ..., "validations": [{"iter": 5000, "datasets": {"<dataset name>": RECORD}}, ...],
         "best": {"<dataset name>": {"psnr": {"value": 27.1, "iter": 5000}}}}

    RECORD: ``{"images": n, "mean": {"psnr": {"output", "input", "gain", "scored"}}, "per_image": {"<image>":
    {"psnr": {"output", "input"}}}}`` (``dataset_scores``); null = not scored (e.g. no flare region), "inf" =
    infinite (e.g. the PSNR of an output equal to its label).
    """

    def __init__(self, opt, model_name):
        self.is_train = bool(opt['is_train'])
        path_opt = opt.get('path') or {}
        root = path_opt.get('experiments_root' if self.is_train else 'results_root') or path_opt.get('log')
        self.path = osp.join(root, METRICS_FILE) if root else None  # None: options built by hand, no run folder
        self.content = {'name': opt['name'], 'model': model_name}
        if self.is_train:
            self.content.update(validations=[], best={})
            self.later_set_aside = (opt.get('resumed_from') or {}).get('later_set_aside')
        else:
            self.content['datasets'] = {}

    def add(self, current_iter, dataset_name, record, best=None):
        """Record one dataset's scores (at ``current_iter`` in training) and rewrite the file."""
        if not self.is_train:
            self.content['datasets'][dataset_name] = record
        else:
            validations = self.content['validations']
            if not validations:  # the first validation of this process: keep a resumed run's earlier entries
                before = self.read()
                if before and self.later_set_aside:  # the later entries go with the later checkpoints
                    self.write(before, osp.join(self.later_set_aside, METRICS_FILE))
                validations.extend(entry for entry in before.get('validations', [])
                                   if isinstance(entry.get('iter'), int) and entry['iter'] < current_iter)
            if not validations or validations[-1]['iter'] != current_iter:
                validations.append({'iter': current_iter, 'time': time.strftime('%Y-%m-%dT%H:%M:%S'),
                                    'datasets': {}})
            validations[-1]['datasets'][dataset_name] = record
            self.content['best'] = {dataset: {name: {'value': entry['val'], 'iter': entry['iter']}
                                              for name, entry in metrics.items()}
                                    for dataset, metrics in (best or {}).items()}
        self.write()

    def read(self):
        """The file's content, or {} when there is none (or it is not a metrics file)."""
        if self.path is None:
            return {}
        try:
            with open(self.path, encoding='utf-8') as handle:
                content = json.load(handle)
        except (OSError, ValueError):
            return {}
        return content if isinstance(content, dict) else {}

    def write(self, content=None, path=None):
        """``content`` (default: this run's) to ``path`` (default: this run's file), atomically."""
        path = path or self.path
        if path is None:
            return
        with atomic_path(path) as tmp:
            with open(tmp, 'w', encoding='utf-8') as handle:
                json.dump(_json_ready(self.content if content is None else content), handle, indent=2,
                          allow_nan=False)
                handle.write('\n')


class TiledPredictionMixin:
    """Tiled ``predict`` of a whole image from the options, with the hooks ``opt``, ``device``, ``forward_tiles`` and
    ``size_multiple`` (module docstring). Hosts: every flare_sr model (through TiledValidationMixin) and the ONNX
    Runtime predictor (flare_sr/models/onnx_backend.py), so that an exported graph's tiles go through this same
    code: one home for the tiling, the light sources and the flare floor."""

    predicts_flare = False  # True: the tile function gives 6 channels, the image and the flare layer (DeflareModel)

    def forward_tiles(self, batch):
        """A CPU batch of [0,1] tiles -> the restored [0,1] batch. Hosts define it."""
        raise NotImplementedError

    @property
    def size_multiple(self):
        return 1

    def tile_options(self):
        """``tiled_forward``'s keyword arguments from ``val.tile`` (defaults: ``TILE_OPTIONS``) and ``val.precision``
        (resolved for the device)."""
        val = self.opt.get('val') or {}
        tile = dict(TILE_OPTIONS, **(val.get('tile') or {}))
        return dict(tile_size=tile['size'], overlap=tile['overlap'], batch=tile['batch'],
                    self_ensemble=tile['self_ensemble'],
                    precision=resolve_precision(val.get('precision', 'fp32'), self.device))

    def forward_frame(self, lq_cpu):
        """1x3xHxW CPU [0,1] -> the nets' 1x3xHxW (``predicts_flare``: 1x6xHxW) CPU float32 result: ``tiled_forward``
        with the ``val.tile`` options (CascadeModel adds its whole-frame glow stage)."""
        return tiled_forward(self.forward_tiles, lq_cpu, multiple=self.size_multiple, device=self.device,
                             **self.tile_options())

    def predict(self, lq_cpu):
        """1x3xHxW CPU [0,1] -> 1x3xHxW CPU [0,1]: ``forward_frame`` clamped to [0,1] (``predicts_flare``: channels
        3-5 kept as ``flare_layer``, 1x3xHxW, the image goes on), then ``restore_light_sources`` and
        ``val.flare_floor``."""
        out = self.forward_frame(lq_cpu).clamp(0, 1)
        if self.predicts_flare:
            out, self.flare_layer = out[:, :3], out[:, 3:]
        out = self.restore_light_sources(lq_cpu, out)
        return apply_flare_floor(lq_cpu, out, (self.opt.get('val') or {}).get('flare_floor', 0))

    @classmethod
    def light_source_setting(cls, opt):
        """What ``restore_light_sources`` applies under option dict ``opt``: ``val.restore_light_source`` (absent,
        ``~`` or false: nothing; true: the defaults; a dict: ``restore_light_source_tensor``'s keyword arguments).
        A classmethod, so that the ONNX Runtime predictor asks the model class of its options (DeflareModel has its
        own default) without building the model."""
        return (opt.get('val') or {}).get('restore_light_source')

    def restore_light_sources(self, lq_cpu, out):
        """Saturated lights of the input ``lq_cpu`` put back into ``out`` (both 1x3xHxW CPU [0,1]) as
        ``light_source_setting`` says; ``out`` as it is when it says nothing."""
        restore = self.light_source_setting(self.opt)
        if not restore:
            return out
        return restore_light_source_tensor(lq_cpu, out, **(restore if isinstance(restore, dict) else {}))


class TiledValidationMixin(TiledPredictionMixin):
    """Tiled ``predict`` and validation with the input baseline; see the module docstring for the hooks."""

    def darken_only(self, lq, out):
        """``val.darken_only: true``: ``min(out, lq)`` per pixel and channel, else ``out`` (both [0,1], same shape).

        Flare only adds light (Wu et al., ICCV 2021: the flared image is the scene plus a non-negative flare
        layer), so a restored pixel brighter than its input is an error of the net, not flare removed. A prior for
        additive flare only: leave it off for data whose labels are also sharper or brighter than the inputs.
        """
        return torch.minimum(out, lq) if (self.opt.get('val') or {}).get('darken_only') else out

    def test(self):
        """BasicSR's hook (used by its own callers): the predicted image for the fed ``lq``."""
        self.output = self.predict(self.lq.cpu()).to(self.device)

    # ---------------------------------------------------------------- validation
    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Under DDP rank 0 validates on the whole set (as BasicSR's SRModel); the other ranks wait for nothing."""
        if get_dist_info()[0] == 0:
            self.nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Score ``predict`` on every image, beside the raw input's scores; log, draw, save and write metrics.json."""
        with preserved_rng_states():
            self._validate(dataloader, current_iter, tb_logger, save_img)

    def _validate(self, dataloader, current_iter, tb_logger, save_img):
        total_iter = (self.opt.get('train') or {}).get('total_iter')
        dataset_name = dataloader.dataset.opt['name']
        validated = self.__dict__.setdefault('_validated_at', {})  # dataset name -> iteration, in this process
        if self.opt['is_train'] and isinstance(current_iter, int) and total_iter and current_iter > total_iter:
            current_iter = int(total_iter)  # BasicSR's final validation passes total_iter + 1 for total_iter's weights
            if validated.get(dataset_name) == current_iter:  # val_freq divides total_iter: the same weights again
                get_root_logger().info(f'{dataset_name}: validated at iteration {current_iter} already; not again')
                return
        validated[dataset_name] = current_iter
        val_opt = self.opt['val']
        check_mask_inputs(val_opt, dataloader.dataset)  # before the first image, not at the first without a mask
        metrics = val_opt.get('metrics') or {}
        if metrics:
            self._initialize_best_metric_results(dataset_name)
        per_image = OrderedDict()
        logger = get_root_logger()
        for index, val_data in enumerate(tqdm(dataloader, desc=f'validate {dataset_name}', unit='image',
                                              disable=not val_opt.get('pbar', False))):
            image_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            lq = val_data['lq']
            output = self.predict(lq)
            gt = val_data.get('gt')
            panels = [lq, output] if gt is None else [lq, output, gt]
            if gt is not None and metrics:
                paths = {key: val_data[key][0] for key in ('lq_path', 'gt_path') if key in val_data}
                scores = self._score(output, lq, gt, metrics, paths)
                per_image[image_name] = scores
                logger.info(f'  {dataset_name} {image_name}: ' + ', '.join(
                    f'{name} {value:.4f} (input {base:.4f})' for name, (value, base) in scores.items()))
            if tb_logger is not None and index < val_opt.get('tb_images', 3):
                tb_logger.add_image(f'val_{dataset_name}/{image_name} (input|output|label)',
                                    side_by_side(*panels)[0], current_iter)
            if save_img:
                bit_depth = int(val_data['bit_depth'][0]) if 'bit_depth' in val_data else 8
                self._save_images(dataset_name, image_name, current_iter, output, panels, bit_depth,
                                  read_metadata(val_data['lq_path'][0]))
        if not per_image:
            return
        record = dataset_scores(per_image, metrics)
        self.metric_results = {name: mean['output'] for name, mean in record['mean'].items()}
        self.input_metric_results = {name: mean['input'] for name, mean in record['mean'].items()}
        if any(mean['scored'] for mean in record['mean'].values()):
            for name, value in self.metric_results.items():
                self._update_best_metric_result(dataset_name, name, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if not hasattr(self, 'metrics_file'):
            self.metrics_file = MetricsFile(self.opt, type(self).__name__)
        self.metrics_file.add(current_iter, dataset_name, record, getattr(self, 'best_metric_results', None))

    def _score(self, output, lq, gt, metrics, paths=None):
        """``{metric: (output score, input score)}``: each configured BasicSR metric on uint8 BGR HWC images.

        A metric whose function takes ``img_lq``, ``lq_path`` or ``gt_path`` (calculate_flare_psnr) gets the
        input image and the file paths too. A NaN score means "not scored" (e.g. no flare region): such an
        image is left out of that metric's mean.
        """
        gt_img = tensor2img(gt)
        out_img, lq_img = tensor2img(output), tensor2img(lq)
        extras = {'img_lq': lq_img, **(paths or {})}
        scores = {}
        for name, metric_opt in metrics.items():
            accepted = inspect.signature(METRIC_REGISTRY.get(metric_opt['type'])).parameters
            data = {key: value for key, value in extras.items() if key in accepted}
            value = calculate_metric({'img': out_img, 'img2': gt_img, **data}, metric_opt)
            scores[name] = (float(value), self._input_score(name, metric_opt, lq_img, gt_img, data, paths or {}))
        return scores

    def _input_score(self, name, metric_opt, lq_img, gt_img, data, paths):
        """The metric of the raw input against its label, computed once per image: validations repeat it unchanged.

        Keyed by the metric's options, the image's lq/gt paths and digests of both images' pixels, so a file that
        changed, or another dataset with the same paths but other pixels, is scored afresh.
        """
        if not hasattr(self, '_input_scores'):
            self._input_scores = {}
        key = (name, repr(sorted(metric_opt.items())), paths.get('lq_path'), paths.get('gt_path'), _digest(lq_img),
               _digest(gt_img))
        cache = self._input_scores
        if key not in cache:
            cache[key] = float(calculate_metric({'img': lq_img, 'img2': gt_img, **data}, metric_opt))
        return cache[key]

    def _save_images(self, dataset_name, image_name, current_iter, output, panels, bit_depth=8, metadata=()):
        """Output PNG (16-bit for a 16-bit input, with the input's colour profile and EXIF: ``metadata``) plus an
        8-bit input|output|label PNG, under the dataset's name (validation sets may share file names, e.g.
        Flare7K's real and synthetic test sets); in training one folder per image and iteration."""
        root = self.opt['path']['visualization']
        if self.opt['is_train']:
            stem = osp.join(root, dataset_name, image_name, f'{image_name}_{current_iter}')
            output_path, compare_path = f'{stem}.png', f'{stem}_compare.png'
        else:
            suffix = self.opt['val'].get('suffix')
            file_name = f'{image_name}_{suffix}.png' if suffix else f'{image_name}.png'
            output_path = osp.join(root, dataset_name, file_name)
            compare_path = osp.join(root, f'{dataset_name}_compare', file_name)
        output_img = output[0].permute(1, 2, 0).cpu().numpy() if bit_depth == 16 else tensor2img(output, rgb2bgr=False)
        write_image(output_path, output_img, bit_depth=bit_depth, metadata=metadata)
        write_image(compare_path, tensor2img(side_by_side(*panels), rgb2bgr=False))

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        """The means in BasicSR's layout (``# psnr: ...\tBest: ... @ N iter``), the input baseline's line, and both
        as TensorBoard scalars (``metrics/<dataset>/<metric>`` and ``.../input_<metric>``)."""
        best = getattr(self, 'best_metric_results', {}).get(dataset_name, {})
        lines = [f'Validation {dataset_name}']
        for name, value in self.metric_results.items():
            line = f'\t # {name}: {value:.4f}'
            if name in best:
                line += f'\tBest: {best[name]["val"]:.4f} @ {best[name]["iter"]} iter'
            lines.append(line)
        logger = get_root_logger()
        logger.info('\n'.join(lines) + '\n')
        logger.info(f'Input baseline {dataset_name}: ' + ', '.join(
            f'{name} {value:.4f}' for name, value in self.input_metric_results.items()))
        if tb_logger is not None and isinstance(current_iter, int):
            for name, value in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)
                tb_logger.add_scalar(f'metrics/{dataset_name}/input_{name}', self.input_metric_results[name],
                                     current_iter)
