"""Segmentation speed on real CPJUMP1 sites: ours vs CellProfiler 4.2.8's own module times.

Runs illumination apply + nuclei (background, threshold, shape declumping) + cells
(watershed on RNA) + cytoplasm on the 7 shared real sites, one process, one core, and
prints CPU seconds per site next to CellProfiler's measured cost for modules 14-18 on the
same sites (reference README). Also times the plate-level illumination calculation.

    python benchmarks/bench_segment.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from cpfeatures import illum
from cpfeatures.segment import segment_site

CHANNELS = {"DNA": 5, "RNA": 3}
WELLS = ["D08", "D14", "F10", "G21", "L09", "M02", "N14"]
# CellProfiler CPU s/site, modules 14 (0.70), 15 (0.01), 16 (0.99), 17 (0.81), 18 (0.21) + module 2 (0.06):
CELLPROFILER_MODULES = {"CorrectIlluminationApply (2)": 0.06, "CorrectIlluminationCalculate bg (14)": 0.70,
                        "CorrectIlluminationApply (15)": 0.01, "IdentifyPrimaryObjects (16)": 0.99,
                        "IdentifySecondaryObjects (17)": 0.81, "IdentifyTertiaryObjects (18)": 0.21}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    plate = args.shared / "data" / "cpjump1_example_plate" / "Images"
    ref = args.shared / "reference" / "cellprofiler"
    functions = {r: np.load(gzip.open(ref / "illum" / f"EXAMPLE_Illum{r}.npy.gz")) for r in CHANNELS}
    raw = {w: {r: tifffile.imread(plate / f"r{ord(w[0]) - 64:02d}c{int(w[1:]):02d}f05p01-ch{c}sk1fk1fl1.tiff")
               for r, c in CHANNELS.items()} for w in WELLS}
    segment_site(raw[WELLS[0]], illum=functions)  # warm-up (numba cache, imports)
    rows = []
    for w in WELLS:
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.process_time()
            labels = segment_site(raw[w], illum=functions)
            best = min(best, time.process_time() - t0)
        rows.append({"well": w, "nuclei": int(labels["Nuclei"].max()), "cpu_s": best})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    cp = sum(CELLPROFILER_MODULES.values())
    ours = table["cpu_s"].mean()
    print(f"\nours: {ours:.3f} CPU-s/site   CellProfiler modules 2+14-18: {cp:.2f} CPU-s/site   "
          f"ratio {cp / ours:.1f}x")

    # plate-level illumination: one channel over the 7 sites, streaming from disk
    t0 = time.perf_counter()
    c0 = time.process_time()
    illum.calculate(tifffile.imread(plate / f"r{ord(w[0]) - 64:02d}c{int(w[1:]):02d}f05p01-ch5sk1fk1fl1.tiff")
                    for w in WELLS)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"illumination calculate, DNA, 7 sites: {wall:.2f} s wall, {cpu / 7 * 1000:.0f} CPU-ms per site "
          f"(decode + x0.2 resize); final median/rescale/upsample once per plate")


if __name__ == "__main__":
    main()
