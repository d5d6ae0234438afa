"""Split strategies and the meta CSV format (the script: tests/test_scripts/test_split_dataset.py)."""
import collections

import pytest

from flare_sr.data.meta_csv import make_split, read_split_csv, resolve_pairs, select_rows, write_split_csv
from flare_sr.errors import FlareSRError


def fake_pairs(count):
    return [(f'train_{10000 + i}', f'/lq/train_input_{10000 + i}.png', f'/gt/train_label_{10000 + i}.png')
            for i in range(count)]


def test_random_split_is_seeded_and_sized():
    pairs = fake_pairs(40)
    rows = make_split(pairs, [(8, 8)] * 40, 'random', val_ratio=0.1, seed=0)
    assert collections.Counter(row['fold'] for row in rows) == {'train': 36, 'val': 4}
    assert rows == make_split(pairs, [(8, 8)] * 40, 'random', val_ratio=0.1, seed=0)
    other = make_split(pairs, [(8, 8)] * 40, 'random', val_ratio=0.1, seed=1)
    assert [r['fold'] for r in rows] != [r['fold'] for r in other]
    assert rows[3] == dict(img_id='train_10003', input_img='train_input_10003.png',
                           label_img='train_label_10003.png', fold=rows[3]['fold'], width=8, height=8)


def test_kfold_puts_every_pair_in_exactly_one_balanced_fold():
    rows = make_split(fake_pairs(23), [(8, 8)] * 23, 'kfold', folds=5, seed=4)
    counts = collections.Counter(row['fold'] for row in rows)
    assert set(counts) == {'0', '1', '2', '3', '4'} and sorted(counts.values()) == [4, 4, 5, 5, 5]
    train = select_rows(rows, ['0', '1', '3', '4'], 'split.csv')
    val = select_rows(rows, 2, 'split.csv')
    assert len(train) + len(val) == 23 and not {r['img_id'] for r in train} & {r['img_id'] for r in val}
    with pytest.raises(FlareSRError, match='--full-train has no meaning with k-fold'):
        make_split(fake_pairs(23), [(8, 8)] * 23, 'kfold', full_train=True)


def test_size_split_validates_only_on_test_sized_images():
    sizes = [(2448, 3264) if i % 3 == 0 else (1224, 1632) for i in range(30)]
    rows = make_split(fake_pairs(30), sizes, 'size', val_ratio=0.2, seed=0)
    val = [row for row in rows if row['fold'] == 'val']
    assert len(val) == 6 and all((row['height'], row['width']) == (2448, 3264) for row in val)
    with pytest.raises(FlareSRError) as refusal:  # photos of other sizes, e.g. HxW given as WxH by mistake
        make_split(fake_pairs(5), [(10, 12)] * 4 + [(96, 128)], 'size')
    assert str(refusal.value) == ('no pair of the test size 2448x3264 (HxW) to validate on (the pairs are 10x12, '
                                  '96x128); give --test-size HxW of the photos yours will be judged on, or '
                                  '--strategy random')


def test_full_train_rows_are_selected_by_train_and_by_val():
    rows = make_split(fake_pairs(20), [(8, 8)] * 20, 'random', val_ratio=0.25, seed=0, full_train=True)
    assert collections.Counter(row['fold'] for row in rows) == {'train': 15, 'train+val': 5}
    assert len(select_rows(rows, 'train', 'x.csv')) == 20
    assert len(select_rows(rows, 'val', 'x.csv')) == 5


def test_csv_round_trip_and_bad_csv_errors(tmp_path):
    rows = make_split(fake_pairs(6), [(8, 9)] * 6, 'random', val_ratio=0.3, seed=2)
    write_split_csv(tmp_path / 'split.csv', rows)
    assert read_split_csv(tmp_path / 'split.csv') == [{k: str(v) for k, v in row.items()} for row in rows]
    (tmp_path / 'bad.csv').write_text('img_id,input_img,fold\n1,a.png,train\n')
    with pytest.raises(FlareSRError, match=r'bad\.csv: missing column\(s\) label_img'):
        read_split_csv(tmp_path / 'bad.csv')
    (tmp_path / 'bad.csv').write_text('img_id,input_img,label_img,fold\n1,a.png,b.png,train\n2,c.png,,val\n')
    with pytest.raises(FlareSRError, match=r'bad\.csv: line 3 has an empty label_img'):
        read_split_csv(tmp_path / 'bad.csv')


