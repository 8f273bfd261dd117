"""Store scaling: per-site write, list and read cost as the store grows to 10,000 sites.

Writes synthetic sites shaped like CPJUMP1 output (about 100 cells x ~1,900 features per
compartment by default; ``--features`` to change) and prints, per block of sites, the mean
write time per site, the time to list completed sites, and the time to read one table.
Flat numbers down the column mean the store's overhead does not grow with the plate.

    python benchmarks/bench_store.py [--sites 10000] [--features 200] [--cells 100]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cpfeatures.store import SiteTables, Store


def make_site(cells: int, features: int, rng) -> SiteTables:
    tables = {"Image": pd.DataFrame(rng.normal(size=(1, 50)), columns=[f"Image_F{i}" for i in range(50)])}
    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        frame = pd.DataFrame(rng.normal(size=(cells, features)), columns=[f"{comp}_F{i}" for i in range(features)])
        frame.insert(0, "ObjectNumber", np.arange(1, cells + 1))
        tables[comp] = frame
    return SiteTables(tables, {"FileName_OrigDNA": "x.tiff"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--features", type=int, default=200)
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--block", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    site = make_site(args.cells, args.features, rng)
    tmp = Path(tempfile.mkdtemp())
    try:
        store = Store(tmp / "bench.zarr", mode="a")
        store.initialize("BENCH", "")
        print(f"{'sites in store':>15} {'write ms/site':>14} {'list ms/site':>13} {'read 1 site ms':>15}")
        written = 0
        while written < args.sites:
            n = min(args.block, args.sites - written)
            t0 = time.perf_counter()
            for i in range(n):
                store.write_site("BENCH", f"W{(written + i):05d}", 1, site)
            write_ms = (time.perf_counter() - t0) / n * 1e3
            written += n
            t0 = time.perf_counter()
            keys = store.completed_sites()
            list_ms = (time.perf_counter() - t0) / len(keys) * 1e3
            t0 = time.perf_counter()
            store.site_table(keys[-1], "Cells")
            read_ms = (time.perf_counter() - t0) * 1e3
            print(f"{written:>15} {write_ms:>14.2f} {list_ms:>13.3f} {read_ms:>15.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
