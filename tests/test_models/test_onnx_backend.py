"""ONNX export (scripts/export_onnx.py) and infer.py --backend onnxruntime: same outputs as PyTorch."""
import copy
import json
import os

import numpy as np
import pytest
import torch
import yaml

from flare_sr.utils.img_util import read_image, write_image
from tests.helpers import cascade_option_file, infer_in_process, run_script

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


def _export(capsys, *args):
    """scripts/export_onnx.py's main() in this process: exit status, stdout, stderr."""
    return run_script('export_onnx', args, capsys)


def test_onnxruntime_backend_matches_pytorch_on_a_real_photo(tmp_path, capsys):
    from skimage import data as skdata

    option_file = cascade_option_file(tmp_path)  # tiny cascade from real checkpoints, light-source restore on
    photo = skdata.astronaut()[:300, 40:437]  # 300x397: not a multiple of the grid (32), bright highlights
    write_image(tmp_path / 'in' / 'test_input_20000.png', photo)
    code, out, err = _export(capsys, '-opt', option_file, '--out', tmp_path / 'model.onnx')
    assert code == 0, err
    assert 'CascadeModel tile function (size multiple 32' in out
    assert [name for name in os.listdir(tmp_path) if name.startswith('.model.onnx')] == []  # no temp left
    # Tiles of 96 and a 64 overlap: other shapes than the traced probe (dynamic height and width).
    common = ['-opt', option_file, '--input', tmp_path / 'in', '--tile', 96, '--overlap', 32]
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'torch')
    assert code == 0, err
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'ort', '--backend', 'onnxruntime', '--onnx',
                                 tmp_path / 'model.onnx')
    assert code == 0, err
    assert os.listdir(tmp_path / 'ort') == ['test_20000.png']  # the same naming
    torch_out = np.round(read_image(tmp_path / 'torch' / 'test_20000.png') * 255).astype(int)
    ort_out = np.round(read_image(tmp_path / 'ort' / 'test_20000.png') * 255).astype(int)
    assert torch_out.shape == ort_out.shape == photo.shape
    assert np.abs(torch_out - ort_out).max() <= 1
    assert np.abs(torch_out - np.asarray(photo, int)).mean() > 1  # the nets really changed the photo


def test_onnx_user_errors_are_one_line(tmp_path, capsys):
    option_file = cascade_option_file(tmp_path)
    write_image(tmp_path / 'in' / 'a.png', np.zeros((32, 32, 3)))
    common = ['-opt', option_file, '--input', tmp_path / 'in', '--output', tmp_path / 'out']
    for extra, expected in ((['--backend', 'onnxruntime'], 'needs --onnx'),
                            (['--backend', 'onnxruntime', '--onnx', tmp_path / 'missing.onnx'], 'not found'),
                            (['--onnx', tmp_path / 'missing.onnx'], 'only read with --backend onnxruntime')):
        code, err = infer_in_process(capsys, *common, *extra)
        assert code == 2 and err.startswith('error: ') and expected in err and err.strip().count('\n') == 0, err
    (tmp_path / 'junk.onnx').write_bytes(b'not a protobuf')
    code, err = infer_in_process(capsys, *common, '--backend', 'onnxruntime', '--onnx', tmp_path / 'junk.onnx')
    assert code == 2 and 'junk.onnx: not a loadable ONNX model' in err and err.strip().count('\n') == 0, err
    code, _, err = _export(capsys, '-opt', option_file, '--out', tmp_path)
    assert code == 2 and '--out is a folder' in err
    opt = yaml.safe_load(open(option_file))
    opt['path']['pretrain_network_post'] = str(tmp_path / 'gone.pth')
    (tmp_path / 'bad.yml').write_text(yaml.safe_dump(opt))
    code, _, err = _export(capsys, '-opt', tmp_path / 'bad.yml', '--out', tmp_path / 'm.onnx')
    assert code == 2 and 'gone.pth' in err and not os.path.exists(tmp_path / 'm.onnx')


