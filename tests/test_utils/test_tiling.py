"""Tiled inference: exact where it can be, bounded seams where it cannot, exact sizes, tile-sized calls."""
import re

import numpy as np
import pytest
import torch
from torch import nn

from flare_sr.errors import FlareSRError
from flare_sr.utils.tiling import TileLayout, receptive_radius, tile_grid_preview, tiled_forward


def _photo(height, width):
    """A natural image (skimage's astronaut), tiled/cropped to the requested size, as 1x3xHxW in [0,1]."""
    from skimage import data
    photo = data.astronaut().astype(np.float32) / 255
    reps = (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1)
    photo = np.tile(photo, reps)[:height, :width]
    return torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None]


def _unet_eval():
    from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
    torch.manual_seed(0)
    net = Pix2PixUNet(3, 3, num_downs=5, num_feat=8, norm='batch', use_dropout=False)
    for module in net.modules():  # non-trivial running statistics, as after training
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_unet_tiles_equal_whole_frame_when_overlap_covers_receptive_field():
    """BatchNorm in eval has no image-wide statistics. Tiles start on the 2**num_downs grid, so each tile
    sees the whole frame's sampling lattice; the zero weight margin (overlap/4) hides every output that
    the cut's zero padding can reach (radius measured by autograd). Then tiled == whole within 1e-5."""
    net = _unet_eval()
    multiple = net.size_multiple
    assert multiple == 32
    radius = receptive_radius(net, 256)
    overlap = 4 * radius + (-4 * radius) % multiple
    image = _photo(901, 1111)
    whole = tiled_forward(net, image, None, multiple=multiple)
    layout = TileLayout(901, 1111, 2 * overlap + 64, overlap, multiple)
    assert len(layout) >= 4 and all(s % multiple == 0 for s in layout.starts_y + layout.starts_x)
    tiled = tiled_forward(net, image, 2 * overlap + 64, overlap, batch=2, multiple=multiple)
    assert tiled.shape == whole.shape == (1, 3, 901, 1111)
    assert (tiled - whole).abs().max().item() < 1e-5
    # The condition matters: a margin well inside the receptive field leaves visible differences.
    short = tiled_forward(net, image, 2 * overlap + 64, 16, multiple=multiple)
    assert (short - whole).abs().max().item() > 1e-4


def _seam_step(tiled, whole):
    """Largest row/column-averaged jump of (tiled - whole): a seam is a line where that difference steps."""
    diff = (tiled - whole)[0].mean(0)
    step_x = (diff[:, 1:] - diff[:, :-1]).abs().mean(0)
    step_y = (diff[1:] - diff[:-1]).abs().mean(1)
    return max(step_x.max().item(), step_y.max().item())


def test_hinet_seams_are_bounded():
    """HINet's instance norms see each tile's own statistics, so tiles cannot match the whole frame; the
    smooth window spreads the difference so no row/column steps. Measured (wf 8, depth 3, 320x448,
    tile 192): blended step 0.011, mean |diff| 0.004; abutting tiles step 0.033."""
    from flare_sr.archs.hinet_arch import HINet
    torch.manual_seed(0)
    net = HINet(in_chn=3, wf=8, depth=3).eval()
    image = _photo(320, 448)

    def net_fn(x):
        return net(x)[-1]

    multiple = net.size_multiple
    whole = tiled_forward(net_fn, image, None, multiple=multiple)
    blended = tiled_forward(net_fn, image, 192, 64, multiple=multiple)
    hard = tiled_forward(net_fn, image, 192, 0, multiple=multiple)  # abutting tiles, no blending
    assert blended.shape == (1, 3, 320, 448)
    assert (blended - whole).abs().mean().item() < 0.008
    assert _seam_step(blended, whole) < 0.02
    assert _seam_step(blended, whole) < 0.5 * _seam_step(hard, whole)


def test_odd_sizes_come_back_exactly_and_identity_is_preserved():
    image = torch.rand(1, 3, 1001, 1333, generator=torch.Generator().manual_seed(1))
    for tile, overlap, multiple in [(256, 32, 16), (512, 64, 32), (None, 0, 8)]:
        out = tiled_forward(lambda x: x, image, tile, overlap, batch=3, multiple=multiple)
        assert out.shape == image.shape
        assert torch.allclose(out, image, atol=1e-6)  # weights renormalise to exactly one everywhere
    small = torch.rand(1, 3, 1, 7)
    assert tiled_forward(lambda x: x * 2, small, 64, 8, multiple=4).shape == small.shape


