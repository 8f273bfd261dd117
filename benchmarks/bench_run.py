"""The whole plate run, end to end, on a plate built from the real example sites.

Builds a plate of ``--sites`` wells by symlinking the 7 real CPJUMP1 sites (1080x1080,
8 channels) in a cycle, runs ``run_plate`` with 1 and 2 local workers, and prints CPU
seconds per site (summed over the worker processes, illumination included), sites per
minute, peak memory per worker, and the ratio to CellProfiler 4.2.8's measured 134 CPU-s
per site for the same pipeline (plus ~65 s start-up per run).

Then the peer: on the first ``--peer-sites`` sites, in this process, our illumination
correction and segmentation followed by cp-measure's functions (its fastest, numba,
where it has them) for the same CPJUMP1 feature set (8 images x Nuclei, Cells, Cytoplasm:
intensity, texture at 3 scales, granularity, radial distribution, size/shape with
Zernike and Feret, colocalization of the 28 image pairs), against our ``process_site``
on the same sites.

    python benchmarks/bench_run.py [--sites 16] [--workers 1 2] [--peer-sites 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
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


def _cp_measure_site(corrected: dict, labels: dict) -> None:
    """cp-measure's functions for the CPJUMP1 feature set of one site (results discarded)."""
    from itertools import combinations

    from cp_measure.core.measurecolocalization import (get_correlation_manders_fold, get_correlation_overlap,
                                                       get_correlation_pearson, get_correlation_rwc)
    from cp_measure.core.measuregranularity import get_granularity
    from cp_measure.core.measureobjectintensitydistribution import get_radial_distribution
    from cp_measure.core.measureobjectsizeshape import get_sizeshape, get_zernike
    from cp_measure.core.numba._feret import get_feret
    from cp_measure.core.numba.measureobjectintensity import get_intensity
    from cp_measure.core.numba.measuretexture import get_texture

    from skimage.segmentation import relabel_sequential

    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        lab = relabel_sequential(labels[comp])[0]  # cp-measure's size/shape needs labels without gaps
        get_sizeshape(lab, None)
        get_zernike(lab, None)
        get_feret(lab, None)
        for image in corrected.values():
            get_intensity(lab, image, legacy=True)
            for scale in (3, 5, 10):
                get_texture(lab, image, scale)
            get_granularity(lab, image, 0.5, 0.5, 10, 16)
            get_radial_distribution(lab, image, scaled=True, bin_count=4, maximum_radius=100)
        for a, b in combinations(list(corrected), 2):
            for fn in (get_correlation_pearson, get_correlation_manders_fold, get_correlation_overlap,
                       get_correlation_rwc):
                fn(corrected[a], corrected[b], lab)


def compare_with_cp_measure(plate_dir: Path, store_path: Path, n_sites: int) -> None:
    """Ours (process_site) vs our segmentation + cp-measure on the same sites, CPU-s per site."""
    from cpfeatures.io import read_plate
    from cpfeatures.pipeline import correct_images, process_site
    from cpfeatures.segment import segment_site
    from cpfeatures.store import Store

    plate = read_plate(plate_dir)
    illum = Store(str(store_path)).read_illum()
    sites = plate.sites[:n_sites]
    raw = plate.load_site(*sites[0])
    process_site(raw, illum)  # warm-up (numba) for both sides
    corrected = correct_images(raw, illum)
    small = {k: v[:200, :200] for k, v in corrected.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cp_measure_site(small, {k: v[:200, :200] for k, v in segment_site(corrected).items()})
    ours = peer = 0.0
    for site in sites:
        raw = plate.load_site(*site)
        t0 = time.process_time()
        process_site(raw, illum)
        ours += time.process_time() - t0
        t0 = time.process_time()
        corrected = correct_images(raw, illum)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cp-measure's divisions by zero on empty radial bins
            _cp_measure_site(corrected, segment_site(corrected))
        peer += time.process_time() - t0
    n = len(sites)
    print(f"\nsame {n} site(s), one process: ours (process_site) {ours / n:.2f} CPU-s/site; our segmentation + "
          f"cp-measure {peer / n:.1f} CPU-s/site; ratio {peer / ours:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--sites", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--peer-sites", type=int, default=1, help="sites for the cp-measure comparison (0: skip)")
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
        if args.peer_sites > 0:
            compare_with_cp_measure(plate, tmp / f"run{args.workers[-1]}.zarr", args.peer_sites)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
