"""normalize against pycytominer on the real LINCS plate (per plate, all wells or DMSO only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pycytominer
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import normalize


@pytest.mark.parametrize("method", ["mad_robustize", "standardize", "robustize"])
@pytest.mark.parametrize("samples", ["all", "Metadata_broad_sample == 'DMSO'"])
def test_equals_pycytominer(lincs, method, samples):
    ours = normalize(lincs, method=method, samples=samples)
    ref = pycytominer.normalize(lincs, method=method, samples=samples)
    assert list(ours.columns) == list(ref.columns)
    feats = [c for c in ref.columns if not c.startswith("Metadata_")]
    np.testing.assert_allclose(ours[feats].to_numpy(float), ref[feats].to_numpy(float), rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(ours.filter(like="Metadata_"), ref.filter(like="Metadata_"))


def test_per_plate(lincs):
    # two copies of the plate with different scales normalize to the same values plate by plate
    feats = [c for c in lincs.columns if not c.startswith("Metadata_")]
    other = lincs.copy()
    other["Metadata_Plate"] = "OTHER"
    other[feats] = other[feats] * 7.0 + 3.0
    both = pd.concat([lincs, other], ignore_index=True)
    ours = normalize(both, method="mad_robustize", samples="Metadata_broad_sample == 'DMSO'")
    ref = pycytominer.normalize(lincs, method="mad_robustize", samples="Metadata_broad_sample == 'DMSO'")
    n = len(lincs)
    np.testing.assert_allclose(ours[feats].to_numpy()[:n], ref[feats].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours[feats].to_numpy()[n:], ref[feats].to_numpy(), rtol=1e-6, atol=1e-6)


def test_nan_and_constant_features():
    frame = pd.DataFrame({"Metadata_Plate": ["P"] * 5, "Cells_a": [1.0, 2.0, np.nan, 4.0, 10.0],
                          "Cells_const": [3.0] * 5})
    for method in ("standardize", "robustize", "mad_robustize"):
        ours = normalize(frame, method=method)
        ref = pycytominer.normalize(frame, method=method)
        np.testing.assert_allclose(ours[["Cells_a", "Cells_const"]], ref[["Cells_a", "Cells_const"]],
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=method)


def test_bad_arguments(lincs):
    with pytest.raises(InputError, match="method"):
        normalize(lincs, method="zscore")
    with pytest.raises(InputError, match="matches no profile"):
        normalize(lincs, samples="Metadata_broad_sample == 'nothing'")


def test_degenerate_references_are_said(lincs):
    import warnings

    from cpfeatures.errors import DegenerateResultWarning

    one = lincs.copy()
    one.loc[one.index[0], "Metadata_broad_sample"] = "ONLY"
    with pytest.warns(DegenerateResultWarning, match=r"plate SQ00015054: the normalization reference .* is 1 profile"):
        normalize(one, samples="Metadata_broad_sample == 'ONLY'")
    flat = lincs.copy()
    flat["Cells_AreaShape_Flat"] = 5.0  # no spread among the DMSO wells (nor anywhere)
    with pytest.warns(DegenerateResultWarning, match=r"1 of \d+ features have zero spread.*Cells_AreaShape_Flat"):
        normalize(flat, samples="Metadata_broad_sample == 'DMSO'")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)
        normalize(lincs, samples="Metadata_broad_sample == 'DMSO'")  # a real plate: nothing to say
