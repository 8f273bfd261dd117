"""Percent Replicating / Matching against a straightforward reference of the definitions (LINCS plate)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import percent_matching, percent_replicating


def _features(frame):
    return frame.drop(columns=frame.filter(like="Metadata_").columns)


def _median_corr(frame, rows_a, rows_b=None):
    """Median Pearson correlation (pandas) over replicate pairs, or over all cross pairs."""
    corr = _features(frame).T.corr()
    if rows_b is None:
        return float(np.median([corr.iloc[a, b] for a, b in combinations(rows_a, 2)]))
    return float(np.median([corr.iloc[a, b] for a in rows_a for b in rows_b]))


def test_percent_replicating_by_definition(lincs):
    frame = lincs[lincs["Metadata_broad_sample"] != "DMSO"].reset_index(drop=True)
    res = percent_replicating(frame, "Metadata_broad_sample", n_samples=300, seed=7)
    # every scored compound's median replicate correlation, recomputed with pandas
    for _, row in res.per_group.sample(10, random_state=0).iterrows():
        rows = np.flatnonzero(frame["Metadata_broad_sample"] == row["Metadata_broad_sample"])
        assert row["median_correlation"] == pytest.approx(_median_corr(frame, rows), abs=1e-12)
        assert row["n_replicates"] == len(rows)
    # null samples: distinct compounds each, statistic recomputed, threshold = their 95th percentile
    for k, members in res.null_members.items():
        labels = frame["Metadata_broad_sample"].to_numpy()[members]
        assert all(len(set(r)) == k for r in labels)
        for s in range(5):
            assert res.null[k][s] == pytest.approx(_median_corr(frame, members[s]), abs=1e-12)
        assert res.per_group.loc[res.per_group["n_replicates"] == k, "null_threshold"].iloc[0] == \
            pytest.approx(np.percentile(res.null[k], 95))
    expected = 100 * np.mean(res.per_group["median_correlation"] > res.per_group["null_threshold"])
    assert res.percent_replicating == pytest.approx(expected)
    # real compounds replicate far better than chance; the null is centred near zero
    common = int(res.per_group["n_replicates"].mode().iloc[0])
    assert res.null_p95 == pytest.approx(np.percentile(res.null[common], 95))
    assert res.percent_replicating > 30 and abs(np.median(res.null[common])) < 0.2
    # seeded: the same seed gives the same result, another seed another null
    again = percent_replicating(frame, "Metadata_broad_sample", n_samples=300, seed=7)
    assert again.percent_replicating == res.percent_replicating
    assert not np.array_equal(percent_replicating(frame, "Metadata_broad_sample", n_samples=300, seed=8).null[common],
                              res.null[common])


def test_percent_matching_by_definition(lincs):
    frame = lincs[(lincs["Metadata_broad_sample"] != "DMSO") & lincs["Metadata_moa"].notna()].reset_index(drop=True)
    res = percent_matching(frame, "Metadata_broad_sample", "Metadata_moa", n_samples=200, seed=1)
    ann = frame.groupby("Metadata_broad_sample")["Metadata_moa"].first()
    for _, row in res.per_pair.iterrows():
        a, b = row["Metadata_broad_sample_1"], row["Metadata_broad_sample_2"]
        assert set(ann[a].split("|")) & set(ann[b].split("|"))
        rows_a = np.flatnonzero(frame["Metadata_broad_sample"] == a)
        rows_b = np.flatnonzero(frame["Metadata_broad_sample"] == b)
        assert row["median_correlation"] == pytest.approx(_median_corr(frame, rows_a, rows_b), abs=1e-12)
    groups = res.groups["Metadata_broad_sample"].to_numpy()
    for g1, g2 in res.null_pairs[:20]:
        assert g1 != g2 and not set(ann[groups[g1]].split("|")) & set(ann[groups[g2]].split("|"))
    assert res.null_p95 == pytest.approx(np.percentile(res.null, 95))
    assert res.percent_matching == pytest.approx(100 * np.mean(res.per_pair["median_correlation"] > res.null_p95))


def test_matching_across_and_errors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 20))
    rows = []
    for g, (kind, target, b) in enumerate([("cmp", "T1", 0), ("gene", "T1", 0), ("cmp", "T2", 1), ("gene", "T3", 2),
                                           ("cmp", "T3", 2), ("gene", "T2", 1)]):
        for r in range(3):
            rows.append({"Metadata_pert": f"p{g}", "Metadata_type": kind, "Metadata_target": target,
                         **{f"Cells_f{i}": v for i, v in enumerate(base[b] + 0.1 * rng.normal(size=20))}})
    frame = pd.DataFrame(rows)
    res = percent_matching(frame, "Metadata_pert", "Metadata_target", across="Metadata_type", n_samples=50)
    assert len(res.per_pair) == 3 and res.percent_matching == 100.0
    with pytest.raises(InputError, match="share"):
        percent_matching(frame.assign(Metadata_target=[f"t{i}" for i in range(len(frame))]), "Metadata_pert",
                         "Metadata_target")
    with pytest.raises(InputError, match="replicates"):
        percent_replicating(frame.drop_duplicates("Metadata_pert"), "Metadata_pert")


def test_reference_query_is_the_clis_reference(lincs, tmp_path):
    """The Python call and `cpfeatures score --reference` give the same number."""
    import json
    import subprocess
    import sys

    query = "Metadata_broad_sample == 'DMSO'"
    py = percent_replicating(lincs, "Metadata_broad_sample", n_samples=200, seed=3, reference_query=query)
    direct = percent_replicating(lincs[lincs["Metadata_broad_sample"] != "DMSO"], "Metadata_broad_sample",
                                 n_samples=200, seed=3)
    assert py.percent_replicating == direct.percent_replicating
    path = tmp_path / "p.parquet"
    lincs.to_parquet(path)
    out = subprocess.run([sys.executable, "-m", "cpfeatures.cli", "score", str(path), "--replicates-by",
                          "Metadata_broad_sample", "--reference", query, "--n-samples", "200", "--seed", "3",
                          "--null-size", "100", "-o", str(tmp_path / "s"), "--json"],
                         capture_output=True, text=True, check=True)
    cli = json.loads(out.stdout)["scores"][0]["value"]
    assert cli == f"{py.percent_replicating:.1f}%"


def test_degenerate_nulls_are_said_or_refused(lincs):
    from cpfeatures.errors import DegenerateResultWarning

    frame = lincs.copy()
    feats = _features(frame).columns
    constant = frame.index[frame["Metadata_broad_sample"] != "DMSO"][:40]
    frame.loc[constant, feats] = 1.0  # profiles without variance: NaN correlations
    with pytest.warns(DegenerateResultWarning, match="null are NaN"):
        res = percent_replicating(frame, "Metadata_broad_sample", n_samples=200, seed=1)
    assert np.isfinite(res.null_p95)
    frame.loc[:, feats] = 1.0
    with pytest.raises(InputError, match="every sample of the replicating .* null is NaN"):
        percent_replicating(frame, "Metadata_broad_sample", n_samples=50, seed=1)
