"""Crops tests: a run of one real site with --save-crops, and an independent oracle of the
corrected images (the raw TIFF read with tifffile, divided by the store's illumination function)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# CPJUMP1 Phenix channel numbers of the fluorescent roles (data/README.md)
CHANNEL_NUMBER = {"Mito": 1, "AGP": 2, "RNA": 3, "ER": 4, "DNA": 5, "HighZBF": 6, "LowZBF": 7, "Brightfield": 8}


def oracle_stack(plate_dir: Path, well: str, roles, illum: dict) -> np.ndarray:
    """(C, H, W) float32: clip(raw / 65535 / illum, 0, 1), computed here with tifffile and numpy."""
    import tifffile

    r, c = ord(well[0]) - 64, int(well[1:])
    out = []
    for role in roles:
        raw = tifffile.imread(plate_dir / "Images" / f"r{r:02d}c{c:02d}f05p01-ch{CHANNEL_NUMBER[role]}sk1fk1fl1.tiff")
        out.append(np.clip(raw.astype(np.float32) / np.float32(65535) / illum[role].astype(np.float32), 0, 1))
    return np.stack(out)


def oracle_uint16(values: np.ndarray) -> np.ndarray:
    """The documented scaling, written out: floor(value * 65535 + 0.5)."""
    return np.floor(np.asarray(values, np.float64) * 65535 + 0.5).astype(np.uint16)


def padded_box(stack: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """stack[..., y0:y0+side, x0:x0+side] with zeros outside the image (plain slicing of a zero canvas)."""
    canvas = np.zeros(stack.shape[:-2] + (side, side), stack.dtype)
    h, w = stack.shape[-2:]
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + side, h), min(x0 + side, w)
    if ye > ys and xe > xs:
        canvas[..., ys - y0:ye - y0, xs - x0:xe - x0] = stack[..., ys:ye, xs:xe]
    return canvas


@pytest.fixture(scope="session")
def crops_run(bundled_run, bundled_plate_dir, tmp_path_factory):
    """`run --save-crops --crop-masks --save-labels` of one real site (D08_f5): (store path, crops path).

    The run resumes a copy of the bundled run with D08_f5 taken out (its illumination functions are
    reused, so only that site is processed), and crops it.
    """
    import shutil

    from cpfeatures.crops import CropSettings
    from cpfeatures.run import run_plate
    from cpfeatures.store import Store

    out = tmp_path_factory.mktemp("crops_run") / "one.zarr"
    shutil.copytree(bundled_run, out)
    Store(out, mode="a").uncommit("D08_f5")
    summary = run_plate(bundled_plate_dir, out, workers=1, progress=False, sites=["D08_f5"], save_labels=True,
                        crops=CropSettings(masks=True))
    assert summary.ok and summary.done == ["D08_f5"] and summary.illum_seconds == 0
    return out, out.with_name("one.crops.zarr")
