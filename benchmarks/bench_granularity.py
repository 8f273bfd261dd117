"""Granularity speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's Cells masks,
5 fluorescent channels (DNA, ER, RNA, AGP, Mito), CPJUMP1 settings (subsample 0.5,
background 0.5, disk 10, 16 steps). Prints CPU seconds for ours and cp-measure and
the ratio, checks the two agree, then our time for CellProfiler's configuration
(8 images x Nuclei, Cells, Cytoplasm + the Image-table spectra, the whole-image work
shared through one cache) next to CellProfiler 4.2.8's 43 CPU-s per site.

    python benchmarks/bench_granularity.py [--well M02] [--shared ../shared] [--repeat 3]
"""

from __future__ import annotations

import time

import numpy as np

from _sites import FLUOR, cpu, load_site, site_parser  # noqa: E402  (benchmarks/_sites.py)

from cpfeatures.measure import Objects
from cpfeatures.measure._granularity import measure_family, measure_image_family

CELLPROFILER_CPU_S = 43.0  # MeasureGranularity, CPJUMP1 configuration, per site (reference README)


def main() -> None:
    ap = site_parser(__doc__, repeat=3, repeat_help="our runs (best of); cp-measure runs once")
    args = ap.parse_args()
    images, labels = load_site(args.shared, args.well)
    cells = labels["Cells"]
    fluor = {k: images[k] for k in FLUOR}

    from cp_measure.core.measuregranularity import get_granularity

    # warm-up (numba compilation / cache load) on a crop
    measure_family(Objects(cells[:200, :200]), {"DNA": fluor["DNA"][:200, :200]})

    ours_times = []
    for _ in range(args.repeat):
        t, ours = cpu(measure_family, Objects(cells), fluor, None, {})
        ours_times.append(t)
    t_ours = min(ours_times)
    t_peer, worst = 0.0, 0.0
    for name, im in fluor.items():
        t, peer = cpu(get_granularity, cells, im, subsample_size=0.5, image_sample_size=0.5, element_size=10,
                      granular_spectrum_length=16)
        t_peer += t
        for k in range(1, 17):
            a, b = ours[f"Granularity_{k}_{name}"], np.asarray(peer[f"Granularity_{k}"])
            worst = max(worst, float(np.nanmax(np.abs(a - b))))

    print(f"site {args.well}: {cells.max()} cells, 5 channels, same masks and images, CPJUMP1 settings")
    print(f"{'':<34}{'CPU-s':>8}")
    print(f"{'ours (measure_family)':<34}{t_ours:>8.3f}")
    print(f"{'cp-measure get_granularity':<34}{t_peer:>8.3f}")
    print(f"{'ratio':<34}{t_peer / t_ours:>7.1f}x   (max |difference| {worst:.1e})")

    best = np.inf
    for _ in range(args.repeat):
        cache: dict = {}
        t0 = time.process_time()
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            measure_family(Objects(labels[comp]), images, None, cache)
        measure_image_family(images, None, cache)
        best = min(best, time.process_time() - t0)
    print(f"\nCPJUMP1 configuration (8 images x Nuclei, Cells, Cytoplasm + Image table)")
    print(f"{'ours':<34}{best:>8.3f}")
    print(f"{'CellProfiler 4.2.8 MeasureGranularity':<34}{CELLPROFILER_CPU_S:>8.1f}")
    print(f"{'ratio':<34}{CELLPROFILER_CPU_S / best:>7.1f}x")


if __name__ == "__main__":
    main()
