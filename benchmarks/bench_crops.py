"""Single-cell crops: crops/s written and read, bytes per cell, and memory while iterating a 3,456-site store.

On real sites (the shared 7-site CPJUMP1 plate at full size when present, else the bundled
plate): a run with ``--save-labels`` gives the corrected images' functions and the labels,
then per site

- extraction (``site_crops``, centre and bbox mode) against a per-cell loop peer (slice a
  zero-padded box per cell and channel; in bbox mode ``skimage.transform.resize`` per cell
  and channel, as a DeepProfiler-style per-cell loader does), printed as a ratio;
- writing (``CropStore.write_site``) and bytes per cell on disk;
- reading with ``iter_crops`` (in order and shuffled) and ``CropDataset`` in site order.

Then crops stores of 384 and 3,456 sites are grown from the real sites' crops (chunks hard
linked, as ``_plates.grow_store`` grows stores) and each is iterated whole, shuffled, in a new
process: its peak resident memory should not grow with the store.

    python benchmarks/bench_crops.py [--plate PLATE] [--store RUN.zarr] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _plates import wells_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CPFEATURES_SHARED", REPO.parent / "shared"))


def hwm() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def per_cell_peer(stack: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """The straightforward loader: for each cell and channel, a zero canvas, the in-image part copied in,
    resized with skimage when the box is not ``size``."""
    from skimage.transform import resize

    out = np.zeros((len(boxes), stack.shape[0], size, size), np.uint16)
    h, w = stack.shape[1:]
    for i, (x0, y0, side) in enumerate(boxes):
        for c in range(stack.shape[0]):
            canvas = np.zeros((side, side), np.float32)
            ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y0 + side, h), min(x0 + side, w)
            canvas[ys - y0:ye - y0, xs - x0:xe - x0] = stack[c, ys:ye, xs:xe]
            if side != size:
                canvas = resize(canvas, (size, size), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
            out[i, c] = np.floor(np.clip(canvas, 0, 1) * 65535 + 0.5)
    return out


def real_sites(store_path: Path, plate_path: Path):
    """Per site: (key, corrected images, labels, nuclei table, cells table)."""
    from cpfeatures.io import parse_site_key, read_plate
    from cpfeatures.pipeline import correct_images
    from cpfeatures.store import Store

    st = Store(store_path)
    illum = st.read_illum()
    plate = read_plate(plate_path)
    out = []
    for key in st.completed_sites():
        well, fieldno = parse_site_key(key)
        images = plate.load_site(well, fieldno, roles=["DNA", "ER", "RNA", "AGP", "Mito"])
        out.append((key, correct_images(images, illum), st.site_labels(key), st.site_table(key, "nuclei"),
                    st.site_table(key, "cells")))
    return out


def bench_extract(sites, size: int, mode: str, repeat: int = 3) -> dict:
    from cpfeatures.crops import CropSettings, crop_boxes, site_crops
    from cpfeatures.crops._site import _BBOX

    settings = CropSettings(size=size, mode=mode)
    ours = peer = 0.0
    n = 0
    for key, corrected, labels, nuclei, cells in sites:
        t0 = time.perf_counter()
        for _ in range(repeat):
            crops, _, index = site_crops(corrected, labels, nuclei, cells, settings)
        ours += (time.perf_counter() - t0) / repeat
        stack = np.stack([corrected[r] for r in settings.channels])
        boxes = crop_boxes(mode, size, nuclei["Nuclei_Location_Center_X"].to_numpy(),
                           nuclei["Nuclei_Location_Center_Y"].to_numpy(), cells[_BBOX].to_numpy())
        t0 = time.perf_counter()
        theirs = per_cell_peer(stack, boxes, size)
        peer += time.perf_counter() - t0
        assert np.abs(theirs.astype(int) - crops).max() <= 1  # the same crops
        n += len(crops)
    return {"mode": mode, "cells": n, "ours_per_s": n / ours, "peer_per_s": n / peer, "ratio": peer / ours}


def write_store(sites, path: Path, masks: bool) -> dict:
    from cpfeatures.crops import CropSettings, CropStore, site_crops
    from cpfeatures.io import parse_site_key

    settings = CropSettings(masks=masks)
    st = CropStore(path, mode="a")
    st.initialize("BENCH", settings)
    seconds, n = 0.0, 0
    for key, corrected, labels, nuclei, cells in sites:
        crops, mks, index = site_crops(corrected, labels, nuclei, cells, settings)
        well, fieldno = parse_site_key(key)
        t0 = time.perf_counter()
        st.write_site("BENCH", well, fieldno, crops, index, mks)
        seconds += time.perf_counter() - t0
        n += len(crops)
    sizes = {name: sum(p.stat().st_size for p in path.glob(f"sites/*/{name}/**/*") if p.is_file())
             for name in ("images", "masks", "index")}
    return {"cells": n, "write_per_s": n / seconds, "bytes_per_cell": {k: v / n for k, v in sizes.items()},
            "raw_bytes_per_cell": 5 * 128 * 128 * 2}


def grow_crops(source: Path, out: Path, n_sites: int) -> Path:
    """A crops store of ``n_sites`` sites made of the source's real sites in a cycle (chunks hard linked)."""
    out.mkdir(parents=True)
    shutil.copy2(source / "zarr.json", out / "zarr.json")
    (out / "sites").mkdir()
    shutil.copy2(source / "sites" / "zarr.json", out / "sites" / "zarr.json")
    real = sorted(p for p in (source / "sites").iterdir() if p.is_dir())
    fields = 9
    for i, well in enumerate(wells_of((n_sites + fields - 1) // fields)):
        for f in range(1, fields + 1):
            k = i * fields + f - 1
            if k >= n_sites:
                break
            src = real[k % len(real)]
            dst = out / "sites" / f"{well}_f{f}"
            shutil.copytree(src, dst, copy_function=os.link)
            meta = json.loads((src / "zarr.json").read_text())
            meta["attributes"].update({"well": well, "site": f})
            (dst / "zarr.json").unlink()
            (dst / "zarr.json").write_text(json.dumps(meta))
    return out


_ITERATE = """
import json, sys, time
sys.path.insert(0, {here!r})
from bench_crops import hwm
from cpfeatures.crops import iter_crops
t0 = time.perf_counter()
n = 0
for crops, index in iter_crops(sys.argv[1], batch_size=256, shuffle=True, seed=0, dtype="float32"):
    n += len(crops)
print(json.dumps({{"crops": n, "seconds": time.perf_counter() - t0, "peak_mb": hwm()}}))
"""


def iterate_in_child(path: Path) -> dict:
    script = _ITERATE.format(here=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_read(path: Path) -> dict:
    from cpfeatures.crops import CropDataset, iter_crops

    out = {}
    for name, kwargs in (("in order", {}), ("shuffled", {"shuffle": True, "seed": 0})):
        t0 = time.perf_counter()
        n = sum(len(c) for c, _ in iter_crops(path, batch_size=64, **kwargs))
        out[f"iter_crops {name}"] = n / (time.perf_counter() - t0)
    ds = CropDataset(path)
    order = ds.site_order(seed=0)
    t0 = time.perf_counter()
    for i in order:
        ds[i]
    out["CropDataset site order"] = len(order) / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = SHARED / "data" / "cpjump1_example_plate"
    ap.add_argument("--plate", type=Path, default=shared if shared.exists() else REPO / "data" / "example_plate")
    ap.add_argument("--store", type=Path, default=None, help="A finished --save-labels run of --plate.")
    ap.add_argument("--keep", type=Path, default=None, help="Work here and keep it (default: a temp folder).")
    ap.add_argument("--big", type=int, default=3456)
    ap.add_argument("--small", type=int, default=384)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp())
    root.mkdir(parents=True, exist_ok=True)
    try:
        store = args.store
        if store is None:
            store = root / "run.zarr"
            if not store.exists():
                print(f"running {args.plate} with --save-labels ...", flush=True)
                subprocess.run([sys.executable, "-m", "cpfeatures.cli", "run", str(args.plate), "-o", str(store),
                                "--save-labels", "--progress", "none"], check=True)
        sites = real_sites(store, args.plate)
        shape = next(iter(sites[0][1].values())).shape
        print(f"{len(sites)} real sites of {args.plate} ({shape[0]} x {shape[1]}), "
              f"{sum(len(s[4]) for s in sites)} cells")
        print("\nextraction (5 channels, 128 px): ours vs a per-cell loop")
        for mode in ("centre", "bbox"):
            r = bench_extract(sites, 128, mode)
            print(f"  {mode:6}  ours {r['ours_per_s']:8.0f} crops/s   per-cell loop {r['peer_per_s']:7.0f} crops/s"
                  f"   ratio {r['ratio']:.1f}x")
        for masks in (False, True):
            path = root / f"crops{'_masks' if masks else ''}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            w = write_store(sites, path, masks)
            per = w["bytes_per_cell"]
            print(f"\nwrite{' with masks' if masks else ''}: {w['write_per_s']:.0f} crops/s; on disk per cell: images "
                  f"{per['images'] / 1024:.1f} KB (raw {w['raw_bytes_per_cell'] / 1024:.0f} KB), "
                  f"masks {per['masks'] / 1024:.1f} KB, index {per['index']:.0f} B")
        print("\nread (crops/s):")
        for name, rate in bench_read(root / "crops.zarr").items():
            print(f"  {name:24} {rate:8.0f}")
        print("\nmemory while iterating a whole crops store (shuffled, batches of 256, float32), new process:")
        for n in (args.small, args.big):
            path = root / f"grown_{n}.zarr"
            if not path.exists():
                grow_crops(root / "crops.zarr", path, n)
            r = iterate_in_child(path)
            print(f"  {n:5} sites  {r['crops']:7} crops  {r['seconds']:6.1f} s  {r['crops'] / r['seconds']:6.0f} "
                  f"crops/s  peak RSS {r['peak_mb']:6.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
