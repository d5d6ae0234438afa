"""Held-out flare evaluation: every model trained on the procedural family, scored on flare it never saw.

    python scripts/bench/eval_heldout.py                      # demo data, the tiny options' budgets
    python scripts/bench/eval_heldout.py --iters 600 --batch 8 --patch 64

Training data: SyntheticFlareDataset (fresh procedural flare, flare_sr.data.synthesis) on the demo's
clean crops. Test data: the demo's ``test.csv`` folds, one per held-out family (flare_sr.data.heldout:
psf, raytrace, anamorphic, overlay, veiling) plus flare-free photos, built by ``scripts/make_demo_dataset.py``.
Before the scores it prints each family's statistics (input PSNR mean/p10/p50/p90, flare coverage, light in
frame, clipped share; ``--stat-pairs`` fresh pairs per family on the test photos, heldout_statistics.py)
beside real flare's reference values and their sources (flare_sr.data.heldout.statistics).

Every single model gets the same training budget: ``--iters`` iterations of ``--batch`` crops of
``--patch`` pixels, from the tiny option files (options/tiny/*.yml) otherwise. The cascade is trained by
``flare_sr/train_pipeline.py`` (stage I Pix2Pix, stage II HINet, stage III HINet on stage-I outputs for
``--iters // 2``), so it costs 2.5 budgets; "Pix2Pix alone" is its stage I, "HINet alone" its stage II.
The NAFNet post model (tiny: width 16, one block per level) is trained alone with the same budget and the
HINet stage-II recipe, and so are HINet without the recipe's ``train.fft_opt`` (L1-type loss only) and HINet
with ``train.saturation_mask`` (no loss on clipped light sources). Every model is tested as the demo tests
it, with ``val.darken_only`` (output <= input) and ``val.tile.self_ensemble``; one more column tests the cascade
without ``darken_only``.
Outputs are written by ``flare_sr/test.py`` and scored here with skimage's
PSNR and SSIM. Prints one Markdown table (input first, then each model) and the machine.
A rerun of one ``--prefix`` trains every model anew: the earlier run's pipeline and stage folders move aside
(``<name>_archived_<time>``), since the pipeline would skip (or resume) its stages and score their old models.
"""
import argparse
import copy
import os
import re
import sys

import flare_sr  # noqa: F401  (registers flare_sr; aliases the torchvision module BasicSR 1.4.2 imports)

# isort: split
import numpy as np
from _common import ROOT, machine_name, read_options, run, scale_schedule, write_options
from heldout_statistics import measure, table_lines
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from flare_sr.data.meta_csv import read_split_csv
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.utils.img_util import read_image_uint8
from flare_sr.utils.run_folder import archive, check_name, lock_run

FAMILIES = ('psf', 'raytrace', 'anamorphic', 'overlay', 'veiling', 'clean')
NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'width': 16, 'middle_blk_num': 1,
          'enc_blk_nums': [1, 1, 1], 'dec_blk_nums': [1, 1, 1]}


def load(path):
    return read_options(os.path.join(ROOT, path))


def budgeted(opt, name, args, iters):
    """A copy of a tiny option file renamed ``name``, with the common budget and a schedule scaled to it."""
    opt = copy.deepcopy(opt)
    opt['name'] = name
    train_set = opt['datasets']['train']
    if train_set['type'] == 'SyntheticFlareDataset':
        train_set['dataroot_gt'] = os.path.join(args.data, 'train_clean_img')
    train_set['batch_size_per_gpu'], train_set['gt_size'] = args.batch, args.patch
    scale_schedule(opt['train'], iters)
    opt['logger']['save_checkpoint_freq'] = iters
    opt['logger']['use_tb_logger'] = False
    opt['datasets']['val'].update(dataroot_lq=os.path.join(args.data, 'val_input_img'),
                                  dataroot_gt=os.path.join(args.data, 'val_label_img'))
    return opt


