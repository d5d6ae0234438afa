"""Uformer (Wang et al., "Uformer: A General U-Shaped Transformer for Image Restoration", CVPR 2022), as Flare7K and
Flare7K++ (Dai et al., NeurIPS 2022 / TPAMI 2024) train it for flare removal.

Written for flare_sr, but every module and parameter carries the name, shape and registration order of the network
Flare7K registers as ``Uformer`` (github.com/ykdai/Flare7K, ``basicsr/archs/uformer_arch.py``), the misspelt
``dowsample_*`` and the ``relative_position_index`` buffers included, so the Flare7K++ checkpoint loads with
``strict=True`` and gives the same outputs.

A U-Net of window-attention transformer blocks ("LeWin" blocks): four encoder levels, a bottleneck and four decoder
levels, each of ``depths[i]`` blocks that alternate plain and shifted (by half a window) windows. Each level halves
(4x4 stride-2 conv) or doubles (2x2 transposed conv) the resolution; a decoder level takes the upsampled features
concatenated with the encoder's. A sigmoid ends it: outputs are in [0, 1], with no residual on the input.

What differs from the original, on purpose:
- Any frame size: features are kept as BxHxWxC, so H and W need not be equal (the original recovers the side as the
  square root of the token count; FlareReal600's variant passes sizes down instead, and this net gives its outputs);
  inputs are reflect-padded to ``size_multiple`` and the output cropped back.
- Unknown ``token_projection`` / ``token_mlp`` values are refused (the original silently builds ``linear`` / LeFF).
- Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` (same result within float rounding).
- ``forward`` takes no ``mask`` (Flare7K never passes one; see :class:`Uformer`).
"""
import math

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F
from torch.utils import checkpoint

from flare_sr.utils.tiling import pad_to_multiple

LEVELS = 5  # four encoder levels and the bottleneck; decoder level i runs at the resolution of encoder level 3 - i
SHIFT_MASK_VALUE = -100.0  # what the original adds to the logits of pairs that a cyclic shift brought together


def relative_position_index(window):
    """(window², window²) int64: for each pair of positions in a window, its row in the bias table.

    The table has ``(2*window - 1)**2`` rows, one per relative offset (dy, dx): row ``(dy+w-1)*(2w-1) + dx+w-1``.
    """
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing='ij')
    coords = torch.stack([rows.flatten(), cols.flatten()])
    offsets = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return offsets[0] * (2 * window - 1) + offsets[1]


def window_partition(x, window):
    """BxHxWxC -> (B * H/window * W/window) x window² x C, windows in row-major order per image."""
    # Sizes read from the tensor (not -1 or unflatten): an ONNX graph traced through here keeps H and W dynamic.
    batch, height, width, channels = x.shape
    rows, cols = height // window, width // window
    x = x.reshape(batch, rows, window, cols, window, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch * rows * cols, window * window, channels)


