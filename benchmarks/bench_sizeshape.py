"""Size/shape speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's Cells masks, the CPJUMP1
configuration (Zernike to degree 9, no advanced moments). cp-measure runs get_sizeshape
(calculate_advanced=False, new_features=False, its cheapest CellProfiler-equivalent call),
get_zernike and get_feret. Ours is timed from the label image (building the Objects included).
Prints CPU seconds for both and the ratio, checks the two agree, then our time for the three
object sets of a site next to CellProfiler 4.2.8's 5.7 CPU-s per site for MeasureObjectSizeShape.

    python benchmarks/bench_sizeshape.py [--well M02] [--shared ../shared] [--repeat 5]
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from _sites import site_parser  # noqa: E402  (benchmarks/_sites.py)

from cpfeatures.measure import Objects
from cpfeatures.measure._sizeshape import measure_family

CELLPROFILER_CPU_S = 5.7  # MeasureObjectSizeShape, CPJUMP1 configuration, per site (reference README)


def load_labels(shared: Path, well: str) -> dict[str, np.ndarray]:
    with np.load(shared / "reference" / "cellprofiler" / "labels" / f"{well}_s5_labels.npz") as z:
        return {k: z[k].astype(np.int32) for k in z.files}


def ours(labels: np.ndarray) -> dict[str, np.ndarray]:
    return measure_family(Objects(labels), {})


def peer(labels: np.ndarray) -> dict[str, np.ndarray]:
    from cp_measure.core.measureobjectsizeshape import get_feret, get_sizeshape, get_zernike

    out = {}
    out.update(get_sizeshape(labels, None, calculate_advanced=False, new_features=False))
    out.update(get_zernike(labels, None))
    out.update(get_feret(labels, None))
    return out


def best_cpu(fn, *args, repeat: int = 1):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn(*args)
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    ap = site_parser(__doc__, repeat=5, repeat_help="runs of each (best of)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    labels = load_labels(args.shared, args.well)
    cells = labels["Cells"]

    crop = np.unique(cells[:200, :200], return_inverse=True)[1].reshape(200, 200).astype(np.int32)
    ours(crop)  # warm-up: numba compilation / cache load (cp-measure wants labels 1..N)
    peer(crop)
    t_ours, mine = best_cpu(ours, cells, repeat=args.repeat)
    t_peer, theirs = best_cpu(peer, cells, repeat=args.repeat)
    worst = 0.0
    for key, values in theirs.items():
        a, b = mine[f"AreaShape_{key}"], np.asarray(values, float)
        worst = max(worst, float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))

    print(f"site {args.well}: {cells.max()} cells, same masks, CPJUMP1 settings (Zernike degree 9), "
          f"{len(mine)} columns")
    print(f"{'':<44}{'CPU-s':>8}")
    print(f"{'ours (measure_family, from labels)':<44}{t_ours:>8.3f}")
    print(f"{'cp-measure sizeshape + zernike + feret':<44}{t_peer:>8.3f}")
    print(f"{'ratio':<44}{t_peer / t_ours:>7.1f}x   (max relative difference {worst:.1e})")

    best = np.inf
    for _ in range(args.repeat):
        t0 = time.process_time()
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            ours(labels[comp])
        best = min(best, time.process_time() - t0)
    print("\nCPJUMP1 configuration (Nuclei, Cells, Cytoplasm)")
    print(f"{'ours':<44}{best:>8.3f}")
    print(f"{'CellProfiler 4.2.8 MeasureObjectSizeShape':<44}{CELLPROFILER_CPU_S:>8.1f}")
    print(f"{'ratio':<44}{CELLPROFILER_CPU_S / best:>7.1f}x")


if __name__ == "__main__":
    main()
