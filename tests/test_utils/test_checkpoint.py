"""Training states and network files load as weights only: a state round-trips exactly, a malicious pickle is
refused in one line and its payload never runs, and each misuse of the kind (BasicSR #717: a network file
as resume_state; a state as pretrain_network_g; a folder; a missing, empty, truncated or foreign file; a
state of another model type or optimizer) is one line naming the file and what to use instead."""

import copy
import os
import random

import cv2
import numpy as np
import pytest
import torch

from flare_sr import basicsr_fixes
from flare_sr.errors import FlareSRError
from flare_sr.models.hinet_model import HINetModel
from flare_sr.models.pix2pix_model import Pix2PixModel
from flare_sr.utils.checkpoint import (latest_training_state, load_checked_state_dict, load_training_state,
                                       load_weights_only, named_checkpoints, repeated_checkpoints)
from tests.helpers import (UNET, Payload, SystemPayload, cascade_option_file, infer_in_process, model_options,
                           save_unet, train_steps)


def draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_training_state_loads_weights_only_and_round_trips_exactly(tmp_path):
    """AdamW + TrueCosineAnnealingLR after 3 steps: saved, loaded with torch.load(weights_only=True), resumed into a
    fresh model; optimizer moments, learning rate, scheduler and every RNG are exactly the saved ones, and the
    next steps equal those of the model that never stopped."""
    opt = model_options(tmp_path)
    model = HINetModel(copy.deepcopy(opt))
    train_steps(model, 3)
    model.best_metric_results = {'val': {'psnr': {'better': 'higher', 'val': np.float64(30.5), 'iter': 3}}}
    model.save_network(model.net_g, 'net_g', 3)
    model.save_training_state(epoch=0, current_iter=3)
    expected_draws = draws()

    path = tmp_path / 'training_states' / '3.state'
    state = torch.load(path, map_location='cpu', weights_only=True)  # plain torch, no allow-list
    assert state['model_type'] == 'HINetModel' and state['optimizer_types'] == ['AdamW']
    assert state['scheduler_types'] == ['CosineAnnealingLR']

    resumed_opt = copy.deepcopy(opt)
    resumed_opt['path']['pretrain_network_g'] = str(tmp_path / 'models' / 'net_g_3.pth')
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # moved on: the state must set them back
    resumed = HINetModel(resumed_opt)
    resumed.resume_training(load_training_state(str(path)))
    assert draws() == expected_draws
    assert resumed.best_metric_results == {'val': {'psnr': {'better': 'higher', 'val': 30.5, 'iter': 3}}}

    saved, loaded = model.optimizer_g.state_dict(), resumed.optimizer_g.state_dict()
    assert saved['param_groups'][0]['lr'] == loaded['param_groups'][0]['lr']
    for index, moments in saved['state'].items():
        for key, value in moments.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded['state'][index][key])), key
    assert model.schedulers[0].state_dict() == resumed.schedulers[0].state_dict()
    train_steps(model, 2, start=4)
    train_steps(resumed, 2, start=4)
    for a, b in zip(model.net_g.parameters(), resumed.net_g.parameters()):
        assert torch.equal(a, b)
    assert model.optimizer_g.param_groups[0]['lr'] == resumed.optimizer_g.param_groups[0]['lr']


def test_malicious_state_and_network_file_are_refused_and_never_run(tmp_path):
    marker = tmp_path / 'payload_ran'
    state = tmp_path / 'training_states' / '4.state'
    state.parent.mkdir()
    torch.save({'epoch': 0, 'iter': 4, 'optimizers': [], 'schedulers': [], 'x': Payload(marker)}, state)
    with pytest.raises(FlareSRError) as error:
        load_training_state(str(state))
    assert str(error.value) == (f'path.resume_state: {state}: refused: it holds the Python object exec, which '
                                'unpickling would call, and that can run any code; flare_sr loads checkpoints as '
                                'weights only (tensors and plain data), as it writes them')
    network = tmp_path / 'net_g_4.pth'
    torch.save({'params': {'weight': torch.zeros(1)}, 'x': Payload(marker)}, network)
    opt = model_options(tmp_path)
    opt['path']['pretrain_network_g'] = str(network)
    with pytest.raises(FlareSRError, match=r'path.pretrain_network_g: .*net_g_4.pth: refused: it holds the Python '
                                           r'object exec'):
        HINetModel(opt)
    assert not marker.exists()


