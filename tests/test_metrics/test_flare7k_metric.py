"""The Flare7K protocol against numbers computed by running Flare7K's own evaluate.py (tests/data/README.md).

tests/data/flare7k_metric_reference.json holds, per case of flare7k_cases.py (512x512 and 256x384, three images
each, seed 18), evaluate.py's per-image PSNR, SSIM, LPIPS and region PSNRs and the two lines it printed. LPIPS ran
the lpips package with stand-in weights (flare7k_cases.make_lpips_weights), which the tests here load from files.
"""
import json
import math
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY

from flare_sr.archs.hinet_arch import HINet
from flare_sr.errors import FlareSRError
from flare_sr.metrics import flare7k_metric
from flare_sr.metrics.flare7k_metric import flare7k_scores, flare7k_summary, read_mask, region_psnr, region_weights
from flare_sr.metrics.lpips_alexnet import flare7k_lpips, load_lpips_alex
from flare_sr.models.tiled_validation import TiledValidationMixin
from flare_sr.utils.img_util import write_image
from tests.helpers import (DATA_DIR, POST, REPO, TEST_SCRIPT, read_metrics, remove_experiment, run_script, run_train,
                           subprocess_env, unique_name)
from tests.test_metrics.flare7k_cases import CASES, make_case, make_lpips_weights

with open(os.path.join(DATA_DIR, 'flare7k_metric_reference.json'), encoding='utf-8') as _handle:
    REFERENCE = json.load(_handle)
REGION_TYPES = {'glare': 'calculate_g_psnr_flare7k', 'streak': 'calculate_s_psnr_flare7k',
                'global': 'calculate_global_psnr_flare7k'}


def printed_numbers(lines):
    """{'PSNR': ..., 'SSIM': ..., 'Score': ..., 'G-PSNR': ...} from evaluate.py's two printed lines."""
    return {key: float(value) for key, value in re.findall(r'([\w-]+): ([-\d.e+]+|inf)', ' '.join(lines))}


def write_lpips_weights(root):
    """The stand-in LPIPS weights as the two files a user brings: (AlexNet path, alex.pth path)."""
    alexnet_state, lin_state = make_lpips_weights()
    paths = os.path.join(root, 'alexnet-owt-7be5be79.pth'), os.path.join(root, 'alex.pth')
    torch.save(alexnet_state, paths[0])
    torch.save(lin_state, paths[1])
    return paths


def write_case(root, name):
    """The case's images as Flare7K names them: input/input_000000.png, gt/gt_000000.png, mask/mask_000000.png."""
    for index, (label, result, mask) in enumerate(make_case(*CASES[name])):
        for role, img in (('input', result), ('gt', label), ('mask', mask)):
            write_image(os.path.join(root, role, f'{role}_{index:06d}.png'), img)
    return {role: os.path.join(root, role) for role in ('input', 'gt', 'mask')}


@pytest.mark.parametrize('name', list(CASES))
def test_per_image_scores_and_table_match_evaluate_py(name):
    """512^2 and 256x384: every per-image number and the printed means and Score equal evaluate.py's, to 1e-12."""
    reference = REFERENCE['cases'][name]
    per_image = []
    for (label, result, mask), expected in zip(make_case(*CASES[name]), reference['per_image']):
        scores = flare7k_scores(label, result, mask)
        per_image.append(scores)
        for metric, value in expected.items():
            if metric == 'lpips':
                continue  # test_lpips_matches_the_lpips_package_as_evaluate_py_calls_it
            if value is None:
                assert math.isnan(scores[metric]), metric  # region absent: left out of its average
            else:
                assert scores[metric] == pytest.approx(value, rel=1e-12, abs=0), metric
    summary = flare7k_summary(per_image)
    printed = printed_numbers(reference['printed'])
    for metric, key in (('psnr', 'PSNR'), ('ssim', 'SSIM'), ('glare', 'G-PSNR'), ('streak', 'S-PSNR'),
                        ('global', 'Global-PSNR'), ('score', 'Score')):
        assert summary[metric][0] == pytest.approx(printed[key], rel=1e-12, abs=0), metric
    assert [summary[region][1] for region in ('glare', 'streak', 'global')] == [2, 1, 3]


