"""null="cpjump1" (profile/_cpjump1.py): the CPJUMP1 notebooks' definitions, checked step by step on the real
LINCS plate: the draws are Python's random.choices from random.Random(9000) (rejected unless the rows are of
distinct perturbations), the values np.nanmedian of np.corrcoef, the threshold np.nanpercentile(null, 95), the
percentage over every perturbation (single profiles count, as not replicating), and one generator continued
across calls as the notebooks continue theirs."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pandas as pd
import pytest

from cpfeatures.errors import DegenerateResultWarning
from cpfeatures.profile import percent_matching, percent_replicating


@pytest.fixture(scope="module")
def treated(lincs) -> pd.DataFrame:
    """The notebooks' frame: controls left out, the perturbation key present."""
    frame = lincs[lincs["Metadata_broad_sample"] != "DMSO"].reset_index(drop=True)
    # one perturbation with a single profile, as a plate with one replicate left has
    return pd.concat([frame, frame.iloc[[0]].assign(Metadata_broad_sample="BRD-SINGLE")], ignore_index=True)


def _features(frame):
    return frame[[c for c in frame.columns if not c.startswith("Metadata")]].to_numpy(float)


def _paper_median(x):
    corr = np.corrcoef(x)
    np.fill_diagonal(corr, np.nan)
    return np.nanmedian(corr)


def test_replicating_null_is_the_papers_draws(treated):
    with pytest.warns(DegenerateResultWarning, match="1 of 59 perturbation"):
        result = percent_replicating(treated, "Metadata_broad_sample", n_samples=300, null="cpjump1")
    rng, labels, x = random.Random(9000), treated["Metadata_broad_sample"].to_numpy(), _features(treated)
    expected = []
    while len(expected) < 5:  # the first accepted draws, redrawn here from the definition
        rows = rng.choices(range(len(treated)), k=4)
        if len(set(labels[rows])) == 4:
            expected.append(rows)
    np.testing.assert_array_equal(result.null_members[4][:5], expected)
    assert result.null[4][0] == _paper_median(x[expected[0]])
    assert result.null_p95 == np.nanpercentile(result.null[4], 95)
    table = result.per_group.set_index("Metadata_broad_sample")
    assert np.isnan(table.loc["BRD-SINGLE", "median_correlation"]) and not table.loc["BRD-SINGLE", "above_null"]
    group = treated.index[treated["Metadata_broad_sample"] == table.index[0]]
    assert table["median_correlation"].iloc[0] == _paper_median(x[group])
    # the percentage counts every perturbation, the single one included
    assert result.percent_replicating == 100 * table["above_null"].sum() / len(table)


def test_one_generator_continues_across_calls(treated):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        shared = random.Random(9000)
        first = percent_replicating(treated, "Metadata_broad_sample", n_samples=50, null="cpjump1", rng=shared)
        state = shared.getstate()
        second = percent_replicating(treated, "Metadata_broad_sample", n_samples=50, null="cpjump1", rng=shared)
        fresh = percent_replicating(treated, "Metadata_broad_sample", n_samples=50, null="cpjump1")
        resumed = random.Random()
        resumed.setstate(state)
        again = percent_replicating(treated, "Metadata_broad_sample", n_samples=50, null="cpjump1", rng=resumed)
    np.testing.assert_array_equal(first.null[4], fresh.null[4])  # seed 9000 by default
    assert not np.array_equal(first.null[4], second.null[4])
    np.testing.assert_array_equal(second.null[4], again.null[4])


