"""Label geometry computed once per label image and shared by every family.

A measurement family receives either a label image or an :class:`Objects`
built from it. Everything that depends only on the labels (pixel lists sorted
by label, areas, bounding boxes, and anything a family caches with
:meth:`Objects.cached`) is computed once, then reused for every channel.

Object ``i`` (label value ``i``) is row ``i - 1`` of every result: families
return arrays of length ``Objects.count == labels.max()``. Label ids that do
not occur (gaps) have ``area == 0`` and families report NaN for them, as
CellProfiler would for an object without pixels.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Hashable

import numba
import numpy as np

from ..errors import InputError

__all__ = ["Objects", "as_objects", "as_image", "memo"]


class Objects:
    """A label image plus its label-only geometry, computed lazily and cached.

    Parameters
    ----------
    labels : (H, W) ndarray of int
        0 is background, objects are 1..N.

    Attributes
    ----------
    labels : (H, W) ndarray of int32
    count : int
        ``labels.max()`` (0 for an empty image); results have this length.
    """

    def __init__(self, labels: np.ndarray):
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise InputError(f"label image must be 2-D, got shape {labels.shape}")
        if labels.dtype.kind not in "iub":
            raise InputError(f"label image must be integer, got dtype {labels.dtype}")
        if labels.size and labels.min() < 0:
            raise InputError("label image has negative labels")
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        self.count = int(self.labels.max()) if self.labels.size else 0
        self._cache: dict[Hashable, Any] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    @cached_property
    def _grouped(self) -> tuple[np.ndarray, np.ndarray]:
        order, offsets = _group_by_label(self.labels.ravel(), self.count)
        # arrays from a kernel loaded from numba's cache carry an unpickled int64 descriptor (equal
        # to numpy's, but another instance), which sends numpy's ufunc.at (and everything derived
        # from these arrays) down its slow generic path (20x)
        return order.view(np.int64), offsets.view(np.int64)

    @property
    def order(self) -> np.ndarray:
        """Flat indices of all object pixels, grouped by label (stable, row-major within a label)."""
        return self._grouped[0]

    @cached_property
    def pixel_labels(self) -> np.ndarray:
        """Label of each pixel in :attr:`order` (non-decreasing)."""
        return np.repeat(np.arange(1, self.count + 1, dtype=np.int32), self.area)

    @property
    def offsets(self) -> np.ndarray:
        """``order[offsets[i]:offsets[i+1]]`` are the pixels of label ``i + 1``; shape ``(count + 1,)``."""
        return self._grouped[1]

    @cached_property
    def area(self) -> np.ndarray:
        """Pixel count per object, shape ``(count,)``."""
        return np.diff(self.offsets)

    @cached_property
    def rows(self) -> np.ndarray:
        """Row (y) of each pixel in :attr:`order`."""
        return self.order // self.labels.shape[1]

    @cached_property
    def cols(self) -> np.ndarray:
        """Column (x) of each pixel in :attr:`order`."""
        return self.order % self.labels.shape[1]

    @cached_property
    def present(self) -> np.ndarray:
        """Boolean per object: the label occurs in the image."""
        return self.area > 0

    @cached_property
    def bbox(self) -> np.ndarray:
        """Bounding boxes ``(min_row, min_col, max_row + 1, max_col + 1)``, shape ``(count, 4)``.

        Absent labels get ``(0, 0, 0, 0)``.
        """
        n = self.count
        box = np.zeros((n, 4), dtype=np.int64)
        if n == 0 or self.order.size == 0:
            return box
        lab = self.pixel_labels - 1
        big = np.iinfo(np.int64).max
        mins_r = np.full(n, big)
        mins_c = np.full(n, big)
        maxs_r = np.full(n, -1)
        maxs_c = np.full(n, -1)
        np.minimum.at(mins_r, lab, self.rows)
        np.minimum.at(mins_c, lab, self.cols)
        np.maximum.at(maxs_r, lab, self.rows)
        np.maximum.at(maxs_c, lab, self.cols)
        ok = self.present
        box[ok, 0], box[ok, 1] = mins_r[ok], mins_c[ok]
        box[ok, 2], box[ok, 3] = maxs_r[ok] + 1, maxs_c[ok] + 1
        return box

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return ``compute()`` memoised under ``key`` for this label image.

        Families use it for label-only work with parameters (e.g. the object
        edge, distance maps, texture pixel pairs at a given scale).
        """
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"Objects(count={self.count}, shape={self.shape})"


