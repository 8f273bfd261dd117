"""Image quality against CellProfiler's definitions (written out here), centrosome and numpy.

CPJUMP1 disables MeasureImageQuality, so CellProfiler's reference Image table has
no ``ImageQuality_*`` column to compare with (checked below); the oracles are a
literal transcription of CellProfiler 4.2.8's formulas with scipy.ndimage, and
centrosome's Haralick and radial power spectrum, on real CPJUMP1 images.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from cpfeatures.errors import InputError
from cpfeatures.measure._imagequality import (correlation, focus_score, image_quality, intensity_statistics,
                                             local_focus_score, measure_image_family, power_log_log_slope,
                                             saturation)

SCALES = (5, 10, 20, 50)


@pytest.fixture(scope="module")
def images(cp_ref):
    """Real images as CellProfiler's module 11 would see them (raw / 65535, float32) and corrected."""
    out = {}
    for role in ("DNA", "Brightfield"):
        out[f"Orig{role}"] = cp_ref.raw("M02", role).astype(np.float32) / np.float32(65535)
        out[role] = cp_ref.corrected("M02", role)
    return out


# --- reference formulas (MeasureImageQuality.calculate_* with no mask) -------------------------
def ref_focus(pixels):
    mean = np.mean(pixels)
    return np.sum((pixels - mean) ** 2) / (np.prod(pixels.shape) * mean) if mean > 0 else 0.0


def ref_local_focus(pixels, scale):
    shape = pixels.shape
    i, j = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    m, n = (np.array(shape) + scale - 1) // scale
    i = (i * float(m) / float(shape[0])).astype(int)
    j = (j * float(n) / float(shape[1])).astype(int)
    grid = i * n + j + 1
    grid_range = np.arange(0, m * n + 1, dtype=np.int32)
    with np.errstate(invalid="ignore"):  # label 0 (masked pixels) is empty
        means = np.nan_to_num(np.asarray(ndi.mean(pixels, grid, grid_range), float))
    sq = (pixels - means[grid]) ** 2
    keep = (means != 0) & ~np.isnan(means)
    labels = grid_range[keep]
    sums = np.asarray(ndi.sum(sq, grid, labels))
    counts = np.asarray(ndi.sum(np.ones(shape), grid, labels))
    v = sums / (counts * means[keep])
    med = np.median(v)
    return np.var(v) / med if np.isfinite(med) and med > 0 else 0.0


class _WithPtp(np.ndarray):
    """centrosome 1.3.4's rps calls ``ndarray.ptp``, removed in numpy 2."""

    def ptp(self):
        return np.ptp(np.asarray(self))


def ref_slope(pixels):
    from centrosome.radial_power_spectrum import rps

    radii, magnitude, power = rps(pixels.view(_WithPtp))
    radii, magnitude, power = (np.asarray(a) for a in (radii, magnitude, power))
    valid = magnitude > 0
    radii, power = radii[valid].reshape(-1, 1), power[valid].reshape(-1, 1)
    idx = np.isfinite(np.log(power))
    a = np.hstack((np.log(radii)[idx][:, None], np.ones(radii.shape)[idx][:, None]))
    return np.linalg.lstsq(a, np.log(power)[idx][:, None], rcond=None)[0][0, 0]


def ref_correlation(pixels, scale):
    from centrosome.haralick import Haralick

    return float(Haralick(pixels, np.ones(pixels.shape, int), 0, scale).H3()[0])


# --- tests ---------------------------------------------------------------------------------------
def test_cellprofiler_reference_has_no_image_quality(cp_ref):
    assert not [c for c in cp_ref.table("Image").columns if c.startswith("ImageQuality_")]


def test_blur_equals_definitions(images):
    for name, img in images.items():
        np.testing.assert_allclose(focus_score(img), ref_focus(img), rtol=1e-6, err_msg=name)
        for s in SCALES:
            np.testing.assert_allclose(local_focus_score(img, s), ref_local_focus(img, s), rtol=1e-9,
                                       err_msg=f"{name} {s}")


def test_correlation_equals_centrosome_haralick(images):
    for name in ("OrigDNA", "Brightfield"):
        img = images[name]
        for s in SCALES:
            np.testing.assert_allclose(correlation(img, s), ref_correlation(img, s), rtol=1e-9,
                                       err_msg=f"{name} {s}")


