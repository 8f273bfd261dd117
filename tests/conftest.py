"""Shared fixtures: paths to the real data in ``../shared`` and CellProfiler's reference run.

The real CPJUMP1 images and CellProfiler 4.2.8 outputs live beside the
repository in ``shared/`` (override with ``CPFEATURES_SHARED``). Tests that need
them are skipped, with the reason, when that folder is absent.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CPFEATURES_SHARED", REPO.parent / "shared"))
EXAMPLE_PLATE = SHARED / "data" / "cpjump1_example_plate"
CP_REF = SHARED / "reference" / "cellprofiler"
BUNDLED_PLATE = REPO / "data" / "example_plate"

# CPJUMP1 Phenix channel id -> stain role (shared/data/README.md)
CHANNEL_ROLES = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA", 6: "HighZBF", 7: "LowZBF", 8: "Brightfield"}
ROLE_CHANNELS = {v: k for k, v in CHANNEL_ROLES.items()}
REFERENCE_WELLS = ["D08", "D14", "F10", "G21", "L09", "M02", "N14"]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set CPFEATURES_SHARED)")
    return path


class CellProfilerReference:
    """Access to the real images and CellProfiler 4.2.8's outputs for the 7 shared sites."""

    wells = REFERENCE_WELLS
    roles = list(ROLE_CHANNELS)

    def __init__(self, shared: Path):
        self.shared = shared
        self.plate = _need(shared / "data" / "cpjump1_example_plate")
        self.ref = _need(shared / "reference" / "cellprofiler")

    @staticmethod
    def _rc(well: str) -> tuple[int, int]:
        return ord(well[0].upper()) - 64, int(well[1:])

    def raw_path(self, well: str, role: str) -> Path:
        r, c = self._rc(well)
        return self.plate / "Images" / f"r{r:02d}c{c:02d}f05p01-ch{ROLE_CHANNELS[role]}sk1fk1fl1.tiff"

    @lru_cache(maxsize=64)
    def raw(self, well: str, role: str) -> np.ndarray:
        """The stored uint16 image of one channel of one site."""
        import tifffile

        return tifffile.imread(self.raw_path(well, role))

    @lru_cache(maxsize=16)
    def illum(self, role: str) -> np.ndarray:
        """CellProfiler's illumination function for a channel (float32, 1080x1080)."""
        with gzip.open(self.ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
            return np.load(fh)

    @lru_cache(maxsize=64)
    def corrected(self, well: str, role: str) -> np.ndarray:
        """CellProfiler's corrected image: clip(raw / 65535 / illum, 0, 1), float64."""
        img = self.raw(well, role).astype(np.float64) / 65535.0
        return np.clip(img / self.illum(role), 0.0, 1.0)

    @lru_cache(maxsize=16)
    def labels(self, well: str) -> dict[str, np.ndarray]:
        """CellProfiler's label images ``Nuclei``, ``Cells``, ``Cytoplasm`` for a site."""
        with np.load(self.ref / "labels" / f"{well}_s5_labels.npz") as z:
            return {k: z[k].astype(np.int32) for k in z.files}

    @lru_cache(maxsize=8)
    def table(self, name: str) -> pd.DataFrame:
        """A CellProfiler export table (Image, Nuclei, Cells, Cytoplasm) with Metadata_Well added."""
        df = pd.read_csv(self.ref / "tables" / f"{name}.csv.gz")
        if name != "Image":
            image = self.table("Image")[["ImageNumber", "Metadata_Well"]]
            df = df.merge(image, on="ImageNumber", how="left")
        return df

    def objects_table(self, name: str, well: str) -> pd.DataFrame:
        """One site's rows of an object table, sorted by ObjectNumber."""
        t = self.table(name)
        return t[t["Metadata_Well"] == well].sort_values("ObjectNumber").reset_index(drop=True)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def example_plate_dir() -> Path:
    """The full 7-site real example plate in ``shared/``."""
    return _need(EXAMPLE_PLATE)


@pytest.fixture(scope="session")
def bundled_plate_dir() -> Path:
    """The small real plate bundled in the repository's ``data/``."""
    return _need(BUNDLED_PLATE)


@pytest.fixture(scope="session")
def cp_ref() -> CellProfilerReference:
    return CellProfilerReference(SHARED)