def window_merge(windows, window, height, width):
    """Inverse of :func:`window_partition`: (B * nW) x window² x C -> BxHxWxC."""
    rows, cols, channels = height // window, width // window, windows.shape[2]
    x = windows.reshape(-1, rows, cols, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shift_mask(height, width, window, shift, device):
    """nW x window² x window² additive mask for shifted windows: ``SHIFT_MASK_VALUE`` between positions that the cyclic
    shift brought from different regions of the frame, 0 elsewhere.

    After rolling by ``-shift``, the last ``window`` rows (and columns) of the frame hold three regions: up to
    ``-window``, from ``-window`` to ``-shift``, and the last ``shift`` (wrapped around); built from ``arange`` so an
    ONNX graph keeps H and W dynamic.
    """

    def regions(length):
        index = torch.arange(length, device=device)
        return (index >= length - window).long() + (index >= length - shift).long()

    ids = (regions(height)[:, None] * 3 + regions(width)[None, :])[None, :, :, None]
    ids = window_partition(ids, window).squeeze(-1)  # nW, window²
    return (ids[:, None, :] != ids[:, :, None]).float() * SHIFT_MASK_VALUE


class DropPath(nn.Module):
    """Stochastic depth: in training, zeroes a residual branch for a random ``rate`` of the samples and scales the
    others by ``1/(1 - rate)``; the identity in eval."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        keep = 1 - self.rate
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def split_heads(tokens, parts, heads):
    """B x N x (parts * C) -> parts x B x heads x N x C/heads (sizes read from the tensor: see window_partition)."""
    batch, count, channels = tokens.shape
    return tokens.reshape(batch, count, parts, heads, channels // (parts * heads)).permute(2, 0, 3, 1, 4)


class LinearProjection(nn.Module):
    """Queries, keys and values by linear maps (``to_q``, ``to_kv``); each B x heads x N x C/heads."""
    keys_per_token = 1

    def __init__(self, dim, heads, bias, window):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_kv = nn.Linear(dim, dim * 2, bias=bias)

    def forward(self, x):
        kv = split_heads(self.to_kv(x), 2, self.heads)
        return split_heads(self.to_q(x), 1, self.heads)[0], kv[0], kv[1]


class LinearConcatProjection(nn.Module):
    """The original's ``linear_concat``: ``to_qkv`` gives q and a first k, v; ``to_kv`` a second k, v, appended
    after the first (2N keys per window). Without a separate encoder input both read the same tokens."""
    keys_per_token = 2

    def __init__(self, dim, heads, bias, window):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, dim * 3, bias=bias)
        self.to_kv = nn.Linear(dim, dim * 2, bias=bias)

    def forward(self, x):
        qkv = split_heads(self.to_qkv(x), 3, self.heads)
        kv = split_heads(self.to_kv(x), 2, self.heads)
        return qkv[0], torch.cat([qkv[1], kv[0]], dim=2), torch.cat([qkv[2], kv[1]], dim=2)


class SepConv2d(nn.Module):
    """3x3 depthwise conv -> ReLU -> 1x1 conv (``depthwise``, ``pointwise``)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.act_layer = nn.ReLU()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.act_layer(self.depthwise(x)))


class ConvProjection(nn.Module):
    """The original's ``conv``: q, k and v each by a :class:`SepConv2d` over the window's square of tokens
    (zero-padded at the window's border). Its convs always have biases: the original hands ``qkv_bias`` to them as
    their dilation (True = 1), so false could never build."""
    keys_per_token = 1

    def __init__(self, dim, heads, bias, window):
        super().__init__()
        self.heads, self.window = heads, window
        self.to_q = SepConv2d(dim, dim)
        self.to_k = SepConv2d(dim, dim)
        self.to_v = SepConv2d(dim, dim)

    def forward(self, x):
        batch, count, channels = x.shape
        image = x.transpose(1, 2).reshape(batch, channels, self.window, self.window)

        def heads(conv):
            return conv(image).reshape(batch, self.heads, channels // self.heads, count).transpose(2, 3)

        return heads(self.to_q), heads(self.to_k), heads(self.to_v)


PROJECTIONS = {'linear': LinearProjection, 'conv': ConvProjection, 'linear_concat': LinearConcatProjection}


class SELayer(nn.Module):
    """Squeeze-and-excitation over the tokens of a window: mean -> Linear(C, C/16) -> ReLU -> Linear -> sigmoid,
    multiplied into every token (``fc.0``, ``fc.2``, no biases)."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean(dim=1, keepdim=True))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside square windows, with a learned bias per relative offset and head.

    ``forward`` maps (B*nW) x window² x dim to the same shape; ``mask`` (nW x window² x window², or None) is added to
    the logits of every image's windows in order.
    """

    def __init__(self, dim, window, num_heads, token_projection, qkv_bias, qk_scale, attn_drop, proj_drop, se_layer):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads)**-0.5  # as the original: a qk_scale of 0 means the default
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1)**2, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(window))
        self.qkv = PROJECTIONS[token_projection](dim, num_heads, qkv_bias, window)
        self.proj = nn.Linear(dim, dim)
        self.se_layer = SELayer(dim) if se_layer else nn.Identity()
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)

    def spread_keys(self, bias):
        """``bias`` (... x N x N) for the projection's keys: with 2N keys (``linear_concat``) the original repeats
        each column in place (``repeat(... '(c d)')``), so key j gets the bias of position j // 2."""
        ratio = self.qkv.keys_per_token
        return bias.repeat_interleave(ratio, dim=-1) if ratio > 1 else bias

    def attention_macs(self, x):
        """Multiply-accumulates of the two attention products (q k^T and weights x v) on windows ``x``; the
        projections are Linear or conv layers, which a conv/linear count already sees."""
        windows, tokens, channels = x.shape
        return 2 * windows * tokens * tokens * self.qkv.keys_per_token * channels

    def forward(self, x, mask=None):
        q, k, v = self.qkv(x)
        tokens = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = self.spread_keys(bias.reshape(tokens, tokens, self.num_heads).permute(2, 0, 1))  # heads, N, keys
        if mask is not None:
            bias = bias + self.spread_keys(mask)[:, None]  # nW, heads, N, keys
            q, k, v = (t.reshape(-1, mask.shape[0], *t.shape[1:]) for t in (q, k, v))  # B, nW, heads, N, d
        # q scaled first, as the original: SDPA's own scaling (of q and k by its square root) rounds differently.
        out = F.scaled_dot_product_attention(q * self.scale, k, v, attn_mask=bias.to(q.dtype),
                                             dropout_p=self.attn_drop if self.training else 0., scale=1.)
        out = out.transpose(-3, -2).reshape(x.shape)  # heads side by side again
        return self.proj_drop(self.se_layer(self.proj(out)))


