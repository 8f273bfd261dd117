"""Shared by the benchmarks: a real CPJUMP1 site corrected as CellProfiler did, and CPU timing."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import tifffile

from cpfeatures.illum import apply as apply_illum

#: Phenix channel number of each CPJUMP1 role (shared/data/README.md).
CHANNELS = {"Mito": 1, "AGP": 2, "RNA": 3, "ER": 4, "DNA": 5, "HighZBF": 6, "LowZBF": 7, "Brightfield": 8}
#: The five fluorescent stains (cp-measure comparisons use these).
FLUOR = ["DNA", "ER", "RNA", "AGP", "Mito"]
SHARED = Path(__file__).resolve().parents[2] / "shared"


def cpu(fn, *args, **kwargs):
    """(CPU seconds of this process, result) of one call."""
    t0 = time.process_time()
    out = fn(*args, **kwargs)
    return time.process_time() - t0, out


def load_site(shared: Path, well: str, roles=None):
    """Corrected images (raw / 65535 / CellProfiler's illumination function) and CellProfiler's labels."""
    plate = shared / "data" / "cpjump1_example_plate" / "Images"
    ref = shared / "reference" / "cellprofiler"
    r, c = ord(well[0]) - 64, int(well[1:])
    images = {}
    for role in roles or CHANNELS:
        raw = tifffile.imread(plate / f"r{r:02d}c{c:02d}f05p01-ch{CHANNELS[role]}sk1fk1fl1.tiff")
        with gzip.open(ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
            images[role] = apply_illum(raw, np.load(fh))
    with np.load(ref / "labels" / f"{well}_s5_labels.npz") as z:
        labels = {k: z[k].astype(np.int32) for k in z.files}
    return images, labels


def site_parser(doc: str, repeat: int | None = 3, repeat_help: str = "our runs (best of); the peer runs once"):
    """The arguments every single-site benchmark takes: ``--shared``, ``--well`` and ``--repeat``."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--well", default="M02")
    if repeat is not None:
        ap.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    return ap
