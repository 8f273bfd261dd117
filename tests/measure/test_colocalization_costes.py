"""Costes' automatic threshold (MeasureColocalization's Correlation_Costes_) against its oracles.

CellProfiler's reference export has no Costes columns (CPJUMP1 turns it off), so the oracles are:

- a small port of CellProfiler 4.2.8's ``bisection_costes`` / ``linear_costes`` and of the Costes
  block of ``run_image_pair_objects`` (below), run on the real images. CellProfiler searches ONE
  pair of thresholds from the two whole images and applies it to every object;
- cp-measure 0.3's ``get_correlation_costes``, which searches thresholds within each object
  (our ``costes_scope="object"``), and its ``bisection_costes`` / ``linear_costes`` run on whole
  images (CellProfiler's thresholds, with cp-measure's float64 arithmetic).

The port states numpy 1.23's type rules explicitly (CellProfiler 4.2.8 ran numpy 1.23.5 and
scipy 1.9.3): a float32 array compared with a float scalar is compared in float32, and float32
scalar statistics combined with Python floats become float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage
from cp_measure.core.measurecolocalization import bisection_costes, get_correlation_costes, linear_costes

from cpfeatures.errors import InputError
from cpfeatures.measure import Objects
from cpfeatures.measure._colocalization import colocalization, costes_thresholds, measure_family

SCALE = 65535  # CellProfiler's Image.scale for CPJUMP1's 16-bit TIFFs


# --------------------------------------------------------------------------------------
# Port of CellProfiler 4.2.8 (cellprofiler/modules/measurecolocalization.py)
# --------------------------------------------------------------------------------------
def _f32(values, t):
    """The scalar as numpy 1.23 compares it with ``values`` (float32 arrays: in float32)."""
    return np.float32(t) if values.dtype == np.float32 else t


def _pearsonr_scipy19(x, y):
    """scipy 1.9.3's ``pearsonr(x, y)[0]``."""
    if len(x) < 2:
        raise ValueError("x and y must have length at least 2.")
    if (x == x[0]).all() or (y == y[0]).all():
        return np.nan  # ConstantInputWarning
    if len(x) == 2:
        return float(np.sign(float(x[1]) - float(x[0])) * np.sign(float(y[1]) - float(y[0])))
    xm = x.astype(np.float64) - x.mean(dtype=np.float64)
    ym = y.astype(np.float64) - y.mean(dtype=np.float64)
    return max(min(float(np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym))), 1.0), -1.0)


def _pairwise(a):
    """numpy's pairwise sum of a float32 vector (8 accumulators per block of <= 128)."""
    n = a.size
    if n < 8:
        res = a[0]
        for v in a[1:]:
            res = res + v
        return res
    if n <= 128:
        r = a[:8].copy()
        i = 8
        while i < n - n % 8:
            r += a[i:i + 8]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for v in a[i:]:
            res = res + v
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a[:n2]) + _pairwise(a[n2:])


def _np123_sum(a):
    """numpy 1.23.5's ``a.sum()`` (contiguous float32): pairwise within buffers of 8192, buffers
    added in turn. A full buffer is a perfect tree of 64 blocks of 128, vectorized here."""
    k = a.size // 8192
    x = a[:k * 8192].reshape(k, 64, 16, 8)
    r = x[:, :, 0, :].copy()
    for j in range(1, 16):
        r += x[:, :, j, :]
    s = ((r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])) + ((r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7]))
    while s.shape[1] > 1:
        s = s[:, 0::2] + s[:, 1::2]
    acc = a.dtype.type(0)
    for v in s[:, 0]:
        acc = acc + v
    if a.size > k * 8192:
        acc = acc + _pairwise(a[k * 8192:])
    return acc


def _np123_mean_var(a):
    """numpy 1.23.5's ``np.mean(a)``, ``np.var(a, ddof=1)`` of a float32 vector."""
    mean = a.dtype.type(_np123_sum(a) / a.size)
    d = a - mean
    return mean, a.dtype.type(_np123_sum(d * d) / (a.size - 1))