def test_lpips_matches_the_lpips_package_as_evaluate_py_calls_it(tmp_path):
    """LPIPS-Alex from local files equals lpips 0.1.4 fed [0, 1] tensors as evaluate.py does (float32 rounding)."""
    model = load_lpips_alex(*write_lpips_weights(str(tmp_path)))
    label, result, _ = make_case(*CASES['256x384'])[0]  # one image here; the script test scores all three
    assert flare7k_lpips(model, label, result) == pytest.approx(
        REFERENCE['cases']['256x384']['per_image'][0]['lpips'], rel=1e-5)
    torch.save({'features.0.weight': torch.zeros(1)}, str(tmp_path / 'wrong.pth'))
    with pytest.raises(FlareSRError, match=r'wrong.pth: features.0.weight has shape \(1,\), LPIPS-Alex needs'):
        load_lpips_alex(str(tmp_path / 'wrong.pth'), str(tmp_path / 'alex.pth'))
    torch.save({}, str(tmp_path / 'wrong.pth'))
    with pytest.raises(FlareSRError, match=r'wrong.pth: no tensor features.0.weight; is it alexnet-owt-7be5be79.pth\?'):
        load_lpips_alex(str(tmp_path / 'wrong.pth'), str(tmp_path / 'alex.pth'))
    with pytest.raises(FlareSRError, match=r'LPIPS needs its v0.1 linear weights alex.pth .*not found: .*nope.pth'):
        load_lpips_alex(str(tmp_path / 'alexnet-owt-7be5be79.pth'), str(tmp_path / 'nope.pth'))


def test_region_psnr_divides_by_a_fixed_512_squared_area():
    """An all-black mask makes Global-PSNR the whole image's PSNR at 512^2, and that shifted by
    10 log10(H W / 512^2) dB at another size (-4.26 dB at 256x384), as evaluate.py computes it."""
    for (height, width), shift in (((512, 512), 0.0), ((256, 384), 10 * math.log10(256 * 384 / 512**2))):
        label, result, mask = make_case(height, width)[2]
        assert not mask.any()
        scores = flare7k_scores(label, result, mask)
        assert scores['global'] == pytest.approx(scores['psnr'] + shift, abs=1e-9)
    assert 10 * math.log10(256 * 384 / 512**2) == pytest.approx(-4.26, abs=0.005)


def test_mask_colours_are_soft_weights_with_uint8_wraparound():
    mask = np.array([[[255, 255, 0], [255, 0, 0], [0, 0, 255], [90, 140, 0], [100, 101, 0], [128, 0, 0]]], np.uint8)
    weights = region_weights(mask)
    np.testing.assert_array_equal(weights['glare'], [[1, 0, 0, 140 / 255, 101 / 255, 0]])
    np.testing.assert_array_equal(weights['streak'], [[0, 1, 0, 206 / 255, 1, 128 / 255]])
    np.testing.assert_array_equal(weights['global'], [[1, 1, 0, 1, 1, 1]])
    gt = np.zeros((1, 6, 3), np.uint8)
    assert math.isnan(region_psnr(gt, gt, np.zeros((1, 6))))
    assert region_psnr(gt, gt, weights['glare']) == math.inf


def _validation_scores(case_root, name, index, bgr=True):
    """Each region metric through BasicSR's calculate_metric, as flare_sr's validation calls it."""
    label, result, _ = make_case(*CASES[name])[index]
    if bgr:  # validation scores tensor2img's BGR images; the mask stays RGB
        label, result = label[..., ::-1], result[..., ::-1]
    lq_path = os.path.join(case_root, 'input', f'input_{index:06d}.png')
    return {region: calculate_metric({'img': result, 'img2': label, 'lq_path': lq_path},
                                     {'type': metric, 'mask_folder': os.path.join(case_root, 'mask')})
            for region, metric in REGION_TYPES.items()}