def test_pickled_payload_is_named_and_unsafe_loading_never_advised(tmp_path):
    """torch's own message names ``posix.system`` in another form than ``exec`` and advises ``weights_only=False``:
    the line names the call and never passes that advice on; a numpy-only file is not said to be flare_sr's."""
    marker = tmp_path / 'payload_ran'
    network = tmp_path / 'shared.pth'
    torch.save({'params': {'weight': torch.zeros(1)}, 'x': SystemPayload(marker)}, network)
    with pytest.raises(FlareSRError) as error:
        load_weights_only(str(network), 'path.pretrain_network_g')
    assert str(error.value) == (f'path.pretrain_network_g: {network}: refused: it holds the Python object '
                                'posix.system (os.system), which unpickling would call, and that can run any code; '
                                'flare_sr loads checkpoints as weights only (tensors and plain data), as it writes '
                                'them')
    numpy_state = tmp_path / 'numpy.state'
    torch.save({'iter': 2, 'optimizers': [], 'numpy': np.random.get_state()}, numpy_state)
    with pytest.raises(FlareSRError) as error:
        load_training_state(str(numpy_state))
    assert str(error.value).startswith(f'path.resume_state: {numpy_state}: refused: it holds numpy arrays or numbers '
                                       '(numpy.')
    assert str(error.value).endswith(f'; if it is a training state, python scripts/convert_training_state.py '
                                     f'{numpy_state} rewrites them as tensors and numbers (it runs nothing from the '
                                     'file)')
    text = tmp_path / 'notes.pth'
    text.write_text('name: not a checkpoint\n')
    for path in (network, numpy_state, text):
        with pytest.raises(FlareSRError) as error:
            load_weights_only(str(path))
        assert 'weights_only' not in str(error.value) and 'older flare_sr' not in str(error.value)
        assert 'safe_globals' not in str(error.value) and '\n' not in str(error.value)
    assert not marker.exists()


def test_network_file_as_resume_state_names_the_matching_state(tmp_path):
    """BasicSR #717: KeyError 'iter'. Now: it is a network file, the state saved with it, pretrain_network_g."""
    opt = model_options(tmp_path)
    model = HINetModel(copy.deepcopy(opt))
    model.save_network(model.net_g, 'net_g', 4)
    model.save_network(model.net_g, 'net_g', 6)
    model.save_training_state(epoch=0, current_iter=4)
    network = os.path.join(opt['path']['models'], 'net_g_4.pth')
    state = os.path.join(opt['path']['training_states'], '4.state')
    with pytest.raises(FlareSRError) as error:
        load_training_state(network)
    assert str(error.value) == (f'path.resume_state: {network} is a network file (weights only), not a training '
                                f'state; resume from its training state with path.resume_state: {state}; to start '
                                f'from its weights alone, set path.pretrain_network_g: {network}')
    without_state = os.path.join(opt['path']['models'], 'net_g_6.pth')
    with pytest.raises(FlareSRError, match=r'no training state was saved with it \(.*training_states/6.state is '
                                           r'missing\); to start from its weights alone, set path.pretrain_network_g'):
        load_training_state(without_state)
    # and the other way round: a training state given as pretrain_network_g
    opt['path']['pretrain_network_g'] = state
    with pytest.raises(FlareSRError, match=r'path.pretrain_network_g: .*4.state is a training state .* not a network '
                                           r'file; resume it with path.resume_state: .*4.state, or take the weights '
                                           r'from models/net_g_4.pth'):
        HINetModel(opt)


def test_folder_missing_empty_truncated_and_foreign_files_get_one_line(tmp_path):
    opt = model_options(tmp_path)
    model = HINetModel(copy.deepcopy(opt))
    model.save_training_state(epoch=0, current_iter=2)
    good = tmp_path / 'training_states' / '2.state'
    truncated, empty, text = tmp_path / 'cut.state', tmp_path / 'empty.state', tmp_path / 'notes.state'
    truncated.write_bytes(good.read_bytes()[:200])
    empty.write_bytes(b'')
    text.write_text('name: not a checkpoint\n')
    cases = {str(tmp_path): f'path.resume_state: {tmp_path} is a folder, not a file; its latest training state '
                            f'is {good}',
             str(tmp_path / 'none.state'): f'path.resume_state: {tmp_path / "none.state"}: file not found',
             str(empty): f'path.resume_state: {empty}: empty file',
             str(truncated): f'path.resume_state: {truncated}: truncated or not a PyTorch checkpoint (',
             str(text): f'path.resume_state: {text}: not a PyTorch checkpoint ('}
    for path, message in cases.items():
        with pytest.raises(FlareSRError) as error:
            load_training_state(path)
        assert str(error.value).startswith(message) and '\n' not in str(error.value), str(error.value)
    other_net = tmp_path / 'other.pth'
    torch.save({'params': {'conv.weight': torch.zeros(2, 3, 3, 3)}}, other_net)
    opt['path']['pretrain_network_g'] = str(other_net)
    with pytest.raises(FlareSRError, match=r'path.pretrain_network_g: .*other.pth does not fit HINet: \d+ missing '
                                           r'.*1 unexpected keys \(e.g. conv.weight\)'):
        HINetModel(opt)
    assert load_weights_only(str(good))['iter'] == 2


