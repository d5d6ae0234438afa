"""Write flare7k_blend_reference.pt by RUNNING Flare7K's own ``blend_light_source`` (flare_util.py) on drawn frames.

    python tests/data/make_flare7k_blend_reference.py /path/to/ykdai/Flare7K/basicsr/utils/flare_util.py

flare_util.py is loaded from the path given (it is not part of this repository) and run as it is, on the CPU, with
the threshold of Flare7K's test.py (0.97). Each case stores the input and the network output as uint8 (exact in
[0, 1] after / 255) and the official blend as float32.
"""
import importlib.util
import os
import sys
import warnings

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'flare7k_blend_reference.pt')
# (height, width, lights as (row, col, radius)): several lights (the largest sets the kernel), a speck the opening
# removes, a light on the border, a frame without light, non-square frames
CASES = [(32, 48, [(10, 12, 5), (22, 38, 3), (28, 6, 1)]), (41, 27, [(0, 13, 4)]), (24, 24, []),
         (40, 56, [(20, 30, 7), (6, 48, 2)])]


def draw(height, width, lights, rng):
    lq = rng.integers(0, 235, (3, height, width)).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    for row, col, radius in lights:
        inside = (yy - row)**2 + (xx - col)**2 <= radius**2
        lq[:, inside] = rng.integers(249, 256, (3, 1), dtype=np.uint8)  # mean above 0.97 * 255 = 247.35
    out = rng.integers(0, 256, (3, height, width)).astype(np.uint8)
    return lq, out


def main(flare_util_path):
    spec = importlib.util.spec_from_file_location('flare7k_flare_util', flare_util_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    cases = []
    for height, width, lights in CASES:
        lq, out = draw(height, width, lights, rng)
        with warnings.catch_warnings():  # scikit-image >= 0.26 deprecates binary_opening (same result)
            warnings.simplefilter('ignore')
            blend = module.blend_light_source(torch.from_numpy(lq)[None].float() / 255,
                                              torch.from_numpy(out)[None].float() / 255, 0.97)
        cases.append({'lq': torch.from_numpy(lq), 'out': torch.from_numpy(out), 'blend': blend[0].float()})
    torch.save({'threshold': 0.97, 'source': 'ykdai/Flare7K basicsr/utils/flare_util.py blend_light_source',
                'cases': cases}, OUT)
    print(f'wrote {OUT}: {len(cases)} cases')


if __name__ == '__main__':
    main(sys.argv[1])
