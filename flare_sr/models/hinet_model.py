"""HINetModel: the post model of stages II and III, trained on all of its outputs, validated on the last.

``network_g`` is any restoration net whose output is residual on the input: HINet returns ``[out_1, out_2]``
(the images of its two subnetworks), NAFNet (and most others) one tensor. The loss (``train.pixel_opt``: L1Loss,
CharbonnierLoss or PSNRLoss, plus ``train.fft_opt`` when set, both under ``train.saturation_mask`` when
set) is applied to each output and summed, as in HINet; a single output gives the plain loss, as in NAFNet.
``train.grad_clip`` clips the global gradient norm (HINet and the original solution used 0.01). Validation
and inference use the last output (the original solution scored HINet's subnetwork 1 by mistake).
"""
from collections import OrderedDict

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from flare_sr.models.flare_base import FlareBaseModel


def as_output_list(outputs):
    """A net's outputs as a list, last = final image: HINet's ``[out_1, out_2]`` as is, a tensor as ``[it]``."""
    return [outputs] if torch.is_tensor(outputs) else list(outputs)


def final_output(outputs):
    """The final image of a post net's outputs (HINet's subnetwork 2, or the one tensor NAFNet returns)."""
    return as_output_list(outputs)[-1]


@MODEL_REGISTRY.register()
class HINetModel(FlareBaseModel):
    """network_g: HINet (returns [out_1, out_2] of its two subnetworks, both residual on the input), NAFNet or
    another one-output net."""

    train_losses = ('pixel_opt',)  # the train.*_opt it applies (the option checker refuses others)
    networks = ('network_g',)  # the network_* it builds (the option checker warns about others)

    def forward_image(self, net, lq):
        return final_output(net(lq))

    def optimize_parameters(self, current_iter):
        with self.autocast():
            outputs = as_output_list(self.net_g(self.lq))
        keep = self.loss_keep_mask(self.lq, self.gt)
        losses = OrderedDict()
        for index, output in enumerate(outputs, start=1):
            suffix = f'_subnet{index}' if len(outputs) > 1 else ''  # HINet: one loss per subnetwork
            losses.update(self.reconstruction_losses(output.float(), self.gt, keep, suffix))
        self.output = outputs[-1].detach()
        if self.step_allowed(current_iter, losses):
            self.backward_and_step(sum(losses.values()), self.optimizer_g, self.net_g.parameters())
        log = OrderedDict((name, loss.detach()) for name, loss in losses.items())
        if len(outputs) > 1:  # per-kind sums over the subnetworks, as a one-output net logs them
            for kind in ('l_pix', 'l_fft'):
                parts = [loss for name, loss in log.items() if name.startswith(f'{kind}_subnet')]
                if parts:
                    log[kind] = sum(parts)
        self.log_dict = self.reduce_loss_dict(log)