@numba.njit(cache=True)
def _group_by_label(flat, count):
    """Counting sort of the object pixels by label: (flat indices grouped by label, raster order
    within a label; offsets of each label's run). Two passes instead of an argsort."""
    offsets = np.zeros(count + 1, np.int64)
    for p in range(flat.size):
        if flat[p] > 0:
            offsets[flat[p]] += 1
    for k in range(count):
        offsets[k + 1] += offsets[k]
    order = np.empty(offsets[count], np.int64)
    cursor = offsets[:count].copy()
    for p in range(flat.size):
        lab = flat[p]
        if lab > 0:
            order[cursor[lab - 1]] = p
            cursor[lab - 1] += 1
    return order, offsets


def as_objects(labels: "np.ndarray | Objects") -> Objects:
    """Return ``labels`` as :class:`Objects` (no copy if it already is one)."""
    return labels if isinstance(labels, Objects) else Objects(labels)


def as_image(image, objects: Objects | None = None, name: str = "image") -> np.ndarray:
    """An intensity image as every family takes it: float in [0, 1], CellProfiler's scale.

    One rule for all families: integer images are divided by their type's maximum in
    float32 (65535 for uint16, 255 for uint8), as CellProfiler's image loading does;
    booleans become 0.0 / 1.0; float32 and float64 are used as they are and must lie in
    [0, 1] (a corrected image is). Anything else is an error rather than a silent wrong
    answer (raw counts would give all-zero texture and 65535x intensities).

    Parameters
    ----------
    image : (H, W) array_like
    objects : Objects, optional
        The labels the image must match in shape.
    name : str
        The image's name, for error messages.

    Returns
    -------
    ndarray of float32 or float64

    Raises
    ------
    InputError
        Not 2-D, another shape than the labels, not numeric, NaN or infinite values, or a
        float image outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> as_image(np.array([[0, 65535]], np.uint16))
    array([[0., 1.]], dtype=float32)
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {image.shape}")
    if objects is not None and image.shape != objects.shape:
        raise InputError(f"{name} shape {image.shape} differs from label shape {objects.shape}")
    image = as_loaded(image, name)
    if image.dtype.kind == "f" and image.size and not _in_unit_range(image):
        flat = image.ravel()
        if not np.isfinite(flat).all():
            raise InputError(f"{name} contains NaN or infinite values")
        lo, hi = float(flat.min()), float(flat.max())
        if lo < 0 or hi > 1:
            raise InputError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; float images must be in [0, 1] "
                             "(CellProfiler's scale: integer images are divided by their type's maximum)")
    return image


def as_loaded(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An image's values as CellProfiler loads them: integers divided by their type's maximum
    (float32), booleans as 0/1, floats as they are (float32 or float64); anything else refused."""
    kind = image.dtype.kind
    if kind in "ui":
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if kind == "b":
        return image.astype(np.float32)
    if kind != "f":
        raise InputError(f"{name} must be numeric, got dtype {image.dtype}")
    return image if image.dtype in (np.float32, np.float64) else image.astype(np.float32)


def _in_unit_range(image: np.ndarray) -> bool:
    """Every value finite and in [0, 1], from one integer min/max pass over the float bits.

    For floats >= +0.0 the bit patterns, read as signed integers, are ordered as the values,
    and NaN and infinity lie above 1.0's; a negative value (or -0.0, or a negative NaN) has
    the sign bit set and reads negative. The integer reduction vectorizes where the float one
    would not (NaN comparisons), so the check costs a fraction of a millisecond per image.
    """
    flat = np.ascontiguousarray(image).ravel()
    if flat.dtype == np.float32:
        ints, one = flat.view(np.int32), np.int32(0x3F800000)
    else:
        ints, one = flat.view(np.int64), np.int64(0x3FF0000000000000)
    lo, hi = _int_range(ints)
    if lo < 0:  # maybe -0.0, which is 0: the exact check decides
        return bool(np.isfinite(flat).all() and flat.min() >= 0 and flat.max() <= 1)
    return bool(hi <= one)


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    return a is b


@numba.njit(cache=True)
def _int_range(ints):
    """(min, max) of an integer array (vectorized by LLVM)."""
    lo = ints[0]
    hi = ints[0]
    for i in range(ints.size):
        v = ints[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


def memo(cache: dict | None, key: Hashable, array, compute: Callable[[], Any]) -> Any:
    """``compute()`` done once per ``(key, array)`` in a per-site ``cache``.

    The entry keeps ``array`` (an array, or a tuple of arrays) and is used only while the same
    array objects come back, so a cache that lives on to the next site (where a new array may
    reuse the old one's memory address, and so its ``id``) can never return the previous
    site's result.
    """
    if cache is None:
        return compute()
    hit = cache.get(key)
    if hit is not None and _same(hit[0], array):
        return hit[1]
    value = compute()
    cache[key] = (array, value)
    return value
