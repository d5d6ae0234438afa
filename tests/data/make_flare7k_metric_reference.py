"""Write flare7k_metric_reference.json by RUNNING Flare7K's own evaluate.py on the cases of flare7k_cases.py.

    python tests/data/make_flare7k_metric_reference.py /path/to/ykdai/Flare7K/evaluate.py

evaluate.py is imported from the path given (it is not part of this repository) with two stand-ins, both
printed into the JSON: ``lpips`` (not installed; its score is not referenced) and ``compare_ssim``, because
scikit-image 0.20 removed ``multichannel`` and later versions ignore it (the call then fails with "win_size
exceeds image extent"): ``multichannel=True`` is passed on as ``channel_axis=-1``, what scikit-image 0.19 did
with it. Everything else -- the folder loop, ``compare_score``, ``extract_mask``, ``compare_psnr``, the
averaging, the printed line -- is the official code, run on PNG folders written here.
"""
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import types

import numpy as np
import skimage
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from flare_sr.utils.img_util import write_image  # noqa: E402
from tests.test_metrics.flare7k_cases import CASES, SEED, make_case  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'flare7k_metric_reference.json')


def load_official(path):
    sys.modules['lpips'] = types.SimpleNamespace(LPIPS=lambda **kwargs: types.SimpleNamespace(cuda=lambda: None))
    spec = importlib.util.spec_from_file_location('flare7k_evaluate', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.compare_lpips = lambda img1, img2, loss_fn: 0.0

    def compare_ssim(img1, img2, multichannel=False, **kwargs):
        return structural_similarity(img1, img2, channel_axis=-1 if multichannel else None, **kwargs)

    module.compare_ssim = compare_ssim
    return module


def main(evaluate_path):
    official = load_official(evaluate_path)
    reference = {'source': 'ykdai/Flare7K evaluate.py', 'skimage': skimage.__version__, 'numpy': np.__version__,
                 'seed': SEED, 'generator': 'tests/test_metrics/flare7k_cases.py', 'cases': {}}
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
