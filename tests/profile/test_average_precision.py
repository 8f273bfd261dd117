"""mAP against copairs on the real LINCS plate: same APs, same p-values with the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copairs.map import average_precision as copairs_ap
from copairs.map import mean_average_precision as copairs_map
from statsmodels.stats.multitest import multipletests

from cpfeatures.errors import InputError
from cpfeatures.profile import average_precision, fdr_bh, mean_average_precision

DMSO = "Metadata_broad_sample == 'DMSO'"


@pytest.fixture(scope="module")
def copairs_activity(lincs, tmp_path_factory):
    """copairs' phenotypic-activity recipe: compounds vs DMSO via a reference index column."""
    meta = lincs.filter(like="Metadata_").copy()
    meta["Metadata_ref"] = np.where(meta["Metadata_broad_sample"] == "DMSO", np.arange(len(meta)), -1)
    feats = lincs.drop(columns=lincs.filter(like="Metadata_").columns).to_numpy()
    cols = ["Metadata_broad_sample", "Metadata_ref"]
    ap = copairs_ap(meta, feats, cols, [], [], cols, progress_bar=False)
    maps = copairs_map(ap, ["Metadata_broad_sample"], null_size=2000, threshold=0.05, seed=3, progress_bar=False,
                       cache_dir=tmp_path_factory.mktemp("copairs"))
    return ap, maps


def test_average_precision_equals_copairs(lincs, copairs_activity):
    ref, _ = copairs_activity
    cols = ["Metadata_broad_sample", "Metadata_ref"]
    frame = lincs.assign(Metadata_ref=np.where(lincs["Metadata_broad_sample"] == "DMSO", np.arange(len(lincs)), -1))
    ours = average_precision(frame, cols, [], [], cols)
    for col in ("n_pos_pairs", "n_total_pairs"):
        np.testing.assert_array_equal(ours[col], ref[col])
    for col in ("average_precision", "normalized_average_precision"):
        np.testing.assert_allclose(ours[col], ref[col], rtol=0, atol=1e-12, equal_nan=True)
    assert ours["average_precision"].notna().sum() > 300


def test_map_and_p_values_equal_copairs(lincs, copairs_activity):
    _, ref = copairs_activity
    ours = mean_average_precision(lincs, "Metadata_broad_sample", reference_query=DMSO, null_size=2000, seed=3)
    merged = ref.merge(ours, on="Metadata_broad_sample", suffixes=("_ref", ""))
    assert len(merged) == len(ref) == len(ours) > 50
    for col in ("mean_average_precision", "mean_normalized_average_precision", "p_value", "corrected_p_value"):
        np.testing.assert_allclose(merged[col], merged[col + "_ref"], rtol=1e-12, atol=1e-12, err_msg=col)
    assert (merged["below_corrected_p"] == merged["below_corrected_p_ref"]).all()
    assert merged["below_corrected_p"].any() and not merged["below_corrected_p"].all()


def test_consistency_without_reference_equals_copairs(lincs, tmp_path):
    # phenotypic consistency: compounds sharing an MOA retrieve each other against other MOAs
    frame = lincs[lincs["Metadata_moa"].notna() & (lincs["Metadata_broad_sample"] != "DMSO")].reset_index(drop=True)
    feats = frame.drop(columns=frame.filter(like="Metadata_").columns).to_numpy()
    ref_ap = copairs_ap(frame.filter(like="Metadata_"), feats, ["Metadata_moa"], ["Metadata_broad_sample"], [],
                        ["Metadata_moa"], distance="correlation", progress_bar=False)
    ref_ap = ref_ap[ref_ap["n_pos_pairs"] > 0]
    ref = copairs_map(ref_ap, ["Metadata_moa"], null_size=500, threshold=0.05, seed=0, progress_bar=False,
                      cache_dir=tmp_path)
    ours = mean_average_precision(frame, "Metadata_moa", pos_diffby=["Metadata_broad_sample"], null_size=500,
                                  seed=0, distance="correlation")
    merged = ref.merge(ours, on="Metadata_moa", suffixes=("_ref", ""))
    assert len(merged) == len(ref) >= 5
    for col in ("mean_average_precision", "p_value"):
        np.testing.assert_allclose(merged[col], merged[col + "_ref"], rtol=1e-12, atol=1e-12, err_msg=col)


def test_fdr_equals_statsmodels():
    p = np.random.default_rng(1).uniform(size=200) ** 3
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_ap_by_hand():
    # profile 0's ranking: positive 1 (sim .9), negative 3 (.5), positive 2 (.1) -> AP = (1/1 + 2/3) / 2
    x = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)], [0.1, np.sqrt(1 - 0.01)], [0.5, -np.sqrt(0.75)]])
    frame = pd.DataFrame({"Metadata_g": ["a", "a", "a", "b"], "Cells_x": x[:, 0], "Cells_y": x[:, 1]})
    ours = average_precision(frame, ["Metadata_g"], [], [], ["Metadata_g"])
    assert ours["average_precision"].iloc[0] == pytest.approx((1 + 2 / 3) / 2)
    assert ours["n_pos_pairs"].tolist() == [2, 2, 2, 0] and ours["n_total_pairs"].tolist() == [3, 3, 3, 3]