def test_a_split_csv_edited_by_hand_reads_as_meant(tmp_path):
    """Spaces around cells, header names and '+', a BOM, Windows line ends and reserved tags in capitals select
    the rows meant; without the clean-up the header was 'missing' and 'train + val' rows were never selected."""
    (tmp_path / 'split.csv').write_bytes('\ufeffimg_id, input_img ,label_img,fold\r\n a , a.png , b.png , Train \r\n'
                                         'c,c.png,d.png,train + val\r\ne,e.png,f.png,val\r\n'.encode())
    rows = read_split_csv(tmp_path / 'split.csv')
    assert [row['fold'] for row in rows] == ['train', 'train+val', 'val']
    assert rows[0] == dict(img_id='a', input_img='a.png', label_img='b.png', fold='train')
    assert [row['img_id'] for row in select_rows(rows, 'train', 'split.csv')] == ['a', 'c']
    assert [row['img_id'] for row in select_rows(rows, ' Val', 'split.csv')] == ['c', 'e']


def test_rows_left_out_under_a_tag_close_to_the_selected_fold_are_said_once(tmp_path, capsys):
    """A misspelt tag (trian, "train val") silently dropped its rows from fold train; a tag of one's own that looks
    alike (rain) must still work, so the rows left out are a warning, not an error, and once per file and tag."""
    (tmp_path / 'split.csv').write_text('img_id,input_img,label_img,fold\na,a.png,b.png,train\nc,c.png,d.png,trian\n'
                                        'e,e.png,f.png,rain\ng,g.png,h.png,train val\ni,i.png,j.png,psf\n')
    rows = read_split_csv(tmp_path / 'split.csv')
    for _ in range(2):
        assert [row['img_id'] for row in select_rows(rows, 'train', 'split.csv')] == ['a']
    assert capsys.readouterr().err.splitlines() == [
        f'warning: split.csv: 1 row(s) tagged "{tag}" are not selected by fold train (a misspelling? tags are joined '
        'with "+", e.g. train+val)' for tag in ('rain', 'train val', 'trian')]
    assert [row['img_id'] for row in select_rows(rows, 'rain', 'split.csv')] == ['e']


@pytest.mark.parametrize('body, message', [
    ('a,a.png,b.png,train\na,c.png,d.png,val\n', 'line 3: img_id a is listed twice (also line 2); keep one row'),
    ('a,a.png,b.png,train\nc,a.png,b.png,val\n', 'line 3: input_img a.png is listed twice (also line 2)'),
    ('a,flare, 1.png,b.png,train\n', 'line 2 has 5 cells, the header 4 (quote a name holding a comma'),
])
def test_hand_edited_rows_that_would_be_dropped_or_doubled_are_errors(tmp_path, body, message):
    """A misspelt fold tag was never selected, a repeated row trained twice, an unquoted comma shifted the cells."""
    (tmp_path / 'split.csv').write_text('img_id,input_img,label_img,fold\n' + body)
    with pytest.raises(FlareSRError) as refusal:
        read_split_csv(tmp_path / 'split.csv')
    assert str(refusal.value).startswith(f'{tmp_path / "split.csv"}: {message}')


def test_other_tags_are_kept_and_bad_encodings_or_separators_are_one_line(tmp_path):
    (tmp_path / 'test.csv').write_text('img_id,input_img,label_img,fold\na,a.png,b.png,psf\nc,c.png,d.png,clean\n')
    assert [row['fold'] for row in read_split_csv(tmp_path / 'test.csv')] == ['psf', 'clean']  # the demo's families
    (tmp_path / 'latin.csv').write_bytes(b'img_id,input_img,label_img,fold\ncaf\xe9,a.png,b.png,train\n')
    with pytest.raises(FlareSRError, match=r'latin\.csv: meta CSV is not UTF-8 text \(save it as UTF-8\)$'):
        read_split_csv(tmp_path / 'latin.csv')
    (tmp_path / 'semi.csv').write_text('img_id;input_img;label_img;fold\na;a.png;b.png;train\n')
    with pytest.raises(FlareSRError, match='columns must be separated by commas'):
        read_split_csv(tmp_path / 'semi.csv')


def test_a_csv_row_naming_one_file_as_input_and_label_is_refused(tmp_path):
    (tmp_path / 'lq').mkdir()
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'gt' / 'a.png').write_bytes(b'')
    rows = [dict(img_id='a', input_img='../gt/a.png', label_img='a.png', fold='train')]
    with pytest.raises(FlareSRError, match=r'lq/\.\./gt/a\.png: listed in split\.csv \(img_id a\) as its own label '
                                           r'.*, as is every input \(1 row\(s\)\)'):
        resolve_pairs(rows, str(tmp_path / 'lq'), str(tmp_path / 'gt'), 'split.csv')
    (tmp_path / 'lq' / 'b.png').write_bytes(b'')  # beside a flared pair, a flare-free one linked to its label is fine
    (tmp_path / 'gt' / 'b.png').write_bytes(b'')
    rows.append(dict(img_id='b', input_img='b.png', label_img='b.png', fold='train'))
    assert len(resolve_pairs(rows, str(tmp_path / 'lq'), str(tmp_path / 'gt'), 'split.csv')) == 2
