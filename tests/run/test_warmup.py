"""Compiling the kernels once in the client: afterwards a fresh process (a worker) compiles nothing."""

from __future__ import annotations

import json
import subprocess
import sys

from cpfeatures.run.warmup import compile_kernels, kernels_cached

# A fresh interpreter, like a dask worker: run a synthetic site (the illumination reduction
# and every stage) and report which cpfeatures kernels numba had to compile instead of
# loading them from its on-disk cache.
_WORKER = r"""
import json, sys
import numba
from cpfeatures.run.warmup import compile_kernels
compile_kernels(json.loads(sys.argv[1]) if len(sys.argv) > 1 else None)
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


def test_parts_cover_every_stage_once_and_balance():
    from cpfeatures.run.warmup import COMPILE_SECONDS, _stages, plan_parts
    from cpfeatures.config import load_config

    cfg = load_config()
    for n in (1, 2, 3):
        parts = plan_parts(cfg, n)
        flat = [s for p in parts for s in p]
        assert sorted(flat) == sorted(_stages(cfg)) and len(parts) == n
        loads = [sum(COMPILE_SECONDS[s] for s in p) for p in parts]
        assert max(loads) - min(loads) <= max(COMPILE_SECONDS.values()), loads
    only = load_config(overrides={"measure": {"families": ["intensity"], "image_families": []}})
    assert plan_parts(only, 2) == [["segment"], ["intensity"]]  # only what the configuration measures


_PART = r"""
import json, sys
from cpfeatures.run.warmup import compile_kernels
compile_kernels(json.loads(sys.argv[2]), stages=sys.argv[1].split(","))
"""


def test_two_parts_compiled_in_parallel_leave_nothing_to_compile(tmp_path):
    """From an empty cache, as a fresh install: two processes compile one part each, at once; a third
    (a worker) then runs a whole site and compiles nothing."""
    import os

    from cpfeatures.run.warmup import plan_parts
    from cpfeatures.config import load_config

    # four of the stages (segmentation and three families) keep the cold compile to ~20 CPU-s: the
    # mechanism is the same for all of them (test_parts_cover_every_stage_once_and_balance plans them all)
    cfg = load_config(overrides={"measure": {"families": ["intensity", "colocalization", "neighbors"],
                                             "image_families": []}})
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    parts = plan_parts(cfg, 2)
    assert len(parts) == 2
    procs = [subprocess.Popen([sys.executable, "-c", _PART, ",".join(part), json.dumps(cfg)], env=env)
             for part in parts]
    assert [p.wait(timeout=900) for p in procs] == [0, 0]
    out = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(cfg)], env=env, capture_output=True, text=True,
                         timeout=600, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
