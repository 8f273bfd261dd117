"""consensus: collapse replicate profiles into one signature per perturbation (median, mean or MODZ).

pycytominer 1.7.1's ``consensus``: the profiles are grouped by the replicate
columns (sorted, missing values as a group of their own) and each group becomes
one row holding those columns and the consensus features; the other metadata
columns are dropped (list them in ``replicate_columns`` to keep them).

- ``median`` / ``mean``: per-feature median or mean of the replicates, ignoring NaN.
- ``modz`` (moderated z-score, as cmapPy / the L1000 pipeline): each replicate's
  weight is its mean correlation with the other replicates of its group (Spearman
  by default, over the features; negative correlations count as 0), raised to at
  least ``modz_min_weight``, normalized to sum to 1 and rounded to
  ``modz_precision`` decimals; the consensus is the weighted sum of the
  replicates, NaN values skipped. A group of one replicate is that profile
  (its NaN become 0, as pycytominer's sum).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..errors import DegenerateResultWarning, InputError
from ._frames import feature_array, infer_features, load_profiles

__all__ = ["consensus", "CONSENSUS_OPERATIONS"]

CONSENSUS_OPERATIONS = ("median", "mean", "modz")
_CORRELATIONS = ("spearman", "pearson", "kendall")


def _correlation(x: np.ndarray, method: str) -> np.ndarray:
    """``k x k`` correlations between the rows of ``x`` (replicates) across its columns (features)."""
    if method == "kendall" or not np.isfinite(x).all():
        # pandas' pairwise-complete rule (each pair on the features both have), as pycytominer
        return pd.DataFrame(x.T).corr(method=method).to_numpy(copy=True)
    if method == "spearman":
        x = rankdata(x, axis=1)  # average ranks for ties, as pandas
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.corrcoef(x)  # a constant replicate has NaN correlations, as pandas


def _modz_weights(x: np.ndarray, method: str, min_weight: float, precision: int) -> np.ndarray:
    """MODZ weights of the ``k >= 2`` replicates (rows) of ``x``."""
    cor = _correlation(x, method)
    np.fill_diagonal(cor, np.nan)
    cor = np.where(cor < 0, 0.0, cor)  # NaN (no overlap, constant replicate) stays NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate without any correlation: NaN weight
        raw = np.nanmean(cor, axis=1)
    raw = np.where(raw < min_weight, min_weight, raw)
    total = np.nansum(raw)
    weights = np.full(len(raw), 1.0 / len(raw)) if total == 0 else raw / total
    return np.round(weights, precision)


def consensus(profiles, replicate_columns=("Metadata_Plate", "Metadata_Well"), operation: str = "median",
              features="infer", modz_method: str = "spearman", modz_min_weight: float = 0.01,
              modz_precision: int = 4) -> pd.DataFrame:
    """One consensus profile per group of replicates, as pycytominer.

    Parameters
    ----------
    profiles : DataFrame or path
    replicate_columns : str or list of str
        The columns whose values identify a group of replicates, e.g.
        ``["Metadata_broad_sample", "Metadata_mmoles_per_liter"]``.
    operation : {"median", "mean", "modz"}
    features : "infer" or list of str
    modz_method : {"spearman", "pearson", "kendall"}
        The correlation between replicates that weighs them under MODZ.
    modz_min_weight : float
        The least weight a replicate gets (before normalizing).
    modz_precision : int
        The decimals MODZ weights are rounded to (pycytominer calls them
        significant digits; they are decimals).

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by the replicate columns (a missing value is a
        group, last): the replicate columns, then the consensus features (float64).

    Raises
    ------
    InputError
        An unknown operation or correlation, a replicate column missing or among the features.

    Warns
    -----
    DegenerateResultWarning
        Under MODZ, groups of a single replicate: their consensus is that profile
        unweighted. The message counts them and names a few.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Metadata_Plate": "X", "Metadata_Well": ["a"] * 3 + ["b"] * 3,
    ...                    "Cells_x": [0.1, 0.3, 0.8, 0.4, 0.2, -0.5],
    ...                    "Nuclei_y": [0.5, 0.3, 0.1, -0.8, 1.2, -0.5],
    ...                    "Nuclei_z": [1.0, 2.0, 3.0, 3.0, 2.0, 1.0]})
    >>> consensus(df)
      Metadata_Plate Metadata_Well  Cells_x  Nuclei_y  Nuclei_z
    0              X             a      0.3       0.3       2.0
    1              X             b      0.2      -0.5       2.0
    >>> consensus(df, operation="modz").round(4)
      Metadata_Plate Metadata_Well  Cells_x  Nuclei_y  Nuclei_z
    0              X             a   0.3918    0.3000     2.000
    1              X             b  -0.0104   -0.0716     1.918
    """
    profiles = load_profiles(profiles)
    operation = str(operation).lower()
    if operation not in CONSENSUS_OPERATIONS:
        raise InputError(f"consensus operation must be one of {CONSENSUS_OPERATIONS}, got {operation!r}")
    keys = [replicate_columns] if isinstance(replicate_columns, str) else list(replicate_columns)
    if not keys:
        raise InputError("consensus needs at least one replicate column")
    missing = [c for c in keys if c not in profiles.columns]
    if missing:
        raise InputError(f"consensus replicate column(s) not in the table: {missing}")
    feats = infer_features(profiles, features)
    clash = [c for c in keys if c in feats]
    if clash:
        raise InputError(f"consensus replicate column(s) are also features: {clash}")
    method = str(modz_method).lower()
    if operation == "modz" and method not in _CORRELATIONS:
        raise InputError(f"consensus modz_method must be one of {_CORRELATIONS}, got {modz_method!r}")

    codes = profiles.groupby(keys, dropna=False, sort=True, observed=True).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    counts = np.diff(np.append(starts, len(codes)))
    x = feature_array(profiles, feats)
    if operation in ("median", "mean"):
        grouped = pd.DataFrame(x, columns=feats).groupby(codes, sort=True)
        values = (grouped.median() if operation == "median" else grouped.mean()).to_numpy()
    else:
        x = x[order]
        values = np.where(np.isnan(x[starts]), 0.0, x[starts])  # a lone replicate: itself, NaN as 0
        for g in np.flatnonzero(counts > 1):
            block = x[starts[g]:starts[g] + counts[g]]
            w = _modz_weights(block, method, float(modz_min_weight), int(modz_precision))
            values[g] = np.nansum(w[:, None] * block, axis=0)
        lone = np.flatnonzero(counts == 1)
        if len(lone):
            names = [", ".join(map(str, profiles[keys].iloc[order[starts[g]]])) for g in lone[:3]]
            warnings.warn(f"consensus modz: {len(lone)} of {n_groups} groups of {keys} have a single replicate, so "
                          f"their consensus is that profile unweighted (NaN as 0): e.g. {'; '.join(names)}",
                          DegenerateResultWarning, stacklevel=2)
    first = order[starts] if n_groups else np.array([], dtype=int)
    result = pd.concat([profiles[keys].iloc[first].reset_index(drop=True),
                        pd.DataFrame(values, columns=feats)], axis=1)
    return result
