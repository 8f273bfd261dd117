"""The whole plate run, end to end, on a plate built from the real example sites.

Builds a plate of ``--sites`` wells by symlinking the 7 real CPJUMP1 sites (1080x1080,
8 channels) in a cycle, runs ``run_plate`` with 1 and 2 local workers, and prints CPU
seconds per site (summed over the worker processes), sites per minute, peak memory per
worker, and the ratio to CellProfiler 4.2.8's measured 134 CPU-s per site for the same
pipeline (plus ~65 s start-up per run).

    python benchmarks/bench_run.py [--sites 14] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _plates import symlink_plate  # noqa: E402

from cpfeatures.run import run_plate  # noqa: E402

CELLPROFILER_CPU_PER_SITE = 134.0


def _worker_stats():
    import resource

    import psutil

    t = psutil.Process().cpu_times()
    return {"cpu": t.user + t.system, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--sites", type=int, default=14)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        plate = symlink_plate(args.shared / "data" / "cpjump1_example_plate", tmp / "plate", args.sites)
        print(f"plate: {args.sites} real 1080x1080 sites x 8 channels (symlinked)\n")
        print(f"{'workers':>8}{'wall s':>9}{'sites/min':>11}{'CPU-s/site':>12}{'peak MB/worker':>16}"
              f"{'vs CellProfiler':>17}")
        for n in args.workers:
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            before = client.run(_worker_stats)
            address = cluster.scheduler_address
            t0 = time.perf_counter()
            summary = run_plate(plate, tmp / f"run{n}.zarr", scheduler=address, progress=False)
            wall = time.perf_counter() - t0
            after = client.run(_worker_stats)
            client.close()
            cluster.close()
            cpu = sum(after[w]["cpu"] - before[w]["cpu"] for w in after)
            peak = max(a["maxrss_mb"] for a in after.values())
            per_site = cpu / len(summary.done)
            print(f"{n:>8}{wall:>9.1f}{len(summary.done) / wall * 60:>11.1f}{per_site:>12.2f}{peak:>16.0f}"
                  f"{CELLPROFILER_CPU_PER_SITE / per_site:>16.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
