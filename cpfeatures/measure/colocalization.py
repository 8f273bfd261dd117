"""MeasureColocalization within objects (CPJUMP1 module 19), all objects at once.

For one pair of images (first, second) and every object, with CellProfiler
4.2.8's definitions:

- ``Correlation``: Pearson's r of the two images' pixels in the object;
- thresholds: a pixel counts as "above" in an image when it is at least
  ``threshold`` % of that image's maximum within the object; "both" = above
  in both images;
- ``Manders_1`` / ``Manders_2``: sum of first (second) image over "both"
  pixels / its sum over its own "above" pixels;
- ``RWC_1`` / ``RWC_2``: the same with each "both" pixel weighted by
  ``(R - |rank1 - rank2|) / R``, where ranks are dense ranks of intensities
  over **all object pixels of the image at once** (not per object, an oddity
  of CellProfiler we reproduce) and ``R`` is the largest rank + 1;
- ``Overlap``: sum(a b) / sqrt(sum(a^2) sum(b^2)) over "both" pixels, and
  ``K_1`` = sum(a b) / sum(a^2), ``K_2`` = sum(a b) / sum(b^2).

Keys ending in ``_1`` describe first -> second (CellProfiler names them
``<Feature>_<First>_<Second>``), ``_2`` second -> first. Costes' automatic
threshold is not implemented (CPJUMP1 does not use it). NaN policy: objects
absent from the label image are NaN; a constant object has an undefined
Pearson r (NaN), as in CellProfiler; when no pixel of the whole image is
"both", Manders, RWC, Overlap and K are 0 as in CellProfiler.
"""

from __future__ import annotations

from itertools import combinations

import numba
import numpy as np

from .objects import Objects, as_objects, check_image

__all__ = ["colocalization", "measure_family", "FEATURES"]

FEATURES = ["Correlation_Correlation", "Correlation_Overlap", "Correlation_K_1", "Correlation_K_2",
            "Correlation_Manders_1", "Correlation_Manders_2", "Correlation_RWC_1", "Correlation_RWC_2"]


class _Channel:
    """Per-image quantities shared by every pair the image is in (object pixels in label order)."""

    def __init__(self, objects: Objects, image: np.ndarray, threshold: float):
        self.values = check_image(image, objects).ravel()[objects.order].astype(np.float64)
        self.centered, self.norm, self.above, self.total_above = _channel_stats(
            self.values, objects.offsets, threshold / 100)
        # dense rank among all object pixels of the image (CellProfiler ranks image-wide)
        self.rank = _dense_rank(image.ravel()[objects.order] if image.dtype == np.float32 else self.values)


@numba.njit(cache=True)
def _channel_stats(values, offsets, fraction):
    """Per object segment: values minus the object mean, the norm of that, the pixels at or
    above ``fraction`` of the object's maximum, and the sum of those pixels' values.

    Sums run in pixel order, as the ``np.bincount`` formulation they replace.
    """
    n = offsets.size - 1
    centered = np.empty_like(values)
    above = np.zeros(values.size, np.bool_)
    norm = np.zeros(n)
    total_above = np.zeros(n)
    for k in range(n):
        a, b = offsets[k], offsets[k + 1]
        if b == a:
            norm[k] = 0.0
            continue
        total = 0.0
        peak = values[a]
        for i in range(a, b):
            total += values[i]
            if values[i] > peak:
                peak = values[i]
        mean = total / (b - a)
        ss = 0.0
        cut = fraction * peak
        ta = 0.0
        for i in range(a, b):
            d = values[i] - mean
            centered[i] = d
            ss += d * d
            if values[i] >= cut:
                above[i] = True
                ta += values[i]
        norm[k] = np.sqrt(ss)
        total_above[k] = ta
    return centered, norm, above, total_above


