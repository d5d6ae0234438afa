"""CascadeModel: the test-time chain Pix2Pix U-Net (stage I) -> HINet or NAFNet (stages II/III).

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
    val.tile                           as every flare_sr model (size, overlap, batch, self_ensemble)
    val.restore_light_source           as every flare_sr model: {threshold: 0.97, scale: 1.5} puts saturated
                                        lights back (off if absent)
    val.precision                      fp32 | bf16 | fp16 | auto (flare_sr/utils/precision.py)

On the CPU the nets and tiles are channels_last: with oneDNN's NHWC convolutions a 1280x1664 tile costs
about what a 512 tile does per pixel, where in NCHW it cost 1.21x (tiny cascade, docs/benchmarks.md).
"""
import math
import os

import torch
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
from flare_sr.utils.safe_yaml import yaml_shown


class CheckpointEnsemble(torch.nn.Module):
    """The mean of several networks' outputs (same arch, same input). Exposes the first member's ``residual`` and
    ``size_multiple``, so that it stands where one network of that arch stands (tiling, ONNX export)."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        for name in ('residual', 'size_multiple'):
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))

    def forward(self, x):
        return torch.stack([member(x) for member in self.members]).mean(0)


@MODEL_REGISTRY.register()
class CascadeModel(TiledValidationMixin, BaseModel):
    """Test-only chain of network_main (Pix2PixUNet) and network_post (HINet, NAFNet); see the module docstring.

    A BasicSR BaseModel (nothing to train or save) with flare_sr's tiled prediction and validation.
    """

    ROLES = ('main', 'post')  # network_<role>, path.pretrain_network_<role>, cascade.use_<role>
    CASCADE_OPTIONS = {'use_main': True, 'use_post': True, 'main_ensemble': []}  # ``cascade:`` keys, defaults
    tiled_networks = ('network_main', 'network_post')  # the tile grid follows their size_multiple
    networks = tiled_networks  # the network_* it builds (the option checker warns about others)

    @classmethod
    def enabled_roles(cls, opt):
        """The roles (of ``ROLES``) whose network runs, from ``cascade.use_<role>`` (default true)."""
        switches = dict(cls.CASCADE_OPTIONS, **(opt.get('cascade') or {}))
        return [role for role in cls.ROLES if switches[f'use_{role}']]

    def __init__(self, opt):
        if opt.get('is_train'):
            raise FlareSRError('model_type CascadeModel is for testing only: train each network with '
                               'Pix2PixModel / HINetModel (flare_sr/train_pipeline.py runs all three)')
        super().__init__(opt)
        self.enabled = self.enabled_roles(opt)
        if not self.enabled:
            raise FlareSRError('cascade: use_main and use_post are both false; enable at least one network')
        if (opt.get('cascade') or {}).get('main_ensemble') and 'main' not in self.enabled:
            raise FlareSRError('cascade.main_ensemble: stage I is switched off (use_main: false); remove the ensemble '
                               'or switch stage I on')
        self.nets = {}
        for role in self.enabled:
            net = self.model_to_device(build_network(opt[f'network_{role}']))
            self.print_network(net)
            self._load(role, net)
            if role == 'main':
                net = self._main_ensemble(net)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            self.nets[role] = net.eval()
        main = self.get_bare_model(self.nets['main']) if 'main' in self.nets else None
        residual = ' (residual)' if getattr(main, 'residual', False) else ''
        precision = self.tile_options()['precision']
        members = len(getattr(main, 'members', ()))
        ensemble = f' (mean of {members} checkpoints)' if members else ''
        get_root_logger().info(f'Cascade networks: {" -> ".join(self.enabled)}{residual}{ensemble}; '
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

    def _main_ensemble(self, main):
        """``main``, or with ``cascade.main_ensemble`` a CheckpointEnsemble of it and those checkpoints. Each file
        counts once: one listed twice, or with the bytes of another member, would weigh twice (an error)."""
        paths = (self.opt.get('cascade') or {}).get('main_ensemble') or []
        if not isinstance(paths, (list, tuple)):
            raise FlareSRError(f'cascade.main_ensemble: expected a list of checkpoint paths, got {yaml_shown(paths)}')
        if not paths:
            return main
        main_path = (self.opt.get('path') or {}).get('pretrain_network_main')
        if main_path is None:
            raise FlareSRError('cascade.main_ensemble: set path.pretrain_network_main too (the ensemble\'s first '
                               'member); without it the mean would include a network of random weights')
        for key_path, load_path in [('path.pretrain_network_main', main_path)] + [
                (f'cascade.main_ensemble[{index}]', member) for index, member in enumerate(paths)]:
            if not isinstance(load_path, (str, os.PathLike)):
                raise FlareSRError(f'{key_path}: {yaml_shown(load_path)} is not a checkpoint path')
        named = named_checkpoints(self.opt, 'main')  # the main checkpoint first, then the members
        members = [self.get_bare_model(main)]
        for key_path, load_path in named[1:]:
            member = build_network(self.opt['network_main']).to(self.device)
            self._load_checkpoint('main', member, load_path, key_path)  # a missing or bad file: its own message
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

    @property
    def size_multiple(self):
        return math.lcm(*(getattr(self.get_bare_model(net), 'size_multiple', 1) for net in self.nets.values()))

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