def test_net_fn_only_ever_sees_tiles():
    seen = []

    def net_fn(x):
        seen.append(tuple(x.shape))
        assert x.device.type == 'cpu'
        return x

    image = torch.rand(1, 3, 700, 900)
    tiled_forward(net_fn, image, 256, 32, batch=4, multiple=16)
    assert seen and all(b <= 4 and h * w <= 256 * 256 for b, _, h, w in seen)
    assert sum(b for b, *_ in seen) == TileLayout(700, 900, 256, 32, 16).__len__()


def test_self_ensemble_averages_the_eight_flips_and_rotations():
    """A net that paints a fixed gradient is not flip-equivariant; its x8 ensemble must be symmetric."""
    def painter(x):
        ramp = torch.linspace(0, 1, x.shape[-1]).expand_as(x)
        return x * 0 + ramp

    image = torch.rand(1, 3, 64, 64)
    plain = tiled_forward(painter, image)
    ensemble = tiled_forward(painter, image, self_ensemble=True)
    assert not torch.allclose(plain, plain.flip(-1))
    assert torch.allclose(ensemble, ensemble.flip(-1), atol=1e-6)
    assert torch.allclose(ensemble, ensemble.transpose(-1, -2), atol=1e-6)
    assert torch.allclose(ensemble, torch.full_like(ensemble, 0.5), atol=1e-6)
    # Equivariant nets are unchanged by the ensemble (tiles, padding and all).
    odd = torch.rand(1, 3, 97, 131)
    assert torch.allclose(tiled_forward(lambda x: x.sqrt(), odd, 64, 16, multiple=8, self_ensemble=True),
                          odd.sqrt(), atol=1e-6)


def _memory_limited(max_pixels):
    """A net (identity) that runs out of memory, as torch does, when a batch holds more than ``max_pixels``."""
    def net(x):
        if x.shape[0] * x.shape[-2] * x.shape[-1] > max_pixels:
            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')
        return x
    return net


def _follow_advice(image, net, tile, overlap, batch, multiple):
    """Run the tiler, and after each out-of-memory error apply what the message suggests, as a user would."""
    messages = []
    for _ in range(8):
        try:
            return tiled_forward(net, image, tile, overlap, batch, multiple), messages
        except FlareSRError as error:
            message = str(error)
            messages.append(message)
            if 'val.tile.batch 1' in message:
                batch = 1
            suggested = re.search(r'e\.g\. (?:--tile )?(\d+)(?: --overlap (\d+))?', message)
            assert suggested, message
            TileLayout(*image.shape[-2:], int(suggested.group(1)), int(suggested.group(2) or overlap), multiple)
            tile, overlap = int(suggested.group(1)), int(suggested.group(2) or overlap)
    raise AssertionError(f'advice never converged: {messages}')


@pytest.mark.parametrize('size, tile, overlap, batch, multiple, max_pixels, expected', [
    ((1000, 1500), 1024, 64, 1, 256, 600 * 600, ['e.g. 512 (tiles of 512x512 on the 256-pixel grid with overlap 64)']),
    # the case: unet_256 at 512 with overlap 64 -- '256' is refused by the tiler, so lower the overlap
    ((1000, 1500), 512, 64, 1, 256, 300 * 300, ['lower overlap', 'e.g. --tile 256 --overlap 0']),
    ((600, 600), None, 32, 1, 16, 320 * 320, ['e.g. 304']),  # whole frame: the configured overlap applies
    ((300, 400), 100, 32, 2, 1, 80 * 80, ['val.tile.batch 1 (now 2)', 'e.g. 66']),  # half (49) is refused: 66 works
    ((200, 300), 100, 40, 1, 1, 85 * 85, ['e.g. 82']),  # half (50) is refused at overlap 40: smallest that works
])
def test_out_of_memory_advice_works_on_the_grid_when_followed(size, tile, overlap, batch, multiple, max_pixels,
                                                              expected):
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    out, messages = _follow_advice(image, _memory_limited(max_pixels), tile, overlap, batch, multiple)
    assert torch.allclose(out, image, atol=1e-6)
    assert messages and all('\n' not in message for message in messages)
    for part in expected:
        assert part in messages[0] or part in ' '.join(messages), messages


