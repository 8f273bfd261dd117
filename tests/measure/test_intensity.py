"""Intensity against CellProfiler 4.2.8's exported values and cp-measure (legacy quantiles)."""

from __future__ import annotations

import numpy as np
import pytest
from cp_measure.core.measureobjectintensity import get_intensity

from cpfeatures.measure import Objects, intensity
from cpfeatures.measure._intensity import FEATURES


@pytest.mark.parametrize("well", ["D08", "M02"])
@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_equals_cellprofiler_export(cp_ref, well, compartment):
    objects = Objects(cp_ref.labels(well)[compartment])
    table = cp_ref.objects_table(compartment, well)
    rows = table["ObjectNumber"].to_numpy() - 1
    for role in ("DNA", "Mito", "Brightfield"):
        ours = intensity(objects, cp_ref.corrected(well, role))
        for key in FEATURES:
            ref = table[f"{key}_{role}"].to_numpy()
            got = ours[key][rows]
            if key == "Location_MaxIntensity_Y" or key == "Location_MaxIntensity_X":
                # the first maximum in row-major order; float32 illumination rounding may tie
                assert np.mean(got == ref) > 0.99, key
                continue
            # CellProfiler's CSV keeps ~9 significant digits and its illumination function is float32
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-7, err_msg=f"{key}_{role}")


def test_against_cp_measure(cp_ref):
    labels = cp_ref.labels("N14")["Cells"]
    image = cp_ref.corrected("N14", "ER").astype(np.float64)  # both sides accumulate in float64
    ours = intensity(labels, image)
    peer = get_intensity(labels, image, legacy=True)
    for key in FEATURES:
        np.testing.assert_allclose(ours[key], peer[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_edge_cases():
    labels = np.zeros((12, 12), np.int32)
    labels[0, 0] = 1  # one pixel on the border
    labels[5:8, 5:8] = 4  # gap: ids 2, 3 absent
    image = np.linspace(0, 1, 144).reshape(12, 12)
    for dtype in (np.float32, np.float64):
        out = intensity(labels, image.astype(dtype))
        assert all(len(v) == 4 for v in out.values())
        assert np.isnan(out["Intensity_MeanIntensity"][1]) and np.isnan(out["Intensity_MeanIntensity"][2])
        assert out["Intensity_MeanIntensity"][0] == 0 and out["Intensity_MADIntensity"][0] == 0
        # CellProfiler's median of n values interpolates at position n/2 (4.5 for 9), not numpy's (n-1)/2
        v = np.sort(image[5:8, 5:8].astype(dtype).ravel())
        assert out["Intensity_MedianIntensity"][3] == pytest.approx((v[4] + v[5]) / 2)
        assert out["Location_MaxIntensity_X"][3] == 7 and out["Location_MaxIntensity_Y"][3] == 7
    empty = intensity(np.zeros((5, 5), int), np.zeros((5, 5)))
    assert all(len(v) == 0 for v in empty.values())
    const = intensity(labels, np.full((12, 12), 0.25))
    assert out["Intensity_StdIntensity"][3] > 0 and const["Intensity_StdIntensity"][3] == 0
    assert const["Intensity_MassDisplacement"][3] == pytest.approx(0)


def test_edge_is_skimage_inner_boundary(cp_ref):
    # CellProfiler's edge pixels: skimage.segmentation.find_boundaries(labels, mode="inner");
    # cells touch each other and the image border here
    import skimage.segmentation

    from cpfeatures.measure._intensity import _edge_positions

    labels = cp_ref.labels("M02")["Cells"]
    objects = Objects(labels)
    pos, _ = _edge_positions(objects)
    expected = np.flatnonzero(skimage.segmentation.find_boundaries(labels, mode="inner").ravel()[objects.order])
    np.testing.assert_array_equal(pos, expected)


def test_mad_is_interpolated_median_of_absolute_deviations():
    # the binary-search order statistics equal sorting |x - median| and interpolating as CellProfiler
    from cpfeatures.measure._intensity import _mad

    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 60, 300)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    values = (rng.integers(0, 25, offsets[-1]) / 24).astype(np.float32)  # many ties
    segments = [np.sort(values[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    medians = np.array([np.median(s) for s in segments]) + np.where(rng.random(sizes.size) < 0.3, 0.01, 0.0)
    got = _mad(np.concatenate(segments), offsets, medians)
    for k, (seg, m) in enumerate(zip(segments, medians)):
        dev = np.sort(np.abs(seg.astype(np.float64) - m))
        q = seg.size * 0.5
        qi, qf = int(np.floor(q)), q - np.floor(q)
        want = dev[qi] * (1 - qf) + dev[qi + 1] * qf if qi < seg.size - 1 else dev[qi]
        assert got[k] == pytest.approx(want, rel=1e-12, abs=1e-15), k


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureObjectIntensity (recorded by tools/cellprofiler_cases.py).
    Tolerance: none, bit for bit, including where the maximum is tied (saturated, constant and zero
    images: CellProfiler's ``maximum_position`` keeps the last tied pixel of numpy 1.23's argsort),
    ``Location_CenterMassIntensity_Z`` of a zero-intensity object (NaN) and the edge of an object
    that is the whole image (0). Absent labels (gaps) are NaN here, 0 in CellProfiler: not compared."""
    cases.assert_equals_cellprofiler(name, "intensity", 0.0, 0.0)


def test_tied_maximum_is_one_of_the_tied_pixels():
    """Whatever the tie rule, the location is a pixel of the object holding its maximum."""
    c = cases.case("all_one")
    labels = c["labels"]
    out = intensity(labels, c["image"])
    for lab in np.unique(labels[labels > 0]):
        y, x = int(out["Location_MaxIntensity_Y"][lab - 1]), int(out["Location_MaxIntensity_X"][lab - 1])
        assert labels[y, x] == lab
