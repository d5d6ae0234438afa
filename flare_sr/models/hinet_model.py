"""HINetModel: stages II and III, HINet trained on both of its outputs, validated on the final one.

The loss (``train.pixel_opt``: L1Loss, CharbonnierLoss or PSNRLoss) is applied to stage 1 and to
stage 2 and summed, as in HINet. ``train.grad_clip`` clips the global gradient norm (HINet and the
original solution used 0.01). Validation and inference use stage 2 (the original solution scored
stage 1 by mistake).
"""
from collections import OrderedDict

from basicsr.utils.registry import MODEL_REGISTRY

from flare_sr.models.flare_base import FlareBaseModel


@MODEL_REGISTRY.register()
class HINetModel(FlareBaseModel):
    """network_g: HINet (returns [stage1, stage2], both residual on the input)."""

    train_losses = ('pixel_opt',)  # the train.*_opt it applies (the option checker refuses others)
    networks = ('network_g',)  # the network_* it builds (the option checker warns about others)

    def forward_image(self, net, lq):
        return net(lq)[-1]

    def optimize_parameters(self, current_iter):
        with self.autocast():
            outputs = self.net_g(self.lq)
        losses = OrderedDict((f'l_pix_stage{index}', self.cri_pix(output.float(), self.gt))
                             for index, output in enumerate(outputs, start=1))
        self.output = outputs[-1].detach()
        if self.step_allowed(current_iter, losses):
            self.backward_and_step(sum(losses.values()), self.optimizer_g, self.net_g.parameters())
        log = OrderedDict((name, loss.detach()) for name, loss in losses.items())
        log['l_pix'] = sum(log.values())
        self.log_dict = self.reduce_loss_dict(log)