def test_val_metrics_find_each_mask_by_name_and_match_evaluate_py(tmp_path):
    """val.metrics: the registered metrics find mask_000000.png for input_000000.png and give evaluate.py's numbers
    on BGR images (float rounding only); psnr/ssim through the real validation dispatch (TiledValidationMixin)."""
    for metric in list(REGION_TYPES.values()) + ['calculate_psnr_flare7k', 'calculate_ssim_flare7k']:
        assert METRIC_REGISTRY.get(metric) is getattr(flare7k_metric, metric)
    name = '256x384'
    folders = write_case(str(tmp_path), name)
    for index, expected in enumerate(REFERENCE['cases'][name]['per_image']):
        scores = _validation_scores(str(tmp_path), name, index)
        for region in REGION_TYPES:
            if expected[region] is None:
                assert math.isnan(scores[region])
            else:
                assert scores[region] == pytest.approx(expected[region], rel=1e-12)
    label, result, _ = make_case(*CASES[name])[0]
    to_tensor = lambda img: torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    metrics = {'psnr_flare7k': {'type': 'calculate_psnr_flare7k'}, 'ssim_flare7k': {'type': 'calculate_ssim_flare7k'},
               'g_psnr_flare7k': {'type': 'calculate_g_psnr_flare7k', 'mask_folder': folders['mask']}}
    paths = {'lq_path': os.path.join(folders['input'], 'input_000000.png'),
             'gt_path': os.path.join(folders['gt'], 'gt_000000.png')}
    scores = TiledValidationMixin()._score(to_tensor(result), to_tensor(result), to_tensor(label), metrics, paths)
    expected = REFERENCE['cases'][name]['per_image'][0]
    assert scores['psnr_flare7k'][0] == pytest.approx(expected['psnr'], rel=1e-12)
    assert scores['ssim_flare7k'][0] == pytest.approx(expected['ssim'], rel=1e-12)
    assert scores['g_psnr_flare7k'][0] == pytest.approx(expected['glare'], rel=1e-12)


