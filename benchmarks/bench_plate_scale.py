"""A whole plate at its real size: 384 wells x 9 fields = 3,456 sites, 27,648 TIFFs.

Builds the plate from the 7 real CPJUMP1 sites (1080 x 1080, 8 channels) by symlinks and
measures, each stage in a process of its own (time, and peak memory of that process and
of its worker processes):

1. ``cpfeatures inspect`` (with and without reading every TIFF header);
2. the illumination phase over all 3,456 sites on a 2-worker local cluster;
3. ``cpfeatures run`` of a subset of sites on the full plate (the client plans the whole plate);
4. stores grown from that real run to 384, 1,152 and 3,456 sites (the run's sites repeated,
   chunks hard-linked) -> ``export`` (Parquet), ``profile``, ``report``, ``verify``, side by
   side, with the store's bytes per site; and, on the smallest store, the old way of
   exporting (each table read whole with pandas, then written) as the peer;
5. a kill campaign: ``--kills`` SIGKILLs of a whole run, each at a random moment inside the
   work that remains, each resumed,
   then the tables compared with an undisturbed run (no duplicate, no missing cell).

    python benchmarks/bench_plate_scale.py [--wells 384] [--fields 9] [--run-sites 16]
        [--sizes 384 1152 3456] [--kills 10] [--kill-sites 64] [--stages 1 2 3 4 5]
        [--skip-illum] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _plates import IMPORT_HWM, grow_store, hwm, measure, symlink_plate, wells_of  # noqa: E402

SHARED = Path(os.environ.get("CPFEATURES_SHARED", Path(__file__).resolve().parents[2] / "shared"))

# The peer for export: what export did before (each table read whole with pandas, then written).
_WHOLE_TABLES = IMPORT_HWM + """
import json, os, sys, time
from cpfeatures.store import Store
t0 = time.perf_counter()
st = Store(sys.argv[1])
os.makedirs(sys.argv[2], exist_ok=True)
for name in ("Image", "Nuclei", "Cells", "Cytoplasm"):
    st.read_table(name).to_parquet(os.path.join(sys.argv[2], name + ".parquet"), index=False)
st.single_cells().to_parquet(os.path.join(sys.argv[2], "SingleCells.parquet"), index=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "code": 0, "peak_mb": hwm(), "children_peak_mb": 0}),
      file=sys.stderr)
"""


def illumination_phase(plate_dir: Path, store: Path, workers: int) -> dict:
    """The plate's illumination reduction on a local cluster; writes the functions into ``store``."""
    from distributed import Client, LocalCluster

    from cpfeatures.config import dump_config, load_config
    from cpfeatures.io import read_plate
    from cpfeatures.run import compute_illumination
    from cpfeatures.store import Store

    cfg = load_config()
    plate = read_plate(plate_dir, config=cfg)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        t0 = time.perf_counter()
        result = compute_illumination(plate, plate.sites, plate.roles, cfg, client=client)
        seconds = time.perf_counter() - t0
        worker_peak = max(client.run(hwm).values())
    finally:
        client.close()
        cluster.close()
    st = Store(store, mode="a")
    st.initialize(plate.plate_id, dump_config(cfg), plate_path=os.path.abspath(plate_dir), roles=plate.roles)
    st.write_illum(result.functions)
    return {"seconds": seconds, "sites": len(plate.sites), "images": sum(result.counts.values()),
            "client_peak_mb": hwm(),
            "worker_peak_mb": worker_peak}


