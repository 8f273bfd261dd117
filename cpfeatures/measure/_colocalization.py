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
``<Feature>_<First>_<Second>``), ``_2`` second -> first. NaN policy: objects
absent from the label image are NaN; a constant object has an undefined
Pearson r (NaN), as in CellProfiler; when no pixel of the whole image is
"both", Manders, RWC, Overlap and K are 0 as in CellProfiler.

Optional (off by default, as in CPJUMP1): ``Costes_1`` / ``Costes_2``, Manders'
coefficients above Costes' automatic thresholds (see :mod:`._costes`).
"""

from __future__ import annotations

import math
from itertools import combinations

import numba
import numpy as np

from . import _defaults
from ._costes import COSTES_FEATURES, costes_pair, costes_settings, costes_thresholds, image_thresholds
from ._objects import Objects, as_image, as_objects, memo
from ._sort import dense_rank_float32

__all__ = ["colocalization", "costes_thresholds", "measure_family", "FEATURES", "COSTES_FEATURES"]

FEATURES = ["Correlation_Correlation", "Correlation_Overlap", "Correlation_K_1", "Correlation_K_2",
            "Correlation_Manders_1", "Correlation_Manders_2", "Correlation_RWC_1", "Correlation_RWC_2"]


class _Channel:
    """Per-image quantities shared by every pair the image is in (object pixels in label order)."""

    def __init__(self, objects: Objects, image: np.ndarray, threshold: float):
        self.image = image  # validated
        self.values = self.image.ravel()[objects.order].astype(np.float64)
        self.centered, self.norm, self.above, self.total_above = _channel_stats(
            self.values, objects.offsets, threshold / 100)
        # dense rank among all object pixels of the image (CellProfiler ranks image-wide)
        self.rank = _dense_rank(image.ravel()[objects.order] if image.dtype == np.float32 else self.values)
        self._segment_order = None  # Costes, object scope: positions sorted by (object, value), lazily


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
    """0-based rank of each value among the distinct values (``np.unique(..., return_inverse=True)[1]``)."""
    if values.dtype == np.float32:
        return dense_rank_float32(values)  # radix sort on the float bits
    return np.unique(values, return_inverse=True)[1].astype(np.int64).ravel()


@numba.njit(cache=True)
def _pair_sums(offsets, a, b, da, db, above_a, above_b, ra, rb, big_r, f32):
    """Per object: sum(da db), and over pixels above in both images: a, b, a w, b w, a b, a^2, b^2.

    With ``f32`` (both images float32, as CellProfiler holds them) the products ``a b``,
    ``a^2`` and ``b^2`` are rounded to float32 before they are summed in float64, as
    CellProfiler's ``first_pixels ** 2`` and ``first_pixels * second_pixels`` are.

    Each object's pixels are a contiguous segment; its eight sums are kept in
    local accumulators (registers) rather than updated in memory per pixel,
    in pixel order, so the results equal the per-pixel scatter bit for bit.
    """
    n = offsets.size - 1
    out = np.zeros((n, 8))
    for k in range(n):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for t in range(offsets[k], offsets[k + 1]):
            s0 += da[t] * db[t]
            if above_a[t] and above_b[t]:
                w = (big_r - abs(ra[t] - rb[t])) / big_r
                s1 += a[t]
                s2 += b[t]
                s3 += a[t] * w
                s4 += b[t] * w
                if f32:
                    fa = np.float32(a[t])
                    fb = np.float32(b[t])
                    s5 += np.float64(fa * fb)
                    s6 += np.float64(fa * fa)
                    s7 += np.float64(fb * fb)
                else:
                    s5 += a[t] * b[t]
                    s6 += a[t] * a[t]
                    s7 += b[t] * b[t]
        out[k, 0] = s0
        out[k, 1] = s1
        out[k, 2] = s2
        out[k, 3] = s3
        out[k, 4] = s4
        out[k, 5] = s5
        out[k, 6] = s6
        out[k, 7] = s7
    return out


def _pair(objects: Objects, c1: _Channel, c2: _Channel) -> dict[str, np.ndarray]:
    n = objects.count
    both_any = bool(np.any(c1.above & c2.above))
    big_r = float(max(c1.rank.max(initial=0), c2.rank.max(initial=0)) + 1)
    f32 = c1.image.dtype == np.float32 and c2.image.dtype == np.float32
    s = _pair_sums(objects.offsets, c1.values, c2.values, c1.centered, c2.centered, c1.above, c2.above,
                   c1.rank, c2.rank, big_r, f32)
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




_D = _defaults.DEFAULTS["colocalization"]


@_defaults.checked("colocalization")
def colocalization(labels, image1, image2, *, threshold: float = _D["threshold"], costes: bool = _D["costes"],
                   costes_method: str = _D["costes_method"], costes_scale: float = _D["costes_scale"],
                   costes_scope: str = _D["costes_scope"]) -> dict[str, np.ndarray]:
    """Colocalization of two images within every object (see the module docstring).

    Parameters
    ----------
    labels : ndarray of int or Objects
    image1, image2 : (H, W) ndarray
        Whole images, float in [0, 1] or integers (divided by their type's maximum);
        Costes' thresholds use every pixel, as CellProfiler.
    threshold : float
        Percentage of each image's per-object maximum above which a pixel counts
        (CPJUMP1: 15).
    costes : bool
        Also compute Manders' coefficients above Costes' automatic thresholds (CPJUMP1: off).
    costes_method : {"faster", "fast", "accurate"}
        CellProfiler's "Method for Costes thresholding" (its default: "Faster").
    costes_scale : float
        The images' acquisition maximum (CellProfiler's ``Image.scale``: 65535 for 16-bit
        images); the candidate thresholds are multiples of ``1 / costes_scale``.
    costes_scope : {"image", "object"}
        "image": CellProfiler 4.2.8, one pair of thresholds from the whole images, applied to
        every object. "object": thresholds searched within each object, as cp-measure 0.3.

    Returns
    -------
    dict
        ``Correlation_Correlation``, ``Correlation_Overlap``, ``Correlation_K_1``,
        ``Correlation_K_2``, ``Correlation_Manders_1``, ``Correlation_Manders_2``,
        ``Correlation_RWC_1``, ``Correlation_RWC_2`` (+ ``Correlation_Costes_1``,
        ``Correlation_Costes_2`` when ``costes``); one value per label 1..max.

    Notes
    -----
    Costes: per object, ``Costes_1`` = sum of image 1 over pixels above both thresholds / sum of
    image 1 over pixels at or above its own threshold; NaN for an object without such pixels,
    0 for all objects when no object pixel is above both thresholds (CellProfiler).

    References
    ----------
    Manders EMM, Verbeek FJ, Aten JA. Measurement of co-localization of objects in dual-colour
    confocal images. J Microsc. 1993;169:375-382. Costes SV et al. Biophys J. 2004;86:3993-4003.
    Singan VR et al. BMC Bioinformatics. 2011;12:407.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((8, 8), int); labels[1:7, 1:7] = 1
    >>> a = np.linspace(0, 1, 64).reshape(8, 8)
    >>> out = colocalization(labels, a, a)  # an image with itself
    >>> float(out["Correlation_Correlation"][0]), float(out["Correlation_Manders_1"][0])
    (1.0, 1.0)
    """
    objects = as_objects(labels)
    i1, i2 = as_image(image1, objects, "image1"), as_image(image2, objects, "image2")
    c1, c2 = _Channel(objects, i1, threshold), _Channel(objects, i2, threshold)
    out = _pair(objects, c1, c2)
    if costes:
        method, scale, scope = costes_settings(costes_method, costes_scale, costes_scope)
        out.update(costes_pair(objects, c1, c2, method, scale, scope))
    return out


def _names(key: str, first: str, second: str) -> str:
    if key.endswith("_1"):
        return f"{key[:-2]}_{first}_{second}"
    if key.endswith("_2"):
        return f"{key[:-2]}_{second}_{first}"
    return f"{key}_{first}_{second}"


def _cached_thresholds(store: dict, first: str, second: str, c1: _Channel, c2: _Channel, method: int,
                       scale: float) -> tuple[float, float]:
    """Whole-image Costes thresholds of a pair, once per site: they do not depend on the objects,
    so Nuclei, Cells and Cytoplasm share them (the entry keeps both arrays)."""
    key = ("colocalization-costes", first, second, method, scale)
    return memo(store, key, (c1.image, c2.image), lambda: image_thresholds(c1.image, c2.image, method, scale, store))


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """All pairs of (validated) images (CellProfiler's order: names sorted, each pair once), CellProfiler
    names. With ``cache``, the whole-image Costes thresholds are shared between object sets."""
    st = _defaults.resolve("colocalization", settings)
    costes = bool(st["costes"])
    if costes:
        method, scale, scope = costes_settings(st["costes_method"], st["costes_scale"], st["costes_scope"])
    names = sorted(images)
    channels = {name: _Channel(objects, images[name], float(st["threshold"])) for name in names}
    store = cache if cache is not None else {}  # whole-image thresholds and sort orders
    out = {}
    for first, second in combinations(names, 2):
        c1, c2 = channels[first], channels[second]
        pair = _pair(objects, c1, c2)
        if costes:
            thresholds = None
            if scope == "image" and objects.count:
                thresholds = _cached_thresholds(store, first, second, c1, c2, method, scale)
            pair.update(costes_pair(objects, c1, c2, method, scale, scope, thresholds))
        for key, values in pair.items():
            out[_names(key, first, second)] = values
    return out
