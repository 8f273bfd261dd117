"""keep_freed_memory: image-sized allocations stop faulting in fresh pages under dask's malloc settings."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")

_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from cpfeatures.run.malloc import keep_freed_memory
    if sys.argv[1] == "on":
        assert keep_freed_memory()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(1_300_000)  # warm up numpy's own allocations
    before = faults()
    for _ in range(40):
        a = np.ones(1_300_000)  # 10 MB, the size of a 1080 x 1080 float64 image
        del a
    print(faults() - before)
""")


def _faults(mode: str) -> int:
    # dask's nanny starts workers with this variable; it is what makes the default expensive
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_keep_freed_memory_stops_page_faults_per_allocation():
    off, on = _faults("off"), _faults("on")
    # without it every 10 MB array is a new mapping whose pages fault in again (fewer than its
    # 2,539 4-KiB pages when the kernel backs it with huge pages); with it the heap is reused
    assert off >= 40 * 100
    assert on <= off / 20
