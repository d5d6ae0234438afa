"""scripts/bench/eval_transfer.py: the leave-one-family-out measure end to end, and its adoption rule.

The end-to-end run trains three real HINets (two left-out folds and the all-family one, 2 iterations each) on a
tiny demo tree; the rule is checked on hand-written records whose answer is known: one adopted, one rejected for
each condition.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from flare_sr.data.meta_csv import write_dacon_csv
from flare_sr.errors import FlareSRError
from flare_sr.utils.img_util import read_image_uint8, write_image
from tests.helpers import REPO, load_script, remove_experiment, run_main_in_process, unique_name, write_clean_photos

RULE = ('Adopt B over A when (1) the mean left-out gain over all families improves by more than two standard errors '
        "of the per-seed paired difference, (2) no family's left-out gain falls by more than 0.3 dB, and (3) the "
        'flare-free test photos stay at 40 dB or better on average with none below 35 dB. Otherwise keep A.')


def _demo_tree(root):
    """The parts of a demo dataset the script reads: training crops, and two flare-free test photos in test.csv."""
    write_clean_photos(str(root / 'train_clean_img'))
    photos = write_clean_photos(str(root / 'photos'), names=('rocket.jpg', 'coins.png'))
    for number, name in enumerate(sorted(os.listdir(photos)), start=20000):
        photo = read_image_uint8(os.path.join(photos, name))
        write_image(root / 'test_input_img' / f'test_input_{number}.png', photo)
        write_image(root / 'test_label_img' / f'test_label_{number}.png', photo)
    write_dacon_csv(root / 'test.csv', 'test', [20000, 20001], folds=['clean', 'clean'])
    return root


@pytest.mark.slow
def test_two_families_one_seed_end_to_end(tmp_path, capsys):
    bench = load_script('bench/eval_transfer')
    data, prefix, record_path = _demo_tree(tmp_path / 'demo'), unique_name('transfer_test'), tmp_path / 'a.json'
    runs = [f'{prefix}_transfer_s0_{fold}' for fold in ('ghosts', 'anamorphic', 'all')]
    argv = ['--data', data, '--families', 'anamorphic', 'ghosts', '--seeds', '0', '--iters', '2',
            '--train-per-family', '2', '--test-per-family', '2', '--prefix', prefix, '--json', record_path,
            '--set', 'datasets.train.gt_size=32', '--set', 'datasets.train.batch_size_per_gpu=2',
            '--set', 'train.fft_opt=null']
    try:
        code, out, err = run_main_in_process(bench.main, argv, capsys)
        assert code == 0, err
        folder = os.path.join(REPO, 'experiments', f'{prefix}_transfer')
        for run in runs:
            assert os.path.isfile(os.path.join(REPO, 'experiments', run, 'models', 'net_g_latest.pth'))
            with open(os.path.join(folder, f'{run}.yml')) as handle:
                opt = yaml.safe_load(handle)
            assert opt['datasets']['train']['gt_size'] == 32 and opt['train']['fft_opt'] is None
            assert opt['train']['total_iter'] == 2 and opt['manual_seed'] == 0
        assert '1 seeds x (2 left-out + 1 all-family) = 3 training runs of 2 iterations' in out
    finally:
        for run in runs:
            remove_experiment(run)
        shutil.rmtree(os.path.join(REPO, 'experiments', f'{prefix}_transfer'), ignore_errors=True)
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if cells[0] in ('ghosts', 'anamorphic', 'mean over families'):
            rows[cells[0]] = cells[1:]
    assert list(rows) == ['ghosts', 'anamorphic', 'mean over families']  # the families' own order
    record = json.loads(record_path.read_text())
    seed = record['seeds']['0']
    assert record['config']['families'] == ['ghosts', 'anamorphic']
    assert set(seed['left_out']) == set(seed['in_family']) == set(seed['input']) == {'ghosts', 'anamorphic'}
    assert set(seed['flare_free']) == {'ghosts', 'anamorphic', 'all'}
    assert all(len(photos) == 2 and all(0 < value <= 100 for value in photos) for photos in seed['flare_free'].values())
    for family in ('ghosts', 'anamorphic'):
        assert rows[family][0] == f'{seed["input"][family]:.2f}'
        assert rows[family][1] == f'{seed["left_out"][family]:+.2f} +- n/a'
        assert seed['input'][family] < 60  # the family really adds flare
    assert f'mean {sum(sum(p) for p in seed["flare_free"].values()) / 6:.2f} dB' in out
    code, _, err = run_main_in_process(bench.main, argv, capsys)  # the record exists: refused before any work
    assert code == 2 and 'a.json: exists' in err and err.strip().count('\n') == 0


def _record(gains, flare_free, in_family=None):
    """A --json record: ``gains`` {family: left-out gain per seed}, ``flare_free`` PSNRs of one model per seed,
    ``in_family`` {family: in-family gain per seed} (default: the left-out gains)."""
    seeds = {}
    for index in range(len(next(iter(gains.values())))):
        seeds[str(index)] = dict(left_out={family: values[index] for family, values in gains.items()},
                                 in_family={family: values[index] for family, values in (in_family or gains).items()},
                                 flare_free={'all': flare_free})
    return dict(config=dict(families=list(gains)), seeds=seeds)


@pytest.mark.parametrize('b_gains, b_clean, verdict', [
    ({'a': [1.5, 1.6, 1.4], 'b': [2.5, 2.4, 2.6]}, [45, 41, 38], 'adopt B (held: (1) (2) (3); failed: none'),
    ({'a': [2.0, 0.3, 1.1], 'b': [2.0, 2.0, 2.0]}, [45, 45, 45], 'keep A (held: (2) (3); failed: (1);'),
    ({'a': [3.0, 3.1, 2.9], 'b': [1.6, 1.6, 1.6]}, [45, 45, 45], 'keep A (held: (1) (3); failed: (2);'),
    ({'a': [1.5, 1.6, 1.4], 'b': [2.5, 2.4, 2.6]}, [39, 39, 39], 'keep A (held: (1) (2); failed: (3);'),
    ({'a': [1.5, 1.6, 1.4], 'b': [2.5, 2.4, 2.6]}, [50, 50, 34], 'keep A (held: (1) (2); failed: (3);'),
])
def test_the_adoption_rule_on_records_with_a_known_answer(tmp_path, capsys, b_gains, b_clean, verdict):
    a = tmp_path / 'a.json'
    b = tmp_path / 'b.json'
    a.write_text(json.dumps(_record({'a': [1.0, 1.1, 0.9], 'b': [2.0, 2.0, 2.0]}, [45, 45, 45])))
    b.write_text(json.dumps(_record(b_gains, b_clean)))
    code, out, err = run_main_in_process(load_script('bench/eval_transfer').main, ['--compare', a, b], capsys)
    assert code == 0, err
    assert f'Adoption rule: {RULE}' in out
    assert f'Verdict: {verdict}' in out


def test_bad_input_is_one_line(tmp_path, capsys):
    bench = load_script('bench/eval_transfer')
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(_record({'c': [1.0]}, [45])))
    good = tmp_path / 'good.json'
    good.write_text(json.dumps(_record({'a': [1.0], 'b': [1.0]}, [45])))
    (tmp_path / 'notes.json').write_text('[1, 2]')
    cases = [(['--data', tmp_path / 'none'], 'make_demo_dataset.py --out datasets/demo'),
             (['--families', 'psf', 'lens'], 'unknown lens (known: glare, streaks, ghosts'),
             (['--families', 'psf'], 'need two or more'),
             (['--set', 'train.nothing.here=1'], 'train.nothing is not a section of'),
             (['--set', 'fft_opt'], 'expected key.path=value'),
             (['--opt', 'options/tiny/test_cascade.yml'], 'not a training option file (it needs datasets.train'),
             (['--compare', good, other], 'different families'),
             (['--compare', good, tmp_path / 'missing.json'], 'missing.json: --compare file not found'),
             (['--compare', good, tmp_path / 'notes.json'], 'not a --json file of eval_transfer.py')]
    for argv, words in cases:
        code, out, err = run_main_in_process(bench.main, argv, capsys)
        assert code == 2 and words in err and err.strip().count('\n') == 0, (argv, err)
        assert 'training runs' not in out


def test_compare_cautions_when_the_runs_did_not_learn_their_own_families(tmp_path, capsys):
    """Round 7's HINet runs gained +0.06 dB in-family: a comparison of such runs ranks nothing, and says so."""
    a, b = tmp_path / 'a.json', tmp_path / 'b.json'
    a.write_text(json.dumps(_record({'a': [1.0, 1.1, 0.9], 'b': [2.0, 2.0, 2.0]}, [45, 45, 45])))
    b.write_text(json.dumps(_record({'a': [0.1, 0.1, 0.1], 'b': [0.0, 0.1, 0.0]}, [45, 45, 45],
                                    in_family={'a': [0.1, 0.0, 0.1], 'b': [0.2, 0.1, 0.1]})))
    code, out, err = run_main_in_process(load_script('bench/eval_transfer').main, ['--compare', a, b], capsys)
    assert code == 0, err
    assert 'Caution: B gains +0.10 dB in-family (< 0.5 dB)' in out and 'Caution: A' not in out


