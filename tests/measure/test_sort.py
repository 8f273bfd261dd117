"""The radix sorts equal numpy's sorts, ties and signs included."""

import numpy as np
import pytest

from cpfeatures.measure._sort import argsort_float32, dense_rank_float32, sort_segments_float32


def _cases():
    rng = np.random.default_rng(7)
    yield "uniform", rng.random(50_000).astype(np.float32)
    # uint16 / 65535 as corrected images: many ties
    yield "ties", (rng.integers(0, 300, 40_000) / np.float32(65535)).astype(np.float32)
    yield "signs", np.concatenate([rng.normal(size=5_000), [0.0, -0.0, -0.0, 0.0, np.inf, -np.inf, 1e-40, -1e-40]]
                                  ).astype(np.float32)
    yield "constant", np.full(1_000, 0.25, np.float32)
    yield "one", np.array([0.5], np.float32)
    yield "empty", np.zeros(0, np.float32)


@pytest.mark.parametrize("name,values", list(_cases()), ids=[c[0] for c in _cases()])
def test_argsort_equals_numpy_stable(name, values):
    np.testing.assert_array_equal(argsort_float32(values), np.argsort(values, kind="stable"))


@pytest.mark.parametrize("name,values", list(_cases()), ids=[c[0] for c in _cases()])
def test_dense_rank_equals_numpy_unique(name, values):
    expected = np.unique(values, return_inverse=True)[1].ravel()
    np.testing.assert_array_equal(dense_rank_float32(values), expected)


def test_sort_segments_equals_per_segment_sort():
    rng = np.random.default_rng(3)
    sizes = np.array([0, 1, 5, 0, 3000, 17, 2])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    values = (rng.integers(0, 500, offsets[-1]) / np.float32(65535)).astype(np.float32)
    values[:4] = [-0.0, 0.0, -1.5, 2.0]  # signs and both zeros
    out = sort_segments_float32(values, offsets)
    for a, b in zip(offsets[:-1], offsets[1:]):
        np.testing.assert_array_equal(out[a:b], np.sort(values[a:b]))
    assert out.dtype == np.float32


def test_real_image_pixels(cp_ref):
    image = np.ascontiguousarray(cp_ref.corrected("D08", "ER")[:300, :300])
    assert image.dtype == np.float32
    np.testing.assert_array_equal(argsort_float32(image), np.argsort(image.ravel(), kind="stable"))
    np.testing.assert_array_equal(dense_rank_float32(image), np.unique(image, return_inverse=True)[1].ravel())
