"""profile_plates and `cpfeatures profile STORE STORE ...` (profile/batch.py): two real stores (the bundled plate
and its mirror image under another plate id) give the profiles pycytominer gives for the same single cells with
per-plate aggregate -> annotate -> normalize and one feature selection over the batch; the JUMP plate-map layout;
the kept list reused; Percent Replicating with replicates on different plates."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import consensus, percent_replicating, profile_plates, read_jump_platemaps, spherize
from cpfeatures.store import Store

from ..conftest import BUNDLED_PLATE

CLI = [sys.executable, "-m", "cpfeatures.cli"]
PLATEMAP = BUNDLED_PLATE / "platemap.csv"
OPS = ["frequency_threshold", "correlation_threshold", "drop_na_columns", "blocklist"]
BLOCKLIST = pycytominer.__file__.rsplit("/", 1)[0] + "/data/blocklist_features.txt"


@pytest.fixture(scope="module")
def features(bundled_run) -> list[str]:
    """Every 8th measured feature (~700): with 8 wells, pycytominer's per-pair correlation filter on all ~5,800
    features meets millions of pairs above 0.9 and takes minutes."""
    cells = Store(bundled_run).single_cells()
    return [c for c in cells.columns if not c.startswith("Metadata_")][::8]


@pytest.fixture(scope="module")
def reference(bundled_run, second_run, features) -> pd.DataFrame:
    """pycytominer on the stores' single cells: per plate aggregate, annotate, normalize; then feature_select."""
    platemap = pd.read_csv(PLATEMAP).drop(columns="Metadata_Plate")
    plates = []
    for store in (bundled_run, second_run):
        cells = Store(store).single_cells()
        profiles = pycytominer.aggregate(cells, strata=["Metadata_Plate", "Metadata_Well"], features=features)
        annotated = pycytominer.annotate(profiles, platemap, join_on=["Metadata_Well", "Metadata_Well"])
        plates.append(pycytominer.normalize(annotated, method="mad_robustize"))
    batch = pd.concat(plates, ignore_index=True)
    return pycytominer.feature_select(batch, operation=OPS, blocklist_file=BLOCKLIST)


def _features(frame):
    return [c for c in frame.columns if not c.startswith("Metadata_")]


def test_batch_profiles_equal_pycytominer(bundled_run, second_run, reference, features):
    result = profile_plates([bundled_run, second_run], platemaps=PLATEMAP, select_level="batch", features=features)
    ours = result.profiles
    assert list(result.plates["Metadata_Plate"]) == ["CPJUMP1_EXAMPLE", "CPJUMP1_EXAMPLE_B"]
    assert sorted(result.features) == sorted(_features(reference))
    assert len(result.features) < 0.5 * len(features)
    ref = reference.sort_values(["Metadata_Plate", "Metadata_Well"]).reset_index(drop=True)
    ours = ours.sort_values(["Metadata_Plate", "Metadata_Well"]).reset_index(drop=True)
    np.testing.assert_allclose(ours[result.features].to_numpy(float), ref[result.features].to_numpy(float),
                               rtol=1e-9, atol=1e-9)
    assert (ours["Metadata_pert_iname"] == ref["Metadata_pert_iname"]).all()
    # per plate, the features kept are those every plate's own selection kept
    per_plate = profile_plates([bundled_run, second_run], platemaps=PLATEMAP, select_level="plate",
                               features=features)
    assert set(per_plate.features) != set(result.features)
    reduced = profile_plates([second_run], platemaps=PLATEMAP, features_from=result.features, features=features)
    assert list(reduced.profiles.columns[-len(result.features):]) == result.features


def test_replicates_on_different_plates(bundled_run, second_run):
    profiles = profile_plates([bundled_run, second_run], platemaps=PLATEMAP, method="standardize",
                              feature_selection=False).profiles
    with pytest.warns(Warning):  # 4 perturbations only: the null says little
        result = percent_replicating(profiles, ["Metadata_pert_iname", "Metadata_Well"], n_samples=200)
    table = result.per_group
    assert len(table) == 4 and (table["n_replicates"] == 2).all()  # each well once on each plate
    for _, group in profiles.groupby(["Metadata_pert_iname", "Metadata_Well"]):
        assert sorted(group["Metadata_Plate"]) == ["CPJUMP1_EXAMPLE", "CPJUMP1_EXAMPLE_B"]
    assert 0 <= result.percent_replicating <= 100


