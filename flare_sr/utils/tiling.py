"""Full-resolution inference through overlapping tiles that blend without seams.

Why tiles: a 2448x3264 frame through HINet needs tens of GiB of activations. Only tiles ever go to
the device; the frame, its padded copy and two float32 accumulators stay on the CPU, so memory grows
with the image buffers and never with the network's activations over the frame.

Why this window: a cut makes the network zero-pad where the frame really continues, which corrupts
outputs up to the receptive-field radius from the cut. Each tile's weight is therefore 0 for the
outer quarter of the overlap at every side that touches another tile, rises as a raised cosine over
the middle half, and is 1 inside. Sides on the frame border keep weight 1 (nothing else covers
them). Outputs are divided by the accumulated weight, so the weights need not sum to one.

Why starts on multiples of ``multiple``: a stride-2 layer maps an input shift ``s`` to an output
shift ``s/2`` only when ``s`` is even; after ``n`` such layers the shift must divide by ``2**n``
(an arch's ``size_multiple``). Tiles cut on that grid see the same sampling lattice as the whole
frame, so a net without image-wide statistics (BatchNorm in eval) gives the whole-frame result
exactly when overlap/4 >= its receptive-field radius.
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import write_image
from flare_sr.utils.precision import autocast

# ``val.tile`` (and ``stage3_source.tile``) keys and their defaults; models read them through these.
# size None runs the whole frame; overlap in pixels; batch tiles per forward; self_ensemble x8 flips/rotations.
TILE_OPTIONS = {'size': None, 'overlap': 32, 'batch': 1, 'self_ensemble': False}


def pad_to_multiple(image, multiple):
    """Pad bottom/right of a 1xCxHxW tensor up to a multiple (reflect; replicate where too thin to reflect)."""
    height, width = image.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = 'reflect' if pad_h < height and pad_w < width else 'replicate'
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def _axis_tiles(length, tile, overlap, multiple):
    """(tile length, starts) along one axis, all on the ``multiple`` grid.

    Why not a fixed stride: with a coarse grid (256 for unet_256) rounding the stride down and pushing
    the last tile against the border can process 1.5-4x the frame's pixels. Instead take the fewest
    tiles of at most ``tile`` that still overlap by ``overlap``, shrink them to the shortest length
    that covers the axis, and spread them evenly, so the extra work stays near (count-1) * overlap.
    """
    if tile >= length:
        return length, [0]
    units, max_units = length // multiple, tile // multiple
    overlap_units = -(-overlap // multiple)
    if max_units <= overlap_units:
        raise FlareSRError(f'tile options: val.tile.size {tile} leaves no stride after val.tile.overlap {overlap} '
                           f'on the {multiple}-pixel grid; use a size of at least {(overlap_units + 1) * multiple}')
    for count in range(2, units + 1):
        for size in range(-(-units // count), max_units + 1):
            if size - -(-(units - size) // (count - 1)) >= overlap_units:
                return size * multiple, [index * (units - size) // (count - 1) * multiple for index in range(count)]
    raise AssertionError('unreachable: count == units always fits')


# the least each val.tile value may be (pixels, pixels, tiles per forward), as said in messages
TILE_MINIMUMS = {'size': ('> 0', 1), 'overlap': ('>= 0', 0), 'batch': ('>= 1', 1)}


def tile_value_problem(key, value, name=None, prefix='val.tile'):
    """``'<name> must be >= 0, got -5'`` for a tile size, overlap or batch below its least value, else None (other
    keys, ``None`` and values of another type: nothing to say here). ``prefix``: the option the tile values sit under
    (``val.tile``; ``stage3_source.tile`` for stage III's stage-I outputs); ``name``: what the value is called where a
    command-line flag such as ``--overlap`` gave it (default ``<prefix>.<key>``)."""
    if key not in TILE_MINIMUMS or not isinstance(value, int) or isinstance(value, bool):
        return None
    shown, least = TILE_MINIMUMS[key]
    if value >= least:
        return None
    hint = f' (leave {prefix}.size unset, ~, for the whole frame)' if key == 'size' else ''
    return f'{name or prefix + "." + key} must be {shown}, got {value}{hint}'


def tile_problems(tile, multiple=None, flags=None, prefix='val.tile'):
    """Lines for tile values (``{'size', 'overlap', 'batch'}`` under the option ``prefix``, ``TILE_OPTIONS``
    defaults) that cannot run: one per value out of range, else the problem of ``tile_size_problem`` on the networks'
    ``multiple``-pixel grid (None: not known yet, ranges only); [] when they run. A value None is the default.
    ``flags``: ``{key: flag}`` for values a command line gave (``{'overlap': '--overlap'}``), named so."""
    tile = dict(TILE_OPTIONS, **{key: value for key, value in (tile or {}).items() if value is not None})
    flags = flags or {}
    problems = [problem for key in TILE_MINIMUMS
                for problem in [tile_value_problem(key, tile.get(key), flags.get(key), prefix)] if problem]
    size, overlap = tile.get('size'), tile.get('overlap')
    if problems or multiple is None or not isinstance(size, int) or not isinstance(overlap, int):
        return problems
    grid = tile_size_problem(size, overlap, multiple)
    given = '/'.join(flags[key] for key in ('size', 'overlap') if key in flags)
    return [f'{prefix}{f" ({given})" if given else ""}: {grid}'] if grid else []


def tile_size_problem(tile_size, overlap, multiple):
    """Why ``tile_size`` / ``overlap`` cannot tile on the ``multiple``-pixel grid, with what works; None if they can.

    Checked at start-up, for any frame: tiles are ``tile_size`` rounded down to the grid, must be more
    than twice the overlap, and must leave a stride of one grid unit after it (see :func:`_axis_tiles`).
    ``tile_size`` >= 1 and ``overlap`` >= 0: :func:`tile_problems` says values out of range first.
    """
    tile = max(multiple, int(tile_size) // multiple * multiple)
    overlap_units = -(-overlap // multiple)
    if tile > 2 * overlap and tile // multiple > overlap_units:
        return None
    smallest = multiple * max(2 * overlap // multiple + 1, overlap_units + 1)
    largest_overlap = min((tile + 1) // 2 - 1, tile - multiple)
    return (f'size {tile_size} with overlap {overlap} cannot tile on the network\'s {multiple}-pixel grid (tiles are '
            f'multiples of {multiple}, more than twice the overlap, with a stride of at least {multiple} after it); '
            f'use size {smallest} or more, or overlap {largest_overlap}' + (' or less' if largest_overlap else ''))


def _axis_weight(tile, overlap, ramp_before, ramp_after):
    """1-D window: zero margin (overlap/4) at cut sides, raised-cosine ramp over overlap/2, flat centre."""
    weight = np.ones(tile, dtype=np.float32)
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len, dtype=np.float32) + 0.5) / max(ramp_len, 1))
    rising = np.concatenate([np.zeros(margin, np.float32), ramp]).astype(np.float32)
    if ramp_before:
        weight[:len(rising)] = rising
    if ramp_after:
        weight[tile - len(rising):] = np.minimum(weight[tile - len(rising):], rising[::-1])
    return weight


class TileLayout:
    """Where the tiles of one frame go and how each one is weighted."""

    def __init__(self, height, width, tile_size=None, overlap=32, multiple=1):
        self.height, self.width, self.multiple = height, width, multiple
        self.padded_h = height + (-height) % multiple
        self.padded_w = width + (-width) % multiple
        if tile_size is None:
            tile, self.overlap = max(self.padded_h, self.padded_w), 0
        else:
            problem = tile_value_problem('size', int(tile_size)) or tile_value_problem('overlap', int(overlap))
            if problem:  # before rounding: a size of 0 rounds up to one grid unit
                raise FlareSRError(f'tile options: {problem}')
            tile = max(multiple, int(tile_size) // multiple * multiple)
            overlap = int(overlap)
            if tile <= 2 * overlap:
                raise FlareSRError(
                    f'tile options: val.tile.size {tile_size} (rounded to {tile} for multiple {multiple}) must be '
                    f'more than twice val.tile.overlap {overlap}; use a larger size or a smaller overlap')
            self.overlap = overlap
        self.max_tile = tile  # the requested bound; tile_h/tile_w may be shorter (see _axis_tiles)
        self.tile_h, self.starts_y = _axis_tiles(self.padded_h, tile, self.overlap, multiple)
        self.tile_w, self.starts_x = _axis_tiles(self.padded_w, tile, self.overlap, multiple)

    @property
    def boxes(self):
        """(top, left) of every tile, row by row."""
        return [(top, left) for top in self.starts_y for left in self.starts_x]

    def __len__(self):
        return len(self.starts_y) * len(self.starts_x)

    def weight(self, top, left):
        """HxW window of the tile at (top, left); ramps only on sides shared with another tile."""
        wy = _axis_weight(self.tile_h, self.overlap, top > 0, top + self.tile_h < self.padded_h)
        wx = _axis_weight(self.tile_w, self.overlap, left > 0, left + self.tile_w < self.padded_w)
        return torch.from_numpy(np.outer(wy, wx))


_ENSEMBLE = [(rot, flip) for flip in (False, True) for rot in range(4)]


def _transform(batch, rot, flip):
    if flip:
        batch = batch.flip(-1)
    return torch.rot90(batch, rot, dims=(-2, -1))


def _untransform(batch, rot, flip):
    batch = torch.rot90(batch, -rot, dims=(-2, -1))
    return batch.flip(-1) if flip else batch


def _run(net_fn, batch, device, self_ensemble, precision='fp32'):
    """net_fn on one CPU batch of tiles (autocast at ``precision``); returns float32 CPU output.
    x8 flips/rotations when asked, averaged in float32."""
    batch = batch.to(device)

    def forward(tiles):
        with autocast(precision, device):
            return net_fn(tiles)

    if not self_ensemble:
        return forward(batch).float().cpu()
    total = None
    for rot, flip in _ENSEMBLE:
        out = _untransform(forward(_transform(batch, rot, flip)), rot, flip).float().cpu()
        total = out if total is None else total + out
    return total / len(_ENSEMBLE)


def _is_out_of_memory(error):
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def tiled_forward(net_fn, image, tile_size=None, overlap=32, batch=1, multiple=1, device='cpu',
                  self_ensemble=False, progress=False, precision='fp32'):
    """Apply ``net_fn`` to a 1x3xHxW CPU tensor tile by tile; returns the blended 1x3xHxW float32 CPU result.

    ``tile_size=None`` runs the whole frame padded to ``multiple``. Tiles go to ``device`` ``batch``
    at a time; everything frame-sized stays on the CPU. ``precision`` ('fp32', 'bf16', 'fp16',
    already resolved by ``flare_sr.utils.precision.resolve_precision``) is the autocast dtype of
    ``net_fn`` only: each tile's output is cast to float32 before it is weighted and accumulated.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f'tiled_forward expects a 1xCxHxW tensor, got shape {tuple(image.shape)}')
    problem = tile_value_problem('batch', int(batch))
    if problem:  # was taken as 1 without a word
        raise FlareSRError(f'tile options: {problem}')
    height, width = image.shape[-2:]
    layout = TileLayout(height, width, tile_size, overlap, multiple)
    padded = pad_to_multiple(image.float().cpu(), multiple)
    accum = None
    weight_sum = torch.zeros(1, 1, layout.padded_h, layout.padded_w, dtype=torch.float32)
    boxes = layout.boxes
    try:
        with torch.inference_mode(), tqdm(total=len(boxes), desc='tiles', unit='tile',
                                          disable=not progress, leave=False) as bar:
            for first in range(0, len(boxes), int(batch)):
                chunk = boxes[first:first + int(batch)]
                tiles = torch.cat([padded[..., t:t + layout.tile_h, l:l + layout.tile_w] for t, l in chunk])
                outputs = _run(net_fn, tiles, device, self_ensemble, precision)
                if accum is None:
                    accum = torch.zeros(1, outputs.shape[1], layout.padded_h, layout.padded_w, dtype=torch.float32)
                for (top, left), out in zip(chunk, outputs):
                    window = layout.weight(top, left)
                    accum[0, :, top:top + layout.tile_h, left:left + layout.tile_w] += out * window
                    weight_sum[0, 0, top:top + layout.tile_h, left:left + layout.tile_w] += window
                bar.update(len(chunk))
    except Exception as error:  # noqa: BLE001  (only memory exhaustion is rewritten; the rest re-raises)
        if not _is_out_of_memory(error):
            raise
        raise FlareSRError(
            f'tile size {layout.tile_h}x{layout.tile_w} (batch {batch}) does not fit in {device} memory; '
            + out_of_memory_advice(height, width, layout, overlap, multiple, batch)) from None
    return (accum / weight_sum)[..., :height, :width]


def _working_layout(height, width, tile, overlap, multiple, below):
    """TileLayout for (tile, overlap) if the tiler accepts it and its tiles are smaller than ``below``, else None."""
    try:
        layout = TileLayout(height, width, tile, overlap, multiple)
    except FlareSRError:
        return None
    return layout if max(layout.tile_h, layout.tile_w) < below else None


def out_of_memory_advice(height, width, layout, overlap, multiple, batch):
    """What to change after an out-of-memory error, checked against TileLayout for this frame, grid and overlap.

    Suggests a tile size the tiler accepts with the same overlap and whose tiles are smaller: the largest at
    most half the current tile side, else the smallest that works. Where none exists on the grid, it names a
    smaller tile with a lower overlap that does work. A batch above 1 is named first.
    """
    current = max(layout.tile_h, layout.tile_w)
    step = max(multiple, (current // 32) // multiple * multiple)
    working = [size for size in range(current - step, 0, -step)
               if _working_layout(height, width, size, overlap, multiple, current)]
    batch_hint = f'val.tile.batch 1 (now {batch}), or ' if int(batch) > 1 else ''
    if working:
        halved = [size for size in working if size <= current // 2]
        size = halved[0] if halved else working[-1]
        smaller = TileLayout(height, width, size, overlap, multiple)
        return (f'use {batch_hint}a smaller val.tile.size / --tile, e.g. {size} (tiles of {smaller.tile_h}x'
                f'{smaller.tile_w} on the {multiple}-pixel grid with overlap {overlap})')
    size = max(multiple, (current // 2) // multiple * multiple)
    for lower in sorted({overlap // 2, overlap // 4, overlap // 8, 0}, reverse=True):
        if lower < overlap and _working_layout(height, width, size, lower, multiple, current):
            return (f'use {batch_hint}a lower overlap: no tile smaller than {current} works on the {multiple}-pixel '
                    f'grid with overlap {overlap}; e.g. --tile {size} --overlap {lower} (val.tile.size / .overlap)'
                    + (' (no blending between tiles: seams may show)' if lower == 0 else ''))
    return f'use {batch_hint}a smaller image: no smaller tile works on the {multiple}-pixel grid'


def tile_grid_preview(height, width, tile_size, overlap=32, multiple=1, image=None, path=None):
    """Picture of the layout: each tile tints the frame with its own colour in proportion to its blend
    weight (so cross-fades show as smooth colour ramps, hard cuts as edges), tile borders drawn.

    Returns an HxWx3 uint8 RGB array; writes it as PNG when ``path`` is given.
    """
    layout = TileLayout(height, width, tile_size, overlap, multiple)
    palette = np.array([(255, 64, 64), (64, 255, 64), (64, 128, 255), (255, 255, 64), (255, 64, 255),
                        (64, 255, 255)], np.float32) / 255
    tint = np.zeros((layout.padded_h, layout.padded_w, 3), np.float32)
    weight_sum = np.zeros((layout.padded_h, layout.padded_w, 1), np.float32)
    for index, (top, left) in enumerate(layout.boxes):
        window = layout.weight(top, left).numpy()[..., None]
        tint[top:top + layout.tile_h, left:left + layout.tile_w] += window * palette[index % len(palette)]
        weight_sum[top:top + layout.tile_h, left:left + layout.tile_w] += window
    tint = (tint / weight_sum)[:height, :width]
    if image is None:
        base = np.full((height, width, 3), 0.5, np.float32)
    else:
        base = np.asarray(image, np.float32)[:height, :width]
    picture = np.clip(base * 0.5 + tint * 0.5, 0, 1)
    picture = np.ascontiguousarray((picture * 255).round().astype(np.uint8))
    for index, (top, left) in enumerate(layout.boxes):
        bottom = min(top + layout.tile_h, height) - 1
        right = min(left + layout.tile_w, width) - 1
        colour = tuple(int(c) for c in palette[index % len(palette)] * 255)
        cv2.rectangle(picture, (left, top), (right, bottom), colour, 1)
    if path is not None:
        write_image(path, picture)
    return picture


def receptive_radius(net_fn, size, channels=3):
    """Measured receptive-field radius of ``net_fn`` at the centre of a size x size input (autograd).

    Used by tests and docs to choose an overlap: exact tiling needs overlap // 4 >= this radius.
    """
    probe = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0)).requires_grad_()
    centre = size // 2
    out = net_fn(probe)
    out[0, :, centre, centre].sum().backward()
    rows, cols = torch.nonzero(probe.grad.abs().sum(dim=(0, 1)) > 0, as_tuple=True)
    return int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
