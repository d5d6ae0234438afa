"""Pix2PixModel: the conditional GAN of stage I (Isola et al. 2017) on BasicSR's training loop.

Images enter and leave the model in [0,1]; inside, everything is in [-1,1] as in pix2pix (the
generator ends in Tanh), so the L1 weight of 100 means what it meant there. ``network_g.residual: true``
makes the generator's output a correction added to the input (Pix2PixUNet; the top-level ``residual`` of
older option files is read as it); ``false`` (the default) is classic pix2pix. Each iteration updates
the discriminator on ``cat(lq, fake.detach())`` / ``cat(lq, gt)`` (loss halved, as in pix2pix), then
the generator on ``GAN(D(cat(lq, fake))) + 100 * L1(fake, gt)`` (plus ``train.fft_opt``, and both
reconstruction terms under ``train.saturation_mask``, when set; computed in [-1,1] like the L1). Both have
their own optimizer and scheduler, and both are saved and resumed (BasicSR maps ``network_d`` to
``net_d_<iter>.pth``).
"""
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.registry import MODEL_REGISTRY

from flare_sr.models.flare_base import FlareBaseModel
from flare_sr.models.main_net import restore_image, to_signed, to_unit


@MODEL_REGISTRY.register()
class Pix2PixModel(FlareBaseModel):
    """network_g: Pix2PixUNet (``residual: true|false``); network_d: PatchGANDiscriminator (num_in_ch 6);
    train.gan_opt: BasicSR GANLoss."""

    train_losses = ('pixel_opt', 'gan_opt')  # the train.*_opt it applies (the option checker refuses others)
    networks = ('network_g', 'network_d')  # the network_* it builds (the option checker warns about others)

    def init_training_settings(self):
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True),
                              self.opt['path'].get('param_key_d', 'params'))
        self.net_d.train()
        train_opt = self.opt['train']
        self.cri_gan = build_loss(train_opt['gan_opt']).to(self.device)
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)
        super().init_training_settings()  # pixel loss, optimizers, schedulers, AMP, guard

    def setup_optimizers(self):
        """``train.optim_g`` for the generator, ``train.optim_d`` for the discriminator (in this order in states)."""
        self.optimizer_g = self.build_optimizer('optim_g', self.net_g)
        self.optimizer_d = self.build_optimizer('optim_d', self.net_d)
        self.optimizers += [self.optimizer_g, self.optimizer_d]

    def forward_image(self, net, lq):
        return restore_image(net, lq)

    def optimize_parameters(self, current_iter):
        lq, gt = to_signed(self.lq), to_signed(self.gt)
        update_g = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        with torch.set_grad_enabled(update_g), self.autocast():
            fake = self.net_g(lq)  # not clamped: the losses see it whole, so no gradient dies at +-1
        self.output = to_unit(fake.detach().clamp(-1, 1))
        log = OrderedDict()
        log.update(self._update_discriminator(current_iter, lq, gt, fake.detach()))
        if update_g:
            log.update(self._update_generator(current_iter, lq, gt, fake))
        self.log_dict = self.reduce_loss_dict(log)

    def _update_discriminator(self, current_iter, lq, gt, fake):
        """Real and fake pairs in separate forward/backward passes (separate BatchNorm statistics, as in
        pix2pix, and one backward per DDP forward); the step is taken only if both losses are finite."""
        self.optimizer_d.zero_grad(set_to_none=True)
        log = OrderedDict()
        for label, pair, is_real in (('real', torch.cat([lq, gt], 1), True),
                                     ('fake', torch.cat([lq, fake], 1), False)):
            with self.autocast():
                logits = self.net_d(pair)
            loss = 0.5 * self.cri_gan(logits.float(), is_real, is_disc=True)
            log[f'l_d_{label}'], log[f'out_d_{label}'] = loss.detach(), logits.detach().float().mean()
            if not self.step_allowed(current_iter, {f'l_d_{label}': loss}):
                self.optimizer_d.zero_grad(set_to_none=True)
                return log
            self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer_d)
        self.scaler.update()
        return log

    def _update_generator(self, current_iter, lq, gt, fake):
        """The discriminator is called without its DDP wrapper and frozen: only the generator learns here."""
        net_d = self.get_bare_model(self.net_d)
        net_d.requires_grad_(False)
        try:
            with self.autocast():
                logits = net_d(torch.cat([lq, fake], 1))
            keep = self.loss_keep_mask(self.lq, self.gt)  # from the [0,1] images; the blend is the same in [-1,1]
            losses = OrderedDict((f'l_g_{name[2:]}', loss)
                                 for name, loss in self.reconstruction_losses(fake.float(), gt, keep).items())
            losses['l_g_gan'] = self.cri_gan(logits.float(), True, is_disc=False)
            if self.step_allowed(current_iter, losses):
                self.backward_and_step(sum(losses.values()), self.optimizer_g, self.net_g.parameters())
        finally:
            net_d.requires_grad_(True)
        return OrderedDict((name, loss.detach()) for name, loss in losses.items())

    def save(self, epoch, current_iter):
        """net_d first, then (in FlareBaseModel/SRModel) net_g and the training state that names them both."""
        self._check_finite_weights(current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
        super().save(epoch, current_iter)
