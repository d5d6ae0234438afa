"""DeflareModel: Flare7K/Flare7K++'s model (ykdai/Flare7K ``basicsr/models/deflare_model.py``) on flare_sr's
training guarantees (AMP, non-finite guard, atomic checkpoints, exact resume) and its tiled full-resolution
prediction.

The network predicts two layers from the flared input ``lq`` (Bx3xHxW in [0, 1]):

- 6 output channels (Flare7K++, Uformer ``output_ch: 6``): channels 0-2 the flare-free image (with its light sources
  in Flare7K++, whose targets keep them), channels 3-5 the flare layer;
- 3 output channels (``output_ch: 3``): the flare-free image; the flare is what it removed in linear light,
  ``(lq^g - image^g)^(1/g)`` clipped to [1e-7, 1] (Flare7K's ``predict_flare_from_3_channel`` with an empty mask).

Loss per iteration, as Flare7K (``train.l1_opt``, ``L_Abs_pure`` with ``loss_weight`` 0.5 in its files, so
``0.5 * (L1(flare) + L1(image) + 2 * L1(recombined))``):

    l1_flare  = l1_opt(flare, flare target)      l1_base = l1_opt(image, gt)
    l1_recons = 2 * l1_opt(recombine(image, flare, g), lq)        (6 channels only)
    l_vgg     = perceptual(image, gt) + perceptual(flare, flare target)          (``train.perceptual``, optional)

``recombine`` adds the two layers in linear light with each sample's gamma ``g`` (the dataset's ``gamma``, drawn in
U(1.8, 2.2) by Flare_Pair_Loader / Flare7kpp_Pair_Loader): ``clip(image^g + flare^g, 1e-7, 1)^(1/g)``. Layers are
clipped to [0, 1] before the power (Uformer's sigmoid output already is, so nothing changes there; another net's
negative outputs would make NaN). Trained on plain pairs (a dataset without ``flare``/``gamma``), the flare target is
``(lq^2.2 - gt^2.2)^(1/2.2)`` clipped to [0, 1], with g = 2.2 (the gamma of Flare7K's test scripts).

``train.perceptual``: Flare7K's ``L_percepture`` (VGG19, flare_sr/losses/flare7k_loss.py) or any registered loss.
``L_percepture`` without local VGG19 weights is dropped with one ``warning:`` line at start-up that says where to put
them; training goes on with the L1 terms.

``train.ema_decay`` (0.9 in Flare7K++): an EMA copy ``net_g_ema`` updated after every optimizer step; checkpoints
hold ``params`` and ``params_ema``, and validation, test and inference use the EMA copy (BasicSR's SRModel
semantics; a resume reloads both, so it stays exact).

Prediction (validation, test.py, infer.py) runs the net tile by tile over the whole frame (``val.tile``), keeps the
image channels as the output and the flare channels as ``flare_layer`` (saved when ``val.save_flare: true`` or
``infer.py --save-flare``). ``val.restore_light_source`` applies to the image; ``{method: flare7k}`` is Flare7K's
blend (flare_sr/utils/light_source.py). ``train.out_deflare`` (Flare7K++'s key, which its own code never reads)
is read as test.py's ``--flare7kpp``: true or absent, the image is the output as is; false (a Flare7K net that
removes the light with the flare), validation blends the light back with Flare7K's blend unless
``val.restore_light_source`` says otherwise. ``network_g.multi_stage`` is Flare7K's bookkeeping (always 1 in its
files): passed to the arch, which accepts it.
"""
from collections import OrderedDict
from os import path as osp

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.losses.flare7k_loss import missing_vgg19_message, vgg19_weights_path
from flare_sr.models.flare_base import FlareBaseModel
from flare_sr.utils.hardware import warn
from flare_sr.utils.img_util import write_image

PAIR_GAMMA = 2.2  # the gamma of Flare7K's test scripts; used where a dataset gives none (plain pairs, testing)
_FLOOR = 1e-7  # Flare7K clips linear sums to [1e-7, 1] before the inverse power (its gradient is infinite at 0)


