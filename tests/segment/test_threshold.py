"""Thresholds and morphology against scikit-image and centrosome (CellProfiler's own library)."""

from __future__ import annotations

import centrosome.cpmorphology
import centrosome.outline
import centrosome.threshold
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters

from cpfeatures.illum import apply as apply_illum
from cpfeatures.segment import threshold as th
from cpfeatures.segment.morphology import fill_labeled_holes, is_local_maximum, outline, strel_disk


@pytest.fixture(scope="module")
def dna(cp_ref):
    return apply_illum(cp_ref.raw("N14", "DNA"), cp_ref.illum("DNA"))[200:600, 300:700]


def test_mce_is_li(dna):
    tol = max(np.min(np.diff(np.unique(dna))) / 2, 0.5 / 65536)
    assert th.minimum_cross_entropy(dna) == pytest.approx(skimage.filters.threshold_li(dna.ravel(), tolerance=tol))


def test_otsu_two_and_three_class(dna):
    assert th.otsu(dna) == pytest.approx(skimage.filters.threshold_otsu(dna))
    t = skimage.filters.threshold_multiotsu(dna, classes=3, nbins=128)
    assert th.otsu_three_class(dna, middle="foreground") == pytest.approx(t[0])
    assert th.otsu_three_class(dna, middle="background") == pytest.approx(t[1])


def test_degenerate_images():
    assert th.minimum_cross_entropy(np.zeros((5, 5))) == 0.0
    assert th.otsu(np.full((5, 5), 0.3)) == pytest.approx(0.3)
    assert th.minimum_cross_entropy(np.zeros((0,))) == 0.0


def test_correction_then_bounds():
    assert th.correct_threshold(0.01, 1.25, (0.014, 1.0)) == 0.014
    assert th.correct_threshold(0.02, 1.25, (0.014, 1.0)) == pytest.approx(0.025)
    assert th.correct_threshold(0.9, 2.0, (0.0, 1.0)) == 1.0


def test_weighted_variance_matches_centrosome(dna):
    binary = dna > th.otsu(dna)
    mask = np.ones(dna.shape, bool)
    assert th.weighted_variance(dna, binary) == pytest.approx(centrosome.threshold.weighted_variance(dna, mask, binary))


def test_threshold_image_smoothing_matches_centrosome(dna):
    from centrosome.smooth import smooth_with_function_and_mask

    sigma = 3 / 0.6744 / 2
    ref = smooth_with_function_and_mask(dna, lambda x: ndi.gaussian_filter(x, sigma, mode="constant", cval=0),
                                        np.ones(dna.shape, bool))
    binary, m = th.threshold_image(dna, "minimum_cross_entropy", 1.25, (0.014, 1.0), smoothing_scale=3)
    np.testing.assert_array_equal(binary, ref >= m["FinalThreshold"])


def test_outline_matches_centrosome(cp_ref):
    labels = cp_ref.labels("M02")["Nuclei"]
    np.testing.assert_array_equal(outline(labels), centrosome.outline.outline(labels))


def test_fill_holes_matches_centrosome():
    rng = np.random.default_rng(1)
    labels, _ = ndi.label(ndi.binary_opening(rng.random((200, 200)) > 0.35))
    np.testing.assert_array_equal(fill_labeled_holes(labels), centrosome.cpmorphology.fill_labeled_holes(labels))


def test_local_maximum_matches_centrosome(cp_ref):
    nuclei = cp_ref.labels("N14")["Nuclei"][:400, :400]
    dist = ndi.distance_transform_edt(nuclei > 0) + np.random.RandomState(0).uniform(0, 1e-3, nuclei.shape)
    fp = strel_disk(7.5)
    np.testing.assert_array_equal(is_local_maximum(dist, nuclei, fp),
                                  centrosome.cpmorphology.is_local_maximum(dist, nuclei, fp))
    np.testing.assert_array_equal(strel_disk(7.5).astype(float), centrosome.cpmorphology.strel_disk(7.5))


@pytest.mark.parametrize("kind", ["real", "coarse", "two_values", "wide"])
def test_smallest_gap_equals_sorted_unique(dna, kind):
    # the tolerance CellProfiler passes to threshold_li needs the smallest gap between distinct values
    rng = np.random.default_rng(0)
    data = {"real": dna.ravel().astype(np.float64),
            "coarse": rng.integers(0, 40, 10_000) / 39.0,  # every gap wider than 1/65536
            "two_values": np.array([0.2, 0.7, 0.2, 0.7]),
            "wide": rng.random(1000) * 1e9}[kind]
    exact = float(np.min(np.diff(np.unique(data))))
    gap = th._smallest_gap(data, 1 / 65536)
    if exact > 1 / 65536:
        assert gap == exact
    else:  # only "at most the bin width" is promised, which decides the tolerance alike
        assert gap <= 1 / 65536
        assert max(gap / 2, 0.5 / 65536) == max(exact / 2, 0.5 / 65536)
