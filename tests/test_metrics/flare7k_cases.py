"""Constructed results, labels and Flare7K masks behind tests/data/flare7k_metric_reference.json.

Drawn with numpy's legacy ``RandomState`` (its streams are frozen across numpy versions), so the seed and this
file reproduce every pixel the reference numbers were computed on. Per case, three images:

- 0: soft glare disk, a streak band across it, a light-source disk, and a patch coloured [90, 140, 0]
  (green above red: Flare7K's uint8 ``R - G`` wraps to 206, a streak weight of 206/255);
- 1: glare and light source, no streak (left out of the S-PSNR average);
- 2: an all-black mask (no glare, no streak; Global-PSNR over the whole frame).
"""
import numpy as np

SEED = 18
CASES = {'512x512': (512, 512), '256x384': (256, 384)}  # name: (height, width)
GLARE, STREAK, SOURCE = (255, 255, 0), (255, 0, 0), (0, 0, 255)


def _soft_disk(height, width, center, radius, softness):
    """HxW alpha in [0, 1]: 1 inside ``radius``, a linear ramp ``softness`` pixels wide outside it."""
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - center[0], xx - center[1])
    return np.clip((radius + softness - distance) / softness, 0.0, 1.0)


def _paint(mask, alpha, colour):
    """Composite ``colour`` over ``mask`` (HxWx3 float) with ``alpha`` (HxW)."""
    return mask * (1 - alpha[..., None]) + np.asarray(colour, np.float64) * alpha[..., None]


def make_mask(height, width, rng, streak=True, empty=False):
    """HxWx3 uint8 RGB Flare7K-style mask (colours in the module docstring), soft edges included."""
    mask = np.zeros((height, width, 3))
    if empty:
        return mask.astype(np.uint8)
    center = (rng.randint(height // 3, 2 * height // 3), rng.randint(width // 3, 2 * width // 3))
    mask = _paint(mask, _soft_disk(height, width, center, height // 5, 6.0), GLARE)
    if streak:
        yy = np.arange(height)[:, None] - center[0]
        band = np.clip(1.0 - np.abs(yy) / (height / 40.0), 0.0, 1.0) * np.ones((1, width))
        mask = _paint(mask, band, STREAK)
        mask[8:8 + height // 16, 8:8 + width // 16] = (90, 140, 0)
    mask = _paint(mask, _soft_disk(height, width, center, height // 24, 3.0), SOURCE)
    return np.round(mask).astype(np.uint8)


def make_pair(height, width, rng):
    """(label, result): HxWx3 uint8, the result a label with a residual glow and noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi, 3)
    label = np.stack([128 + 60 * np.sin(xx / 17.0 + phase[c]) + 40 * np.cos(yy / 23.0 - phase[c]) for c in range(3)],
                     axis=2) + rng.normal(0, 8, (height, width, 3))
    glow = 90 * np.exp(-((yy - rng.uniform(0, height))**2 + (xx - rng.uniform(0, width))**2) / (2 * (height / 6)**2))
    result = label + glow[..., None] * rng.uniform(0.5, 1.0, 3) + rng.normal(0, 6, (height, width, 3))
    return (np.clip(np.round(label), 0, 255).astype(np.uint8), np.clip(np.round(result), 0, 255).astype(np.uint8))


def make_case(height, width, seed=SEED):
    """[(label, result, mask)] for the three images of the module docstring, HxWx3 uint8 RGB each."""
    rng = np.random.RandomState(seed)
    images = []
    for index in range(3):
        label, result = make_pair(height, width, rng)
        images.append((label, result, make_mask(height, width, rng, streak=index == 0, empty=index == 2)))
    return images


def make_lpips_weights(seed=SEED):
    """Stand-ins for the LPIPS-Alex weight files, ``(alexnet_state, lin_state)`` as torchvision's AlexNet
    (``features.<k>.weight|bias`` only) and LPIPS's ``alex.pth`` (``lin<k>.model.1.weight``, non-negative) hold
    them: He-scaled normal convolutions, so the reference exercises the whole network without ImageNet weights."""
    import torch  # only the LPIPS tests need it

    rng = np.random.RandomState(seed)
    alexnet_state, lin_state = {}, {}
    for layer, (cin, cout, k) in {0: (3, 64, 11), 3: (64, 192, 5), 6: (192, 384, 3), 8: (384, 256, 3),
                                  10: (256, 256, 3)}.items():
        weight = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        alexnet_state[f'features.{layer}.weight'] = torch.from_numpy(weight.astype(np.float32))
        alexnet_state[f'features.{layer}.bias'] = torch.from_numpy(rng.normal(0, 0.01, cout).astype(np.float32))
    for index, channels in enumerate((64, 192, 384, 256, 256)):
        weight = np.abs(rng.normal(0, 0.1, (1, channels, 1, 1)))
        lin_state[f'lin{index}.model.1.weight'] = torch.from_numpy(weight.astype(np.float32))
    return alexnet_state, lin_state