@pytest.mark.parametrize('opset', [5, 99])
def test_an_opset_the_exporter_cannot_write_is_one_line(opset):
    from flare_sr.errors import FlareSRError
    from flare_sr.models.onnx_backend import export_onnx
    with pytest.raises(FlareSRError) as error:
        export_onnx(None, 'never.onnx', opset=opset)
    assert str(error.value) == f'--opset {opset}: use an ONNX opset from 13 to 20 (default 17)'


def test_export_refuses_a_bad_opset_before_building_the_model(tmp_path, capsys):
    """The opset was checked only after the model was built and its checkpoints loaded: an option file whose
    checkpoint is gone still says the opset (no checkpoint is read)."""
    opt = yaml.safe_load(open(cascade_option_file(tmp_path)))
    opt['path']['pretrain_network_post'] = str(tmp_path / 'gone.pth')
    (tmp_path / 'bad.yml').write_text(yaml.safe_dump(opt))
    code, out, err = _export(capsys, '-opt', tmp_path / 'bad.yml', '--out', tmp_path / 'm.onnx', '--opset', 0)
    assert code == 2 and err == 'error: --opset 0: use an ONNX opset from 13 to 20 (default 17)\n'
    assert not os.path.exists(tmp_path / 'm.onnx')


def test_export_refuses_a_training_option_file(tmp_path, capsys):
    """A training file's path.pretrain_network_g is where its training starts (options/tiny/hinet_phase2.yml: stage
    II's weights): it was exported as if it were the trained model, silently."""
    opt = yaml.safe_load(open(cascade_option_file(tmp_path)))
    opt.update(name='stage3', datasets={'train': {'type': 'PairedFlareDataset'}})
    (tmp_path / 'train.yml').write_text(yaml.safe_dump(opt))
    code, out, err = _export(capsys, '-opt', tmp_path / 'train.yml', '--out', tmp_path / 'm.onnx')
    assert code == 2 and err == (f"error: {tmp_path / 'train.yml'}: a training option file (datasets.train): its "
                                 'path.pretrain_network_* are the weights its training starts from, not those it '
                                 'trained; give a test option file naming the trained checkpoint (e.g. '
                                 'experiments/stage3/models/net_g_latest.pth)\n')
    assert not os.path.exists(tmp_path / 'm.onnx')


def _graph(path, elem_type, channels_out, height_repeats=1):
    """A tiny graph with flare_sr's metadata: fp16/fp32 input 'tiles' -> the input's channels repeated to
    ``channels_out``, its rows ``height_repeats`` times (a 2x upscaler's shape)."""
    import onnx
    from onnx import TensorProto, helper
    dims = ['batch', 3, 'height', 'width']
    repeats = helper.make_tensor('repeats', TensorProto.INT64, [4], [1, channels_out // 3, height_repeats, 1])
    nodes = [helper.make_node('Tile', ['tiles', 'repeats'], ['restored'])]
    out_dims = ['batch', channels_out, 'out_height', 'width']
    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('tiles', elem_type, dims)],
                              [helper.make_tensor_value_info('restored', elem_type, out_dims)], [repeats])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = 'size_multiple', '8'
    onnx.save(model, path)


