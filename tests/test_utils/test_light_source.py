"""Light-source restore: saturated blobs come back from the input, with an edge that scales with the blob."""
import numpy as np
import torch

from flare_sr.utils.light_source import light_source_mask, restore_light_source, restore_light_source_tensor


def _scene():
    """Dark scene with two lamps (radius 4 and 16), a bright-but-unsaturated patch and a glare halo."""
    height, width = 160, 320
    yy, xx = np.mgrid[:height, :width]
    scene = np.full((height, width, 3), 0.2, np.float32)
    lamps = [(40, 40, 4), (90, 240, 16)]
    for cy, cx, radius in lamps:
        distance = np.hypot(yy - cy, xx - cx)
        scene += (0.6 * np.exp(-((distance / (4 * radius)) ** 2)))[..., None]  # glare
        scene[distance <= radius] = 1.0
    scene[130:150, 20:60] = 0.96  # bright wall, below the 0.97 threshold
    return np.clip(scene, 0, 1), lamps


def test_mask_covers_lamps_scaled_by_size_and_ignores_unsaturated():
    scene, lamps = _scene()
    mask = light_source_mask(scene, threshold=0.97)
    yy, xx = np.mgrid[:scene.shape[0], :scene.shape[1]]
    distances = [np.hypot(yy - cy, xx - cx) for cy, cx, _ in lamps]
    nearest = np.argmin(distances, axis=0)
    reaches = []
    for index, (_, _, radius) in enumerate(lamps):
        assert mask[distances[index] <= radius].min() == 1.0
        reaches.append(distances[index][(mask > 0.01) & (nearest == index)].max())
    # The edge grows with the blob: reach beyond the radius is 1.5x the diameter (up to sqrt 2 in corners).
    small_extra, big_extra = reaches[0] - lamps[0][2], reaches[1] - lamps[1][2]
    assert 8 < small_extra < 20 and 40 < big_extra < 70 and big_extra > 3 * small_extra
    assert mask[130:150, 20:60].max() == 0.0
    assert ((mask > 0) & (mask < 1)).sum() > 100  # soft edge, not a hard cut


def test_restore_puts_input_back_only_at_light_sources():
    scene, lamps = _scene()
    removed = scene * 0.5  # a net that (over)dims everything, lamps included
    restored = restore_light_source(scene, removed, threshold=0.97)
    yy, xx = np.mgrid[:scene.shape[0], :scene.shape[1]]
    for cy, cx, radius in lamps:
        inside = np.hypot(yy - cy, xx - cx) <= radius
        np.testing.assert_allclose(restored[inside], 1.0)
    np.testing.assert_allclose(restored[:10, 120:160], removed[:10, 120:160])  # far from lamps: the net's output
    np.testing.assert_allclose(restored[130:150, 20:60], removed[130:150, 20:60])
    tensor = restore_light_source_tensor(torch.from_numpy(scene).permute(2, 0, 1)[None],
                                         torch.from_numpy(removed).permute(2, 0, 1)[None])
    np.testing.assert_allclose(tensor[0].permute(1, 2, 0).numpy(), restored, atol=1e-6)


def test_nothing_saturated_changes_nothing():
    scene = np.random.default_rng(0).uniform(0, 0.9, (50, 70, 3)).astype(np.float32)
    output = scene[::-1].copy()
    np.testing.assert_array_equal(restore_light_source(scene, output), output)
