"""numpy's orders of operations that CellProfiler 4.2.8's numbers depend on (it ran on numpy 1.23).

- **Sorting ties.** numpy 1.23's unstable argsort decides which of tied pixels wins: the
  radial-distribution centres (scipy's maximum position, the last pixel of an argsort of
  the whole distance image), a tied intensity maximum's location, and the enclosing
  circle of size/shape (the first of tied angles). :func:`argsort_np123` ports numpy
  1.23's ``aquicksort``: introsort with median-of-3 Hoare partitions, insertion sort for
  parts of 16 or fewer elements, heapsort for a part popped past a depth of 2 log2(n),
  and NaN sorted last (numpy's float ``LT``).
- **Summation.** numpy sums floats pairwise (8 accumulators, blocks of 128), and numpy 1.23
  reduces in buffers of 8192 elements: :func:`pairwise_sum` (a contiguous float64 mean,
  size/shape's MeanRadius) and :func:`np123_sum` / :func:`np123_mean_var` (float32 means
  and variances, Costes' regression) give the same bits.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["argsort_np123", "introsort_np123", "positions_of_peaks", "raster_peak_positions", "pairwise_sum", "np123_sum", "np123_mean_var"]


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


@numba.njit(cache=True)
def positions_of_peaks(keys, flat, peak, targets):
    """Per label, the last pixel at the label's peak key in numpy 1.23's argsort of all keys
    (0 for absent labels): scipy's ``maximum_position`` with labels. ``targets`` are the
    (sorted, float64) peak values that matter: the sort only finishes the parts that can hold
    one, so a few tied maxima cost a fraction of a full argsort."""
    k = keys.copy()
    order = np.empty(k.size, np.int32)
    for i in range(k.size):
        order[i] = i
    return _last_at_peaks(k, order, flat, peak, targets, np.arange(k.size))


@numba.njit(cache=True)
def _last_at_peaks(k, order, flat, peak, targets, position):
    """Sort ``k`` (with ``order``) as far as ``targets`` need, then per label the ``position`` of
    its last pixel at its peak. A label whose peak is not a target gets an arbitrary pixel."""
    introsort_np123(k, order, targets, True)
    pos = np.zeros(peak.size, np.int64)
    if targets.size == 0:
        return pos[1:]
    low, high = targets[0], targets[-1]
    for t in range(order.size):
        v = k[t]  # = keys[order[t]]: read in sequence, the label only near a target
        if v >= low and v <= high:
            p = order[t]
            lab = flat[p]
            if lab > 0 and v == peak[lab]:
                pos[lab] = position[p]
    return pos[1:]


@numba.njit(cache=True)
def raster_peak_positions(labels, image, peak, targets):
    """:func:`positions_of_peaks` over the object pixels of ``labels`` in raster order (what
    scipy's ``maximum_position(image, labels, index)`` sorts), as flat indices into the image;
    gathers the pixels in the same pass."""
    lf = labels.ravel()
    im = image.ravel()
    n = 0
    for i in range(lf.size):
        if lf[i] > 0:
            n += 1
    k = np.empty(n, im.dtype)
    flat = np.empty(n, lf.dtype)
    position = np.empty(n, np.int64)
    order = np.empty(n, np.int32)
    j = 0
    for i in range(lf.size):
        if lf[i] > 0:
            k[j] = im[i]
            flat[j] = lf[i]
            position[j] = i
            order[j] = j
            j += 1
    return _last_at_peaks(k, order, flat, peak, targets, position)


@numba.njit(cache=True, error_model="numpy")
def pairwise_sum(a, lo, n):
    """numpy's pairwise summation of ``a[lo:lo+n]`` (8 accumulators, blocks of 128)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    if n <= 128:
        r = np.empty(8)
        for t in range(8):
            r[t] = a[lo + t]
        i = 8
        stop = n - (n % 8)
        while i < stop:
            for t in range(8):
                r[t] += a[lo + i + t]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a, lo, n2) + pairwise_sum(a, lo + n2, n - n2)


@numba.njit(cache=True)
def np123_sum(a):
    """``a.sum()`` as numpy 1.23 computes it for a non-empty contiguous array: pairwise within
    buffers of 8192 elements, buffers added in turn to an accumulator of ``a``'s dtype.

    numpy's pairwise sum of ``n`` elements: below 8 a plain loop; up to 128, 8 accumulators
    combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` then the remainder; above,
    the sum of the two halves (split rounded down to a multiple of 8). The recursion runs here on
    an explicit stack, in the same order.
    """
    s_lo = np.empty(64, np.int64)
    s_n = np.empty(64, np.int64)
    s_join = np.zeros(64, np.bool_)
    vals = np.empty(64, a.dtype)
    acc = a[0] - a[0]  # a zero of a's dtype
    for start in range(0, a.size, 8192):
        sp = 1
        vp = 0
        s_lo[0], s_n[0], s_join[0] = start, min(8192, a.size - start), False
        while sp > 0:
            sp -= 1
            lo, n, join = s_lo[sp], s_n[sp], s_join[sp]
            if join:
                vals[vp - 2] = vals[vp - 2] + vals[vp - 1]
                vp -= 1
            elif n > 128:
                n2 = n // 2
                n2 -= n2 % 8
                s_lo[sp], s_n[sp], s_join[sp] = lo, n, True
                s_lo[sp + 1], s_n[sp + 1], s_join[sp + 1] = lo + n2, n - n2, False
                s_lo[sp + 2], s_n[sp + 2], s_join[sp + 2] = lo, n2, False
                sp += 3
            elif n < 8:
                res = a[lo]
                for i in range(lo + 1, lo + n):
                    res += a[i]
                vals[vp] = res
                vp += 1
            else:
                r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
                r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
                i = 8
                while i < n - (n % 8):
                    j = lo + i
                    r0 += a[j]
                    r1 += a[j + 1]
                    r2 += a[j + 2]
                    r3 += a[j + 3]
                    r4 += a[j + 4]
                    r5 += a[j + 5]
                    r6 += a[j + 6]
                    r7 += a[j + 7]
                    i += 8
                res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                while i < n:
                    res += a[lo + i]
                    i += 1
                vals[vp] = res
                vp += 1
        acc += vals[0]
    return acc


@numba.njit(cache=True)
def np123_mean_var(a):
    """``(np.mean(a), np.var(a, ddof=1))`` of numpy 1.23 (in ``a``'s dtype)."""
    n = a.size
    if n == 0:
        return np.nan, np.nan
    mean = np123_sum(a) / n  # float64 then back to a's dtype (exact for float32: 53 >= 2 * 24 + 2)
    d = np.empty_like(a)
    d[0] = mean
    m = d[0]
    for i in range(n):
        v = a[i] - m  # in a's dtype, as numpy's arr - arrmean and x * x
        d[i] = v * v
    var = np123_sum(d) / (n - 1) if n > 1 else np.nan
    return mean, var
