"""ONNX export of a test model's tile function, and an ONNX Runtime predictor with the same tiling.

What is exported: the function every tile goes through in ``predict`` (``tile_function``): for
CascadeModel the chained U-Net -> [0,1] -> HINet -> clamp (``run_networks``), for a one-network model
(Pix2PixModel, HINetModel, any FlareBaseModel) ``forward_tiles`` of its inference network. It takes a
Bx3xHxW float32 batch in [0,1] and returns one of the same shape, or for DeflareModel Bx6xHxW: channels 0-2
the flare-free image, 3-5 the flare layer; H and W are dynamic and must be multiples of ``size_multiple``,
which the file carries in its metadata with the model type.
Tiling, blending, clamping, the split of the two layers, the light-source restore (``light_source_setting`` of the
options' model class: DeflareModel's Flare7K default included) and the flare floor stay outside the graph, in
:class:`OnnxRuntimePredictor`, which runs the PyTorch models' own code for them (``TiledPredictionMixin``). What the
graph fixes (its networks' checkpoints, ``checkpoint_digests``; the options baked into it, ``graph_options``) is
recorded in the file's metadata and compared with the options of each run; its precision is fp32, whatever
``val.precision`` says (one ``warning:`` line).

onnx and onnxruntime are optional (``pip install -e ".[onnx]"``); they are imported only here,
when used.
"""
import json
import re
import sys
import warnings
from os import path as osp

import torch
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

from flare_sr.errors import FlareSRError
from flare_sr.models.cascade_model import CascadeModel
from flare_sr.models.tiled_validation import TiledPredictionMixin
from flare_sr.utils.checkpoint import named_checkpoints, sha256_of
from flare_sr.utils.hardware import warn
from flare_sr.utils.options_check import parameters_of

# CascadeModel's glow stage runs on the whole frame, outside the tile function the file holds
NO_GLOW = ('network_glow: the glow stage sees the whole frame and is not in the ONNX file (it holds the tile '
           'function)')
OPSET = 17  # InstanceNormalization, Resize, Pad and every op our archs use exist unchanged since opset 13
OPSETS = range(13, 21)  # 13: the ops above; 20: the newest the TorchScript exporter (dynamo=False) writes


def tile_function(model):
    """The callable ``predict`` applies to each batch of tiles on the model's device ([0,1] in, [0,1] out)."""
    if hasattr(model, 'run_networks'):
        return model.run_networks
    return model.forward_tiles


class TileModule(torch.nn.Module):
    """``tile_function(model)`` as an nn.Module (what torch.onnx.export traces); owns the model's nets."""

    def __init__(self, model):
        super().__init__()
        nets = model.nets.values() if hasattr(model, 'nets') else [model.inference_net()]
        self.nets = torch.nn.ModuleList([model.get_bare_model(net).eval() for net in nets])
        self.function = tile_function(model)

    def forward(self, tiles):
        return self.function(tiles)


def graph_roles(opt):
    """The roles (``network_<role>``, ``path.pretrain_network_<role>``) of the networks in the graph ``export_onnx``
    writes for test option dict ``opt``: CascadeModel's enabled tiled networks (``cascade.use_main`` / ``use_post``;
    the glow net is never in it), any other model's ``network_g``."""
    if opt.get('model_type') == 'CascadeModel':
        return [role for role in CascadeModel.enabled_roles(opt) if role != 'glow']
    return ['g']


def checkpoint_digests(opt):
    """{option key: sha256, or None where the file is not on this machine} of the checkpoint files a test option file
    names for the networks in the graph (``named_checkpoints`` of each of ``graph_roles``): what an export was made
    from, and what the options of a run with it name."""
    return {key: sha256_of(path) if osp.isfile(path) else None
            for role in graph_roles(opt) for key, path in named_checkpoints(opt, role)}


def arch_arguments(section):
    """A ``network_*`` section with its arch's defaults that an option file can spell (None, numbers, strings, lists)
    filled in: an argument left out and one given its default build the same network. The section as given where its
    ``type`` is not a registered arch (or its signature cannot be read: ``parameters_of``)."""
    section = dict(section) if isinstance(section, dict) else {}
    name = section.get('type')
    if not isinstance(name, str) or name not in ARCH_REGISTRY:
        return section
    parameters, _ = parameters_of(ARCH_REGISTRY.get(name))
    return dict({key: parameter.default for key, parameter in (parameters or {}).items()
                 if isinstance(parameter.default, (type(None), bool, int, float, str, list, tuple))}, **section)


