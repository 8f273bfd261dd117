"""The first run on a machine: numba compilation from an empty cache.

Each measurement uses a new, empty ``NUMBA_CACHE_DIR``, as a fresh install has:

1. ours: ``cpfeatures run data/example_plate`` as the quick start runs it (2 local workers,
   each compiling its share of the kernels); the ``compiling`` phase is timed from the
   progress lines, and the whole run too;
2. the peer, the way the first run used to compile: every kernel in one process
   (``compile_kernels()``), then the same run with a warm cache;
3. the compile time of each stage in one process (what ``cpfeatures.run.warmup.COMPILE_SECONDS``
   balances the parts with).

    python benchmarks/bench_compile.py [--workers 2] [--stages]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLATE = REPO / "data" / "example_plate"


def first_run(cache: Path, out: Path, workers: int) -> tuple[float, float]:
    """(seconds compiling, seconds in all) of a run of the example plate with ``cache`` as numba's cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cpfeatures.cli", "run", str(PLATE), "-o", str(out), "--workers",
                           str(workers), "--progress", "lines"], env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    stamps = [datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S")
              for line in done.stderr.splitlines() if re.match(r"\d{4}-\d\d-\d\d \S+ compiling", line)]
    compiling = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    return compiling, total


def one_process(cache: Path, stages: list[str] | None = None) -> float:
    """Seconds to compile ``stages`` (default: every kernel) in one process from ``cache``."""
    code = ("import time\nimport cpfeatures.pipeline\nfrom cpfeatures.run.warmup import compile_kernels\n"
            f"t0 = time.perf_counter()\ncompile_kernels(stages={stages!r})\nprint(time.perf_counter() - t0)\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stages", action="store_true", help="also time each stage alone (slow)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_compile_"))
    try:
        compiling, total = first_run(tmp / "cache1", tmp / "a.zarr", args.workers)
        print(f"ours: first run of the example plate, {args.workers} workers: compiling {compiling:.0f} s, "
              f"whole run {total:.0f} s")
        sequential = one_process(tmp / "cache2")
        _, warm = first_run(tmp / "cache2", tmp / "b.zarr", args.workers)
        print(f"peer: every kernel compiled in one process first: {sequential:.0f} s, then the run "
              f"{warm:.0f} s = {sequential + warm:.0f} s")
        print(f"ratio (one-process compile / ours): {sequential / compiling:.2f}x; whole first run "
              f"{(sequential + warm) / total:.2f}x")
        if args.stages:
            from cpfeatures.run.warmup import COMPILE_SECONDS

            print(f"\n{'stage':>15}{'seconds':>9}{'table':>7}")
            for stage in COMPILE_SECONDS:
                seconds = one_process(tmp / f"cache_{stage}", [stage])
                print(f"{stage:>15}{seconds:>9.1f}{COMPILE_SECONDS[stage]:>7.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