def stage3_options(args):
    """Tiny stage III (options/tiny/hinet_phase2.yml) on the budget: its LMDB under datasets/lmdb/<prefix>_..., its
    photos and their groups (``cross_fit.groups``) from --data, not the demo's the file names; the keys
    train_pipeline derives from stages I and II left out."""
    stage3 = budgeted(load('options/tiny/hinet_phase2.yml'), f'{args.prefix}_hinet_stage3', args, args.iters // 2)
    lmdb = os.path.join(ROOT, 'datasets', 'lmdb', f'{args.prefix}_stage3_p64_s32')
    stage3['datasets']['train'].update(dataroot_lq=f'{lmdb}/lq.lmdb', dataroot_gt=f'{lmdb}/gt.lmdb')
    stage3['datasets']['train']['gt_size'] = min(args.patch, 64)
    source = stage3['stage3_source']
    for key in ('main_opt', 'main_checkpoint'):  # train_pipeline derives these three from stages I and II
        source.pop(key)
    stage3['path'].pop('pretrain_network_g')
    source.update(dataroot_lq=os.path.join(args.data, 'train_input_img'),
                  dataroot_gt=os.path.join(args.data, 'train_label_img'))
    if (source.get('cross_fit') or {}).get('groups'):  # the file's is relative to the repository: the default demo's
        source['cross_fit']['groups'] = os.path.join(args.data, os.path.basename(source['cross_fit']['groups']))
    return stage3


def checkpoint(name):
    return os.path.join(ROOT, 'experiments', name, 'models', 'net_g_latest.pth')


def archive_earlier_runs(owner, names, root=ROOT):
    """Move the folders ``root/experiments/<name>`` of ``names`` (the pipeline's and its stages') and
    ``<name>_fold<k>of<K>`` (stage I's cross-fit fold models) that an earlier run of this --prefix left aside
    (``<name>_archived_<time>``, nothing deleted); returns the moved paths. The pipeline skips a stage its done marker
    calls finished and resumes one with a training state, so without this the cascade, "Pix2Pix alone" and "HINet
    alone" columns would be that run's models, trained on its budget. First this process holds the run lock of
    ``owner`` (``<prefix>_heldout``): a live run of the prefix is one FlareSRError, its folders left in place."""
    experiments = os.path.join(root, 'experiments')
    lock_run(experiments, owner)
    entries = os.listdir(experiments) if os.path.isdir(experiments) else []
    folds = [entry for name in names for entry in entries if re.fullmatch(re.escape(name) + r'_fold\d+of\d+', entry)]
    moved = [archive(os.path.join(experiments, name)) for name in [*names, *folds]]
    return [path for path in moved if path]


def test_options(args, name, main_opt, post_net, main_ckpt, post_ckpt, darken_only=True):
    """A CascadeModel test option file scoring one variant (either stage may be off) on every family."""
    datasets = {}
    for index, family in enumerate(FAMILIES, start=1):
        datasets[f'test_{index}'] = dict(
            name=f'demo_{family}', type='PairedFlareDataset', phase='test', io_backend={'type': 'disk'},
            dataroot_lq=os.path.join(args.data, 'test_input_img'),
            dataroot_gt=os.path.join(args.data, 'test_label_img'),
            meta_csv=os.path.join(args.data, 'test.csv'), fold=family)
    opt = dict(name=name, model_type='CascadeModel', num_gpu=0, manual_seed=0, datasets=datasets,
               network_main=main_opt['network_g'], network_post=post_net,
               cascade=dict(use_main=main_ckpt is not None, use_post=post_ckpt is not None),
               path=dict(pretrain_network_main=main_ckpt or checkpoint(f'{args.prefix}_pix2pix'),
                         pretrain_network_post=post_ckpt or checkpoint(f'{args.prefix}_hinet')),
               val=dict(save_img=True, suffix=None, tile=dict(size=128, overlap=32, batch=2, self_ensemble=True),
                        darken_only=darken_only,
                        metrics={'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}))
    return opt


def score(args, results_name):
    """{family: (input psnr, input ssim, output psnr, output ssim)} means over the family's images."""
    rows = read_split_csv(os.path.join(args.data, 'test.csv'))
    values = {}
    for row in rows:
        stem = os.path.splitext(row['input_img'])[0]
        out = read_image_uint8(os.path.join(ROOT, 'results', results_name, 'visualization', f'demo_{row["fold"]}',
                                            f'{stem}.png'))
        lq = read_image_uint8(os.path.join(args.data, 'test_input_img', row['input_img']))
        gt = read_image_uint8(os.path.join(args.data, 'test_label_img', row['label_img']))
        entry = [peak_signal_noise_ratio(gt, lq, data_range=255) if row['fold'] != 'clean' else float('inf'),
                 structural_similarity(gt, lq, channel_axis=2, data_range=255),
                 peak_signal_noise_ratio(gt, out, data_range=255),
                 structural_similarity(gt, out, channel_axis=2, data_range=255)]
        values.setdefault(row['fold'], []).append(entry)
    return {family: np.mean(np.array(entries, dtype=float), axis=0) for family, entries in values.items()}


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default='datasets/demo', help='folder from scripts/make_demo_dataset.py')
    parser.add_argument('--iters', type=int, default=300, help='training iterations per model (the budget)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--patch', type=int, default=64)
    parser.add_argument('--prefix', default='eval', help='experiment names: <prefix>_pix2pix, <prefix>_hinet, ...')
    parser.add_argument('--stat-pairs', type=int, default=60,
                        help='fresh pairs per held-out family for the flare statistics printed before the scores')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    check_name(args.prefix, '--prefix', 'experiments/, results/ and datasets/lmdb/')  # it starts folder names there
    for flag, least in (('iters', 2), ('batch', 1), ('patch', 1), ('stat_pairs', 1)):  # stage III: iters // 2
        if getattr(args, flag) < least:
            raise FlareSRError(f'--{flag.replace("_", "-")} {getattr(args, flag)}: must be at least {least}')
    args.data = os.path.abspath(args.data)
    if not os.path.isfile(os.path.join(args.data, 'test.csv')) or not os.path.isdir(
            os.path.join(args.data, 'train_clean_img')):
        raise FlareSRError(f'{args.data}: not a demo dataset with held-out test folds; run '
                           'python scripts/make_demo_dataset.py --out datasets/demo')
    p2p = budgeted(load('options/tiny/pix2pix.yml'), f'{args.prefix}_pix2pix', args, args.iters)
    hinet = budgeted(load('options/tiny/hinet_phase1.yml'), f'{args.prefix}_hinet', args, args.iters)
    stage3 = stage3_options(args)
    moved = archive_earlier_runs(f'{args.prefix}_heldout', [f'{args.prefix}_pipeline', p2p['name'], hinet['name'],
                                                            stage3['name']])
    if moved:
        print(f'note: --prefix {args.prefix}: an earlier run\'s folders (their models would be scored instead of this '
              f'run\'s) moved to {", ".join(os.path.relpath(path, ROOT) for path in moved)}', file=sys.stderr,
              flush=True)
    folder = os.path.join(ROOT, 'experiments', f'{args.prefix}_heldout')
    os.makedirs(folder, exist_ok=True)
    paths = {name: write_options(folder, name, opt) for name, opt in
             (('pix2pix', p2p), ('hinet', hinet), ('stage3', stage3))}
    seconds = {}
    jobs = [('cascade (I+II+III)', ['flare_sr/train_pipeline.py', '--stage1', paths['pix2pix'], '--stage2',
                                    paths['hinet'], '--stage3', paths['stage3'], '--name', f'{args.prefix}_pipeline',
                                    '--quiet'])]
    singles = [  # (label, experiment name, change): post models trained alone on the same budget
        ('NAFNet alone', f'{args.prefix}_nafnet', {'network_g': NAFNET}),
        ('HINet, no FFT loss', f'{args.prefix}_hinet_l1', {'fft_opt': None}),
        ('HINet + saturation mask', f'{args.prefix}_hinet_mask', {'saturation_mask': {}})]
    for label, name, change in singles:
        opt = budgeted(load('options/tiny/hinet_phase1.yml'), name, args, args.iters)
        if 'network_g' in change:
            opt['network_g'] = change['network_g']
        else:
            opt['train'].update(change)
            opt['train'] = {key: value for key, value in opt['train'].items() if value is not None}
        paths[name] = write_options(folder, name, opt)
        jobs.append((label, ['flare_sr/train.py', '-opt', paths[name]]))
    for label, command in tqdm(jobs, desc='training', unit='job'):
        seconds[label] = run(command, os.path.join(folder, f'train_{len(seconds)}.log'))
    variants = [('cascade', p2p, hinet['network_g'], checkpoint(p2p['name']), checkpoint(stage3['name'])),
                ('cascade, no darken_only', p2p, hinet['network_g'], checkpoint(p2p['name']),
                 checkpoint(stage3['name']), False),
                ('Pix2Pix alone', p2p, hinet['network_g'], checkpoint(p2p['name']), None),
                ('HINet alone', p2p, hinet['network_g'], None, checkpoint(hinet['name']))]
    for label, name, change in singles:
        variants.append((label, p2p, change.get('network_g', hinet['network_g']), None, checkpoint(name)))
    table = {}
    for label, *variant in tqdm(variants, desc='testing', unit='model'):
        name = f'{args.prefix}_test_{len(table)}'
        path = write_options(folder, f'test_{len(table)}', test_options(args, name, *variant))
        run(['flare_sr/test.py', '-opt', path], os.path.join(folder, f'{name}.log'))
        table[label] = score(args, name)
    first = next(iter(table.values()))
    families = [family for family in FAMILIES if family in first and family != 'clean']
    print(f'\nHeld-out flare statistics, {args.stat_pairs} fresh pairs per family on the demo test photos, beside '
          'real flare (sources: flare_sr/data/heldout/statistics.py; "estimate" is reasoned, not published)\n')
    print('\n'.join(table_lines(measure(families, args.stat_pairs))))
    print(f'\nHeld-out flare, {os.path.relpath(args.data, ROOT)} test folds; machine: {machine_name()}')
    print(f'Budget per model: {args.iters} iterations x batch {args.batch} x {args.patch}px crops of fresh procedural '
          f'flare (cascade: stage I + II + III = {args.iters} + {args.iters} + {args.iters // 2}); training wall time '
          + ', '.join(f'{label} {value:.0f} s' for label, value in seconds.items()))
    print('PSNR dB / SSIM, mean per family ("clean": flare-free photos, input = label)\n')
    header = '| family | input |' + ''.join(f' {label} |' for label in table)
    print(header)
    print('|---' * (2 + len(table)) + '|')
    for family in FAMILIES:
        if family not in first:
            continue
        cells = [f'{first[family][0]:.2f} / {first[family][1]:.3f}' if family != 'clean' else 'inf / 1.000']
        cells += [f'{scores[family][2]:.2f} / {scores[family][3]:.3f}' for scores in table.values()]
        print(f'| {family} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
