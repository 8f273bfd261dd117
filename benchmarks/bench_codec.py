"""The store's codecs on a real run, and the lazy plate view's memory on 384 and 3,456 sites.

1. Codecs: the committed sites of a real run (the 7 full-size CPJUMP1 sites of
   ``../shared/data/cpjump1_example_plate``, run with ``--save-labels``; or ``--plate``, ``--run STORE``) are written again into one store per ``[store] codec`` (zstd, zarr's
   default; gzip, which more Zarr readers accept; none), each site ``--repeat`` times under
   new well names. Printed per codec: bytes per site of the feature tables and of the label
   images, write time per site (``Store.write_site``, tables and labels), read time per site
   of the Cells table (``read_table``) and of the whole plate through ``open_plate`` (best of 3), and the
   size relative to uncompressed.
2. The lazy view (``cpfeatures.store.open_plate``), each in a process of its own: a store
   grown from the run to 384 and to 3,456 sites (chunks hard-linked), and over every cell
   (a) the plate mean of every feature from the xarray Dataset, (b) the per-well mean of one
   feature and (c) of every feature from the dask DataFrame. Printed: seconds and peak resident memory (VmHWM).
   The same peak for 9x the sites means the view reads a site's chunk at a time.

    python benchmarks/bench_codec.py [--plate DIR | --run STORE] [--repeat 25] [--sizes 384 3456] [--parts 1 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _plates import IMPORT_HWM, grow_store, measure, real_run, wells_of  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "example_plate"
#: The 7 real full-size CPJUMP1 sites (1080 x 1080), when ../shared is there; else the bundled 540-px crops.
FULL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cpjump1_example_plate"

# One lazy reduction over every cell of a store, in its own process: seconds and peak memory.
_VIEW = IMPORT_HWM + """
import json, sys, time
import dask
from cpfeatures.store import open_plate
dask.config.set(scheduler="threads", num_workers=2)
t0 = time.perf_counter()
if sys.argv[2] == "dataset":
    ds = open_plate(sys.argv[1])
    out = ds.features.mean("cell").compute()
    cells = ds.sizes["cell"]
else:
    df = open_plate(sys.argv[1], as_frame=True)
    features = [c for c in df.columns if not c.startswith("Metadata_")]
    if sys.argv[2] == "frame-one":
        features = ["Cells_AreaShape_Area"]
    out = df[["Metadata_Well"] + features].groupby("Metadata_Well").mean().compute()
    cells = int(df.map_partitions(len).sum().compute())
print(json.dumps({"seconds": time.perf_counter() - t0, "code": 0, "peak_mb": hwm(), "cells": int(cells),
                  "shape": list(out.shape)}), file=sys.stderr)
"""


def _bytes(folder: Path, part: str) -> int:
    """Bytes of the chunk files under ``sites/*/<part>`` (``labels`` or the feature tables)."""
    total = 0
    for site in (folder / "sites").iterdir():
        if not site.is_dir():
            continue
        for child in site.iterdir():
            if child.is_dir() and (child.name == "labels") == (part == "labels"):
                total += sum(f.stat().st_size for f in child.rglob("*") if f.is_file() and f.name != "zarr.json")
    return total


def _best(fn, times: int = 3) -> float:
    """Best of ``times`` wall-clock seconds (the first call of a process also pays imports and caches)."""
    best = float("inf")
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def codecs(run: Path, root: Path, repeat: int) -> None:
    from cpfeatures.store import CODECS, SiteTables, Store, open_plate, read_table

    source = Store(run)
    keys = source.completed_sites()
    sites = []
    for key, attrs, arrays, _ in source.read_sites(keys, lambda k: list(source.site_attrs(k)["columns"])):
        tables = {t: pd.DataFrame(arrays[t], columns=source.columns(attrs["columns"][t]))
                  for t in arrays}
        sites.append((attrs, SiteTables(tables, attrs["image_metadata"], source.site_labels(key) or None)))
    n = len(sites) * repeat
    cells = sum(len(s.tables["Cells"]) for _, s in sites) / len(sites)
    print(f"{len(sites)} real sites of {run.name} x {repeat} = {n} sites, {cells:.0f} cells per site, "
          f"labels: {', '.join(sites[0][1].labels or {}) or 'none'}")
    print(f"{'codec':>6} {'tables KB/site':>15} {'labels KB/site':>15} {'vs none':>8} {'write ms/site':>14} "
          f"{'read Cells ms/site':>19} {'open_plate ms/site':>19}")
    rows = {}
    for codec in CODECS:
        out = root / f"{codec}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        st = Store(out, mode="a")
        st.initialize("CODEC", f'[store]\ncodec = "{codec}"\n')
        wells = wells_of(n)
        t0 = time.perf_counter()
        for i in range(n):
            attrs, site = sites[i % len(sites)]
            st.write_site("CODEC", wells[i], int(attrs["site"]), site)
        write = (time.perf_counter() - t0) / n * 1e3
        read = _best(lambda: read_table(out, "cells")) / n * 1e3
        view = _best(lambda: open_plate(out).features.values) / n * 1e3  # every cell and compartment
        rows[codec] = (_bytes(out, "tables") / n / 1e3, _bytes(out, "labels") / n / 1e3, write, read, view)
        shutil.rmtree(out, ignore_errors=True)
    plain = rows["none"][0] + rows["none"][1]
    for codec, (tables, labels, write, read, view) in rows.items():
        print(f"{codec:>6} {tables:>15.0f} {labels:>15.0f} {(tables + labels) / plain:>8.2f} {write:>14.1f} "
              f"{read:>19.1f} {view:>19.1f}", flush=True)


def plate_view(run: Path, root: Path, sizes: list[int]) -> None:
    print(f"{'sites':>6} {'view':>10} {'cells':>9} {'seconds':>8} {'peak MB':>8}")
    for size in sizes:
        fields = list(range(1, 10)) if size > 384 else [5]
        grown = root / f"grown{size}.zarr"
        if not grown.exists():
            grow_store(run, grown, wells_of(size // len(fields)), fields)
        for kind in ("dataset", "frame-one", "frame"):
            got = measure([grown, kind], script=_VIEW)
            print(f"{size:>6} {kind:>10} {got['cells']:>9} {got['seconds']:>8.1f} {got['peak_mb']:>8.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="A finished store (default: run --plate).")
    ap.add_argument("--plate", type=Path, default=FULL if FULL.exists() else BUNDLED,
                    help="The plate to run when no --run is given (default: shared's full-size CPJUMP1 sites).")
    ap.add_argument("--repeat", type=int, default=25, help="Write each real site this many times per codec.")
    ap.add_argument("--sizes", type=int, nargs="+", default=[384, 3456])
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it.")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_codec_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        run = real_run(root, args.plate, args.run, save_labels=True)
        if 1 in args.parts:
            codecs(run, root, args.repeat)
        if 2 in args.parts:
            plate_view(run, root, args.sizes)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
