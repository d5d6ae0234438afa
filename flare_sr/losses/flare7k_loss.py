"""Flare7K's losses under their registered names (ykdai/Flare7K ``basicsr/losses/flare_loss.py``), so its option
files' ``train.l1_opt: {type: L_Abs_pure}`` and ``train.perceptual: {type: L_percepture}`` build as written.

- ``L_Abs_pure``: ``loss_weight * mean|x - y|`` (an L1 loss; DeflareModel applies it to the image, the flare and the
  recombined input).
- ``L_percepture``: ``loss_weight * sum_i w_i * mean|phi_i(x) - phi_i(y)|`` over VGG19's ``conv1_2, conv2_2,
  conv3_2, conv4_2, conv5_2`` before their ReLU (features 2, 7, 12, 21, 30: Flare7K clones them before the in-place
  ReLU) with Flare7K's weights ``1/2.6, 1/4.8, 1/3.7, 1/5.6, 10/1.5``. As in Flare7K the [0, 1] images enter VGG
  without ImageNet mean/std normalisation: the weights were tuned that way. It needs torchvision's ImageNet VGG19
  weights (``vgg19-dcbb9e9d.pth``, 548 MB) from a local file, found by :func:`vgg19_weights_path`; nothing is
  downloaded.
"""
import os
from os import path as osp

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from flare_sr.errors import FlareSRError
from flare_sr.utils.checkpoint import load_weights_only

VGG19_FILE = 'vgg19-dcbb9e9d.pth'  # torchvision's ImageNet VGG19 (what Flare7K's ``vgg19(pretrained=True)`` loads)
VGG19_ENV = 'FLARE_SR_VGG19'  # environment variable naming that file
PERCEPTUAL_LAYERS = (2, 7, 12, 21, 30)  # indices in vgg19.features: conv1_2, conv2_2, conv3_2, conv4_2, conv5_2
PERCEPTUAL_WEIGHTS = (1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5)  # Flare7K's per-layer weights


def default_vgg19_path():
    """Where torchvision keeps its download (``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``): a Flare7K user who
    trained before already has the file there."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILE)


def vgg19_weights_path(vgg_path=None):
    """The VGG19 weights file to use: ``vgg_path`` (the option), else ``$FLARE_SR_VGG19``, else
    :func:`default_vgg19_path`. Returns ``(path, found)``; an explicitly given path that does not exist is a
    FlareSRError (a typo must not silently drop the loss)."""
    for given, where in ((vgg_path, 'train.perceptual.vgg_path'), (os.environ.get(VGG19_ENV), f'${VGG19_ENV}')):
        if given:
            path = osp.expanduser(str(given))
            if not osp.isfile(path):
                what = 'is a folder, not a file' if osp.isdir(path) else 'does not exist'
                raise FlareSRError(f'{where}: {given} {what} (torchvision\'s {VGG19_FILE})')
            return path, True
    path = default_vgg19_path()
    return path, osp.isfile(path)


def missing_vgg19_message():
    """The one line that says where the VGG19 weights go."""
    return (f'no VGG19 ImageNet weights: put torchvision\'s {VGG19_FILE} at {default_vgg19_path()}, or name the file '
            f'with train.perceptual.vgg_path or ${VGG19_ENV}')


def load_vgg19_features(path, depth=max(PERCEPTUAL_LAYERS) + 1):
    """``vgg19().features[:depth]`` with the weights of ``path`` (torchvision's state_dict, or one holding only its
    ``features.*`` keys), frozen and in eval mode. One FlareSRError for a file that is not VGG19's weights."""
    from torchvision.models import vgg19

    features = vgg19().features[:depth]
    state = load_weights_only(path)  # a pickled payload is named and refused, never run; unsafe loading never advised
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise FlareSRError(f'{path}: not a VGG19 state_dict (torchvision\'s {VGG19_FILE} expected)')
    wanted = {name.removeprefix('features.'): tensor for name, tensor in state.items() if name.startswith('features.')
              and int(name.split('.')[1]) < depth}
    try:
        features.load_state_dict(wanted, strict=True)
    except RuntimeError as error:
        raise FlareSRError(f'{path}: not VGG19\'s weights ({str(error).splitlines()[0]}); torchvision\'s {VGG19_FILE} '
                           'expected') from None
    features.requires_grad_(False)
    return features.eval()


@LOSS_REGISTRY.register()
class L_Abs_pure(nn.Module):  # noqa: N801  (Flare7K's registered name)
    """``loss_weight * mean(|x - target|)`` over every element; x, target any equal shapes."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, x, target):
        return self.loss_weight * torch.mean(torch.abs(x - target))


@LOSS_REGISTRY.register()
class L_percepture(nn.Module):  # noqa: N801  (Flare7K's registered name, spelling included)
    """Flare7K's VGG19 perceptual loss (see the module docstring) between two Bx3xHxW batches in [0, 1].

    ``vgg_path``: torchvision's ``vgg19-dcbb9e9d.pth``; when not given, ``$FLARE_SR_VGG19``, then torchvision's
    download folder (:func:`vgg19_weights_path`). Raises FlareSRError when no weights are found there (DeflareModel
    checks first and drops the term with one warning line instead).
    """

    def __init__(self, loss_weight=1.0, vgg_path=None):
        super().__init__()
        self.loss_weight = loss_weight
        path, found = vgg19_weights_path(vgg_path)
        if not found:
            raise FlareSRError(f'L_percepture: {missing_vgg19_message()}')
        self.vgg = load_vgg19_features(path)

    @staticmethod
    def check_options(opt, key_path):
        """Option-checker lines (before any run folder exists): a ``vgg_path`` or ``$FLARE_SR_VGG19`` naming no
        file. Weights missing from torchvision's folder are not a problem: DeflareModel drops the term with a
        warning."""
        try:
            vgg19_weights_path(opt.get('vgg_path'))
        except FlareSRError as error:
            return [str(error).replace('train.perceptual.', f'{key_path}.', 1)]
        return []

    def train(self, mode=True):
        super().train(mode)
        self.vgg.eval()  # frozen features: never in training mode
        return self

    def features(self, x):
        selected = []
        for index, layer in enumerate(self.vgg):
            x = layer(x)
            if index in PERCEPTUAL_LAYERS:
                selected.append(x.clone())  # the next layer is an in-place ReLU
        return selected

    def forward(self, source, target):
        loss = 0
        for weight, mine, theirs in zip(PERCEPTUAL_WEIGHTS, self.features(source), self.features(target)):
            loss = loss + weight * torch.mean(torch.abs(mine - theirs))
        return self.loss_weight * loss
