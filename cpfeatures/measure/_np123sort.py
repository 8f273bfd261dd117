"""numpy 1.23's unstable argsort, comparison for comparison.

CellProfiler 4.2.8 ran on numpy 1.23, and some of its results depend on how that
sort orders ties: the radial-distribution centres (scipy's maximum position, the
last pixel of an argsort of the whole distance image) and the enclosing circle of
size/shape (the first of tied angles). Both families reproduce them with this
port of numpy 1.23's ``aquicksort``: introsort with median-of-3 Hoare partitions,
insertion sort for parts of 16 or fewer elements, heapsort for a part popped past
a depth of 2 log2(n), and NaN sorted last (numpy's float ``LT``).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["argsort_np123", "introsort_np123"]


@numba.njit(cache=True, inline="always")
def _less(a, b):
    """numpy's order: NaN after every number."""
    return a < b or (b != b and a == a)


@numba.njit(cache=True)
def _swap(k, a, x, y):
    k[x], k[y] = k[y], k[x]
    a[x], a[y] = a[y], a[x]


@numba.njit(cache=True)
def _sift_down(k, a, base, i, n, tk, ta):
    """Put (``tk``, ``ta``) at heap slot ``i`` of ``n`` and let it sink (heap slots from 1)."""
    j = i << 1
    while j <= n:
        if j < n and _less(k[base + j], k[base + j + 1]):
            j += 1
        if _less(tk, k[base + j]):
            k[base + i], a[base + i] = k[base + j], a[base + j]
            i = j
            j += j
        else:
            break
    k[base + i], a[base + i] = tk, ta


@numba.njit(cache=True)
def _aheapsort(k, a, lo, n):
    """numpy 1.23's ``aheapsort_`` on ``a[lo:lo + n]``, keys ``k`` moved along with ``a``."""
    base = lo - 1  # numpy indexes the heap from 1
    for l in range(n >> 1, 0, -1):
        _sift_down(k, a, base, l, n, k[base + l], a[base + l])
    while n > 1:
        tk, ta = k[base + n], a[base + n]
        k[base + n], a[base + n] = k[base + 1], a[base + 1]
        n -= 1
        _sift_down(k, a, base, 1, n, tk, ta)


@numba.njit(cache=True)
def _covers(targets, lo, hi):
    """Some value of the sorted ``targets`` lies in [lo, hi] (binary search)."""
    a, b = 0, targets.size
    while a < b:
        mid = (a + b) >> 1
        if targets[mid] < lo:
            a = mid + 1
        else:
            b = mid
    return a < targets.size and targets[a] <= hi


@numba.njit(cache=True)
def introsort_np123(k, a, targets, prune):
    """numpy 1.23's ``aquicksort_`` on keys ``k`` carrying indices ``a`` (both permuted in place).

    The keys travel with the indices instead of being read through them, which
    changes no comparison. With ``prune``, a part whose value range (known from the
    pivots above it) holds none of the sorted float64 ``targets`` is left unsorted:
    parts never interact, so every element whose value is a target ends exactly
    where the full sort puts it (``targets`` is ignored without ``prune``).
    """
    num = k.size
    if num < 2:
        return
    stack = np.empty(256, np.int64)
    bounds = np.empty(256, np.float64)
    depth = np.empty(128, np.int64)
    sp = 0
    pl = 0
    pr = num - 1
    lo = -np.inf
    hi = np.inf
    cdepth = 0
    t = num
    while t > 1:
        t >>= 1
        cdepth += 1
    cdepth *= 2
    while True:
        if cdepth < 0:
            _aheapsort(k, a, pl, pr - pl + 1)
        else:
            skip = False
            while pr - pl > 15:
                pm = pl + ((pr - pl) >> 1)
                if _less(k[pm], k[pl]):
                    _swap(k, a, pm, pl)
                if _less(k[pr], k[pm]):
                    _swap(k, a, pr, pm)
                if _less(k[pm], k[pl]):
                    _swap(k, a, pm, pl)
                vp = k[pm]
                pi = pl
                pj = pr - 1
                _swap(k, a, pm, pj)
                while True:
                    pi += 1
                    while _less(k[pi], vp):
                        pi += 1
                    pj -= 1
                    while _less(vp, k[pj]):
                        pj -= 1
                    if pi >= pj:
                        break
                    _swap(k, a, pi, pj)
                _swap(k, a, pi, pr - 1)
                cdepth -= 1
                # numpy pushes the larger part and goes on with the smaller one
                if pi - pl < pr - pi:
                    ql, qr, qlo, qhi = pi + 1, pr, np.float64(vp), hi
                    pr, hi = pi - 1, np.float64(vp)
                else:
                    ql, qr, qlo, qhi = pl, pi - 1, lo, np.float64(vp)
                    pl, lo = pi + 1, np.float64(vp)
                if not prune or _covers(targets, qlo, qhi):
                    stack[sp], stack[sp + 1] = ql, qr
                    bounds[sp], bounds[sp + 1] = qlo, qhi
                    depth[sp >> 1] = cdepth
                    sp += 2
                if prune and not _covers(targets, lo, hi):
                    skip = True
                    break
            if not skip:
                for pi in range(pl + 1, pr + 1):
                    ai, ki = a[pi], k[pi]
                    pj = pi
                    while pj > pl and _less(ki, k[pj - 1]):
                        a[pj], k[pj] = a[pj - 1], k[pj - 1]
                        pj -= 1
                    a[pj], k[pj] = ai, ki
        if sp == 0:
            break
        sp -= 2
        pl, pr = stack[sp], stack[sp + 1]
        lo, hi = bounds[sp], bounds[sp + 1]
        cdepth = depth[sp >> 1]


@numba.njit(cache=True)
def argsort_np123(values):
    """``np.argsort(values)`` (kind "quicksort") exactly as numpy 1.23 orders it, ties and NaN included."""
    k = values.ravel().copy()
    a = np.arange(k.size)
    introsort_np123(k, a, np.empty(0, np.float64), False)
    return a