def test_val_metric_errors_are_one_line(tmp_path):
    label = np.zeros((16, 16, 3), np.uint8)
    opt = {'type': 'calculate_g_psnr_flare7k', 'mask_folder': str(tmp_path)}
    with pytest.raises(FlareSRError, match='calculate_g_psnr_flare7k: no mask for .*input_000007.png'):
        calculate_metric({'img': label, 'img2': label, 'lq_path': 'x/input_000007.png'}, opt)
    with pytest.raises(FlareSRError, match='needs lq_path or gt_path'):
        calculate_metric({'img': label, 'img2': label}, opt)
    with pytest.raises(FlareSRError, match=r'calculate_s_psnr_flare7k: no mask_folder given and no mask/ folder beside '
                                           r'\S+input .*; set mask_folder'):
        calculate_metric({'img': label, 'img2': label, 'lq_path': str(tmp_path / 'input' / 'input_000001.png')},
                         {'type': 'calculate_s_psnr_flare7k'})
    cv2.imwrite(str(tmp_path / 'mask_000001.png'), np.zeros((16, 16), np.uint8))
    with pytest.raises(FlareSRError, match='grayscale mask; Flare7K masks are colour-coded'):
        calculate_metric({'img': label, 'img2': label, 'lq_path': 'input_000001.png'}, opt)
    write_image(str(tmp_path / 'mask_000002.png'), np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(FlareSRError, match=r'mask_000002.png: mask is 16x8, the image 16x16'):
        calculate_metric({'img': label, 'img2': label, 'lq_path': 'input_000002.png'}, opt)
    with pytest.raises(FlareSRError, match='sizes differ'):
        calculate_metric({'img': label, 'img2': label[:8]}, {'type': 'calculate_psnr_flare7k'})
    write_image(str(tmp_path / 'mask_000003.png'), np.zeros((16, 16, 3), np.uint16), bit_depth=16)
    with pytest.raises(FlareSRError, match='16-bit mask'):
        read_mask(str(tmp_path / 'mask_000003.png'))


def test_script_errors_are_one_line(tmp_path, capsys):
    """Missing folder, different counts, sizes that differ, an unreadable image: one ``error:`` line, status 2."""
    folders = write_case(str(tmp_path / 'case'), '256x384')
    base = ['--gt', folders['gt'], '--mask', folders['mask']]
    code, out, err = run_script('evaluate_flare7k', ['--result', folders['input'], '--lpips', '--alexnet',
                                                     str(tmp_path / 'none.pth')] + base, capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "error: LPIPS needs torchvision's ImageNet AlexNet weights: put alexnet-owt-7be5be79.pth")
    code, out, err = run_script('evaluate_flare7k', ['--result', str(tmp_path / 'missing')] + base, capsys)
    missing = tmp_path / 'missing'
    assert code == 2 and err.strip().splitlines()[-1] == f'error: --result {missing}: image folder not found'
    os.remove(os.path.join(folders['mask'], 'mask_000002.png'))
    code, out, err = run_script('evaluate_flare7k', ['--input', folders['input']] + base, capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        'error: the folders hold different numbers of images (--result 3, --gt 3, --mask 2); evaluate.py pairs '
        'them by sorted order')
    os.remove(os.path.join(folders['input'], 'input_000002.png'))
    os.remove(os.path.join(folders['gt'], 'gt_000002.png'))
    write_image(os.path.join(folders['input'], 'input_000001.png'), np.zeros((256, 380, 3), np.uint8))
    code, out, err = run_script('evaluate_flare7k', ['--input', folders['input']] + base, capsys)
    assert code == 2 and re.fullmatch(r'error: \S+input_000001.png is 380x256, its label \S+gt_000001.png 384x256',
                                      err.strip().splitlines()[-1])
    with open(os.path.join(folders['input'], 'input_000001.png'), 'wb') as handle:
        handle.write(b'not a png')
    code, out, err = run_script('evaluate_flare7k', ['--input', folders['input']] + base, capsys)
    assert code == 2 and re.fullmatch(r'error: \S+input_000001.png: not a readable image.*',
                                      err.strip().splitlines()[-1])


@pytest.mark.slow
def test_script_prints_evaluate_py_table_for_a_folder_trio(tmp_path):
    """The script as a process on result/gt/mask folders and LPIPS weight files: the protocol line, evaluate.py's
    numbers (4 decimals), the images each mean is over, the fixed-area note at 256x384."""
    name = '256x384'
    folders = write_case(str(tmp_path), name)
    alexnet_path, lin_path = write_lpips_weights(str(tmp_path))
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'evaluate_flare7k.py'), '--result',
                             folders['input'], '--gt', folders['gt'], '--mask', folders['mask'], '--lpips',
                             '--alexnet', alexnet_path, '--lpips-lin', lin_path],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('protocol: Flare7K evaluate.py (8-bit RGB;')
    assert 'input_000000.png | gt_000000.png | mask_000000.png' in lines[1]
    assert lines[2].startswith('note: 3 images are not 512x512')
    printed = printed_numbers(REFERENCE['cases'][name]['printed'])
    rows = {line[:27].strip(): line[27:].split() for line in lines[3:]}
    assert rows['metric (Flare7K protocol)'] == ['mean', 'images']
    for key, images in (('PSNR', '3'), ('SSIM', '3'), ('G-PSNR', '2'), ('S-PSNR', '1'), ('Global-PSNR', '3')):
        assert rows[key] == [f'{printed[key]:.4f}', images], key
    assert rows['LPIPS (AlexNet)'] == [f'{printed["LPIPS"]:.4f}', '3']
    assert rows['Score'][0] == f'{printed["Score"]:.4f}'
    assert 'Flare7K protocol' in result.stderr  # tqdm's progress bar


