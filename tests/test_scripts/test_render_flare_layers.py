"""scripts/render_flare_layers.py: our families as Flare7K++ layers that Flare7kpp_Pair_Loader reads."""
import os

from flare_sr.data.flare_layer_dataset import Flare7kpp_Pair_Loader
from flare_sr.data.sampling import SampleKey
from tests.helpers import flare7kpp_dataset_options, make_flare7kpp_tree, run_script, snapshot


def test_layers_in_the_flare7kpp_layout_train_the_loader_and_repeat_exactly(tmp_path, capsys):
    argv = ['--family', 'procedural', 'anamorphic', '--count', '3', '--size', '48']
    status, out, _ = run_script('render_flare_layers', ['--out', str(tmp_path / 'a'), *argv], capsys)
    assert status == 0 and 'procedural: 3 layers of 48 px' in out and 'anamorphic: 3 layers' in out
    for family in ('procedural', 'anamorphic'):
        for folder in ('Compound_Flare', 'Light_Source'):
            assert sorted(os.listdir(tmp_path / 'a' / family / folder)) == ['00000.png', '00001.png', '00002.png']
        assert os.path.isfile(tmp_path / 'a' / family / 'contact_sheet.png')
    assert run_script('render_flare_layers', ['--out', str(tmp_path / 'b'), *argv], capsys)[0] == 0
    assert snapshot(tmp_path / 'a') == snapshot(tmp_path / 'b')  # same seed, same bytes

    before = snapshot(tmp_path / 'a')
    status, _, err = run_script('render_flare_layers', ['--out', str(tmp_path / 'a'), *argv], capsys)
    assert status == 2 and 'already exists' in err and snapshot(tmp_path / 'a') == before

    tree = make_flare7kpp_tree(tmp_path / 'tree', flares=1)
    layers = {family: str(tmp_path / 'a' / family) for family in ('procedural', 'anamorphic')}
    opt = flare7kpp_dataset_options(tree, img_size=40, phase='train', reflective_dict=None, data_ratio=[0.5, 0.5],
                                    scattering_dict={f: f'{p}/Compound_Flare' for f, p in layers.items()},
                                    light_dict={f: f'{p}/Light_Source' for f, p in layers.items()})
    assert Flare7kpp_Pair_Loader.check_options(opt, 'datasets.train') == []
    sample = Flare7kpp_Pair_Loader(opt)[SampleKey(0, 0)]
    assert sample['lq'].shape == (3, 40, 40) and 'Compound_Flare' in sample['flare_path']


def test_an_out_that_is_a_file_is_said_so_in_one_line(tmp_path, capsys):
    """It was '<out>/procedural: File exists' (the OS error of making the family's folder inside a file)."""
    tree = tmp_path / 'tree.json'
    tree.write_text('{}')
    code, out, err = run_script('render_flare_layers', ['--out', tree, '--count', 1, '--size', 32], capsys)
    assert code == 2 and err == (f'error: {tree}: --out is a file, not a folder (it receives one <family>/ folder per '
                                 'family)\n')
    code, out, err = run_script('render_flare_layers', ['--out', tree / 'layers', '--count', 1, '--size', 32], capsys)
    assert code == 2 and err == (f'error: {tree / "layers"}: --out is inside {tree}, which is a file, not a folder (it '
                                 'receives one <family>/ folder per family)\n')
    assert tree.read_text() == '{}' and os.listdir(tmp_path) == ['tree.json']
