"""Colocalization against CellProfiler 4.2.8's exported Correlation_ columns and cp-measure."""

from __future__ import annotations

import numpy as np
import pytest
from cp_measure.core.measurecolocalization import (get_correlation_manders_fold, get_correlation_overlap,
                                                   get_correlation_pearson)

from cpfeatures.measure import Objects
from cpfeatures.measure._colocalization import colocalization, measure_family

ROLES = ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"]


@pytest.mark.parametrize("well", ["D08", "N14"])
@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_equals_cellprofiler_export(cp_ref, well, compartment):
    objects = Objects(cp_ref.labels(well)[compartment])
    table = cp_ref.objects_table(compartment, well)
    rows = table["ObjectNumber"].to_numpy() - 1
    ours = measure_family(objects, {r: cp_ref.corrected(well, r) for r in ROLES})
    reference = [c for c in table.columns if c.startswith("Correlation_")]
    assert sorted(ours) == sorted(reference)  # 28 pairs x 8 features, CellProfiler's pair order
    for col in reference:
        # RWC ranks are exact because the images are CellProfiler's float32 values
        np.testing.assert_allclose(ours[col][rows], table[col], rtol=1e-6, atol=1e-9, err_msg=col)


def test_against_cp_measure(cp_ref):
    labels = cp_ref.labels("G21")["Cells"]
    a, b = cp_ref.corrected("G21", "AGP"), cp_ref.corrected("G21", "Mito")
    ours = colocalization(labels, a, b)
    pearson = get_correlation_pearson(a, b, labels)
    np.testing.assert_allclose(ours["Correlation_Correlation"], pearson["Correlation_Pearson"], rtol=1e-6)
    manders = get_correlation_manders_fold(a, b, labels)
    np.testing.assert_allclose(ours["Correlation_Manders_1"], manders["Correlation_Manders_1"], rtol=1e-6)
    np.testing.assert_allclose(ours["Correlation_Manders_2"], manders["Correlation_Manders_2"], rtol=1e-6)
    overlap = get_correlation_overlap(a, b, labels)
    for key in ("Correlation_Overlap", "Correlation_K_1", "Correlation_K_2"):
        np.testing.assert_allclose(ours[key], overlap[key], rtol=1e-6, err_msg=key)
    # cp-measure ranks RWC within each object; CellProfiler (and we) rank over the whole image,
    # so RWC is checked against CellProfiler's export above instead.


def test_edge_cases():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 1
    labels[12:18, 12:18] = 3
    rng = np.random.default_rng(0)
    a = rng.random((20, 20))
    out = colocalization(labels, a, a)
    assert out["Correlation_Correlation"][0] == pytest.approx(1.0)
    assert out["Correlation_RWC_1"][0] == pytest.approx(1.0)  # identical ranks -> weight 1
    assert np.isnan(out["Correlation_Correlation"][1])  # absent label
    const = colocalization(labels, np.full((20, 20), 0.5), a)
    assert np.isnan(const["Correlation_Correlation"][0])  # undefined Pearson r, as CellProfiler
    zero = colocalization(labels, np.zeros((20, 20)), a)
    # a dark image: every pixel is >= 15% of a 0 maximum, so all of image 2 "colocalizes"
    assert zero["Correlation_Manders_2"][0] == 1 and np.isnan(zero["Correlation_Manders_1"][0])
    assert all(len(v) == 0 for v in colocalization(np.zeros((4, 4), int), np.zeros((4, 4)), np.zeros((4, 4))).values())


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureColocalization, threshold 15 % (recorded by
    tools/cellprofiler_cases.py): constant, identical, anti-correlated and all-zero second images.
    Tolerance: 1e-12 relative, 1e-15 absolute (Pearson r: CellProfiler divides each pixel's product,
    we divide the sum); Overlap and K are exact (their float32 products are CellProfiler's)."""
    cases.assert_equals_cellprofiler(name, "colocalization", 1e-12, 1e-15, skip=("Overlap", "_K_"))
    cases.assert_equals_cellprofiler(name, "colocalization", 0.0, 0.0, skip=("Correlation_Correlation",
                                                                            "Manders", "RWC"))