@pytest.mark.slow
def test_test_py_validation_and_script_give_the_same_flare7k_numbers(tmp_path, capsys):
    """flare_sr/test.py with the five ``_flare7k`` metrics on two sets in Flare7K's test layout (Image_Pair_Loader;
    no mask_folder: each set's own mask/ folder, masks found by name), then the script on the images it saved: the
    same means, and Score the mean of the three region means."""
    folders = write_case(str(tmp_path / 'test_data' / 'real'), '256x384')
    synthetic = write_case(str(tmp_path / 'test_data' / 'synthetic'), '256x384')
    for index in range(3):  # the same images, masks without glare or streak: other scores only if masks are its own
        write_image(os.path.join(synthetic['mask'], f'mask_{index:06d}.png'), np.zeros((256, 384, 3), np.uint8))
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'net_g.pth')
    torch.save({'params': HINet(**{k: v for k, v in POST.items() if k != 'type'}).state_dict()}, checkpoint)
    name = unique_name('flare7k_protocol')
    metrics = {'psnr_flare7k': {'type': 'calculate_psnr_flare7k'}, 'ssim_flare7k': {'type': 'calculate_ssim_flare7k'}}
    metrics.update((f'{key}_flare7k', {'type': metric})
                   for key, metric in (('g_psnr', REGION_TYPES['glare']), ('s_psnr', REGION_TYPES['streak']),
                                       ('global_psnr', REGION_TYPES['global'])))
    opt = {'name': name, 'model_type': 'HINetModel', 'num_gpu': 0, 'network_g': dict(POST),
           'path': {'pretrain_network_g': checkpoint},
           'datasets': {f'test_{index}': {'name': set_name, 'type': 'Image_Pair_Loader', 'dataroot_lq': paths['input'],
                                          'dataroot_gt': paths['gt']}
                        for index, (set_name, paths) in enumerate((('real', folders), ('synthetic', synthetic)))},
           'val': {'save_img': True, 'metrics': metrics}}
    option_file = tmp_path / 'test.yml'
    option_file.write_text(yaml.safe_dump(opt))
    try:
        result = run_train(option_file, tmp_path, script=TEST_SCRIPT, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        records = read_metrics(os.path.join(REPO, 'results', name, 'metrics.json'))['datasets']
        means = records['real']['mean']
        regions = ('g_psnr_flare7k', 's_psnr_flare7k', 'global_psnr_flare7k')
        assert [means[key]['scored'] for key in regions] == [2, 1, 3]
        assert [records['synthetic']['mean'][key]['scored'] for key in regions] == [0, 0, 3]
        saved = os.path.join(REPO, 'results', name, 'visualization', 'real')
        code, out, err = run_script('evaluate_flare7k', ['--result', saved, '--gt', folders['gt'], '--mask',
                                                         folders['mask']], capsys)
        assert code == 0, err
        rows = {line[:27].strip(): line[27:].split() for line in out.splitlines()[3:]}
        for row, key in (('PSNR', 'psnr_flare7k'), ('SSIM', 'ssim_flare7k'), ('G-PSNR', 'g_psnr_flare7k'),
                         ('S-PSNR', 's_psnr_flare7k'), ('Global-PSNR', 'global_psnr_flare7k')):
            assert rows[row] == [f'{means[key]["output"]:.4f}', str(means[key]['scored'])], row
        score = sum(means[key]['output'] for key in regions) / 3
        assert rows['Score'][0] == f'{score:.4f}'
    finally:
        remove_experiment(name)


@pytest.mark.slow
def test_name_shifted_folders_are_scored_by_sorted_order_with_the_first_odd_pair_warned_on_stderr(tmp_path):
    """A real process: the table alone on stdout, one warning line on stderr naming the first pair whose numbers
    differ, exit 0 (the pairing stays evaluate.py's)."""
    folders = write_case(str(tmp_path / 'case'), '256x384')
    for index in (2, 1, 0):  # gt_00000N -> gt_00000(N+1): every pair is shifted by one number
        os.rename(os.path.join(folders['gt'], f'gt_{index:06d}.png'),
                  os.path.join(folders['gt'], f'gt_{index + 1:06d}.png'))
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'evaluate_flare7k.py'), '--result',
                             folders['input'], '--gt', folders['gt'], '--mask', folders['mask']],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'warning' not in result.stdout and result.stdout.startswith('protocol: ')
    assert [line for line in result.stderr.splitlines() if line.startswith('warning:')] == [
        'warning: 3 of 3 pairs join names with different numbers, the first: input_000000.png | gt_000001.png | '
        'mask_000000.png; pairs are by sorted name order, as evaluate.py: check the folders']


