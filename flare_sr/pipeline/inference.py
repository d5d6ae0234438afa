"""Inference as a library: a test model from an option file, a folder of photos through it, the submission.

Works with any flare_sr test option file (CascadeModel, Pix2PixModel, HINetModel): the model and its
checkpoints come from it, its datasets are ignored (no labels needed). One PNG per input, same size;
``test_input_20000.png`` becomes ``test_20000.png`` (the challenge's naming), other names keep their
stem. A 16-bit input gives a 16-bit PNG, a grayscale one a grayscale PNG, an alpha channel is kept, and the EXIF
orientation is applied (the output looks as the photo does in a viewer); the ICC profile, gAMA/cHRM/sRGB and EXIF go
with it. An animated or multi-page image is refused (one photo per file).
Every file is written atomically, so an interrupted run never leaves half an image or half a zip, and no
output may replace an input or a file flare_sr did not write. Errors are one-line ``FlareSRError``s naming
the file.

The command line is ``flare_sr/infer.py`` (``flare-sr-infer``, flare_sr/cli.py); the stage-III data
(flare_sr/pipeline/stage3_data.py) and the benches build their models with ``build_test_model``.
"""
import os
import re
import time
import zipfile
from os import path as osp

import torch
from basicsr.models import build_model
from tqdm import tqdm

from flare_sr.errors import FlareSRError
from flare_sr.models.cascade_model import CascadeModel
from flare_sr.models.onnx_backend import NO_GLOW, OnnxRuntimePredictor, model_size_multiple
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.hardware import fit_to_hardware, warn
from flare_sr.utils.img_util import (check_decodable, list_photos, photo_extensions, read_image, read_photo,
                                     unreadable_format, write_image, written_by_flare_sr)
from flare_sr.utils.options_check import OptionChecker, load_option_file
from flare_sr.utils.tiling import TILE_MINIMUMS, tile_grid_preview, tile_problems, tile_value_problem

TILE_FLAGS = {'size': '--tile', 'overlap': '--overlap'}  # the command-line flags that override val.tile
_DACON_INPUT = re.compile(r'^(?P<prefix>.+)_input_(?P<number>\d+)$')


def submission_name(input_path):
    """``test_input_20000.png`` -> ``test_20000.png``; any other image -> its stem + ``.png``."""
    stem = osp.splitext(osp.basename(input_path))[0]
    match = _DACON_INPUT.match(stem)
    if match:
        stem = f"{match.group('prefix')}_{match.group('number')}"
    return f'{stem}.png'


def list_inputs(path):
    """([path], []) for an image file; for a folder, (its photos, lines saying what was skipped and why)
    (flare_sr.utils.img_util.list_photos; a broken symbolic link is said as one, with its target)."""
    if osp.islink(path) and not osp.exists(path):
        raise FlareSRError(f'{path}: --input is a broken link (to {os.readlink(path)}, which does not exist)')
    if osp.isfile(path):
        unreadable = unreadable_format(path)
        if unreadable:
            raise FlareSRError(f'{path}: {unreadable} is not readable here; convert it to PNG or JPEG')
        if not path.lower().endswith(photo_extensions()):
            raise FlareSRError(f'{path}: not an image file ({", ".join(photo_extensions())})')
        return [path], []
    if not osp.exists(path):
        raise FlareSRError(f'{path}: --input is neither an image file nor a folder')
    inputs, skipped = list_photos(path)
    return inputs, _skipped_lines(skipped)


def _some(names, count=3):
    return ', '.join(names[:count]) + (', ...' if len(names) > count else '')


