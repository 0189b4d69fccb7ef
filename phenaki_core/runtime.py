"""Process-wide settings that make PyTorch faster on CPU; entry points call them once.

glibc serves each allocation above its mmap threshold (at most 32 MiB) with fresh pages
from the kernel and returns them when the block is freed. A training step allocates and
frees dozens of tensors that size, so each is page-faulted in and zeroed again: 55,000
faults and 12-19% of the tokenizer's training step on these machines
(bench/bench_allocator.py). Raising the thresholds lets freed blocks be reused instead.
"""
import ctypes
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 256 << 20


def keep_freed_memory() -> bool:
    """Let glibc keep and reuse freed blocks of up to 256 MiB. True when it took effect
    (Linux with glibc only; elsewhere the allocator is left as it is)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))