def test_state_of_another_model_type_or_optimizer_is_refused(tmp_path):
    pix2pix = Pix2PixModel(model_options(tmp_path, 'Pix2PixModel'))
    pix2pix.save_training_state(epoch=0, current_iter=2)
    state = load_training_state(str(tmp_path / 'training_states' / '2.state'))
    opt = model_options(tmp_path)
    opt['path']['resume_state'] = str(tmp_path / 'training_states' / '2.state')
    opt['auto_resume'] = False
    with pytest.raises(FlareSRError, match=r'2.state was saved by Pix2PixModel, but model_type is HINetModel'):
        basicsr_fixes.load_resume_state(opt)
    hinet = HINetModel(model_options(tmp_path))
    foreign = {key: value for key, value in state.items() if not key.endswith('_type') and not key.endswith('_types')}
    with pytest.raises(FlareSRError, match=r'holds 2 optimizer\(s\), but HINetModel with these options trains with 1'):
        hinet.resume_training(foreign)
    sgd = HINetModel(model_options(tmp_path, optim={'type': 'SGD', 'lr': 0.1, 'momentum': 0.9}))
    sgd.save_training_state(epoch=0, current_iter=3)
    with pytest.raises(FlareSRError, match=r'saved with optimizer\(s\) SGD, but the options build AdamW'):
        hinet.resume_training(load_training_state(str(tmp_path / 'training_states' / '3.state')))


def test_auto_resume_from_a_broken_latest_state_says_how_to_use_the_one_before(tmp_path):
    model = HINetModel(model_options(tmp_path))
    model.save_network(model.net_g, 'net_g', 2)
    model.save_training_state(epoch=0, current_iter=2)
    broken = tmp_path / 'training_states' / '4.state'
    broken.write_bytes((tmp_path / 'training_states' / '2.state').read_bytes()[:100])
    opt = model_options(tmp_path)
    opt['auto_resume'] = True
    with pytest.raises(FlareSRError) as error:
        basicsr_fixes.load_resume_state(opt)
    assert str(error.value).startswith(f'path.resume_state: {broken}: truncated or not a PyTorch checkpoint (')
    assert str(error.value).endswith('; --auto_resume picked it as the latest state: move it away to resume from the '
                                     'one before')
    broken.unlink()
    assert basicsr_fixes.load_resume_state(opt)['iter'] == 2


def test_latest_training_state_takes_the_highest_iteration_and_ignores_the_rest(tmp_path):
    assert latest_training_state(str(tmp_path / 'missing')) is None
    assert latest_training_state(str(tmp_path)) is None
    for name in ('5.state', '40.state', '100.state', '200.state.tmp', 'x.state', '7.pth', '.300.state.part'):
        (tmp_path / name).write_bytes(b'')
    (tmp_path / '900.state').mkdir()  # a folder is never the state
    assert latest_training_state(str(tmp_path)) == str(tmp_path / '100.state')  # by number: '5' > '100' as text
    (tmp_path / '1000.state').write_bytes(b'')
    assert latest_training_state(str(tmp_path)) == str(tmp_path / '1000.state')
    only_zero = tmp_path / 'zero'
    only_zero.mkdir()
    (only_zero / '0.state').write_bytes(b'')  # iteration 0 is a state, not "no state"
    assert latest_training_state(str(only_zero)) == str(only_zero / '0.state')
    assert latest_training_state(str(tmp_path / '5.state')) is None  # a file, not a folder