def _skipped_lines(skipped):
    """``warning:`` lines for images no reader here decodes (one per format) and for broken links (``name -> target``:
    a photo whose file is gone, e.g. on a drive not mounted), one ``skipped ...`` line for the rest."""
    lines, formats = [], {}
    for name in skipped['unreadable']:
        formats.setdefault(unreadable_format(name), []).append(name)
    for kind, names in formats.items():
        lines.append(f'warning: skipped {len(names)} {kind} file{"s" * (len(names) > 1)} ({_some(names)}): '
                     'not readable here; convert to PNG or JPEG')
    broken = skipped['broken links']
    if broken:
        lines.append(f'warning: skipped {len(broken)} broken link{"s" * (len(broken) > 1)} ({_some(broken)}): '
                     'the file linked to does not exist')
    parts = []
    for key, one, many, why in (('sub-folders', 'sub-folder', 'sub-folders', 'not searched'),
                                ('not images', 'file that is not an image', 'files that are not images', ''),
                                ('hidden', 'hidden file', 'hidden files', '')):
        names = skipped[key]
        if names:
            parts.append(f'{len(names)} {one if len(names) == 1 else many} '
                         f'({why + ": " if why else ""}{_some(names)})')
    if parts:
        lines.append('skipped ' + ', '.join(parts))
    return lines


def check_inputs(inputs):
    """Every input read as far as it can be without decoding (``check_decodable``), before the first inference:
    whatever would stop the run at an image, after earlier outputs were written, stops it now, and so does an
    animated or multi-page image, whose frames but the first would be lost. One FlareSRError names every such file:
    its own line for one, ``N inputs cannot be read: <line>; <line>; ...`` for several."""
    problems = []
    for path in inputs:
        try:
            check_decodable(path)
        except FlareSRError as error:
            problems.append(str(error))
    if len(problems) == 1:
        raise FlareSRError(problems[0])
    if problems:
        raise FlareSRError(f'{len(problems)} inputs cannot be read: ' + '; '.join(problems))


def _file_id(path):
    status = os.stat(path)
    return status.st_dev, status.st_ino


def plan_outputs(inputs, output_dir, overwrite=False, flag='--output'):
    """[(input, output)], or a FlareSRError where an output would replace something the user had: two inputs
    mapping to one output; an output that is an input (compared after resolving symlinks, and by inode for
    hard links: an ``output_dir`` that is, or resolves into, the input folder is accepted only where no name
    collides); a folder where an output goes; an existing file that flare_sr did not write (``written_by_flare_sr``),
    unless ``overwrite``.
    ``flag`` names the option that gave ``output_dir`` (``--save-flare``) in the message."""
    resolved_dir = osp.realpath(output_dir)
    files = {_file_id(path): path for path in inputs}  # a symlink or hard link to an input has the input's id
    owners, plan = {}, []
    for path in inputs:
        target = osp.join(output_dir, submission_name(path))
        landing = osp.join(resolved_dir, submission_name(path))  # where the rename puts it
        if landing in owners:
            raise FlareSRError(f'{path}: its output {target} would overwrite the output of {owners[landing]}')
        owners[landing] = path
        victim = files.get(_file_id(landing)) if osp.exists(landing) else None
        if victim is not None:
            where = '' if resolved_dir == osp.abspath(output_dir) else f' ({flag} resolves to {resolved_dir})'
            raise FlareSRError(f'{path}: its output {target} is the input {victim}{where}, which it would replace; '
                               f'choose another {flag}')
        if osp.isdir(target):
            raise FlareSRError(f'{target}: is a folder where the output of {path} goes; move it away or choose '
                               f'another {flag}')
        if osp.lexists(target) and not overwrite and not written_by_flare_sr(target):
            raise FlareSRError(f'{target}: exists and was not written by flare_sr; move it away, choose another '
                               f'{flag}, or pass --overwrite to replace it')
        plan.append((path, target))
    return plan


def build_test_model(opt, source, tile=None, overlap=None, self_ensemble=False, precision=None):
    """A test-mode model from option dict ``opt`` (read from ``source``; datasets ignored), tile and
    precision overrides applied. The option checker's problems raise one FlareSRError; its warnings (a
    network without a checkpoint, an ignored key) are printed as ``warning:`` lines on stderr."""
    opt = dict(opt, datasets={})  # the train section stays: DeflareModel reads train.out_deflare, as test.py does
    checker = OptionChecker(is_train=False)
    problems = checker.check(opt)
    if problems:
        raise FlareSRError(f'{source}: ' + '; '.join(problems))
    for line in checker.warnings:  # e.g. no checkpoint: the net would be scored with random weights
        warn(f'{source}: {line}', rank=0)
    num_gpu = opt.get('num_gpu', 'auto')
    opt.update(is_train=False, dist=False, rank=0, world_size=1,
               num_gpu=torch.cuda.device_count() if num_gpu == 'auto' else num_gpu)
    for message in fit_to_hardware(opt, torch.cuda.device_count()):  # e.g. num_gpu: 8 from a GPU server
        warn(message, rank=0)
    tile_opt, flags = _apply_tile_flags(opt, tile, overlap, self_ensemble)
    if precision is not None:
        opt['val']['precision'] = precision
    check_tile(tile_opt, None, source, flags)  # values out of range: before any checkpoint loads
    model = build_model(opt)
    check_tile(tile_opt, model_size_multiple(model), source, flags)  # the networks' grid
    return model