def test_out_of_memory_other_errors_and_bad_sizes_are_unchanged():
    with pytest.raises(RuntimeError, match='boom'):
        tiled_forward(lambda x: (_ for _ in ()).throw(RuntimeError('boom')), torch.rand(1, 3, 64, 64), 32, 8)
    with pytest.raises(FlareSRError, match='more than twice val.tile.overlap'):
        tiled_forward(lambda x: x, torch.rand(1, 3, 600, 600), 64, 32)


def test_grid_preview_png(tmp_path):
    from flare_sr.utils.img_util import read_image
    path = tmp_path / 'grid.png'
    picture = tile_grid_preview(333, 517, 128, 32, multiple=16, path=path)
    assert picture.shape == (333, 517, 3)
    assert read_image(path).shape == (333, 517, 3)


@pytest.mark.parametrize('tile, overlap, multiple, bound', [
    (2560, 64, 256, 0.08),   # unet_256 at full size: 2 tiles of 2560x1792
    (1280, 64, 64, 0.10),    # the tiny demo archs
    (512, 64, 256, 2.4),     # unet_256 with a 512 tile: the grid forces stride 256, like the sliding window
])
def test_tile_grid_covers_the_frame_on_the_grid_with_little_overlap_work(tile, overlap, multiple, bound):
    layout = TileLayout(2448, 3264, tile, overlap, multiple)
    covered = np.zeros((layout.padded_h, layout.padded_w), np.int32)
    for top, left in layout.boxes:
        assert top % multiple == 0 and left % multiple == 0
        covered[top:top + layout.tile_h, left:left + layout.tile_w] += 1
    assert covered.min() >= 1 and layout.tile_h <= tile and layout.tile_w <= tile
    for starts, size in ((layout.starts_y, layout.tile_h), (layout.starts_x, layout.tile_w)):
        assert all(size - (b - a) >= overlap for a, b in zip(starts, starts[1:]))  # neighbours overlap enough
    overhead = len(layout) * layout.tile_h * layout.tile_w / (layout.padded_h * layout.padded_w) - 1
    assert overhead <= bound


def test_tile_without_room_for_a_stride_names_the_smallest_size_that_works():
    with pytest.raises(FlareSRError, match='at least 512'):
        TileLayout(1000, 1000, 256, 64, 256)


@pytest.mark.parametrize('kwargs, message', [
    (dict(tile_size=64, overlap=-5), 'tile options: val.tile.overlap must be >= 0, got -5'),
    (dict(tile_size=0, overlap=32), 'tile options: val.tile.size must be > 0, got 0 (leave val.tile.size unset, ~, '
                                    'for the whole frame)'),
    (dict(tile_size=64, overlap=8, batch=0), 'tile options: val.tile.batch must be >= 1, got 0'),
])
def test_a_negative_overlap_a_size_or_batch_under_one_are_each_their_own_line(kwargs, message):
    """Not 'val.tile.size 512 ... must be more than twice val.tile.overlap -5' (a size of 0 rounded up to one grid
    unit first); a batch of 0 ran as 1 without a word."""
    with pytest.raises(FlareSRError) as error:
        tiled_forward(lambda x: x, torch.rand(1, 3, 80, 80), multiple=16, **kwargs)
    assert str(error.value) == message


def test_tile_problems_names_flags_and_checks_the_grid_only_when_ranges_hold():
    from flare_sr.utils.tiling import tile_problems

    assert tile_problems({'size': -1, 'overlap': -2, 'batch': 0}, 16, {'overlap': '--overlap'}) == [
        'val.tile.size must be > 0, got -1 (leave val.tile.size unset, ~, for the whole frame)',
        '--overlap must be >= 0, got -2', 'val.tile.batch must be >= 1, got 0']
    assert tile_problems({'size': 64, 'overlap': 40}) == []  # no grid known yet: ranges only
    assert tile_problems({'size': 64, 'overlap': 40}, 16, {'size': '--tile'})[0].startswith(
        'val.tile (--tile): size 64 with overlap 40 cannot tile on the network\'s 16-pixel grid')
    assert tile_problems({'size': None}, 16) == tile_problems({'size': 512, 'overlap': 0, 'batch': 4}, 32) == []
