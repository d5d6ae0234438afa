"""FlareBaseModel: what every flare_sr training model adds to BasicSR's SRModel.

- Crash-safe checkpoints: networks and training states go through ``atomic_torch_save``; a state also
  carries every rank's RNG states, the AMP grad scaler, the skipped-step count and the best metrics,
  so a resumed run continues exactly where the killed one stopped. States hold only tensors and plain
  data and load with ``torch.load(..., weights_only=True)``, as network files do
  (``flare_sr/utils/checkpoint.py``); a state of another model type or optimizer is one error line.
- Optimizers and schedulers from ``flare_sr/utils/optim.py`` (BasicSR's, its master branch's and the
  HINet/NAFNet forks': AdamW, SGD, TrueCosineAnnealingLR, ...); the options are never modified.
- ``train.amp: bf16 | fp16 | auto | false`` (fp16 with a GradScaler; on CPU fp16 falls back to bf16; auto: bf16
  where native), ``train.channels_last`` (NHWC: faster GPU convolutions, and oneDNN's on the CPU: a tiny HINet's
  training step -10 to -15 % on a 2-core Xeon, docs/benchmarks.md), DDP on CPU (gloo) and GPU. Training states keep the
  step's ``numerics`` (precision, layout, CPU threads); a resume with others is one warning.
- ``train.fft_opt`` (e.g. FFTLoss) adds a frequency-domain term to every pixel loss; ``train.saturation_mask``
  (``{threshold, dilation, source}``) keeps clipped light sources out of those losses (Wu et al.). Both off
  by default; see ``reconstruction_losses``. Metrics that take ``img_lq`` (calculate_flare_psnr) get the
  input image too; see ``_score``.
- ``train.nonfinite: stop | skip``: a NaN/inf loss stops the run before the optimizer step (so no
  checkpoint ever holds the damage) or drops that step; weights that are not finite are never saved.
- Tiled prediction and validation (the input baseline, images per dataset name, ``metrics.json``) come from
  ``TiledValidationMixin`` (``flare_sr/models/tiled_validation.py``), which the test-only CascadeModel uses too;
  the RNG states from ``flare_sr/utils/rng.py``.

Hook for subclasses (Pix2PixModel, HINetModel):
- ``forward_image(net, lq)``: a [0,1] Bx3xhxw batch on the device -> the [0,1] restored batch; ``predict``
  (the mixin's) runs it over tiles of the inference network (the EMA copy when there is one).
"""
from collections import OrderedDict
from os import path as osp

import torch
import torch.distributed as dist
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info, master_only
from torch.nn.parallel import DataParallel, DistributedDataParallel

from flare_sr.errors import FlareSRError
from flare_sr.losses.saturation_mask import saturation_keep_mask
from flare_sr.models.tiled_validation import TiledValidationMixin
from flare_sr.utils.atomic import atomic_torch_save
from flare_sr.utils.checkpoint import check_state_types, load_checked_state_dict, to_plain
from flare_sr.utils.optim import build_optimizer, build_scheduler
from flare_sr.utils.precision import DTYPES, resolve_precision
from flare_sr.utils.rng import capture_rng_states, restore_rng_states


