"""CascadeModel: the test-time chain Pix2Pix U-Net (stage I) -> HINet or NAFNet (stages II/III), and beside it an
optional whole-frame glow stage.

Both networks run inside ONE tiled function, tile by tile: a tile goes through the U-Net (which works
in [-1,1]), back to [0,1], through HINet, and is clamped; only then is it blended. Running the networks
one after the other over the whole frame would need a second frame-sized buffer and tile the
intermediate image twice. The tile grid is on the least common multiple of both archs' multiples.

Options:
    network_main / network_post        the two archs (BasicSR network options); network_post may be any
                                        net HINetModel trains (HINet, NAFNet)
    path.pretrain_network_main / _post  checkpoints ({param_key: state_dict}); strict_load_main/_post,
                                        param_key_main/_post as in BasicSR (defaults true / 'params')
    cascade: {use_main, use_post}      switch a network off to score the other alone (both default true)
    cascade.main_ensemble              more checkpoints of network_main (a list of paths, default [] or ~): stage I
                                        is then the mean of their and path.pretrain_network_main's U-Net outputs,
                                        before the clamp (a checkpoint ensemble; the cross-fit fold models of
                                        stage3_source.cross_fit are such checkpoints: docs/inference.md)
    network_main.residual              as the stage-I option file's network_g.residual (the deprecated
                                        ``cascade.main_residual`` is read as it)
    network_glow, path.pretrain_network_glow   optional: the glow stage (below), a HINet trained on whole frames
                                        (SyntheticFlareDataset's downscale_to); ``cascade.glow_opt: FILE`` takes
                                        FILE's network_g and its datasets.train.downscale_to as glow_size
    cascade.glow_size                  short side in px of the frame the glow net sees (default: glow_opt's
                                        downscale_to; required without it)
    cascade.glow_floor                 glow under this fraction of full scale is left in (default 0.06)
    cascade.glow_self_ensemble         the glow net's output is the mean over the 8 flips and rotations (default
                                        true: a false glow changes with the flip, a real one does not)
    cascade.glow_ensemble / use_glow   as main_ensemble / use_main, for network_glow
    val.tile                           as every flare_sr model (size, overlap, batch, self_ensemble)
    val.restore_light_source           as every flare_sr model: {threshold: 0.97, scale: 1.5} puts saturated
                                        lights back (off if absent)
    val.precision                      fp32 | bf16 | fp16 | auto (flare_sr/utils/precision.py)

The glow stage sees the whole frame, area-downscaled to ``glow_size`` px on the short side (48x64 for a 192x256
frame), where a broad veil fits in its view; the tiled nets, trained on small crops, never see one whole
(docs/evaluation.md, rounds 17-18). Its glow is ``max(small - glow_net(small), 0)``, upsampled bilinearly to the
frame. Each pixel then takes the larger of the two removals, so that on a flare-free photo the errors do not add up:

    out = min(cascade(lq), clip(lq - max(glow - glow_floor, 0), 0, 1))

before ``val.restore_light_source`` and ``val.flare_floor``. It runs in fp32 (it is a small frame), and the ONNX
export, which holds the tile function only, refuses it.

On the CPU the nets and tiles are channels_last: with oneDNN's NHWC convolutions a 1280x1664 tile costs
about what a 512 tile does per pixel, where in NCHW it cost 1.21x (tiny cascade, docs/benchmarks.md).
"""
import math
import os

import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel

from flare_sr.errors import FlareSRError
from flare_sr.models.hinet_model import final_output
from flare_sr.models.main_net import restore_image
from flare_sr.models.tiled_validation import TiledValidationMixin
from flare_sr.utils.checkpoint import load_checked_state_dict, named_checkpoints, repeated_checkpoints
from flare_sr.utils.img_util import short_side_size
from flare_sr.utils.safe_yaml import yaml_shown
from flare_sr.utils.tiling import tiled_forward