@pytest.mark.parametrize('how', ['same path', 'a symlink', 'a/../a'])
def test_result_folder_that_is_the_gt_folder_is_refused(tmp_path, capsys, how):
    """Results scored against themselves gave PSNR inf everywhere, exit 0."""
    folders = write_case(str(tmp_path / 'case'), '256x384')
    gt = folders['gt']
    result = {'same path': gt, 'a symlink': str(tmp_path / 'link'),
              'a/../a': os.path.join(gt, os.pardir, 'gt')}[how]
    if how == 'a symlink':
        os.symlink(gt, result)
    code, out, err = run_script('evaluate_flare7k', ['--result', result, '--gt', gt], capsys)
    assert code == 2 and out == ''
    assert err.splitlines() == [f'error: --gt {gt} is the --result folder {result}; each must be its own folder '
                                '(results scored against themselves give PSNR inf)']
    code, _, err = run_script('evaluate_flare7k', ['--result', folders['input'], '--gt', gt, '--mask', result], capsys)
    assert code == 2 and err.startswith(f'error: --mask {result} is the --gt folder {gt};')


def test_a_grayscale_result_against_a_colour_label_is_refused_by_name(tmp_path, capsys):
    """The readers give a gray file 3 equal channels: it was scored silently; evaluate.py stops on the shapes."""
    folders = write_case(str(tmp_path / 'case'), '256x384')
    gray = os.path.join(folders['input'], 'input_000001.png')
    cv2.imwrite(gray, cv2.cvtColor(cv2.imread(gray), cv2.COLOR_BGR2GRAY))
    code, out, err = run_script('evaluate_flare7k', ['--result', folders['input'], '--gt', folders['gt']], capsys)
    assert code == 2
    assert err.splitlines()[-1] == (f'error: {gray}: a grayscale result, its label '
                                    f'{os.path.join(folders["gt"], "gt_000001.png")} colour; the Flare7K protocol '
                                    'compares like with like (evaluate.py stops on the shape mismatch)')
    label = os.path.join(folders['gt'], 'gt_000001.png')
    cv2.imwrite(label, cv2.cvtColor(cv2.imread(label), cv2.COLOR_BGR2GRAY))  # both gray: 3 equal channels, scored
    code, out, err = run_script('evaluate_flare7k', ['--result', folders['input'], '--gt', folders['gt']], capsys)
    assert code == 0, err


def _small_pairs(root, result_names, gt_names):
    """32x32 noise labels and results a little off them, saved under ``root/result`` and ``root/gt``."""
    rng = np.random.RandomState(0)
    for result_name, gt_name in zip(result_names, gt_names):
        label = rng.randint(0, 256, (32, 32, 3)).astype(np.uint8)
        write_image(os.path.join(root, 'gt', gt_name), label)
        write_image(os.path.join(root, 'result', result_name), np.clip(label.astype(int) + 3, 0, 255).astype(np.uint8))
    return os.path.join(root, 'result'), os.path.join(root, 'gt')