def graph_options(opt):
    """{option key: JSON value} of the options of test option dict ``opt`` whose effect ``export_onnx`` bakes into the
    graph: ``model_type``; CascadeModel's ``cascade.use_main`` / ``use_post``; for each network in the graph
    (``graph_roles``) every argument of its arch (``network_<role>.<argument>``, defaults filled in, as the option
    checker folds deprecated names) and ``path.param_key_<role>``; ``val.darken_only``. Its checkpoints are
    ``checkpoint_digests``'s; tiling (``val.tile``, self-ensemble included), the light sources
    (``val.restore_light_source``, DeflareModel's ``train.out_deflare``) and ``val.flare_floor`` run outside the graph,
    in ``OnnxRuntimePredictor``, and ``val.precision`` does not apply (the graph is fp32: a warning says so)."""
    record = {'model_type': opt.get('model_type')}
    if opt.get('model_type') == 'CascadeModel':
        enabled = CascadeModel.enabled_roles(opt)  # main and post run exactly where their use_<role> is true
        record.update({f'cascade.use_{role}': role in enabled for role in ('main', 'post')})
    path_opt = opt.get('path') or {}
    for role in graph_roles(opt):
        record.update({f'network_{role}.{key}': value
                       for key, value in arch_arguments(opt.get(f'network_{role}')).items()})
        record[f'path.param_key_{role}'] = path_opt.get(f'param_key_{role}', 'params')
    record['val.darken_only'] = bool((opt.get('val') or {}).get('darken_only'))
    return json.loads(json.dumps(record, default=str))  # as read back from the file: tuples as lists


# the role of a key of checkpoint_digests: path.pretrain_network_<role> or cascade.<role>_ensemble[<index>]
_CHECKPOINT_KEY = re.compile(r'path\.pretrain_network_(?P<role>\w+)|cascade\.(?P<member_of>\w+)_ensemble\[\d+\]')


def _checkpoint_role(key):
    match = _CHECKPOINT_KEY.fullmatch(key)
    return match and (match['role'] or match['member_of'])


_NOT_SET = object()  # a key one side of the comparison does not have


def _shown(value):
    """A recorded option value as the option file spells it (``true``, ``'params'``, ``[1, 2]``), or ``not set``."""
    return 'not set' if value is _NOT_SET else json.dumps(value).replace('"', "'")


def model_size_multiple(model):
    multiple = getattr(model, 'size_multiple', None)
    return multiple or getattr(model.inference_net(), 'size_multiple', 1)


def check_opset(opset):
    """FlareSRError for an ONNX opset outside ``OPSETS`` (scripts/export_onnx.py says it before building the model)."""
    if opset not in OPSETS:
        raise FlareSRError(f'--opset {opset}: use an ONNX opset from {OPSETS.start} to {OPSETS.stop - 1} '
                           f'(default {OPSET})')


def export_onnx(model, out_path, opset=OPSET, probe_size=None, source=None):
    """Write ``model``'s tile function to ``out_path`` (fp32, CPU, dynamic batch/height/width).

    ``probe_size`` is the side of the example tile traced (default: 2 multiples, at least 64).
    Returns the metadata dict stored in the file: ``model_type``, ``size_multiple``, ``checkpoints`` and
    ``graph_options`` (JSON: ``checkpoint_digests`` and ``graph_options`` of ``model.opt``), ``input``, ``output``.
    Raises FlareSRError when onnx is not installed, ``opset``
    is outside ``OPSETS`` or the model runs a glow stage (``NO_GLOW``, after ``source``: the option file that
    built the model, where given).
    """
    check_opset(opset)
    if 'glow' in getattr(model, 'nets', {}):
        advice = '; set cascade.use_glow: false to export the tiled networks alone'
        raise FlareSRError(f'{source}: {NO_GLOW}{advice}' if source else f'{NO_GLOW}{advice}')
    try:
        import onnx
    except ImportError:
        raise FlareSRError('ONNX export needs the onnx package: pip install -e ".[onnx]"') from None
    multiple = model_size_multiple(model)
    probe_size = probe_size or max(2 * multiple, 64 // multiple * multiple or multiple)
    module = TileModule(model).cpu().eval()
    probe = torch.rand(1, 3, probe_size, probe_size, generator=torch.Generator().manual_seed(0))
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer warns that the archs' size checks become constants (they only raise on bad sizes,
        # which tiling never sends) and that HIN's instance norm uses input statistics (it always does).
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*instance_norm.*')
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(module, (probe,), out_path, input_names=['tiles'], output_names=['restored'],
                          dynamic_axes={'tiles': axes, 'restored': axes}, opset_version=opset, dynamo=False)
    layers = getattr(model, 'predicts_flare', False)  # DeflareModel: image and flare layer, 6 channels
    metadata = {'model_type': type(model).__name__, 'size_multiple': str(multiple),
                'checkpoints': json.dumps({key: digest for key, digest in checkpoint_digests(model.opt).items()
                                           if digest}, sort_keys=True),
                'graph_options': json.dumps(graph_options(model.opt)),
                'input': 'tiles: Bx3xHxW float32 in [0,1], H and W multiples of size_multiple',
                'output': 'restored: Bx6xHxW float32 in [0,1], channels 0-2 the image, 3-5 the flare layer' if layers
                else 'restored: Bx3xHxW float32 in [0,1]'}
    proto = onnx.load(out_path)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, out_path)
    return metadata


