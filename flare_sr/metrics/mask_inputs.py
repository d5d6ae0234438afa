"""Every mask a validation's metrics will read, checked before the first image is scored.

A metric that reads annotated masks (``calculate_flare_psnr`` with ``mask_folder``; Flare7K's
``calculate_*_flare7k``, whose masks default to the ``mask/`` folder beside the images) finds each image's mask
by name when it scores it. A missing or mis-sized mask then fails at that image: after the images before it, or
after the training iterations before the first validation. BasicSR's loops call the metrics per image, so the
check runs once per validation, from flare_sr's validation (``tiled_validation``) and its training loop
(``basicsr_fixes``).
"""
from flare_sr.errors import FlareSRError
from flare_sr.metrics.flare7k_metric import METRIC_NAMES, beside_folder, mask_problem
from flare_sr.metrics.flare_psnr_metric import find_mask, mask_type_problem
from flare_sr.utils.img_util import peek_size


def check_mask_inputs(val_opt, dataset):
    """One FlareSRError before any image is scored when a pair of ``dataset`` has no mask in the ``mask_folder`` of
    a metric of ``val_opt`` (else it failed at that image: after the images before it, or after the training
    iterations before the first validation), or when a mask is of another size, or cannot give the metric's region
    (``mask_problem``, ``mask_type_problem``). ``dataset.items``: (lq path, gt path, ...) tuples; other datasets are
    checked when scored."""
    metrics = [(name, metric) for name, metric in ((val_opt or {}).get('metrics') or {}).items()
               if isinstance(metric, dict) and (isinstance(metric.get('mask_folder'), str)
                                                or metric.get('type') in METRIC_NAMES.values())]
    items = getattr(dataset, 'items', None)
    if not metrics or not isinstance(items, (list, tuple)):
        return
    for item in items:
        paths = item[:2] if isinstance(item, (list, tuple)) else ()
        if len(paths) != 2 or not all(isinstance(path, str) for path in paths):
            return
        for name, metric in metrics:
            kind = metric.get('type', name)
            try:  # Flare7K's metrics default to the mask/ folder beside the images
                mask = find_mask(metric.get('mask_folder') or beside_folder(kind, *paths), *paths, metric=kind)
            except FlareSRError as error:
                raise FlareSRError(f'val.metrics.{name}: {error}') from None
            resized = (getattr(dataset, 'opt', None) or {}).get('gt_size')
            size, mask_size = ((resized, resized) if resized else peek_size(paths[1])), peek_size(mask)
            if tuple(mask_size) != tuple(size):
                why = ' (gt_size resizes images, not masks: leave it unset to score with masks)' if resized else ''
                raise FlareSRError(f'val.metrics.{name}: {mask}: mask is {mask_size[1]}x{mask_size[0]}, the image '
                                   f'{size[1]}x{size[0]}{why}')
            problem = mask_problem(mask) if kind in METRIC_NAMES.values() else mask_type_problem(
                mask, metric.get('mask_type'))
            if problem:
                raise FlareSRError(f'val.metrics.{name}: {problem}')
