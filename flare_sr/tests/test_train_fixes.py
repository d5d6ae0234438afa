"""Fast checks of the start-up decisions: the distributed backend, GPU-only settings on a machine without
(enough) GPUs, launchers started without their environment, the latest training state, the part of an
epoch a resumed run skips, and validation sets that share a name."""

import copy

import pytest

from flare_sr import basicsr_fixes
from flare_sr.errors import FlareSRError
from flare_sr.utils.checkpoint import latest_training_state
from flare_sr.utils.hardware import check_launcher_env, choose_backend, fit_to_hardware


@pytest.mark.parametrize('requested, num_gpu, cuda_count, expected', [
    (None, 'auto', 0, ('gloo', None)),
    (None, 'auto', 2, ('nccl', None)),
    (None, 0, 2, ('gloo', None)),  # GPUs present, the run asks for the CPU
    ('nccl', 1, 4, ('nccl', None)),
    ('gloo', 1, 4, ('gloo', None)),
    ('nccl', 8, 0, ('gloo', 'dist_params.backend: nccl needs GPUs, but no GPU is visible; using gloo')),
    ('nccl', 0, 2, ('gloo', 'dist_params.backend: nccl needs GPUs, but num_gpu is 0; using gloo')),
])
def test_backend_choice(requested, num_gpu, cuda_count, expected):
    assert choose_backend(requested, num_gpu, cuda_count) == expected


def parsed(num_gpu, dist=False):
    return {'num_gpu': num_gpu, 'dist': dist,
            'datasets': {'train': {'prefetch_mode': 'cuda', 'pin_memory': True},
                         'val_1': {'pin_memory': True}, 'val_2': {'prefetch_mode': None}}}


def test_gpu_only_settings_fall_back_without_gpus_and_stay_with_them():
    opt = parsed(8)
    assert fit_to_hardware(opt, cuda_count=0) == [
        'num_gpu: 8, but no GPU is visible (CUDA unavailable); training on the CPU (num_gpu: 0)',
        'datasets.train.prefetch_mode: cuda needs a GPU; using the CPU prefetcher instead',
        'datasets.train.pin_memory: true only speeds up copies to a GPU; off on the CPU',
        'datasets.val_1.pin_memory: true only speeds up copies to a GPU; off on the CPU',
    ]
    assert opt['num_gpu'] == 0 and opt['datasets']['train'] == {'prefetch_mode': 'cpu', 'pin_memory': False}
    assert opt['datasets']['val_1'] == {'pin_memory': False}
    # more GPUs asked for than visible: one process uses those there are; torchrun ranks use one each anyway
    opt = parsed(8)
    assert fit_to_hardware(opt, cuda_count=2) == ['num_gpu: 8, but 2 GPU(s) are visible; using 2']
    assert opt['num_gpu'] == 2 and opt['datasets']['train'] == {'prefetch_mode': 'cuda', 'pin_memory': True}
    for opt, cuda_count in ((parsed(8, dist=True), 2), (parsed(1), 1), (parsed(0), 0)):
        kept = copy.deepcopy(opt)
        if opt['num_gpu'] == 0:
            kept['datasets']['train'] = {'prefetch_mode': 'cpu', 'pin_memory': False}
            kept['datasets']['val_1'] = {'pin_memory': False}
        fit_to_hardware(opt, cuda_count)
        assert opt == kept


def test_launcher_without_its_environment_is_one_line():
    with pytest.raises(FlareSRError, match=r'^--launcher pytorch: RANK is not set, .*run torchrun --nproc_per_node'):
        check_launcher_env('pytorch', environ={})
    with pytest.raises(FlareSRError, match=r'^--launcher slurm: SLURM_PROCID is not set'):
        check_launcher_env('slurm', environ={'RANK': '0'})
    check_launcher_env('pytorch', environ={'RANK': '1'})
    check_launcher_env('none', environ={})


def test_latest_training_state_takes_the_highest_iteration_and_ignores_the_rest(tmp_path):
    assert latest_training_state(str(tmp_path / 'missing')) is None
    assert latest_training_state(str(tmp_path)) is None
    for name in ('5.state', '40.state', '100.state', '200.state.tmp', 'x.state', '7.pth', '.300.state.part'):
        (tmp_path / name).write_bytes(b'')
    (tmp_path / '900.state').mkdir()  # a folder is never the state
    assert latest_training_state(str(tmp_path)) == str(tmp_path / '100.state')


@pytest.mark.parametrize('iters_done, epoch, iters_per_epoch, batch, expected', [
    (5, 1, 3, 2, 4),  # epoch 1 covers iterations 4..6: 2 done, 2 samples each
    (6, 1, 3, 2, 6),  # the whole epoch done (saved at its last iteration, before the epoch counter moved)
    (3, 1, 3, 2, 0),  # saved at the end of epoch 0, resumed at the start of epoch 1
    (0, 0, 3, 4, 0),
    (7, 1, 3, 2, None),  # iteration 7 lies in epoch 2: the batch size or the data changed since the save
    (2, 1, 3, 2, None),
])
def test_resumed_epoch_skip(iters_done, epoch, iters_per_epoch, batch, expected):
    assert basicsr_fixes.resumed_epoch_skip(iters_done, epoch, iters_per_epoch, batch) == expected


def test_validation_sets_sharing_a_name_are_refused():
    opt = {'datasets': {'train': {'name': 'real'}, 'val_1': {'name': 'real'}, 'val_2': {'name': 'synthetic'}}}
    basicsr_fixes._check_dataset_names(opt)  # the training set may share a validation set's name
    opt['datasets']['val_3'] = {'name': 'real'}
    with pytest.raises(FlareSRError, match=r"^datasets.val_3.name: 'real' is also the name of datasets.val_1"):
        basicsr_fixes._check_dataset_names(opt)


@pytest.mark.parametrize('version', ['1.4.1', '1.3.5', '1.5.0.dev0'])
def test_another_basicsr_version_is_refused_in_one_line(version):
    with pytest.raises(FlareSRError) as error:
        basicsr_fixes.check_basicsr_version(version)
    message = str(error.value)
    assert '\n' not in message and f'basicsr {version} is installed' in message and 'basicsr==1.4.2' in message


def test_the_installed_basicsr_is_the_supported_one():
    basicsr_fixes.check_basicsr_version()  # raises on any other version
