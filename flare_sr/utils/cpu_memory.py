"""Stop glibc from handing big freed blocks back to the OS between forward passes on the CPU.

glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mmap, so each large
activation of a big tile is page-faulted and zeroed again: 1.2 million faults per tiny-HINet forward
at 896x896, which made big tiles 2-3x slower per pixel than small ones. Keeping freed memory for reuse
(M_MMAP_MAX=0, M_TRIM_THRESHOLD at its maximum) removes the faults; the price is that the process's
resident memory stays at its peak, which is what a CPU inference or training run reaches anyway.
"""
import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_cpu_memory():
    """Apply the setting to this process; False where the C library has no ``mallopt`` (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False