def _apply_tile_flags(opt, tile, overlap, self_ensemble):
    """``opt['val']['tile']`` (a copy, set in ``opt``) with the command line's ``--tile``, ``--overlap`` and
    ``--self-ensemble`` applied, and ``{key: flag}`` of the values the flags gave (``check_tile`` names them so)."""
    opt['val'] = dict(opt.get('val') or {})
    tile_opt = opt['val']['tile'] = dict(opt['val'].get('tile') or {})
    given = {key: value for key, value in (('size', tile), ('overlap', overlap)) if value is not None}
    tile_opt.update(given)
    if self_ensemble:
        tile_opt['self_ensemble'] = True
    return tile_opt, {key: TILE_FLAGS[key] for key in given}


def check_tile(tile_opt, multiple, source, flags):
    """One FlareSRError for ``val.tile`` values that cannot run (``tile_problems``; ``multiple`` None: ranges only),
    before any image is read; it names ``source`` (the option file) unless command-line flags (``flags``:
    ``{key: flag}``) gave every value at fault."""
    at_fault = [key for key in TILE_MINIMUMS if tile_value_problem(key, tile_opt.get(key))]
    problems = tile_problems(tile_opt, None if at_fault else multiple, flags)
    if problems:
        at_fault = at_fault or ['size', 'overlap']  # the grid is about the two together
        raise FlareSRError(('' if set(at_fault) <= set(flags) else f'{source}: ') + '; '.join(problems))


def refuse_training_file(opt, option_file):
    """A FlareSRError for a training option file (one with ``datasets.train``) given where a trained model is run:
    its ``path.pretrain_network_*`` are the weights its training starts from (stage III's: stage II's), not those
    it trained, which would be run without a word."""
    if 'train' in (opt.get('datasets') or {}):
        raise FlareSRError(f'{option_file}: a training option file (datasets.train): its path.pretrain_network_* are '
                           'the weights its training starts from, not those it trained; give a test option file '
                           f"naming the trained checkpoint (e.g. experiments/{opt.get('name')}/models/"
                           'net_g_latest.pth)')


def build_inference_model(option_file, tile=None, overlap=None, self_ensemble=False, precision=None):
    """The test model of test option file ``option_file`` (CascadeModel, Pix2PixModel or HINetModel); a training
    file is refused (``refuse_training_file``)."""
    opt = load_option_file(option_file)
    refuse_training_file(opt, option_file)
    return build_test_model(opt, option_file, tile, overlap, self_ensemble, precision)