def test_compare_refuses_records_scored_on_other_test_pairs_or_incomplete(tmp_path, capsys):
    """A record of --test-per-family 12 holds six more test pairs per seed than one of 6: their paired difference
    would mix test sets, silently. A record that an edit left without a family's gain is one line, not a KeyError."""
    a, b, partial = tmp_path / 'a.json', tmp_path / 'b.json', tmp_path / 'partial.json'
    record = _record({'a': [1.0, 1.1, 0.9], 'b': [2.0, 2.0, 2.0]}, [45, 45, 45])
    a.write_text(json.dumps(dict(record, config=dict(record['config'], test_per_family=6))))
    b.write_text(json.dumps(dict(record, config=dict(record['config'], test_per_family=12))))
    del record['seeds']['1']['in_family']['b']
    partial.write_text(json.dumps(record))
    bench = load_script('bench/eval_transfer')
    for pair, words in (([a, b], '--compare: the files were scored on other test pairs (--test-per-family 6 vs 12)'),
                        ([a, partial], 'partial.json: seed 1 lacks the left-out or in-family gain of a family')):
        code, out, err = run_main_in_process(bench.main, ['--compare', *pair], capsys)
        assert code == 2 and words in err and err.strip().count('\n') == 0, err
        assert 'Verdict' not in out