def test_vgg_weights_with_a_payload_are_refused_by_name(tmp_path):
    """The perceptual loss's VGG19 file passed torch's first line on ("... Re-running torch.load with weights_only set
    to False will likely succeed ..."); it goes through load_weights_only now."""
    from flare_sr.losses.flare7k_loss import load_vgg19_features

    marker = tmp_path / 'payload_ran'
    vgg = tmp_path / 'vgg19.pth'
    torch.save({'features.0.weight': torch.zeros(1), 'x': SystemPayload(marker)}, vgg)
    with pytest.raises(FlareSRError) as error:
        load_vgg19_features(str(vgg))
    assert str(error.value).startswith(f'{vgg}: refused: it holds the Python object posix.system (os.system)')
    assert 'weights_only' not in str(error.value) and not marker.exists()


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_a_bare_pickle_with_a_payload_is_named_not_called_not_a_checkpoint(tmp_path, protocol):
    """A plain pickle (what ``pickle.dump`` writes, not ``torch.save``): torch's message is 'Unsupported operand
    149'; the line names the call the file holds, read from its opcodes, and the payload never runs."""
    import pickle
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'weights.pth'
    with open(path, 'wb') as handle:
        pickle.dump({'params': SystemPayload(marker)}, handle, protocol=protocol)
    with pytest.raises(FlareSRError) as error:
        load_weights_only(str(path), 'path.pretrain_network_g')
    assert str(error.value).startswith(f'path.pretrain_network_g: {path}: refused: it holds the Python object '
                                       'posix.system (os.system), which unpickling would call')
    assert not marker.exists()