@pytest.fixture
def jump_layout(tmp_path) -> tuple:
    """The JUMP plate-map layout (metadata/platemaps/<batch>/, metadata/external_metadata/) for the two plates."""
    batch = tmp_path / "metadata" / "platemaps" / "2026_12_03_Example"
    (batch / "platemap").mkdir(parents=True)
    (tmp_path / "metadata" / "external_metadata").mkdir()
    pd.DataFrame({"Assay_Plate_Barcode": ["CPJUMP1_EXAMPLE", "CPJUMP1_EXAMPLE_B"],
                  "Plate_Map_Name": ["Example_compound_platemap"] * 2}).to_csv(batch / "barcode_platemap.csv",
                                                                               index=False)
    pm = pd.read_csv(PLATEMAP)
    pm.rename(columns={"Metadata_Well": "well_position", "Metadata_broad_sample": "broad_sample"})[
        ["well_position", "broad_sample"]].to_csv(batch / "platemap" / "Example_compound_platemap.txt", sep="\t",
                                                  index=False)
    pm.rename(columns={"Metadata_broad_sample": "broad_sample"})[["broad_sample", "pert_iname", "target"]] \
        .dropna(subset=["broad_sample"]).drop_duplicates() \
        .to_csv(tmp_path / "metadata" / "external_metadata" / "Example_compound_metadata.tsv", sep="\t", index=False)
    return batch


def test_jump_platemap_layout(bundled_run, second_run, jump_layout):
    maps = read_jump_platemaps(jump_layout)
    assert set(maps) == {"CPJUMP1_EXAMPLE", "CPJUMP1_EXAMPLE_B"} and maps["CPJUMP1_EXAMPLE"][1] is not None
    profiles = profile_plates([bundled_run, second_run], platemaps=jump_layout, method="none",
                              feature_selection=False).profiles
    d08 = profiles[profiles["Metadata_Well"] == "D08"]
    assert list(d08["Metadata_pert_iname"]) == ["FK-866", "FK-866"] and list(d08["Metadata_target"]) == ["NAMPT"] * 2
    dmso = profiles[profiles["Metadata_Well"] == "D14"]
    assert dmso["Metadata_broad_sample"].isna().all() and dmso["Metadata_pert_iname"].isna().all()
    (jump_layout / "barcode_platemap.csv").write_text("Assay_Plate_Barcode,Plate_Map_Name\nOTHER,Example_compound_"
                                                      "platemap\n")
    with pytest.raises(InputError, match="plate CPJUMP1_EXAMPLE has no plate map"):
        profile_plates([bundled_run], platemaps=jump_layout)


def test_cli_batch_profiles_and_kept_list(bundled_run, second_run, tmp_path):
    out = tmp_path / "batch.parquet"
    done = subprocess.run(CLI + ["profile", str(bundled_run), str(second_run), "--platemap", str(PLATEMAP),
                                 "--select-level", "batch", "--spherize", "ZCA", "--consensus", "median",
                                 "--consensus-by", "Metadata_pert_iname", "-o", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = profile_plates([bundled_run, second_run], platemaps=PLATEMAP, select_level="batch")
    with pytest.warns(Warning):  # 8 profiles, more features: the whitening is rank-deficient, and says so
        whitened = spherize(expected.profiles, method="ZCA")
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, whitened.reset_index(drop=True), check_dtype=False)
    signatures = pd.read_parquet(tmp_path / "batch_consensus.parquet")
    pd.testing.assert_frame_equal(signatures, consensus(whitened, ["Metadata_pert_iname"], "median"),
                                  check_dtype=False)
    assert sorted(signatures["Metadata_pert_iname"]) == ["DMSO", "FK-866", "TC-S-7004"]
    kept = (tmp_path / "batch_features.txt").read_text().split()
    assert kept == expected.features
    again = tmp_path / "later.parquet"
    done = subprocess.run(CLI + ["profile", str(second_run), "--platemap", str(PLATEMAP), "--features-from",
                                 str(tmp_path / "batch_features.txt"), "-o", str(again)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [c for c in pd.read_parquet(again).columns if not c.startswith("Metadata_")] == kept
