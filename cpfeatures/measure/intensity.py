"""MeasureObjectIntensity (CPJUMP1 module 21) for all objects of an image at once."""

from __future__ import annotations

import numba
import numpy as np
import skimage.segmentation

from .objects import Objects, as_objects, check_image

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


def _edge_positions(objects: Objects) -> np.ndarray:
    """Positions (into ``objects.order``) of each object's edge pixels.

    CellProfiler's edge is ``skimage.segmentation.find_boundaries(labels,
    mode="inner")``: object pixels with a 4-neighbour of another value.
    """
    def compute():
        edge = skimage.segmentation.find_boundaries(objects.labels, mode="inner").ravel()
        return np.flatnonzero(edge[objects.order])
    return objects.cached(("intensity", "edge"), compute)


def _basic(values: np.ndarray, labels: np.ndarray, n: int):
    """count, sum, mean, population std, min, max per label 1..n (NaN where empty)."""
    count = np.bincount(labels, minlength=n + 1)[1:].astype(float)
    total = np.bincount(labels, weights=values, minlength=n + 1)[1:].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        dev = values - mean[labels - 1]
        std = np.sqrt(np.bincount(labels, weights=dev * dev, minlength=n + 1)[1:].astype(np.float64) / count)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    present = count > 0
    if values.size:
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        ids = labels[starts] - 1
        lo[ids] = np.minimum.reduceat(values, starts)
        hi[ids] = np.maximum.reduceat(values, starts)
    total[~present] = np.nan
    return count, total, mean, std, lo, hi


@numba.njit(cache=True)
def _mad(sorted_values, offsets, medians):
    """CellProfiler's MADIntensity: its interpolated median of |I - median| per object.

    The deviations of a sorted segment are two sorted runs (below and above the
    median); merging them up to the needed rank avoids a second sort.
    """
    n = offsets.size - 1
    out = np.full(n, np.nan)
    for k in range(n):
        a, b = offsets[k], offsets[k + 1]
        area = b - a
        if area == 0:
            continue
        m = medians[k]
        q = area * 0.5
        qi = int(np.floor(q))
        qf = q - qi
        need = qi + 1 if qi < area - 1 else qi
        # split: first index with value >= m
        j = a
        while j < b and sorted_values[j] < m:
            j += 1
        left = j - 1
        right = j
        prev = 0.0
        cur = 0.0
        for r in range(need + 1):
            if left >= a and (right >= b or m - sorted_values[left] <= sorted_values[right] - m):
                v = m - sorted_values[left]
                left -= 1
            else:
                v = sorted_values[right] - m
                right += 1
            prev = cur
            cur = v
        if qi < area - 1:
            out[k] = prev * (1 - qf) + cur * qf
        else:
            out[k] = cur
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
def _sort_segments(values, offsets):
    """Sort each object's values in place of a copy (objects are contiguous segments)."""
    out = values.copy()
    for k in range(offsets.size - 1):
        a, b = offsets[k], offsets[k + 1]
        if b - a > 1:
            out[a:b] = np.sort(out[a:b])
    return out


def intensity(labels, image: np.ndarray) -> dict[str, np.ndarray]:
    """CellProfiler's per-object intensity measurements.

    Parameters
    ----------
    labels : ndarray of int or Objects
        Label image (0 background).
    image : ndarray of float
        Intensity image in [0, 1], same shape.

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
    centroid; the maximum's location is its first occurrence in row-major order.
    """
    objects = as_objects(labels)
    image = check_image(image, objects)
    n = objects.count
    flat = image.ravel()
    vals = flat[objects.order].astype(np.float64)  # one conversion, then float64 sums as CellProfiler
    labs = objects.pixel_labels
    rows = objects.rows.astype(float)
    cols = objects.cols.astype(float)
    count, total, mean, std, lo, hi = _basic(vals, labs, n)
    out: dict[str, np.ndarray] = {
        "Intensity_IntegratedIntensity": total, "Intensity_MeanIntensity": mean, "Intensity_StdIntensity": std,
        "Intensity_MinIntensity": lo, "Intensity_MaxIntensity": hi,
    }
    edge = _edge_positions(objects)
    _, etotal, emean, estd, elo, ehi = _basic(vals[edge], labs[edge], n)
    out.update({"Intensity_IntegratedIntensityEdge": etotal, "Intensity_MeanIntensityEdge": emean,
                "Intensity_StdIntensityEdge": estd, "Intensity_MinIntensityEdge": elo,
                "Intensity_MaxIntensityEdge": ehi})
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_x = np.bincount(labs, weights=cols, minlength=n + 1)[1:] / count
        cm_y = np.bincount(labs, weights=rows, minlength=n + 1)[1:] / count
        cmi_x = np.bincount(labs, weights=cols * vals, minlength=n + 1)[1:] / total
        cmi_y = np.bincount(labs, weights=rows * vals, minlength=n + 1)[1:] / total
    out["Intensity_MassDisplacement"] = np.sqrt((cm_x - cmi_x) ** 2 + (cm_y - cmi_y) ** 2)
    # Quantiles: values sorted within each label (pixels are already grouped by label).
    start = objects.offsets[:-1].astype(float)
    area = objects.area.astype(float)
    sorted_vals = _sort_segments(vals, objects.offsets)
    for name, q in (("Intensity_LowerQuartileIntensity", 0.25), ("Intensity_MedianIntensity", 0.5),
                    ("Intensity_UpperQuartileIntensity", 0.75)):
        out[name] = _interpolated(sorted_vals, start, area, q)
    out["Intensity_MADIntensity"] = _mad(sorted_vals, objects.offsets, out["Intensity_MedianIntensity"])
    # CellProfiler leaves MAD at 0 for one-pixel objects (its interpolation branch is skipped).
    out["Intensity_MADIntensity"][objects.area == 1] = 0.0
    out["Location_CenterMassIntensity_X"] = cmi_x
    out["Location_CenterMassIntensity_Y"] = cmi_y
    out["Location_CenterMassIntensity_Z"] = np.where(objects.present, 0.0, np.nan)
    max_x = np.full(n, np.nan)
    max_y = np.full(n, np.nan)
    if vals.size:
        at_max = np.flatnonzero(vals == hi[labs - 1])
        first = at_max[np.r_[True, labs[at_max][1:] != labs[at_max][:-1]]]
        ids = labs[first] - 1
        max_x[ids] = cols[first]
        max_y[ids] = rows[first]
    out["Location_MaxIntensity_X"] = max_x
    out["Location_MaxIntensity_Y"] = max_y
    out["Location_MaxIntensity_Z"] = np.where(objects.present, 0.0, np.nan)
    return {k: out[k] for k in FEATURES}


def _column(key: str, image_name: str) -> str:
    # Intensity_MeanIntensity -> Intensity_MeanIntensity_DNA; Location_MaxIntensity_X -> ..._X_DNA
    return f"{key}_{image_name}"


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Intensity features of every image, named as CellProfiler's per-object export."""
    out = {}
    for name, image in images.items():
        for key, values in intensity(objects, image).items():
            out[_column(key, name)] = values
    return out
