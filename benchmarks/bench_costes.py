"""Costes colocalization speed: ours vs cp-measure on the same real site and masks, one process.

Default: well M02 (181 cells, the densest shared site), CellProfiler's Cells masks, the 10
pairs of the 5 fluorescent channels (DNA, ER, RNA, AGP, Mito), CellProfiler's default method
"Faster", scale 65535.

1. Same work as cp-measure: ``get_correlation_costes`` searches thresholds within every object;
   ours with ``costes_scope="object"``. Prints CPU seconds, the ratio and the largest difference.
2. CellProfiler 4.2.8's definition (our default ``costes_scope="image"``): one threshold search
   per pair over the whole 1080x1080 images, applied to every object. The peer is cp-measure's
   own ``bisection_costes`` / ``linear_costes`` run on the whole images (the search CellProfiler
   runs, once per pair and object set), plus the per-object sums in numpy.
3. Ours for the configuration CellProfiler would run with Costes on: 28 pairs of the 8 images x
   Nuclei, Cells, Cytoplasm, thresholds shared between object sets through one cache.

    python benchmarks/bench_costes.py [--well M02] [--method faster|fast|accurate] [--repeat 3]
"""

from __future__ import annotations

import time
import warnings
from itertools import combinations

import numpy as np

from _sites import FLUOR, cpu, load_site, site_parser  # noqa: E402  (benchmarks/_sites.py)

from cpfeatures.measure import Objects
from cpfeatures.measure._colocalization import colocalization, measure_family


def _peer_image_scope(cells, a, b, method):
    """CellProfiler's definition from cp-measure's pieces: its whole-image search, then the
    per-object sums of CellProfiler's run_image_pair_objects."""
    from cp_measure.core.measurecolocalization import bisection_costes, linear_costes

    x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    search = bisection_costes if method == "faster" else linear_costes
    tx, ty = search(None, None, x, y, 65535, method.capitalize())
    lab = cells.ravel()
    n = cells.max()
    tot1 = np.bincount(lab, np.where(x >= tx, x, 0), n + 1)[1:]
    tot2 = np.bincount(lab, np.where(y >= ty, y, 0), n + 1)[1:]
    both = (x > tx) & (y > ty) & (lab > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(lab, np.where(both, x, 0), n + 1)[1:] / tot1,
                np.bincount(lab, np.where(both, y, 0), n + 1)[1:] / tot2)