def test_errors(lincs):
    with pytest.raises(InputError, match="no positive pairs"):
        mean_average_precision(lincs, "Metadata_Well", null_size=10)
    with pytest.raises(InputError, match="distance"):
        mean_average_precision(lincs, "Metadata_broad_sample", distance="hamming", null_size=10)
    bad = lincs.copy()
    bad.iloc[0, -1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        mean_average_precision(bad, "Metadata_broad_sample", null_size=10)


def test_matching_map_across_modalities_equals_copairs(lincs, tmp_path):
    """Matching mAP (copairs semantics): a profile retrieves those of the other "modality" sharing its MOA
    (pos_sameby MOA, pos_diffby modality) against those of the other modality with other MOAs."""
    frame = lincs[lincs["Metadata_moa"].notna() & (lincs["Metadata_broad_sample"] != "DMSO")].reset_index(drop=True)
    frame["Metadata_modality"] = np.where(frame.index % 2 == 0, "even", "odd")
    feats = frame.drop(columns=frame.filter(like="Metadata_").columns).to_numpy()
    meta = frame.filter(like="Metadata_")
    ref_ap = copairs_ap(meta, feats, ["Metadata_moa"], ["Metadata_modality"], [],
                        ["Metadata_moa", "Metadata_modality"], progress_bar=False)
    ref_ap = ref_ap[ref_ap["n_pos_pairs"] > 0]
    ref = copairs_map(ref_ap, ["Metadata_moa"], null_size=1000, threshold=0.05, seed=5, progress_bar=False,
                      cache_dir=tmp_path)
    ours = mean_average_precision(frame, "Metadata_moa", diffby=["Metadata_moa", "Metadata_modality"],
                                  pos_diffby=["Metadata_modality"], null_size=1000, seed=5)
    merged = ref.merge(ours, on="Metadata_moa", suffixes=("_ref", ""))
    assert len(merged) == len(ref) == len(ours) > 5
    for col in ("mean_average_precision", "p_value", "corrected_p_value"):
        np.testing.assert_allclose(merged[col], merged[col + "_ref"], rtol=1e-12, atol=1e-12, err_msg=col)


def test_multilabel_matching_equals_copairs_multilabel(lincs, tmp_path):
    """A target list ("KCNA5|KCNH2"): one AP per (profile, target), positives carrying that target,
    negatives sharing none of the profile's targets; equal to copairs' multilabel average_precision."""
    from copairs.map.multilabel import average_precision as copairs_multilabel_ap

    frame = lincs[lincs["Metadata_target"].notna() & (lincs["Metadata_broad_sample"] != "DMSO")].reset_index(drop=True)
    frame = frame.assign(Metadata_modality=np.where(frame.index % 2 == 0, "even", "odd"))
    assert frame["Metadata_target"].str.contains("|", regex=False).sum() > 10  # real multi-target compounds
    feats = frame.drop(columns=frame.filter(like="Metadata_").columns).to_numpy()
    meta = frame.filter(like="Metadata_").assign(Metadata_target=frame["Metadata_target"].str.split("|"))
    ref = copairs_multilabel_ap(meta, feats, ["Metadata_target"], ["Metadata_modality"], [],
                                ["Metadata_target", "Metadata_modality"], "Metadata_target", progress_bar=False)
    ours = average_precision(frame, ["Metadata_target"], ["Metadata_modality"], [],
                             ["Metadata_target", "Metadata_modality"], multilabel="Metadata_target")
    key = ["Metadata_Well", "Metadata_target"]
    merged = ref.merge(ours.dropna(subset=["average_precision"]), on=key, suffixes=("_ref", ""))
    assert len(merged) == len(ref) == ours["average_precision"].notna().sum() > 50
    for col in ("n_pos_pairs", "n_total_pairs"):
        np.testing.assert_array_equal(merged[col], merged[col + "_ref"], err_msg=col)
    np.testing.assert_allclose(merged["average_precision"], merged["average_precision_ref"], rtol=1e-6, atol=1e-7)
    # mAP per target with p-values, the same seed as copairs
    ref_map = copairs_map(ref, ["Metadata_target"], null_size=500, threshold=0.05, seed=5, progress_bar=False,
                          cache_dir=tmp_path)
    ours_map = mean_average_precision(frame, "Metadata_target", diffby=["Metadata_target", "Metadata_modality"],
                                      pos_diffby=["Metadata_modality"], null_size=500, seed=5,
                                      multilabel="Metadata_target")
    both = ref_map.merge(ours_map, on="Metadata_target", suffixes=("_ref", ""))
    assert len(both) == len(ref_map) == len(ours_map)
    np.testing.assert_allclose(both["mean_average_precision"], both["mean_average_precision_ref"], rtol=1e-6)
    np.testing.assert_allclose(both["p_value"], both["p_value_ref"], rtol=1e-12)
