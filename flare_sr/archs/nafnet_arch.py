"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

Written for flare_sr, but every module and parameter carries the name, shape and registration order of the
official release (github.com/megvii-research/NAFNet, ``basicsr/models/archs/NAFNet_arch.py`` and
``LayerNorm2d`` in ``arch_util.py``), so its published checkpoints (weights under ``params``) load with
``strict=True`` and give the same outputs. ``NAFNetLocal`` (the GoPro checkpoints' test-time local
statistics) has the same weights; this file provides the plain net, which loads them too.

A "nonlinear activation free" U-Net: LayerNorm, 1x1 and 3x3 depthwise convs, a SimpleGate (one half of
the channels times the other) instead of an activation, a simplified channel attention, and learnable
per-channel residual scales ``beta``/``gamma`` that start at zero, so every block starts as the identity.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F


class LayerNormFunction(torch.autograd.Function):
    """LayerNorm over the channel axis of a BxCxHxW tensor, with a hand-written backward.

    Forward: ``y = (x - mean_c) / sqrt(var_c + eps)`` (biased variance), ``out = weight * y + bias``.
    Backward only needs ``y`` and ``var``: with ``g = grad * weight``,
    ``dx = (g - mean_c(g) - y * mean_c(g * y)) / sqrt(var + eps)``. Keeping just those two tensors
    instead of autograd's intermediates is why the official net has this function (less memory per block).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        y = (x - mean) / (var + eps).sqrt()
        ctx.eps = eps
        ctx.save_for_backward(y, var, weight)
        return weight.view(1, -1, 1, 1) * y + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_output):
        y, var, weight = ctx.saved_tensors
        g = grad_output * weight.view(1, -1, 1, 1)
        grad_x = (g - g.mean(1, keepdim=True) - y * (g * y).mean(1, keepdim=True)) / (var + ctx.eps).sqrt()
        grad_weight = (grad_output * y).sum(dim=(0, 2, 3))
        grad_bias = grad_output.sum(dim=(0, 2, 3))
        return grad_x, grad_weight, grad_bias, None


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm across channels (BxCxHxW in and out); ``weight`` and ``bias`` have C entries."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return LayerNormFunction.apply(x, self.weight, self.bias, self.eps)


class SimpleGate(nn.Module):
    """Bx2CxHxW -> BxCxHxW: the first half of the channels times the second (NAFNet's activation)."""

    def forward(self, x):
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """Two residual branches on ``c`` channels, each scaled by a zero-initialised per-channel factor.

    Spatial branch: LayerNorm -> 1x1 conv to ``c*dw_expand`` -> 3x3 depthwise conv -> SimpleGate ->
    simplified channel attention (global average pool, 1x1 conv, multiply) -> 1x1 conv back to ``c``;
    added as ``inp + beta * branch``. Channel branch: LayerNorm -> 1x1 conv to ``c*ffn_expand`` ->
    SimpleGate -> 1x1 conv; added as ``y + gamma * branch``. Shape is kept (BxcxHxW).
    """

    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.):  # noqa: N803 (official argument names)
        super().__init__()
        dw_channels = c * DW_Expand
        # Registration order as officially (state_dict keys come in the same order).
        self.conv1 = nn.Conv2d(c, dw_channels, 1)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, 3, padding=1, groups=dw_channels)
        self.conv3 = nn.Conv2d(dw_channels // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channels // 2, dw_channels // 2, 1))
        self.sg = SimpleGate()
        ffn_channels = c * FFN_Expand
        self.conv4 = nn.Conv2d(c, ffn_channels, 1)
        self.conv5 = nn.Conv2d(ffn_channels // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.dropout1(self.conv3(x * self.sca(x)))
        y = inp + x * self.beta
        x = self.dropout2(self.conv5(self.sg(self.conv4(self.norm2(y)))))
        return y + x * self.gamma


def nafblocks(channels, count):
    return nn.Sequential(*[NAFBlock(channels) for _ in range(count)])


@ARCH_REGISTRY.register()
class NAFNet(nn.Module):
    """U-Net of NAFBlocks; ``forward`` maps a BxCxHxW image to a BxCxHxW image, residual on the input.

    Args:
        img_channel: image channels C.
        width: channels of the first level; each downsampling (2x2 stride-2 conv) doubles them, each
            upsampling (1x1 conv + PixelShuffle(2)) halves them.
        middle_blk_num: NAFBlocks at the lowest resolution.
        enc_blk_nums, dec_blk_nums: NAFBlocks per encoder level (top first) and per decoder level (bottom
            first); equal lengths (one decoder level per encoder level), else ValueError. Examples:
            SIDD width 32 or 64 with ``[2, 2, 4, 8]``, 12, ``[2, 2, 2, 2]``; GoPro width 64 with
            ``[1, 1, 1, 28]``, 1, ``[1, 1, 1, 1]``.

    Any H and W work: like the official net, ``forward`` zero-pads bottom/right to a multiple of
    ``2**len(enc_blk_nums)`` and crops the result back. ``size_multiple`` is that multiple, so flare_sr's
    tiling (which pads by reflection) cuts tiles that need no internal padding.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=()):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            # The official net builds but fails in forward with a shape error (or skips levels).
            raise ValueError(f'NAFNet: enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} '
                             'need one entry per level each (the same length)')
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.ModuleList()  # replaced below; created here so its keys sit where the official ones do
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for count in enc_blk_nums:
            self.encoders.append(nafblocks(channels, count))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle_blks = nafblocks(channels, middle_blk_num)
        for count in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, channels * 2, 1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(nafblocks(channels, count))
        self.size_multiple = 2**len(self.encoders)

    def forward(self, inp):
        height, width = inp.shape[-2:]
        inp = F.pad(inp, (0, (-width) % self.size_multiple, 0, (-height) % self.size_multiple))
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        return (self.ending(x) + inp)[:, :, :height, :width]