def main() -> None:
    ap = site_parser(__doc__, repeat=3, repeat_help="our runs (best of); cp-measure runs once")
    ap.add_argument("--method", default="faster", choices=["faster", "fast", "accurate"])
    ap.add_argument("--skip-image-peer", action="store_true",
                    help="skip cp-measure's whole-image searches (slow for fast/accurate)")
    args = ap.parse_args()
    images, labels = load_site(args.shared, args.well)
    cells = labels["Cells"]
    pairs = list(combinations(sorted(FLUOR), 2))
    method = args.method

    from cp_measure.core.measurecolocalization import get_correlation_costes

    # warm-up (numba compilation / cache load) on a crop
    crop = {k: images[k][:200, :200] for k in ("DNA", "ER")}
    for scope in ("object", "image"):
        colocalization(cells[:200, :200], crop["DNA"], crop["ER"], costes=True, costes_method=method,
                       costes_scope=scope)

    fluor = {k: images[k] for k in FLUOR}

    def ours(scope):
        """Best-of CPU seconds of measure_family (5 images, all colocalization features + Costes)."""
        best, res = np.inf, None
        for _ in range(args.repeat):
            t0 = time.process_time()
            res = measure_family(Objects(cells), fluor, {"costes": True, "costes_method": method,
                                                         "costes_scope": scope})
            best = min(best, time.process_time() - t0)
        return best, {p: {"Correlation_Costes_1": res[f"Correlation_Costes_{p[0]}_{p[1]}"],
                          "Correlation_Costes_2": res[f"Correlation_Costes_{p[1]}_{p[0]}"]} for p in pairs}

    base = np.inf
    for _ in range(args.repeat):
        t0 = time.process_time()
        measure_family(Objects(cells), fluor)
        base = min(base, time.process_time() - t0)

    print(f"site {args.well}: {cells.max()} cells, {len(pairs)} pairs of {', '.join(sorted(FLUOR))}, "
          f"method {method!r}, scale 65535")
    print(f"ours = measure_family on the 5 images: all colocalization features + Costes; the same without\n"
          f"Costes takes {base:.3f} CPU-s (Costes alone: the difference)\n")

    # 1. cp-measure's per-object definition
    t_obj, res_obj = ours("object")
    t_peer, worst, nan_same = 0.0, 0.0, True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for p in pairs:
            t, peer = cpu(get_correlation_costes, images[p[0]], images[p[1]], cells, fast_costes=method.capitalize(),
                          scale_max=65535)
            t_peer += t
            for k in (1, 2):
                a, b = res_obj[p][f"Correlation_Costes_{k}"], np.asarray(peer[f"Correlation_Costes_{k}"])
                nan_same &= bool(np.array_equal(np.isnan(a), np.isnan(b)))
                if np.isfinite(a).any():
                    worst = max(worst, float(np.nanmax(np.abs(a - b))))
    print("1. per-object thresholds (cp-measure's definition)")
    print(f"{'':<48}{'CPU-s':>8}")
    print(f"{'ours (costes_scope=object)':<48}{t_obj:>8.3f}   (Costes alone {t_obj - base:.3f})")
    print(f"{'cp-measure get_correlation_costes':<48}{t_peer:>8.3f}")
    print(f"{'ratio':<48}{t_peer / t_obj:>7.1f}x   (Costes alone {t_peer / (t_obj - base):.0f}x; "
          f"max |difference| {worst:.1e}, same NaNs: {nan_same})")

    # 2. CellProfiler's whole-image thresholds
    t_img, res_img = ours("image")
    print("\n2. whole-image thresholds (CellProfiler 4.2.8's definition, our default)")
    print(f"{'':<48}{'CPU-s':>8}")
    print(f"{'ours (costes_scope=image)':<48}{t_img:>8.3f}   (Costes alone {t_img - base:.3f})")
    if not args.skip_image_peer:
        t_peer2, worst2, undefined = 0.0, 0.0, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for p in pairs:
                t, (c1, c2) = cpu(_peer_image_scope, cells, images[p[0]], images[p[1]], method)
                t_peer2 += t
                if np.isnan(c1).all():  # cp-measure's guards reject CellProfiler's thresholds
                    undefined.append("/".join(p))
                    continue
                for a, b in ((res_img[p]["Correlation_Costes_1"], c1), (res_img[p]["Correlation_Costes_2"], c2)):
                    f = np.isfinite(a) & np.isfinite(b)
                    if f.any():
                        worst2 = max(worst2, float(np.max(np.abs(a[f] - b[f]))))
        print(f"{'cp-measure bisection/linear_costes, whole images':<48}{t_peer2:>8.3f}")
        print(f"{'ratio':<48}{t_peer2 / t_img:>7.1f}x   (Costes alone {t_peer2 / (t_img - base):.0f}x; "
              f"max |difference| {worst2:.1e}: cp-measure's float64")
        print(f"{'':<48}{'':>8}    regression and comparisons vs CellProfiler's float32)")
        if undefined:
            print(f"{'':<48}{'':>8}    cp-measure: undefined (NaN) for {', '.join(undefined)}")
        t_cp_site = t_peer2 / len(pairs) * 28 * 3
        print(f"{'  same search x 28 pairs x 3 object sets (CP)':<48}{t_cp_site:>8.1f}   (estimate)")

    # 3. CellProfiler's configuration
    best = np.inf
    for _ in range(args.repeat):
        cache: dict = {}
        t0 = time.process_time()
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            measure_family(Objects(labels[comp]), images, {"costes": True, "costes_method": method}, cache)
        best = min(best, time.process_time() - t0)
    base8 = np.inf
    for _ in range(args.repeat):
        cache = {}
        t0 = time.process_time()
        for comp in ("Nuclei", "Cells", "Cytoplasm"):
            measure_family(Objects(labels[comp]), images, None, cache)
        base8 = min(base8, time.process_time() - t0)
    print(f"\n3. 8 images (28 pairs) x Nuclei, Cells, Cytoplasm, all colocalization features")
    print(f"{'ours with Costes':<48}{best:>8.3f}")
    print(f"{'ours without Costes (CPJUMP1)':<48}{base8:>8.3f}")
    print(f"{'Costes share':<48}{best - base8:>8.3f}")


if __name__ == "__main__":
    main()
