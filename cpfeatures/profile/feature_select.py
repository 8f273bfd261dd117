"""feature_select: drop uninformative, redundant, incomplete and blocklisted features.

The operations and their rules are pycytominer's, so the same features are kept;
they run in the order given, each on the features the previous ones kept.

- ``variance_threshold``: population variance ``<= min_variance`` (pycytominer >= 1.2).
- ``frequency_threshold``: the ratio of the second most common value's count to
  the most common one's ``< freq_cut`` (0 for a constant feature), or fewer than
  ``unique_cut`` x rows distinct values. This is what CPJUMP1's recipe (written
  for pycytominer < 1.2) calls ``variance_threshold``.
- ``correlation_threshold``: for every pair of features with Pearson correlation
  ``> corr_threshold``, drop the one whose total absolute correlation with all
  features is larger; pairs that tie (``|r| = 1``) are decided as pycytominer's
  arithmetic decides them, to the bit, so the kept set is pycytominer's.
- ``drop_na_columns``: more than ``na_cutoff`` of the rows are NaN.
- ``blocklist``: names in the blocklist (default: :func:`default_blocklist`).
- ``drop_outliers``: the largest absolute value exceeds ``outlier_cutoff``.

The work is vectorized: one hash-table count per column for the frequencies (numba), one
correlation matrix for the correlations and array lookups for the pairs, where
pycytominer applies Python functions per column and per correlated pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ._frames import feature_array, infer_features, load_profiles, select_rows
from ._value_counts import value_count_stats
from .blocklist import default_blocklist

__all__ = ["feature_select", "OPERATIONS", "CPJUMP1_OPERATIONS"]

OPERATIONS = ("variance_threshold", "frequency_threshold", "correlation_threshold", "drop_na_columns",
              "blocklist", "drop_outliers")
#: CPJUMP1's feature-selection recipe in today's pycytominer names.
CPJUMP1_OPERATIONS = ("frequency_threshold", "correlation_threshold", "drop_na_columns", "blocklist")


def _frequency(x: np.ndarray, freq_cut: float, unique_cut: float) -> np.ndarray:
    first, second, distinct = value_count_stats(np.asfortranarray(x))
    ratio = np.where(distinct >= 2, second / np.maximum(first, 1), 0.0)
    return (ratio < freq_cut) | (distinct / x.shape[0] < unique_cut)


def _corrcoef(xt: np.ndarray, owned: bool) -> np.ndarray:
    """``np.corrcoef(xt)`` (rows are variables) to the bit, centring ``xt`` in place when ``owned``.

    np.corrcoef centres a copy of its input; when the caller's matrix is a copy already (the
    features the previous operations kept), centring it in place saves a batch matrix of memory.
    The steps are np.cov's and np.corrcoef's, in their order, so the bits are the same.
    """
    x = xt if owned else np.array(xt, ndmin=2, dtype=np.float64)
    x -= np.average(x, axis=1)[:, None]
    c = np.dot(x, x.T)  # A @ A.T: BLAS syrk, as in np.cov
    with np.errstate(divide="ignore", invalid="ignore"):
        c *= np.true_divide(1, x.shape[1] - 1)
        stddev = np.sqrt(np.diag(c))
        c /= stddev[:, None]
        c /= stddev[None, :]
    np.clip(c, -1, 1, out=c)
    return c


def _correlation(x: np.ndarray, threshold: float, owned: bool = False) -> np.ndarray:
    """Which features ``correlation_threshold`` drops, exactly as pycytominer decides, ties included.

    Of a pair with ``r > threshold`` the feature ranked later by total ``|r|`` goes. Pairs with
    ``|r| = 1`` (Cells and Cytoplasm bounding boxes, say) tie on their totals up to the last bits,
    so the ranking must be pycytominer's to the bit: the same correlation matrix (``np.corrcoef``,
    or pandas' pairwise-complete one when values are missing), the totals as pandas sums them
    (its column sums add each column pairwise, not row by row) and pandas' own sort (quicksort,
    whose order of equal totals is its own).
    """
    if np.isfinite(x).all():
        # pycytominer passes np.corrcoef a transposed frame, whose values are C-contiguous
        # (features x profiles): the same layout gives the same mean and BLAS summation order, so
        # the same bits (and it is twice as fast as a transposing copy)
        owned = owned and x.flags.f_contiguous
        corr = _corrcoef(np.asfortranarray(x).T, owned)  # owned: x is centred in place
    else:  # pairwise-complete correlations, as pandas (and so pycytominer) compute them
        corr = np.array(np.atleast_2d(pd.DataFrame(x).corr(method="pearson").to_numpy()))  # writable
    a, b = np.nonzero(corr > threshold)  # NaN compares False
    lower = a > b  # pycytominer's pairs come from the lower triangle: (pair_a, pair_b) with a > b
    a, b = a[lower], b[lower]
    np.abs(corr, out=corr)  # in place: the matrix is a quarter of a GB at 5,800 features
    order = pd.DataFrame(corr, copy=False).sum().sort_values().index.to_numpy()
    del corr
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    drop = np.zeros(len(order), bool)
    drop[np.where(rank[a] > rank[b], a, b)] = True
    return drop


def _variance(x: np.ndarray, min_variance: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            var = np.nanvar(x, axis=0)
            if min_variance == 0:
                var = np.fmin(var, np.nanmax(x, axis=0) - np.nanmin(x, axis=0))
    return ~(var > min_variance)


def _outliers(x: np.ndarray, cutoff: float) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.abs(np.nanmax(x, axis=0)) > cutoff) | (np.abs(np.nanmin(x, axis=0)) > cutoff)


def feature_select(profiles, operations=CPJUMP1_OPERATIONS, features="infer", samples: str = "all",
                   freq_cut: float = 0.05, unique_cut: float = 0.01, corr_threshold: float = 0.9,
                   na_cutoff: float = 0.05, min_variance: float = 1e-6, outlier_cutoff: float = 500.0,
                   blocklist=None, image_features: bool = False, return_excluded: bool = False):
    """Select features.

    Parameters
    ----------
    profiles : DataFrame or path
    operations : str or sequence of str
        From :data:`OPERATIONS`, applied in order. Default: CPJUMP1's recipe.
    features : "infer" or list of str
    samples : str
        ``"all"`` or a pandas query choosing the rows the statistics use.
    freq_cut, unique_cut : float
        ``frequency_threshold`` cut-offs, each in [0, 1].
    corr_threshold : float
        ``correlation_threshold`` cut-off in [0, 1].
    na_cutoff : float
        Largest allowed fraction of NaN rows (``drop_na_columns``), in [0, 1].
    min_variance : float
        ``variance_threshold`` cut-off, >= 0.
    outlier_cutoff : float
        ``drop_outliers`` cut-off on absolute values, >= 0.
    blocklist : list of str or path, optional
        Feature names to drop (a text file: one name per line, a ``blocklist``
        header line allowed); default :func:`default_blocklist`.
    image_features : bool
    return_excluded : bool
        Also return ``{operation: [dropped features]}``.

    Returns
    -------
    pandas.DataFrame or (DataFrame, dict)
        ``profiles`` without the excluded features (other columns untouched).

    Raises
    ------
    InputError
        An unknown operation; a numeric setting out of its range (pycytominer's: the cuts and
        thresholds in [0, 1], ``min_variance`` and ``outlier_cutoff`` >= 0) or not a number,
        whether or not its operation runs; a feature value that is not a number (``"None"``,
        ``"nan"`` and ``pd.NA`` are missing values); every feature removed.
    """
    profiles = load_profiles(profiles)
    ops = _check_operations(operations, freq_cut, unique_cut, na_cutoff, corr_threshold, min_variance,
                            outlier_cutoff)
    feats = infer_features(profiles, features, image_features)
    rows = select_rows(profiles, samples)
    x_all = feature_array(rows, feats, order="F")  # column statistics read contiguous columns
    keep, excluded = select_mask(x_all, feats, ops, freq_cut=freq_cut, unique_cut=unique_cut,
                                 corr_threshold=corr_threshold, na_cutoff=na_cutoff, min_variance=min_variance,
                                 outlier_cutoff=outlier_cutoff, blocklist=blocklist)
    dropped = {feats[i] for i in np.flatnonzero(~keep)}
    out = profiles[[c for c in profiles.columns if c not in dropped]]
    return (out, excluded) if return_excluded else out


def select_mask(x_all: np.ndarray, feats: list[str], ops, freq_cut: float = 0.05, unique_cut: float = 0.01,
                corr_threshold: float = 0.9, na_cutoff: float = 0.05, min_variance: float = 1e-6,
                outlier_cutoff: float = 500.0, blocklist=None) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The features :func:`feature_select` keeps, from a profiles x features matrix.

    The array form of :func:`feature_select` (same operations and arguments), for callers that
    hold the matrix already (:func:`~cpfeatures.profile.profile_plates` selects over a whole
    batch without building a frame of it). Give ``x_all`` in Fortran order: the statistics read
    whole columns, and the correlations are then computed exactly as pycytominer's are.

    Returns
    -------
    keep : ndarray of bool
        One per feature.
    excluded : dict
        ``{operation: [dropped features]}``.
    """
    ops = _check_operations(ops, freq_cut, unique_cut, na_cutoff, corr_threshold, min_variance, outlier_cutoff)
    keep = np.ones(len(feats), bool)
    excluded: dict[str, list[str]] = {}
    for op in ops:
        idx = np.flatnonzero(keep)
        if op == "blocklist":
            names = set(_read_blocklist(blocklist))
            drop = np.array([feats[i] in names for i in idx], bool)
        else:
            subset = len(idx) < len(feats)
            if subset:  # a Fortran-order copy of the kept columns, which the correlation may then centre
                x = np.empty((x_all.shape[0], len(idx)), order="F")
                np.take(x_all, idx, axis=1, out=x)
            else:
                x = x_all
            if op == "variance_threshold":
                drop = _variance(x, min_variance)
            elif op == "frequency_threshold":
                drop = _frequency(x, freq_cut, unique_cut)
            elif op == "correlation_threshold":
                drop = _correlation(x, corr_threshold, owned=subset) if len(idx) > 1 else \
                    np.zeros(len(idx), bool)
            elif op == "drop_na_columns":
                drop = np.isnan(x).sum(axis=0) / max(len(x), 1) > na_cutoff
            else:
                drop = _outliers(x, outlier_cutoff)
            del x
        excluded[op] = [feats[i] for i in idx[drop]]
        keep[idx[drop]] = False
    if not keep.any():
        raise InputError(f"feature selection ({', '.join(ops)}) removed every feature")
    return keep, excluded


