"""Write flare7k_metric_reference.json by RUNNING Flare7K's own evaluate.py on the cases of flare7k_cases.py.

    python tests/data/make_flare7k_metric_reference.py /path/to/ykdai/Flare7K/evaluate.py

Run it with the ``lpips`` package installed (0.1.4, in a separate venv: ``python -m venv
--system-site-packages /tmp/refenv && /tmp/refenv/bin/pip install lpips==0.1.4``). evaluate.py is imported from
the path given (it is not part of this repository) with three stand-ins:

- ``lpips.LPIPS(net='alex')`` is the package's own network built with ``pnet_rand=True`` and loaded with the
  stand-in weights of ``flare7k_cases.make_lpips_weights`` (no ImageNet download);
- ``Tensor.cuda`` / ``Module.cuda`` return the CPU object (no GPU here);
- ``compare_ssim``: scikit-image 0.20 removed ``multichannel`` and later versions ignore it (the call then fails
  with "win_size exceeds image extent"), so ``multichannel=True`` is passed on as ``channel_axis=-1``, what
  scikit-image 0.19 did with it.

Everything else -- the folder loop, ``compare_score``, ``extract_mask``, ``compare_psnr``, ``compare_lpips``, the
averaging, the printed lines -- is the official code, run on PNG folders written here.
"""
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import types

import lpips
import numpy as np
import skimage
import torch
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from flare_sr.utils.img_util import write_image  # noqa: E402
from tests.test_metrics.flare7k_cases import CASES, SEED, make_case, make_lpips_weights  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'flare7k_metric_reference.json')


def stand_in_lpips():
    """The lpips package's LPIPS-Alex with the stand-in weights, on the CPU."""
    net = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False)
    alexnet_state, lin_state = make_lpips_weights()
    slices = [net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4, net.net.slice5]
    for key, value in alexnet_state.items():
        layer, name = key.split('.')[1:]
        module = next(block for block in slices if layer in block._modules)._modules[layer]
        getattr(module, name).data.copy_(value)
    assert not net.load_state_dict(lin_state, strict=False).unexpected_keys
    net.eval()
    net.cuda = lambda *args, **kwargs: net
    return net


def load_official(path):
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    spec = importlib.util.spec_from_file_location('flare7k_evaluate', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = stand_in_lpips()
    module.lpips = types.SimpleNamespace(LPIPS=lambda **kwargs: net)
    module.loss_fn_stand_in = net

    def compare_ssim(img1, img2, multichannel=False, **kwargs):
        return structural_similarity(img1, img2, channel_axis=-1 if multichannel else None, **kwargs)

    module.compare_ssim = compare_ssim
    return module


def main(evaluate_path):
    official = load_official(evaluate_path)
    reference = {'source': 'ykdai/Flare7K evaluate.py', 'skimage': skimage.__version__, 'numpy': np.__version__,
                 'torch': torch.__version__, 'lpips': '0.1.4 (weights: make_lpips_weights)', 'seed': SEED,
                 'generator': 'tests/test_metrics/flare7k_cases.py', 'cases': {}}
    for name, (height, width) in CASES.items():
        with tempfile.TemporaryDirectory() as root:
            folders = {role: os.path.join(root, role) for role in ('input', 'gt', 'mask')}
            per_image = []
            for index, (label, result, mask) in enumerate(make_case(height, width)):
                for role, img in (('input', result), ('gt', label), ('mask', mask)):
                    write_image(os.path.join(folders[role], f'{role}_{index:06d}.png'), img)
                img_gt, img_input = official.io.imread(os.path.join(folders['gt'], f'gt_{index:06d}.png')), \
                    official.io.imread(os.path.join(folders['input'], f'input_{index:06d}.png'))
                img_seg = official.io.imread(os.path.join(folders['mask'], f'mask_{index:06d}.png'))
                assert (img_gt == label).all() and (img_input == result).all() and (img_seg == mask).all()
                regions = official.compare_score(img_gt, img_input, img_seg)
                per_image.append({'psnr': float(official.compare_psnr(img_gt, img_input, data_range=255)),
                                  'ssim': float(official.compare_ssim(img_gt, img_input, multichannel=True)),
                                  'lpips': float(official.compare_lpips(img_gt, img_input, official.loss_fn_stand_in)),
                                  **{key: float(regions[key]) if key in regions else None
                                     for key in ('glare', 'streak', 'global')}})
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                official.calculate_metrics({'input': folders['input'], 'gt': folders['gt'], 'mask': folders['mask']})
        reference['cases'][name] = {'height': height, 'width': width, 'per_image': per_image,
                                    'printed': printed.getvalue().strip().splitlines()}
    with open(OUT, 'w', encoding='utf-8') as handle:
        json.dump(reference, handle, indent=1)
        handle.write('\n')
    print(json.dumps(reference, indent=1))


if __name__ == '__main__':
    main(sys.argv[1])
