"""The port of numpy 1.23's argsort against numpy 1.23.5's own output (CellProfiler 4.2.8's numpy)."""

from __future__ import annotations

import hashlib

import numpy as np

from cpfeatures.measure._np123 import argsort_np123, introsort_np123


def test_ties_and_heapsort_fallback_as_numpy_1_23():
    """CellProfiler's centre ties come from numpy 1.23's argsort; values from numpy 1.23.5."""
    a = np.array([3, 1, 2, 0, 3, 3, 1, 2, 2, 0, 1, 3, 0, 2, 1, 1, 3, 0, 2, 3, 1, 0, 2, 2, 3, 1, 0, 0, 3, 2, 1, 2,
                  0, 3, 1, 1, 2, 0, 3, 2], float)
    assert argsort_np123(a).tolist() == [
        27, 26, 3, 37, 32, 21, 9, 17, 12, 15, 25, 20, 34, 14, 30, 35, 10, 6, 1, 29, 18, 8, 7, 22, 23, 36, 2, 31,
        13, 39, 33, 0, 24, 38, 16, 11, 5, 4, 28, 19]
    # Musser's median-of-3 killer drives the sort into its heapsort fallback
    n, k = 1000, 500
    killer = np.zeros(n, np.int64)
    for i in range(1, k + 1):
        if i % 2 == 1:
            killer[i - 1], killer[i] = i, k + i
        killer[k + i - 1] = 2 * i
    order = argsort_np123(killer.astype(float)).astype("<i8")
    assert hashlib.sha256(order.tobytes()).hexdigest() == (
        "cb8db9b46cfe8bd1fdec674656d45313c5e3eb313e95d8c3f08698bac1ac0297")


def test_nan_last_and_short_arrays_as_numpy_1_23():
    # np.argsort of this array under numpy 1.23.5 (CellProfiler 4.2.8's), which breaks ties
    # differently from a stable sort once the array is longer than 16
    v = np.array([0, 4, 1, 4, 4, 1, 1, np.nan, 3, 0, 1, 1, 2, 1, 0, 4, 4], float)
    numpy_1_23 = [0, 14, 9, 2, 13, 5, 6, 11, 10, 12, 8, 4, 3, 1, 15, 16, 7]
    np.testing.assert_array_equal(argsort_np123(v), numpy_1_23)
    rng = np.random.default_rng(0)
    for n in (0, 1, 5, 16, 17, 100, 3000):
        x = rng.integers(0, 7, n).astype(float)
        np.testing.assert_array_equal(x[argsort_np123(x)], np.sort(x))


def test_pruned_sort_places_targets_as_the_full_sort():
    # radial distribution only needs where the peak values land: pruned parts must not move them
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 400, 20_000).astype(np.uint16)
    targets = np.unique(rng.choice(keys, 30)).astype(np.float64)
    full = argsort_np123(keys.astype(np.float64))
    k, order = keys.copy(), np.arange(keys.size).astype(np.int32)
    introsort_np123(k, order, targets, True)
    at_target = np.isin(keys[full], targets)
    np.testing.assert_array_equal(order[at_target], full[at_target])
