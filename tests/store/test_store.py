"""The Zarr single-cell store: layout, atomic site writes, errors, readers, export."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import zarr

from cpfeatures.errors import ImageError
from cpfeatures.store import SiteTables, Store, StoreError, export, read_table, read_table_dask


def _site(n: int, seed: int, n_features: int = 6) -> SiteTables:
    rng = np.random.default_rng(seed)
    tables = {"Image": pd.DataFrame({"Count_Cells": [n], "Count_Nuclei": [n], "Threshold_FinalThreshold_Nuclei": [0.02]})}
    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        frame = pd.DataFrame(rng.normal(size=(n, n_features)), columns=[f"{comp}_F{i}" for i in range(n_features)])
        frame.insert(0, "ObjectNumber", np.arange(1, n + 1))
        tables[comp] = frame
    return SiteTables(tables, {"FileName_OrigDNA": f"dna{seed}.tiff"})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "run.zarr", mode="a")
    st.initialize("PLATE1", "[x]\na = 1\n")
    return st


def test_roundtrip_with_plain_zarr_and_pandas(store):
    site = _site(5, 0)
    store.write_site("PLATE1", "D08", 5, site)
    cells = read_table(store.url, "cells")
    assert list(cells.columns[:4]) == ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber"]
    assert (cells["Metadata_Well"] == "D08").all() and (cells["Metadata_Site"] == 5).all()
    np.testing.assert_array_equal(cells["Metadata_ObjectNumber"], np.arange(1, 6))
    np.testing.assert_array_equal(cells.filter(like="Cells_F").to_numpy(), site.tables["Cells"].iloc[:, 1:].to_numpy())
    # the documented layout is readable with plain zarr
    root = zarr.open_group(store.url, mode="r")
    group = root["sites/D08_f5"]
    assert group.attrs["complete"] is True
    names = root["columns"][group.attrs["columns"]["Cells"]].attrs["columns"]
    plain = pd.DataFrame(group["Cells"][:], columns=names)
    np.testing.assert_array_equal(plain.to_numpy(), site.tables["Cells"].to_numpy(dtype=float))
    image = read_table(store.url, "image")
    assert image.loc[0, "FileName_OrigDNA"] == "dna0.tiff" and image.loc[0, "Count_Cells"] == 5


def test_incomplete_site_is_invisible_and_rewritten(store):
    store.write_site("PLATE1", "D08", 5, _site(3, 1))
    # simulate a worker killed mid-write: arrays present, no "complete" attribute
    partial = store.root["sites"].create_group("D14_f5")
    partial.create_array("Cells", data=np.zeros((2, 3)))
    assert store.completed_sites() == ["D08_f5"]
    assert set(read_table(store.url, "cells")["Metadata_Well"]) == {"D08"}
    store.write_site("PLATE1", "D14", 5, _site(4, 2))
    assert store.completed_sites() == ["D08_f5", "D14_f5"]
    assert len(read_table(store.url, "nuclei")) == 7


def test_rewriting_a_site_does_not_duplicate(store):
    store.write_site("PLATE1", "D08", 5, _site(3, 1))
    store.write_site("PLATE1", "D08", 5, _site(3, 1))
    assert len(read_table(store.url, "cytoplasm")) == 3


def test_empty_site(store):
    store.write_site("PLATE1", "D08", 5, _site(0, 1))
    assert len(read_table(store.url, "cells")) == 0
    assert read_table(store.url, "image").loc[0, "Count_Cells"] == 0


def test_errors_table_and_clear_on_success(store):
    store.record_error("F10", 5, ImageError("truncated or corrupt TIFF (bad LZW)", "/x/r06c10.tiff"))
    errors = store.errors()
    assert errors.loc[0, "site"] == "F10_f5" and errors.loc[0, "file"] == "/x/r06c10.tiff"
    assert "truncated" in errors.loc[0, "message"] and errors.loc[0, "error"] == "ImageError"
    store.write_site("PLATE1", "F10", 5, _site(2, 3))
    assert store.errors().empty


def test_illum_roundtrip_and_incomplete(store):
    assert store.read_illum() is None
    f = {"DNA": np.full((4, 4), 2.0), "RNA": np.ones((4, 4))}
    store.write_illum(f)
    got = store.read_illum()
    assert set(got) == {"DNA", "RNA"} and got["DNA"].dtype == np.float32 and got["DNA"][0, 0] == 2.0


def test_initialize_refuses_other_plate_or_settings(store):
    store.initialize("PLATE1", "[x]\na = 1\n")  # same: fine (resume)
    with pytest.raises(StoreError, match="holds plate"):
        store.initialize("PLATE2", "[x]\na = 1\n")
    with pytest.raises(StoreError, match="different settings"):
        store.initialize("PLATE1", "[x]\na = 2\n")


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError):
        Store(tmp_path / "nothing.zarr")
    with pytest.raises(StoreError, match="unknown table"):
        read_table(_make(tmp_path), "organelles")


def _make(tmp_path):
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "")
    return st.url


def test_single_cells_and_iter_wells(store):
    store.write_site("PLATE1", "D08", 5, _site(3, 1))
    store.write_site("PLATE1", "D08", 6, _site(2, 2))
    store.write_site("PLATE1", "L09", 5, _site(4, 3))
    merged = store.single_cells()
    assert len(merged) == 9
    assert {"Cells_F0", "Nuclei_F0", "Cytoplasm_F0"} <= set(merged.columns)
    wells = list(store.iter_wells())
    assert [w["Metadata_Well"].iloc[0] for w in wells] == ["D08", "L09"]
    assert [len(w) for w in wells] == [5, 4]


def test_dask_reader_matches_pandas(store):
    for i, well in enumerate(["B02", "C03", "D04"]):
        store.write_site("PLATE1", well, 1, _site(i + 2, i))
    lazy = read_table_dask(store.url, "cells")
    assert lazy.npartitions == 3
    pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), read_table(store.url, "cells"))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(store, tmp_path, fmt):
    store.write_site("PLATE1", "D08", 5, _site(3, 1))
    paths = export(store.url, tmp_path / "out", fmt=fmt)
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == sorted(f"{n}.{fmt}" for n in ["Image", "Nuclei", "Cells", "Cytoplasm", "SingleCells"])
    reader = pd.read_parquet if fmt == "parquet" else pd.read_csv
    cells = reader(tmp_path / "out" / f"Cells.{fmt}")
    assert len(cells) == 3 and "Metadata_ObjectNumber" in cells


def test_write_and_list_overhead_flat(tmp_path):
    """Per-site write and listing cost must not grow with the number of sites already stored."""
    st = Store(tmp_path / "big.zarr", mode="a")
    st.initialize("P", "")
    site = _site(10, 0, n_features=20)
    batches = []
    for b in range(4):
        times = []
        for i in range(60):
            t0 = time.perf_counter()
            st.write_site("P", f"W{b}{i:03d}", 1, site)
            times.append(time.perf_counter() - t0)
        # the median site: a burst of the other test worker's load moves a mean, not the median;
        # a cost that grows with the store moves every site's
        batches.append(float(np.median(times)))
    # the last batch (180-240 sites in the store) costs about what the first did (0-60)
    assert batches[-1] < 2.0 * batches[0] + 0.005, batches
    t0 = time.perf_counter()
    assert len(st.completed_sites()) == 240
    per_site_list = (time.perf_counter() - t0) / 240
    assert per_site_list < 0.005, per_site_list


def test_verify_names_damaged_sites(store):
    store.write_site("PLATE1", "D08", 5, _site(30, 1, n_features=50))
    store.write_site("PLATE1", "D14", 5, _site(4, 2))
    store.write_site("PLATE1", "G21", 5, _site(4, 3))
    assert store.verify().empty
    import os
    from pathlib import Path

    chunk = next(p for p in (Path(store.url) / "sites" / "D08_f5" / "Cells").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    os.remove(chunk)  # zarr reads the fill value without a word
    report = store.verify().set_index("site")
    assert list(report.index) == ["D08_f5"] and report.loc["D08_f5", "status"] == "damaged"
    assert "Cells" in report.loc["D08_f5", "problem"] and "checksum" in report.loc["D08_f5", "problem"]
    # a site from before checksums: sizes checked only, said so
    attrs = store.root["sites/D14_f5"].attrs
    attrs.update({"arrays": {}})
    report = Store(store.url).verify().set_index("site")
    assert report.loc["D14_f5", "status"] == "unverified"
    store.uncommit("D08_f5")
    assert "D08_f5" not in store.completed_sites()


def test_read_table_columns_and_lazy_iteration(store):
    for i, well in enumerate(["B02", "C03"]):
        store.write_site("PLATE1", well, 1, _site(3 + i, i))
    some = read_table(store.url, "cells", columns=["Cells_F2"])
    assert list(some.columns) == ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber",
                                  "Cells_F2"]
    full = read_table(store.url, "cells")
    pd.testing.assert_frame_equal(some, full[some.columns])
    parts = list(store.iter_tables("cells"))
    assert [len(p) for p in parts] == [3, 4]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), full)


def test_refuses_to_write_into_other_things(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("x")
    with pytest.raises(StoreError, match="not a cpfeatures store"):
        Store(tmp_path / "mine", mode="a")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store(tmp_path / "afile", mode="a")
    other = zarr.open_group(tmp_path / "other.zarr", mode="w")
    other.create_array("x", shape=(2,), dtype="f8")
    with pytest.raises(StoreError, match="another program"):
        Store(tmp_path / "other.zarr", mode="a")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["data.csv"]