class FlareBaseModel(TiledValidationMixin, SRModel):
    """SRModel with the flare_sr training guarantees; see the module docstring for the hooks."""

    optional_train_losses = ('fft_opt',)  # added to every pixel loss by reconstruction_losses when present

    def __init__(self, opt):
        self.train_opt = opt.get('train') or {}
        super().__init__(opt)

    # ---------------------------------------------------------------- devices and precision
    @property
    def uses_channels_last(self):
        return bool(self.train_opt.get('channels_last', False))

    def model_to_device(self, net):
        """Move to the device; DDP also on CPU (``device_ids=None``), channels_last when asked."""
        net = net.to(self.device)
        if self.uses_channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            return DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        if self.opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    def to_device(self, tensor):
        tensor = tensor.to(self.device)
        return tensor.contiguous(memory_format=torch.channels_last) if self.uses_channels_last else tensor

    def feed_data(self, data):
        self.lq = self.to_device(data['lq'])
        if 'gt' in data:
            self.gt = self.to_device(data['gt'])

    def init_training_settings(self):
        self.setup_training_guards()
        super().init_training_settings()
        self.match_ema_layout()

    def match_ema_layout(self):
        """The EMA copy (SRModel and DeflareModel build it with a plain ``.to(device)``) in the nets' memory format, so
        that validation and inference with it get channels_last's speed too; its update is element by element."""
        if self.uses_channels_last and hasattr(self, 'net_g_ema'):
            self.net_g_ema.to(memory_format=torch.channels_last)

    def setup_training_guards(self):
        """AMP, the non-finite guard and the optional loss settings: what every flare_sr model trains with, before
        SRModel's EMA, losses, optimizers and schedulers (DeflareModel, which has no ``pixel_opt``, builds those
        itself)."""
        if self.device.type == 'cpu':  # what a CPU run's speed (and its last bits) depend on
            threads = torch.get_num_threads()
            get_root_logger().info(f'CPU training: {threads} thread{"s" if threads > 1 else ""}, '
                                   f'{"channels_last" if self.uses_channels_last else "NCHW"}.')
        self._setup_amp()
        self.nonfinite_mode = self.train_opt.get('nonfinite', 'stop')
        self.skipped_steps = 0
        self._setup_loss_options()

    def _setup_amp(self):
        """``train.amp``: bf16 autocast, fp16 autocast + GradScaler, or full precision. ``auto`` (or ``true``): bf16
        where it is native (GPUs from Ampere on, else fp16; CPUs with AMX-BF16 or AVX512-BF16, else full precision:
        emulated bf16 is slower than fp32; ``flare_sr.utils.precision``)."""
        logger = get_root_logger()
        given = self.train_opt.get('amp', False)
        amp = 'false' if given in (False, None) else 'auto' if given is True else str(given).lower()
        if amp == 'auto':
            amp = resolve_precision('auto', self.device)
            if amp == 'fp32' and self.device.type == 'cuda':
                amp = 'fp16'
            logger.info(f'train.amp: {str(given).lower()} -> '
                        f'{amp if amp != "fp32" else "full precision (bf16 is not native here)"}.')
        if amp == 'fp16' and self.device.type == 'cpu':
            logger.warning('train.amp: fp16 needs a GPU; using bf16 autocast on the CPU instead.')
            amp = 'bf16'
        if amp == 'bf16' and self.device.type == 'cuda' and not torch.cuda.is_bf16_supported():
            logger.warning('train.amp: bf16 is not supported by this GPU; using fp16 instead.')
            amp = 'fp16'
        self.amp_dtype = DTYPES[amp] if amp in ('bf16', 'fp16') else None
        self.scaler = torch.amp.GradScaler('cuda', enabled=amp == 'fp16')
        if self.amp_dtype is not None:
            logger.info(f'Mixed precision: {amp} autocast' + (' with a grad scaler.' if amp == 'fp16' else '.'))

    # ---------------------------------------------------------------- optimizers and schedulers
    def get_optimizer(self, optim_type, params, lr=None, **kwargs):
        """BasicSR's hook, from ``flare_sr.utils.optim.OPTIMIZERS`` (Adam, AdamW, SGD, ...)."""
        options = dict(type=optim_type, **kwargs) if lr is None else dict(type=optim_type, lr=lr, **kwargs)
        return build_optimizer(params, options, 'train.optim')

    def build_optimizer(self, name, net):
        """The optimizer of ``train.<name>`` (e.g. ``optim_g``) over ``net``'s trainable parameters."""
        params = [param for param in net.parameters() if param.requires_grad]
        return build_optimizer(params, self.train_opt[name], f'train.{name}')

    def setup_optimizers(self):
        self.optimizer_g = self.build_optimizer('optim_g', self.net_g)
        self.optimizers.append(self.optimizer_g)

    def setup_schedulers(self):
        """``train.scheduler`` for every optimizer (none: constant learning rates after any ``train.warmup_iter``);
        the options stay as written."""
        scheduler_opt = self.train_opt.get('scheduler') or {'type': 'Constant'}
        self.schedulers = [build_scheduler(optimizer, scheduler_opt, self.train_opt.get('total_iter'))
                           for optimizer in self.optimizers]

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    # ---------------------------------------------------------------- non-finite guard
    def step_allowed(self, current_iter, losses):
        """True when every loss is finite on every rank; otherwise stop (raise) or count a skipped step.

        All ranks agree (max-reduced flag), so under DDP they skip or stop together.
        """
        values = torch.stack([value.detach().float().reshape(()) for value in losses.values()])
        bad = (~torch.isfinite(values)).any().float()
        if self.opt['dist']:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bad.item() == 0:
            return True
        described = ', '.join(f'{name}={value.item():.4g}' for name, value in zip(losses, values))
        if self.nonfinite_mode == 'skip':
            self.skipped_steps += 1
            get_root_logger().warning(f'iteration {current_iter}: non-finite loss ({described}); step skipped '
                                      f'({self.skipped_steps} so far)')
            return False
        raise FloatingPointError(
            f'training stopped at iteration {current_iter}: non-finite loss ({described}); no optimizer step '
            'was taken and the last checkpoint is intact. Lower the learning rate, check the data, or set '
            'train.nonfinite: skip')

    def backward_and_step(self, loss, optimizer, params=None):
        """Scaled backward, optional ``train.grad_clip`` (max grad norm), optimizer step, scaler update."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grad_clip = self.train_opt.get('grad_clip')
        if grad_clip and params is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        if optimizer is getattr(self, 'optimizer_g', None) and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)  # SRModel builds net_g_ema; its own step is what we replace

    # ---------------------------------------------------------------- reconstruction losses
    def _setup_loss_options(self):
        """``train.fft_opt`` (a frequency loss beside pixel_opt) and ``train.saturation_mask``; both off by default."""
        fft_opt = self.train_opt.get('fft_opt')
        self.cri_fft = build_loss(fft_opt).to(self.device) if fft_opt else None
        mask_opt = self.train_opt.get('saturation_mask')  # a mapping ({} = defaults), true (defaults), false/absent
        self.saturation_mask_opt = dict(mask_opt) if isinstance(mask_opt, dict) else ({} if mask_opt else None)

    def loss_keep_mask(self, lq, gt):
        """Bx1xHxW: 1 where reconstruction losses apply, 0 on (dilated) saturated pixels; None when unmasked.

        ``lq``, ``gt`` in [0, 1]; options ``train.saturation_mask: {threshold, dilation, source}``.
        """
        if self.saturation_mask_opt is None:
            return None
        return saturation_keep_mask(lq, gt, **self.saturation_mask_opt)

    def reconstruction_losses(self, output, target, keep=None, suffix=''):
        """``{l_pix<suffix>: pixel_opt loss[, l_fft<suffix>: fft_opt loss]}`` of one output against its label.

        With a ``keep`` mask the output is replaced by the label where ``keep`` is 0 (Wu et al.): those pixels
        cost nothing and get no gradient, whatever the loss.
        """
        if keep is not None:
            output = output * keep + target * (1 - keep)
        losses = OrderedDict([(f'l_pix{suffix}', self.cri_pix(output, target))])
        if self.cri_fft is not None:
            losses[f'l_fft{suffix}'] = self.cri_fft(output, target)
        return losses

    def get_current_log(self):
        log = OrderedDict(self.log_dict)
        for index, optimizer in enumerate(self.optimizers):
            log['lr' if index == 0 else f'lr_{index}'] = optimizer.param_groups[0]['lr']
        if self.nonfinite_mode == 'skip':
            log['skipped_steps'] = self.skipped_steps
        return log

    # ---------------------------------------------------------------- checkpoints
    def _check_finite_weights(self, current_iter):
        for name in ('net_g', 'net_d', 'net_g_ema'):
            net = getattr(self, name, None)
            if net is not None and not all(torch.isfinite(p).all() for p in net.parameters()):
                raise FloatingPointError(f'iteration {current_iter}: {name} has non-finite weights; refusing to '
                                         'overwrite checkpoints with them (the last checkpoint is intact)')

    def save(self, epoch, current_iter):
        self._check_finite_weights(current_iter)
        super().save(epoch, current_iter)

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's layout (``<label>_<iter|latest>.pth`` holding ``{param_key: state_dict}``), written atomically."""
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save_dict = {key: {name.removeprefix('module.'): tensor.cpu()
                           for name, tensor in self.get_bare_model(each).state_dict().items()}
                     for each, key in zip(nets, keys)}
        label = 'latest' if current_iter == -1 else current_iter
        atomic_torch_save(save_dict, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def save_training_state(self, epoch, current_iter):
        """Optimizers, schedulers, scaler, skip count, best metrics, each rank's RNG states, the train loader's
        ``epoch_layout`` (batch size and iterations per epoch: a resume with others restarts its epoch) and the
        step's ``numerics`` (a resume with others is said), atomically.

        Also the model type and the optimizer and scheduler classes, so a resume with other ones is refused.
        Everything is tensors and plain data, so it loads with ``weights_only=True``. Called on every rank
        (gathering the RNG states is collective); only rank 0 writes.
        """
        if current_iter == -1:
            return
        rng = capture_rng_states()
        rank, world_size = get_dist_info()
        rng_per_rank = [None] * world_size
        if self.opt['dist']:
            dist.all_gather_object(rng_per_rank, rng)
        else:
            rng_per_rank = [rng]
        if rank != 0:
            return
        state = {
            'epoch': epoch, 'iter': current_iter, 'model_type': type(self).__name__,
            'optimizers': [optimizer.state_dict() for optimizer in self.optimizers],
            'schedulers': [scheduler.state_dict() for scheduler in self.schedulers],
            'optimizer_types': [type(optimizer).__name__ for optimizer in self.optimizers],
            'scheduler_types': [type(scheduler).__name__ for scheduler in self.schedulers],
            'scaler': self.scaler.state_dict(), 'skipped_steps': self.skipped_steps,
            'best_metric_results': getattr(self, 'best_metric_results', {}), 'rng_per_rank': rng_per_rank,
            'epoch_layout': self.opt.get('epoch_layout'),  # the train loader's batch and epoch (basicsr_fixes)
            'numerics': self.numerics(),
        }
        atomic_torch_save(to_plain(state), osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def _check_resumable(self, resume_state):
        """One FlareSRError when the state's optimizers or schedulers are not the ones these options build. Its
        advice never reuses the run's name: a new run of that name would archive the folder it resumes from."""
        where = f"path.resume_state: {self.opt['path'].get('resume_state')}"
        weights = osp.join(self.opt['path']['models'], f"net_g_{resume_state['iter']}.pth")
        for kind, own in (('optimizer', self.optimizers), ('scheduler', self.schedulers)):
            saved = resume_state.get(f'{kind}s', [])
            own_types = [type(each).__name__ for each in own]
            if len(saved) != len(own):
                raise FlareSRError(f'{where} holds {len(saved)} {kind}(s), but {type(self).__name__} with these '
                                   f'options trains with {len(own)}: it was saved by another model type; start a '
                                   f'new run under another name from its weights (path.pretrain_network_g: {weights})')
            check_state_types(resume_state, kind, own_types, where, weights)

    def numerics(self):
        """What a step's last bits depend on besides the options' training settings: the autocast precision, the
        memory format and, on the CPU, the thread count (kept in training states; a resume with others is said)."""
        return {'precision': next((name for name, dtype in DTYPES.items() if dtype == self.amp_dtype), 'fp32'),
                'layout': 'channels_last' if self.uses_channels_last else 'NCHW',
                'threads': torch.get_num_threads() if self.device.type == 'cpu' else None}

    def _say_numerics_change(self, resume_state):
        """One warning when the state trained with other ``numerics``: the run goes on, not bit for bit."""
        saved, now = resume_state.get('numerics'), self.numerics()  # None in states saved before it was kept
        changed = [key for key in now if isinstance(saved, dict) and saved.get(key) != now[key]]
        if changed:
            get_root_logger().warning(
                f"Resume: trained until iteration {resume_state['iter']} with "
                + ', '.join(f'{key} {saved.get(key)}' for key in changed) + '; now '
                + ', '.join(f'{key} {now[key]}' for key in changed)
                + ' (train.amp, train.channels_last, OMP_NUM_THREADS): the run goes on, but not bit for bit as '
                'one uninterrupted run would.')

    def resume_training(self, resume_state):
        self._check_resumable(resume_state)
        self._say_numerics_change(resume_state)
        super().resume_training(resume_state)
        if 'scaler' in resume_state:
            self.scaler.load_state_dict(resume_state['scaler'])
        self.skipped_steps = resume_state.get('skipped_steps', 0)
        if resume_state.get('best_metric_results'):
            self.best_metric_results = resume_state['best_metric_results']
        rng_per_rank = resume_state.get('rng_per_rank')
        if rng_per_rank:
            rank, _ = get_dist_info()
            restore_rng_states(rng_per_rank[rank] if rank < len(rng_per_rank) else rng_per_rank[0])

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's ``load_network`` semantics (an absent ``params_ema`` falling back to ``params``, ``module.``
        prefixes dropped, ``strict``), loaded as weights only, with one line for a file that is not a fitting network
        or has no ``param_key`` entry (BasicSR fell back to ``params`` for any key: a typo loaded other weights)."""
        key_path = next((f'path.{key}' for key, value in (self.opt.get('path') or {}).items()
                         if key.startswith('pretrain_network_') and value == load_path), 'checkpoint')
        net = self.get_bare_model(net)
        state_dict = load_checked_state_dict(net, load_path, key_path, strict, param_key)
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        self._print_different_keys_loading(net, state_dict, strict)  # BasicSR's: warns, drops misfit keys
        net.load_state_dict(state_dict, strict=strict)

    # ---------------------------------------------------------------- inference (predict and validation: the mixin)
    def forward_image(self, net, lq):
        """Network output for a [0,1] batch, as a [0,1] image batch. Subclasses map their conventions here."""
        return net(lq)

    def inference_net(self):
        """The network validation uses: the EMA copy when there is one, never the DDP wrapper."""
        return self.get_bare_model(getattr(self, 'net_g_ema', self.net_g))

    @property
    def size_multiple(self):
        return getattr(self.inference_net(), 'size_multiple', 1)

    def forward_tiles(self, batch):
        batch = self.to_device(batch)
        return self.darken_only(batch, self.forward_image(self.inference_net(), batch))

    def predict(self, lq_cpu):
        """1x3xHxW CPU [0,1] -> 1x3xHxW CPU [0,1] (``TiledValidationMixin.predict``), the network in eval mode."""
        net = self.inference_net()
        was_training = net.training
        net.eval()
        try:
            return super().predict(lq_cpu)
        finally:
            net.train(was_training)
