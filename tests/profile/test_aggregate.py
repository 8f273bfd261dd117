"""aggregate against pycytominer on real single cells (NF1, CellProfiler SQLite) and on a run's store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import aggregate, write_profiles


@pytest.mark.parametrize("operation", ["median", "mean"])
def test_equals_pycytominer(nf1_cells, operation):
    ours = aggregate(nf1_cells, operation=operation)
    ref = pycytominer.aggregate(nf1_cells.assign(Metadata_ObjectNumber=nf1_cells["Cells_Number_Object_Number"]),
                                operation=operation, compute_object_count=True)
    assert list(ours.columns) == list(ref.columns)
    assert len(ours) == len(ref) == nf1_cells[["Metadata_Plate", "Metadata_Well"]].drop_duplicates().shape[0]
    ref = ref.sort_values(["Metadata_Plate", "Metadata_Well"]).reset_index(drop=True)
    np.testing.assert_array_equal(ours["Metadata_Object_Count"], ref["Metadata_Object_Count"])
    feats = [c for c in ref.columns if c.startswith("Cells_")]
    np.testing.assert_allclose(ours[feats].to_numpy(float), ref[feats].to_numpy(float), rtol=1e-9, atol=1e-12)


def test_nan_values_are_skipped():
    cells = pd.DataFrame({"Metadata_Plate": ["P"] * 4, "Metadata_Well": ["A01", "A01", "A01", "B01"],
                          "Cells_x": [1.0, np.nan, 3.0, np.nan]})
    out = aggregate(cells)
    assert out["Cells_x"].iloc[0] == 2.0 and np.isnan(out["Cells_x"].iloc[1])
    assert out["Metadata_Object_Count"].tolist() == [3, 1]


def test_bad_arguments(nf1_cells):
    with pytest.raises(InputError, match="operation"):
        aggregate(nf1_cells, operation="max")
    with pytest.raises(InputError, match="Metadata_Nope"):
        aggregate(nf1_cells, strata=["Metadata_Nope"])
    with pytest.raises(InputError, match="not found"):
        aggregate("/nonexistent/cells.csv")


def test_anndata_zarr_is_a_table_not_a_store(tmp_path):
    """A ``.zarr`` of AnnData profiles is read as a table, not as a run's store."""
    rng = np.random.default_rng(3)
    cells = pd.DataFrame({"Metadata_Plate": "P", "Metadata_Well": np.repeat(["A01", "A02", "B01"], 5),
                          "Metadata_ObjectNumber": np.tile(np.arange(1, 6), 3),
                          "Cells_X": rng.normal(size=15), "Nuclei_Y": rng.normal(size=15)})
    path = write_profiles(cells, tmp_path / "cells.zarr")
    got = aggregate(path)
    ref = pycytominer.aggregate(cells, compute_object_count=True)
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_dtype=False)
