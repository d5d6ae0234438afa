"""Conditional PatchGAN discriminator (pix2pix ``NLayerDiscriminator``).

Written for flare_sr; modules sit at the same ``nn.Sequential`` indices as ``NLayerDiscriminator`` in
github.com/junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``), so official discriminator
checkpoints load with ``strict=True``.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from flare_sr.archs.pix2pix_unet_arch import check_norm, make_norm
from flare_sr.utils.renamed import renamed_arguments


def patch_layer(channels_in, channels_out, stride, norm, use_bias):
    """conv 4x4 -> norm -> LeakyReLU(0.2), the repeated unit of the discriminator."""
    return [nn.Conv2d(channels_in, channels_out, 4, stride, 1, bias=use_bias), make_norm(norm, channels_out),
            nn.LeakyReLU(0.2)]


@ARCH_REGISTRY.register()
@renamed_arguments(in_ch='num_in_ch', ndf='num_feat', n_layers='num_layers', input_nc='num_in_ch')
class PatchGANDiscriminator(nn.Module):
    """Classifies overlapping patches as real or fake and returns raw logits (one map per image).

    The conditional use feeds ``cat(input, output)``, hence ``num_in_ch=6``. Logits, not probabilities:
    BasicSR's GANLoss applies the sigmoid itself (vanilla, via BCEWithLogits) or wants raw scores (lsgan).
    ``num_layers`` stride-2 convs (the first without norm), then a stride-1 conv and a 1-channel stride-1
    conv; channels grow as ``num_feat * min(2**i, 8)`` (``num_feat``: pix2pix's ``ndf``). Convs carry a bias
    only with instance norm (the first and the last always), as officially. A 256x256 input gives a 30x30
    map for ``num_layers=3`` (70x70 receptive field) and 14x14 for ``num_layers=4``. The former names
    ``in_ch``, ``ndf``, ``n_layers`` (and pix2pix's ``input_nc``) are read from option files with a
    deprecation note.
    """

    def __init__(self, num_in_ch=6, num_feat=64, num_layers=3, norm='batch'):
        super().__init__()
        check_norm(norm, 'PatchGANDiscriminator')
        use_bias = norm == 'instance'
        layers = [nn.Conv2d(num_in_ch, num_feat, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels = num_feat
        for level in range(1, num_layers):
            next_channels = num_feat * min(2**level, 8)
            layers += patch_layer(channels, next_channels, 2, norm, use_bias)
            channels = next_channels
        next_channels = num_feat * min(2**num_layers, 8)
        layers += patch_layer(channels, next_channels, 1, norm, use_bias)
        layers.append(nn.Conv2d(next_channels, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