def test_power_spectrum_slope_equals_centrosome(images):
    for name, img in images.items():
        # the reference runs in float64 (centrosome's median normalisation only moves the intercept)
        ours = power_log_log_slope(img.astype(np.float64))
        np.testing.assert_allclose(ours, ref_slope(img.astype(np.float64)), rtol=1e-9, err_msg=name)
        # float32, as CellProfiler's scipy.fftpack keeps single precision
        np.testing.assert_allclose(power_log_log_slope(img), ref_slope(img), rtol=1e-6, err_msg=name)


def test_saturation_and_intensity_equal_numpy(images):
    for name, img in images.items():
        sat = saturation(img)
        assert sat["PercentMaximal"] == 100.0 * np.sum(img == np.max(img)) / img.size
        assert sat["PercentMinimal"] == 100.0 * np.sum(img == np.min(img)) / img.size
        st = intensity_statistics(img)
        med = np.median(img)
        # the mean is float64, as CellProfiler's float32 sum over a Python float under its numpy 1.23
        expected = {"TotalArea": img.size, "TotalIntensity": np.sum(img),
                    "MeanIntensity": float(np.sum(img)) / img.size,
                    "MedianIntensity": med, "StdIntensity": np.std(img),
                    "MADIntensity": np.median(np.abs(img - med)), "MinIntensity": img.min(),
                    "MaxIntensity": img.max()}
        for key, value in expected.items():
            assert st[key] == pytest.approx(float(value), rel=1e-12), f"{name} {key}"


def test_family_names_follow_cellprofiler(images):
    out = measure_image_family({"DNA": images["DNA"]}, {"scalings": {"DNA": 65535.0}})
    expected = {"ImageQuality_Scaling_DNA", "ImageQuality_FocusScore_DNA", "ImageQuality_PowerLogLogSlope_DNA",
                "ImageQuality_PercentMaximal_DNA", "ImageQuality_PercentMinimal_DNA", "ImageQuality_TotalArea_DNA",
                "ImageQuality_TotalIntensity_DNA", "ImageQuality_MeanIntensity_DNA",
                "ImageQuality_MedianIntensity_DNA", "ImageQuality_StdIntensity_DNA", "ImageQuality_MADIntensity_DNA",
                "ImageQuality_MaxIntensity_DNA", "ImageQuality_MinIntensity_DNA"}
    expected |= {f"ImageQuality_{f}_DNA_{s}" for f in ("LocalFocusScore", "Correlation") for s in SCALES}
    assert set(out) == expected
    assert out["ImageQuality_Scaling_DNA"] == 65535.0
    assert out["ImageQuality_Correlation_DNA_20"] == correlation(images["DNA"], 20)
    derived = measure_image_family({"DNA": images["DNA"]}, {"scales": (20,), "intensity": False})
    assert np.isnan(derived["ImageQuality_Scaling_DNA"]) and "ImageQuality_TotalArea_DNA" not in derived


def test_edge_cases():
    flat = image_quality(np.full((64, 64), 0.25), scales=(5, 20))
    assert flat["ImageQuality_Correlation_5"] == 0.0 and flat["ImageQuality_PowerLogLogSlope"] == 0.0
    assert flat["ImageQuality_FocusScore"] == 0.0 and flat["ImageQuality_LocalFocusScore_20"] == 0.0
    assert flat["ImageQuality_PercentMaximal"] == 100.0
    black = image_quality(np.zeros((30, 30), np.float32), scales=(10,))
    assert black["ImageQuality_FocusScore"] == 0.0 and black["ImageQuality_LocalFocusScore_10"] == 0.0
    rng = np.random.default_rng(1)
    small = rng.random((37, 23)).astype(np.float32)  # scales that do not divide the shape
    for s in (5, 10, 50):
        assert local_focus_score(small, s) == pytest.approx(ref_local_focus(small, s), rel=1e-9)
        assert correlation(small, s) == pytest.approx(ref_correlation(small, s) if s < 23 else 0.0, rel=1e-9)
    with pytest.raises(InputError):
        image_quality(np.full((8, 8), np.nan))
    with pytest.raises(InputError):
        local_focus_score(small, 0)


# --- degenerate and random images (cases.py) ----------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureImageQuality, scales 5-50 (recorded by
    tools/cellprofiler_cases.py): constant, zero and saturated images. Tolerance: 1e-12 relative
    (Correlation and the power spectrum slope are sums in another order), ``Scaling`` aside (NaN for
    a float image here; CellProfiler reports the scale it loaded with)."""
    cases.assert_equals_cellprofiler(name, "imagequality", 1e-12, 0.0, kind="image", skip=("Scaling",))
