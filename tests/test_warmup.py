"""Compiling the kernels once in the client: afterwards a fresh process (a worker) compiles nothing."""

from __future__ import annotations

import json
import subprocess
import sys

from cpfeatures._warmup import compile_kernels, kernels_cached

# A fresh interpreter, like a dask worker: run a synthetic site (the illumination reduction
# and every stage) and report which cpfeatures kernels numba had to compile instead of
# loading them from its on-disk cache.
_WORKER = r"""
import json, sys
import numba
from cpfeatures._warmup import compile_kernels
compile_kernels()
compiled = []
for name, module in list(sys.modules.items()):
    if not name.startswith("cpfeatures"):
        continue
    for attr, obj in vars(module).items():
        if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.signatures:
            if sum(obj.stats.cache_misses.values()):
                compiled.append(f"{name}.{attr}")
print(json.dumps(sorted(set(compiled))))
"""


def test_compile_once_then_workers_load_from_the_cache():
    compile_kernels()
    assert kernels_cached()
    out = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True, timeout=600, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
