"""CascadeModel: loads both checkpoints, chains them tile by tile, scores through BasicSR's test pipeline."""
import json
import os
import shutil

import pytest
import torch
from basicsr.metrics import calculate_psnr
from basicsr.models import build_model

from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image_uint8, write_image
from tests.helpers import cascade_checkpoints, cascade_options, run_cascade_test


def test_cascade_composes_the_two_checkpoints_and_each_stage_alone(tmp_path):
    main, post, paths = cascade_checkpoints(tmp_path)
    lq = torch.rand(1, 3, 90, 150, generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(lq, (0, 10, 0, 6), mode='reflect')  # to the lcm multiple 32, as tiling does
    with torch.no_grad():
        stage1 = ((main(padded * 2 - 1) + 1) / 2).clamp(0, 1)
        both = post(stage1)[-1].clamp(0, 1)[..., :90, :150]
        alone_post = post(padded[..., :96, :152])[-1].clamp(0, 1)[..., :90, :150]  # HINet alone: multiple 8
    whole = dict(tile=dict(size=None))
    model = build_model(cascade_options(paths, val=whole))
    assert torch.allclose(model.predict(lq), both, atol=1e-5)
    only_main = build_model(cascade_options(paths, val=whole, cascade=dict(use_post=False)))
    assert torch.allclose(only_main.predict(lq), stage1[..., :90, :150], atol=1e-5)
    only_post = build_model(cascade_options(paths, val=whole, cascade=dict(use_main=False)))
    assert torch.allclose(only_post.predict(lq), alone_post, atol=1e-5)
    tiled = build_model(cascade_options(paths)).predict(lq)  # 96-pixel tiles: HINet's instance norms see tiles
    assert tiled.shape == lq.shape and (tiled - both).abs().mean() < 0.02


def test_cascade_refuses_training_wrong_checkpoints_and_no_stage(tmp_path):
    _, _, paths = cascade_checkpoints(tmp_path)
    with pytest.raises(FlareSRError, match='testing only'):
        build_model(cascade_options(paths, is_train=True))
    with pytest.raises(FlareSRError, match='both false'):
        build_model(cascade_options(paths, cascade=dict(use_main=False, use_post=False)))
    swapped = dict(main=paths['post'], post=paths['main'])
    with pytest.raises(FlareSRError, match=r'^path.pretrain_network_main: .*net_post.pth does not fit Pix2PixUNet: '
                                           r'\d+ missing .* unexpected'):  # strict: a HINet checkpoint is no U-Net
        build_model(cascade_options(swapped))


@pytest.mark.slow
def test_cascade_through_basicsr_test_pipeline(tmp_path):
    """flare_sr/test.py: saved outputs, and metrics.json with the per-image and mean PSNR/SSIM and the input
    baseline, each PSNR equal to the one of the files on disk."""
    _, _, paths = cascade_checkpoints(tmp_path)
    generator = torch.Generator().manual_seed(5)
    for index in range(2):
        label = torch.rand(3, 64, 80, generator=generator)
        write_image(tmp_path / 'lq' / f'test_input_{20000 + index}.png',
                    (label * 0.7 + 0.3).permute(1, 2, 0).numpy())
        write_image(tmp_path / 'gt' / f'test_label_{20000 + index}.png', label.permute(1, 2, 0).numpy())
    name = f'pytest_cascade_{os.getpid()}'
    metrics = dict(psnr=dict(type='calculate_psnr', crop_border=0, test_y_channel=False),
                   ssim=dict(type='calculate_ssim', crop_border=0, test_y_channel=False))
    run, results = run_cascade_test(paths, tmp_path, name, {'tiny': tmp_path}, metrics=metrics)
    try:
        assert run.returncode == 0, run.stderr[-2000:]
        saved = sorted(os.listdir(os.path.join(results, 'visualization', 'tiny')))
        assert saved == ['test_input_20000.png', 'test_input_20001.png']
        with open(os.path.join(results, 'metrics.json'), encoding='utf-8') as handle:
            metrics = json.load(handle)
        assert metrics['name'] == name and metrics['model'] == 'CascadeModel' and list(metrics['datasets']) == ['tiny']
        record = metrics['datasets']['tiny']
        assert record['images'] == 2 and sorted(record['per_image']) == ['test_input_20000', 'test_input_20001']
        expected = {'output': [], 'input': []}
        for index in range(2):
            gt = read_image_uint8(tmp_path / 'gt' / f'test_label_{20000 + index}.png')
            scores = record['per_image'][f'test_input_{20000 + index}']
            assert set(scores) == {'psnr', 'ssim'}
            for role, path in (('output', os.path.join(results, 'visualization', 'tiny', saved[index])),
                               ('input', tmp_path / 'lq' / f'test_input_{20000 + index}.png')):
                expected[role].append(calculate_psnr(read_image_uint8(path), gt, crop_border=0))
                assert scores['psnr'][role] == pytest.approx(expected[role][-1], abs=1e-6)
        for role in ('output', 'input'):
            assert record['mean']['psnr'][role] == pytest.approx(sum(expected[role]) / 2, abs=1e-6)
        assert record['mean']['psnr']['scored'] == 2 and 0 < record['mean']['ssim']['input'] < 1
    finally:
        shutil.rmtree(results, ignore_errors=True)
