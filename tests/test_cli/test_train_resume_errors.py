"""train.py resumed from a network file or a malicious state: one error line, non-zero exit, no traceback."""
import os

import pytest
import torch

from tests.helpers import Payload, experiment_dirs, hinet_options, make_flare_pairs, run_train, write_options


@pytest.mark.slow
def test_command_line_resume_from_network_file_or_malicious_state_is_one_error_line(tmp_path, experiment):
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 2, seed=1),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, seed=2, prefix='test')}
    name = experiment('test_resume_misuse')
    opt = hinet_options(data, name, total_iter=2)
    opt['logger']['save_checkpoint_freq'] = 2
    result = run_train(write_options(tmp_path / 'first.yml', opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    exp_dir = experiment_dirs(name)[0]
    before = sorted(os.listdir(exp_dir))
    network = os.path.join(exp_dir, 'models', 'net_g_2.pth')
    state = os.path.join(exp_dir, 'training_states', '2.state')
    marker = tmp_path / 'payload_ran'
    evil = tmp_path / 'evil.state'
    torch.save({'epoch': 0, 'iter': 2, 'optimizers': [Payload(marker)], 'schedulers': []}, evil)
    for resume_state, message in ((network, f'is a network file (weights only), not a training state; resume from '
                                            f'its training state with path.resume_state: {state}'),
                                  (str(evil), 'refused: it holds the Python object exec')):
        opt['path']['resume_state'] = resume_state
        result = run_train(write_options(tmp_path / 'resume.yml', opt), tmp_path)
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'error: path.resume_state: {resume_state}'), lines
        assert message in lines[0]
    assert not marker.exists()
    assert sorted(os.listdir(exp_dir)) == before
    assert not [entry for entry in os.listdir(os.path.dirname(exp_dir)) if entry.startswith(f'{name}_archived')]
