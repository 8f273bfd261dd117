"""Radix sorting of float32 pixel values, shared by the families that rank or sort pixels.

Corrected images are float32, and a site sorts its pixels many times: intensity
quantiles (per object), colocalization's rank-weighted coefficient (dense ranks
over all object pixels) and granularity's max-tree (the whole working image).
A float32 maps to a 32-bit unsigned key with the same order, so two stable
counting passes of 16 bits sort it: about 8x faster than ``np.argsort`` and 6x
faster than sorting packed 64-bit keys on this machine, with identical results
(every function here equals its numpy formulation, ties included).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["float32_keys", "argsort_float32", "sort_segments_float32", "dense_rank_float32"]

_BITS = 16
_BUCKETS = 1 << _BITS
_MASK = _BUCKETS - 1


def float32_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys ordered as the float32 values (IEEE trick; -0.0 equals 0.0; finite values)."""
    values = np.ascontiguousarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 = +0.0
    return _flip(values.view(np.uint32))


@numba.njit(cache=True)
def _flip(bits):
    # negative floats: invert all bits (larger magnitude sorts first); positive: set the sign bit
    out = np.empty_like(bits)
    for i in range(bits.size):
        b = bits[i]
        out[i] = ~b if b & np.uint32(0x80000000) else b | np.uint32(0x80000000)
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
def _segment_scatter(sorted_keys, segment_of, offsets):
    # stable by segment: walking the value-sorted sequence fills each segment in value order
    out = np.empty(sorted_keys.size, np.uint32)
    cursor = offsets[:-1].copy()
    for t in range(sorted_keys.size):
        s = segment_of[t]
        out[cursor[s]] = sorted_keys[t]
        cursor[s] += 1
    return out


@numba.njit(cache=True)
def _unflip(keys):
    out = np.empty_like(keys)
    for i in range(keys.size):
        k = keys[i]
        out[i] = k & np.uint32(0x7FFFFFFF) if k & np.uint32(0x80000000) else ~k
    return out


def sort_segments_float32(values: np.ndarray, segment: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sort float32 values within contiguous segments.

    Parameters
    ----------
    values : (n,) float32, finite
        Values grouped by segment (segment ``s`` is ``values[offsets[s]:offsets[s + 1]]``).
    segment : (n,) int
        Segment index of each value (``0 .. len(offsets) - 2``).
    offsets : (m + 1,) int
        Segment boundaries.

    Returns
    -------
    (n,) float32
        Each segment's values in increasing order, segments in place.
    """
    sorted_keys, segment_of = _radix_sort(float32_keys(values), np.asarray(segment, np.uint32))
    keys = _segment_scatter(sorted_keys, segment_of, np.asarray(offsets, np.int64))
    return _unflip(keys).view(np.float32)


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
