"""Marker-controlled watershed as CellProfiler 4.2.8 runs it (scikit-image 0.18's algorithm).

CellProfiler's shape declumping (IdentifyPrimaryObjects) and "Watershed - Image"
(IdentifySecondaryObjects) call ``skimage.segmentation.watershed(image, markers,
mask=mask, connectivity=np.ones((3, 3)))``. Its result depends on the exact
order in which pixels leave the priority queue, so this is a port of that
algorithm, not merely of the idea:

- the image is compared as float64; markers outside the mask are dropped;
- the queue is scikit-image's binary heap (same sift-up and sift-down, so ties
  between markers of equal value leave in the same order); an entry is ordered
  by (value, age), markers have age 0 and every push increments the age;
- markers enter in raster order; a popped pixel labels each unlabelled
  in-mask neighbour at once, in the order N, W, E, S, NW, NE, SW, SE
  (scikit-image's neighbour offsets sorted by city-block distance), and pushes
  it with its own image value.

scikit-image 0.25 changed the algorithm (a neighbour's priority is raised to at
least the popped pixel's, ``raise_to_source=True`` here), which can move
boundaries; keeping CellProfiler's version by default makes the labels
independent of the installed scikit-image. The tests compare the port with
the installed scikit-image's watershed (same rule) and with CellProfiler's
label images.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["watershed"]

# scikit-image's raveled 8-neighbourhood order, as (row, column) offsets
_DY = np.array([-1, 0, 0, 1, -1, -1, 1, 1], np.int64)
_DX = np.array([0, -1, 1, 0, -1, 1, -1, 1], np.int64)


def watershed(image: np.ndarray, markers: np.ndarray, mask: np.ndarray | None = None,
              raise_to_source: bool = False) -> np.ndarray:
    """Flood ``image`` from ``markers`` within ``mask`` (8-connected), CellProfiler's watershed.

    Parameters
    ----------
    image : (H, W) ndarray of float
        The landscape; low values are flooded first.
    markers : (H, W) ndarray of int
        Seeds: 0 is unlabelled, other values are the labels to grow.
    mask : (H, W) ndarray of bool, optional
        Pixels that may be labelled (all if omitted).
    raise_to_source : bool
        scikit-image >= 0.25's rule instead: a pushed neighbour's priority is at
        least the popped pixel's. Not CellProfiler's; for comparison.

    Returns
    -------
    (H, W) ndarray of int32
        ``skimage.segmentation.watershed(image, markers, mask=mask,
        connectivity=np.ones((3, 3)))`` as scikit-image 0.18.3 computes it
        (as 0.25 and later compute it with ``raise_to_source=True``).

    References
    ----------
    S. Beucher and F. Meyer, "The morphological approach to segmentation: the
    watershed transformation", in Mathematical Morphology in Image Processing, 1993.
    """
    image = np.asarray(image)
    markers = np.asarray(markers)
    if image.ndim != 2 or markers.shape != image.shape:
        raise ValueError(f"image {image.shape} and markers {markers.shape} must be the same 2-D shape")
    if mask is None:
        mask = np.ones(image.shape, bool)
    elif mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the image shape {image.shape}")
    markers = np.ascontiguousarray(markers, dtype=np.int32)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if image.dtype == np.float32 and np.isfinite(image).all() and image.size < 2 ** 31:
        # float32 values and ages fit one uint64 key: half the heap traffic, same order
        return _flood_float32(np.ascontiguousarray(image), markers, mask, bool(raise_to_source))
    return _flood(np.ascontiguousarray(image, dtype=np.float64), markers, mask, bool(raise_to_source))


@numba.njit(cache=True, inline="always")
def _before(v1, a1, v2, a2):
    # scikit-image's heap order: by value, then by age
    if v1 != v2:
        return v1 < v2
    return a1 < a2


@numba.njit(cache=True, inline="always")
def _push(value, age, where, items, v, a, p):
    """scikit-image's heappush (swap upwards while smaller than the parent), moving the parents
    down into a hole instead of swapping: the same comparisons, the same final layout."""
    child = items
    while child > 0:
        parent = (child + 1) // 2 - 1
        if not _before(v, a, value[parent], age[parent]):
            break
        value[child] = value[parent]
        age[child] = age[parent]
        where[child] = where[parent]
        child = parent
    value[child] = v
    age[child] = a
    where[child] = p
    return items + 1


@numba.njit(cache=True, inline="always")
def _pop(value, age, where, items):
    """scikit-image's heappop of the root: the last entry goes to the root and swaps down with
    the smaller child (the left one on ties) while that child is smaller; done with a hole."""
    items -= 1
    if items == 0:
        return items
    v, a, p = value[items], age[items], where[items]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= items:
            break
        best = i
        bv, ba = v, a
        if _before(value[left], age[left], bv, ba):
            best = left
            bv, ba = value[left], age[left]
        right = left + 1
        if right < items and _before(value[right], age[right], bv, ba):
            best = right
        if best == i:
            break
        value[i] = value[best]
        age[i] = age[best]
        where[i] = where[best]
        i = best
    value[i] = v
    age[i] = a
    where[i] = p
    return items


@numba.njit(cache=True)
def _flood(image, markers, mask, raise_to_source):
    """The flood on a float64 image: heap entries (value, age, pixel) in three arrays."""
    h, w = markers.shape
    pw = w + 2  # one pixel of padding all round, outside the mask: no bounds tests
    size = (h + 2) * pw
    flat = np.zeros(size)
    inside = np.zeros(size, np.bool_)
    output = np.zeros(size, np.int32)
    count = 0
    for y in range(h):
        for x in range(w):
            p = (y + 1) * pw + x + 1
            flat[p] = image[y, x]
            inside[p] = mask[y, x]
            if mask[y, x]:
                count += 1
                output[p] = markers[y, x]  # markers outside the mask are dropped
    offsets = _DY * pw + _DX
    # every pixel enters the queue at most once (it is labelled when pushed)
    value = np.empty(count)
    age = np.empty(count, np.int64)
    where = np.empty(count, np.int64)
    items = 0
    for p in range(size):  # markers, in raster order, all of age 0
        if output[p] != 0:
            items = _push(value, age, where, items, flat[p], 0, p)
    stamp = 1
    while items > 0:
        p = where[0]
        source_value = value[0]
        label = output[p]
        items = _pop(value, age, where, items)
        for k in range(8):
            q = p + offsets[k]
            if not inside[q] or output[q] != 0:
                continue
            stamp += 1
            output[q] = label
            v = max(flat[q], source_value) if raise_to_source else flat[q]
            items = _push(value, age, where, items, v, stamp, q)
    out = np.empty((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            out[y, x] = output[(y + 1) * pw + x + 1]
    return out


@numba.njit(cache=True, inline="always")
def _key32(v):
    # order-preserving uint32 of a float32 (-0.0 as 0.0), as in measure._sort
    bits = np.float32(v).view(np.uint32)
    if bits == np.uint32(0x80000000):
        bits = np.uint32(0)
    return ~bits if bits & np.uint32(0x80000000) else bits | np.uint32(0x80000000)


@numba.njit(cache=True, inline="always")
def _push_key(key, where, items, k, p):
    child = items
    while child > 0:
        parent = (child + 1) // 2 - 1
        if not k < key[parent]:
            break
        key[child] = key[parent]
        where[child] = where[parent]
        child = parent
    key[child] = k
    where[child] = p
    return items + 1


@numba.njit(cache=True, inline="always")
def _pop_key(key, where, items):
    items -= 1
    if items == 0:
        return items
    k, p = key[items], where[items]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= items:
            break
        best = i
        bk = k
        if key[left] < bk:
            best = left
            bk = key[left]
        right = left + 1
        if right < items and key[right] < bk:
            best = right
        if best == i:
            break
        key[i] = key[best]
        where[i] = where[best]
        i = best
    key[i] = k
    where[i] = p
    return items


@numba.njit(cache=True)
def _flood_float32(image, markers, mask, raise_to_source):
    """:func:`_flood` on a finite float32 image: (value, age) packed in one uint64 key, the
    value's order-preserving bits above the age, so one integer comparison orders entries
    exactly as (value, age) does (markers' equal keys stay unordered, as in scikit-image)."""
    h, w = markers.shape
    pw = w + 2
    size = (h + 2) * pw
    flat = np.zeros(size, np.uint64)
    inside = np.zeros(size, np.bool_)
    output = np.zeros(size, np.int32)
    count = 0
    for y in range(h):
        for x in range(w):
            p = (y + 1) * pw + x + 1
            flat[p] = np.uint64(_key32(image[y, x])) << np.uint64(32)
            inside[p] = mask[y, x]
            if mask[y, x]:
                count += 1
                output[p] = markers[y, x]
    offsets = _DY * pw + _DX
    key = np.empty(count, np.uint64)
    where = np.empty(count, np.int64)
    items = 0
    for p in range(size):
        if output[p] != 0:
            items = _push_key(key, where, items, flat[p], p)
    stamp = np.uint64(1)
    high = np.uint64(0xFFFFFFFF00000000)
    while items > 0:
        p = where[0]
        source = key[0] & high
        label = output[p]
        items = _pop_key(key, where, items)
        for k in range(8):
            q = p + offsets[k]
            if not inside[q] or output[q] != 0:
                continue
            stamp += np.uint64(1)
            output[q] = label
            v = max(flat[q], source) if raise_to_source else flat[q]
            items = _push_key(key, where, items, v | stamp, q)
    out = np.empty((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            out[y, x] = output[(y + 1) * pw + x + 1]
    return out
