"""QC report generation time for a synthetic 384-well plate (issue target: under 30 s).

Builds a store shaped like a CPJUMP1 run: 384 wells x 9 fields, about 80 cells per site,
~1,900 float64 features per compartment (real runs barely compress, neither do these),
1,387 Image-table columns including image-quality ones, 1% of sites failed, and 8
illumination functions of 1080 x 1080. When the real example plate is present
(``../shared``), a 384-well x 9-field plate of symlinks to its 1080 x 1080 sites is
made too, so the default segmentation overlays (6 sites, each segmented again with
the run's settings) are part of the timing.

Then times :func:`cpfeatures.report.build_report` end to end (reading, figures,
overlays, HTML) in this process and prints the per-section times the report
records in its footer.

    python benchmarks/bench_report.py [--wells 384] [--fields 9] [--cells 80] [--features 1900]
                                      [--keep DIR]   # reuse / keep the synthetic store and plate
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from cpfeatures.errors import ImageError
from cpfeatures.store import SiteTables, Store

sys.path.insert(0, str(Path(__file__).parent))
from _plates import symlink_plate, wells_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_PLATE = Path(os.environ.get("CPFEATURES_SHARED", REPO.parent / "shared")) / "data" / "cpjump1_example_plate"
ROLES = ["Mito", "AGP", "RNA", "ER", "DNA", "HighZBF", "LowZBF", "Brightfield"]
PREFERRED = ["AreaShape_Area", "AreaShape_FormFactor", "AreaShape_Eccentricity", "Location_Center_X"] + \
    [f"Intensity_MeanIntensity_{r}" for r in ROLES] + [f"Intensity_IntegratedIntensity_{r}" for r in ROLES]


def columns_of(table: str, n: int) -> list[str]:
    names = [f"{table}_{p}" for p in PREFERRED]
    return names + [f"{table}_Texture_Feature{i}" for i in range(n - len(names))]


def image_columns(n: int) -> list[str]:
    quality = [f"ImageQuality_{m}_{r}" for r in ROLES for m in ("FocusScore", "PowerLogLogSlope", "PercentMaximal")]
    counts = ["Count_Nuclei", "Count_Cells", "Count_Cytoplasm"]
    return counts + quality + [f"Granularity_{i}_DNA" for i in range(n - len(counts) - len(quality))]


def file_names(well: str, field: int) -> dict[str, str]:
    """The Image-table file names a run records, as the symlinked plate names its files (CPJUMP1 channels)."""
    row, col = ord(well[0]) - 64, int(well[1:])
    return {f"FileName_Orig{role}": f"r{row:02d}c{col:02d}f{field:02d}p01-ch{i}sk1fk1fl1.tiff"
            for i, role in enumerate(ROLES, 1)}


def make_site(rng, cells: int, features: int, n_image: int, files: dict[str, str]) -> SiteTables:
    tables = {"Image": pd.DataFrame(rng.normal(size=(1, n_image)), columns=image_columns(n_image))}
    tables["Image"].iloc[0, :3] = cells
    for table in ("Nuclei", "Cells", "Cytoplasm"):
        values = rng.normal(size=(cells, features))
        values[:, 0] = rng.gamma(5, 300 if table == "Nuclei" else 900, cells)  # areas: positive, skewed
        frame = pd.DataFrame(values, columns=columns_of(table, features))
        frame.insert(0, "ObjectNumber", np.arange(1, cells + 1))
        tables[table] = frame
    return SiteTables(tables, files)


def build_store(root: Path, n_wells: int, n_fields: int, cells: int, features: int, n_image: int,
                fail_rate: float = 0.01) -> tuple[Path, Path | None]:
    store_path = root / "plate384.zarr"
    if (root / "DONE").exists():
        plate = root / "plate"
        return store_path, plate if plate.exists() else None
    wells = wells_of(n_wells)
    fields = list(range(1, n_fields + 1))
    t0 = time.perf_counter()
    plate = symlink_plate(SHARED_PLATE, root / "plate", wells=wells, fields=fields) if SHARED_PLATE.exists() \
        else None
    st = Store(store_path, mode="a")
    from cpfeatures.config import DEFAULT_CONFIG_TOML

    extra = {"roles": ROLES}
    if plate is not None:
        extra["plate_path"] = str(plate)
    st.initialize("BENCH384", DEFAULT_CONFIG_TOML, **extra)
    yy, xx = np.mgrid[0:1080, 0:1080].astype(np.float32)
    st.write_illum({r: 1 + (i + 1) * np.exp(-((yy - 540) ** 2 + (xx - 500 - 10 * i) ** 2) / 4e5)
                    for i, r in enumerate(ROLES)})
    rng = np.random.default_rng(0)
    sites = [(w, f) for w in wells for f in fields]
    failed = set(rng.choice(len(sites), size=int(round(fail_rate * len(sites))), replace=False).tolist())

    def write(i):
        well, f = sites[i]
        if i in failed:
            st.record_error(well, f, ImageError("truncated or corrupt TIFF (synthetic)", f"/plate/{well}_f{f}.tiff"))
            return
        r = np.random.default_rng(i)
        st.write_site("BENCH384", well, f, make_site(r, max(5, int(r.poisson(cells))), features, n_image,
                                                     file_names(well, f)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        for k, _ in enumerate(pool.map(write, range(len(sites))), 1):
            if k % 500 == 0:
                print(f"  wrote {k}/{len(sites)} sites ({time.perf_counter() - t0:.0f} s)", flush=True)
    (root / "DONE").write_text("ok")
    print(f"store: {len(sites)} sites ({len(failed)} failed) in {time.perf_counter() - t0:.0f} s")
    return store_path, plate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wells", type=int, default=384)
    ap.add_argument("--fields", type=int, default=9)
    ap.add_argument("--cells", type=int, default=80)
    ap.add_argument("--features", type=int, default=1900)
    ap.add_argument("--image-features", type=int, default=1387)
    ap.add_argument("--keep", default=None, help="Folder for the synthetic store and plate (reused if present).")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp())
    root.mkdir(parents=True, exist_ok=True)
    try:
        store, plate = build_store(root, args.wells, args.fields, args.cells, args.features, args.image_features)
        from cpfeatures.report import build_report

        out = root / "report.html"
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        build_report(store, out)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        footer = re.search(r"\(reading.*?\)</footer>", out.read_text(encoding="utf-8"))
        sites = args.wells * args.fields
        print(f"report of {args.wells} wells x {args.fields} fields ({sites} sites, ~{args.cells} cells x "
              f"{args.features} features per compartment){' with overlays' if plate else ' (no plate: no overlays)'}")
        print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, file {out.stat().st_size / 1e6:.1f} MB  (target < 30 s)")
        if footer:
            print(f"  sections: {footer.group(0)[1:-10]}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
