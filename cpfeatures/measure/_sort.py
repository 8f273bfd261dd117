"""Radix sorting of float32 pixel values, shared by the families that rank or sort pixels.

Corrected images are float32, and a site sorts its pixels many times: intensity
quantiles (per object), colocalization's rank-weighted coefficient (dense ranks
over all object pixels) and granularity's max-tree (the whole working image).
A float32 maps to a 32-bit unsigned key with the same order, so stable counting
passes sort it: two of 16 bits for a whole image (about 8x faster than
``np.argsort``), four of 8 bits object by object, in cache, for per-object
sorting (about 8x faster than one ``np.sort`` of packed label/value keys). The
results are identical to numpy's (every function here equals its numpy
formulation, ties included).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["float32_keys", "argsort_float32", "sort_segments_float32", "dense_rank_float32"]

_BITS = 16
_BUCKETS = 1 << _BITS
_MASK = _BUCKETS - 1


@numba.njit(cache=True)
def _key(bits):
    # the order-preserving uint32 of one float32's bits (-0.0 as 0.0)
    if bits == np.uint32(0x80000000):
        bits = np.uint32(0)
    return ~bits if bits & np.uint32(0x80000000) else bits | np.uint32(0x80000000)


@numba.njit(cache=True)
def _value_bits(key):
    return key & np.uint32(0x7FFFFFFF) if key & np.uint32(0x80000000) else ~key


def float32_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys ordered as the float32 values (IEEE trick; -0.0 equals 0.0; finite values)."""
    return _keys(np.ascontiguousarray(values, dtype=np.float32).view(np.uint32))


@numba.njit(cache=True)
def _keys(bits):
    out = np.empty_like(bits)
    for i in range(bits.size):
        out[i] = _key(bits[i])
    return out


@numba.njit(cache=True)
def _radix_sort(keys, payload):
    """Stable sort of uint32 ``keys`` carrying a uint32 ``payload``: two counting passes of 16 bits
    (a pass whose digit is the same for every key is skipped). Returns (sorted keys, payload)."""
    n = keys.size
    k = keys.copy()
    v = payload.copy()
    k2 = np.empty_like(k)
    v2 = np.empty_like(v)
    hist = np.empty(_BUCKETS, np.int64)
    for shift in range(0, 32, _BITS):
        hist[:] = 0
        for t in range(n):
            hist[(k[t] >> shift) & _MASK] += 1
        constant = False
        total = 0
        for d in range(_BUCKETS):
            c = hist[d]
            if c == n:
                constant = True
            hist[d] = total
            total += c
        if constant:
            continue
        for t in range(n):
            d = (k[t] >> shift) & _MASK
            p = hist[d]
            hist[d] = p + 1
            k2[p] = k[t]
            v2[p] = v[t]
        k, k2 = k2, k
        v, v2 = v2, v
    return k, v


def _positions(n: int) -> np.ndarray:
    if n >= 2 ** 32:
        raise ValueError("radix sort of 2**32 or more values")
    return np.arange(n, dtype=np.uint32)


def argsort_float32(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` for finite float32 values (as uint32 positions)."""
    keys = float32_keys(np.ravel(values))
    return _radix_sort(keys, _positions(keys.size))[1]


@numba.njit(cache=True)
def _sort_segments(bits, offsets):
    """LSD radix sort (4 passes of 8 bits) of each segment on its own: a segment and its
    256-bucket histograms stay in cache, unlike one sort of all pixels."""
    out = np.empty(bits.size, np.uint32)
    longest = 0
    for s in range(offsets.size - 1):
        longest = max(longest, offsets[s + 1] - offsets[s])
    buf_a = np.empty(longest, np.uint32)
    buf_b = np.empty(longest, np.uint32)
    hist = np.empty((4, 257), np.int64)
    for s in range(offsets.size - 1):
        a, m = offsets[s], offsets[s + 1] - offsets[s]
        if m == 0:
            continue
        hist[:, :] = 0
        for t in range(m):  # all four digit histograms in one read
            k = _key(bits[a + t])
            buf_a[t] = k
            hist[0, (k & 255) + 1] += 1
            hist[1, ((k >> 8) & 255) + 1] += 1
            hist[2, ((k >> 16) & 255) + 1] += 1
            hist[3, (k >> 24) + 1] += 1
        src, dst = buf_a, buf_b
        for p in range(4):
            constant = False
            for d in range(256):
                if hist[p, d + 1] == m:
                    constant = True
                hist[p, d + 1] += hist[p, d]
            if constant:  # every key has this digit: the pass would not move anything
                continue
            shift = 8 * p
            for t in range(m):
                k = src[t]
                d = (k >> shift) & 255
                dst[hist[p, d]] = k
                hist[p, d] += 1
            src, dst = dst, src
        for t in range(m):
            out[a + t] = _value_bits(src[t])
    return out


def sort_segments_float32(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sort finite float32 values within contiguous segments.

    Parameters
    ----------
    values : (n,) float32
        Values grouped by segment (segment ``s`` is ``values[offsets[s]:offsets[s + 1]]``).
    offsets : (m + 1,) int
        Segment boundaries.

    Returns
    -------
    (n,) float32
        Each segment's values in increasing order, segments in place.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return _sort_segments(bits, np.asarray(offsets, np.int64)).view(np.float32)


@numba.njit(cache=True)
def _dense_from_sorted(sorted_keys, order):
    n = sorted_keys.size
    rank = np.empty(n, np.int64)
    r = 0
    for t in range(n):
        if t and sorted_keys[t] != sorted_keys[t - 1]:
            r += 1
        rank[order[t]] = r
    return rank


def dense_rank_float32(values: np.ndarray) -> np.ndarray:
    """0-based rank among the distinct values: ``np.unique(values, return_inverse=True)[1]``."""
    keys = float32_keys(np.ravel(values))
    sorted_keys, order = _radix_sort(keys, _positions(keys.size))
    return _dense_from_sorted(sorted_keys, order)
