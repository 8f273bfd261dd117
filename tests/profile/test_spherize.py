"""spherize (and normalize(method="spherize")) against pycytominer 1.7.1 on the real LINCS plate.

pycytominer is the oracle, run once per module. The LINCS plate has 384 wells,
24 of them DMSO, and 454 features: every real fit here has fewer profiles than
features (pycytominer's padded-spectrum branch); a feature subset covers the
full-rank branch. Differences measured: <= 5e-13 absolute on outputs up to ~70
in magnitude, so ``atol=1e-9`` (no rtol) has four orders of margin. PCA fitted
on the DMSO wells matches too: the components beyond rank 23 are set by
rounding in the reference, and cpfeatures centers it bit for bit as
scikit-learn does.

Both sides run with one BLAS thread: on a busy two-core CI machine OpenBLAS's
threads spin against each other and the SVDs take ~4x longer (measured: 22 s
vs 6 s for this file); the comparison is the same, each side using one thread.
"""

from __future__ import annotations

import doctest
import importlib
import warnings

import numpy as np
import pandas as pd
import pycytominer
import pytest
from threadpoolctl import threadpool_limits

from cpfeatures.errors import DegenerateResultWarning, InputError
from cpfeatures.profile import normalize, spherize

DMSO = "Metadata_broad_sample == 'DMSO'"
CASES = [(method, center, samples) for samples in ("all", DMSO) for method in ("ZCA", "ZCA-cor", "PCA", "PCA-cor")
         for center in (True, False) if center or not method.endswith("-cor")]


