"""The batch chain of the CPJUMP1 benchmark: ours vs pycytominer + copairs on the same plates, one process.

Plates are built from the real LINCS plate SQ00015054 (384 wells x 454 normalized features):
each synthetic plate resamples its wells (perturbation structure and DMSO wells kept) and
adds noise per well, then widens the features to ``--features`` by noisier copies, so every
plate is 384 real-looking wells with realistic correlations. The chain, as the CPJUMP1
recipe runs it after aggregation:

1. per plate ``normalize`` (mad_robustize against the DMSO wells);
2. one ``feature_select`` over the batch (frequency, correlation 0.9, NaN, blocklist);
3. ``spherize`` (ZCA-cor fitted on DMSO, one transform per group of plates);
4. ``consensus`` (median per perturbation).

Then the scores on the spherized wells: mAP against the DMSO wells (ours vs copairs, equal to
1e-9) and Percent Replicating (ours only: pycytominer has none).

Prints wall and CPU time of ours and the peers' chain, scores and whole chain (untraced, after
both touched their memory once) and the ratios, then peak traced memory of the chain from a
second pass, and checks that the outputs agree (same kept features, values to 1e-6).

Measured here (2 cores, quiet, defaults): chain 11.2 s vs 120.5 s (10.7x), scores 7.5 s vs
108.5 s (14.5x), whole chain 18.7 s vs 229.0 s (12.3x wall, 10.1x CPU); peak 2,021 vs 3,847 MB.

    python benchmarks/bench_batch.py [--shared ../shared] [--plates 51] [--features 5800] [--groups 6]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import pycytominer  # noqa: E402

from bench_profile import measure  # noqa: E402  (one timer for the profiling benchmarks)
from cpfeatures.profile import consensus, profile_plates, spherize  # noqa: E402
from cpfeatures.profile.average_precision import mean_average_precision  # noqa: E402
from cpfeatures.profile.replicating import percent_replicating  # noqa: E402

OPS = ["frequency_threshold", "correlation_threshold", "drop_na_columns", "blocklist"]
BLOCKLIST = str(Path(pycytominer.__file__).parent / "data" / "blocklist_features.txt")
DMSO = "Metadata_broad_sample == 'DMSO'"


def build_plates(shared: Path, n_plates: int, n_features: int, groups: int, seed: int = 0) -> list[pd.DataFrame]:
    lincs = pd.read_csv(shared / "reference" / "profiles_data" / "lincs_SQ00015054_normalized_feature_select.csv.gz")
    meta = [c for c in lincs if c.startswith("Metadata_")]
    base = lincs[[c for c in lincs if not c.startswith("Metadata_")]].to_numpy(float)
    names = [c for c in lincs if not c.startswith("Metadata_")]
    rng = np.random.default_rng(seed)
    copies = int(np.ceil(n_features / base.shape[1]))
    plates = []
    for p in range(n_plates):
        rows = rng.permutation(len(lincs))  # the plate's wells, reordered
        # every plate's every well gets its own noise, so replicates on different plates are not copies;
        # the wider copies add a little more, so they stay as correlated as CellProfiler's related features
        wells = base[rows] + rng.normal(0, 0.5, base.shape)
        x = np.concatenate([wells + rng.normal(0, 0.3 * (k > 0), base.shape) for k in range(copies)], axis=1)
        x = x[:, :n_features] * rng.uniform(0.8, 1.2) + rng.normal(0, 0.2)  # a plate effect
        cols = [n if k == 0 else f"{n.split('_')[0]}_Copy{k}_{'_'.join(n.split('_')[1:])}"
                for k in range(copies) for n in names][:n_features]
        frame = pd.DataFrame(x, columns=cols)
        m = lincs[meta].iloc[rows].reset_index(drop=True).assign(Metadata_Plate=f"P{p:02d}",
                                                                 Metadata_group=f"G{p % groups}")
        plates.append(pd.concat([m, frame], axis=1))
    return plates


def ours(plates):
    # profiles already: no aggregation; the batch is every plate ("all": there is no Metadata_Batch)
    selected = profile_plates(plates, operation=None, method="mad_robustize", samples=DMSO, select_level="all",
                              operations=OPS).profiles
    sphered = spherize(selected, method="ZCA-cor", samples=DMSO, by="Metadata_group")
    return selected, sphered, consensus(sphered, ["Metadata_broad_sample"], "median")


def ours_scores(sphered):
    """mAP of replicability (compounds against the DMSO wells) and Percent Replicating, on spherized wells."""
    maps = mean_average_precision(sphered, "Metadata_broad_sample", reference_query=DMSO, null_size=1000, seed=3)
    # replicates on the plates of one group (as the paper scores each modality x cell x time group):
    # over all plates a compound has more replicates than there are compounds to draw a null set from
    pr = percent_replicating(sphered[sphered["Metadata_broad_sample"] != "DMSO"],
                             ["Metadata_broad_sample", "Metadata_group"], seed=3)
    return maps, pr


def theirs_scores(sphered):
    """copairs' phenotypic-activity recipe: DMSO wells are only ever negatives (a unique reference index).
    pycytominer has no Percent Replicating, so the peer side scores mAP only."""
    from copairs.map import average_precision as copairs_ap, mean_average_precision as copairs_map

    meta = sphered.filter(like="Metadata_").copy()
    meta["Metadata_ref"] = np.where(meta["Metadata_broad_sample"] == "DMSO", np.arange(len(meta)), -1)
    feats = sphered.drop(columns=sphered.filter(like="Metadata_").columns).to_numpy()
    cols = ["Metadata_broad_sample", "Metadata_ref"]
    ap = copairs_ap(meta, feats, cols, [], [], cols, progress_bar=False)
    return copairs_map(ap, ["Metadata_broad_sample"], null_size=1000, threshold=0.05, seed=3, progress_bar=False)


def theirs(plates):
    normalized = [pycytominer.normalize(p, method="mad_robustize", samples=DMSO) for p in plates]
    batch = pd.concat(normalized, ignore_index=True)
    selected = pycytominer.feature_select(batch, operation=OPS, blocklist_file=BLOCKLIST)
    sphered = pd.concat([pycytominer.normalize(g, method="spherize", spherize_method="ZCA-cor", samples=DMSO)
                         for _, g in selected.groupby("Metadata_group", sort=False)])
    sphered = sphered.loc[selected.index]
    return selected, sphered, pycytominer.consensus(sphered, replicate_columns=["Metadata_broad_sample"],
                                                     operation="median", features="infer")


def timed(fn, *args):
    """(wall s, cpu s, result) of one call, without tracemalloc (it slows pandas' Python objects more)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - w0, time.process_time() - c0, out


def prefault(gib: float) -> None:
    """Give both sides the same warm heap: this VM backs guest memory on its first touch (about 2.3 s
    per 216 MB, measured here: 50x a page fault on bare metal) and takes freed pages back, so whichever
    side allocates fresh memory pays it, at random. glibc is told to keep freed memory (no mmap, no
    trim) and ``gib`` GiB are touched and freed once, for both sides alike."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-1, ctypes.c_int(2 ** 31 - 1))  # M_TRIM_THRESHOLD: never give the heap back
    libc.mallopt(-4, ctypes.c_int(0))  # M_MMAP_MAX: big arrays come from the heap too
    block = np.ones(int(gib * 2 ** 30 / 8))
    del block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--plates", type=int, default=51)
    ap.add_argument("--features", type=int, default=5800)
    ap.add_argument("--groups", type=int, default=6, help="groups of plates for spherize (modality x cell x time)")
    ap.add_argument("--no-memory", action="store_true", help="skip the second, traced pass that measures memory")
    args = ap.parse_args()
    plates = build_plates(args.shared, args.plates, args.features, args.groups)
    n = sum(len(p) for p in plates)
    gib = n * args.features * 8 / 2 ** 30
    print(f"{args.plates} plates x 384 wells = {n} profiles x {args.features} features "
          f"({gib:.2f} GiB as float64), spherize per {args.groups} groups of plates")
    ours_scores(ours(plates[:2])[1])  # numba kernels compiled/loaded, imports done (both sides' scores)
    theirs_scores(ours(plates[:2])[1])
    prefault(8 * gib + 1)
    a, b = timed(ours, plates), timed(theirs, plates)
    print(f"  chain (normalize, batch select, spherize, consensus)  ours {a[0]:8.1f} s {a[1]:8.1f} CPU-s | "
          f"pycytominer {b[0]:8.1f} s {b[1]:8.1f} CPU-s | {b[0] / a[0]:5.1f}x faster")
    sa, sb = timed(ours_scores, a[2][1]), timed(theirs_scores, b[2][1])
    print(f"  scores (mAP vs DMSO + Percent Replicating; peer: copairs mAP only, pycytominer has no PR)  "
          f"ours {sa[0]:8.1f} s {sa[1]:8.1f} CPU-s | copairs {sb[0]:8.1f} s {sb[1]:8.1f} CPU-s | "
          f"{sb[0] / sa[0]:5.1f}x faster")
    wa, ca, wb, cb = a[0] + sa[0], a[1] + sa[1], b[0] + sb[0], b[1] + sb[1]
    print(f"  whole chain  ours {wa:8.1f} s {ca:8.1f} CPU-s | pycytominer + copairs {wb:8.1f} s {cb:8.1f} CPU-s | "
          f"{wb / wa:5.1f}x faster ({cb / ca:.1f}x in CPU)")
    maps, pr = sa[2]
    merged = sb[2].merge(maps, on="Metadata_broad_sample", suffixes=("_ref", ""))
    mdiff = np.nanmax(np.abs(merged["mean_average_precision"] - merged["mean_average_precision_ref"]))
    assert len(merged) == len(maps) and mdiff < 1e-9, f"mAP differs from copairs by {mdiff}"
    print(f"  same mAP as copairs for {len(merged)} compounds (max |diff| {mdiff:.1e}); Percent Replicating "
          f"{getattr(pr, 'percent_replicating', pr)}")
    if not args.no_memory:
        ma, mb = measure(ours, plates), measure(theirs, plates)
        print(f"  peak traced memory (a second pass under tracemalloc)  ours {ma[2]:8.0f} MB | pycytominer "
              f"{mb[2]:8.0f} MB | {mb[2] / max(ma[2], 1):4.1f}x less; the batch matrix is {gib * 1024:.0f} MB")
    (sel_a, sph_a, con_a), (sel_b, sph_b, con_b) = a[2], b[2]
    feats = [c for c in sel_b if not c.startswith("Metadata_")]
    assert sorted(c for c in sel_a if not c.startswith("Metadata_")) == sorted(feats), "kept features differ"
    diff = np.nanmax(np.abs(sph_a[feats].to_numpy() - sph_b[feats].to_numpy()))
    cdiff = np.nanmax(np.abs(con_a.sort_values("Metadata_broad_sample")[feats].to_numpy()
                             - con_b.sort_values("Metadata_broad_sample")[feats].to_numpy()))
    print(f"  same {len(feats)} kept features; spherized max |diff| {diff:.2e}, consensus max |diff| {cdiff:.2e}")


if __name__ == "__main__":
    main()