def test_named_checkpoints_lists_every_network_file_with_the_ensemble_after_main(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    opt = {'path': {'pretrain_network_post': '~/post.pth', 'strict_load_post': True, 'pretrain_network_main': 'm.pth',
                    'pretrain_network_g': None, 'pretrain_network_d': 3},
           'cascade': {'main_ensemble': ['~/f1.pth', None, 'f2.pth']}}
    assert named_checkpoints(opt) == [('path.pretrain_network_post', str(tmp_path / 'post.pth')),
                                      ('path.pretrain_network_main', 'm.pth'),
                                      ('cascade.main_ensemble[0]', str(tmp_path / 'f1.pth')),
                                      ('cascade.main_ensemble[2]', 'f2.pth')]
    assert named_checkpoints(opt, 'main') == named_checkpoints(opt)[1:]
    assert named_checkpoints(opt, 'post') == named_checkpoints(opt)[:1]
    assert named_checkpoints({'path': {'pretrain_network_g': 'g.pth'}, 'cascade': {'main_ensemble': ['x.pth']}}) == [
        ('path.pretrain_network_g', 'g.pth')]  # the ensemble belongs to stage I only
    assert named_checkpoints({'cascade': {'main_ensemble': 'x.pth'}}) == []
    assert named_checkpoints({'path': {'pretrain_network_main': tmp_path / 'm.pth'}}) == [
        ('path.pretrain_network_main', str(tmp_path / 'm.pth'))]  # options built in Python may hold Path objects


def test_repeated_checkpoints_compare_bytes_not_paths_and_skip_missing_files(tmp_path):
    for name, data in (('a.pth', b'one'), ('b.pth', b'two'), ('copy_of_a.pth', b'one')):
        (tmp_path / name).write_bytes(data)
    named = [('path.pretrain_network_main', str(tmp_path / 'a.pth')),
             ('cascade.main_ensemble[0]', str(tmp_path / 'b.pth')),
             ('cascade.main_ensemble[1]', str(tmp_path / 'gone.pth')),
             ('cascade.main_ensemble[2]', str(tmp_path / 'copy_of_a.pth')),
             ('cascade.main_ensemble[3]', str(tmp_path / 'b.pth'))]
    assert repeated_checkpoints(named) == [
        f'cascade.main_ensemble[2]: {tmp_path / "copy_of_a.pth"} holds the same bytes as path.pretrain_network_main; '
        'list each checkpoint once',
        f'cascade.main_ensemble[3]: {tmp_path / "b.pth"} is the same file as cascade.main_ensemble[0]; list each '
        'checkpoint once']
    assert repeated_checkpoints(named[:2] + named[3:4]) == repeated_checkpoints(named)[:1]
    assert repeated_checkpoints(named[:1]) == []


def _ema_and_plain(tmp_path):
    """Two different U-Nets in one BasicSR checkpoint: (path, EMA weights, plain weights)."""
    ema, plain = save_unet(tmp_path / 'a.pth', seed=1).state_dict(), save_unet(tmp_path / 'b.pth', seed=2).state_dict()
    path = str(tmp_path / 'both.pth')
    torch.save({'params_ema': ema, 'params': plain}, path)
    return path, ema, plain


def _same(state_dict, expected):
    return state_dict.keys() == expected.keys() and all(torch.equal(state_dict[k], expected[k]) for k in expected)


def test_a_misspelt_param_key_is_refused_not_loaded_as_params(tmp_path):
    """BasicSR falls back to 'params' for any absent key: ``param_ema`` (a typo) silently loaded the other weights."""
    from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet

    path, ema, plain = _ema_and_plain(tmp_path)
    net = Pix2PixUNet(**UNET)
    assert _same(load_checked_state_dict(net, path, 'path.pretrain_network_g', param_key='params_ema'), ema)
    assert _same(load_checked_state_dict(net, path, 'path.pretrain_network_g', param_key='params'), plain)
    with pytest.raises(FlareSRError) as error:
        load_checked_state_dict(net, path, 'path.pretrain_network_g', param_key='param_ema')
    assert str(error.value) == (f"path.pretrain_network_g: {path} has no 'param_ema' entry (it holds params_ema, "
                                'params); set path.param_key_g to the entry that holds the weights')
    with pytest.raises(FlareSRError) as error:  # an ensemble member names the option that applies to it
        load_checked_state_dict(net, path, 'cascade.main_ensemble[0]', param_key='weights',
                                options_of='path.pretrain_network_main')
    assert str(error.value).endswith('set path.param_key_main to the entry that holds the weights')
    bare = str(tmp_path / 'bare.pth')
    torch.save(plain, bare)  # a bare state_dict loads under the default keys, not under another name
    assert _same(load_checked_state_dict(net, bare, 'path.pretrain_network_g'), plain)
    with pytest.raises(FlareSRError, match=r"^path.pretrain_network_g: .*bare.pth has no 'param_ema' entry \(it is a "
                                           r'bare state_dict: .*, \.\.\.\); set path.param_key_g: params \(or leave '
                                           r'it out\) to load it whole$'):
        load_checked_state_dict(net, bare, 'path.pretrain_network_g', param_key='param_ema')


def test_only_an_absent_params_ema_falls_back_to_params_said_once(tmp_path, capsys, monkeypatch):
    """As BasicSR: a checkpoint trained without EMA gives its 'params' for 'params_ema', said in one line: on stderr
    before BasicSR's log exists (the options checker's pre-flight), in the log after; the model's load of the same
    file adds no second line."""
    import io
    import logging

    from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet

    net = Pix2PixUNet(**UNET)
    logger = logging.getLogger('basicsr')
    log = io.StringIO()
    for name, handlers in (('early.pth', []), ('logged.pth', [logging.StreamHandler(log)])):
        monkeypatch.setattr(logger, 'handlers', handlers)
        path = str(tmp_path / name)
        plain = save_unet(path, seed=2).state_dict()
        for _ in range(2):  # the options checker's pre-flight, then the model
            assert _same(load_checked_state_dict(net, path, 'path.pretrain_network_g', param_key='params_ema'), plain)
    said = "path.pretrain_network_g: {} has no 'params_ema' entry (trained without EMA?); loading its 'params'"
    assert capsys.readouterr().err.splitlines() == ['warning: ' + said.format(tmp_path / 'early.pth')]
    assert log.getvalue().splitlines() == [said.format(tmp_path / 'logged.pth')]


def test_infer_refuses_a_misspelt_param_key_before_any_output(tmp_path, capsys):
    """The real command line: the options checker's pre-flight refuses the typo in one line, exit 2, nothing written."""
    import yaml

    option_file = cascade_option_file(tmp_path)
    opt = yaml.safe_load(open(option_file))
    main, _, plain = _ema_and_plain(tmp_path)
    opt['path'].update(pretrain_network_main=main, param_key_main='param_ema')
    with open(option_file, 'w') as handle:
        yaml.safe_dump(opt, handle)
    photo = tmp_path / 'in.png'
    cv2.imwrite(str(photo), np.full((32, 32, 3), 128, np.uint8))
    code, err = infer_in_process(capsys, '-opt', option_file, '--input', photo, '--output', tmp_path / 'out')
    assert code == 2
    assert err.splitlines() == [f"error: {option_file}: path.pretrain_network_main: {main} has no 'param_ema' entry "
                                '(it holds params_ema, params); set path.param_key_main to the entry that holds the '
                                'weights']
    assert not (tmp_path / 'out').exists()