def to_linear(image, gamma):
    """sRGB-like [0, 1] -> linear light: ``clip(image, 0, 1)^gamma``; ``gamma`` a number or a B-vector."""
    return image.clamp(0, 1).pow(_per_sample(gamma, image))


def to_display(linear, gamma):
    """Linear light -> [0, 1]: ``clip(linear, 1e-7, 1)^(1/gamma)``."""
    return linear.clamp(_FLOOR, 1).pow(1 / _per_sample(gamma, linear))


def _per_sample(gamma, image):
    if not torch.is_tensor(gamma):
        return float(gamma)
    return gamma.to(image.device, image.dtype).view(-1, *([1] * (image.dim() - 1)))


def recombine(image, flare, gamma):
    """The flared input the two layers make: their sum in linear light, back in [0, 1] (Bx3xHxW each)."""
    return to_display(to_linear(image, gamma) + to_linear(flare, gamma), gamma)


def removed_flare(lq, image, gamma):
    """The flare an image-only (3-channel) prediction implies: ``lq - image`` in linear light, in [1e-7, 1]."""
    return to_display(to_linear(lq, gamma) - to_linear(image, gamma), gamma)


@MODEL_REGISTRY.register()
class DeflareModel(FlareBaseModel):
    """network_g: a net with 6 (image, flare) or 3 (image) output channels, e.g. Uformer ``output_ch: 6``;
    train.l1_opt (L_Abs_pure), optional train.perceptual (L_percepture); see the module docstring."""

    train_losses = ('l1_opt',)  # the train.*_opt it applies (the option checker refuses others)
    optional_train_losses = ('perceptual',)  # Flare7K's key for its VGG term (not named *_opt)
    networks = ('network_g',)  # the network_* it builds (the option checker warns about others)
    predicts_flare = True  # predict keeps the flare channels: val.save_flare / infer.py --save-flare save them
    unapplied_train_options = ('saturation_mask',)  # FlareBaseModel's, which Flare7K's loss has no place for

    def __init__(self, opt):
        self.flare_layer = None  # the flare of the last predict (1x3xHxW CPU, [0, 1])
        super().__init__(opt)

    # ---------------------------------------------------------------- training
    def init_training_settings(self):
        """SRModel's EMA, the two Flare7K losses, optimizers and schedulers (SRModel's own would demand pixel_opt)."""
        self.setup_training_guards()
        self.net_g.train()
        self.ema_decay = self.train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            get_root_logger().info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
            self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:  # also how a resume restores it (BasicSR points this at net_g_<iter>.pth)
                self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()
            self.match_ema_layout()
        self.cri_l1 = build_loss(self.train_opt['l1_opt']).to(self.device)
        self.cri_perceptual = self._build_perceptual()
        self.setup_optimizers()
        self.setup_schedulers()

    def _build_perceptual(self):
        """``train.perceptual`` or None: absent, or L_percepture without VGG19 weights (one warning line)."""
        perceptual_opt = self.train_opt.get('perceptual')
        if not perceptual_opt:
            return None
        if perceptual_opt.get('type') == 'L_percepture' and not vgg19_weights_path(perceptual_opt.get('vgg_path'))[1]:
            warn(f'train.perceptual (L_percepture): {missing_vgg19_message()}; trained without the perceptual term',
                 rank=self.opt.get('rank', 0))
            return None
        return build_loss(perceptual_opt).to(self.device)

    def feed_data(self, data):
        super().feed_data(data)
        self.flare = self.to_device(data['flare']) if 'flare' in data else None
        self.gamma = data['gamma'].to(self.device) if 'gamma' in data else None

    def split_output(self, output, lq, gamma):
        """(image, flare) of a net output (6 or 3 channels); FlareSRError for any other channel count."""
        channels = output.shape[1]
        if channels == 6:
            return output[:, :3], output[:, 3:]
        if channels == 3:
            return output, removed_flare(lq, output, gamma)
        raise FlareSRError(f'network_g: DeflareModel needs 6 output channels (image, flare) or 3 (image), got '
                           f'{channels}; set network_g.output_ch (Uformer) to 6')

    def _targets(self):
        """(flare target, gamma): the dataset's, or from the pair in linear light at PAIR_GAMMA."""
        if self.flare is not None and self.gamma is not None:
            return self.flare, self.gamma
        return (to_linear(self.lq, PAIR_GAMMA) - to_linear(self.gt, PAIR_GAMMA)).clamp(0, 1).pow(1 / PAIR_GAMMA), \
            PAIR_GAMMA

    def _perceptual(self, output, target):
        value = self.cri_perceptual(output, target)
        if isinstance(value, (tuple, list)):  # BasicSR's PerceptualLoss returns (perceptual, style)
            value = sum(part for part in value if part is not None)
        return value.float()

    def optimize_parameters(self, current_iter):
        flare_target, gamma = self._targets()
        with self.autocast():
            output = self.net_g(self.lq)
        image, flare = self.split_output(output.float(), self.lq, gamma)
        losses = OrderedDict()
        losses['l1_flare'] = self.cri_l1(flare, flare_target)
        losses['l1_base'] = self.cri_l1(image, self.gt)
        if output.shape[1] == 6:
            losses['l1_recons'] = 2 * self.cri_l1(recombine(image, flare, gamma), self.lq)
        if self.cri_perceptual is not None:
            with self.autocast():
                losses['l_vgg_base'] = self._perceptual(image, self.gt)
                losses['l_vgg_flare'] = self._perceptual(flare, flare_target)
        self.output = image.detach()
        if self.step_allowed(current_iter, losses):
            self.backward_and_step(sum(losses.values()), self.optimizer_g, self.net_g.parameters())
        log = OrderedDict((name, loss.detach()) for name, loss in losses.items())
        log['l1'] = sum(value for name, value in log.items() if name.startswith('l1_'))
        if self.cri_perceptual is not None:
            log['l_vgg'] = log['l_vgg_base'] + log['l_vgg_flare']
        self.log_dict = self.reduce_loss_dict(log)

    # ---------------------------------------------------------------- prediction
    def forward_image(self, net, lq):
        return self.split_output(net(lq), lq, PAIR_GAMMA)[0]

    def forward_tiles(self, batch):
        """A batch of [0,1] tiles -> Bx6xhxw: the image (``val.darken_only`` applied) and the flare layer."""
        batch = self.to_device(batch)
        image, flare = self.split_output(self.inference_net()(batch), batch, PAIR_GAMMA)
        image = self.darken_only(batch, image)
        return torch.cat([image, flare], 1)

    @classmethod
    def light_source_setting(cls, opt):
        """``val.restore_light_source``; where it is not set and ``train.out_deflare`` is false, Flare7K's blend
        (``{'method': 'flare7k'}``). Applied to the image by the tiled ``predict``, which keeps the flare channels as
        ``flare_layer``; the ONNX Runtime predictor asks the same."""
        restore = super().light_source_setting(opt)
        if restore is None and (opt.get('train') or {}).get('out_deflare') is False:
            return {'method': 'flare7k'}
        return restore

    def _save_images(self, dataset_name, image_name, current_iter, output, panels, bit_depth=8, *more):
        """The mixin's images, plus the flare layer with ``val.save_flare: true``: ``<image>_<iter>_flare.png`` beside
        the output in training, ``<dataset>_flare/<image>.png`` in testing."""
        super()._save_images(dataset_name, image_name, current_iter, output, panels, bit_depth, *more)
        if not self.opt['val'].get('save_flare') or self.flare_layer is None:
            return
        root = self.opt['path']['visualization']
        if self.opt['is_train']:
            path = osp.join(root, dataset_name, image_name, f'{image_name}_{current_iter}_flare.png')
        else:
            suffix = self.opt['val'].get('suffix')
            path = osp.join(root, f'{dataset_name}_flare', f'{image_name}_{suffix}.png' if suffix else
                            f'{image_name}.png')
        write_image(path, self.flare_layer[0].permute(1, 2, 0).numpy() if bit_depth == 16 else
                    tensor2img(self.flare_layer, rgb2bgr=False), bit_depth=bit_depth)
