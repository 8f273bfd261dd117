"""Illumination functions against CellProfiler's definitions and its exported functions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skimage.filters
import skimage.transform

from cpfeatures import illum
from cpfeatures.errors import InputError


def test_apply_matches_cellprofiler_definition(cp_ref):
    raw, f = cp_ref.raw("D08", "Mito"), cp_ref.illum("Mito")
    # CellProfiler computes in float32: raw / 65535 / illum, clipped to [0, 1]
    want = np.clip((raw.astype(np.float32) / np.float32(65535)) / f.astype(np.float32), 0, 1)
    got = illum.apply(raw, f)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert illum.apply(raw).max() <= 1


def test_calculate_against_cellprofiler_functions(cp_ref):
    """CellProfiler used 10 sites, 3 of which are not shared: agreement is close, not exact."""
    for role, min_r in (("Mito", 0.97), ("Brightfield", 0.98)):
        ours = illum.calculate(cp_ref.raw(w, role) for w in cp_ref.wells)
        ref = cp_ref.illum(role)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > min_r
        assert ours.min() == pytest.approx(1.0, abs=1e-3)  # rescaled by the robust minimum, clipped below
        assert ours.max() == pytest.approx(ref.max(), rel=0.1)


@pytest.mark.parametrize("shape,factor", [((1080, 1080), 0.2), ((300, 330), 1 / 3), ((200, 200), 0.25), ((10, 15), 0.2),
                                          ((5, 5), 0.2),
                                          ((301, 299), 0.2)])
def test_downsample_is_cellprofilers_resize(cp_ref, shape, factor):
    # CellProfiler's Resize x0.2 is skimage.transform.resize(order=1, mode="symmetric") with its default
    # anti-aliasing; the shortcut for integer factors must give the same numbers, bit for bit
    raw = cp_ref.raw("M02", "Mito")[:shape[0], :shape[1]]
    data = raw.astype(np.float32) / np.float32(65535)
    new_shape = (int(np.round(shape[0] * factor)), int(np.round(shape[1] * factor)))
    want = skimage.transform.resize(data, new_shape, order=1, mode="symmetric")
    got = illum.downsample(raw, factor)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("radius", [1, 4, 9])
def test_disk_median_is_skimage_rank_median(cp_ref, radius):
    # CellProfiler's median filter is skimage's rank median over a disk (the in-image pixels at the
    # border, the upper median for an even count); ours must give the same image exactly
    rng = np.random.default_rng(radius)
    real = (illum.downsample(cp_ref.raw("D08", "Mito")) * 65535).astype(np.uint16)  # what finalize filters
    for image in (real, rng.integers(0, 6, (37, 50)).astype(np.uint16), np.full((9, 9), 3, np.uint16)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skimage: 16-bit rank filters are slow
            want = skimage.filters.median(image, illum.strel_disk(radius), behavior="rank")
        np.testing.assert_array_equal(illum.disk_median(image, radius), want)


def test_finalize_follows_cellprofiler_steps():
    rng = np.random.default_rng(0)
    small = rng.uniform(0.01, 0.05, (60, 60))
    got = illum.finalize(small, (300, 300), {"median_filter_size": 20})
    # independent re-statement of CorrectIlluminationCalculate + Resize
    med = skimage.filters.median((small * 65535).astype(np.uint16), illum.strel_disk(9), behavior="rank").astype(float)
    pos = np.sort(med[med > 0])
    rmin = pos[int(pos.size * 0.02)]
    want = skimage.transform.resize(np.maximum(med, rmin) / rmin, (300, 300), order=1, mode="symmetric")
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_calculate_streams_generators():
    def gen():
        for i in range(50):
            yield np.full((100, 100), 1000 + i, np.uint16)
    f = illum.calculate(gen())
    np.testing.assert_allclose(f, 1.0, atol=1e-6)  # flat field -> identity function


def test_background_matches_filtering_the_full_image(cp_ref):
    from centrosome.smooth import smooth_with_function_and_mask
    import scipy.ndimage as ndi

    image = illum.apply(cp_ref.raw("G21", "DNA"), cp_ref.illum("DNA"))[:540, :600]
    ours = illum.background(image, 30, 50)
    blocks = image.reshape(18, 30, 20, 30).min(axis=(1, 3))
    min_block = np.kron(blocks, np.ones((30, 30)))
    sigma = 50 / 2.35
    ref = smooth_with_function_and_mask(min_block, lambda x: ndi.gaussian_filter(x, sigma, mode="constant", cval=0),
                                        np.ones(image.shape, bool))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_bad_input():
    img = np.zeros((10, 10), np.uint16)
    with pytest.raises(InputError, match="shape"):
        illum.apply(img, np.ones((5, 5)))
    with pytest.raises(InputError, match="non-positive"):
        illum.apply(img, np.zeros((10, 10)))
    with pytest.raises(InputError, match="NaN"):
        illum.apply(np.full((10, 10), np.nan))
    with pytest.raises(InputError, match="no images"):
        illum.calculate([])
    with pytest.raises(InputError, match="differ in shape"):
        illum.calculate([np.zeros((4, 4)), np.zeros((5, 5))])
