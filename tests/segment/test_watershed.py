"""The watershed port against scikit-image's own watershed and CellProfiler's label images."""

from __future__ import annotations

import numpy as np
import pytest
import skimage
import skimage.segmentation
from packaging.version import Version

from cpfeatures.segment.watershed import watershed

EIGHT = np.ones((3, 3), bool)
# scikit-image 0.25 raised a pushed neighbour's priority to the popped pixel's (PR #7071)
SKIMAGE_RAISES = Version(skimage.__version__) >= Version("0.25")


def _case(rng, dtype):
    h, w = rng.integers(3, 40, 2)
    image = rng.integers(0, 4, (h, w)).astype(dtype)  # few levels: ties everywhere
    markers = np.zeros((h, w), np.int32)
    for label in range(1, rng.integers(2, 7)):
        markers[rng.integers(0, h), rng.integers(0, w)] = label
    markers[rng.random((h, w)) < 0.02] = 1  # marker pixels of equal value and age compete
    return image, markers, rng.random((h, w)) < 0.85


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_installed_skimage(dtype):
    rng = np.random.default_rng(0)
    for trial in range(400):
        image, markers, mask = _case(rng, dtype)
        ref = skimage.segmentation.watershed(image, markers, mask=mask, connectivity=EIGHT)
        got = watershed(image, markers, mask, raise_to_source=SKIMAGE_RAISES)
        np.testing.assert_array_equal(got, ref, err_msg=f"trial {trial}")


def test_equals_skimage_on_a_real_site(cp_ref):
    """The cells watershed of a real site (float32 path) and the nuclei declumping (float64)."""
    rna = cp_ref.corrected("M02", "RNA")
    labels = cp_ref.labels("M02")
    mask = (labels["Cells"] > 0) | (labels["Nuclei"] > 0)
    for image in (1.0 - rna, (1.0 - rna).astype(np.float64)):
        ref = skimage.segmentation.watershed(image, labels["Nuclei"], mask=mask, connectivity=EIGHT)
        for rule in (False, True):
            got = watershed(image, labels["Nuclei"], mask, raise_to_source=rule)
            if rule == SKIMAGE_RAISES:
                np.testing.assert_array_equal(got, ref)
            # on real images the two rules give the same labels here (CellProfiler's and ours agree)
            assert (got == ref).mean() > 0.999


def test_rules_differ_where_a_front_climbs_down():
    # marker 2 (value 3) floods the 5, then climbs down to the 4 (age 4) and the 2; marker 1 (value 4)
    # pushed its 5 earlier (age 3). CellProfiler's rule pops the 4 before 1's 5, so 2 takes the 2;
    # raised to 5, the 4 comes after 1's 5 and 1 takes it.
    image = np.array([[4.0, 5.0, 2.0, 4.0, 5.0, 3.0]])
    markers = np.array([[1, 0, 0, 0, 0, 2]], np.int32)
    assert watershed(image, markers).tolist() == [[1, 1, 2, 2, 2, 2]]
    assert watershed(image, markers, raise_to_source=True).tolist() == [[1, 1, 1, 2, 2, 2]]
    ref = skimage.segmentation.watershed(image, markers, connectivity=EIGHT)
    assert ref.tolist() == watershed(image, markers, raise_to_source=SKIMAGE_RAISES).tolist()


def test_edges():
    image = np.random.default_rng(1).random((6, 7))
    # markers outside the mask are dropped; pixels unreachable inside the mask stay 0
    markers = np.zeros((6, 7), np.int32)
    markers[0, 0] = 3
    markers[5, 6] = 4
    mask = np.zeros((6, 7), bool)
    mask[:, :3] = True
    out = watershed(image, markers, mask)
    assert set(np.unique(out)) == {0, 3} and (out[:, :3] == 3).all()
    assert not watershed(image, np.zeros((6, 7), np.int32)).any()
    assert (watershed(image, markers) > 0).all()
    with pytest.raises(ValueError, match="same 2-D shape"):
        watershed(image, markers[:3])
