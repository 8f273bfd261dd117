"""write_plate_profiles (profile/write.py): everything `cpfeatures profile` does, as one Python call, and the
command writing the same files: profiles, kept list, spherized profiles, consensus, --keep-stages tables."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cpfeatures.cli import main
from cpfeatures.errors import DegenerateResultWarning, InputError
from cpfeatures.profile import (PlateProfiles, aggregate, annotate, consensus, normalize, profile_plates, spherize,
                                write_plate_profiles)


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """Single cells of one plate, 16 wells x 20 cells x 30 features, and its plate map (8 perturbations x 2)."""
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("cells")
    wells = [f"{r}{c:02d}" for r in "AB" for c in range(1, 9)]
    effect = rng.normal(size=(8, 30))
    rows = []
    for k, well in enumerate(wells):
        x = effect[k % 8] + rng.normal(scale=0.5, size=(20, 30))
        frame = pd.DataFrame(x, columns=[f"Cells_Intensity_f{i}" for i in range(30)])
        frame.insert(0, "Metadata_Well", well)
        frame.insert(0, "Metadata_Plate", "P1")
        rows.append(frame)
    pd.concat(rows, ignore_index=True).to_csv(folder / "cells.csv", index=False)
    pd.DataFrame({"Metadata_Well": wells, "Metadata_pert": [f"p{k % 8}" for k in range(16)]}).to_csv(
        folder / "platemap.csv", index=False)
    return folder


def test_one_call_writes_what_the_steps_make(cells, tmp_path):
    source, platemap = cells / "cells.csv", cells / "platemap.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        result = write_plate_profiles(source, tmp_path / "out" / "profiles.csv", platemaps=platemap,
                                      spherize="ZCA-cor", consensus="median", consensus_by="Metadata_pert",
                                      keep_stages=True, feature_selection=False)
        steps = profile_plates([source], platemaps=platemap, feature_selection=False)
        whitened = spherize(steps.profiles, method="ZCA-cor")
        signatures = consensus(whitened, replicate_columns="Metadata_pert", operation="median")
        aggregated = aggregate(source)
        annotated = annotate(aggregated, platemap)
        normalized = normalize(annotated)
    assert isinstance(result, PlateProfiles)
    out = tmp_path / "out"
    assert result.files == [str(out / "profiles.csv"), str(out / "profiles_features.txt"),
                            str(out / "profiles_consensus.csv")]
    pd.testing.assert_frame_equal(result.profiles, whitened)
    pd.testing.assert_frame_equal(result.consensus, signatures)
    assert (out / "profiles_features.txt").read_text().split() == result.features == steps.features
    written = pd.read_csv(out / "profiles.csv")
    np.testing.assert_allclose(written[result.features].to_numpy(), whitened[result.features].to_numpy())
    for name, expected in (("aggregated", aggregated), ("annotated", annotated), ("normalized", normalized)):
        stage = pd.read_csv(out / f"profiles_{name}.csv")
        assert list(stage.columns) == list(expected.columns), name
        np.testing.assert_allclose(stage.filter(like="Cells_").to_numpy(), expected.filter(like="Cells_").to_numpy())


def test_kept_list_file_and_no_stages_for_several_sources(cells, tmp_path):
    source, platemap = cells / "cells.csv", cells / "platemap.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        first = write_plate_profiles([source], tmp_path / "a.parquet", platemaps=platemap)
        again = write_plate_profiles([source], tmp_path / "b.parquet", platemaps=platemap,
                                     features_from=tmp_path / "a_features.txt", keep_stages=True, method="none")
    assert again.features == first.features and again.consensus is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "a_features.txt", "b.parquet",
                                                          "b_aggregated.parquet", "b_annotated.parquet",
                                                          "b_features.txt"]


def test_refused_before_any_cell_is_read(cells, tmp_path):
    with pytest.raises(InputError, match="suffixes"):
        write_plate_profiles(cells / "cells.csv", tmp_path / "profiles.xlsx")
    with pytest.raises(InputError, match="nothere.csv"):
        write_plate_profiles(tmp_path / "no_cells_here.csv", tmp_path / "p.csv", platemaps=tmp_path / "nothere.csv",
                             keep_stages=True)
    with pytest.raises(InputError, match="kept.txt"):
        write_plate_profiles(cells / "cells.csv", tmp_path / "p.csv", features_from=tmp_path / "kept.txt")
    assert list(tmp_path.iterdir()) == []


def test_the_command_writes_the_same_files(cells, tmp_path):
    source, platemap = cells / "cells.csv", cells / "platemap.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        result = write_plate_profiles(source, tmp_path / "py" / "profiles.csv", platemaps=platemap,
                                      consensus="modz", consensus_by="Metadata_pert", keep_stages=True)
    done = CliRunner().invoke(main, ["profile", str(source), "-o", str(tmp_path / "cli" / "profiles.csv"),
                                     "--platemap", str(platemap), "--consensus", "modz", "--consensus-by",
                                     "Metadata_pert", "--keep-stages", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["files"] == [f.replace("/py/", "/cli/") for f in result.files]
    assert summary["profiles"] == len(result.profiles) and summary["features"] == len(result.features)
    for name in ("profiles", "profiles_consensus", "profiles_aggregated", "profiles_annotated",
                 "profiles_normalized"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "py" / f"{name}.csv"))
    done = CliRunner().invoke(main, ["profile", str(tmp_path / "missing.zarr"), "-o", str(tmp_path / "p.csv")])
    assert done.exit_code == 2 and done.stderr.count("\n") == 1 and "missing.zarr" in done.stderr


def test_keep_stages_with_several_sources_is_refused_not_ignored(cells, tmp_path):
    """An option that would do nothing is refused: the stages are one plate's tables."""
    with pytest.raises(InputError, match="keep_stages writes the stages of one plate; 2 sources were given"):
        write_plate_profiles([cells / "cells.csv", cells / "cells.csv"], tmp_path / "p.csv", keep_stages=True)
    done = CliRunner().invoke(main, ["profile", str(cells / "cells.csv"), str(cells / "cells.csv"), "-o",
                                     str(tmp_path / "p.csv"), "--keep-stages"])
    assert done.exit_code == 2 and "2 sources were given" in done.output
    assert list(tmp_path.iterdir()) == []
