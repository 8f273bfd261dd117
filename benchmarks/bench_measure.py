"""Measurement speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's Cells masks,
5 fluorescent channels (DNA, ER, RNA, AGP, Mito). Prints per-family CPU seconds for
ours, cp-measure's numba backend (its fastest) and, for texture, its default backend
(mahotas), with the ratios. Then our cost for the full CPJUMP1 configuration
(8 images x 3 object sets, every family: texture scales 3/5/10, granularity 0.5/0.5/10/16,
28 colocalization pairs, size/shape with Zernike, radial 4 bins, neighbours, plus the
Image-table texture and granularity) next to CellProfiler's own module times.

Each side's time is the best of ``--repeat`` runs (the first full-size call pays page faults).

    python benchmarks/bench_measure.py [--well M02] [--shared ../shared] [--repeat 3] [--skip-default-texture]
"""

from __future__ import annotations

from _sites import FLUOR, cpu, load_site, site_parser  # noqa: E402  (benchmarks/_sites.py)

REPEAT = 3


def best(fn, *args, **kwargs) -> float:
    """Least CPU seconds of REPEAT calls."""
    return min(cpu(fn, *args, **kwargs)[0] for _ in range(REPEAT))

from cpfeatures.measure import Objects, measure_image, measure_objects

# CellProfiler 4.2.8 CPU s per site for the CPJUMP1 configuration (reference README; neighbors: its 3 modules)
CELLPROFILER = {"intensity": 7.6, "texture": 47.2, "granularity": 43.0, "colocalization": 18.5, "sizeshape": 5.7,
                "radial": 5.2, "neighbors": 1.4}
#: What each family needs beyond the images (the CPJUMP1 neighbour measurements per object set).
NEIGHBORS = {"Nuclei": [1], "Cells": [5, "adjacent"], "Cytoplasm": []}


def main() -> None:
    global REPEAT
    ap = site_parser(__doc__, repeat=3, repeat_help="runs per measurement, both sides (best of)")
    ap.add_argument("--skip-default-texture", action="store_true", help="skip cp-measure's slow mahotas texture")
    args = ap.parse_args()
    REPEAT = max(1, args.repeat)
    images, labels = load_site(args.shared, args.well)
    cells = labels["Cells"]
    fluor = {k: images[k] for k in FLUOR}

    from cp_measure.core.measuregranularity import get_granularity
    from cp_measure.core.measuretexture import get_texture as cpm_texture_default
    from cp_measure.core.numba.measureobjectintensity import get_intensity as cpm_intensity
    from cp_measure.core.numba.measuretexture import get_texture as cpm_texture

    # warm-up: numba compilation on both sides
    small = cells[:200, :200]
    cpm_intensity(small, fluor["DNA"][:200, :200], legacy=True)
    cpm_texture(small, fluor["DNA"][:200, :200], 3)
    measure_objects(small, {"DNA": fluor["DNA"][:200, :200]}, families=["intensity", "texture", "granularity"])

    print(f"site {args.well}: {cells.max()} cells, 5 channels, same masks and images\n")
    print(f"{'family':<28}{'ours CPU-s':>12}{'cp-measure':>12}{'ratio':>8}")
    rows = []
    # a fresh Objects each run: our label preparation is timed too
    t_ours = min(cpu(measure_objects, Objects(cells), fluor, families=["intensity"])[0] for _ in range(REPEAT))
    t_peer = sum(best(cpm_intensity, cells, im, legacy=True) for im in fluor.values())
    rows.append(("intensity (numba peer)", t_ours, t_peer))
    t_ours = min(cpu(measure_objects, Objects(cells), fluor, families=["texture"])[0] for _ in range(REPEAT))
    t_peer = sum(best(cpm_texture, cells, im, s) for im in fluor.values() for s in (3, 5, 10))
    rows.append(("texture 3 scales (numba)", t_ours, t_peer))
    if not args.skip_default_texture:
        t_def = sum(cpu(cpm_texture_default, cells, im, 3)[0] for im in fluor.values()) * 3  # slow: once
        rows.append(("texture 3 scales (mahotas)", t_ours, t_def))
    t_ours = min(cpu(measure_objects, Objects(cells), fluor, families=["granularity"],
                     settings={"granularity": {"subsample": 0.5, "background_subsample": 0.5}})[0]
                 for _ in range(REPEAT))
    t_peer = sum(cpu(get_granularity, cells, im, 0.5, 0.5, 10, 16)[0] for im in fluor.values())  # slow: once
    rows.append(("granularity", t_ours, t_peer))
    from itertools import combinations

    from cp_measure.core.measurecolocalization import (get_correlation_manders_fold, get_correlation_overlap,
                                                       get_correlation_pearson, get_correlation_rwc)

    t_ours = min(cpu(measure_objects, Objects(cells), fluor, families=["colocalization"])[0] for _ in range(REPEAT))
    t_peer = 0.0
    for a, b in combinations(FLUOR, 2):
        for fn in (get_correlation_pearson, get_correlation_manders_fold, get_correlation_overlap,
                   get_correlation_rwc):
            t_peer += best(fn, fluor[a], fluor[b], cells)
    rows.append(("colocalization 10 pairs", t_ours, t_peer))
    for name, ours, peer in rows:
        print(f"{name:<28}{ours:>12.3f}{peer:>12.3f}{peer / ours:>7.1f}x")

    print("\nfull CPJUMP1 configuration: 8 images x Nuclei, Cells, Cytoplasm (+ Image-table texture/granularity)")
    print(f"{'family':<28}{'ours CPU-s':>12}{'CellProfiler':>14}{'ratio':>8}")
    total_ours = 0.0
    def configuration(fam):
        cache: dict = {}
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            settings = {"neighbors": {"measurements": NEIGHBORS[comp]}} if fam == "neighbors" else None
            measure_objects(Objects(labels[comp]), images, families=[fam], settings=settings, cache=cache)
        if fam in ("texture", "granularity"):
            measure_image(images, {}, cache, families=[fam])

    for fam in CELLPROFILER:
        t = best(configuration, fam)
        total_ours += t
        print(f"{fam:<28}{t:>12.2f}{CELLPROFILER[fam]:>14.1f}{CELLPROFILER[fam] / t:>7.1f}x")
    cp_total = sum(CELLPROFILER.values())
    print(f"{'together':<28}{total_ours:>12.2f}{cp_total:>14.1f}{cp_total / total_ours:>7.1f}x")


if __name__ == "__main__":
    main()
