"""Global thresholds as CellProfiler's Threshold module computes and applies them.

Every function takes a float image (and optional mask) and returns a scalar;
:func:`threshold_image` chains method -> correction factor -> bounds -> optional
Gaussian smoothing, returning the binary image and the measurements CellProfiler
writes to the Image table (``Threshold_FinalThreshold_<Objects>`` ...).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import scipy.ndimage as ndi
import skimage.filters

__all__ = ["minimum_cross_entropy", "otsu", "otsu_three_class", "correct_threshold", "smooth_masked",
           "threshold_image", "weighted_variance", "sum_of_entropies", "METHODS"]


def _data(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    return image[mask] if mask is not None else image.ravel()


def _degenerate(data: np.ndarray) -> float | None:
    # CellProfiler's shortcuts: an empty image thresholds at 0, a constant one at its value.
    if data.size == 0:
        return 0.0
    if np.all(data == data[0]):
        return float(data[0])
    return None


def minimum_cross_entropy(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Li's minimum cross-entropy threshold, CellProfiler's "Minimum Cross-Entropy".

    CellProfiler calls ``skimage.filters.threshold_li`` with the tolerance set
    to half the smallest gap between distinct intensities (at least half a
    16-bit grey level), which we reproduce.
    """
    data = _data(image, mask)
    fixed = _degenerate(data)
    if fixed is not None:
        return fixed
    tol = max(_smallest_gap(data, 1 / 65536) / 2, 0.5 / 65536)
    return float(skimage.filters.threshold_li(data, tolerance=tol))


def _smallest_gap(data: np.ndarray, enough: float) -> float:
    """``np.min(np.diff(np.unique(data)))``, or any gap <= ``enough`` when there is one.

    Only whether the smallest gap is below ``enough`` matters to the caller, so
    values are binned by ``enough``: two distinct values in one bin settle it
    without sorting the image (the usual case); otherwise each bin holds one
    value and the occupied bins, in order, are the distinct values.
    """
    lo, hi = float(data.min()), float(data.max())
    if (hi - lo) / enough > 1 << 22:  # too many bins: sort instead
        return float(np.min(np.diff(np.unique(data))))
    gap, values = _binned(data, lo, 1.0 / enough, int((hi - lo) / enough) + 2)
    if gap <= enough:
        return gap
    if np.isinf(gap) and values.size > 1:  # one value per bin: in bin order, the distinct values
        return float(np.min(np.diff(values)))
    return float(np.min(np.diff(np.unique(data))))  # (rounding put a wider pair in one bin)


@numba.njit(cache=True)
def _binned(data, lo, scale, nbins):
    """Bin ``data`` by ``1 / scale`` from ``lo``: (the gap between the first two distinct values found
    sharing a bin, nothing) or, when every bin holds one value, (+inf, the occupied bins' values)."""
    seen = np.zeros(nbins, np.bool_)
    value = np.empty(nbins)
    for x in data:
        b = int((x - lo) * scale)
        if not seen[b]:
            seen[b] = True
            value[b] = x
        elif value[b] != x:
            return abs(value[b] - x), value[:0]
    return np.inf, value[seen]


