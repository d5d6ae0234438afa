"""scripts/bench/eval_transfer.py: the leave-one-family-out measure end to end, and its adoption rule.

The end-to-end run trains three real HINets (two left-out folds and the all-family one, 2 iterations each) on a
tiny demo tree; the rule is checked on hand-written records whose answer is known: one adopted, one rejected for
each condition.
"""
import json
import os
import shutil

import pytest
import yaml

from flare_sr.data.meta_csv import write_dacon_csv
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
