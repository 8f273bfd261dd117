"""Neighbors speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's label
images. For each of CPJUMP1's three MeasureObjectNeighbors modules (Cells within
5 px, Nuclei within 1 px, Cells adjacent) it prints CPU seconds for ours and for
cp-measure's ``measureobjectneighbors`` on the same kept labels (cp-measure cannot
take discarded objects into account) and the ratio, after checking the two agree
(apart from cp-measure's FirstClosestObjectNumber, which names the object itself).
Then our time for CellProfiler's configuration (the three modules through
``measure_family``, with the discarded-inclusive images from ``segment_site``)
next to CellProfiler 4.2.8's 1.4 CPU-s per site for the three modules.

    python benchmarks/bench_neighbors.py [--well M02] [--shared ../shared] [--repeat 5]
"""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import numpy as np
import tifffile

from _sites import site_parser  # noqa: E402  (benchmarks/_sites.py)

from cpfeatures.measure import Objects
from cpfeatures.measure._neighbors import FEATURES, measure_family, neighbors

CHANNELS = {"RNA": 3, "DNA": 5}
CELLPROFILER_CPU_S = 1.4  # MeasureObjectNeighbors x 3, CPJUMP1 configuration, per site (reference README)
MODULES = [("Cells", 5, "5"), ("Nuclei", 1, "1"), ("Cells", "adjacent", "Adjacent")]


def cpu(fn, *args, **kwargs):
    t0 = time.process_time()
    out = fn(*args, **kwargs)
    return time.process_time() - t0, out


def load_site(shared: Path, well: str):
    plate = shared / "data" / "cpjump1_example_plate" / "Images"
    ref = shared / "reference" / "cellprofiler"
    r, c = ord(well[0]) - 64, int(well[1:])
    raw, illum = {}, {}
    for role, ch in CHANNELS.items():
        raw[role] = tifffile.imread(plate / f"r{r:02d}c{c:02d}f05p01-ch{ch}sk1fk1fl1.tiff")
        with gzip.open(ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
            illum[role] = np.load(fh)
    with np.load(ref / "labels" / f"{well}_s5_labels.npz") as z:
        labels = {k: z[k].astype(np.int32) for k in z.files}
    return raw, illum, labels


def main() -> None:
    ap = site_parser(__doc__, repeat=5, repeat_help="our runs (best of); cp-measure runs once")
    args = ap.parse_args()
    raw, illum, labels = load_site(args.shared, args.well)

    from cp_measure.multimask.measureobjectneighbors import D_ADJACENT, D_WITHIN, measureobjectneighbors

    neighbors(labels["Cells"][:200, :200], distance=5)  # warm-up (numba cache load)

    print(f"site {args.well}: {labels['Nuclei'].max()} nuclei, {labels['Cells'].max()} cells, "
          f"CellProfiler's label images, same masks for both")
    print(f"{'module':<22}{'ours CPU-s':>12}{'cp-measure':>12}{'ratio':>8}   max |difference|")
    t_ours_all = t_peer_all = 0.0
    for comp, item, suffix in MODULES:
        lab = labels[comp]
        kwargs = {"adjacent": True} if item == "adjacent" else {"distance": item}
        t_ours = min(cpu(neighbors, lab, **kwargs)[0] for _ in range(args.repeat))
        ours = neighbors(lab, **kwargs)
        method = D_ADJACENT if item == "adjacent" else D_WITHIN
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            t_peer, peer = cpu(measureobjectneighbors, lab, lab, method, 5 if item == "adjacent" else item)
        worst = 0.0
        for key in FEATURES:
            if key == "FirstClosestObjectNumber":
                continue
            b = np.asarray(peer[f"Neighbors_{key}_{suffix}"], float)
            a = ours[f"Neighbors_{'FirstClosestObjectNumber' if key == 'SecondClosestObjectNumber' else key}_{suffix}"]
            worst = max(worst, float(np.nanmax(np.abs(a - b))))
        t_ours_all += t_ours
        t_peer_all += t_peer
        print(f"{comp + ' ' + suffix:<22}{t_ours:>12.4f}{t_peer:>12.3f}{t_peer / t_ours:>7.1f}x"
              f"   {worst:.1e}")
    print(f"{'all three':<22}{t_ours_all:>12.4f}{t_peer_all:>12.3f}{t_peer_all / t_ours_all:>7.1f}x")

    from cpfeatures.segment import segment_site

    seg, details = segment_site(raw, illum=illum, return_details=True)
    same = all(np.array_equal(seg[k], labels[k]) for k in ("Nuclei", "Cells"))
    best = np.inf
    for _ in range(args.repeat):
        t0 = time.process_time()
        measure_family(Objects(seg["Cells"]), {}, {"measurements": [5, "adjacent"],
                                                   "discarded": details["CellsUnedited"]})
        measure_family(Objects(seg["Nuclei"]), {}, {"measurements": [1],
                                                    "discarded": details["NucleiSmallRemoved"]})
        best = min(best, time.process_time() - t0)
    print(f"\nCPJUMP1 configuration (3 modules, discarded objects included; our labels "
          f"{'identical to' if same else 'DIFFER from'} CellProfiler's)")
    print(f"{'ours':<34}{best:>8.4f}")
    print(f"{'CellProfiler 4.2.8 (3 modules)':<34}{CELLPROFILER_CPU_S:>8.1f}")
    print(f"{'ratio':<34}{CELLPROFILER_CPU_S / best:>7.1f}x")


if __name__ == "__main__":
    main()
