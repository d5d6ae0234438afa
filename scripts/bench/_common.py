"""Helpers shared by the bench scripts: tables, timing, machine name, peak memory, test images, and the eval
scripts' generated option files, logged flare_sr runs and in-process restoration.

Not a benchmark itself (no ``bench_`` prefix). The scripts put ``scripts/bench`` on sys.path through
Python's own rule (a script's folder comes first), so ``import _common`` works from any directory.
"""
import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

import cv2
import numpy as np
import torch
import yaml

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import to_uint8
from flare_sr.utils.options_check import load_option_file
from flare_sr.utils.precision import cpu_bf16_support
from flare_sr.utils.safe_yaml import plain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

# Natural photographs shipped with scikit-image (nothing is downloaded).
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'motorcycle_left.png', 'motorcycle_right.png',
          'rocket.jpg')


def size_text(text):
    """argparse ``type`` of the --size flags: ``text`` as given where it is ``HxW`` with positive whole numbers,
    else argparse's one-line error (a traceback later, at ``parse_size``, otherwise)."""
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not match or not int(match[1]) or not int(match[2]):
        raise argparse.ArgumentTypeError(f'{text!r} is not HEIGHTxWIDTH in pixels (e.g. 2448x3264)')
    return text


def parse_size(text):
    """'2448x3264' (a ``size_text``) -> (2448, 3264)."""
    height, width = (int(part) for part in text.lower().split('x'))
    return height, width


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def onnxruntime_version():
    try:
        import onnxruntime
    except ImportError:
        return 'not installed'
    return onnxruntime.__version__


def machine_name(device='cpu'):
    """Where a table was measured, for every bench's title: the CPU model and its cores, whether bf16 is
    native there (AMX-BF16 / AVX512-BF16) or emulated, torch's thread count, the torch and onnxruntime
    versions, and the GPU with its bf16 support on ``cuda``."""
    support = cpu_bf16_support()
    cpu = (f'{cpu_model()}, {os.cpu_count()} cores, bf16 {"native (" + support + ")" if support else "emulated"}, '
           f'{torch.get_num_threads()} threads')
    versions = f'torch {torch.__version__}, onnxruntime {onnxruntime_version()}'
    if str(device).startswith('cuda'):
        gpu_bf16 = 'bf16' if torch.cuda.is_bf16_supported() else 'no bf16'
        return f'{torch.cuda.get_device_name(0)} (GPU, {gpu_bf16}); host {cpu}; {versions}'
    return f'{cpu}; {versions}'


def synchronize(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(function, device='cpu'):
    """(result, seconds) of one call, with the device synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return result, time.perf_counter() - start


def peak_rss_mib():
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(argv, env=None):
    """Run ``python argv...`` in a fresh process (so its peak RSS is its own) and parse its last stdout line as JSON."""
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f'child {" ".join(argv)} failed (exit {result.returncode}):\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(title, header, rows, notes=()):
    """Markdown table (pastes into the README as is), with a title line above and notes below."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    print(f'\n{title}')
    for index, row in enumerate(cells):
        print('| ' + ' | '.join(cell.ljust(width) for cell, width in zip(row, widths)) + ' |')
        if index == 0:
            print('|' + '|'.join('-' * (width + 2) for width in widths) + '|')
    for note in notes:
        print(note)
    sys.stdout.flush()


def natural_pair(size, rng, photo_index=0):
    """(lq, gt) HxWx3 uint8 RGB pair that compresses like a real photo.

    gt: a scikit-image photograph upscaled (bicubic) to ``size`` plus mild sensor noise, so PNG size and
    decode cost resemble the challenge's camera images rather than flat synthetic colour. lq: gt plus a
    soft veiling glow around a random light source and its own noise, enough for a non-trivial PSNR.
    """
    import skimage.io
    from skimage import data as skdata

    height, width = size
    path = os.path.join(skdata.data_dir, PHOTOS[photo_index % len(PHOTOS)])
    photo = skimage.io.imread(path)
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    photo = photo[..., :3].astype(np.float32)
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    gt = cv2.resize(np.ascontiguousarray(photo), (width, height), interpolation=cv2.INTER_CUBIC)
    gt = np.clip(gt + rng.normal(0, 2.0, gt.shape), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    radius = 0.25 * min(height, width)
    glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))[..., None] * np.array(
        rng.uniform(60, 140, 3), np.float32)
    lq = np.clip(gt + glow + rng.normal(0, 2.0, gt.shape), 0, 255)
    return lq.round().astype(np.uint8), gt.round().astype(np.uint8)


def write_png_rgb(path, img_rgb_uint8):
    """Plain PNG write for throw-away benchmark data in a temp dir (cv2's default compression)."""
    if not cv2.imwrite(path, np.ascontiguousarray(img_rgb_uint8[..., ::-1])):
        raise OSError(f'could not write {path}')


def read_options(path):
    """An option file as plain dicts and lists (``yaml.safe_dump`` writes them back), read as flare_sr reads option
    files: a python tag or a key given twice is a FlareSRError naming the file and line, not silently taken."""
    return plain(load_option_file(path))


def write_options(folder, name, opt):
    """``opt`` as ``folder/name.yml`` (for train.py / test.py); returns the path."""
    path = os.path.join(folder, f'{name}.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(opt, handle, sort_keys=False)
    return path


def run(command, log_path):
    """Run a flare_sr command from the repository root; its output goes to ``log_path``; returns seconds."""
    start = time.perf_counter()
    with open(log_path, 'w') as log:
        result = subprocess.run([sys.executable, *command], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise FlareSRError(f'{" ".join(command)} failed (exit {result.returncode}); see {log_path}')
    return time.perf_counter() - start


def scale_schedule(train_opt, iters):
    """Set ``train.total_iter`` to ``iters`` and scale the scheduler's milestones / periods to it (in place)."""
    old = train_opt['total_iter']
    train_opt['total_iter'] = iters
    scheduler = train_opt['scheduler']
    if 'milestones' in scheduler:
        scheduler['milestones'] = [max(1, round(m * iters / old)) for m in scheduler['milestones']]
    if 'periods' in scheduler:
        scheduler['periods'] = [iters]


def restore(model, lq):
    """A test model's output for an HxWx3 uint8 input, as uint8 (what test.py writes): its ``predict``, so its
    ``val.tile`` and ``val.darken_only``."""
    tensor = torch.from_numpy(lq.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return to_uint8(model.predict(tensor)[0].permute(1, 2, 0).numpy())


def demo_script():
    """scripts/make_demo_dataset.py as a module (scripts/ is not a package): its photos, crops and flare-free share."""
    path = os.path.join(ROOT, 'scripts', 'make_demo_dataset.py')
    spec = importlib.util.spec_from_file_location('make_demo_dataset', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
