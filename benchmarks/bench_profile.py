"""Profiling speed and memory: ours vs pycytominer and copairs on the same inputs, one process.

1. The real LINCS plate SQ00015054 (384 wells x 454 features): normalize,
   feature_select (CPJUMP1 recipe) and mAP against DMSO.
2. A larger synthetic plate set (default 20,000 wells x 5,000 features, 4
   replicates per perturbation, ~5% DMSO): feature_select against pycytominer.
3. mAP for phenotypic consistency (every profile ranked against every other) on
   9,216 profiles x 500 features, the size at which copairs issue #90 ran out of
   14 GB: peak memory (tracemalloc) and CPU time of both.

Prints wall/CPU seconds, peak memory and the ratios, and checks the outputs agree.

    python benchmarks/bench_profile.py [--shared ../shared] [--wells 20000] [--features 5000]
                                       [--map-profiles 9216] [--skip-large]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import pycytominer  # noqa: E402
from copairs.map import average_precision as copairs_ap  # noqa: E402
from copairs.map import mean_average_precision as copairs_map  # noqa: E402

from cpfeatures.profile import feature_select, mean_average_precision, normalize  # noqa: E402

OPS = ["frequency_threshold", "correlation_threshold", "drop_na_columns", "blocklist"]
BLOCKLIST = str(Path(pycytominer.__file__).parent / "data" / "blocklist_features.txt")


def measure(fn, *args, **kwargs):
    """(wall s, cpu s, peak MB, result) of one call."""
    tracemalloc.start()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return wall, cpu, peak, out


def row(name, ours, peer, note=""):
    print(f"  {name:<34} ours {ours[0]:8.2f} s {ours[2]:8.0f} MB | peer {peer[0]:8.2f} s {peer[2]:8.0f} MB "
          f"| {peer[0] / max(ours[0], 1e-9):6.1f}x faster {note}")


def lincs(shared: Path):
    frame = pd.read_csv(shared / "reference" / "profiles_data" / "lincs_SQ00015054_normalized_feature_select.csv.gz")
    print(f"LINCS SQ00015054: {frame.shape[0]} wells x {sum(not c.startswith('Metadata_') for c in frame)} features")
    dmso = "Metadata_broad_sample == 'DMSO'"
    o = measure(normalize, frame, method="mad_robustize", samples=dmso)
    p = measure(pycytominer.normalize, frame, method="mad_robustize", samples=dmso)
    feats = [c for c in p[3].columns if not c.startswith("Metadata_")]
    row("normalize mad_robustize (DMSO)", o, p, f"max |diff| {np.abs(o[3][feats] - p[3][feats]).max().max():.1e}")
    feature_select(frame.iloc[:40], operations=OPS)  # load the numba kernels once (first call ~1 s)
    o = measure(feature_select, frame, operations=OPS, corr_threshold=0.5)
    p = measure(pycytominer.feature_select, frame, operation=OPS, corr_threshold=0.5, blocklist_file=BLOCKLIST)
    row("feature_select CPJUMP1 recipe", o, p, "same features" if sorted(o[3]) == sorted(p[3]) else "DIFFERENT")
    o = measure(mean_average_precision, frame, "Metadata_broad_sample", reference_query=dmso, null_size=10000, seed=0)

    def copairs_run():
        meta = frame.filter(like="Metadata_").copy()
        meta["Metadata_ref"] = np.where(meta["Metadata_broad_sample"] == "DMSO", np.arange(len(meta)), -1)
        cols = ["Metadata_broad_sample", "Metadata_ref"]
        ap = copairs_ap(meta, frame[feats].to_numpy(), cols, [], [], cols, progress_bar=False)
        with tempfile.TemporaryDirectory() as tmp:
            return copairs_map(ap, ["Metadata_broad_sample"], null_size=10000, threshold=0.05, seed=0,
                               progress_bar=False, cache_dir=tmp)

    p = measure(copairs_run)
    merged = p[3].merge(o[3], on="Metadata_broad_sample")
    same = np.allclose(merged["p_value_x"], merged["p_value_y"], rtol=1e-12, atol=0)
    row("mAP vs DMSO (null 10,000)", o, p, "same mAP and p-values" if same else "DIFFERENT p-values")


def synthetic(n_wells: int, n_features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_groups = n_wells // 4
    effect = rng.normal(size=(n_groups, 32)) @ rng.normal(size=(32, n_features)) * 0.3
    group = np.repeat(np.arange(n_groups), 4)[:n_wells]
    x = effect[group] + rng.normal(size=(n_wells, n_features))
    x[:, : n_features // 50] = np.round(x[:, : n_features // 50])  # some low-uniqueness features
    x[:, n_features // 50: n_features // 25] = x[:, :n_features // 50] * 2 + 0.01  # some redundant ones
    meta = pd.DataFrame({"Metadata_Plate": "SYN", "Metadata_Well": np.arange(n_wells).astype(str),
                         "Metadata_pert": np.where(group % 20 == 0, "DMSO", group.astype(str))})
    feats = pd.DataFrame(x, columns=[f"Cells_Feature_{i}" for i in range(n_features)])
    return pd.concat([meta, feats], axis=1)


def large(n_wells: int, n_features: int):
    frame = synthetic(n_wells, n_features)
    print(f"synthetic: {n_wells} wells x {n_features} features")
    o = measure(feature_select, frame, operations=OPS)
    p = measure(pycytominer.feature_select, frame, operation=OPS, blocklist_file=BLOCKLIST)
    row("feature_select CPJUMP1 recipe", o, p, "same features" if sorted(o[3]) == sorted(p[3]) else "DIFFERENT")


def map_memory(n_profiles: int, n_features: int = 500):
    frame = synthetic(n_profiles, n_features, seed=1)
    feats = [c for c in frame.columns if c.startswith("Cells_")]
    print(f"mAP phenotypic consistency, {n_profiles} profiles x {n_features} features (all pairs ranked)")
    o = measure(mean_average_precision, frame, "Metadata_pert", null_size=1000, seed=0)

    def copairs_run():
        ap = copairs_ap(frame[["Metadata_pert"]], frame[feats].to_numpy(), ["Metadata_pert"], [], [],
                        ["Metadata_pert"], progress_bar=False)
        with tempfile.TemporaryDirectory() as tmp:
            return copairs_map(ap, ["Metadata_pert"], null_size=1000, threshold=0.05, seed=0, progress_bar=False,
                               cache_dir=tmp)

    p = measure(copairs_run)
    merged = p[3].merge(o[3], on="Metadata_pert")
    diff = np.abs(merged["mean_average_precision_x"] - merged["mean_average_precision_y"]).max()
    row("mAP all-vs-all", o, p, f"max |mAP diff| {diff:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--wells", type=int, default=20000)
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--map-profiles", type=int, default=9216)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    lincs(args.shared)
    if not args.skip_large:
        large(args.wells, args.features)
        map_memory(args.map_profiles)


if __name__ == "__main__":
    main()