class OnnxRuntimePredictor(TiledPredictionMixin):
    """``predict`` of a flare_sr test model, with the tile function run by ONNX Runtime.

    ``opt`` is the test option dict; networks are not built. ``predict`` is the PyTorch models' own
    (``TiledPredictionMixin``): ``val.tile``, the light sources (``light_source_setting`` of ``opt``'s model class:
    ``val.restore_light_source``, and for DeflareModel Flare7K's blend under ``train.out_deflare: false``) and
    ``val.flare_floor`` apply as there. ``val.precision`` does not: the graph runs in fp32, and a bf16 or fp16 there
    is said in one ``warning:`` line (``auto`` is not). ``onnx_path`` a file from ``export_onnx``. A 6-channel
    graph (DeflareModel's) gives the image channels; the flare channels are kept as ``flare_layer``.
    ``threads``: intra-op threads (default: torch's count). ``device``: ``cuda...`` runs the graph on the CUDA
    execution provider where onnxruntime has it. ``reference``: the option dict compared with what the file
    records (default ``opt``; build_onnx_predictor passes the file's options with their checkpoints). Raises
    FlareSRError for a missing onnxruntime, an unreadable file, a file without flare_sr's metadata, one exported with
    other options baked into its graph (``graph_options``) or from other checkpoints (``checkpoint_digests``).
    """

    # the mixin's host: tiles are handed to the session as CPU arrays (a CUDA provider copies them itself)
    device = torch.device('cpu')

    def __init__(self, opt, onnx_path, threads=None, device='cpu', reference=None):
        try:
            import onnxruntime
        except ImportError:
            raise FlareSRError('--backend onnxruntime needs the onnxruntime package: pip install -e ".[onnx]"') \
                from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ['CPUExecutionProvider']
        if str(device).startswith('cuda') and 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
            providers.insert(0, 'CUDAExecutionProvider')
        try:
            self.session = onnxruntime.InferenceSession(onnx_path, options, providers=providers)
        except Exception as error:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise FlareSRError(f'{onnx_path}: not a loadable ONNX model ({str(error).splitlines()[0]})') from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if 'size_multiple' not in metadata:
            raise FlareSRError(f'{onnx_path}: no size_multiple in its metadata; export it with scripts/export_onnx.py')
        self.multiple = int(metadata['size_multiple'])
        self.model_type = metadata.get('model_type', '?')
        self.path = onnx_path
        self.channels = self._check_signature()
        reference = opt if reference is None else reference
        unrecorded = [self._check_graph_options(metadata.get('graph_options'), graph_options(reference)),
                      self._check_checkpoints(metadata.get('checkpoints'), checkpoint_digests(reference),
                                              graph_roles(reference))]
        if any(unrecorded):  # an export made before the record existed
            print(f'note: {onnx_path} does not record {" or ".join(filter(None, unrecorded))} (an older export); not '
                  'compared with the options', file=sys.stderr, flush=True)
        self.predicts_flare = self.channels == 6  # DeflareModel's image and flare layer
        self.flare_layer = None  # the flare of the last predict (1x3xHxW CPU, [0, 1]) for a 6-channel graph
        self.opt = opt
        self.model_class = MODEL_REGISTRY.get(opt['model_type'])
        self.providers = self.session.get_providers()
        precision = (opt.get('val') or {}).get('precision')
        if precision not in (None, 'fp32', 'auto'):  # auto asks for no dtype: fp32 is what it picks without bf16
            warn(f'val.precision: {precision} does not apply to the onnxruntime backend (the exported graph is fp32); '
                 'using fp32', rank=0)

    def _check_graph_options(self, recorded, current):
        """FlareSRError naming the first option (``current``: ``graph_options``) whose value differs from the one baked
        into the graph at export: the graph would run, silently, as the export's options said. Returns what is not
        recorded (for the note on an older export), else None."""
        if not recorded:
            return 'the options baked into its graph'
        exported = json.loads(recorded)
        for key in list(exported) + [key for key in current if key not in exported]:
            was, now = exported.get(key, _NOT_SET), current.get(key, _NOT_SET)
            if was != now:
                raise FlareSRError(f'{self.path}: exported with {key}: {_shown(was)}, the options have {_shown(now)}; '
                                   'export it again with scripts/export_onnx.py')
        return None

    def _check_checkpoints(self, recorded, named, roles):
        """FlareSRError when the options name other checkpoints (``named``: ``checkpoint_digests``) for the networks in
        the graph (``roles``: ``graph_roles``) than it was exported from (a changed ``cascade.main_ensemble``, a
        retrained model): the graph would run, silently, without them. A checkpoint not on this machine (a deployment
        with the graph alone) is not compared, only its key; a recorded key of another network (older exports recorded
        the glow net's, a discriminator's) is not compared. Returns what is not recorded (for the note on an older
        export), else None."""
        if not named:
            return None
        if not recorded:
            return 'the checkpoints it was exported from'
        exported = {key: digest for key, digest in json.loads(recorded).items() if _checkpoint_role(key) in roles}
        for key in list(exported) + [key for key in named if key not in exported]:
            if key not in named:
                problem = f'{key} is missing from the options'  # a member dropped from the ensemble
            elif key not in exported:
                problem = f'{key} is not in the export'
            elif named[key] is not None and named[key] != exported[key]:
                problem = f'{key} differs'
            else:
                continue
            raise FlareSRError(f'{self.path}: exported from other checkpoints than the options name ({problem}); '
                               'export it again with scripts/export_onnx.py')
        return None

    def _check_signature(self):
        """The graph's output channels (3, or 6 for DeflareModel's two layers); FlareSRError for a graph that does
        not take export_onnx's one float32 Bx3xHxW input, or declares other outputs (e.g. converted to fp16)."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [(put.name, put.type) for put in inputs] != [('tiles', 'tensor(float)')] or len(outputs) != 1 \
                or outputs[0].type != 'tensor(float)':
            got = ', '.join(f'{put.name} of {put.type}' for put in inputs)
            raise FlareSRError(f'{self.path}: takes {got} and gives {len(outputs)} output(s) of '
                               f'{", ".join(put.type for put in outputs)}; flare_sr runs the graph of '
                               'scripts/export_onnx.py: tiles of tensor(float) in, one tensor(float) out')
        channels = outputs[0].shape[1] if len(outputs[0].shape) == 4 else None
        if channels not in (3, 6):
            shown = channels if isinstance(channels, int) else 'an undeclared number of'
            raise FlareSRError(f'{self.path}: gives {shown} channels per tile; flare_sr runs 3 (an image) or 6 '
                               '(DeflareModel: image and flare layer)')
        return channels

    @property
    def size_multiple(self):
        """The graph's (from its metadata): tile sides are multiples of it."""
        return self.multiple

    def tile_options(self):
        """The PyTorch models' ``val.tile`` options, in fp32 (the graph's precision; ``val.precision`` is warned
        about at load)."""
        return dict(super().tile_options(), precision='fp32')

    def light_source_setting(self, opt):
        """The light-source restore that ``opt``'s model class applies after its tiles (DeflareModel's default
        included), so that the graph's output is finished as the PyTorch model's."""
        return self.model_class.light_source_setting(opt)

    def forward_tiles(self, tiles):
        """Bx3xhxw float32 CPU tensor -> the session's output as a Bx3xhxw (6-channel graph: Bx6xhxw) tensor; a
        FlareSRError for a graph whose output has another shape than it declares."""
        (out,) = self.session.run(None, {'tiles': tiles.float().contiguous().numpy()})
        expected = (tiles.shape[0], self.channels, *tiles.shape[2:])
        if out.shape != expected:  # a graph whose runs differ from what it declares
            raise FlareSRError(f'{self.path}: gave a tile of {out.shape[1]} channels and {out.shape[2]}x{out.shape[3]} '
                               f'px for a {tiles.shape[2]}x{tiles.shape[3]} tile; it declares {self.channels} channels '
                               'of the tile\'s size (export_onnx\'s graphs keep the size)')
        return torch.from_numpy(out)

    def describe(self):
        return json.dumps({'model_type': self.model_type, 'size_multiple': self.size_multiple,
                           'providers': self.providers})
