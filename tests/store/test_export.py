"""Export (export.py): written incrementally, one Parquet row group per well, with one schema
for the whole plate, and memory that does not grow with the plate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cpfeatures.store import export
from cpfeatures.store import SiteTables, Store, read_table


def _site(n: int, seed: int, n_features: int = 8, files=("DNA",)) -> SiteTables:
    rng = np.random.default_rng(seed)
    tables = {"Image": pd.DataFrame({"Count_Cells": [n], "ImageQuality_X": [rng.normal()]})}
    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        frame = pd.DataFrame(rng.normal(size=(n, n_features)), columns=[f"{comp}_F{i}" for i in range(n_features)])
        frame.insert(0, "ObjectNumber", np.arange(1, n + 1))
        tables[comp] = frame
    return SiteTables(tables, {f"FileName_Orig{f}": f"{f}_{seed}.tiff" for f in files})


def _grow(url, n_wells: int, n_fields: int, n_cells: int = 5, n_features: int = 8) -> Store:
    st = Store(url, mode="a")
    st.initialize("PLATE1", "")
    for w in range(n_wells):
        for f in range(1, n_fields + 1):
            st.write_site("PLATE1", f"{chr(65 + w // 24)}{w % 24 + 1:02d}", f,
                          _site(n_cells, w * 100 + f, n_features))
    return st


def test_parquet_row_groups_of_whole_wells_equal_to_the_tables(tmp_path, monkeypatch):
    import cpfeatures.store._export as ex

    monkeypatch.setattr(ex, "ROW_GROUP_BYTES", 1)  # one row group per well
    st = _grow(tmp_path / "s.zarr", n_wells=3, n_fields=2)
    st.write_site("PLATE1", "A01", 3, _site(4, 999, files=("DNA", "RNA")))  # another site's extra file column
    export(st.url, tmp_path / "out", names="cpfeatures")  # the store's names: read_table's
    for name in ("Image", "Nuclei", "Cells", "Cytoplasm"):
        meta = pq.ParquetFile(tmp_path / "out" / f"{name}.parquet").metadata
        assert meta.num_row_groups == 3, name
        assert [meta.row_group(i).num_rows for i in range(3)] == ([3, 2, 2] if name == "Image" else [14, 10, 10])
        got = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        want = read_table(st.url, name)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    image = pd.read_parquet(tmp_path / "out" / "Image.parquet")
    assert image["FileName_OrigRNA"].notna().sum() == 1 and image["Metadata_Site"].dtype == np.int64
    cells = pd.read_parquet(tmp_path / "out" / "SingleCells.parquet")
    pd.testing.assert_frame_equal(cells, st.single_cells()[cells.columns], check_dtype=False)


def test_csv_equals_parquet(tmp_path):
    st = _grow(tmp_path / "s.zarr", n_wells=2, n_fields=2)
    export(st.url, tmp_path / "p")
    export(st.url, tmp_path / "c", fmt="csv")
    for name in ("Image", "Cells", "SingleCells"):
        a = pd.read_parquet(tmp_path / "p" / f"{name}.parquet")
        b = pd.read_csv(tmp_path / "c" / f"{name}.csv")
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_no_partial_file_left_behind(tmp_path, monkeypatch):
    st = _grow(tmp_path / "s.zarr", n_wells=2, n_fields=1)
    import cpfeatures.store._export as ex

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
        yield

    monkeypatch.setattr(ex, "_well_blocks", broken)
    with pytest.raises(RuntimeError):
        export(st.url, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.fixture(scope="module")
def grown_stores(tmp_path_factory):
    """40 and 120 sites of 3 x 200 cells x 100 features (more than one read batch of 32 sites each)."""
    root = tmp_path_factory.mktemp("grown")
    return {n: _grow(root / f"s{n}.zarr", n_wells=n // 5, n_fields=5, n_cells=200, n_features=100).url
            for n in (40, 120)}


def test_memory_does_not_grow_with_the_plate(grown_stores, tmp_path, monkeypatch):
    """(Parquet; CSV goes through the same row-group writer, pyarrow's CSVWriter, and is compared with
    Parquet above.) 80 more sites are ~38 MB more tables (twice that with SingleCells): the peak of what numpy
    and pandas hold grows by a few MB (the sites' metadata), where reading the tables whole would
    add at least 77 MB. (pyarrow's own buffers are one row group, by construction; the benchmark
    shows the process's RSS on stores of 384 to 3,456 real sites.)"""
    import tracemalloc

    import cpfeatures.store._export as ex
    import cpfeatures.store._store as store

    monkeypatch.setattr(ex, "ROW_GROUP_BYTES", 4 * 2**20)  # row groups far smaller than the data, as on a plate
    monkeypatch.setattr(store, "READ_BATCH", 4)  # read batches far smaller than the plate, too
    fmt = "parquet"
    export(grown_stores[40], tmp_path / "warm", fmt=fmt)  # imports and caches outside the measure
    peaks = []
    for n, url in grown_stores.items():
        tracemalloc.start()
        try:
            export(url, tmp_path / f"o{n}", fmt=fmt)
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        finally:
            tracemalloc.stop()
    data_mb = 80 * 3 * 200 * 100 * 8 / 1e6
    assert peaks[1] - peaks[0] < 0.25 * data_mb, (peaks, data_mb)


def test_the_store_modules_export_takes_the_same_options(tmp_path):
    from cpfeatures.store import export as store_export

    st = _grow(tmp_path / "s.zarr", n_wells=1, n_fields=2)
    written = store_export(st.url, tmp_path / "own", tables=["Cells"], single_cells=False, names="cpfeatures")
    assert [p.rsplit("/", 1)[1] for p in written] == ["Cells.parquet"]
    got = pd.read_parquet(tmp_path / "own" / "Cells.parquet")
    want = read_table(st.url, "cells")  # the store's own names
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    store_export(st.url, tmp_path / "ct", tables=["Image"], single_cells=False)
    assert "Metadata_ImageNumber" in pd.read_parquet(tmp_path / "ct" / "Image.parquet")  # CytoTable's by default