def store_bytes(path: Path) -> int:
    """Bytes of a store's own files (each hard-linked chunk counted once per site that holds it)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _timed_run(cmd: list[str], store: Path) -> tuple[float, float]:
    """Run to the end; (seconds in all, seconds until the first site was committed)."""
    from cpfeatures.store import Store

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        time.sleep(0.25)
        if first is None and (store / "zarr.json").exists() and Store(store).completed_sites():
            first = time.perf_counter() - t0
    assert proc.returncode == 0, f"undisturbed run failed (exit {proc.returncode})"
    full = time.perf_counter() - t0
    return full, first or full


def kill_campaign(shared_plate: Path, root: Path, kills: int, n_sites: int, seed: int = 2026) -> None:
    from cpfeatures.store import Store, read_table

    plate = symlink_plate(shared_plate, root / "kill_plate", n_sites=n_sites)
    reference, killed = root / "undisturbed.zarr", root / "killed.zarr"
    base = [sys.executable, "-m", "cpfeatures.cli", "run", str(plate), "--workers", "2", "--no-progress", "-o"]
    full, startup = _timed_run(base + [str(reference)], reference)
    # A run is start-up (interpreter, cluster, kernels) then sites at a steady rate: each kill
    # lands at a random moment inside the work that remains, so every kill interrupts real work.
    per_site = max(full - startup, 1.0) / n_sites
    rng = random.Random(seed)
    moments = []
    for _ in range(kills):
        n_done = len(Store(killed).completed_sites()) if (killed / "zarr.json").exists() else 0
        remaining = n_sites - n_done
        if remaining < 2:
            break
        moment = startup + rng.uniform(0.05, 0.9) * remaining * per_site
        proc = subprocess.Popen(base + [str(killed)], start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(moment)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            moments.append(moment)
        proc.wait()
        n_after = len(Store(killed).completed_sites()) if (killed / "zarr.json").exists() else 0
        print(f"  kill at {moment:5.1f} s: {n_after:>3} of {n_sites} sites committed "
              f"({'killed' if proc.returncode == -signal.SIGKILL else 'run had finished'})")
    done = subprocess.run(base + [str(killed)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same = True
    for table in ("image", "nuclei", "cells", "cytoplasm"):
        keys = ["Metadata_Well", "Metadata_Site"] + (["Metadata_ObjectNumber"] if table != "image" else [])
        a = read_table(killed, table).sort_values(keys).reset_index(drop=True)
        b = read_table(reference, table).sort_values(keys).reset_index(drop=True)
        duplicates = int(a.duplicated(keys).sum())
        try:
            pd.testing.assert_frame_equal(a, b[a.columns])
        except AssertionError as exc:
            same = False
            print(f"  {table}: differs: {str(exc)[:300]}")
        print(f"  {table:>9}: {len(a)} rows (undisturbed {len(b)}), {duplicates} duplicated")
    print(f"{len(moments)} SIGKILLs of the whole run (undisturbed run {full:.0f} s), then a resume: tables "
          f"{'identical' if same else 'DIFFERENT'} to the undisturbed run; verify: "
          f"{'clean' if Store(killed).verify().empty else 'DAMAGED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--wells", type=int, default=384)
    ap.add_argument("--fields", type=int, default=9)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-sites", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[384, 1152, 3456])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--kill-sites", type=int, default=64)
    ap.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                    help="stages to run (3 needs 2's store, 4 needs 3's; keep them with --keep)")
    ap.add_argument("--skip-illum", action="store_true", help="reuse --keep DIR's functions, or skip the phase")
    ap.add_argument("--keep", type=Path, default=None, help="work in (and keep) this folder")
    args = ap.parse_args()
    shared_plate = args.shared / "data" / "cpjump1_example_plate"
    root = args.keep or Path(tempfile.mkdtemp(prefix="plate_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        wells = wells_of(args.wells)
        fields = list(range(1, args.fields + 1))
        plate = root / "plate"
        if not (plate / "Images" / "Index.idx.xml").exists():
            t0 = time.perf_counter()
            symlink_plate(shared_plate, plate, wells=wells, fields=fields)
            print(f"plate: {len(wells)} wells x {len(fields)} fields = {len(wells) * len(fields)} sites, "
                  f"{len(wells) * len(fields) * 8} TIFFs (symlinks to 7 real sites), built in "
                  f"{time.perf_counter() - t0:.0f} s")

        if 1 in args.stages:
            print("\n1. inspect")
            for flags in (["--quick"], []):
                m = measure(["inspect", plate, "--json", *flags])
                print(f"  inspect {' '.join(flags) or '(every TIFF header read)':<28} {m['seconds']:7.1f} s "
                      f"{m['peak_mb']:7.0f} MB   exit {m['code']}")

        run_store = root / "run.zarr"
        if 2 in args.stages and (not args.skip_illum or not (run_store / "illum" / "zarr.json").exists()):
            print(f"\n2. illumination phase (all sites, {args.workers} workers)")
            shutil.rmtree(run_store, ignore_errors=True)
            r = illumination_phase(plate, run_store, args.workers)
            print(f"  {r['sites']} sites, {r['images']} images: {r['seconds']:.0f} s "
                  f"({r['seconds'] / r['sites'] * 1000:.0f} ms/site wall), client peak {r['client_peak_mb']:.0f} MB, "
                  f"worker peak {r['worker_peak_mb']:.0f} MB")

        if 3 in args.stages:
            run_subset(plate, run_store, wells, fields, args)
        if 4 in args.stages:
            grown_stores(plate, run_store, root, wells, fields, args.sizes)
        if args.kills and 5 in args.stages:
            print(f"\n5. kill campaign on a {args.kill_sites}-site plate")
            kill_campaign(shared_plate, root / "kills", args.kills, args.kill_sites)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def run_subset(plate: Path, run_store: Path, wells: list[str], fields: list[int], args) -> None:
    """Stage 3: a subset of sites run on the full plate (the client plans every site)."""
    print(f"\n3. run of {args.run_sites} sites of the {len(wells) * len(fields)}-site plate")
    chosen = [f"{w}_f{f}" for w in wells for f in fields][:: max(1, len(wells) * len(fields) // args.run_sites)]
    chosen = chosen[:args.run_sites]
    m = measure(["run", plate, "-o", run_store, "--sites", ",".join(chosen), "--workers", args.workers,
                 "--no-progress"])
    print(f"  {m['seconds']:.0f} s ({len(chosen) / m['seconds'] * 60:.1f} sites/min), client peak "
          f"{m['peak_mb']:.0f} MB, worker peak {m['children_peak_mb']:.0f} MB, exit {m['code']}")


def grown_stores(plate: Path, run_store: Path, root: Path, wells: list[str], fields: list[int],
                 sizes: list[int]) -> None:
    """Stage 4: export, profile, report and verify on stores grown from stage 3's sites, and the peer."""
    print("\n4. stores grown from that run (real sites repeated)")
    header = f"{'sites':>6}{'MB/site':>9}" + "".join(f"{c:>22}" for c in ("export (Parquet)", "profile",
                                                                         "report", "verify"))
    print(header + "\n" + " " * 15 + "".join(f"{'s':>11}{'peak MB':>11}" for _ in range(4)))
    peer = None
    for size in sizes:
        grown = root / f"grown{size}.zarr"
        if not grown.exists():
            n_wells = -(-size // len(fields))
            grow_store(run_store, grown, wells[:n_wells], fields)
        n = len([p for p in (grown / "sites").iterdir() if p.is_dir()])
        row = [measure(["export", grown, "--format", "parquet", "-o", root / f"export{size}"]),
               measure(["profile", grown, "-o", root / f"profiles{size}.parquet"]),
               measure(["report", grown, "-o", root / f"report{size}.html", "--plate", plate]),
               measure(["verify", grown])]
        mb = store_bytes(grown) / 1e6 / n
        print(f"{n:>6}{mb:>9.2f}" + "".join(f"{m['seconds']:>11.1f}{m['peak_mb']:>11.0f}" for m in row)
              + ("" if all(m["code"] == 0 for m in row) else f"   exit codes {[m['code'] for m in row]}"))
        if peer is None:
            peer = (n, row[0], measure([grown, root / f"whole{size}"], script=_WHOLE_TABLES))
        shutil.rmtree(root / f"export{size}", ignore_errors=True)
    n, ours, whole = peer
    print(f"  peer on {n} sites: each table read whole with pandas, then written: {whole['seconds']:.1f} s, "
          f"peak {whole['peak_mb']:.0f} MB; ours {ours['seconds']:.1f} s, {ours['peak_mb']:.0f} MB "
          f"({whole['peak_mb'] / ours['peak_mb']:.1f}x less memory, {whole['seconds'] / ours['seconds']:.1f}x "
          f"the speed)")


if __name__ == "__main__":
    main()
