"""MeasureObjectIntensity (CPJUMP1 module 21) for all objects of an image at once."""

from __future__ import annotations

import numba
import numpy as np

from . import _defaults
from ._np123 import raster_peak_positions
from ._objects import Objects, as_image, as_objects
from ._sort import sort_segments_float32

__all__ = ["intensity", "measure_family", "FEATURES"]

FEATURES = [
    "Intensity_IntegratedIntensity", "Intensity_MeanIntensity", "Intensity_StdIntensity",
    "Intensity_MinIntensity", "Intensity_MaxIntensity", "Intensity_IntegratedIntensityEdge",
    "Intensity_MeanIntensityEdge", "Intensity_StdIntensityEdge", "Intensity_MinIntensityEdge",
    "Intensity_MaxIntensityEdge", "Intensity_MassDisplacement", "Intensity_LowerQuartileIntensity",
    "Intensity_MedianIntensity", "Intensity_MADIntensity", "Intensity_UpperQuartileIntensity",
    "Location_CenterMassIntensity_X", "Location_CenterMassIntensity_Y", "Location_CenterMassIntensity_Z",
    "Location_MaxIntensity_X", "Location_MaxIntensity_Y", "Location_MaxIntensity_Z",
]


def _edge_positions(objects: Objects) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``objects.order``) of the objects' edge pixels, and their per-object offsets.

    CellProfiler's edge is ``skimage.segmentation.find_boundaries(labels,
    mode="inner")``: object pixels with a 4-neighbour of another value.
    """
    def compute():
        pos = np.flatnonzero(_inner_edge(objects.labels, objects.order))
        counts = np.bincount(objects.pixel_labels[pos], minlength=objects.count + 1)[1:]
        offsets = np.zeros(objects.count + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return pos, offsets
    return objects.cached(("intensity", "edge"), compute)


@numba.njit(cache=True)
def _inner_edge(labels, order):
    """For each object pixel (in ``order``): has it a 4-neighbour inside the image with another
    label? (``find_boundaries(mode="inner")``, whose reflected border adds no edge.)"""
    h, w = labels.shape
    flat = labels.ravel()
    out = np.zeros(order.size, np.bool_)
    for t in range(order.size):
        p = order[t]
        y = p // w
        x = p - y * w
        lab = flat[p]
        if (y > 0 and flat[p - w] != lab) or (y < h - 1 and flat[p + w] != lab) or \
                (x > 0 and flat[p - 1] != lab) or (x < w - 1 and flat[p + 1] != lab):
            out[t] = True
    return out


@numba.njit(cache=True)
def _segment_stats(vals, rows, cols, offsets):
    """Per object segment: count, sum, mean, population std, min, max, the pixel and
    intensity-weighted coordinate sums and the first (row-major) maximum's position.

    Sums run in pixel order, as ``np.bincount`` would, so results equal the
    numpy formulation bit for bit. Empty objects get NaN (count 0).
    """
    n = offsets.size - 1
    res = np.full((12, n), np.nan)
    for k in range(n):
        a, b = offsets[k], offsets[k + 1]
        cnt = b - a
        res[0, k] = cnt
        if cnt == 0:
            continue
        total = 0.0
        sx = 0.0
        sy = 0.0
        sxv = 0.0
        syv = 0.0
        lo = vals[a]
        hi = vals[a]
        at = a
        for i in range(a, b):
            v = vals[i]
            total += v
            sx += cols[i]
            sy += rows[i]
            sxv += cols[i] * v
            syv += rows[i] * v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
                at = i
        mean = total / cnt
        ss = 0.0
        for i in range(a, b):
            d = vals[i] - mean
            ss += d * d
        res[1, k] = total
        res[2, k] = mean
        res[3, k] = np.sqrt(ss / cnt)
        res[4, k] = lo
        res[5, k] = hi
        res[6, k] = sx
        res[7, k] = sy
        res[8, k] = sxv
        res[9, k] = syv
        res[10, k] = cols[at]
        res[11, k] = rows[at]
    return res


def _sorted_by_object(objects: Objects, vals: np.ndarray) -> np.ndarray:
    """Each object's values in increasing order (objects stay contiguous, in label order).

    Float32 images (corrected images) are radix-sorted on their bits, object by
    object in cache (:mod:`._sort`), about 8x faster than a packed-key ``np.sort``.
    """
    if vals.dtype == np.float32:
        return sort_segments_float32(vals, objects.offsets)
    return _sort_each_segment(vals, objects.offsets)


@numba.njit(cache=True)
def _deviation_at(sv, a, b, j, m, r):
    """The ``r``-th smallest (0-based) of ``|sv[a:b] - m|``, ``j`` splitting the sorted segment
    below / at-or-above ``m``. The deviations are two sorted runs, ``A[i] = m - sv[j - 1 - i]``
    and ``B[i] = sv[j + i] - m``; a binary search finds how many of the ``r + 1`` smallest
    come from ``A`` (the classic k-th of two sorted arrays), without merging them."""
    na = j - a
    nb = b - j
    lo = max(0, r + 1 - nb)
    hi = min(r + 1, na)
    while lo < hi:  # smallest i with A[i] >= B[r - i] (taking i from A and r + 1 - i from B)
        i = (lo + hi) // 2
        if m - sv[j - 1 - i] < sv[j + r - i] - m:
            lo = i + 1
        else:
            hi = i
    i = lo
    best = -np.inf
    if i > 0:
        best = m - sv[j - i]
    if r + 1 - i > 0:
        v = sv[j + r - i] - m
        if v > best:
            best = v
    return best


@numba.njit(cache=True)
def _mad(sorted_values, offsets, medians):
    """CellProfiler's MADIntensity: its interpolated median of |I - median| per object.

    The deviations of a sorted segment are two sorted runs (below and above the
    median), so the two order statistics the interpolation needs are found by
    binary search instead of a second sort.
    """
    n = offsets.size - 1
    out = np.full(n, np.nan)
    for k in range(n):
        a, b = offsets[k], offsets[k + 1]
        area = b - a
        if area == 0:
            continue
        m = medians[k]
        lo, hi = a, b  # split: first index with value >= m
        while lo < hi:
            mid = (lo + hi) // 2
            if sorted_values[mid] < m:
                lo = mid + 1
            else:
                hi = mid
        q = area * 0.5
        qi = int(np.floor(q))
        qf = q - qi
        if qi < area - 1:
            below = _deviation_at(sorted_values, a, b, lo, m, qi)
            above = _deviation_at(sorted_values, a, b, lo, m, qi + 1)
            out[k] = below * (1 - qf) + above * qf
        else:
            out[k] = _deviation_at(sorted_values, a, b, lo, m, qi)
    return out


def _interpolated(sorted_values: np.ndarray, start: np.ndarray, area: np.ndarray, fraction: float) -> np.ndarray:
    # CellProfiler's quantile: position start + area * fraction, linear between the two
    # neighbours, the last value when the position reaches it (not numpy's convention).
    q = start + area * fraction
    qi = np.floor(q).astype(np.int64)
    qf = q - qi
    out = np.full(area.shape, np.nan)
    inner = qi < start + area - 1
    out[inner] = sorted_values[qi[inner]] * (1 - qf[inner]) + sorted_values[qi[inner] + 1] * qf[inner]
    last = (~inner) & (area > 0)
    out[last] = sorted_values[qi[last]]
    return out


@numba.njit(cache=True)
def _sort_each_segment(values, offsets):
    """Sort each object's values in place of a copy (objects are contiguous segments)."""
    out = values.copy()
    for k in range(offsets.size - 1):
        a, b = offsets[k], offsets[k + 1]
        if b - a > 1:
            out[a:b] = np.sort(out[a:b])
    return out


