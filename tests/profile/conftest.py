"""Real profile data for the profiling tests: a LINCS plate, NF1 single cells (CellProfiler SQLite)."""

from __future__ import annotations

import gzip
import shutil
import sqlite3

import pandas as pd
import pytest

from ..conftest import SHARED

PROFILES = SHARED / "reference" / "profiles_data"


def _need(path):
    if not path.exists():
        pytest.skip(f"real profile data not found at {path} (set CPFEATURES_SHARED)")
    return path


@pytest.fixture(scope="session")
def lincs() -> pd.DataFrame:
    """LINCS plate SQ00015054: 384 wells x 454 normalized, feature-selected features."""
    return pd.read_csv(_need(PROFILES / "lincs_SQ00015054_normalized_feature_select.csv.gz"))


@pytest.fixture(scope="session")
def nf1_sqlite(tmp_path_factory):
    """The NF1 CellProfiler SQLite, decompressed."""
    src = _need(PROFILES / "nf1_schwann_all_cellprofiler.sqlite.gz")
    out = tmp_path_factory.mktemp("nf1") / "nf1.sqlite"
    with gzip.open(src) as fin, open(out, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return out


@pytest.fixture(scope="session")
def nf1_cells(nf1_sqlite) -> pd.DataFrame:
    """NF1 Per_Cells rows with the plate and well of their image as Metadata_ columns."""
    with sqlite3.connect(nf1_sqlite) as con:
        image = pd.read_sql("select ImageNumber, Image_Metadata_Plate, Image_Metadata_Well from Per_Image", con)
        cells = pd.read_sql("select * from Per_Cells", con)
    image = image.rename(columns={"Image_Metadata_Plate": "Metadata_Plate", "Image_Metadata_Well": "Metadata_Well"})
    return image.merge(cells, on="ImageNumber")


@pytest.fixture(scope="session")
def nf1_platemap():
    return _need(PROFILES / "nf1_platemap_NF1_CP.csv")


@pytest.fixture(scope="session")
def second_run(bundled_plate_dir, tmp_path_factory):
    """A second real plate: the bundled plate's images mirrored left-right (so segmentation and features
    differ), under plate id CPJUMP1_EXAMPLE_B, run into its own store."""
    import shutil

    import numpy as np
    import tifffile

    from cpfeatures.run import run_plate

    root = tmp_path_factory.mktemp("plate_b")
    plate = root / "plate_b"
    shutil.copytree(bundled_plate_dir, plate)
    index = plate / "Images" / "Index.idx.xml"
    index.write_text(index.read_text().replace("<PlateID>CPJUMP1_EXAMPLE</PlateID>",
                                               "<PlateID>CPJUMP1_EXAMPLE_B</PlateID>"))
    for tif in (plate / "Images").glob("*.tiff"):
        tifffile.imwrite(tif, np.ascontiguousarray(tifffile.imread(tif)[:, ::-1]), compression="lzw")
    out = root / "plate_b.zarr"
    summary = run_plate(plate, out, workers=1, progress=False)
    assert summary.ok and len(summary.done) == 4
    return out