def otsu(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Two-class Otsu threshold (``skimage.filters.threshold_otsu``, 256 bins)."""
    data = _data(image, mask)
    fixed = _degenerate(data)
    return fixed if fixed is not None else float(skimage.filters.threshold_otsu(data))


def otsu_three_class(image: np.ndarray, mask: np.ndarray | None = None, middle: str = "foreground") -> float:
    """Three-class Otsu (128 bins as CellProfiler); the middle class joins ``middle``."""
    data = _data(image, mask)
    fixed = _degenerate(data)
    if fixed is not None:
        return fixed
    thresholds = skimage.filters.threshold_multiotsu(data, classes=3, nbins=128)
    return float(thresholds[0] if middle.lower() == "foreground" else thresholds[1])


METHODS = {
    "minimum_cross_entropy": minimum_cross_entropy,
    "otsu": otsu,
    "otsu3_foreground": lambda im, m=None: otsu_three_class(im, m, "foreground"),
    "otsu3_background": lambda im, m=None: otsu_three_class(im, m, "background"),
}


def correct_threshold(threshold: float, factor: float = 1.0, bounds: tuple[float, float] = (0.0, 1.0)) -> float:
    """Multiply by the correction factor, then clip to ``bounds`` (CellProfiler's order)."""
    return float(min(max(threshold * factor, bounds[0]), bounds[1]))


def smooth_masked(image: np.ndarray, sigma: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Gaussian smoothing with zero padding, divided by the smoothed mask (undoes edge effects)."""
    image = np.asarray(image, dtype=np.float64)
    if mask is None:
        # the filtered all-ones image is separable: an outer product of two 1-D filters
        rows = ndi.gaussian_filter1d(np.ones(image.shape[0]), sigma, mode="constant", cval=0)
        cols = ndi.gaussian_filter1d(np.ones(image.shape[1]), sigma, mode="constant", cval=0)
        bleed = np.outer(rows, cols)
        smoothed = ndi.gaussian_filter(image, sigma, mode="constant", cval=0)
    else:
        bleed = ndi.gaussian_filter(mask.astype(np.float64), sigma, mode="constant", cval=0)
        smoothed = ndi.gaussian_filter(np.where(mask, image, 0.0), sigma, mode="constant", cval=0)
    return smoothed / (bleed + np.finfo(float).eps)


def _floored(image, mask):
    """Image, mask and CellProfiler's intensity floor for the threshold statistics (1/256 of the max)."""
    image = np.asarray(image, dtype=np.float64)
    mask = np.ones(image.shape, bool) if mask is None else mask
    floor = float(image[mask].max()) / 256 if mask.any() else 0.0
    return image, mask, floor


def weighted_variance(image: np.ndarray, binary: np.ndarray, mask: np.ndarray | None = None) -> float:
    """CellProfiler's ``Threshold_WeightedVariance``.

    The variances of log2 intensities of foreground and background, weighted
    by class size; intensities are floored at 1/256 of the maximum.
    """
    image, mask, floor = _floored(image, mask)
    if floor == 0:
        return 0.0
    fg = np.log2(np.maximum(image[binary & mask], floor))
    bg = np.log2(np.maximum(image[(~binary) & mask], floor))
    if fg.size == 0:
        return float(np.var(bg))
    if bg.size == 0:
        return float(np.var(fg))
    return float((np.var(fg) * fg.size + np.var(bg) * bg.size) / (fg.size + bg.size))


def sum_of_entropies(image: np.ndarray, binary: np.ndarray, mask: np.ndarray | None = None) -> float:
    """CellProfiler's ``Threshold_SumOfEntropies`` (sum of p log2 p of both classes' histograms).

    Histograms have 256 bins of log2 intensity between the image's extremes,
    intensities floored at 1/256 of the maximum, after CellProfiler's
    deterministic perturbation below the 8-bit level (centrosome's
    ``smooth_with_noise``: a normal multiplier from ``RandomState(0)``), which
    we reproduce so the values agree.
    """
    image, mask, floor = _floored(image, mask)
    if floor == 0:
        return 0.0
    clamped = _perturb(np.maximum(image, floor), bits=8)
    lower, upper = np.log2(clamped.min()), np.log2(clamped.max())
    if upper == lower:
        return float(np.log2(mask.sum()))
    fg, bg = clamped[binary & mask], clamped[(~binary) & mask]
    if fg.size == 0 or bg.size == 0:
        return 0.0
    out = 0.0
    for part in (fg, bg):
        hist = np.histogram(np.log2(part), 256, range=(lower, upper))[0]
        hist = hist[hist > 0].astype(float)
        p = hist / hist.sum()
        out += float(np.sum(p * np.log2(p)))
    return out


@functools.lru_cache(maxsize=4)
def _noise(shape: tuple[int, ...]) -> np.ndarray:
    # the same seeded draw for every image of a shape: computed once per process
    noise = np.random.RandomState(0).normal(size=shape)
    noise.setflags(write=False)
    return noise


def _perturb(image: np.ndarray, bits: int) -> np.ndarray:
    r = _noise(image.shape)
    delta = 2.0 ** -bits
    base = np.clip(image, delta, 1)
    out = np.exp2(np.log2(base + delta) * r + (1 - r) * np.log2(base))
    return np.clip(out, 0, 1)


def threshold_image(image: np.ndarray, method: str = "minimum_cross_entropy", correction: float = 1.0,
                    bounds: tuple[float, float] = (0.0, 1.0), smoothing_scale: float = 0.0,
                    manual: float | None = None, mask: np.ndarray | None = None
                    ) -> tuple[np.ndarray, dict[str, float]]:
    """Threshold an image the way CellProfiler's global Threshold does.

    Parameters
    ----------
    image : ndarray of float in [0, 1]
    method : str
        ``"minimum_cross_entropy"``, ``"otsu"``, ``"otsu3_foreground"``,
        ``"otsu3_background"`` or ``"manual"``.
    correction : float
        Threshold correction factor.
    bounds : (float, float)
        Lower and upper bounds on the corrected threshold.
    smoothing_scale : float
        "Threshold smoothing scale": the image is Gaussian-smoothed with sigma
        ``scale / 0.6744 / 2`` (edge-corrected) before comparison; 0 = none.
    manual : float, optional
        The threshold for ``method="manual"``.
    mask : ndarray of bool, optional

    Returns
    -------
    binary : ndarray of bool
        ``smoothed >= final threshold``.
    measurements : dict
        ``FinalThreshold``, ``OrigThreshold``, ``WeightedVariance``, ``SumOfEntropies``.
    """
    image = np.asarray(image, dtype=np.float64)
    if method == "manual":
        if manual is None:
            raise ValueError("method='manual' needs a manual threshold")
        orig = final = float(manual)
    else:
        if method not in METHODS:
            raise ValueError(f"unknown threshold method {method!r}; one of {sorted(METHODS) + ['manual']}")
        orig = METHODS[method](image, mask)
        final = correct_threshold(orig, correction, bounds)
    data = image if smoothing_scale == 0 else smooth_masked(image, smoothing_scale / 0.6744 / 2.0, mask)
    binary = data >= final
    if mask is not None:
        binary &= mask
    measurements = {
        "FinalThreshold": final,
        "OrigThreshold": orig,
        "WeightedVariance": weighted_variance(image, binary, mask),
        "SumOfEntropies": sum_of_entropies(image, binary, mask),
    }
    return binary, measurements