def _max_positions_np123(objects: Objects, image: np.ndarray, peak: np.ndarray, tied: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of each object's maximum as CellProfiler finds it when the maximum is tied.

    CellProfiler calls ``scipy.ndimage.maximum_position`` on the object pixels in raster
    order; scipy argsorts them all at once (numpy's unstable introsort) and keeps, per
    label, the last position in that order. numpy 1.23's sort is reproduced, finishing only
    the parts of it that hold the tied maxima.
    """
    image = np.ascontiguousarray(image)
    full_peak = np.concatenate([[np.inf], peak]).astype(image.dtype)  # label 0 never matches
    targets = np.unique(peak[tied]).astype(np.float64)
    pos = raster_peak_positions(objects.labels, image, full_peak, targets)
    w = objects.shape[1]
    return (pos % w).astype(np.float64), (pos // w).astype(np.float64)


@_defaults.checked("intensity")
def intensity(labels, image) -> dict[str, np.ndarray]:
    """CellProfiler's per-object intensity measurements (MeasureObjectIntensity).

    Parameters
    ----------
    labels : (H, W) ndarray of int or Objects
        Label image (0 background, objects 1..N).
    image : (H, W) ndarray
        Intensity image: float in [0, 1], or integers (divided by their type's maximum,
        as CellProfiler loads them).

    Returns
    -------
    dict of str to ndarray
        The 15 ``Intensity_*`` features and ``Location_CenterMassIntensity_X/Y/Z``
        and ``Location_MaxIntensity_X/Y/Z`` (Z is 0 for 2-D images), one value
        per label 1..max; NaN for absent labels.

    Notes
    -----
    Definitions follow CellProfiler 4.2.8 MeasureObjectIntensity: population
    standard deviation; the edge is the inner boundary (4-connected); quartiles
    interpolate at ``area * q`` from the start of the sorted values;
    MADIntensity is the same interpolated median of ``|I - median|``;
    MassDisplacement is the distance between the centroid and the intensity
    centroid. A tied maximum is located where CellProfiler's ``maximum_position``
    puts it (the last of the tied pixels in numpy 1.23's argsort of all object
    pixels); ``Location_CenterMassIntensity_Z`` is NaN (0 / 0) for an object of
    zero intensity; the edge features are 0 when no object has an edge pixel (one
    object covering the whole image), as CellProfiler leaves them.

    References
    ----------
    CellProfiler 4.2.8, ``cellprofiler/modules/measureobjectintensity.py``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> image = np.array([[0.2, 0.4, 0.9], [0.0, 0.5, 0.5]])
    >>> out = intensity(labels, image)
    >>> out["Intensity_MeanIntensity"]
    array([0.3, 0.5])
    >>> out["Location_MaxIntensity_X"]  # object 2's maximum is tied: CellProfiler's pick
    array([1., 2.])
    """
    objects = as_objects(labels)
    return _intensity(objects, as_image(image, objects))


def _intensity(objects: Objects, image: np.ndarray) -> dict[str, np.ndarray]:
    # the object pixels in the image's dtype; every sum below is float64 (as CellProfiler), the
    # float32 -> float64 promotion inside the kernels being exact
    vals = image.ravel()[objects.order]
    rows, cols = objects.cached(("intensity", "coords"),
                                lambda: (objects.rows.astype(float), objects.cols.astype(float)))
    st = _segment_stats(vals, rows, cols, objects.offsets)
    count, total = st[0], st[1]
    out: dict[str, np.ndarray] = {
        "Intensity_IntegratedIntensity": total, "Intensity_MeanIntensity": st[2], "Intensity_StdIntensity": st[3],
        "Intensity_MinIntensity": st[4], "Intensity_MaxIntensity": st[5],
    }
    edge, edge_offsets = _edge_positions(objects)
    erows, ecols = objects.cached(("intensity", "edge_coords"), lambda: (rows[edge], cols[edge]))
    est = _segment_stats(vals[edge], erows, ecols, edge_offsets)
    if edge.size == 0:  # no edge anywhere (one object is the whole image): CellProfiler keeps its zeros
        est[1:6, objects.present] = 0.0
    out.update({"Intensity_IntegratedIntensityEdge": est[1], "Intensity_MeanIntensityEdge": est[2],
                "Intensity_StdIntensityEdge": est[3], "Intensity_MinIntensityEdge": est[4],
                "Intensity_MaxIntensityEdge": est[5]})
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_x, cm_y = st[6] / count, st[7] / count
        cmi_x, cmi_y = st[8] / total, st[9] / total
        cmi_z = np.zeros(objects.count) / total  # CellProfiler's i_z / integrated intensity: 0 / 0 is NaN
    out["Intensity_MassDisplacement"] = np.sqrt((cm_x - cmi_x) ** 2 + (cm_y - cmi_y) ** 2)
    # Quantiles: CellProfiler's interpolation on each object's sorted values.
    start = objects.offsets[:-1].astype(float)
    area = objects.area.astype(float)
    sorted_vals = _sorted_by_object(objects, vals)
    for name, q in (("Intensity_LowerQuartileIntensity", 0.25), ("Intensity_MedianIntensity", 0.5),
                    ("Intensity_UpperQuartileIntensity", 0.75)):
        out[name] = _interpolated(sorted_vals, start, area, q)
    out["Intensity_MADIntensity"] = _mad(sorted_vals, objects.offsets, out["Intensity_MedianIntensity"])
    # CellProfiler leaves MAD at 0 for one-pixel objects (its interpolation branch is skipped).
    out["Intensity_MADIntensity"][objects.area == 1] = 0.0
    out["Location_CenterMassIntensity_X"] = cmi_x
    out["Location_CenterMassIntensity_Y"] = cmi_y
    out["Location_CenterMassIntensity_Z"] = cmi_z
    max_x, max_y = st[10], st[11]
    last = objects.offsets[1:] - 1  # each object's largest value is its last sorted one: a tie is a twin
    tied = (objects.area > 1) & (sorted_vals[last] == sorted_vals[np.maximum(last - 1, 0)])
    if tied.any():  # rare on corrected images (saturation, zero regions): the whole-image sort only then
        cp_x, cp_y = _max_positions_np123(objects, image, st[5], tied)
        max_x, max_y = np.where(tied, cp_x, max_x), np.where(tied, cp_y, max_y)
    out["Location_MaxIntensity_X"] = max_x
    out["Location_MaxIntensity_Y"] = max_y
    out["Location_MaxIntensity_Z"] = np.where(objects.present, 0.0, np.nan)
    return {k: out[k] for k in FEATURES}


def _column(key: str, image_name: str) -> str:
    # Intensity_MeanIntensity -> Intensity_MeanIntensity_DNA; Location_MaxIntensity_X -> ..._X_DNA
    return f"{key}_{image_name}"


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Intensity features of every (validated) image, named as CellProfiler's per-object export."""
    _defaults.resolve("intensity", settings)
    out = {}
    for name, image in images.items():
        for key, values in _intensity(objects, image).items():
            out[_column(key, name)] = values
    return out
