"""HINet (Chen et al., "HINet: Half Instance Normalization Network for Image Restoration", CVPRW 2021).

Written for flare_sr, but every module and parameter carries the name and shape of the official release
(github.com/megvii-model/HINet, ``basicsr/models/archs/hinet_arch.py``), so its published checkpoints
(weights under ``params``) load with ``strict=True`` and give the same outputs.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


class UNetConvBlock(nn.Module):
    """Two 3x3 convs with a 1x1 residual path, optionally with Half Instance Normalization (HIN).

    HIN normalises only the first half of the channels after ``conv_1``: the normalised half brings
    contrast/colour invariance, the untouched half keeps the context that full instance norm would erase.
    In subnetwork 2's encoder, ``csff_enc``/``csff_dec`` fuse subnetwork 1's encoder and decoder features
    (HINet's cross-stage feature fusion). ``downsample`` is a stride-2 4x4 conv; blocks that have one return
    ``(downsampled, full_resolution)`` so the full-resolution map can feed the skip connection.
    Activations, sums and (without autograd) HIN work in place where no backward needs the overwritten map: the
    same outputs bit for bit, with fewer full-size maps to allocate and page in (docs/benchmarks.md).
    """

    def __init__(self, in_size, out_size, downsample, relu_slope, use_csff=False, use_hin=False):
        super().__init__()
        self.identity = nn.Conv2d(in_size, out_size, 1, 1, 0)
        self.conv_1 = nn.Conv2d(in_size, out_size, 3, 1, 1)
        self.relu_1 = nn.LeakyReLU(relu_slope, inplace=True)
        self.conv_2 = nn.Conv2d(out_size, out_size, 3, 1, 1)
        self.relu_2 = nn.LeakyReLU(relu_slope, inplace=True)
        self.use_csff = downsample and use_csff
        if self.use_csff:
            self.csff_enc = nn.Conv2d(out_size, out_size, 3, 1, 1)
            self.csff_dec = nn.Conv2d(out_size, out_size, 3, 1, 1)
        self.use_hin = use_hin
        if use_hin:
            self.norm = nn.InstanceNorm2d(out_size // 2, affine=True)
        self.downsample = nn.Conv2d(out_size, out_size, 4, 2, 1, bias=False) if downsample else None

    def forward(self, x, enc=None, dec=None):
        out = self.conv_1(x)
        if self.use_hin:
            out = self.half_instance_norm(out)
        out = self.identity(x).add_(self.relu_2(self.conv_2(self.relu_1(out))))
        if self.use_csff:
            out = out.add_(self.csff_enc(enc)).add_(self.csff_dec(dec))
        if self.downsample is None:
            return out
        return self.downsample(out), out

    def half_instance_norm(self, out):
        """``out`` with its first half of channels instance-normalised. Without autograd the half is written back in
        place (no concatenated copy of the whole map); with it, the norm's input must stay as it was, and the ONNX
        tracer does not see a write into a view."""
        normalised_half, kept_half = torch.chunk(out, 2, dim=1)
        if torch.is_grad_enabled() or torch.jit.is_tracing():
            return torch.cat([self.norm(normalised_half), kept_half], dim=1)
        normalised_half.copy_(self.norm(normalised_half))
        return out


class UNetUpBlock(nn.Module):
    """2x transposed-conv upsampling, concatenation with the skip features, then a (HIN-free) conv block."""

    def __init__(self, in_size, out_size, relu_slope):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)
        self.conv_block = UNetConvBlock(in_size, out_size, downsample=False, relu_slope=relu_slope)

    def forward(self, x, bridge):
        return self.conv_block(torch.cat([self.up(x), bridge], dim=1))


class SAM(nn.Module):
    """Supervised Attention Module between the two subnetworks.

    It predicts subnetwork 1's image (residual on the input, so it can be supervised) and turns that image
    into a sigmoid attention map that gates the features handed to subnetwork 2.
    """

    def __init__(self, n_feat, img_channels=3, kernel_size=3):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(n_feat, n_feat, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(n_feat, img_channels, kernel_size, padding=padding)
        self.conv3 = nn.Conv2d(img_channels, n_feat, kernel_size, padding=padding)

    def forward(self, features, image):
        sub_image = self.conv2(features) + image
        attention = torch.sigmoid(self.conv3(sub_image))
        return self.conv1(features) * attention + features, sub_image


@ARCH_REGISTRY.register()
class HINet(nn.Module):
    """Two U-Net subnetworks with HIN blocks; ``forward`` returns ``[out_1, out_2]``, the images of subnetworks
    1 and 2 (the final one), both residual on the input.

    Args:
        in_chn: image channels (the official SAM hard-codes 3; here it follows ``in_chn``, which is
            identical for RGB and makes other channel counts work).
        wf: width of the first level; level ``i`` has ``wf * 2**i`` channels.
        depth: number of encoder levels; ``depth - 1`` of them downsample.
        relu_slope: LeakyReLU negative slope.
        hin_position_left, hin_position_right: encoder levels ``left..right`` (inclusive) use HIN.

    H and W must be multiples of ``2**(depth - 1)``. ``size_multiple`` is ``2**depth``, the padding
    multiple the flare_sr tiling contract asks of HINet (a safe superset of the strict requirement).
    """

    def __init__(self, in_chn=3, wf=64, depth=5, relu_slope=0.2, hin_position_left=0, hin_position_right=4):
        super().__init__()
        self.depth = depth
        self.size_multiple = 2**depth
        # Registration order follows the official module, so state_dict keys come in the same order too.
        self.down_path_1 = nn.ModuleList()
        self.down_path_2 = nn.ModuleList()
        self.conv_01 = nn.Conv2d(in_chn, wf, 3, 1, 1)
        self.conv_02 = nn.Conv2d(in_chn, wf, 3, 1, 1)
        prev_channels = wf
        for level in range(depth):
            use_hin = hin_position_left <= level <= hin_position_right
            downsample = level + 1 < depth
            channels = wf * 2**level
            self.down_path_1.append(UNetConvBlock(prev_channels, channels, downsample, relu_slope, use_hin=use_hin))
            self.down_path_2.append(
                UNetConvBlock(prev_channels, channels, downsample, relu_slope, use_csff=True, use_hin=use_hin))
            prev_channels = channels

        self.up_path_1 = nn.ModuleList()
        self.up_path_2 = nn.ModuleList()
        self.skip_conv_1 = nn.ModuleList()
        self.skip_conv_2 = nn.ModuleList()
        for level in reversed(range(depth - 1)):
            channels = wf * 2**level
            self.up_path_1.append(UNetUpBlock(prev_channels, channels, relu_slope))
            self.up_path_2.append(UNetUpBlock(prev_channels, channels, relu_slope))
            self.skip_conv_1.append(nn.Conv2d(channels, channels, 3, 1, 1))
            self.skip_conv_2.append(nn.Conv2d(channels, channels, 3, 1, 1))
            prev_channels = channels

        self.sam12 = SAM(wf, img_channels=in_chn)
        self.cat12 = nn.Conv2d(wf * 2, wf, 1, 1, 0)
        self.last = nn.Conv2d(wf, in_chn, 3, 1, 1)

    def forward(self, x):
        self._check_size(x)
        # Subnetwork 1: plain HIN U-Net; its encoder/decoder features are kept for subnetwork 2's fusion.
        feat = self.conv_01(x)
        encoder_feats = []
        for down in self.down_path_1[:-1]:
            feat, full_res = down(feat)
            encoder_feats.append(full_res)
        feat = self.down_path_1[-1](feat)
        decoder_feats = []
        for up, skip_conv, bridge in zip(self.up_path_1, self.skip_conv_1, reversed(encoder_feats)):
            feat = up(feat, skip_conv(bridge))
            decoder_feats.append(feat)
        sam_feat, out_1 = self.sam12(feat, x)

        # Subnetwork 2: starts from the SAM-gated features of subnetwork 1 and fuses its features per level.
        feat = self.cat12(torch.cat([self.conv_02(x), sam_feat], dim=1))
        sub2_feats = []
        for down, enc, dec in zip(self.down_path_2[:-1], encoder_feats, reversed(decoder_feats)):
            feat, full_res = down(feat, enc, dec)
            sub2_feats.append(full_res)
        feat = self.down_path_2[-1](feat)
        for up, skip_conv, bridge in zip(self.up_path_2, self.skip_conv_2, reversed(sub2_feats)):
            feat = up(feat, skip_conv(bridge))
        out_2 = self.last(feat) + x  # not in place: under autocast the sum is float32, as x
        return [out_1, out_2]

    def _check_size(self, x):
        """Fail with a readable message instead of a channel-concat shape error deep inside the net."""
        multiple = 2**(self.depth - 1)
        height, width = x.shape[-2:]
        if height % multiple or width % multiple:
            raise ValueError(f'HINet(depth={self.depth}) needs H and W divisible by {multiple}, got {height}x{width}; '
                             f'pad the input to a multiple of size_multiple={self.size_multiple}')
