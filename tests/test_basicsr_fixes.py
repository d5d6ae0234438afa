"""Fast checks of the fixes' start-up decisions: the part of an epoch a resumed run skips, validation sets that
share a name, the BasicSR version (the backend choice and GPU settings: tests/test_utils/test_hardware.py; the
latest training state: tests/test_utils/test_checkpoint.py)."""
import pytest

from flare_sr import basicsr_fixes
from flare_sr.errors import FlareSRError


@pytest.mark.parametrize('iters_done, epoch, iters_per_epoch, batch, expected', [
    (5, 1, 3, 2, 4),  # epoch 1 covers iterations 4..6: 2 done, 2 samples each
    (6, 1, 3, 2, 6),  # the whole epoch done (saved at its last iteration, before the epoch counter moved)
    (3, 1, 3, 2, 0),  # saved at the end of epoch 0, resumed at the start of epoch 1
    (0, 0, 3, 4, 0),
    (7, 1, 3, 2, None),  # iteration 7 lies in epoch 2: the batch size or the data changed since the save
    (2, 1, 3, 2, None),
    (20, 4, 5, 3, 0),  # a later epoch, just started: nothing to skip
    (23, 4, 5, 3, 9),  # 3 of its 5 iterations done, 3 samples each
    (25, 4, 5, 1, 5),  # its last iteration done, batch 1
    (1, 0, 1, 16, 1 * 16),  # one iteration per epoch, done
    (26, 4, 5, 3, None),  # past the epoch's end
    (0, 1, 3, 2, None),  # an epoch counter ahead of the iterations: consumed would be negative
])
def test_resumed_epoch_skip(iters_done, epoch, iters_per_epoch, batch, expected):
    assert basicsr_fixes.resumed_epoch_skip(iters_done, epoch, iters_per_epoch, batch) == expected


def test_validation_sets_sharing_a_name_are_refused():
    opt = {'datasets': {'train': {'name': 'real'}, 'val_1': {'name': 'real'}, 'val_2': {'name': 'synthetic'}}}
    basicsr_fixes._check_dataset_names(opt)  # the training set may share a validation set's name
    opt['datasets']['val_3'] = {'name': 'real'}
    with pytest.raises(FlareSRError, match=r"^datasets.val_3.name: 'real' is also the name of datasets.val_1"):
        basicsr_fixes._check_dataset_names(opt)


@pytest.mark.parametrize('other, save_flare, folder', [
    ('real_compare', False, 'real_compare'), ('real_flare', True, 'real_flare')])
def test_a_validation_set_named_as_another_sets_compare_or_flare_folder_is_refused(other, save_flare, folder):
    """test.py saves set 'real' to visualization/real/, its comparisons to real_compare/ and (val.save_flare) its
    flare layers to real_flare/: a set named real_compare or real_flare wrote its images over them."""
    opt = {'datasets': {'test_1': {'name': 'real'}, 'test_2': {'name': other}}, 'val': {'save_flare': save_flare}}
    with pytest.raises(FlareSRError, match=rf"^datasets.test_2.name: '{other}' is the folder visualization/{folder}/ "
                                           r"where datasets.test_1 \('real'\) saves its"):
        basicsr_fixes._check_dataset_names(opt)
    opt['val']['save_flare'] = not save_flare
    if save_flare:  # without flare layers, real_flare is a free name
        basicsr_fixes._check_dataset_names(opt)


@pytest.mark.parametrize('version', ['1.4.1', '1.3.5', '1.5.0.dev0'])
def test_another_basicsr_version_is_refused_in_one_line(version):
    with pytest.raises(FlareSRError) as error:
        basicsr_fixes.check_basicsr_version(version)
    message = str(error.value)
    assert '\n' not in message and f'basicsr {version} is installed' in message and 'basicsr==1.4.2' in message


def test_the_installed_basicsr_is_the_supported_one():
    basicsr_fixes.check_basicsr_version()  # raises on any other version