@pytest.fixture(scope="module")
def two_modalities(treated) -> pd.DataFrame:
    """Real profiles in two "modalities" (low and high doses) sharing annotations (the MOA)."""
    frame = treated[treated["Metadata_moa"].notna()].copy()
    high = frame["Metadata_mmoles_per_liter"] >= frame.groupby("Metadata_broad_sample")[
        "Metadata_mmoles_per_liter"].transform("median")
    frame["Metadata_modality"] = np.where(high, "high", "low")
    frame["Metadata_pert"] = frame["Metadata_broad_sample"] + "_" + frame["Metadata_modality"]
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("tail", ["right", "left", "both"])
def test_matching_is_the_papers_arithmetic(two_modalities, tail):
    result = percent_matching(two_modalities, "Metadata_pert", "Metadata_moa", across="Metadata_modality",
                              n_samples=200, null="cpjump1", tail=tail, modalities=("low", "high"))
    # MOA lists ("a|b") are exploded, one row per MOA, as the notebooks explode Metadata_target_list
    exploded = two_modalities.assign(Metadata_moa=two_modalities["Metadata_moa"].str.split("|")).explode(
        "Metadata_moa")
    assert len(exploded) > len(two_modalities)
    one = exploded[exploded["Metadata_modality"] == "low"]
    two = exploded[exploded["Metadata_modality"] == "high"]
    shared = list(np.intersect1d(list(one["Metadata_moa"]), list(two["Metadata_moa"])))
    rng = random.Random(9000)
    assert [tuple(p) for p in result.null_pairs[:3]] == [tuple(rng.choices(shared, k=2)) for _ in range(3)]
    # the first pair of the table, from the definition
    row = result.per_pair.iloc[0]
    x1 = _features(one[(one["Metadata_pert"] == row["Metadata_pert_1"]) & (one["Metadata_moa"] == shared[0])])
    x2 = _features(two[(two["Metadata_pert"] == row["Metadata_pert_2"]) & (two["Metadata_moa"] == shared[0])])
    corr = np.corrcoef(x1, x2)[:len(x1), len(x1):]
    assert row["median_correlation"] == np.nanmedian(corr) and row["shared"] == shared[0]
    assert len(result.null) >= 200
    values = result.per_pair["median_correlation"].to_numpy()
    high, low = np.nanpercentile(result.null, 95), np.nanpercentile(result.null, 5)
    expected = {"right": np.mean(values > high), "left": np.mean(values < low),
                "both": np.mean(values > high) + np.mean(values < low)}[tail] * 100
    assert result.percent_matching == pytest.approx(expected, abs=1e-12)
    assert (result.null_p5 is None) == (tail == "right")
    # a compound of several MOAs is matched under each of them
    listed = two_modalities.loc[two_modalities["Metadata_moa"].str.contains("|", regex=False), "Metadata_pert"]
    pairs = result.per_pair[result.per_pair["Metadata_pert_1"].isin(listed)]
    assert pairs.groupby("Metadata_pert_1")["shared"].nunique().max() > 1
    # sep=None: the lists are single values, as the paper's Metadata_target column is
    whole = percent_matching(two_modalities, "Metadata_pert", "Metadata_moa", across="Metadata_modality", sep=None,
                             n_samples=200, null="cpjump1", tail=tail, modalities=("low", "high"))
    assert set(whole.per_pair["shared"]) <= set(two_modalities["Metadata_moa"])