def test_an_onnx_file_of_another_signature_is_one_line(tmp_path, capsys):
    """A graph converted to fp16, one of other channels than 3 or 6, one whose tiles come back at another size (an
    upscaler's) is refused in one line naming the file (onnxruntime's InvalidArgument or an AssertionError)."""
    from onnx import TensorProto
    option_file = cascade_option_file(tmp_path)
    write_image(tmp_path / 'in' / 'a.png', np.zeros((16, 16, 3)))
    common = ['-opt', option_file, '--input', tmp_path / 'in', '--backend', 'onnxruntime', '--tile', 16,
              '--overlap', 0]
    cases = [(TensorProto.FLOAT16, 3, 1, 'takes tiles of tensor(float16)'),
             (TensorProto.FLOAT, 3, 2, 'gave a tile of 3 channels and 32x16 px for a 16x16 tile'),
             (TensorProto.FLOAT, 9, 1, 'gives 9 channels')]
    for index, (elem_type, channels, repeats, expected) in enumerate(cases):
        path = tmp_path / f'm{index}.onnx'
        _graph(path, elem_type, channels, repeats)
        code, err = infer_in_process(capsys, *common, '--output', tmp_path / f'out{index}', '--onnx', path)
        # the progress bar, and the note that a graph made by hand records no checkpoints to compare
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith(('infer:', 'note:'))]
        assert code == 2 and lines[-1].startswith(f'error: {path}: ') and expected in lines[-1], err
        assert len(lines) == 1 and 'Traceback' not in err, err
    _graph(tmp_path / 'ok.onnx', TensorProto.FLOAT, 3)  # the identity: the photo comes back
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'ok', '--onnx', tmp_path / 'ok.onnx')
    assert code == 0, err
    assert err.count('note:') == 1 and (
        f'note: {tmp_path / "ok.onnx"} does not record the options baked into its graph or the checkpoints it was '
        'exported from (an older export); not compared with the options\n') in err


def test_an_ensemble_cascade_with_a_flare_floor_runs_the_same_in_onnxruntime(tmp_path, capsys):
    """cascade.main_ensemble goes into the graph (the mean of the U-Nets); val.flare_floor stays outside it and is
    applied by the ONNX Runtime predictor as by PyTorch."""
    from skimage import data as skdata

    from tests.helpers import save_unet

    option_file = cascade_option_file(tmp_path)
    opt = yaml.safe_load(open(option_file, encoding='utf-8'))
    opt['cascade'] = {'main_ensemble': [str(tmp_path / 'fold1.pth'), str(tmp_path / 'fold2.pth')]}
    for k in (1, 2):
        save_unet(tmp_path / f'fold{k}.pth', seed=20 + k)
    opt['val']['flare_floor'] = 0.02
    with open(option_file, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(opt, handle)
    photo = skdata.coffee()[:160, 100:300]
    write_image(tmp_path / 'in' / 'test_input_20000.png', photo)
    code, out, err = _export(capsys, '-opt', option_file, '--out', tmp_path / 'model.onnx')
    assert code == 0, err
    common = ['-opt', option_file, '--input', tmp_path / 'in']
    assert infer_in_process(capsys, *common, '--output', tmp_path / 'torch')[0] == 0
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'ort', '--backend', 'onnxruntime',
                                 '--onnx', tmp_path / 'model.onnx')
    assert code == 0, err
    torch_out = np.round(read_image(tmp_path / 'torch' / 'test_20000.png') * 255).astype(int)
    ort_out = np.round(read_image(tmp_path / 'ort' / 'test_20000.png') * 255).astype(int)
    assert np.abs(torch_out - ort_out).max() <= 1
    change = np.abs(torch_out - np.asarray(photo, int))
    assert (change > 0).mean() > 0.05 and ((change > 0) & (change <= 1)).mean() < 0.01  # faint changes undone
    # The graph holds the ensemble: options that now name one member less would run it silently.
    opt['cascade']['main_ensemble'] = opt['cascade']['main_ensemble'][:1]
    with open(option_file, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(opt, handle)
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'ort2', '--backend', 'onnxruntime',
                                 '--onnx', tmp_path / 'model.onnx')
    assert code != 0 and err.strip().splitlines()[-1].endswith(
        'model.onnx: exported from other checkpoints than the options name (cascade.main_ensemble[1] is missing from '
        'the options); export it again with scripts/export_onnx.py')
    # Deployed with the graph alone (the checkpoints are not on this machine): nothing to compare, it runs.
    for path in (tmp_path / 'net_main.pth', tmp_path / 'fold1.pth'):
        path.rename(path.with_suffix('.away'))
    code, err = infer_in_process(capsys, *common, '--output', tmp_path / 'ort3', '--backend', 'onnxruntime',
                                 '--onnx', tmp_path / 'model.onnx')
    assert code == 2 and 'cascade.main_ensemble[1] is missing from the options' in err  # the list still lost one


