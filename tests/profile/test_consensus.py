"""consensus (median, mean, MODZ) against pycytominer 1.7.1 on the real LINCS plate and NF1 single cells.

pycytominer is the oracle, run once per module. Measured differences: 0 for
median and mean (the same medians of the same values), <= 4e-15 for MODZ (the
Spearman correlations are summed in another order; the weights, rounded to 4
decimals, came out identical), so ``atol=1e-9`` (no rtol; values are z-scores
up to ~90) has ample margin. pycytominer's MODZ applies a Python function per
group (~20 ms each), so the MODZ cases run on part of the plate: per compound,
DMSO and 14 of the 58 compounds (groups of 24, 12 and 6 wells); per compound
and dose, the 3 replicated groups plus 30 single-replicate ones (of 339).
"""

from __future__ import annotations

import doctest
import importlib
import warnings

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import DegenerateResultWarning, InputError
from cpfeatures.profile import consensus

COMPOUND = ["Metadata_broad_sample"]
DOSE = ["Metadata_broad_sample", "Metadata_mmoles_per_liter"]
PERT_DOSE = ["Metadata_pert_id", "Metadata_mmoles_per_liter"]  # pert_id is empty for DMSO: a NaN group


def _pycytominer(frame, columns, operation, **modz_args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' fragmentation warnings from pycytominer's aggregate
        return pycytominer.consensus(frame, replicate_columns=list(columns), operation=operation,
                                     modz_args=modz_args or {"method": "spearman"})


def _compound_subset(lincs):
    """DMSO (24 wells), the two compounds with 12 wells and the first 12 compounds with 6 (one per dose)."""
    size = lincs.groupby(COMPOUND)["Metadata_Well"].transform("size")
    six = pd.unique(lincs.loc[size == 6, COMPOUND[0]])[:12]
    return lincs.loc[(size > 6) | lincs[COMPOUND[0]].isin(six)]


def _dose_subset(lincs):
    """The dose groups with replicates (DMSO, two compounds x 12) and the first 30 single-replicate ones."""
    size = lincs.groupby(DOSE)["Metadata_Well"].transform("size")
    lone = lincs.index[size == 1][:30]
    return lincs.loc[(size > 1) | lincs.index.isin(lone)]


CASES = {("compound", "median"): ("all", COMPOUND), ("compound", "modz"): ("compounds", COMPOUND),
         ("dose", "median"): ("all", DOSE), ("dose", "modz"): ("subset", DOSE),
         ("pert_dose", "median"): ("all", PERT_DOSE), ("pert_dose", "mean"): ("all", PERT_DOSE)}


@pytest.fixture(scope="module")
def oracle(lincs):
    frames = {"all": lincs, "compounds": _compound_subset(lincs), "subset": _dose_subset(lincs)}
    return {key: (frames[rows], columns, _pycytominer(frames[rows], columns, key[1]))
            for key, (rows, columns) in CASES.items()}


def _assert_same(ours, ref, columns):
    assert list(ours.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(ours[columns], ref[columns])
    feats = [c for c in ref.columns if c not in columns]
    np.testing.assert_allclose(ours[feats].to_numpy(), ref[feats].to_numpy(float), rtol=0, atol=1e-9)


@pytest.mark.parametrize("grouping,operation", list(CASES), ids=[f"{g}-{o}" for g, o in CASES])
def test_equals_pycytominer(oracle, grouping, operation):
    frame, columns, ref = oracle[(grouping, operation)]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DegenerateResultWarning)
        ours = consensus(frame, replicate_columns=columns, operation=operation)
    _assert_same(ours, ref, columns)
    assert len(ours) == frame[columns].drop_duplicates().shape[0]
    lone = [str(w.message) for w in said if issubclass(w.category, DegenerateResultWarning)]
    if (grouping, operation) == ("dose", "modz"):  # the 30 single-replicate dose groups
        assert len(lone) == 1 and "30 of 33 groups" in lone[0] and "single replicate" in lone[0]
    else:
        assert not lone


@pytest.mark.parametrize("operation", ["median", "modz"])
def test_nf1_wells_equal_pycytominer(nf1_cells, operation):
    # the default replicate columns, plate and well: single cells to one consensus profile per well
    ours = consensus(nf1_cells, operation=operation)
    ref = _pycytominer(nf1_cells, ["Metadata_Plate", "Metadata_Well"], operation)
    _assert_same(ours, ref, ["Metadata_Plate", "Metadata_Well"])


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall"])
def test_modz_missing_values_and_ties_equal_pycytominer(method):
    # NaN and inf features, a constant replicate (no correlation), ties, a NaN group: pandas' pairwise rules
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(40, 6)).round(1), columns=[f"Cells_f{i}" for i in range(6)])
    frame.insert(0, "Metadata_group", rng.integers(0, 8, 40).astype(str))
    frame.loc[[3, 7], "Metadata_group"] = np.nan
    frame.loc[rng.random(40) < 0.2, "Cells_f2"] = np.nan
    frame.loc[5, frame.columns[1:]] = 1.0
    frame.loc[9, "Cells_f0"] = np.inf
    for data in (frame, frame.fillna({"Cells_f2": 0.0}).replace(np.inf, 3.0)):  # the pandas path, the numpy path
        ours = consensus(data, replicate_columns="Metadata_group", operation="modz", modz_method=method)
        ref = _pycytominer(data, ["Metadata_group"], "modz", method=method)
        assert list(ours.columns) == list(ref.columns)
        pd.testing.assert_frame_equal(ours[["Metadata_group"]], ref[["Metadata_group"]])
        np.testing.assert_allclose(ours.iloc[:, 1:].to_numpy(), ref.iloc[:, 1:].to_numpy(float), rtol=0,
                                   atol=1e-12)


def test_single_replicates_are_said(lincs):
    few = lincs.iloc[:40]
    with pytest.warns(DegenerateResultWarning, match=r"consensus modz: \d+ of \d+ groups .* single replicate.*BRD-"):
        lone = consensus(few, replicate_columns=DOSE, operation="modz")
    # a lone replicate is its own consensus
    only = few.groupby(DOSE)["Metadata_Well"].transform("size") == 1
    row = few[only].iloc[0]
    got = lone[(lone[DOSE[0]] == row[DOSE[0]]) & (lone[DOSE[1]] == row[DOSE[1]])]
    feats = [c for c in lone.columns if c not in DOSE]
    np.testing.assert_array_equal(got[feats].to_numpy()[0], row[feats].to_numpy(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)
        consensus(few, replicate_columns=DOSE, operation="median")  # a median of one is no weighting


def test_bad_arguments(lincs):
    with pytest.raises(InputError, match="operation"):
        consensus(lincs, operation="max")
    with pytest.raises(InputError, match="not in the table"):
        consensus(lincs, replicate_columns=["Metadata_Nope"])
    with pytest.raises(InputError, match="modz_method"):
        consensus(lincs, replicate_columns=COMPOUND, operation="modz", modz_method="cosine")
    feats = [c for c in lincs.columns if c.startswith("Cells_")][:2]
    with pytest.raises(InputError, match="also features"):
        consensus(lincs, replicate_columns=feats[:1], features=feats)


def test_docstring_examples():
    module = importlib.import_module("cpfeatures.profile.consensus")  # the package attribute is the function
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
