"""Export memory on a whole plate: AnnData (.h5ad, .zarr) and Parquet from stores of 384 and 3,456 real sites.

A run of the bundled real plate (4 sites; or ``--run STORE``) is grown to 384 (384 wells x 1 field)
and 3,456 sites (384 wells x 9 fields) by ``_plates.grow_store`` (the run's committed sites repeated,
chunks hard-linked). Each export runs in a process of its own; printed: seconds and peak resident
memory (VmHWM), the cells and the bytes of X written. Memory bounded by a chunk of rows and a read
batch of sites means the same peak for 9x the sites.

    python benchmarks/bench_export.py [--run STORE] [--sizes 384 3456] [--formats h5ad zarr parquet] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _plates import grow_store, measure, real_run, wells_of  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "example_plate"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="A finished store to grow (default: run the bundled plate).")
    ap.add_argument("--sizes", type=int, nargs="+", default=[384, 3456])
    ap.add_argument("--formats", nargs="+", default=["h5ad", "zarr", "parquet"])
    ap.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it.")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_export_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        run = real_run(root, BUNDLED, args.run)
        print(f"{'sites':>6} {'format':>8} {'cells':>9} {'X GB':>6} {'seconds':>8} {'peak MB':>8}")
        for size in args.sizes:
            fields = list(range(1, 10)) if size > 384 else [5]
            n_wells = size // len(fields)
            grown = root / f"grown{size}.zarr"
            if not grown.exists():
                grow_store(run, grown, wells_of(n_wells), fields)
            for fmt in args.formats:
                out = root / (f"cells{size}.{fmt}" if fmt != "parquet" else f"tables{size}")
                cmd = ["export", grown, "-o", out] + (["--format", "anndata"] if fmt != "parquet" else [])
                got = measure(cmd)
                assert got["code"] == 0, got
                cells, xgb = _written(out, fmt)
                print(f"{size:>6} {fmt:>8} {cells:>9} {xgb:>6.2f} {got['seconds']:>8.1f} {got['peak_mb']:>8.0f}",
                      flush=True)
                _remove(out)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _written(out: Path, fmt: str) -> tuple[int, float]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(out / "SingleCells.parquet").metadata
        return meta.num_rows, meta.num_rows * (meta.num_columns - 20) * 8 / 1e9
    if fmt == "h5ad":
        import h5py

        with h5py.File(out, "r") as f:
            shape = f["X"].shape
    else:
        import zarr

        shape = zarr.open_group(str(out), mode="r")["X"].shape
    return shape[0], shape[0] * shape[1] * 8 / 1e9


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


if __name__ == "__main__":
    main()
