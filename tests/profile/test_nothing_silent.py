"""Nothing silent in the profile chain: a feature value that is not a number, "None" and pd.NA as pycytominer
reads them, feature-selection settings out of range, a plate map matching no well, a samples query failing on one
plate, one flat plate map for several plates and no plate map where ``samples`` needs annotations. pycytominer,
run on the same frames, is the oracle wherever it has an answer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import (aggregate, feature_select, normalize, profile_plates, read_jump_platemaps,
                                write_plate_profiles)

STRATA = ["Metadata_Plate", "Metadata_Well"]


def _cells(seed: int = 0, n_wells: int = 4, per_well: int = 5) -> pd.DataFrame:
    """Single cells of one plate: n_wells x per_well cells, three features."""
    rng = np.random.default_rng(seed)
    n = n_wells * per_well
    wells = np.repeat([f"A{c:02d}" for c in range(1, n_wells + 1)], per_well)
    return pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": wells, "Cells_a": rng.normal(size=n),
                         "Cells_b": rng.normal(size=n), "Nuclei_c": rng.normal(size=n)})


def _wells(rows: str = "ABCDEFGH", columns: int = 12) -> list[str]:
    return [f"{r}{c:02d}" for r in rows for c in range(1, columns + 1)]


def _plate_profiles(plate: str, wells: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Metadata_Plate": plate, "Metadata_Well": wells})
    for i in range(4):
        frame[f"Cells_f{i}"] = rng.normal(size=len(wells))
    return frame


# 1. a value that is not a number --------------------------------------------------------------------------------

def test_a_value_that_is_not_a_number_is_refused_naming_column_value_and_file(tmp_path):
    cells = _cells()
    cells["Cells_b"] = cells["Cells_b"].astype(object)
    cells.loc[7, "Cells_b"] = "#DIV/0!"
    # pycytominer refuses the same frame (it does not drop the column)
    with pytest.raises(ValueError):
        pycytominer.aggregate(cells.copy(), strata=STRATA)
    with pytest.raises(ValueError):
        pycytominer.normalize(cells.copy(), method="mad_robustize")
    with pytest.raises(ValueError):
        pycytominer.feature_select(cells.copy(), operation=["variance_threshold"])
    for verb in (aggregate, normalize, lambda f: feature_select(f, operations=["variance_threshold"])):
        with pytest.raises(InputError, match=r"Cells_b .*'#DIV/0!' \(row 7"):
            verb(cells)
    with pytest.raises(InputError, match="Cells_b .*#DIV/0!"):
        aggregate(cells, features=["Cells_a", "Cells_b"])  # a listed column too (was a bare ValueError)
    path = tmp_path / "cells.csv"
    cells.to_csv(path, index=False)  # read back, the column is text ("0.123", "#DIV/0!")
    for verb in (aggregate, normalize):
        with pytest.raises(InputError) as info:
            verb(path)
        assert str(info.value).startswith(f"{path}: ") and "Cells_b" in str(info.value)
        assert "#DIV/0!" in str(info.value) and "\n" not in str(info.value)


# 2. "None" is a missing value --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["standardize", "robustize", "mad_robustize"])
def test_none_text_is_a_missing_value_as_pycytominer_normalize_reads_it(method):
    profiles = _plate_profiles("P1", _wells("AB"), seed=3)
    profiles["Cells_f1"] = profiles["Cells_f1"].astype(object)
    profiles.loc[[2, 9], "Cells_f1"] = ["None", " NULL "]
    ref = pycytominer.normalize(profiles.copy(), method=method)  # pycytominer changes the frame it is given
    for features in ("infer", ["Cells_f0", "Cells_f1", "Cells_f2", "Cells_f3"]):
        ours = normalize(profiles, method=method, features=features)
        assert list(ours.columns) == list(ref.columns)
        np.testing.assert_allclose(ours[ref.columns[2:]].to_numpy(float), ref[ref.columns[2:]].to_numpy(float),
                                   rtol=1e-9, atol=1e-12, equal_nan=True)
        assert ours["Cells_f1"].isna().sum() == 2


def test_none_text_aggregates_as_pycytominer_aggregates_the_missing_value():
    cells = _cells()
    cells["Cells_b"] = cells["Cells_b"].astype(object)
    cells.loc[[1, 6, 7], "Cells_b"] = ["None", "nan", "NA"]
    with pytest.raises(ValueError):  # pycytominer's aggregate itself cannot read the text
        pycytominer.aggregate(cells.copy(), strata=STRATA)
    missing = cells.copy()
    missing.loc[[1, 6, 7], "Cells_b"] = np.nan  # what pycytominer's normalize reads the text as
    missing = missing.astype({"Cells_b": float}).assign(Metadata_ObjectNumber=np.arange(len(cells)))
    ref = pycytominer.aggregate(missing, strata=STRATA, compute_object_count=True)
    ours = aggregate(cells)
    assert sorted(ours.columns) == sorted(ref.columns)
    pd.testing.assert_frame_equal(ours[ref.columns], ref, check_dtype=False)


# 3. pd.NA -----------------------------------------------------------------------------------------------------------

def test_a_column_of_pd_na_is_missing_in_the_frequency_filter_as_in_pycytominer():
    profiles = _plate_profiles("P1", _wells("AB"), seed=5)
    profiles["Cells_empty"] = pd.Series([pd.NA] * len(profiles), dtype=object)
    profiles["Cells_const"] = 1.0
    ref = pycytominer.feature_select(profiles.copy(), operation="frequency_threshold")
    ours = feature_select(profiles, operations="frequency_threshold")
    assert list(ours.columns) == list(ref.columns)
    assert "Cells_empty" not in ours.columns and "Cells_f0" in ours.columns
    # pycytominer's variance filter fails on pd.NA; on the same column as float NaN it drops it, as ours does
    with pytest.raises(TypeError):
        pycytominer.feature_select(profiles.copy(), operation="variance_threshold")
    as_nan = profiles.assign(Cells_empty=np.nan)
    ref = pycytominer.feature_select(as_nan, operation="variance_threshold")
    assert list(feature_select(profiles, operations="variance_threshold").columns) == list(ref.columns)


# 4. settings out of range ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, value, span", [
    ("min_variance", -0.1, "a number >= 0"), ("min_variance", float("nan"), "a number >= 0"),
    ("outlier_cutoff", -1.0, "a number >= 0"), ("freq_cut", 1.5, "between 0 and 1"),
    ("unique_cut", -0.01, "between 0 and 1"), ("na_cutoff", 2.0, "between 0 and 1"),
    ("corr_threshold", float("nan"), "between 0 and 1"), ("corr_threshold", "0.9", "between 0 and 1")])
def test_feature_select_settings_out_of_range_are_refused_naming_them(setting, value, span):
    profiles = _plate_profiles("P1", _wells("AB"), seed=1)
    with pytest.raises(InputError, match=f"{setting} must be {span}, got"):
        feature_select(profiles, operations="variance_threshold", **{setting: value})


def test_negative_min_variance_is_refused_as_pycytominer_refuses_it():
    profiles = _plate_profiles("P1", _wells("AB"), seed=1)
    with pytest.raises(ValueError, match="non-negative"):
        pycytominer.feature_select(profiles.copy(), operation="variance_threshold", min_variance=-0.1)
    with pytest.raises(InputError, match="min_variance must be a number >= 0, got -0.1"):
        feature_select(profiles, operations="variance_threshold", min_variance=-0.1)


def test_profile_refuses_a_bad_corr_threshold_before_reading_a_plate(tmp_path):
    with pytest.raises(InputError, match="corr_threshold must be between 0 and 1, got 1.5"):
        profile_plates([tmp_path / "not_read.csv"], operation=None, corr_threshold=1.5)


# 5. a plate map matching no well ------------------------------------------------------------------------------------

def test_a_plate_map_matching_no_well_is_refused_naming_plate_and_file(tmp_path):
    source = tmp_path / "profiles.csv"
    _plate_profiles("BR001", _wells(), seed=2).to_csv(source, index=False)  # a 96-well plate
    platemap = tmp_path / "platemap.csv"
    pd.DataFrame({"well_position": _wells("IJ", 24)[:5], "pert": "x"}).to_csv(platemap, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError) as info:
            profile_plates([source], platemaps=platemap, operation=None)
    text = str(info.value)
    assert text.startswith(f"plate BR001: the plate map {platemap} matches none of its 96 well(s)"), text
    assert "A01, A02" in text and "I01" in text and "\n" not in text


def test_normalizing_no_profile_is_an_input_error():
    empty = _plate_profiles("P1", [], seed=0)
    with pytest.raises(InputError, match="no profiles to normalize"):
        normalize(empty)


# 6. a samples query matching no profile of one plate ---------------------------------------------------------------

def test_samples_matching_no_profile_names_the_plate(tmp_path):
    both = pd.concat([_plate_profiles("P1", _wells("AB"), 1), _plate_profiles("P2", _wells("AB"), 2)],
                     ignore_index=True)
    both["Metadata_control_type"] = np.where((both["Metadata_Plate"] == "P1") & (both.index % 4 == 0), "negcon",
                                             "trt")
    query = "Metadata_control_type == 'negcon'"
    with pytest.raises(InputError, match=f"^plate P2: samples query \"{query}\" matches no profile"):
        normalize(both, samples=query)
    source = tmp_path / "both.csv"
    both.to_csv(source, index=False)
    with pytest.raises(InputError, match="plate P2: samples query .* matches no profile"):
        profile_plates([source], operation=None, samples=query)


# 7. plate maps for several plates, and none ----------------------------------------------------------------------

@pytest.fixture
def two_plates(tmp_path):
    """Two plates of well profiles, and a plate map per plate (a different perturbation in each)."""
    wells = _wells("AB")
    sources = []
    for k, plate in enumerate(("P1", "P2")):
        sources.append(tmp_path / f"{plate}.csv")
        _plate_profiles(plate, wells, seed=k).to_csv(sources[-1], index=False)
        pd.DataFrame({"well_position": wells, "pert": [f"{plate}_{i % 3}" for i in range(len(wells))]}).to_csv(
            tmp_path / f"{plate}_map.csv", index=False)
    return tmp_path, sources


def test_one_flat_plate_map_for_several_plates_warns_naming_them(two_plates):
    folder, sources = two_plates
    with pytest.warns(UserWarning, match=r"plates P1, P2 were all annotated with the plate map .*P1_map.csv"):
        profile_plates(sources, platemaps=folder / "P1_map.csv", operation=None, feature_selection=False)
    # a plate absent from the map's Metadata_Plate column is named too, even alone
    listed = pd.read_csv(folder / "P1_map.csv").assign(Metadata_Plate="P1")
    listed.to_csv(folder / "listed.csv", index=False)
    with pytest.warns(UserWarning, match=r"plate\(s\) P2 are not in the Metadata_Plate column .* \(it lists P1\)"):
        profile_plates([sources[1]], platemaps=folder / "listed.csv", operation=None, feature_selection=False)
    with warnings.catch_warnings():  # one plate, one map: nothing to say
        warnings.simplefilter("error", UserWarning)
        profile_plates([sources[0]], platemaps=folder / "P1_map.csv", operation=None, feature_selection=False)


def test_a_dict_of_plate_map_files_annotates_each_plate_with_its_own(two_plates):
    folder, sources = two_plates
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        profiles = profile_plates(sources, platemaps={"P1": folder / "P1_map.csv", "P2": folder / "P2_map.csv"},
                                  operation=None, method="none", feature_selection=False).profiles
    for plate in ("P1", "P2"):
        perts = profiles.loc[profiles["Metadata_Plate"] == plate, "Metadata_pert"]
        assert perts.str.startswith(f"{plate}_").all()
    with pytest.raises(InputError, match="plate P2 has no plate map"):
        profile_plates(sources, platemaps={"P1": folder / "P1_map.csv"}, operation=None)


def test_samples_naming_an_annotation_without_a_plate_map_is_refused_naming_the_column(two_plates):
    _, sources = two_plates
    with pytest.raises(InputError, match=r"plate P1: samples query .* names Metadata_pert, which is not a column .*"
                                         r"no plate map was given"):
        profile_plates(sources, operation=None, samples="Metadata_pert == 'P1_0'")


def test_keep_stages_annotates_with_a_jump_plate_map_folder(two_plates, tmp_path):
    folder, sources = two_plates
    batch = tmp_path / "platemaps" / "batch"
    (batch / "platemap").mkdir(parents=True)
    pd.DataFrame({"Assay_Plate_Barcode": ["P1"], "Plate_Map_Name": ["map1"]}).to_csv(
        batch / "barcode_platemap.csv", index=False)
    pd.read_csv(folder / "P1_map.csv").to_csv(batch / "platemap" / "map1.txt", sep="\t", index=False)
    assert set(read_jump_platemaps(batch)) == {"P1"}
    out = tmp_path / "out" / "profiles.csv"
    write_plate_profiles(sources[0], out, platemaps=batch, operation=None, feature_selection=False,
                         keep_stages=True)
    annotated = pd.read_csv(out.with_name("profiles_annotated.csv"))
    assert annotated["Metadata_pert"].str.startswith("P1_").all() and len(annotated) == 24