def _check_operations(operations, freq_cut, unique_cut, na_cutoff, corr_threshold, min_variance=1e-6,
                      outlier_cutoff=500.0) -> list[str]:
    ops = [operations] if isinstance(operations, str) else list(operations)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise InputError(f"unknown feature_select operation(s) {unknown}; valid: {', '.join(OPERATIONS)}")
    check_settings(freq_cut=freq_cut, unique_cut=unique_cut, na_cutoff=na_cutoff, corr_threshold=corr_threshold,
                   min_variance=min_variance, outlier_cutoff=outlier_cutoff)
    return ops


#: The range of each numeric setting (pycytominer's): (low, high), both included; None: unbounded.
SETTING_RANGES = {"freq_cut": (0.0, 1.0), "unique_cut": (0.0, 1.0), "na_cutoff": (0.0, 1.0),
                  "corr_threshold": (0.0, 1.0), "min_variance": (0.0, None), "outlier_cutoff": (0.0, None)}


def check_settings(**settings) -> None:
    """Refuse a setting of :data:`SETTING_RANGES` that is not a number in its range (NaN included).

    Raises
    ------
    InputError
        Naming the setting, its range and the value given.
    """
    for name, value in settings.items():
        low, high = SETTING_RANGES[name]
        span = f"between {low:g} and {high:g}" if high is not None else f"a number >= {low:g}"
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if not number or not (low <= value and (high is None or value <= high)):  # NaN fails both
            raise InputError(f"feature_select {name} must be {span}, got {value!r}")


def _read_blocklist(blocklist) -> list[str]:
    if blocklist is None:
        return default_blocklist()
    if isinstance(blocklist, (list, tuple, set)):
        return list(blocklist)
    from pathlib import Path

    path = Path(blocklist)
    if not path.exists():
        raise InputError("blocklist file not found", path)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [n for n in names if n.lower() != "blocklist"]