def _dense_rank(values: np.ndarray) -> np.ndarray:
    """0-based rank of each value among the distinct values (``np.unique(..., return_inverse=True)[1]``).

    For non-negative float32 values the bit patterns order like the values, so one
    sort of ``bits << 32 | position`` keys replaces numpy's argsort of floats.
    """
    n = values.size
    if values.dtype == np.float32 and n and n < 2 ** 32 and not np.signbit(values).any() and np.little_endian:
        keys = (values.view(np.uint32).astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
        keys.sort()
        words = keys.view(np.uint32)  # little endian: [position, bits] per key
        bits, position = words[1::2], words[0::2]
        dense = np.empty(n, np.int64)
        dense[0] = 0
        np.cumsum(bits[1:] != bits[:-1], out=dense[1:])
        rank = np.empty(n, np.int64)
        rank[position] = dense
        return rank
    return np.unique(values, return_inverse=True)[1].astype(np.int64).ravel()


@numba.njit(cache=True)
def _pair_sums(lab, n, a, b, da, db, above_a, above_b, ra, rb, big_r):
    """Per object: sum(da db), and over pixels above in both images: a, b, a w, b w, a b, a^2, b^2."""
    out = np.zeros((n, 8))
    for t in range(lab.size):
        k = lab[t] - 1
        out[k, 0] += da[t] * db[t]
        if above_a[t] and above_b[t]:
            w = (big_r - abs(ra[t] - rb[t])) / big_r
            out[k, 1] += a[t]
            out[k, 2] += b[t]
            out[k, 3] += a[t] * w
            out[k, 4] += b[t] * w
            out[k, 5] += a[t] * b[t]
            out[k, 6] += a[t] * a[t]
            out[k, 7] += b[t] * b[t]
    return out


def _pair(objects: Objects, c1: _Channel, c2: _Channel) -> dict[str, np.ndarray]:
    n = objects.count
    both_any = bool(np.any(c1.above & c2.above))
    big_r = float(max(c1.rank.max(initial=0), c2.rank.max(initial=0)) + 1)
    s = _pair_sums(objects.pixel_labels, n, c1.values, c2.values, c1.centered, c2.centered, c1.above,
                   c2.above, c1.rank, c2.rank, big_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"Correlation_Correlation": s[:, 0] / (c1.norm * c2.norm)}
        if both_any:
            out["Correlation_Overlap"] = s[:, 5] / np.sqrt(s[:, 6] * s[:, 7])
            out["Correlation_K_1"] = s[:, 5] / s[:, 6]
            out["Correlation_K_2"] = s[:, 5] / s[:, 7]
            out["Correlation_Manders_1"] = s[:, 1] / c1.total_above
            out["Correlation_Manders_2"] = s[:, 2] / c2.total_above
            out["Correlation_RWC_1"] = s[:, 3] / c1.total_above
            out["Correlation_RWC_2"] = s[:, 4] / c2.total_above
        else:  # CellProfiler: no pixel above threshold in both images anywhere -> 0
            for key in FEATURES[1:]:
                out[key] = np.zeros(n)
    for key in out:
        out[key][~objects.present] = np.nan
    return {k: out[k] for k in FEATURES}


def colocalization(labels, image1: np.ndarray, image2: np.ndarray, threshold: float = 15.0
                   ) -> dict[str, np.ndarray]:
    """Colocalization of two images within every object (see the module docstring).

    Parameters
    ----------
    labels : ndarray of int or Objects
    image1, image2 : ndarray of float in [0, 1]
    threshold : float
        Percentage of each image's per-object maximum above which a pixel counts
        (CPJUMP1: 15).

    Returns
    -------
    dict
        ``Correlation_Correlation``, ``Correlation_Overlap``, ``Correlation_K_1``,
        ``Correlation_K_2``, ``Correlation_Manders_1``, ``Correlation_Manders_2``,
        ``Correlation_RWC_1``, ``Correlation_RWC_2``; one value per label 1..max.
    """
    objects = as_objects(labels)
    return _pair(objects, _Channel(objects, image1, threshold), _Channel(objects, image2, threshold))


def _names(key: str, first: str, second: str) -> str:
    if key.endswith("_1"):
        return f"{key[:-2]}_{first}_{second}"
    if key.endswith("_2"):
        return f"{key[:-2]}_{second}_{first}"
    return f"{key}_{first}_{second}"


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """All pairs of images (CellProfiler's order: names sorted, each pair once), CellProfiler names."""
    settings = settings or {}
    threshold = float(settings.get("threshold", 15.0))
    names = sorted(images)
    channels = {name: _Channel(objects, images[name], threshold) for name in names}
    out = {}
    for first, second in combinations(names, 2):
        for key, values in _pair(objects, channels[first], channels[second]).items():
            out[_names(key, first, second)] = values
    return out