class CheckpointEnsemble(torch.nn.Module):
    """The mean of several networks' final outputs (same arch, same input; HINet's last image). Exposes the first
    member's ``residual`` and ``size_multiple``, so that it stands where one network of that arch stands (tiling,
    ONNX export)."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        for name in ('residual', 'size_multiple'):
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))

    def forward(self, x):
        return torch.stack([final_output(member(x)) for member in self.members]).mean(0)


@MODEL_REGISTRY.register()
class CascadeModel(TiledValidationMixin, BaseModel):
    """Test-only chain of network_main (Pix2PixUNet) and network_post (HINet, NAFNet); see the module docstring.

    A BasicSR BaseModel (nothing to train or save) with flare_sr's tiled prediction and validation.
    """

    ROLES = ('main', 'post', 'glow')  # network_<role>, path.pretrain_network_<role>, cascade.use_<role>
    OPTIONAL_ROLES = ('glow',)  # run only where network_<role> or cascade.<role>_opt is given
    CASCADE_OPTIONS = {'use_main': True, 'use_post': True, 'use_glow': True,  # ``cascade:`` keys, defaults
                       'main_ensemble': [], 'glow_ensemble': [],
                       'glow_size': None, 'glow_floor': 0.06, 'glow_self_ensemble': True}
    tiled_networks = ('network_main', 'network_post')  # the tile grid follows their size_multiple
    networks = tiled_networks + ('network_glow',)  # the network_* it builds (the option checker warns about others)
    tested_networks = networks  # test-only: the checkpoints the option checker loads before the run

    @classmethod
    def enabled_roles(cls, opt):
        """The roles (of ``ROLES``) whose network runs, from ``cascade.use_<role>`` (default true); an optional role
        only where ``network_<role>`` or ``cascade.<role>_opt`` is given."""
        switches = dict(cls.CASCADE_OPTIONS, **(opt.get('cascade') or {}))
        return [role for role in cls.ROLES if switches[f'use_{role}'] and (
            role not in cls.OPTIONAL_ROLES or f'network_{role}' in opt or f'{role}_opt' in switches)]

    @classmethod
    def switch_problems(cls, opt):
        """Lines for switches that contradict each other: an ensemble of a network that does not run, a glow stage
        without ``glow_size``. The model raises the first; the option checker says them all before the run."""
        enabled = cls.enabled_roles(opt)
        cascade = dict(cls.CASCADE_OPTIONS, **(opt.get('cascade') or {}))
        problems = []
        for role, off in (('main', 'stage I is switched off (use_main: false)'),
                          ('glow', 'the glow stage does not run (use_glow: false, or no network_glow)')):
            if cascade[f'{role}_ensemble'] and role not in enabled:
                problems.append(f'cascade.{role}_ensemble: {off}; remove the ensemble or switch '
                                f'{"stage I" if role == "main" else "it"} on')
        if 'glow' in enabled and cascade['glow_size'] is None:
            problems.append('cascade.glow_size: not set; give the short side (px) the glow net was trained at '
                            '(its datasets.train.downscale_to), or cascade.glow_opt: its option file')
        return problems

    def __init__(self, opt):
        if opt.get('is_train'):
            raise FlareSRError('model_type CascadeModel is for testing only: train each network with '
                               'Pix2PixModel / HINetModel (flare_sr/train_pipeline.py runs all three)')
        super().__init__(opt)
        self.enabled = self.enabled_roles(opt)
        if not {'main', 'post'} & set(self.enabled):
            raise FlareSRError('cascade: use_main and use_post are both false; enable at least one network')
        problems = self.switch_problems(opt)
        if problems:
            raise FlareSRError(problems[0])
        self.cascade = dict(self.CASCADE_OPTIONS, **(opt.get('cascade') or {}))
        cascade = self.cascade
        self.nets = {}
        for role in self.enabled:
            net = self.model_to_device(build_network(opt[f'network_{role}']))
            self.print_network(net)
            self._load(role, net)
            if role in ('main', 'glow'):
                net = self._ensemble(role, net)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            self.nets[role] = net.eval()
        main = self.get_bare_model(self.nets['main']) if 'main' in self.nets else None
        residual = ' (residual)' if getattr(main, 'residual', False) else ''
        precision = self.tile_options()['precision']
        members = len(getattr(main, 'members', ()))
        ensemble = f' (mean of {members} checkpoints)' if members else ''
        glow = (f'; beside them the glow net on the frame at {cascade["glow_size"]} px (floor {cascade["glow_floor"]}'
                f'{", self-ensemble" if cascade["glow_self_ensemble"] else ""})' if 'glow' in self.nets else '')
        tiled = [role for role in self.enabled if role != 'glow']
        get_root_logger().info(f'Cascade networks: {" -> ".join(tiled)}{residual}{ensemble}{glow}; '
                               f'precision {precision}{", channels_last" if self.channels_last else ""}')

    def model_to_device(self, net):
        """On the device (DataParallel over several GPUs); never DDP: nothing here trains."""
        net = net.to(self.device)
        return DataParallel(net) if self.opt['num_gpu'] > 1 and not self.opt['dist'] else net

    def _load(self, role, net):
        """``path.pretrain_network_<role>`` into the net, weights only, BasicSR's strict_load_* / param_key_*."""
        load_path = (self.opt.get('path') or {}).get(f'pretrain_network_{role}')
        if load_path is None:
            get_root_logger().warning(f'path.pretrain_network_{role} is not set: network_{role} keeps random weights')
            return
        self._load_checkpoint(role, net, load_path, f'path.pretrain_network_{role}')

    def _load_checkpoint(self, role, net, load_path, key_path):
        """One checkpoint into ``net``, with strict_load_<role> and param_key_<role>; errors name ``key_path``."""
        path_opt = self.opt.get('path') or {}
        strict, param_key = path_opt.get(f'strict_load_{role}', True), path_opt.get(f'param_key_{role}', 'params')
        net = self.get_bare_model(net)
        state_dict = load_checked_state_dict(net, load_path, key_path, strict, param_key,
                                             options_of=f'path.pretrain_network_{role}')
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path} ({key_path}), '
                               f'with param key: [{param_key}].')
        self._print_different_keys_loading(net, state_dict, strict)
        net.load_state_dict(state_dict, strict=strict)

    def _ensemble(self, role, net):
        """``net``, or with ``cascade.<role>_ensemble`` a CheckpointEnsemble of it and those checkpoints. Each file
        counts once: one listed twice, or with the bytes of another member, would weigh twice (an error)."""
        paths = (self.opt.get('cascade') or {}).get(f'{role}_ensemble') or []
        if not isinstance(paths, (list, tuple)):
            raise FlareSRError(f'cascade.{role}_ensemble: expected a list of checkpoint paths, got '
                               f'{yaml_shown(paths)}')
        if not paths:
            return net
        first_path = (self.opt.get('path') or {}).get(f'pretrain_network_{role}')
        if first_path is None:
            raise FlareSRError(f'cascade.{role}_ensemble: set path.pretrain_network_{role} too (the ensemble\'s '
                               'first member); without it the mean would include a network of random weights')
        for key_path, load_path in [(f'path.pretrain_network_{role}', first_path)] + [
                (f'cascade.{role}_ensemble[{index}]', member) for index, member in enumerate(paths)]:
            if not isinstance(load_path, (str, os.PathLike)):
                raise FlareSRError(f'{key_path}: {yaml_shown(load_path)} is not a checkpoint path')
        named = named_checkpoints(self.opt, role)  # the first checkpoint, then the members
        members = [self.get_bare_model(net)]
        for key_path, load_path in named[1:]:
            member = build_network(self.opt[f'network_{role}']).to(self.device)
            self._load_checkpoint(role, member, load_path, key_path)  # a missing or bad file: its own message
            members.append(member)
        repeated = repeated_checkpoints(named)
        if repeated:
            raise FlareSRError(repeated[0])
        return self.model_to_device(CheckpointEnsemble(members))

    @property
    def channels_last(self):
        """On the CPU: oneDNN's NHWC convolutions are cheaper per pixel on big tiles (module docstring)."""
        return self.device.type == 'cpu'

    def run_networks(self, lq):
        """One batch of [0,1] tiles through the enabled networks, each output clamped to [0,1] and, under
        ``val.darken_only``, to the observed input ``lq``: the post net may undo the main net's over-darkening, never
        brighten beyond what the camera saw (stage III trains on the clamped stage-I outputs it gets here)."""
        image = lq
        if 'main' in self.nets:
            image = self.darken_only(lq, restore_image(self.nets['main'], image))
        if 'post' in self.nets:
            image = self.darken_only(lq, final_output(self.nets['post'](image)).clamp(0, 1))
        return image

    def forward_frame(self, lq_cpu):
        """The tiled cascade, and with a glow net the larger of its and the glow stage's removal (module docstring)."""
        out = super().forward_frame(lq_cpu)
        return self.glow_combined(lq_cpu, out) if 'glow' in self.nets else out

    def glow_combined(self, lq_cpu, out):
        """``min(out, clip(lq - max(glow - glow_floor, 0), 0, 1))``, glow from the whole frame at ``glow_size``.

        Args: ``lq_cpu`` and ``out`` 1x3xHxW CPU float32 in [0, 1] (the input and the tiled cascade's output). An
        image smaller than ``glow_size`` is seen at its own size. Returns the same shape and range, never brighter than
        ``out``.
        """
        height, width = lq_cpu.shape[-2:]
        short = min(self.cascade['glow_size'], height, width)  # downscaled, never upscaled
        small = F.interpolate(lq_cpu.float(), size=short_side_size(height, width, short), mode='area')
        net = self.nets['glow']
        restored = tiled_forward(lambda batch: final_output(net(self.tile_input(batch))), small,
                                 multiple=getattr(self.get_bare_model(net), 'size_multiple', 1), device=self.device,
                                 self_ensemble=self.cascade['glow_self_ensemble'])
        glow = F.interpolate((small - restored).clamp(min=0), size=(height, width), mode='bilinear',
                             align_corners=False)
        return torch.minimum(out, (lq_cpu - (glow - self.cascade['glow_floor']).clamp(min=0)).clamp(0, 1))

    @property
    def size_multiple(self):
        return math.lcm(*(getattr(self.get_bare_model(net), 'size_multiple', 1) for role, net in self.nets.items()
                          if role != 'glow'))

    def tile_input(self, batch):
        """A CPU batch of tiles on the device, in the nets' memory format."""
        batch = batch.to(self.device)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def forward_tiles(self, batch):
        return self.run_networks(self.tile_input(batch))

    def feed_data(self, data):
        self.lq = data['lq'].to(self.device)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device)
