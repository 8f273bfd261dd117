"""The CPJUMP1 paper's own Percent Replicating / Matching arithmetic (``null="cpjump1"``).

Chandrasekaran et al.'s benchmark notebooks (jump-cellpainting/2021_Chandrasekaran_submitted,
``benchmark/old_notebooks``) define the scores with Python's :mod:`random`:

- a perturbation's replicate correlation is the ``np.nanmedian`` of ``np.corrcoef`` of its
  profiles with the diagonal set to NaN (NaN for a single profile, which still counts, as
  not above the threshold, in the percentage);
- the replicating null draws ``random.choices`` of ``n_replicates`` row positions (with
  replacement) and keeps a draw only when its rows are of ``n_replicates`` distinct
  perturbations, until ``n_samples`` are kept (10,000 in the paper);
- matching: for each annotation shared by the two modalities (``np.intersect1d``), each
  perturbation of one against each of the other, the ``np.nanmedian`` of their cross
  correlations; the null draws ``random.choices(shared annotations, k=2)`` and adds every
  such pair of the first annotation's modality-1 and the second's modality-2 perturbations,
  until it has ``n_samples`` values or more (5,000 in the paper);
- the threshold is ``np.nanpercentile(null, 95)`` ("right"), 5 ("left") or both.

The notebooks seed once (``random.seed(9000)``) and then call these for each group of plates
in turn, so every group's null continues the same stream: pass one ``random.Random(9000)``
as ``rng`` to successive calls to reproduce a notebook's table.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["feature_matrix", "replicate_correlations", "replicating_null", "matching_correlations",
           "matching_null", "percent_score"]


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The notebooks' features: every column whose name does not start with ``Metadata``."""
    return frame[[c for c in frame.columns if not str(c).startswith("Metadata")]].to_numpy(dtype=np.float64)


def _median_offdiagonal(x: np.ndarray) -> float:
    corr = np.corrcoef(x)
    np.fill_diagonal(corr, np.nan)
    return float(np.nanmedian(corr))


def replicate_correlations(frame: pd.DataFrame, by: str) -> tuple[pd.Series, np.ndarray]:
    """Median replicate correlation of each perturbation (groups sorted as pandas' groupby sorts them)."""
    x = feature_matrix(frame)
    positions = frame.reset_index(drop=True).groupby(by, sort=True).indices
    keys = list(positions)
    values = np.array([np.nan if len(positions[k]) == 1 else _median_offdiagonal(x[positions[k]]) for k in keys])
    return pd.Series(keys, name=by), values


def replicating_null(frame: pd.DataFrame, by: str, n_samples: int, n_replicates: int,
                     rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """The null values and the row positions (``n_samples x n_replicates``) of each kept draw."""
    labels = frame[by].to_numpy()
    if len(pd.unique(labels)) < n_replicates:
        raise InputError(f"a null set of {n_replicates} profiles of distinct {by} needs {n_replicates} of them; "
                         f"there are {len(pd.unique(labels))}")
    x = feature_matrix(frame)
    population = range(len(frame))
    kept, values = [], []
    while len(values) < n_samples:
        rows = rng.choices(population, k=n_replicates)
        if len(pd.unique(labels[rows])) == n_replicates:
            kept.append(rows)
            values.append(_median_offdiagonal(x[rows]))
    return np.array(values), np.array(kept, dtype=np.int64)


def _modalities(frame: pd.DataFrame, across: str, modalities) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    values = list(modalities) if modalities is not None else list(pd.unique(frame[across].dropna()))
    if len(values) != 2:
        raise InputError(f"null='cpjump1' matches two modalities of {across!r}; the profiles have {values} "
                         "(choose them with modalities=(first, second))")
    one, two = (frame[frame[across] == v] for v in values)
    if one.empty or two.empty:
        raise InputError(f"{across}: no profiles of {values[0] if one.empty else values[1]!r}")
    return one, two, values


def _cross(x1: np.ndarray, x2: np.ndarray) -> float:
    corr = np.corrcoef(x1, x2)
    return float(np.nanmedian(corr[:len(x1), len(x1):]))


def _pairs(one: pd.DataFrame, two: pd.DataFrame, x1: np.ndarray, x2: np.ndarray, common: str, perturbation: str,
           a, b) -> list[tuple]:
    """Every (perturbation of modality 1 with annotation a, perturbation of modality 2 with b): median cross corr."""
    first = one[common].to_numpy() == a
    second = two[common].to_numpy() == b
    out = []
    p1, p2 = one[perturbation].to_numpy(), two[perturbation].to_numpy()
    for s1 in pd.unique(p1[first]):
        rows1 = np.flatnonzero(first & (p1 == s1))
        for s2 in pd.unique(p2[second]):
            rows2 = np.flatnonzero(second & (p2 == s2))
            out.append((s1, s2, _cross(x1[rows1], x2[rows2])))
    return out


def matching_correlations(frame: pd.DataFrame, perturbation: str, common: str, across: str,
                          modalities=None) -> pd.DataFrame:
    """The matching statistic of every pair of perturbations that share an annotation across the modalities."""
    one, two, values = _modalities(frame, across, modalities)
    shared = np.intersect1d(list(one[common]), list(two[common]))
    x1, x2 = feature_matrix(one), feature_matrix(two)
    rows = [(g, s1, s2, c) for g in shared for s1, s2, c in _pairs(one, two, x1, x2, common, perturbation, g, g)]
    return pd.DataFrame(rows, columns=["shared", f"{perturbation}_1", f"{perturbation}_2", "median_correlation"])


def matching_null(frame: pd.DataFrame, perturbation: str, common: str, across: str, n_samples: int,
                  rng: random.Random, modalities=None) -> tuple[np.ndarray, np.ndarray]:
    """The null values and the annotation pairs drawn (names, ``n_draws x 2``)."""
    one, two, _ = _modalities(frame, across, modalities)
    shared = list(np.intersect1d(list(one[common]), list(two[common])))
    if not shared:
        raise InputError(f"the two modalities share no {common} value")
    x1, x2 = feature_matrix(one), feature_matrix(two)
    values, drawn = [], []
    while len(values) < n_samples:
        a, b = rng.choices(shared, k=2)
        drawn.append((a, b))
        values += [c for _, _, c in _pairs(one, two, x1, x2, common, perturbation, a, b)]
    return np.array(values), np.array(drawn, dtype=object)


def percent_score(null: np.ndarray, values: np.ndarray, tail: str = "right") -> tuple[float, float | None,
                                                                                       float | None, np.ndarray]:
    """(percent, 95th percentile or None, 5th percentile or None, per-value bool) as the notebooks' ``percent_score``.

    Every value counts in the denominator, NaN ones as beyond no threshold.
    """
    values = np.asarray(values, dtype=np.float64)
    high = float(np.nanpercentile(null, 95)) if tail in ("right", "both") else None
    low = float(np.nanpercentile(null, 5)) if tail in ("left", "both") else None
    above = values > high if high is not None else np.zeros(len(values), bool)
    below = values < low if low is not None else np.zeros(len(values), bool)
    percent = (np.mean(above.astype(float)) + np.mean(below.astype(float))) * 100
    return float(percent), high, low, above | below