class Mlp(nn.Module):
    """Feed-forward ``ffn``: Linear -> GELU -> dropout -> Linear -> dropout, per token (``fc1``, ``fc2``)."""

    def __init__(self, dim, hidden_dim, drop):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LeFF(nn.Module):
    """Locally-enhanced feed-forward ``leff``: Linear -> GELU -> 3x3 depthwise conv over the whole level -> GELU ->
    Linear (``linear1.0``, ``dwconv.0``, ``linear2.0``). No dropout, as the original."""

    def __init__(self, dim, hidden_dim, drop):
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))

    def forward(self, x):  # BxHxWxC
        x = self.linear1(x)
        return self.linear2(self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


FEED_FORWARDS = {'ffn': Mlp, 'leff': LeFF}


class LeWinBlock(nn.Module):
    """One transformer block on BxHxWxC features (shape kept): ``x + attn(norm1(x))`` in (shifted) windows, then
    ``x + mlp(norm2(x))``; both branches through stochastic depth. H and W must be multiples of ``window``."""

    def __init__(self, dim, num_heads, window, shift, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path,
                 norm_layer, token_projection, token_mlp, se_layer):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, window, num_heads, token_projection, qkv_bias, qk_scale, attn_drop, drop,
                                    se_layer)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = FEED_FORWARDS[token_mlp](dim, int(dim * mlp_ratio), drop)

    def forward(self, x, mask=None):
        height, width = x.shape[1:3]
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_merge(self.attn(window_partition(y, self.window), mask), self.window, height, width)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class UformerLevel(nn.Module):
    """``depth`` LeWin blocks at one resolution (the original's BasicUformerLayer); odd blocks shift by ``shift``
    when it is not 0. ``use_checkpoint`` recomputes each block's activations in the backward pass (less memory)."""

    def __init__(self, depth, drop_paths, window, shift, use_checkpoint, **block_args):
        super().__init__()
        self.window, self.shift, self.use_checkpoint = window, shift, use_checkpoint
        self.blocks = nn.ModuleList([
            LeWinBlock(window=window, shift=shift if index % 2 else 0, drop_path=drop_paths[index], **block_args)
            for index in range(depth)
        ])

    def forward(self, x):
        mask = None
        if self.shift and len(self.blocks) > 1:
            mask = shift_mask(x.shape[1], x.shape[2], self.window, self.shift, x.device)
        for block in self.blocks:
            block_mask = mask if block.shift else None
            if self.use_checkpoint and torch.is_grad_enabled():
                x = checkpoint.checkpoint(block, x, block_mask, use_reentrant=False)
            else:
                x = block(x, block_mask)
        return x


