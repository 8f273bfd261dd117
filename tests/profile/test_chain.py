"""The whole profiling chain on the bundled example plate's run: store -> profiles -> scores (Python and CLI)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pycytominer

from cpfeatures.profile import aggregate, annotate, feature_select, normalize
from cpfeatures.store import Store

from ..conftest import BUNDLED_PLATE

CLI = [sys.executable, "-m", "cpfeatures.cli"]
NEGCON = "Metadata_control_type == 'negcon'"


def test_store_to_profiles_equals_pycytominer(bundled_run):
    cells = Store(bundled_run).single_cells()
    ours = aggregate(bundled_run)  # streamed well by well from the store
    # the object ids are metadata, as in the exported tables (CytoTable's names), not features
    ids = [c for c in cells.columns if re.search(r"^(Cells|Nuclei|Cytoplasm)_(Parent_[A-Za-z]+|Number_Object_Number|"
                                                 r"Children_[A-Za-z]+_Count)$", c)]
    assert len(ids) == 9 and not set(ids) & set(ours.columns)
    ref = pycytominer.aggregate(cells.rename(columns={c: f"Metadata_{c}" for c in ids}), compute_object_count=True)
    assert len(ours) == 4 and ours["Metadata_Object_Count"].sum() == len(cells)
    feats = [c for c in ref.columns if not c.startswith("Metadata_")]
    assert sorted(feats) == sorted(c for c in ours.columns if not c.startswith("Metadata_"))
    assert all(c.split("_")[0] in ("Cells", "Nuclei", "Cytoplasm") for c in feats)
    np.testing.assert_allclose(ours[feats].to_numpy(float), ref.sort_values("Metadata_Well")[feats].to_numpy(float),
                               rtol=1e-9, atol=1e-12, equal_nan=True)

    annotated = annotate(ours, BUNDLED_PLATE / "platemap.csv")
    assert annotated.loc[annotated["Metadata_Well"] == "D14", "Metadata_control_type"].item() == "negcon"
    assert annotated.loc[annotated["Metadata_Well"] == "D08", "Metadata_pert_iname"].item() == "FK-866"
    normalized = normalize(annotated, method="standardize")
    np.testing.assert_allclose(normalized[feats].to_numpy(),
                               pycytominer.normalize(annotated, method="standardize")[feats].to_numpy(),
                               rtol=1e-9, atol=1e-9, equal_nan=True)
    selected = feature_select(normalized, operations=["drop_na_columns", "blocklist"])
    ref_sel = pycytominer.feature_select(normalized, operation=["drop_na_columns", "blocklist"])
    assert sorted(selected.columns) == sorted(ref_sel.columns)


def test_cli_profile_and_score(bundled_run, tmp_path):
    out = tmp_path / "profiles.parquet"
    result = subprocess.run(CLI + ["profile", str(bundled_run), "--platemap", str(BUNDLED_PLATE / "platemap.csv"),
                                   "--normalize", "standardize", "--no-feature-select", "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    profiles = pd.read_parquet(out)
    assert len(profiles) == 4 and "Metadata_pert_iname" in profiles and "4 profiles" in result.stdout
    result = subprocess.run(CLI + ["score", str(out), "--replicates-by", "Metadata_pert_iname", "--reference", NEGCON,
                                   "--null-size", "200", "-o", str(tmp_path / "scores")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "Percent Replicating" in result.stdout and "mAP" in result.stdout
    maps = pd.read_csv(tmp_path / "scores" / "map.csv")
    assert maps["Metadata_pert_iname"].tolist() == ["FK-866"]  # the only compound with two wells


def test_cli_score_errors(tmp_path):
    result = subprocess.run(CLI + ["score", str(tmp_path / "missing.csv"), "--replicates-by", "Metadata_x"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "missing.csv" in result.stderr and "Traceback" not in result.stderr