def _write_options(path, opt):
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(opt, handle)


def _metadata(onnx_path):
    import onnx
    return {entry.key: entry.value for entry in onnx.load(str(onnx_path)).metadata_props}


def test_options_baked_into_the_graph_must_be_the_exports(tmp_path, capsys):
    """The break test: exported with both nets and darken_only off, the graph ran unchanged (exit 0) under options
    that switch the post net off, darken_only on, the U-Net residual (also by its deprecated name) or load other
    weights of the same file (param_key). Each is refused in one line naming the key, both values and the fix; the
    options applied outside the graph (flare floor, light-source restore, tiling) and a default spelled out run."""
    option_file = cascade_option_file(tmp_path)
    opt = yaml.safe_load(open(option_file, encoding='utf-8'))
    write_image(tmp_path / 'in' / 'a.png', np.full((32, 32, 3), 0.5))
    code, _, err = _export(capsys, '-opt', option_file, '--out', tmp_path / 'model.onnx')
    assert code == 0, err
    recorded = json.loads(_metadata(tmp_path / 'model.onnx')['graph_options'])
    assert recorded['cascade.use_post'] is True and recorded['val.darken_only'] is False
    assert recorded['network_main.residual'] is False and recorded['path.param_key_post'] == 'params'
    residual = 'network_main.residual: false, the options have true'
    changes = [(lambda o: o.update(cascade={'use_post': False}), 'cascade.use_post: true, the options have false'),
               (lambda o: o['val'].update(darken_only=True), 'val.darken_only: false, the options have true'),
               (lambda o: o['network_main'].update(residual=True), residual),
               (lambda o: o.update(cascade={'main_residual': True}), residual),  # the deprecated name of the same
               (lambda o: o['path'].update(param_key_main='params_ema'),
                "path.param_key_main: 'params', the options have 'params_ema'")]
    for index, (change, expected) in enumerate(changes):
        changed = copy.deepcopy(opt)
        change(changed)
        _write_options(tmp_path / 'changed.yml', changed)
        code, err = infer_in_process(capsys, '-opt', tmp_path / 'changed.yml', '--input', tmp_path / 'in', '--output',
                                     tmp_path / f'refused{index}', '--backend', 'onnxruntime', '--onnx',
                                     tmp_path / 'model.onnx')
        assert code == 2 and err.strip().splitlines()[-1] == (
            f'error: {tmp_path / "model.onnx"}: exported with {expected}; export it again with '
            'scripts/export_onnx.py'), err
        assert not os.path.exists(tmp_path / f'refused{index}' / 'a.png')
    outside = copy.deepcopy(opt)
    outside['val'].update(flare_floor=0.01, tile={'size': 64, 'overlap': 0})
    del outside['val']['restore_light_source']
    outside['network_main']['residual'] = False  # the arch's default, now spelled out
    _write_options(tmp_path / 'outside.yml', outside)
    code, err = infer_in_process(capsys, '-opt', tmp_path / 'outside.yml', '--input', tmp_path / 'in', '--output',
                                 tmp_path / 'ran', '--backend', 'onnxruntime', '--onnx', tmp_path / 'model.onnx')
    assert code == 0 and 'note:' not in err, err
    assert os.listdir(tmp_path / 'ran') == ['a.png']


