"""pix2pix U-Net generator (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017).

Written for flare_sr; modules sit at the same ``nn.Sequential`` indices as ``UnetGenerator`` in
github.com/junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``), so its generator checkpoints
(keys ``model.model.1.model.3...``) load with ``strict=True`` and give the same outputs.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from flare_sr.utils.renamed import renamed_arguments

NORMS = ('batch', 'instance', 'none')


def make_norm(norm, channels):
    """Norm layer with the official semantics.

    batch: affine with running stats; instance: no affine, no running stats (so it has no state_dict
    entries); none: an Identity placeholder that keeps the Sequential indices (and thus the keys) unchanged.
    """
    if norm == 'batch':
        return nn.BatchNorm2d(channels)
    if norm == 'instance':
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def check_norm(norm, owner):
    if norm not in NORMS:
        raise ValueError(f'{owner}: norm must be one of {", ".join(NORMS)}, got {norm!r}')


class UNetSkipBlock(nn.Module):
    """One U-Net level: down 4x4/2 conv -> inner level -> up 4x4/2 transposed conv, with a skip concat.

    ``model`` holds, at the official indices:
      outermost: [conv, inner, ReLU, convT, Tanh]
      middle:    [LeakyReLU, conv, norm, inner, ReLU, convT, norm(, Dropout)]
      innermost: [LeakyReLU, conv, ReLU, convT, norm]   (no norm at the 1x1 bottleneck)
    Convs carry a bias only with instance norm, as officially: BatchNorm's shift makes it redundant, and
    the official 'none' keeps it off too (kept for checkpoint compatibility). Only the outermost
    transposed conv, which produces the image, always has one.
    The official block runs its first LeakyReLU in place, so its skip copy is LeakyReLU(x) rather than x;
    the parent's up path starts with a ReLU and ReLU(LeakyReLU(x)) == ReLU(x), so the plain skip used here
    gives identical outputs and gradients without relying on in-place side effects.
    """

    def __init__(self, outer_ch, inner_ch, outer_in=None, inner=None, norm='batch', use_dropout=False):
        super().__init__()
        self.outermost = outer_in is not None  # only the outermost level reads other channels than it returns
        innermost = inner is None
        use_bias = norm == 'instance'
        down_conv = nn.Conv2d(outer_in or outer_ch, inner_ch, 4, 2, 1, bias=use_bias)
        up_in = inner_ch if innermost else inner_ch * 2
        up_conv = nn.ConvTranspose2d(up_in, outer_ch, 4, 2, 1, bias=use_bias or self.outermost)
        if self.outermost:
            layers = [down_conv, inner, nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), up_conv, make_norm(norm, outer_ch)]
        else:
            layers = [nn.LeakyReLU(0.2), down_conv, make_norm(norm, inner_ch), inner,
                      nn.ReLU(), up_conv, make_norm(norm, outer_ch)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


@ARCH_REGISTRY.register()
@renamed_arguments(in_ch='num_in_ch', out_ch='num_out_ch', ngf='num_feat', input_nc='num_in_ch', output_nc='num_out_ch')
class Pix2PixUNet(nn.Module):
    """pix2pix ``UnetGenerator``: ``num_downs`` stride-2 levels, Tanh output in [-1, 1].

    Args:
        num_in_ch, num_out_ch: input and output channels.
        num_feat: filters of the outermost level (pix2pix's ``ngf``); inner levels have up to ``8 * num_feat``.
        num_downs: number of downsamplings (>= 5); 8 is ``unet_256`` (a 256x256 input reaches 1x1).
        norm: 'batch' | 'instance' | 'none'.
        use_dropout: Dropout(0.5) in the ``num_downs - 5`` innermost ``8 * num_feat`` levels.
        residual: false (classic pix2pix): the Tanh output IS the image. true: it is a correction added to
            the input, ``x + G(x)`` (not clamped: the model clamps the image, the losses see it whole); needs
            ``num_in_ch == num_out_ch``. A residual generator starts near the identity and only has to learn the
            flare, so flare-free regions survive even a short schedule. It adds no parameters: the same
            checkpoints load either way (strictly), so the switch must match how they were trained.

    Input and output are in [-1, 1] (Bx``num_in_ch``xHxW -> Bx``num_out_ch``xHxW). H and W must be multiples of
    ``size_multiple = 2**num_downs`` (every level halves them). The former names ``in_ch``, ``out_ch``, ``ngf``
    (and pix2pix's ``input_nc``, ``output_nc``) are read from option files with a deprecation note.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_downs=8, norm='batch', use_dropout=False,
                 residual=False):
        super().__init__()
        check_norm(norm, 'Pix2PixUNet')
        if num_downs < 5:
            raise ValueError(f'Pix2PixUNet: num_downs must be >= 5, got {num_downs}')
        if residual and num_in_ch != num_out_ch:
            raise ValueError(f'Pix2PixUNet: residual needs num_in_ch == num_out_ch, got {num_in_ch} and {num_out_ch}')
        self.residual = bool(residual)
        self.size_multiple = 2**num_downs
        block = UNetSkipBlock(num_feat * 8, num_feat * 8, norm=norm)
        for _ in range(num_downs - 5):
            block = UNetSkipBlock(num_feat * 8, num_feat * 8, inner=block, norm=norm, use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = UNetSkipBlock(num_feat * mult, num_feat * mult * 2, inner=block, norm=norm)
        self.model = UNetSkipBlock(num_out_ch, num_feat, outer_in=num_in_ch, inner=block, norm=norm)

    def forward(self, x):
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f'Pix2PixUNet needs H and W divisible by size_multiple={self.size_multiple}, '
                             f'got {height}x{width}; pad the input')
        out = self.model(x)
        return x + out if self.residual else out
