"""feature_select against pycytominer: same features kept, on real NF1 single cells and the LINCS plate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import default_blocklist, feature_select

PYCYTO_BLOCKLIST = pycytominer.__file__.rsplit("/", 1)[0] + "/data/blocklist_features.txt"


@pytest.mark.parametrize("operation", ["variance_threshold", "frequency_threshold", "correlation_threshold",
                                       "drop_na_columns", "drop_outliers"])
def test_each_operation_equals_pycytominer(nf1_cells, operation):
    ours = feature_select(nf1_cells, operations=[operation])
    ref = pycytominer.feature_select(nf1_cells, operation=[operation])
    assert sorted(ours.columns) == sorted(ref.columns)
    assert len(ours.columns) < len(nf1_cells.columns) or operation in ("drop_na_columns", "drop_outliers")


def test_cpjump1_recipe_equals_pycytominer(lincs):
    ops = ["frequency_threshold", "correlation_threshold", "drop_na_columns", "blocklist"]
    ours = feature_select(lincs, operations=ops, corr_threshold=0.5)
    ref = pycytominer.feature_select(lincs, operation=ops, corr_threshold=0.5, blocklist_file=PYCYTO_BLOCKLIST)
    assert sorted(ours.columns) == sorted(ref.columns)
    assert len(ref.columns) < len(lincs.columns)  # the threshold makes it drop features


def test_samples_query(lincs):
    ours = feature_select(lincs, operations=["correlation_threshold"], samples="Metadata_broad_sample == 'DMSO'",
                          corr_threshold=0.6)
    ref = pycytominer.feature_select(lincs, operation=["correlation_threshold"],
                                     samples="Metadata_broad_sample == 'DMSO'", corr_threshold=0.6)
    assert sorted(ours.columns) == sorted(ref.columns)


def test_blocklist_is_pycytominers():
    listed = [l.strip() for l in open(PYCYTO_BLOCKLIST) if l.strip() and l.strip() != "blocklist"]
    assert default_blocklist() == sorted(listed)


def test_nan_correlations_and_returned_exclusions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    frame = pd.DataFrame({"Metadata_Well": [f"A{i:02d}" for i in range(40)], "Cells_a": x[:, 0],
                          "Cells_b": x[:, 0] * 2 + 1e-3 * x[:, 1], "Cells_c": x[:, 2]})
    frame.loc[3, "Cells_c"] = np.nan
    ours, excluded = feature_select(frame, operations=["correlation_threshold"], return_excluded=True)
    ref = pycytominer.feature_select(frame, operation=["correlation_threshold"])
    assert sorted(ours.columns) == sorted(ref.columns)
    assert len(excluded["correlation_threshold"]) == 1


def test_bad_arguments(lincs):
    with pytest.raises(InputError, match="unknown feature_select"):
        feature_select(lincs, operations=["pca"])
    with pytest.raises(InputError, match="corr_threshold"):
        feature_select(lincs, corr_threshold=1.5)


def test_tied_correlations_keep_pycytominers_features(nf1_sqlite, nf1_platemap):
    """NF1 well medians of all three compartments, normalized to the WT wells: Cells and Cytoplasm
    bounding boxes, MinIntensityEdge, Costes, ... correlate with |r| = 1, and which of a pair goes is
    decided by the last bits of pycytominer's |r| totals and pandas' sort: the kept set must be the same."""
    import sqlite3
    import warnings

    from cpfeatures.profile import aggregate, annotate, normalize

    with sqlite3.connect(nf1_sqlite) as con:
        image = pd.read_sql("select ImageNumber, Image_Metadata_Plate as Metadata_Plate, Image_Metadata_Well as "
                            "Metadata_Well from Per_Image", con)
        tables = {t: pd.read_sql(f"select * from Per_{t}", con) for t in ("Cells", "Cytoplasm", "Nuclei")}
    cells = tables["Cells"].merge(tables["Cytoplasm"], left_on=["ImageNumber", "Cells_Number_Object_Number"],
                                  right_on=["ImageNumber", "Cytoplasm_Parent_Cells"])
    cells = cells.merge(tables["Nuclei"], left_on=["ImageNumber", "Cytoplasm_Parent_Nuclei"],
                        right_on=["ImageNumber", "Nuclei_Number_Object_Number"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few features have no spread in the 4 WT wells
        profiles = normalize(annotate(aggregate(image.merge(cells, on="ImageNumber")), nf1_platemap),
                             samples="Metadata_genotype == 'WT'")
    ours = feature_select(profiles, operations=["correlation_threshold"])
    ref = pycytominer.feature_select(profiles, operation=["correlation_threshold"])
    assert list(ours.columns) == list(ref.columns)
    x = profiles[[c for c in profiles if not c.startswith("Metadata_")]].to_numpy()
    corr = np.corrcoef(x.T)
    np.fill_diagonal(corr, 0)
    assert (np.abs(corr) > 1 - 1e-12).any()  # the frame has the exact ties this test is about


def test_in_place_correlation_is_numpys_to_the_bit():
    """The correlation filter centres its own copy in place instead of np.corrcoef's copy: same bits."""
    from cpfeatures.profile.feature_select import _corrcoef

    rng = np.random.default_rng(3)
    x = np.asfortranarray(rng.normal(size=(997, 120)) @ rng.normal(size=(120, 150)))
    x[:, 7] = x[:, 3] * 2.0  # |r| = 1 pairs, where the bits decide pycytominer's ties
    expected = np.corrcoef(x.T)
    np.testing.assert_array_equal(_corrcoef(x.T, owned=False), expected)
    owned = x.copy(order="F")
    np.testing.assert_array_equal(_corrcoef(owned.T, owned=True), expected)
    assert not np.array_equal(owned, x)  # centred in place