def test_cli_gives_the_python_result(two_modalities, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "profiles.csv"
    two_modalities.to_csv(path, index=False)
    done = subprocess.run([sys.executable, "-m", "cpfeatures.cli", "score", str(path), "--replicates-by",
                           "Metadata_pert", "--match-by", "Metadata_moa", "--across", "Metadata_modality",
                           "--modalities", "low,high", "--tail", "both", "--null", "cpjump1", "--n-samples", "300",
                           "--null-size", "100", "-o", str(tmp_path / "scores")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(path)  # what the CLI read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        replicating = percent_replicating(frame, "Metadata_pert", n_samples=300, null="cpjump1")
        matching = percent_matching(frame, "Metadata_pert", "Metadata_moa", across="Metadata_modality",
                                    n_samples=300, null="cpjump1", tail="both", modalities=("low", "high"))
    cli = pd.read_csv(tmp_path / "scores" / "percent_replicating.csv")
    np.testing.assert_array_equal(cli["median_correlation"], replicating.per_group["median_correlation"])
    cli = pd.read_csv(tmp_path / "scores" / "percent_matching.csv")
    np.testing.assert_array_equal(cli["median_correlation"], matching.per_pair["median_correlation"])
    assert f"{replicating.percent_replicating:.1f}%" in done.stdout
    assert f"{matching.percent_matching:.1f}%" in done.stdout
    # matching mAP over MOA lists is copairs' multilabel mAP (tested against copairs in test_average_precision)
    from cpfeatures.profile import mean_average_precision

    expected = mean_average_precision(frame, "Metadata_moa", diffby=["Metadata_moa", "Metadata_modality"],
                                      pos_diffby=["Metadata_modality"], null_size=100, seed=0,
                                      multilabel="Metadata_moa")
    cli = pd.read_csv(tmp_path / "scores" / "map_matching.csv")
    assert not cli["Metadata_moa"].str.contains("|", regex=False).any()
    for col in ("mean_average_precision", "p_value"):
        np.testing.assert_allclose(cli[col], expected[col], rtol=1e-12, err_msg=col)


def test_cli_renames_target_lists_to_match_genes(lincs, tmp_path):
    """Compounds annotated with target lists, "genes" with one gene each (two real halves of the LINCS plate):
    --rename Metadata_target_list=Metadata_gene matches them as the notebooks' rename does, and the
    matching mAP is copairs' multilabel mAP over the lists."""
    from click.testing import CliRunner

    from cpfeatures.cli import main
    from cpfeatures.profile import mean_average_precision

    frame = lincs[lincs["Metadata_target"].notna() & (lincs["Metadata_broad_sample"] != "DMSO")].copy()
    compounds = frame.iloc[::2].assign(Metadata_target_list=lambda f: f["Metadata_target"],
                                       Metadata_gene="not-a-target")
    genes = frame.iloc[1::2].assign(Metadata_broad_sample=lambda f: "orf-" + f["Metadata_broad_sample"],
                                    Metadata_gene=lambda f: f["Metadata_target"].str.split("|").str[0])
    compounds.to_csv(tmp_path / "compound.csv", index=False)
    genes.to_csv(tmp_path / "orf.csv", index=False)
    args = [str(tmp_path / "compound.csv"), str(tmp_path / "orf.csv"), "--replicates-by", "Metadata_broad_sample",
            "--match-by", "Metadata_gene", "--across", "Metadata_modality", "--n-samples", "200",
            "--null-size", "100", "--tag", "Metadata_modality=compound,orf", "-o", str(tmp_path / "scores")]
    done = CliRunner().invoke(main, ["score", *args, "--rename", "Metadata_target_list=Metadata_gene"])
    assert done.exit_code == 0, done.output
    both = pd.concat([pd.read_csv(tmp_path / "compound.csv").drop(columns="Metadata_gene").rename(
        columns={"Metadata_target_list": "Metadata_gene"}).assign(Metadata_modality="compound"),
        pd.read_csv(tmp_path / "orf.csv").assign(Metadata_modality="orf")], ignore_index=True, join="inner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        matching = percent_matching(both, "Metadata_broad_sample", "Metadata_gene", across="Metadata_modality",
                                    n_samples=200)
    cli = pd.read_csv(tmp_path / "scores" / "percent_matching.csv")
    assert len(cli) == len(matching.per_pair) > 0
    np.testing.assert_array_equal(cli["median_correlation"], matching.per_pair["median_correlation"])
    expected = mean_average_precision(both, "Metadata_gene", diffby=["Metadata_gene", "Metadata_modality"],
                                      pos_diffby=["Metadata_modality"], null_size=100, seed=0,
                                      multilabel="Metadata_gene")
    cli = pd.read_csv(tmp_path / "scores" / "map_matching.csv")
    np.testing.assert_allclose(cli["mean_average_precision"], expected["mean_average_precision"], rtol=1e-12)
    # without the rename the compounds' placeholder gene matches nothing
    done = CliRunner().invoke(main, ["score", *args])
    assert "Percent Matching" in done.output and "n/a" in done.output
    done = CliRunner().invoke(main, ["score", *args, "--rename", "Metadata_target_list"])
    assert done.exit_code == 2 and "expected OLD=NEW" in done.output
    done = CliRunner().invoke(main, ["score", *args, "--tag", "Metadata_cell=A549"])
    assert done.exit_code == 2 and "one value per table (2)" in done.output


def test_cli_per_group_continues_the_papers_stream(lincs, tmp_path):
    """--per over JUMP-style plate metadata: groups in the notebooks' nested order of the plate table, each
    group's plates concatenated in the table's order, one random.Random(9000) continued across the groups."""
    from click.testing import CliRunner

    from cpfeatures.cli import main

    frame = lincs[lincs["Metadata_broad_sample"] != "DMSO"].reset_index(drop=True)
    column = frame["Metadata_Well"].str[1:].astype(int)
    plates = np.select([column <= 8, column <= 16], ["PA", "PB"], "PC")  # three "plates" of real wells
    frame = frame.assign(Metadata_Plate=plates)
    frame.to_csv(tmp_path / "profiles.csv", index=False)
    # the plate table lists U2OS's plate first: it is the first group; PC and PA (A549) are one group, PC first
    pd.DataFrame({"Assay_Plate_Barcode": ["PB", "PC", "PA"], "Perturbation": "compound",
                  "Cell_type": ["U2OS", "A549", "A549"]}).to_csv(tmp_path / "experiment.tsv", sep="\t", index=False)
    done = CliRunner().invoke(main, ["score", str(tmp_path / "profiles.csv"), "--replicates-by",
                                     "Metadata_broad_sample", "--per", "Metadata_Perturbation,Metadata_Cell_type",
                                     "--plate-metadata", str(tmp_path / "experiment.tsv"), "--null", "cpjump1",
                                     "--n-samples", "200", "--null-size", "100", "-o", str(tmp_path / "scores")])
    assert done.exit_code == 0, done.output
    shared, expected = random.Random(9000), []
    for plate_order in (["PB"], ["PC", "PA"]):
        group = pd.concat([frame[frame["Metadata_Plate"] == p] for p in plate_order], ignore_index=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateResultWarning)
            expected.append(percent_replicating(group, "Metadata_broad_sample", n_samples=200, null="cpjump1",
                                                rng=shared))
    cli = pd.read_csv(tmp_path / "scores" / "percent_replicating.csv")
    assert list(pd.unique(cli["Metadata_Cell_type"])) == ["U2OS", "A549"]
    for cell, result in zip(["U2OS", "A549"], expected):
        got = cli[cli["Metadata_Cell_type"] == cell]
        np.testing.assert_array_equal(got["median_correlation"], result.per_group["median_correlation"])
        np.testing.assert_array_equal(got["above_null"], result.per_group["above_null"])
    summary = pd.read_csv(tmp_path / "scores" / "summary.csv")
    values = summary.loc[summary["score"] == "Percent Replicating", "value"].tolist()
    assert values == [f"{r.percent_replicating:.1f}%" for r in expected]
    details = summary.loc[summary["score"] == "Percent Replicating", "detail"].tolist()
    assert all(f"null p95 = {r.null_p95:.3f}" in d for d, r in zip(details, expected))
    # the second group drew from the continued stream, not from a fresh seed 9000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        fresh = percent_replicating(group, "Metadata_broad_sample", n_samples=200, null="cpjump1")
    assert f"null p95 = {fresh.null_p95:.3f}" not in details[1]
    maps = pd.read_csv(tmp_path / "scores" / "map.csv")
    assert set(maps["Metadata_Cell_type"]) == {"U2OS", "A549"}
    # a plate table that cannot be joined is one line, naming the file
    pd.DataFrame({"Barcode": ["PA"]}).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    done = CliRunner().invoke(main, ["score", str(tmp_path / "profiles.csv"), "--replicates-by",
                                     "Metadata_broad_sample", "--plate-metadata", str(tmp_path / "bad.tsv")])
    assert done.exit_code == 2 and "Assay_Plate_Barcode" in done.output and "bad.tsv" in done.output
    # the plate table chooses the plates: PC left out of it is left out of the scores, and said
    pd.DataFrame({"Assay_Plate_Barcode": ["PA", "PB"], "Cell_type": "A549"}).to_csv(tmp_path / "two.tsv", sep="\t",
                                                                                  index=False)
    done = CliRunner().invoke(main, ["score", str(tmp_path / "profiles.csv"), "--replicates-by",
                                     "Metadata_broad_sample", "--plate-metadata", str(tmp_path / "two.tsv"),
                                     "--per", "Metadata_Cell_type", "--null-size", "100", "--n-samples", "100",
                                     "-o", str(tmp_path / "two")])
    assert done.exit_code == 0 and "1 plate(s) not in" in done.output and "PC" in done.output
    scored = pd.read_csv(tmp_path / "two" / "percent_replicating.csv")["n_replicates"].sum()
    assert scored == (frame["Metadata_Plate"] != "PC").sum()
