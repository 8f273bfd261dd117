"""Keep freed memory in the process instead of returning it to the kernel at once.

A site allocates and frees the same few dozen image-sized arrays (5-10 MB each)
over and over. dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(so that freed memory shows up quickly in its memory monitor); with that
setting glibc also stops adapting its mmap threshold, so every such array is a
fresh ``mmap`` whose pages fault in one by one and are unmapped again when the
array dies. On CPJUMP1 sites that costs about 1 CPU-second per site in page
faults (measured: 2.7 -> 3.7 CPU-s/site, 18x more minor faults). Raising the
trim and mmap thresholds lets the worker reuse its heap; peak memory is
unchanged because the next site needs the same sizes again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory(trim_threshold: int = 64 << 20, mmap_threshold: int = 32 << 20) -> bool:
    """Raise glibc's trim and mmap thresholds for this process (once; no-op elsewhere).

    Parameters
    ----------
    trim_threshold : int
        Free memory at the top of the heap kept before it is returned (bytes).
    mmap_threshold : int
        Allocations at least this large get their own mapping (bytes); glibc caps
        it at 32 MiB on 64-bit systems.

    Returns
    -------
    bool
        True if the thresholds are set (glibc on Linux), False if not applicable.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))) and bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)))
    _done = ok
    return ok