def build_onnx_predictor(option_file, onnx_path, tile=None, overlap=None, self_ensemble=False, precision=None):
    """An OnnxRuntimePredictor for ``onnx_path`` with ``option_file``'s val options (its networks are not built).
    ``precision``: infer.py's --precision (only fp32 reaches here), which replaces the file's ``val.precision``."""
    if not onnx_path:
        raise FlareSRError('--backend onnxruntime needs --onnx FILE (written by scripts/export_onnx.py)')
    if not osp.isfile(onnx_path):
        raise FlareSRError(f'{onnx_path}: --onnx ' + ('is a folder, not a file' if osp.isdir(onnx_path) else
                                                      'file not found'))
    full = load_option_file(option_file)
    refuse_training_file(full, option_file)
    opt = dict(full, datasets={}, path={})  # checkpoints are not loaded (nor needed), only compared with the export's
    if isinstance(full.get('cascade'), dict):
        opt['cascade'] = {key: value for key, value in full['cascade'].items()
                          if key not in ('main_ensemble', 'glow_ensemble')}
    if precision is not None:  # given on the command line: the file's val.precision is not said
        opt['val'] = dict(opt.get('val') or {}, precision=precision)
    problems = OptionChecker(is_train=False).check(opt)
    if problems:
        raise FlareSRError(f'{option_file}: ' + '; '.join(problems))
    if opt.get('model_type') == 'CascadeModel' and 'glow' in CascadeModel.enabled_roles(opt):
        raise FlareSRError(f'{option_file}: {NO_GLOW}; use --backend pytorch, or cascade.use_glow: false for the '
                           'tiled networks alone')
    tile_opt, flags = _apply_tile_flags(opt, tile, overlap, self_ensemble)
    check_tile(tile_opt, None, option_file, flags)
    gpu = torch.cuda.is_available() and opt.get('num_gpu', 'auto') != 0
    # compared with the file's records: the checked options (networks folded as the export's) with their checkpoints
    reference = dict(opt, path=full.get('path'), cascade=full.get('cascade'))
    predictor = OnnxRuntimePredictor(opt, onnx_path, device='cuda' if gpu else 'cpu', reference=reference)
    check_tile(tile_opt, predictor.size_multiple, option_file, flags)
    return predictor


def save_tile_preview(model, image_path, png_path):
    """The first input with the tile grid the model will use (colour = accumulated blend weight)."""
    image = read_image(image_path)
    tile = model.tile_options()
    multiple = getattr(model, 'size_multiple', None) or getattr(model.inference_net(), 'size_multiple', 1)
    tile_grid_preview(image.shape[0], image.shape[1], tile['tile_size'], tile['overlap'], multiple, image, png_path)
    print(f'tile grid of {image_path}: {png_path}')


def predict_files(model, plan, progress=True, flare_plan=None):
    """Restore every ``(input, output)`` of ``plan`` (from ``plan_outputs``) with ``model.predict``.

    Outputs keep the input's size, bit depth, grayscale or colour, alpha, colour profile and EXIF; one ``warning:``
    line names the metadata that no output carries (e.g. XMP). ``flare_plan`` (``{input: path}``, from
    ``plan_outputs`` on the ``--save-flare`` folder): each image's predicted flare layer (``model.flare_layer``,
    DeflareModel) is written there too, same size, bit depth and grayscale or colour. Returns (images, pixels,
    seconds).
    """
    if flare_plan and not getattr(model, 'predicts_flare', False):
        raise FlareSRError(f'--save-flare: {getattr(model, "model_type", type(model).__name__)} predicts no flare '
                           'layer (DeflareModel does)')
    start = time.time()
    pixels, not_carried = 0, {}
    for source, target in tqdm(plan, desc='infer', unit='image', disable=not progress):
        image, info = read_photo(source)
        lq = torch.from_numpy(image).permute(2, 0, 1)[None]
        out = model.predict(lq)[0].permute(1, 2, 0).numpy()
        assert out.shape == image.shape, (out.shape, image.shape)
        write_image(target, out, bit_depth=info['bit_depth'], alpha=info['alpha'], metadata=info['metadata'],
                    gray=info['gray'])
        if flare_plan:
            write_image(flare_plan[source], model.flare_layer[0].permute(1, 2, 0).numpy(), bit_depth=info['bit_depth'],
                        gray=info['gray'])
        pixels += image.shape[0] * image.shape[1]
        for what in info['not_carried']:
            not_carried.setdefault(what, []).append(osp.basename(source))
    if not_carried:
        warn('not carried to the PNG outputs (their ICC profile, gAMA/cHRM/sRGB and EXIF are): ' + '; '.join(
            f'{what} of {len(names)} input{"s" * (len(names) > 1)} ({_some(names)})'
            for what, names in not_carried.items()), rank=0)
    return len(plan), pixels, time.time() - start


def write_zip(zip_path, files):
    """Pack ``files`` flat (by file name) into ``zip_path`` atomically."""
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, arcname=osp.basename(path))
