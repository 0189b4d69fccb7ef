"""keep_freed_memory: freed large blocks are reused, not page-faulted in again."""
import platform
import subprocess
import sys

import pytest

CHILD = """
import resource, sys, torch
import phenaki_core.pipelines.pipeline_phenaki  # what the CLI and the studio have loaded when they render
from phenaki_core.runtime import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "kept" else False
for _ in range(2):  # 64 MiB: its first touches fault either way
    torch.ones(16 << 20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.ones(16 << 20).sum()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    runs = {}
    for name in ("default", "kept"):
        out = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True, check=True)
        took, faults = out.stdout.split()
        runs[name] = (took == "True", int(faults))
    assert runs["kept"][0]
    # 64 MiB is 16,384 pages: glibc's default maps and unmaps it each time, 5 x 16,384 faults.
    # Kept, the block is reused; a small allocation landing in its place can cost one more.
    assert runs["default"][1] > 5 * 10_000
    assert runs["kept"][1] < runs["default"][1] / 3
