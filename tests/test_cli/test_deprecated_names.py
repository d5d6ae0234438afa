"""Former names keep working: an option file written with the archs' old argument names (``in_ch``, ``ngf``,
``ndf``, ``n_layers``) and the old top-level ``residual`` trains through a real train.py, with exactly one
deprecation note per renamed key that names the new key; Python callers of the archs get a clear TypeError."""
import pytest

from flare_sr.archs.patchgan_arch import PatchGANDiscriminator
from flare_sr.archs.pix2pix_unet_arch import Pix2PixUNet
from flare_sr.utils.options_check import OptionChecker, fold_renamed_arguments
from tests.helpers import make_flare_pairs, pix2pix_options, run_train, write_options

OLD_UNET = {'type': 'Pix2PixUNet', 'in_ch': 3, 'out_ch': 3, 'num_downs': 5, 'ngf': 4, 'norm': 'batch'}
OLD_PATCHGAN = {'type': 'PatchGANDiscriminator', 'in_ch': 6, 'ndf': 4, 'n_layers': 2}
RENAMED = {'network_g.in_ch': 'network_g.num_in_ch', 'network_g.out_ch': 'network_g.num_out_ch',
           'network_g.ngf': 'network_g.num_feat', 'network_d.in_ch': 'network_d.num_in_ch',
           'network_d.ndf': 'network_d.num_feat', 'network_d.n_layers': 'network_d.num_layers'}


def test_an_old_style_option_file_trains_with_one_note_per_renamed_key(tmp_path, experiment):
    data = {'train': make_flare_pairs(str(tmp_path / 'train'), 2, size=(32, 32), seed=1),
            'val': make_flare_pairs(str(tmp_path / 'val'), 1, size=(32, 32), seed=2, prefix='test')}
    opt = pix2pix_options(data, experiment('pytest_old_names'), total_iter=1)
    opt['datasets']['train']['gt_size'] = 32
    opt.update(network_g=dict(OLD_UNET), network_d=dict(OLD_PATCHGAN), residual=True)  # the old residual key too
    path = write_options(tmp_path / 'old_style.yml', opt)
    result = run_train(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if 'deprecated' in line]
    expected = [f'note: {path}: {old} is deprecated: use {new}' for old, new in RENAMED.items()]
    assert sorted(notes) == sorted(expected + [f'note: {path}: residual is deprecated: use network_g.residual: true'])
    assert 'End of training' in result.stdout + result.stderr


def test_renamed_arguments_are_folded_without_touching_shared_sections():
    shared = dict(OLD_UNET)
    opt = {'network_g': shared, 'network_d': dict(OLD_PATCHGAN, num_feat=4)}  # old and new agree: fine
    notes, problems = fold_renamed_arguments(opt)
    assert problems == [] and len(notes) == 6
    assert opt['network_g'] == {'type': 'Pix2PixUNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_downs': 5,
                                'num_feat': 4, 'norm': 'batch'}
    assert shared == OLD_UNET  # replaced, never written into
    assert Pix2PixUNet(**{k: v for k, v in opt['network_g'].items() if k != 'type'}).size_multiple == 32
    untouched = {'network_g': {'type': 'HINet', 'in_chn': 3, 'wf': 4}}  # HINet keeps its official names
    assert fold_renamed_arguments(untouched) == ([], []) and untouched['network_g']['in_chn'] == 3


def test_an_old_and_a_new_name_that_disagree_are_one_error():
    opt = dict(name='x', model_type='Pix2PixModel', datasets={},
               network_g=dict(type='Pix2PixUNet', ngf=4, num_feat=8, num_downs=5))
    problems = OptionChecker(False).check(opt)
    assert problems == ['network_g.ngf: 4 contradicts network_g.num_feat: 8 (ngf is the deprecated name of '
                        'num_feat)']


def test_python_callers_passing_an_old_name_get_a_type_error_naming_the_new_one():
    with pytest.raises(TypeError, match='Pix2PixUNet: ngf was renamed num_feat; in_ch was renamed num_in_ch'):
        Pix2PixUNet(ngf=4, in_ch=3, num_downs=5)
    with pytest.raises(TypeError, match='PatchGANDiscriminator: n_layers was renamed num_layers'):
        PatchGANDiscriminator(n_layers=2)
    with pytest.raises(TypeError, match='unexpected keyword argument'):  # anything else: Python's own error
        Pix2PixUNet(num_fet=4)
