"""keep_freed_cpu_memory: a large block freed and allocated again must not be page-faulted in again."""
import subprocess
import sys

import pytest

CHILD = r'''
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from flare_sr.utils.cpu_memory import keep_freed_cpu_memory
    assert keep_freed_cpu_memory()
np.ones(64 * 2**20, np.uint8)  # first use: faults either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block = np.ones(64 * 2**20, np.uint8)  # an activation-sized buffer, written, then freed
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


def _faults(mode):
    result = subprocess.run([sys.executable, '-c', CHILD, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
@pytest.mark.slow
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    default, kept = _faults('default'), _faults('keep')
    assert default > 100  # glibc mmaps every new 64 MiB block, so its pages fault in again (huge pages or not)
    assert kept * 20 < default
