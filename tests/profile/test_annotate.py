"""annotate against pycytominer with real plate maps (NF1: unpadded wells; CPJUMP1: compound metadata)."""

from __future__ import annotations

import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import aggregate, annotate, canonical_well

from ..conftest import SHARED

CPJUMP1_META = SHARED / "data" / "cpjump1_metadata" / "metadata"


def test_nf1_equals_pycytominer(nf1_cells, nf1_platemap):
    profiles = aggregate(nf1_cells)
    ours = annotate(profiles, nf1_platemap)
    ref = pycytominer.annotate(profiles, str(nf1_platemap), join_on=["Metadata_well_position", "Metadata_Well"])
    assert sorted(ours.columns) == sorted(ref.columns)
    ref = ref.sort_values("Metadata_Well").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[ref.columns].sort_values("Metadata_Well").reset_index(drop=True), ref,
                                  check_dtype=False)
    assert set(ours["Metadata_genotype"]) == {"WT", "Null"}


def test_cpjump1_platemap_and_compound_metadata():
    platemap = CPJUMP1_META / "platemaps" / "2020_11_04_CPJUMP1" / "platemap" / "JUMP-Target-1_compound_platemap.txt"
    external = CPJUMP1_META / "external_metadata" / "JUMP-Target-1_compound_metadata.tsv"
    if not platemap.exists():
        pytest.skip("CPJUMP1 metadata not found")
    pm = pd.read_csv(platemap, sep="\t")
    wells = ["A01", "D08", "P24"]
    profiles = pd.DataFrame({"Metadata_Plate": "BR00117012", "Metadata_Well": wells, "Cells_x": [1.0, 2.0, 3.0]})
    ours = annotate(profiles, platemap, external_metadata=external, external_join_on="broad_sample")
    ref = pycytominer.annotate(profiles, pm, join_on=["Metadata_well_position", "Metadata_Well"],
                               external_metadata=str(external), external_join_on=["Metadata_broad_sample"])
    assert len(ours) == 3
    for col in ("Metadata_broad_sample", "Metadata_pert_iname", "Metadata_gene"):
        assert ours[col].fillna("").tolist() == ref.sort_values("Metadata_Well")[col].fillna("").tolist(), col
    assert ours.loc[ours["Metadata_Well"] == "D08", "Metadata_pert_iname"].item() == "FK-866"  # as the data README


def test_well_spellings_and_errors():
    assert [canonical_well(w) for w in ("A1", "a01", "A001", "P24", "x")] == ["A01", "A01", "A01", "P24", None]
    profiles = pd.DataFrame({"Metadata_Well": ["A01", "B02"], "Cells_x": [1.0, 2.0]})
    with pytest.warns(UserWarning, match="B02"):
        out = annotate(profiles, pd.DataFrame({"well_position": ["A1"], "pert": ["x"]}))
    assert out["Metadata_pert"].tolist() == ["x"] and "Metadata_well_position" not in out
    with pytest.raises(InputError, match="no well column"):
        annotate(profiles, pd.DataFrame({"pert": ["x"]}))
    with pytest.raises(InputError, match="more than once"):
        annotate(profiles, pd.DataFrame({"well_position": ["A1", "A01"], "pert": ["x", "y"]}))