def test_numbers_in_names_are_compared_as_values(tmp_path, capsys):
    """Flare7K's test scripts name results 00000_deflare.png: every pair of a right pairing was warned about. Results
    numbered without padding (result_10 sorts before result_2) were warned about naming result_0 | gt_000000, a right
    pair; the warning names the first wrong one."""
    result, gt = _small_pairs(str(tmp_path / 'flare7k'), [f'{i:05d}_deflare.png' for i in range(3)],
                              [f'gt_{i:06d}.png' for i in range(3)])
    code, out, err = run_script('evaluate_flare7k', ['--result', result, '--gt', gt], capsys)
    assert code == 0 and 'warning' not in err, err
    result, gt = _small_pairs(str(tmp_path / 'unpadded'), [f'result_{i}.png' for i in range(12)],
                              [f'gt_{i:06d}.png' for i in range(12)])
    code, out, err = run_script('evaluate_flare7k', ['--result', result, '--gt', gt], capsys)
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith('warning:')] == [
        'warning: 10 of 12 pairs join names with different numbers, the first: result_10.png | gt_000002.png; pairs '
        'are by sorted name order, as evaluate.py: check the folders']
    # the image's number is a name's longest run of digits: v2_out_000003 | gt_000002 share a 2, not a number
    result, gt = _small_pairs(str(tmp_path / 'prefixed'), ['v2_out_000001.png', 'v2_out_000003.png'],
                              ['gt_000001.png', 'gt_000002.png'])
    code, out, err = run_script('evaluate_flare7k', ['--result', result, '--gt', gt], capsys)
    assert [line for line in err.splitlines() if line.startswith('warning:')] == [
        'warning: 1 of 2 pairs join names with different numbers, the first: v2_out_000003.png | gt_000002.png; pairs '
        'are by sorted name order, as evaluate.py: check the folders']
    result, gt = _small_pairs(str(tmp_path / 'real'), ['flare7kpp_real_000000.png'], ['gt_000000.png'])
    code, out, err = run_script('evaluate_flare7k', ['--result', result, '--gt', gt], capsys)
    assert code == 0 and 'warning' not in err, err


def test_a_jpeg_mask_is_refused(tmp_path, capsys):
    """JPEG noise puts green a level above red, which evaluate.py's wrapped uint8 R - G reads as a full streak: S-PSNR
    was scored over 2 images where 1 has a streak, on wrong pixels, exit 0."""
    folders = write_case(str(tmp_path / 'case'), '256x384')
    jpeg = os.path.join(folders['mask'], 'mask_000001.jpg')
    png = os.path.join(folders['mask'], 'mask_000001.png')
    cv2.imwrite(jpeg, cv2.imread(png))
    os.remove(png)
    mask = cv2.imread(jpeg)[..., ::-1]
    assert (mask[..., 1] > mask[..., 0]).any() and region_weights(mask)['streak'].max() == 1  # no streak drawn
    code, out, err = run_script('evaluate_flare7k', ['--result', folders['input'], '--gt', folders['gt'], '--mask',
                                                     folders['mask']], capsys)
    assert code == 2 and out == ''
    assert err.splitlines()[-1] == (f'error: {jpeg}: a JPEG mask; its compression noise, where green comes out above '
                                    'red, is a full streak in the Flare7K protocol (uint8 R - G wraps): use the PNG '
                                    'masks')
    with pytest.raises(FlareSRError, match='a JPEG mask'):  # the validation metrics read masks through it too
        calculate_metric({'img': mask, 'img2': mask, 'lq_path': 'input_000001.png'},
                         {'type': 'calculate_s_psnr_flare7k', 'mask_folder': folders['mask']})


def test_images_too_small_for_ssim_or_lpips_are_one_line_naming_the_file(tmp_path, capsys):
    """LPIPS under 31 pixels a side stopped with torch's traceback ("Output size is too small"); SSIM under 7 said
    the size without the file."""
    alexnet_path, lin_path = write_lpips_weights(str(tmp_path))
    for side, message in ((6, 'Flare7K SSIM needs images of at least 7x7 pixels (its window), got 9x6'),
                          (30, 'LPIPS (AlexNet) needs images of at least 31x31 pixels (its pooled features), got '
                               '33x30')):
        rng = np.random.RandomState(side)
        label = rng.randint(0, 256, (side, side + 3, 3)).astype(np.uint8)
        write_image(str(tmp_path / f'gt{side}' / 'gt_000000.png'), label)
        result = str(tmp_path / f'result{side}' / 'result_000000.png')
        write_image(result, 255 - label)
        code, out, err = run_script('evaluate_flare7k', ['--result', os.path.dirname(result), '--gt',
                                                         str(tmp_path / f'gt{side}'), '--alexnet', alexnet_path,
                                                         '--lpips-lin', lin_path], capsys)
        assert code == 2 and err.splitlines()[-1] == f'error: {result}: {message}'
    label = np.random.RandomState(31).randint(0, 256, (31, 31, 3)).astype(np.uint8)
    assert 0 < flare7k_lpips(load_lpips_alex(alexnet_path, lin_path), label, 255 - label) < 1