def test_an_export_records_and_compares_only_the_checkpoints_in_its_graph(tmp_path, capsys):
    """A cascade exported with cascade.use_glow: false recorded the glow net's checkpoint too, so removing that unused
    path made the backend refuse the file ('path.pretrain_network_glow differs'). Only the graph's checkpoints are
    recorded and compared; a recorded one the options no longer name is said to be missing; an older export that
    recorded the glow net and no graph options runs, with the note."""
    import onnx

    from flare_sr.archs.hinet_arch import HINet

    option_file = cascade_option_file(tmp_path)
    opt = yaml.safe_load(open(option_file, encoding='utf-8'))
    glow = dict(type='HINet', in_chn=3, wf=4, depth=2)
    torch.save({'params': HINet(**{k: v for k, v in glow.items() if k != 'type'}).state_dict()}, tmp_path / 'glow.pth')
    with_glow = dict(opt, network_glow=glow, cascade={'use_glow': False},
                     path=dict(opt['path'], pretrain_network_glow=str(tmp_path / 'glow.pth')))
    _write_options(tmp_path / 'glow.yml', with_glow)
    code, _, err = _export(capsys, '-opt', tmp_path / 'glow.yml', '--out', tmp_path / 'model.onnx')
    assert code == 0, err
    metadata = _metadata(tmp_path / 'model.onnx')
    assert sorted(json.loads(metadata['checkpoints'])) == ['path.pretrain_network_main', 'path.pretrain_network_post']
    write_image(tmp_path / 'in' / 'a.png', np.full((32, 32, 3), 0.5))

    def run(options, name):
        _write_options(tmp_path / f'{name}.yml', options)
        return infer_in_process(capsys, '-opt', tmp_path / f'{name}.yml', '--input', tmp_path / 'in', '--output',
                                tmp_path / name, '--backend', 'onnxruntime', '--onnx', tmp_path / 'model.onnx')

    without_glow = dict(opt, cascade={'use_glow': False})  # the unused glow net and its checkpoint removed
    code, err = run(without_glow, 'no_glow')
    assert code == 0 and 'note:' not in err, err
    without_post = dict(without_glow, path={'pretrain_network_main': opt['path']['pretrain_network_main']})
    code, err = run(without_post, 'no_post')
    assert code == 2 and err.strip().splitlines()[-1] == (
        f'error: {tmp_path / "model.onnx"}: exported from other checkpoints than the options name '
        '(path.pretrain_network_post is missing from the options); export it again with scripts/export_onnx.py'), err
    # an export made before the graph options were recorded, when the glow net's checkpoint was recorded as well
    proto = onnx.load(str(tmp_path / 'model.onnx'))
    kept = [(entry.key, entry.value) for entry in proto.metadata_props if entry.key != 'graph_options']
    del proto.metadata_props[:]
    for key, value in kept:
        if key == 'checkpoints':
            value = json.dumps(dict(json.loads(value), **{'path.pretrain_network_glow': '0' * 64}))
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp_path / 'model.onnx'))
    code, err = run(dict(without_glow, val=dict(opt['val'], darken_only=True)), 'older')
    assert code == 0, err
    assert (f'note: {tmp_path / "model.onnx"} does not record the options baked into its graph (an older export); not '
            'compared with the options\n') in err


@pytest.mark.parametrize('name', ['models/net_d_latest.pth', 'photo.png', 'new/model.pt'])
def test_export_out_must_end_in_onnx(tmp_path, capsys, name):
    """--out experiments/<run>/models/net_d_latest.pth (a checkpoint the options do not name) or --out photo.png was
    overwritten with an ONNX model. Refused in one line before anything is written or made (no new folder)."""
    option_file = cascade_option_file(tmp_path)
    out_path = tmp_path / name
    if name != 'new/model.pt':
        out_path.parent.mkdir(exist_ok=True)
        out_path.write_bytes(b'the bytes of a file the user has')
    code, out, err = _export(capsys, '-opt', option_file, '--out', out_path)
    assert (code, out) == (2, '')
    assert err == f'error: --out {out_path}: must end in .onnx (the file written is an ONNX model)\n'
    if name == 'new/model.pt':
        assert not os.path.exists(tmp_path / 'new')
    else:
        assert out_path.read_bytes() == b'the bytes of a file the user has'


