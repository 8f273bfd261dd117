"""Profile-to-profile similarity, a block of rows at a time (the full matrix is never held)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import InputError

__all__ = ["SIMILARITIES", "prepare", "similarity_block", "pearson_rows"]

#: Names accepted by ``distance=`` (copairs' names and meanings).
SIMILARITIES = ("cosine", "abs_cosine", "correlation", "euclidean", "manhattan", "chebyshev")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.linalg.norm(x, axis=1)[:, None]


def pearson_rows(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm: their dot products are Pearson correlations."""
    return _unit_rows(x - x.mean(axis=1, keepdims=True))


def prepare(x: np.ndarray, distance: str) -> np.ndarray:
    """Per-row preprocessing so a block of similarities is one matrix product (or cdist)."""
    if distance not in SIMILARITIES:
        raise InputError(f"distance must be one of {SIMILARITIES}, got {distance!r}")
    if not np.isfinite(x).all():
        raise InputError("profiles contain NaN or infinite feature values; drop or impute them first "
                         "(feature_select with drop_na_columns removes incomplete features)")
    if distance in ("cosine", "abs_cosine"):
        return _unit_rows(x)
    if distance == "correlation":
        return pearson_rows(x)
    return x


def similarity_block(prepared: np.ndarray, rows: slice, distance: str) -> np.ndarray:
    """Similarities of ``prepared[rows]`` to every row, as float32 (copairs stores them so).

    Distances become similarities as in copairs: ``1 / (1 + d)`` for euclidean,
    manhattan and chebyshev.
    """
    block = prepared[rows]
    if distance in ("cosine", "correlation"):
        sim = block @ prepared.T
    elif distance == "abs_cosine":
        sim = np.abs(block @ prepared.T)
    else:
        metric = {"euclidean": "euclidean", "manhattan": "cityblock", "chebyshev": "chebyshev"}[distance]
        sim = 1.0 / (1.0 + cdist(block, prepared, metric=metric))
    return sim.astype(np.float32)
