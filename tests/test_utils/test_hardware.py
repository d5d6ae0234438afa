"""Start-up decisions about the machine: the distributed backend, GPU-only settings on a machine without (enough)
GPUs, launchers started without their environment."""
import copy

import pytest

from flare_sr.errors import FlareSRError
from flare_sr.utils.hardware import check_launcher_env, choose_backend, fit_to_hardware


@pytest.mark.parametrize('requested, num_gpu, cuda_count, expected', [
    (None, 'auto', 0, ('gloo', None)),
    (None, 'auto', 2, ('nccl', None)),
    (None, 0, 2, ('gloo', None)),  # GPUs present, the run asks for the CPU
    ('nccl', 1, 4, ('nccl', None)),
    ('gloo', 1, 4, ('gloo', None)),
    ('nccl', 8, 0, ('gloo', 'dist_params.backend: nccl needs GPUs, but no GPU is visible; using gloo')),
    ('nccl', 0, 2, ('gloo', 'dist_params.backend: nccl needs GPUs, but num_gpu is 0; using gloo')),
    ('nccl', 'auto', 0, ('gloo', 'dist_params.backend: nccl needs GPUs, but no GPU is visible; using gloo')),
    ('nccl', 'auto', 1, ('nccl', None)),
    ('gloo', 0, 0, ('gloo', None)),  # gloo asked for on the CPU: no warning
    ('gloo', 'auto', 8, ('gloo', None)),  # gloo is honoured on GPUs too (it has CUDA tensors)
    ('', 'auto', 1, ('nccl', None)),  # an empty value counts as not given
    (None, 2, 1, ('nccl', None)),  # fewer GPUs than asked for still trains on GPUs
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