def test_export_help_keeps_its_command_line_continuations(capsys):
    """The docstring's shell line continuation was taken as Python's: '--onnx model.onnx         --input DIR'."""
    code, out, _ = _export(capsys, '--help')
    assert code == 0
    assert ('--backend onnxruntime --onnx model.onnx \\\n        --input DIR --output DIR\n') in out


# DeflareModel's 6-channel stand-in for Uformer (tests/test_models/test_deflare_model.py), size multiple 32
DEFLARE_NET = {'type': 'Pix2PixUNet', 'num_out_ch': 6, 'num_feat': 4, 'num_downs': 5, 'norm': 'none'}
LIGHT = (slice(None), slice(None), slice(12, 16), slice(22, 26))  # inside the saturated 8x8 light of _flared_photo


@pytest.fixture(scope='module')
def deflare_export(tmp_path_factory):
    """(folder, option dict, ONNX file) of a DeflareModel exported once: the test options below run outside its
    graph, so one export serves them all (and each run compares its options with the file's records)."""
    from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
    from flare_sr.models.onnx_backend import export_onnx
    from flare_sr.pipeline.inference import build_inference_model

    folder = tmp_path_factory.mktemp('deflare_onnx')
    torch.manual_seed(0)
    torch.save({'params': Pix2PixUNet(**{k: v for k, v in DEFLARE_NET.items() if k != 'type'}).state_dict()},
               folder / 'net_g.pth')
    opt = {'name': 'deflare_onnx', 'model_type': 'DeflareModel', 'num_gpu': 0, 'network_g': dict(DEFLARE_NET),
           'path': {'pretrain_network_g': str(folder / 'net_g.pth')}, 'val': {}}
    _write_options(folder / 'export.yml', opt)
    export_onnx(build_inference_model(str(folder / 'export.yml')), str(folder / 'deflare.onnx'))
    return folder, opt, folder / 'deflare.onnx'


def _flared_photo():
    """1x3x48x80 in [0, 0.7] with a saturated 8x8 light at rows 10-17, columns 20-27 (what both blends put back)."""
    image = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(1)) * 0.7
    image[..., 10:18, 20:28] = 1.0
    return image


# (train, val) of a DeflareModel test file -> whether the light is put back from the input; the model's own rule
# (DeflareModel.light_source_setting): val.restore_light_source wins, unset it is Flare7K's blend under
# train.out_deflare: false; tiling, self-ensemble and the flare floor run outside the graph as well
DEFLARE_SETTINGS = [
    ({}, {}, False),
    ({'out_deflare': True}, {}, False),
    ({'out_deflare': False}, {}, True),
    ({'out_deflare': False}, {'restore_light_source': False}, False),
    ({'out_deflare': True}, {'restore_light_source': {'method': 'flare7k', 'threshold': 0.95}}, True),
    ({'out_deflare': False}, {'restore_light_source': True}, True),  # flare_sr's own method
    ({'out_deflare': False}, {'flare_floor': 0.02, 'tile': {'size': 64, 'overlap': 16, 'self_ensemble': True}}, True),
]


