"""Radial distribution speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's Cells masks,
5 fluorescent channels (DNA, ER, RNA, AGP, Mito), CPJUMP1 settings (4 scaled bins, each
object its own centre). cp-measure recomputes the label geometry (distance to the edge,
centres, propagation) for every channel; we compute it once per label image. Prints CPU
seconds for ours and cp-measure and the ratio, how many objects agree, then our time for
CellProfiler's configuration (8 images x Nuclei, Cells, Cytoplasm) next to CellProfiler
4.2.8's 5.2 CPU-s per site for MeasureObjectIntensityDistribution.

    python benchmarks/bench_radial.py [--well M02] [--shared ../shared] [--repeat 3]
"""

from __future__ import annotations

import time

import numpy as np

from _sites import FLUOR, cpu, load_site, site_parser  # noqa: E402  (benchmarks/_sites.py)

from cpfeatures.measure import Objects
from cpfeatures.measure._radial import measure_family

CELLPROFILER_CPU_S = 5.2  # MeasureObjectIntensityDistribution, CPJUMP1 configuration, per site (reference README)


def main() -> None:
    ap = site_parser(__doc__, repeat=3, repeat_help="our runs (best of); cp-measure runs once")
    args = ap.parse_args()
    images, labels = load_site(args.shared, args.well)
    cells = labels["Cells"]
    fluor = {k: images[k] for k in FLUOR}

    from cp_measure.core.measureobjectintensitydistribution import get_radial_distribution

    # warm-up (numba compilation / cache load) on a crop
    measure_family(Objects(cells[:200, :200]), {"DNA": fluor["DNA"][:200, :200]})

    t_ours = min(cpu(measure_family, Objects(cells), fluor, None, {})[0] for _ in range(args.repeat))
    ours = measure_family(Objects(cells), fluor)
    t_peer, agree, total = 0.0, 0, 0
    for name, im in fluor.items():
        t, peer = cpu(get_radial_distribution, cells, im, scaled=True, bin_count=4, maximum_radius=100)
        t_peer += t
        same = np.ones(int(cells.max()), bool)
        for key, values in peer.items():
            feature, suffix = key.split("_")[1], key.split("_")[2]
            mine = ours[f"RadialDistribution_{feature}_{name}_{suffix}"]
            same &= np.isclose(mine, np.asarray(values, float), rtol=1e-5, atol=1e-9)
        agree += int(same.sum())
        total += same.size

    print(f"site {args.well}: {cells.max()} cells, 5 channels, same masks and images, CPJUMP1 settings")
    print(f"{'':<40}{'CPU-s':>8}")
    print(f"{'ours (measure_family)':<40}{t_ours:>8.3f}")
    print(f"{'cp-measure get_radial_distribution':<40}{t_peer:>8.3f}")
    print(f"{'ratio':<40}{t_peer / t_ours:>7.1f}x")
    print(f"objects x channels with all 12 values equal (rtol 1e-5): {agree}/{total} "
          "(the rest: cp-measure breaks centre ties by the first pixel, CellProfiler as scipy's sort)")

    best = np.inf
    for _ in range(args.repeat):
        t0 = time.process_time()
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            measure_family(Objects(labels[comp]), images, None, {})
        best = min(best, time.process_time() - t0)
    print("\nCPJUMP1 configuration (8 images x Nuclei, Cells, Cytoplasm)")
    print(f"{'ours':<40}{best:>8.3f}")
    print(f"{'CellProfiler 4.2.8 MeasureObjectIntensityDistribution':<40}{CELLPROFILER_CPU_S:>8.1f}")
    print(f"{'ratio':<40}{CELLPROFILER_CPU_S / best:>7.1f}x")


if __name__ == "__main__":
    main()
