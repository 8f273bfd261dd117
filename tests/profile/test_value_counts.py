"""The frequency filter's hash-table counts against pandas' value_counts (NaN skipped, -0.0 == 0.0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cpfeatures.profile._value_counts import value_count_stats


def test_counts_equal_pandas_value_counts():
    rng = np.random.default_rng(7)
    x = np.asfortranarray(rng.normal(size=(3001, 40)))
    x[:, :15] = np.round(x[:, :15] * rng.uniform(0.5, 4, 15))  # discrete features with ties
    x[:, 15] = -0.0
    x[::3, 16] = 0.0
    x[1::3, 16] = -0.0
    x[:, 17] = np.nan
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 18] = 7.0
    first, second, distinct = value_count_stats(x)
    for j in range(x.shape[1]):
        counts = pd.Series(x[:, j]).value_counts(dropna=True).to_numpy()
        top = np.concatenate([counts, [0, 0]])
        assert (first[j], second[j], distinct[j]) == (top[0], top[1], len(counts)), j
    # C order gives the same
    for a, b in zip(value_count_stats(np.ascontiguousarray(x)), (first, second, distinct)):
        np.testing.assert_array_equal(a, b)

