"""CellProfiler's "Propagation" (IdentifySecondaryObjects): geodesic growth of seeds over an image.

Seeds grow into the mask in order of increasing distance, where a step between
8-neighbours costs ``sqrt(d_I^2 + manhattan * weight^2)``; ``d_I`` is the sum of
absolute differences of the two pixels' 3x3 neighbourhoods (edge-clamped).
Ties are broken as CellProfiler's priority queue breaks them: by the distance
with its lowest mantissa bit dropped, then label, row, column.

References
----------
T. R. Jones, A. E. Carpenter, P. Golland, "Voronoi-based segmentation of cells
on image manifolds", CVBIA 2005.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["propagate"]

_DI = np.array([-1, -1, -1, 0, 0, 1, 1, 1], np.int64)
_DJ = np.array([-1, 0, 1, -1, 1, -1, 0, 1], np.int64)


@numba.njit(cache=True, inline="always")
def _less(ka, la, ia, ja, kb, lb, ib, jb):
    if ka != kb:
        return ka < kb
    if la != lb:
        return la < lb
    if ia != ib:
        return ia < ib
    return ja < jb


@numba.njit(cache=True)
def _clamped(image, i, j):
    m, n = image.shape
    i = 0 if i < 0 else (m - 1 if i >= m else i)
    j = 0 if j < 0 else (n - 1 if j >= n else j)
    return image[i, j]


@numba.njit(cache=True)
def _step(image, i1, j1, i2, j2, weight):
    diff = 0.0
    for di in range(-1, 2):
        for dj in range(-1, 2):
            diff += abs(_clamped(image, i1 + di, j1 + dj) - _clamped(image, i2 + di, j2 + dj))
    manhattan = abs(i1 - i2) + abs(j1 - j2)
    return np.sqrt(diff * diff + manhattan * weight * weight)


@numba.njit(cache=True)
def _key(d):
    # the float's bits without the lowest one (CellProfiler's heap compares these)
    return np.int64(np.float64(d).view(np.int64)) >> 1


@numba.njit(cache=True)
def _push(heap, size, key, lab, i, j):
    """Push (key, label, row, col) onto a binary min-heap stored in rows of ``heap``; grows it."""
    if size == heap.shape[0]:
        bigger = np.empty((heap.shape[0] * 2, 4), np.int64)
        bigger[:size] = heap[:size]
        heap = bigger
    c = size
    heap[c, 0], heap[c, 1], heap[c, 2], heap[c, 3] = key, lab, i, j
    while c > 0:
        p = (c - 1) // 2
        if not _less(heap[c, 0], heap[c, 1], heap[c, 2], heap[c, 3], heap[p, 0], heap[p, 1], heap[p, 2], heap[p, 3]):
            break
        for f in range(4):
            heap[c, f], heap[p, f] = heap[p, f], heap[c, f]
        c = p
    return heap, size + 1


@numba.njit(cache=True)
def _pop(heap, size):
    """Remove the smallest row (``heap[0]``: read it first) and return the new size."""
    size -= 1
    for f in range(4):
        heap[0, f] = heap[size, f]
    c = 0
    while True:
        left = 2 * c + 1
        s = c
        for k in (left, left + 1):
            if k < size and _less(heap[k, 0], heap[k, 1], heap[k, 2], heap[k, 3],
                                  heap[s, 0], heap[s, 1], heap[s, 2], heap[s, 3]):
                s = k
        if s == c:
            return size
        for f in range(4):
            heap[c, f], heap[s, f] = heap[s, f], heap[c, f]
        c = s


@numba.njit(cache=True)
def _propagate(image, seeds, mask, weight, labels, distances):
    m, n = image.shape
    heap = np.empty((1024, 4), np.int64)
    size = 0
    for i in range(m):
        for j in range(n):
            if seeds[i, j] != 0 and mask[i, j]:
                heap, size = _push(heap, size, 0, seeds[i, j], i, j)
    while size > 0:
        lab, i1, j1 = heap[0, 1], heap[0, 2], heap[0, 3]
        size = _pop(heap, size)
        if labels[i1, j1] != 0:
            continue
        labels[i1, j1] = lab
        d0 = distances[i1, j1]
        for k in range(8):
            i2 = i1 + _DI[k]
            j2 = j1 + _DJ[k]
            if i2 < 0 or i2 >= m or j2 < 0 or j2 >= n:
                continue
            if labels[i2, j2] > 0 or not mask[i2, j2]:
                continue
            d = _step(image, i1, j1, i2, j2, weight) + d0
            if distances[i2, j2] == -1 or distances[i2, j2] > d:
                distances[i2, j2] = d
                heap, size = _push(heap, size, _key(d), lab, i2, j2)


def propagate(image: np.ndarray, seeds: np.ndarray, mask: np.ndarray, weight: float = 0.05
              ) -> tuple[np.ndarray, np.ndarray]:
    """Grow labelled ``seeds`` over ``image`` within ``mask``.

    Parameters
    ----------
    image : ndarray of float
    seeds : ndarray of int
        Seed labels (0 = none).
    mask : ndarray of bool
        Where labels may grow.
    weight : float
        CellProfiler's "regularization factor" (0.05 by default): the weight of
        spatial distance against image differences.

    Returns
    -------
    labels : ndarray of int32
    distances : ndarray of float64
        Geodesic distance to the seed (-1 where never reached).
    """
    image = np.ascontiguousarray(image, np.float64)
    seeds = np.ascontiguousarray(seeds, np.int64)
    labels = np.zeros(seeds.shape, np.int32)
    distances = -np.ones(seeds.shape, np.float64)
    distances[seeds > 0] = 0
    _propagate(image, seeds, np.ascontiguousarray(mask, np.bool_), float(weight), labels, distances)
    labels[seeds > 0] = seeds[seeds > 0]
    return labels, distances
