"""LPIPS (AlexNet, v0.1) as Flare7K's evaluate.py computes it, from local weight files only.

The network is the ``lpips`` package's ``LPIPS(net='alex')`` (Zhang et al., CVPR 2018; richzhang/
PerceptualSimilarity): torchvision's AlexNet trunk up to ``relu5``, each of its five ReLU outputs normalised to
unit length over channels (eps 1e-10), squared differences weighted by a non-negative 1x1 convolution per
layer, averaged over space and summed. Inputs pass its scaling layer ``(x - shift) / scale``, shift
(-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450).

evaluate.py hands it ``ToTensor()`` images, in [0, 1], without ``normalize=True``, although LPIPS expects
[-1, 1]; this is reproduced (``flare7k_lpips``), so the numbers equal Flare7K's and not those of LPIPS on
[-1, 1] inputs. Weights, never downloaded:

- ``alexnet-owt-7be5be79.pth``: torchvision's ImageNet AlexNet (only ``features.*`` is read), by default where
  torchvision keeps its download (``<torch hub dir>/checkpoints``);
- ``alex.pth``: LPIPS v0.1's linear layers (``lin0.model.1.weight`` ... ``lin4``), by default the copy inside an
  installed ``lpips`` package (``lpips/weights/v0.1/alex.pth``).
"""
import importlib.util
from os import path as osp

import torch
from torch import nn
from torchvision.models import alexnet

from flare_sr.errors import FlareSRError
from flare_sr.utils.checkpoint import load_weights_only

ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'
LIN_FILE = 'alex.pth'
ALEXNET_URL = f'https://download.pytorch.org/models/{ALEXNET_FILE}'
LIN_SOURCE = 'github.com/richzhang/PerceptualSimilarity, lpips/weights/v0.1/alex.pth'
# the ReLU outputs LPIPS compares: features[0:2], [2:5], [5:8], [8:10], [10:12] of torchvision's AlexNet
SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
CHANNELS = (64, 192, 384, 256, 256)
# the smallest side whose features survive the trunk: conv1 (11, stride 4, pad 2) must leave 7 for two 3x3 stride-2
# max-pools to leave 1; below it torch stops with "Output size is too small" (the lpips package alike)
MIN_SIDE = 31


def default_weight_paths():
    """(AlexNet file under the torch hub dir, ``alex.pth`` of an installed ``lpips`` package or None)."""
    spec = importlib.util.find_spec('lpips')
    lin = None
    if spec is not None and spec.origin:
        lin = osp.join(osp.dirname(spec.origin), 'weights', 'v0.1', LIN_FILE)
    return osp.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE), lin


class ScalingLayer(nn.Module):
    """LPIPS v0.1's input scaling ``(x - shift) / scale``, per channel."""

    def __init__(self):
        super().__init__()
        self.register_buffer('shift', torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer('scale', torch.tensor([.458, .448, .450])[None, :, None, None])

    def forward(self, x):
        return (x - self.shift) / self.scale


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet trunk; ``forward`` returns the five ReLU outputs LPIPS compares."""

    def __init__(self):
        super().__init__()
        features = alexnet(weights=None).features
        self.slices = nn.ModuleList(features[start:end] for start, end in SLICES)  # keeps torchvision's indices

    def forward(self, x):
        outputs = []
        for block in self.slices:
            x = block(x)
            outputs.append(x)
        return outputs


class LPIPSAlex(nn.Module):
    """LPIPS v0.1, AlexNet. ``forward(x, y)``: Bx3xHxW tensors (H, W >= MIN_SIDE) -> B distances (0 = identical)."""

    def __init__(self):
        super().__init__()
        self.scaling = ScalingLayer()
        self.net = AlexNetFeatures()
        self.lins = nn.ModuleList(nn.Conv2d(channels, 1, 1, bias=False) for channels in CHANNELS)

    @staticmethod
    def _unit(features, eps=1e-10):
        return features / (torch.sqrt(torch.sum(features**2, dim=1, keepdim=True)) + eps)

    def forward(self, x, y):
        total = 0
        for lin, fx, fy in zip(self.lins, self.net(self.scaling(x)), self.net(self.scaling(y))):
            total = total + lin((self._unit(fx) - self._unit(fy))**2).mean(dim=(2, 3), keepdim=True)
        return total.flatten()

    def load_weights(self, alexnet_path, lin_path):
        """Load torchvision's AlexNet ``features.<k>.*`` and LPIPS's ``lin<k>.model.1.weight`` from the two files.

        Raises FlareSRError naming the file that is missing, unreadable or lacks a tensor of the right shape.
        """
        trunk, lin = load_weights_only(alexnet_path), load_weights_only(lin_path)
        state = self.state_dict()
        for key, expected in state.items():
            if key.startswith('net.'):  # net.slices.<slice>.<feature index>.<weight|bias>
                layer, name = key.split('.')[3:]
                path, file_key = alexnet_path, f'features.{layer}.{name}'
                value = _tensor(trunk, file_key, path, ALEXNET_FILE)
            elif key.startswith('lins.'):
                path, file_key = lin_path, f'lin{key.split(".")[1]}.model.1.weight'
                value = _tensor(lin, file_key, path, LIN_FILE)
            else:
                continue
            if value.shape != expected.shape:
                raise FlareSRError(f'{path}: {file_key} has shape {tuple(value.shape)}, LPIPS-Alex needs '
                                   f'{tuple(expected.shape)}')
            state[key] = value
        self.load_state_dict(state, strict=True)
        return self.eval()


def _tensor(state, key, path, expected_file):
    if not isinstance(state, dict) or not torch.is_tensor(state.get(key)):
        raise FlareSRError(f'{path}: no tensor {key}; is it {expected_file}?')
    return state[key].float()


def load_lpips_alex(alexnet_path=None, lin_path=None, device='cpu'):
    """LPIPSAlex with local weights (defaults: ``default_weight_paths``); one FlareSRError line saying where to put
    a missing file."""
    default_alexnet, default_lin = default_weight_paths()
    alexnet_path = osp.expanduser(alexnet_path or default_alexnet)
    lin_path = osp.expanduser(lin_path) if lin_path else default_lin
    if not osp.isfile(alexnet_path):
        raise FlareSRError(f'LPIPS needs torchvision\'s ImageNet AlexNet weights: put {ALEXNET_FILE} ({ALEXNET_URL}) '
                           f'at {alexnet_path} or pass --alexnet PATH (nothing is downloaded)')
    if lin_path is None or not osp.isfile(lin_path):
        raise FlareSRError(f'LPIPS needs its v0.1 linear weights {LIN_FILE} ({LIN_SOURCE}, also inside '
                           f'pip\'s lpips package): pass --lpips-lin PATH'
                           + (f' (not found: {lin_path})' if lin_path else ''))
    return LPIPSAlex().load_weights(alexnet_path, lin_path).to(device)


@torch.no_grad()
def flare7k_lpips(model, gt, result):
    """evaluate.py's ``compare_lpips``: the distance of two HxWx3 uint8 RGB images entered as [0, 1] tensors.

    Raises FlareSRError for a side under MIN_SIDE pixels.
    """
    if min(gt.shape[:2]) < MIN_SIDE:
        raise FlareSRError(f'LPIPS (AlexNet) needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels (its pooled '
                           f'features), got {gt.shape[1]}x{gt.shape[0]}')
    device = next(model.parameters()).device

    def to_tensor(img):
        return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float().div(255).to(device)

    return float(model(to_tensor(gt), to_tensor(result))[0])