def _cp_regression(fi, si):
    non_zero = (fi > 0) | (si > 0)
    xmean, xvar = _np123_mean_var(fi[non_zero])  # float32 scalars
    ymean, yvar = _np123_mean_var(si[non_zero])
    zvar = _np123_mean_var(fi[non_zero] + si[non_zero])[1]
    covar = 0.5 * np.float64(zvar - (xvar + yvar))  # numpy 1.23: float32 scalar * Python float -> float64
    num = np.float64(yvar - xvar) + np.sqrt(np.float64((yvar - xvar) * (yvar - xvar)) + 4 * (covar * covar))
    a = num / (2 * covar)
    return a, np.float64(ymean) - a * np.float64(xmean)


def cp_bisection_costes(fi, si, scale_max):
    a, b = _cp_regression(fi, si)
    left, right = 1, scale_max
    mid = ((right - left) // (6 / 5)) + left
    lastmid, valid = 0, 1
    while lastmid != mid:
        thr_fi_c = mid / scale_max
        thr_si_c = (a * thr_fi_c) + b
        combt = (fi < _f32(fi, thr_fi_c)) | (si < _f32(si, thr_si_c))
        if np.count_nonzero(combt) <= 2:
            left = mid - 1
        else:
            try:
                cost = _pearsonr_scipy19(fi[combt], si[combt])
                if cost < 0:
                    left = mid - 1
                elif cost >= 0:
                    right = mid + 1
                    valid = mid
            except ValueError:
                left = mid - 1
        lastmid = mid
        mid = ((right - left) // (6 / 5) if right - left > 6 else (right - left) // 2) + left
    thr_fi_c = (valid - 1) / scale_max
    return thr_fi_c, (a * thr_fi_c) + b


def cp_linear_costes(fi, si, scale_max, accurate):
    i_step = 1 / scale_max
    a, b = _cp_regression(fi, si)
    i = i_step * ((float(max(fi.max(), si.max())) // i_step) + 1)
    num_true = None
    thr_fi_c, thr_si_c = i, (a * i) + b
    while i > fi.max() and (a * i) + b > si.max():
        i -= i_step
    while i > i_step:
        thr_fi_c, thr_si_c = i, (a * i) + b
        combt = (fi < _f32(fi, thr_fi_c)) | (si < _f32(si, thr_si_c))
        try:
            if (positives := np.count_nonzero(combt)) != num_true:
                cost = _pearsonr_scipy19(fi[combt], si[combt])
                num_true = positives
            if cost <= 0:
                break
            elif accurate or i < i_step * 10:
                i -= i_step
            elif cost > 0.45:
                i -= i_step * 10
            elif cost > 0.35:
                i -= i_step * 5
            elif cost > 0.25:
                i -= i_step * 2
            else:
                i -= i_step
        except ValueError:
            break
    return thr_fi_c, thr_si_c


def cp_objects_costes(labels, image1, image2, thr_fi_c, thr_si_c):
    """The Costes block of ``run_image_pair_objects`` (thresholds from the whole images)."""
    mask = labels > 0
    first, second, lab = image1[mask], image2[mask], labels[mask]
    lrange = np.arange(labels.max(), dtype=np.int32) + 1
    fi_above = first > _f32(first, thr_fi_c)
    si_above = second > _f32(second, thr_si_c)
    both = fi_above & si_above
    sel1, sel2 = first >= _f32(first, thr_fi_c), second >= _f32(second, thr_si_c)
    tot1 = scipy.ndimage.sum(first[sel1], lab[sel1], lrange) if fi_above.any() else np.zeros(len(lrange))
    tot2 = scipy.ndimage.sum(second[sel2], lab[sel2], lrange) if si_above.any() else np.zeros(len(lrange))
    if not both.any():
        return np.zeros(len(lrange)), np.zeros(len(lrange))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.array(scipy.ndimage.sum(first[both], lab[both], lrange)) / np.array(tot1),
                np.array(scipy.ndimage.sum(second[both], lab[both], lrange)) / np.array(tot2))


def _cp_measure(a, b, labels, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cp-measure warns for every NaN object
        out = get_correlation_costes(a, b, labels, fast_costes=method.capitalize(), scale_max=SCALE)
    return np.asarray(out["Correlation_Costes_1"]), np.asarray(out["Correlation_Costes_2"])


# --------------------------------------------------------------------------------------
# CellProfiler's definition (costes_scope="image", the default)
# --------------------------------------------------------------------------------------
#: Thresholds that CellProfiler 4.2.8's own ``bisection_costes`` / ``linear_costes`` (the module's
#: source, run with numpy 1.23.5 and scipy 1.9.3 as in the reference run's pip_freeze.txt) returned
#: for whole G21 images, scale 65535.
CELLPROFILER_THRESHOLDS = {
    ("AGP", "Mito", "faster"): (0.0042725261310749985, 0.009404864052798554),
    ("DNA", "ER", "faster"): (1.5259021896696422e-05, 0.0011654075052955463),
    ("AGP", "Mito", "fast"): (0.004272526131076759, 0.009404864052799188),  # CellProfiler: 71 CPU-s
    ("AGP", "Mito", "accurate"): (0.004272526131076759, 0.009404864052799188),  # 216 CPU-s
}


@pytest.mark.parametrize("compartment, first, second", [("Cells", "AGP", "Mito"), ("Nuclei", "DNA", "ER")])
def test_faster_equals_cellprofiler(cp_ref, compartment, first, second):
    labels = cp_ref.labels("G21")[compartment]
    a, b = cp_ref.corrected("G21", first), cp_ref.corrected("G21", second)
    expected_thr = CELLPROFILER_THRESHOLDS[first, second, "faster"]
    assert costes_thresholds(a, b, "faster", SCALE) == expected_thr
    ours = colocalization(labels, a, b, costes=True)  # defaults: Faster, whole-image thresholds
    c1, c2 = cp_objects_costes(labels, a, b, *expected_thr)
    np.testing.assert_array_equal(ours["Correlation_Costes_1"], c1)
    np.testing.assert_array_equal(ours["Correlation_Costes_2"], c2)
    assert np.isfinite(c1).all() and 0 < c1.min() and c1.max() <= 1


@pytest.mark.parametrize("method", ["fast", "accurate"])
def test_linear_equals_cellprofiler(cp_ref, method):
    labels = cp_ref.labels("G21")["Cytoplasm"]
    a, b = cp_ref.corrected("G21", "AGP"), cp_ref.corrected("G21", "Mito")
    expected_thr = CELLPROFILER_THRESHOLDS["AGP", "Mito", method]
    assert costes_thresholds(a, b, method) == expected_thr
    ours = colocalization(labels, a, b, costes=True, costes_method=method)
    c1, c2 = cp_objects_costes(labels, a, b, *expected_thr)
    np.testing.assert_array_equal(ours["Correlation_Costes_1"], c1)
    np.testing.assert_array_equal(ours["Correlation_Costes_2"], c2)


def test_image_thresholds_equal_port_and_cp_measure_search(cp_ref):
    """On a 400 x 400 crop: the port's bisection, and cp-measure's own bisection. cp-measure's
    regression is float64, CellProfiler's statistics float32 (~1e-7 relative, amplified by the
    covariance's cancellation), so the second threshold agrees to ~1e-5 only."""
    a, b = cp_ref.corrected("G21", "AGP")[:400, :400], cp_ref.corrected("G21", "Mito")[:400, :400]
    ours = costes_thresholds(a, b)
    assert ours == cp_bisection_costes(a.ravel(), b.ravel(), SCALE)
    peer = bisection_costes(None, None, a.ravel().astype(np.float64), b.ravel().astype(np.float64), SCALE)
    assert ours[0] == peer[0]
    assert ours[1] == pytest.approx(peer[1], rel=1e-5)


@pytest.mark.parametrize("method", ["accurate", "fast"])
@pytest.mark.parametrize("first, second, rows, cols", [("AGP", "Mito", slice(300, 400), slice(300, 400)),
                                                       ("DNA", "ER", slice(500, 580), slice(480, 600))])
def test_linear_equals_cellprofiler_port_and_cp_measure(cp_ref, method, first, second, rows, cols):
    """Linear searches on real image crops (the port is too slow on whole images for a unit test)."""
    a, b = cp_ref.corrected("G21", first)[rows, cols], cp_ref.corrected("G21", second)[rows, cols]
    labels = cp_ref.labels("G21")["Cells"][rows, cols]
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)
    expected_thr = cp_linear_costes(a.ravel(), b.ravel(), SCALE, accurate=method == "accurate")
    assert costes_thresholds(a, b, method) == expected_thr
    peer = linear_costes(None, None, a.ravel().astype(np.float64), b.ravel().astype(np.float64), SCALE,
                         method.capitalize())
    assert peer[0] == expected_thr[0] and peer[1] == pytest.approx(expected_thr[1], rel=1e-5)
    ours = colocalization(labels, a, b, costes=True, costes_method=method)
    c1, c2 = cp_objects_costes(labels, a, b, *expected_thr)
    np.testing.assert_array_equal(ours["Correlation_Costes_1"], c1)
    np.testing.assert_array_equal(ours["Correlation_Costes_2"], c2)


@pytest.mark.parametrize("method", ["faster", "fast", "accurate"])
@pytest.mark.parametrize("seed, slope", [(0, 1.0), (1, -0.8), (2, 0.0)])
def test_synthetic_equals_port(method, seed, slope):
    """Correlated, anti-correlated (regression slope < 0) and independent 8-bit images, a label gap,
    a 1-pixel object, scale 255."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (40, 50))
    a = (base / 255).astype(np.float32)
    other = np.clip(np.round(slope * base + 60 + rng.normal(0, 25, base.shape)), 0, 255) if slope else \
        rng.integers(0, 256, base.shape)
    b = (other / 255).astype(np.float32)
    labels = np.zeros(base.shape, np.int32)
    labels[2:15, 3:20], labels[20:38, 5:25], labels[5:30, 30:48], labels[35, 40] = 1, 2, 4, 5  # 3 absent
    accurate = method == "accurate"
    with np.errstate(invalid="ignore", divide="ignore"):
        thr = cp_bisection_costes(a.ravel(), b.ravel(), 255) if method == "faster" else \
            cp_linear_costes(a.ravel(), b.ravel(), 255, accurate)
        c1, c2 = cp_objects_costes(labels, a, b, *thr)
    assert costes_thresholds(a, b, method, 255) == thr
    ours = colocalization(labels, a, b, costes=True, costes_method=method, costes_scale=255)
    c1[2] = c2[2] = np.nan  # an absent label is NaN for us (CellProfiler's labels have no gaps)
    np.testing.assert_array_equal(ours["Correlation_Costes_1"], c1)
    np.testing.assert_array_equal(ours["Correlation_Costes_2"], c2)


def test_no_pixel_above_both_gives_zero():
    """CellProfiler: every object is 0 (not NaN) when no object pixel exceeds both thresholds."""
    rng = np.random.default_rng(3)
    a = rng.random((30, 30)).astype(np.float32)
    b = a.copy()
    labels = np.zeros((30, 30), np.int32)
    labels[:3, :3] = 1
    a[:3, :3] = 0  # the object is dark in image 1, the rest of the image sets high thresholds
    thr = costes_thresholds(a, b)
    assert thr == cp_bisection_costes(a.ravel(), b.ravel(), SCALE)
    out = colocalization(labels, a, b, costes=True)
    c1, c2 = cp_objects_costes(labels, a, b, *thr)
    assert c1[0] == 0 and c2[0] == 0
    np.testing.assert_array_equal(out["Correlation_Costes_1"], c1)
    np.testing.assert_array_equal(out["Correlation_Costes_2"], c2)


# --------------------------------------------------------------------------------------
# cp-measure's per-object definition (costes_scope="object")
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("compartment, first, second, method, keep", [
    ("Cells", "AGP", "Mito", "faster", None),
    ("Nuclei", "DNA", "ER", "faster", None),
    ("Nuclei", "DNA", "ER", "accurate", None),
    ("Cells", "AGP", "Mito", "accurate", 2),  # cp-measure needs ~0.7 s per cell here
    ("Cells", "AGP", "Mito", "fast", 1),
])
def test_object_scope_equals_cp_measure(cp_ref, compartment, first, second, method, keep):
    labels = cp_ref.labels("G21")[compartment]
    if keep:
        labels = np.where(labels <= keep, labels, 0)
    a, b = cp_ref.corrected("G21", first), cp_ref.corrected("G21", second)
    p1, p2 = _cp_measure(a, b, labels, method)
    ours = colocalization(labels, a, b, costes=True, costes_method=method, costes_scope="object")
    np.testing.assert_allclose(ours["Correlation_Costes_1"], p1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours["Correlation_Costes_2"], p2, rtol=1e-12, atol=0)
    assert np.isfinite(p1).any()


def test_object_scope_undefined_cases_match_cp_measure():
    """cp-measure's NaN guards: objects under 3 pixels, constant objects, anti-correlated objects."""
    rng = np.random.default_rng(4)
    a = rng.random((30, 40))
    b = np.clip(0.6 * a + 0.4 * rng.random((30, 40)), 0, 1)
    labels = np.zeros(a.shape, np.int32)
    labels[1:10, 1:12], labels[12:14, 1] = 1, 2  # 2 pixels
    labels[15:25, 1:10] = 3
    a[15:25, 1:10] = 0.5  # constant in image 1
    labels[2:20, 15:35] = 4
    b[2:20, 15:35] = 1 - a[2:20, 15:35]  # anti-correlated
    labels[22:29, 20:38] = 5
    for method in ("faster", "accurate", "fast"):
        p1, p2 = _cp_measure(a, b, labels, method)
        ours = colocalization(labels, a, b, costes=True, costes_method=method, costes_scope="object")
        np.testing.assert_allclose(ours["Correlation_Costes_1"], p1, rtol=1e-12, err_msg=method)
        np.testing.assert_allclose(ours["Correlation_Costes_2"], p2, rtol=1e-12, err_msg=method)
        assert np.isnan(p1[[1, 2]]).all() and np.isfinite(p1[[0, 4]]).all()


# --------------------------------------------------------------------------------------
# measure_family
# --------------------------------------------------------------------------------------
def test_measure_family_columns_and_shared_thresholds(cp_ref):
    labels = cp_ref.labels("G21")
    images = {r: cp_ref.corrected("G21", r) for r in ("Mito", "DNA", "ER")}
    assert not any("Costes" in k for k in measure_family(Objects(labels["Nuclei"]), images))  # off by default
    cache: dict = {}
    settings = {"costes": True}
    nuclei = measure_family(Objects(labels["Nuclei"]), images, settings, cache)
    cells = measure_family(Objects(labels["Cells"]), images, settings, cache)
    # CellProfiler's names: pairs of sorted names, Costes_<First>_<Second> is the first image's
    costes = sorted(k for k in nuclei if "Costes" in k)
    assert costes == ["Correlation_Costes_DNA_ER", "Correlation_Costes_DNA_Mito", "Correlation_Costes_ER_DNA",
                      "Correlation_Costes_ER_Mito", "Correlation_Costes_Mito_DNA", "Correlation_Costes_Mito_ER"]
    assert sum(1 for k in cache if k[0] == "colocalization-costes") == 3  # one search per pair, both sets
    for objects, got in (("Nuclei", nuclei), ("Cells", cells)):
        one = colocalization(labels[objects], images["ER"], images["Mito"], costes=True)
        np.testing.assert_array_equal(got["Correlation_Costes_ER_Mito"], one["Correlation_Costes_1"])
        np.testing.assert_array_equal(got["Correlation_Costes_Mito_ER"], one["Correlation_Costes_2"])
        np.testing.assert_array_equal(got["Correlation_Correlation_ER_Mito"], one["Correlation_Correlation"])
    with pytest.raises(InputError, match="costes_method. must be one of faster, fast, accurate"):
        measure_family(Objects(labels["Nuclei"]), images, {"costes": True, "costes_method": "quick"})
    with pytest.raises(InputError, match="costes_mode"):
        measure_family(Objects(labels["Nuclei"]), images, {"costes": True, "costes_mode": "fast"})
    empty = measure_family(Objects(np.zeros((8, 8), np.int32)), {"A": np.zeros((8, 8)), "B": np.ones((8, 8))},
                           settings)
    assert all(len(v) == 0 for v in empty.values()) and "Correlation_Costes_A_B" in empty