@pytest.mark.parametrize('train, val, restored', DEFLARE_SETTINGS)
def test_deflare_onnx_output_is_the_pytorch_models_for_every_test_option(deflare_export, train, val, restored,
                                                                         capsys):
    """The ONNX backend applied val.restore_light_source only, so a DeflareModel file with train.out_deflare: false
    (a Flare7K net: its light is blended back, as test.py --flare7kpp off) gave an unblended image there. Both
    backends now finish the graph's tiles with the model's own code and rule: the same image and flare layer, as
    test.py builds the model (its train section read) and as infer.py builds it."""
    from flare_sr.models.deflare_model import DeflareModel
    from flare_sr.models.onnx_backend import OnnxRuntimePredictor
    from flare_sr.pipeline.inference import build_inference_model, build_onnx_predictor

    folder, exported, onnx_path = deflare_export
    opt = dict(copy.deepcopy(exported), train=train, val=val)
    lq = _flared_photo()
    # as test.py builds it: the option file's train section is read (train.out_deflare)
    model = DeflareModel(dict(copy.deepcopy(opt), is_train=False, dist=False, rank=0, world_size=1))
    predictor = OnnxRuntimePredictor(copy.deepcopy(opt), str(onnx_path))
    with torch.inference_mode():
        expected, got = model.predict(lq), predictor.predict(lq)
    assert got.shape == expected.shape == predictor.flare_layer.shape == (1, 3, 48, 80)
    assert (got - expected).abs().max() <= 1e-5
    assert (predictor.flare_layer - model.flare_layer).abs().max() <= 1e-5
    assert torch.equal(got[LIGHT], lq[LIGHT]) is restored  # the light is the input's exactly, or the net's
    assert torch.equal(expected[LIGHT], lq[LIGHT]) is restored
    # as infer.py builds them from the file (--backend pytorch and onnxruntime)
    _write_options(folder / 'run.yml', opt)
    model = build_inference_model(str(folder / 'run.yml'))
    predictor = build_onnx_predictor(str(folder / 'run.yml'), str(onnx_path))
    with torch.inference_mode():
        expected, got = model.predict(lq), predictor.predict(lq)
    assert (got - expected).abs().max() <= 1e-5
    assert (predictor.flare_layer - model.flare_layer).abs().max() <= 1e-5
    assert torch.equal(got[LIGHT], lq[LIGHT]) is restored  # infer.py reads train.out_deflare as test.py does
    assert 'warning' not in capsys.readouterr().err


@pytest.mark.parametrize('precision', ['bf16', 'fp16', 'auto', 'fp32'])
def test_val_precision_of_the_option_file_is_said_where_the_onnx_graph_runs_fp32(deflare_export, precision,
                                                                                 capsys):
    """val.precision: bf16 in the option file was silently ignored by the ONNX backend (its graph is fp32): now one
    warning line says the key, the value and what runs, at load and in infer.py's run. auto (the docs' ONNX example)
    and fp32 say nothing; the tiles run in fp32 either way."""
    from flare_sr.pipeline.inference import build_onnx_predictor

    folder, opt, onnx_path = deflare_export
    _write_options(folder / 'precision.yml', dict(opt, val={'precision': precision}))
    capsys.readouterr()
    predictor = build_onnx_predictor(str(folder / 'precision.yml'), str(onnx_path))
    warning = (f'warning: val.precision: {precision} does not apply to the onnxruntime backend (the exported graph is '
               'fp32); using fp32\n')
    assert capsys.readouterr().err == (warning if precision in ('bf16', 'fp16') else '')
    assert predictor.tile_options()['precision'] == 'fp32'
    write_image(folder / 'in' / 'a.png', _flared_photo()[0].permute(1, 2, 0).numpy())
    code, err = infer_in_process(capsys, '-opt', folder / 'precision.yml', '--input', folder / 'in', '--output',
                                 folder / f'out_{precision}', '--backend', 'onnxruntime', '--onnx', onnx_path)
    assert code == 0, err
    assert [line + '\n' for line in err.splitlines() if line.startswith('warning:')] == (
        [warning] if precision in ('bf16', 'fp16') else [])
    code, err = infer_in_process(capsys, '-opt', folder / 'precision.yml', '--input', folder / 'in', '--output',
                                 folder / f'out_{precision}_cli', '--backend', 'onnxruntime', '--onnx', onnx_path,
                                 '--precision', 'fp32')
    assert code == 0 and 'warning:' not in err  # --precision fp32 replaces the file's: nothing to say
    code, err = infer_in_process(capsys, '-opt', folder / 'precision.yml', '--input', folder / 'in', '--output',
                                 folder / f'out_{precision}_auto', '--backend', 'onnxruntime', '--onnx', onnx_path,
                                 '--precision', 'auto')
    assert code == 0 and 'warning:' not in err  # auto picks fp32 where there is no native bf16: it was refused