class Downsample(nn.Module):
    """BxHxWxC -> BxH/2xW/2xC_out by a 4x4 stride-2 conv (``conv.0``); H and W even."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channel, out_channel, kernel_size=4, stride=2, padding=1))

    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Upsample(nn.Module):
    """BxHxWxC -> Bx2Hx2WxC_out by a 2x2 stride-2 transposed conv (``deconv.0``)."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.deconv = nn.Sequential(nn.ConvTranspose2d(in_channel, out_channel, kernel_size=2, stride=2))

    def forward(self, x):
        return self.deconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class InputProj(nn.Module):
    """BxCxHxW image -> BxHxWxembed_dim features: 3x3 conv and LeakyReLU(0.01) (``proj.0``)."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channel, out_channel, 3, padding=1), nn.LeakyReLU(inplace=True))

    def forward(self, x):
        return self.proj(x).permute(0, 2, 3, 1)


class OutputProj(nn.Module):
    """BxHxWx(2*embed_dim) features -> BxC_outxHxW by a 3x3 conv (``proj.0``)."""

    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channel, out_channel, 3, padding=1))

    def forward(self, x):
        return self.proj(x.permute(0, 3, 1, 2))


def level_window(side, win_size):
    """(window, shift) of a level whose side is ``side`` px, by the original's rule: at most ``win_size`` gets
    windows of that side and no shift; more gets ``win_size`` windows shifted by ``win_size // 2`` in odd blocks."""
    return (win_size, win_size // 2) if side > win_size else (side, 0)


def describe(window, shift):
    """'8x8 windows shifted by 4' / 'without shift', for the img_size warning."""
    return f'{window}x{window} windows ' + (f'shifted by {shift}' if shift else 'without shift')


def level_windows(img_size, win_size):
    """[(window, shift) per level 0..4] as the original fixes them at build time from ``img_size``."""
    return [level_window(img_size // 2**level, win_size) for level in range(LEVELS)]


def drop_path_rates(depths, rate):
    """Stochastic-depth rate of every block, per level (encoder 0-3, bottleneck, decoder 0-3), as the original:
    linear from 0 to ``rate`` over the encoder blocks, ``rate`` in the bottleneck, the encoder's rates reversed in
    the decoder. ValueError where the decoder has more blocks than the encoder (the original fails on an index)."""
    encoder_total = sum(depths[:4])
    encoder = torch.linspace(0, rate, encoder_total, dtype=torch.float32, device='cpu').tolist()
    if sum(depths[5:]) > encoder_total:
        raise ValueError(f'Uformer: depths {list(depths)}: the decoder levels (last four) have more blocks than the '
                         'encoder levels (first four), whose stochastic-depth rates they reuse in reverse')
    decoder = encoder[::-1]
    rates = [encoder[sum(depths[:level]):sum(depths[:level + 1])] for level in range(4)]
    rates.append([rate] * depths[4])
    rates += [decoder[sum(depths[5:5 + level]):sum(depths[5:6 + level])] for level in range(4)]
    return rates


@ARCH_REGISTRY.register()
class Uformer(nn.Module):
    """Uformer as Flare7K registers it; ``forward`` maps a BxCxHxW image to BxC_outxHxW in [0, 1] (sigmoid).

    Flare7K++ builds ``Uformer(img_size=512, img_ch=3, output_ch=6)`` (20,473,888 parameters, 308 state_dict
    keys): channels 0-2 the flare-free image, 3-5 the flare.

    Args:
        img_size: the side the network is built for. It only decides, per level, the window and the shift (see
            :func:`level_windows`): with ``win_size`` 8, any ``img_size`` above 128 shifts at every level (the 512
            of Flare7K++), the default 128 not in the bottleneck, smaller ones also shrink windows (which changes
            ``relative_position_bias_table`` shapes). Frames of any size run; see ``window_mismatch``.
        img_ch, output_ch: input and output channels.
        embed_dim: channels of level 0; level i has ``embed_dim * 2**i`` (the bottleneck 16x), the decoder levels
            twice their encoder's (concatenated skip).
        depths: blocks per level, 9 entries: encoder 0-3, bottleneck, decoder 0-3 (bottom up).
        num_heads: attention heads per level, 9 entries; each divides its level's channels.
        win_size: attention window side.
        mlp_ratio: feed-forward hidden width over the level's channels.
        qkv_bias: biases in the linear q/k/v projections.
        qk_scale: logits scale; None (or 0) for ``head_dim ** -0.5``.
        drop_rate: dropout after the input projection, the attention output and in the ``ffn``.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: largest stochastic-depth rate (see :func:`drop_path_rates`).
        norm_layer: norm class for the blocks, called with the channel count (``nn.LayerNorm``).
        patch_norm: accepted and unused, as in the original.
        use_checkpoint: gradient checkpointing of every block (training memory for compute).
        token_projection: ``linear`` (Flare7K), ``conv`` or ``linear_concat``.
        token_mlp: ``ffn`` (Flare7K) or ``leff``. (Uformer's own ``fastleff`` is another module Flare7K lacks.)
        se_layer: squeeze-and-excitation after each attention.
        dowsample, upsample: level-changing block classes, called as ``cls(in_channels, out_channels)`` and applied
            to BxHxWxC features (the original's spelling ``dowsample`` is kept: it is the option's name).
        multi_stage: accepted and ignored, as the original's ``**kwargs`` swallow it (Flare7K's option files set
            ``multi_stage: 1``; no Uformer of theirs reads it).

    Raises ValueError for a ``token_projection`` / ``token_mlp`` outside those above, ``conv`` with ``qkv_bias``
    false (see :class:`ConvProjection`), ``depths`` or ``num_heads``
    without 9 entries, heads that do not divide their level's channels, or an ``img_size`` below 16.

    Any H and W work: ``forward`` reflect-pads bottom/right to ``size_multiple`` (the least common multiple of
    ``2**level * window`` over the levels: 128 for Flare7K++) and crops back; flare_sr's tiling cuts tiles on that
    grid, so they need no internal padding. Not ported: the original ``forward``'s ``mask`` argument (an attention
    mask no Flare7K code passes).
    """

    def __init__(self, img_size=128, img_ch=3, output_ch=3, embed_dim=32, depths=(2, 2, 2, 2, 2, 2, 2, 2, 2),
                 num_heads=(1, 2, 4, 8, 16, 16, 8, 4, 2), win_size=8, mlp_ratio=4., qkv_bias=True, qk_scale=None,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0.1, norm_layer=nn.LayerNorm, patch_norm=True,
                 use_checkpoint=False, token_projection='linear', token_mlp='ffn', se_layer=False,
                 dowsample=Downsample, upsample=Upsample, multi_stage=None):
        super().__init__()
        if token_projection not in PROJECTIONS:
            raise ValueError(f'Uformer: token_projection must be one of {", ".join(PROJECTIONS)}, '
                             f'got {token_projection!r}')
        if token_mlp not in FEED_FORWARDS:
            raise ValueError(f'Uformer: token_mlp must be one of {", ".join(FEED_FORWARDS)}, got {token_mlp!r}')
        if token_projection == 'conv' and not qkv_bias:
            raise ValueError('Uformer: token_projection conv always has biases: the original passes qkv_bias to its '
                             'convs as their dilation, so qkv_bias false cannot build there; leave qkv_bias true')
        if len(depths) != 2 * LEVELS - 1 or len(num_heads) != 2 * LEVELS - 1:
            raise ValueError(f'Uformer: depths {list(depths)} and num_heads {list(num_heads)} need 9 entries each '
                             '(encoder levels 0-3, bottleneck, decoder levels 0-3)')
        for name, value in (('win_size', win_size), ('embed_dim', embed_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'Uformer: {name} {value!r}: expected a positive integer')
        if img_size < 2**(LEVELS - 1):
            raise ValueError(f'Uformer: img_size {img_size} leaves the bottleneck no pixel; use at least 16')
        self.img_size, self.win_size = img_size, win_size
        self.windows = level_windows(img_size, win_size)
        self.size_multiple = math.lcm(*(2**level * window for level, (window, _) in enumerate(self.windows)))
        self._warned_sizes = set()
        dims = [embed_dim * 2**level for level in range(LEVELS)]
        level_dims = dims + [2 * dims[3 - index] for index in range(4)]
        level_resolutions = list(range(LEVELS)) + [3 - index for index in range(4)]
        for index, (dim, heads) in enumerate(zip(level_dims, num_heads)):
            if dim % heads:
                raise ValueError(f'Uformer: num_heads[{index}] = {heads} does not divide that level\'s {dim} channels '
                                 f'(embed_dim {embed_dim})')
        rates = drop_path_rates(depths, drop_path_rate)
        block_args = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                          attn_drop=attn_drop_rate, norm_layer=norm_layer, token_projection=token_projection,
                          token_mlp=token_mlp, se_layer=se_layer)

        def level(index):
            window, shift = self.windows[level_resolutions[index]]
            return UformerLevel(depths[index], rates[index], window, shift, use_checkpoint, dim=level_dims[index],
                                num_heads=num_heads[index], **block_args)

        self.pos_drop = nn.Dropout(drop_rate)
        self.input_proj = InputProj(img_ch, embed_dim)
        self.output_proj = OutputProj(2 * embed_dim, output_ch)
        # Attribute names and creation order are the original's: they are the state_dict's keys and their order.
        for index in range(4):
            setattr(self, f'encoderlayer_{index}', level(index))
            setattr(self, f'dowsample_{index}', dowsample(dims[index], dims[index + 1]))
        self.conv = level(4)
        for index in range(4):
            setattr(self, f'upsample_{index}', upsample(level_dims[4 + index], dims[3 - index]))
            setattr(self, f'decoderlayer_{index}', level(5 + index))
        self.activation = nn.Sequential(nn.Sigmoid())
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        """The original's initialisation: truncated normal (std 0.02) Linear weights, zero biases, unit LayerNorms;
        convolutions keep PyTorch's defaults."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def fits_windows(self, side):
        """Whether a (padded) short side of ``side`` px meets, at every level, the window and shift ``img_size`` fixed
        (what a Uformer built with ``img_size=side`` would use)."""
        return all(level_window(side // 2**level, self.win_size) == self.windows[level] for level in range(LEVELS))

    def window_mismatch(self, height, width):
        """The one-line warning for a (padded) ``height`` x ``width`` input whose levels are not what ``img_size``
        built the windows for, or None.

        The original fixes each level's window and shift from ``img_size`` (:func:`level_windows`) and keeps them for
        any input, so the same weights give other outputs than in a build for the input's size wherever a level of
        the input is at most ``win_size`` px on its short side and the build's is not, or the reverse. No parameter
        changes with the shift, so neither the checkpoint nor its loading can tell: the input is where it shows.
        """
        side = min(height, width)
        if self.fits_windows(side):
            return None
        level = next(level for level in range(LEVELS)
                     if level_window(side // 2**level, self.win_size) != self.windows[level])
        fitting = [n * self.size_multiple for n in range(1, 65) if self.fits_windows(n * self.size_multiple)]
        advice = ''
        if fitting:
            more = ' or more' if fitting[-1] == 64 * self.size_multiple else ''
            advice = f'; inputs (or val.tile.size tiles) of {fitting[0]} px{more} per side keep the build\'s'
        return (f'Uformer: this {height}x{width} input has {side // 2**level} px at level {level}, where img_size '
                f'{self.img_size} fixed {describe(*self.windows[level])} and a build for the input\'s size would use '
                f'{describe(*level_window(side // 2**level, self.win_size))}: outputs differ from that build{advice}')

    def forward(self, x):
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.size_multiple)
        if not torch.jit.is_tracing() and x.shape[-2:] not in self._warned_sizes:
            self._warned_sizes.add(x.shape[-2:])
            warning = self.window_mismatch(*x.shape[-2:])
            if warning:
                get_root_logger().warning(warning)
        y = self.pos_drop(self.input_proj(x))
        skips = []
        for index in range(4):
            y = getattr(self, f'encoderlayer_{index}')(y)
            skips.append(y)
            y = getattr(self, f'dowsample_{index}')(y)
        y = self.conv(y)
        for index in range(4):
            y = torch.cat([getattr(self, f"upsample_{index}")(y), skips[3 - index]], dim=3)  # BxHxWxC: channels
            y = getattr(self, f'decoderlayer_{index}')(y)
        return self.activation(self.output_proj(y))[:, :, :height, :width]
