"""Marker-controlled watershed as CellProfiler 4.2.8 runs it (scikit-image 0.18's algorithm).

CellProfiler's shape declumping (IdentifyPrimaryObjects) and "Watershed - Image"
(IdentifySecondaryObjects) call ``skimage.segmentation.watershed(image, markers,
mask=mask, connectivity=np.ones((3, 3)))``. Its result depends on the exact
order in which pixels leave the priority queue, so this is a port of that
algorithm, not merely of the idea:

- the image is compared as float64 (here through order-preserving uint32 codes,
  so a queue entry is one integer); markers outside the mask are dropped;
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
        The landscape; low values are flooded first. Must be finite.
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
    if not np.isfinite(image).all():
        raise ValueError("the watershed image has NaN or infinite values")
    if image.size >= 2 ** 31:
        raise ValueError(f"image of {image.size} pixels is too large for the watershed queue")
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    return _flood(_order_codes(image, mask), np.ascontiguousarray(markers, dtype=np.int32), mask,
                  bool(raise_to_source))


def _order_codes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint32 codes ordered as the pixel values (as float64) over the mask, so a queue entry's
    (value, age) packs into one uint64 and one integer comparison orders it.

    float32 values (and so their float64 copies) map by their bits (the IEEE order trick, -0.0
    as 0.0); other values by their dense rank among the masked pixels.
    """
    if image.dtype == np.float32:
        bits = np.ascontiguousarray(image).view(np.uint32)
        bits = np.where(bits == np.uint32(0x80000000), np.uint32(0), bits)
        return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    values = image.astype(np.float64, copy=False)
    codes = np.zeros(image.shape, np.uint32)
    codes[mask] = np.unique(values[mask], return_inverse=True)[1].ravel()
    return codes


@numba.njit(cache=True, inline="always")
def _put(key, where, i, k, p):
    # heap slot i holds entry (key k, pixel p)
    key[i] = k
    where[i] = p


@numba.njit(cache=True, inline="always")
def _push(key, where, items, k, p):
    """scikit-image's heappush (swap upwards while smaller than the parent), moving the parents
    down into a hole instead of swapping: the same comparisons, the same final layout."""
    child = items
    while child > 0:
        parent = (child + 1) // 2 - 1
        if not k < key[parent]:
            break
        _put(key, where, child, key[parent], where[parent])
        child = parent
    _put(key, where, child, k, p)
    return items + 1


@numba.njit(cache=True, inline="always")
def _pop(key, where, items):
    """scikit-image's heappop of the root: the last entry goes to the root and swaps down with
    the smaller child (the left one on ties) while that child is smaller; done with a hole."""
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
        _put(key, where, i, key[best], where[best])
        i = best
    _put(key, where, i, k, p)
    return items


@numba.njit(cache=True)
def _flood(codes, markers, mask, raise_to_source):
    """The flood. A queue entry is one uint64: the pixel's value code above its age, so it
    orders as (value, age) does; markers all have age 0 and equal codes stay unordered, left
    to the heap's layout as in scikit-image."""
    h, w = markers.shape
    pw = w + 2  # one pixel of padding all round, outside the mask: no bounds tests
    size = (h + 2) * pw
    level = np.zeros(size, np.uint64)
    inside = np.zeros(size, np.bool_)
    output = np.zeros(size, np.int32)
    count = 0
    for y in range(h):
        for x in range(w):
            p = (y + 1) * pw + x + 1
            level[p] = np.uint64(codes[y, x]) << np.uint64(32)
            inside[p] = mask[y, x]
            if mask[y, x]:
                count += 1
                output[p] = markers[y, x]  # markers outside the mask are dropped
    offsets = _DY * pw + _DX
    # every pixel enters the queue at most once (it is labelled when pushed)
    key = np.empty(count, np.uint64)
    where = np.empty(count, np.int64)
    items = 0
    for p in range(size):  # markers, in raster order, all of age 0
        if output[p] != 0:
            items = _push(key, where, items, level[p], p)
    age = np.uint64(1)
    value_bits = np.uint64(0xFFFFFFFF00000000)
    while items > 0:
        p = where[0]
        source = key[0] & value_bits
        label = output[p]
        items = _pop(key, where, items)
        for k in range(8):
            q = p + offsets[k]
            if not inside[q] or output[q] != 0:
                continue
            age += np.uint64(1)
            output[q] = label
            v = max(level[q], source) if raise_to_source else level[q]
            items = _push(key, where, items, v | age, q)
    out = np.empty((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            out[y, x] = output[(y + 1) * pw + x + 1]
    return out
