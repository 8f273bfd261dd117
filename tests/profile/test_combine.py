"""combine_tables, join_plate_metadata (profile/combine.py) and score_tables (profile/score_tables.py):
what `cpfeatures score` does before and around the scores, as Python calls, and the command the same."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cpfeatures.cli import main
from cpfeatures.errors import DegenerateResultWarning, InputError
from cpfeatures.profile import Scores, combine_tables, join_plate_metadata, score_tables


def _profiles(n_perts=6, replicates=3, features=12, seed=0, plates=("P1",)):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_perts, features))
    x = np.repeat(base, replicates, axis=0) + rng.normal(scale=0.3, size=(n_perts * replicates, features))
    frame = pd.DataFrame(x, columns=[f"Cells_f{i}" for i in range(features)])
    frame.insert(0, "Metadata_pert", np.repeat([f"p{i}" for i in range(n_perts)], replicates))
    frame.insert(0, "Metadata_Plate", [plates[i % len(plates)] for i in range(len(frame))])
    return frame


def test_combine_renames_tags_and_keeps_shared_columns(tmp_path):
    a = pd.DataFrame({"Metadata_target_list": ["A|B"], "Metadata_gene": ["-"], "Metadata_only_a": [1],
                      "Cells_x": [1.0]})
    b = pd.DataFrame({"Metadata_gene": ["A"], "Metadata_modality": ["old"], "Cells_x": [2.0]})
    b.to_csv(tmp_path / "b.csv", index=False)
    got = combine_tables([a, tmp_path / "b.csv"], rename=[("Metadata_target_list", "Metadata_gene")],
                         tag={"Metadata_modality": ["compound", "orf"]})
    assert list(got.columns) == ["Metadata_modality", "Metadata_gene", "Cells_x"]
    assert got["Metadata_gene"].tolist() == ["A|B", "A"] and got["Metadata_modality"].tolist() == ["compound", "orf"]
    assert list(a.columns) == ["Metadata_target_list", "Metadata_gene", "Metadata_only_a", "Cells_x"]  # untouched
    one = combine_tables(a, rename={"Metadata_target_list": "Metadata_gene"})
    assert list(one.columns) == ["Metadata_gene", "Metadata_only_a", "Cells_x"]
    assert one["Metadata_gene"].tolist() == ["A|B"]
    pd.testing.assert_frame_equal(combine_tables(a), a)


def test_combine_refuses_bad_input(tmp_path):
    a = pd.DataFrame({"Cells_x": [1.0]})
    with pytest.raises(InputError, match="one per table"):
        combine_tables([a, a], tag={"Metadata_modality": ["compound"]})
    with pytest.raises(InputError, match="missing.csv"):
        combine_tables([a, tmp_path / "missing.csv"])
    with pytest.raises(InputError, match="pairs"):
        combine_tables(a, rename=["Metadata_a=Metadata_b"])
    with pytest.raises(InputError, match="no profile tables"):
        combine_tables([])


def test_join_plate_metadata_orders_and_chooses_plates(tmp_path):
    frame = _profiles(plates=("PA", "PB", "PC"))
    table = pd.DataFrame({"Assay_Plate_Barcode": ["PB", "PA"], "Cell_type": ["U2OS", "A549"]})
    table.to_csv(tmp_path / "plates.tsv", sep="\t", index=False)
    with pytest.warns(UserWarning, match=r"1 plate\(s\) not in .*plates.tsv are left out: PC"):
        got = join_plate_metadata(frame, tmp_path / "plates.tsv")
    assert list(pd.unique(got["Metadata_Plate"])) == ["PB", "PA"]
    assert got.columns[:3].tolist() == ["Metadata_Plate", "Metadata_pert", "Metadata_Cell_type"]
    pb = frame[frame["Metadata_Plate"] == "PB"].reset_index(drop=True)
    np.testing.assert_array_equal(got.loc[got["Metadata_Plate"] == "PB", "Cells_f0"], pb["Cells_f0"])
    assert set(got.loc[got["Metadata_Plate"] == "PA", "Metadata_Cell_type"]) == {"A549"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = join_plate_metadata(frame[frame["Metadata_Plate"] != "PC"], table)  # a DataFrame too
    pd.testing.assert_frame_equal(same, got)


def test_join_plate_metadata_refuses_bad_tables(tmp_path):
    frame = _profiles(plates=("PA",))
    pd.DataFrame({"Barcode": ["PA"]}).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="bad.tsv.*Assay_Plate_Barcode"):
        join_plate_metadata(frame, tmp_path / "bad.tsv")
    with pytest.raises(InputError, match="several rows"):
        join_plate_metadata(frame, pd.DataFrame({"Assay_Plate_Barcode": ["PA", "PA"]}))
    with pytest.warns(UserWarning, match="left out"), pytest.raises(InputError, match="no profile is of a plate"):
        join_plate_metadata(frame, pd.DataFrame({"Assay_Plate_Barcode": ["PZ"]}))


def test_score_tables_writes_what_the_command_writes(tmp_path):
    a = _profiles(seed=1, plates=("PA",)).assign(Metadata_target_list=lambda f: f["Metadata_pert"])
    b = _profiles(seed=2, plates=("PB",)).assign(Metadata_target=lambda f: f["Metadata_pert"],
                                                  Metadata_pert=lambda f: "orf-" + f["Metadata_pert"])
    b.loc[0, "Cells_f3"] = np.nan
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    options = dict(rename={"Metadata_target_list": "Metadata_target"}, tag={"Metadata_modality": ["compound", "orf"]},
                   match_by="Metadata_target", across="Metadata_modality", n_samples=50, null_size=50)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DegenerateResultWarning)
        scores = score_tables([tmp_path / "a.csv", tmp_path / "b.csv"], "Metadata_pert", output=tmp_path / "py",
                              **options)
    assert ["1 feature(s) with missing values are left out of the scores"] == [str(w.message) for w in said]
    assert isinstance(scores, Scores)
    assert [r[1] for r in scores.rows] == ["Percent Replicating", "Percent Matching", "mAP (mean)", "mAP matching"]
    assert "n/a" not in [r[2] for r in scores.rows], scores.rows
    # the warning is kept beside the tables (the report shows it), then the tables
    assert scores.files == [str(tmp_path / "py" / "warnings.txt")] + [
        str(tmp_path / "py" / f"{n}.csv") for n in ("percent_replicating", "percent_matching", "map", "map_matching")]
    assert (tmp_path / "py" / "warnings.txt").read_text() == "1 feature(s) with missing values are left out of the scores\n"
    assert "Cells_f3" not in scores.tables["map"].columns
    done = CliRunner().invoke(main, ["score", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--replicates-by",
                                     "Metadata_pert", "--rename", "Metadata_target_list=Metadata_target", "--tag",
                                     "Metadata_modality=compound,orf", "--match-by", "Metadata_target", "--across",
                                     "Metadata_modality", "--n-samples", "50", "--null-size", "50", "-o",
                                     str(tmp_path / "cli"), "--json"])
    assert done.exit_code == 0, done.output
    assert "warning: 1 feature(s) with missing values are left out of the scores" in done.stderr
    for name in ("percent_replicating", "percent_matching", "map", "map_matching"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "py" / f"{name}.csv"))


def test_score_tables_per_group_writes_a_summary(tmp_path):
    frame = pd.concat([_profiles(seed=3, plates=("PA",)), _profiles(seed=4, plates=("PB",))], ignore_index=True)
    plates = pd.DataFrame({"Assay_Plate_Barcode": ["PB", "PA"], "Cell_type": ["U2OS", "A549"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        scores = score_tables(frame, ["Metadata_pert"], plate_metadata=plates, per=["Metadata_Cell_type"],
                              n_samples=50, null_size=50, output=tmp_path / "s")
        unsaved = score_tables(frame, ["Metadata_pert"], plate_metadata=plates, per=["Metadata_Cell_type"],
                               n_samples=50, null_size=50)
    assert [r[0] for r in scores.rows] == ["U2OS", "U2OS", "A549", "A549"]
    assert scores.files[-1] == str(tmp_path / "s" / "summary.csv") and unsaved.files == []
    summary = pd.read_csv(tmp_path / "s" / "summary.csv")
    assert summary.columns.tolist() == ["group", "score", "value", "detail"] and len(summary) == 4
    assert scores.rows == unsaved.rows
    assert scores.tables["percent_replicating"].columns[0] == "Metadata_Cell_type"


def test_score_command_bad_input_is_one_line(tmp_path):
    done = CliRunner().invoke(main, ["score", str(tmp_path / "missing.csv"), "--replicates-by", "X"])
    assert done.exit_code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing.csv" in lines[0]
    assert "Traceback" not in done.output