def _pycytominer(frame, method, center, samples, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pycytominer.normalize(frame, method="spherize", spherize_method=method, spherize_center=center,
                                     samples=samples, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def oracle(lincs, _one_blas_thread):
    return {case: _pycytominer(lincs, *case) for case in CASES}


def _with(frame, **columns):
    """``frame`` plus columns, in one block (``assign`` on the 480-column plate warns of fragmentation)."""
    return pd.concat([frame, pd.DataFrame(columns, index=frame.index)], axis=1)


def _features(frame):
    return [c for c in frame.columns if not c.startswith("Metadata_")]


def _assert_same(ours, ref):
    assert list(ours.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(ours.filter(like="Metadata_"), ref.filter(like="Metadata_"))
    feats = _features(ref)
    np.testing.assert_allclose(ours[feats].to_numpy(), ref[feats].to_numpy(float), rtol=0, atol=1e-9)


@pytest.mark.parametrize("method,center,samples", CASES, ids=[f"{m}-{'centered' if c else 'raw'}-"
                                                              f"{'dmso' if s != 'all' else 'all'}"
                                                              for m, c, s in CASES])
def test_equals_pycytominer(lincs, oracle, method, center, samples):
    n = len(lincs) if samples == "all" else int((lincs["Metadata_broad_sample"] == "DMSO").sum())
    with pytest.warns(DegenerateResultWarning, match=rf"Metadata_Plate SQ00015054: .* {n} profiles for 454 features"):
        ours = normalize(lincs, method="spherize", spherize_method=method, spherize_center=center, samples=samples)
    _assert_same(ours, oracle[(method, center, samples)])
    if method.startswith("PCA"):
        assert list(_features(ours))[:2] == ["PC1", "PC2"]


@pytest.mark.parametrize("method", ["ZCA-cor", "PCA"])
@pytest.mark.parametrize("samples,n_features", [("all", 60), (DMSO, 12)])
def test_full_rank_reference(lincs, method, samples, n_features):
    # more reference profiles than features: no padding, and nothing to warn about
    feats = _features(lincs)[:n_features]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)
        ours = spherize(lincs, method=method, samples=samples, features=feats)
    _assert_same(ours, _pycytominer(lincs, method, True, samples, features=feats))
    if samples == "all":  # the reference itself is whitened: sample covariance ~ identity
        cov = np.cov(ours[_features(ours)].to_numpy(), rowvar=False)
        np.testing.assert_allclose(cov, np.eye(n_features), atol=1e-4)


def test_one_transform_per_group(lincs, oracle):
    # a second plate (rescaled, shifted, noisier) is fitted on its own DMSO wells; by= a column naming both plates
    # fits them together
    feats = _features(lincs)
    noise = np.random.default_rng(0).normal(scale=0.2, size=(len(lincs), len(feats)))
    other = pd.concat([lincs.filter(like="Metadata_").assign(Metadata_Plate="OTHER"),
                       pd.DataFrame(lincs[feats].to_numpy() * 3.0 + np.linspace(-1, 1, len(feats)) + noise,
                                    columns=feats)], axis=1)
    both = _with(pd.concat([lincs, other], ignore_index=True), Metadata_Group="G1")
    n = len(lincs)
    with pytest.warns(DegenerateResultWarning, match="Metadata_Plate (SQ00015054|OTHER): .* 24 profiles"):
        ours = normalize(both, method="spherize", spherize_method="PCA", samples=DMSO)  # by="Metadata_Plate"
    _assert_same(ours.iloc[:n].drop(columns="Metadata_Group"), oracle[("PCA", True, DMSO)])
    _assert_same(ours.iloc[n:].drop(columns="Metadata_Group").reset_index(drop=True),
                 _pycytominer(other, "PCA", True, DMSO))
    with pytest.warns(DegenerateResultWarning, match="Metadata_Group G1: .* 48 profiles"):
        together = spherize(both, method="ZCA", samples=DMSO, by="Metadata_Group")
    _assert_same(together, _pycytominer(both, "ZCA", True, DMSO))


def test_degenerate_references_are_said(lincs):
    feats = _features(lincs)[:20]
    flat = _with(lincs, Cells_AreaShape_Flat=5.0)  # no variance among the DMSO wells (nor anywhere)
    with pytest.warns(DegenerateResultWarning, match=r"1 of 21 features have zero variance .*Cells_AreaShape_Flat"), \
            pytest.warns(DegenerateResultWarning, match=r"linearly dependent features \(covariance rank 20 < 21\)"):
        out = spherize(flat, method="ZCA-cor", samples=DMSO, features=feats + ["Cells_AreaShape_Flat"])
    assert np.isfinite(out[feats].to_numpy()).all()
    with pytest.raises(ValueError, match="Divide by zero"):  # where pycytominer refuses
        _pycytominer(flat, "ZCA-cor", True, DMSO, features=feats + ["Cells_AreaShape_Flat"])
    twice = _with(lincs, Cells_Twice=2.0 * lincs[feats[0]] - 1.0)  # a linear combination of a feature
    with pytest.warns(DegenerateResultWarning, match=r"linearly dependent features \(covariance rank 20 < 21\)"):
        spherize(twice, method="ZCA", features=feats + ["Cells_Twice"])
    with pytest.warns(DegenerateResultWarning, match=r"24 profiles for 454 features, so its covariance has rank 23"):
        spherize(lincs, method="ZCA", samples=DMSO)


def test_bad_arguments(lincs):
    feats = _features(lincs)[:5]
    with pytest.raises(InputError, match="spherize method"):
        spherize(lincs, method="whiten", features=feats)
    with pytest.raises(InputError, match="center=True"):
        spherize(lincs, method="PCA-cor", center=False, features=feats)
    with pytest.raises(InputError, match="no such column"):
        spherize(lincs, features=feats, by="Metadata_Nope")
    one = lincs.copy()
    one.loc[one.index[0], "Metadata_broad_sample"] = "ONLY"
    with pytest.raises(InputError, match="is 1 profile"):
        spherize(one, samples="Metadata_broad_sample == 'ONLY'", features=feats)
    holes = lincs.copy()
    holes.loc[holes.index[0], feats[1]] = np.nan  # a DMSO well
    with pytest.raises(InputError, match=rf"1 feature\(s\) have NaN .*{feats[1]}"):
        spherize(holes, samples=DMSO, features=feats)
    with pytest.raises(InputError, match="method"):
        normalize(lincs, method="sphere")


def test_docstring_examples():
    module = importlib.import_module("cpfeatures.profile.spherize")  # the package attribute is the function
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("method", ["ZCA", "ZCA-cor"])
def test_nf1_single_cells_equal_pycytominer(nf1_cells, method):
    """The NF1 CellProfiler single cells, one plate: 242 cells, so 150 of their features (the full-rank branch)."""
    names = [c for c in nf1_cells.columns if c.startswith("Cells_") and "Number_Object" not in c
             and nf1_cells[c].notna().all() and nf1_cells[c].std() > 0][:150]
    cells = nf1_cells[[c for c in nf1_cells.columns if c.startswith("Metadata_")] + names]
    ref = _pycytominer(cells, method, True, "all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        ours = spherize(cells, method=method, by="Metadata_Plate")
    feats = [c for c in ref.columns if not c.startswith("Metadata_")]
    assert len(cells) > len(feats) == 150
    np.testing.assert_allclose(ours[feats].to_numpy(), ref[feats].to_numpy(), rtol=0, atol=1e-9)
