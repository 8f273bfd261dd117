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
def _propagate(image, seeds, mask, weight, labels, distances):
    m, n = image.shape
    cap = 1024
    hk = np.empty(cap, np.int64)
    hl = np.empty(cap, np.int64)
    hi = np.empty(cap, np.int64)
    hj = np.empty(cap, np.int64)
    size = 0
    for i in range(m):
        for j in range(n):
            if seeds[i, j] != 0 and mask[i, j]:
                if size == cap:
                    cap *= 2
                    hk = np.concatenate((hk, np.empty(cap - hk.size, np.int64)))
                    hl = np.concatenate((hl, np.empty(cap - hl.size, np.int64)))
                    hi = np.concatenate((hi, np.empty(cap - hi.size, np.int64)))
                    hj = np.concatenate((hj, np.empty(cap - hj.size, np.int64)))
                # push (sift up)
                c = size
                hk[c], hl[c], hi[c], hj[c] = 0, seeds[i, j], i, j
                size += 1
                while c > 0:
                    p = (c - 1) // 2
                    if _less(hk[c], hl[c], hi[c], hj[c], hk[p], hl[p], hi[p], hj[p]):
                        hk[c], hk[p] = hk[p], hk[c]
                        hl[c], hl[p] = hl[p], hl[c]
                        hi[c], hi[p] = hi[p], hi[c]
                        hj[c], hj[p] = hj[p], hj[c]
                        c = p
                    else:
                        break
    while size > 0:
        lab, i1, j1 = hl[0], hi[0], hj[0]
        size -= 1
        hk[0], hl[0], hi[0], hj[0] = hk[size], hl[size], hi[size], hj[size]
        c = 0
        while True:
            left = 2 * c + 1
            right = left + 1
            s = c
            if left < size and _less(hk[left], hl[left], hi[left], hj[left], hk[s], hl[s], hi[s], hj[s]):
                s = left
            if right < size and _less(hk[right], hl[right], hi[right], hj[right], hk[s], hl[s], hi[s], hj[s]):
                s = right
            if s == c:
                break
            hk[c], hk[s] = hk[s], hk[c]
            hl[c], hl[s] = hl[s], hl[c]
            hi[c], hi[s] = hi[s], hi[c]
            hj[c], hj[s] = hj[s], hj[c]
            c = s
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
                if size == cap:
                    cap *= 2
                    hk = np.concatenate((hk, np.empty(cap - hk.size, np.int64)))
                    hl = np.concatenate((hl, np.empty(cap - hl.size, np.int64)))
                    hi = np.concatenate((hi, np.empty(cap - hi.size, np.int64)))
                    hj = np.concatenate((hj, np.empty(cap - hj.size, np.int64)))
                c = size
                hk[c], hl[c], hi[c], hj[c] = _key(d), lab, i2, j2
                size += 1
                while c > 0:
                    p = (c - 1) // 2
                    if _less(hk[c], hl[c], hi[c], hj[c], hk[p], hl[p], hi[p], hj[p]):
                        hk[c], hk[p] = hk[p], hk[c]
                        hl[c], hl[p] = hl[p], hl[c]
                        hi[c], hi[p] = hi[p], hi[c]
                        hj[c], hj[p] = hj[p], hj[c]
                        c = p
                    else:
                        break


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