def test_a_held_out_rerun_moves_the_earlier_runs_pipeline_and_stages_aside(tmp_path, capsys):
    """eval_heldout.py trains the cascade with train_pipeline.py, which skips a stage its done marker calls finished:
    a second run of one --prefix with another --iters scored the first run's cascade, Pix2Pix and HINet as its own.
    Its earlier folders move aside (nothing deleted); bad budgets are one line before anything is made."""
    heldout = load_script('bench/eval_heldout')
    experiments = tmp_path / 'experiments'
    (experiments / 'p_pipeline').mkdir(parents=True)
    (experiments / 'p_pipeline' / 'stage_I.done').write_text(json.dumps({'experiment': 'p_pix2pix'}))
    for name in ('p_pix2pix', 'p_pix2pix_fold2of2', 'other_pix2pix_fold1of2'):
        (experiments / name / 'models').mkdir(parents=True)
        (experiments / name / 'models' / 'net_g_latest.pth').write_bytes(b'earlier')
    script = (f'import time; from flare_sr.utils.run_folder import lock_run; lock_run({str(experiments)!r}, '
              '"p_heldout"); print(flush=True); time.sleep(60)')
    holder = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    try:  # a live run of the prefix holds its lock: its folders stay where they are
        holder.stdout.readline()
        with pytest.raises(FlareSRError, match='p_heldout is in use by another run'):
            heldout.archive_earlier_runs('p_heldout', ['p_pipeline', 'p_pix2pix', 'p_hinet'], root=str(tmp_path))
        assert (experiments / 'p_pipeline' / 'stage_I.done').is_file()
    finally:
        holder.kill()
        holder.wait()
    moved = heldout.archive_earlier_runs('p_heldout', ['p_pipeline', 'p_pix2pix', 'p_hinet'], root=str(tmp_path))
    assert sorted(os.path.basename(path).split('_archived_')[0] for path in moved) == [
        'p_pipeline', 'p_pix2pix', 'p_pix2pix_fold2of2']
    kept = ['.locks', 'other_pix2pix_fold1of2']  # the locks, and another prefix's fold model
    assert sorted(os.listdir(experiments)) == sorted([*kept, *map(os.path.basename, moved)])
    assert all(os.path.isfile(os.path.join(path, 'models', 'net_g_latest.pth')) for path in moved[1:])
    for flag, value, words in (('--iters', 1, '--iters 1: must be at least 2'),
                               ('--batch', 0, '--batch 0: must be at least 1')):
        code, _, err = run_main_in_process(heldout.main, [flag, value, '--data', tmp_path / 'none'], capsys)
        assert code == 2 and words in err and err.strip().count('\n') == 0, err


def test_held_out_stage_three_reads_the_data_folders_photo_groups(tmp_path):
    """eval_heldout.py's stage III takes its photos from --data, and so the photo groups of its cross-fit folds: the
    option file's datasets/demo/train_photos.csv is the default demo's, another dataset's or none."""
    heldout = load_script('bench/eval_heldout')
    args = heldout.parse_args(['--data', str(tmp_path), '--prefix', 'p', '--iters', '4'])
    source = heldout.stage3_options(args)['stage3_source']
    assert source['cross_fit']['groups'] == os.path.join(str(tmp_path), 'train_photos.csv')
    assert source['dataroot_lq'] == os.path.join(str(tmp_path), 'train_input_img')


def test_held_out_statistics_refuse_a_negative_seed_in_one_line(capsys):
    code, out, err = run_main_in_process(load_script('bench/heldout_statistics').main, ['--seed', '-1'], capsys)
    assert code == 2 and err.strip() == 'error: --seed -1: must be non-negative' and 'measured' not in out


@pytest.mark.parametrize('flag, value, words', [
    ('--heldout', 'bogus', '--heldout: unknown bogus; choose from psf'),
    ('--iters', '0', '--iters 0: must be at least 1'),
    ('--name', '../x', "--name: '../x' holds the path separator")])
def test_eval_layers_refuses_bad_arguments_before_making_its_work_folder(tmp_path, capsys, flag, value, words):
    """eval_layers.py made --work, rendered the training layers and only then failed in a subprocess (see a log);
    the --work it had made then refused the corrected rerun."""
    code, _, err = run_main_in_process(load_script('bench/eval_layers').main,
                                       ['--work', tmp_path / 'work', flag, value], capsys)
    assert code == 2 and words in err and err.strip().count('\n') == 0, err
    assert not os.path.exists(tmp_path / 'work')
