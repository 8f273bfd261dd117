"""Illumination correction as the CPJUMP1 pipelines compute and apply it.

Plate level (``CPJUMP1_illum.cppipe``), per channel:

1. ``Resize`` x0.2, bilinear (:func:`downsample`);
2. ``CorrectIlluminationCalculate`` "Regular", "All": the mean over all sites
   of the downsampled images (streamed by :func:`calculate`);
3. median filter of size 20 (a disk of radius ``int(20 / 2.35 + 0.5) = 9`` on
   the image scaled to uint16, as CellProfiler does), then "Rescale: Yes":
   divide by the robust minimum, the value at the 2nd percentile of the
   positive pixels, after clipping below it (:func:`finalize`);
4. ``Resize`` x5 back to the image size, bilinear.

Per site (``CPJUMP1_analysis.cppipe`` module 2): :func:`apply` scales uint16 to
[0, 1] (LoadData "rescale intensities"), divides by the function and clips to
[0, 1]. :func:`background` is module 14 (the per-image "Background" function
that module 15 subtracts from DNA before nuclei are found).
"""

from __future__ import annotations

from typing import Iterable

import numba
import numpy as np
import scipy.ndimage as ndi
import skimage.transform

from .errors import InputError
from .settings import defaults, table

__all__ = ["downsample", "upsample", "finalize", "calculate", "apply", "background", "to_float", "strel_disk",
           "disk_median", "kernel_probes", "DEFAULTS"]

#: Settings of the illumination functions (``[illum]``, declared in :mod:`cpfeatures.settings`):
#: CPJUMP1_illum.cppipe.
DEFAULTS = defaults(table("illum"))

#: CellProfiler's robust minimum: the value at this fraction of the sorted positive pixels.
ROBUST_FACTOR = 0.02


def strel_disk(radius: float) -> np.ndarray:
    """Disk footprint of CellProfiler/centrosome: offsets with ``x^2 + y^2 <= radius^2``."""
    r = int(radius)
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= radius * radius)


def to_float(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An image as float in [0, 1]: integers become float32 divided by their type's maximum (65535 for
    uint16), as CellProfiler loads them; float input keeps its precision.

    Raises
    ------
    InputError
        Float input with NaN, infinite or negative values, or a non-2-D array.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {image.shape}")
    if image.dtype.kind in "ui":
        # CellProfiler's LoadData "rescale": float32 pixels / the type's maximum, in float32
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if image.dtype.kind == "b":
        return image.astype(np.float32)
    if image.dtype.kind != "f":
        raise InputError(f"{name} has unsupported dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if image.size and image.min() < 0:
        raise InputError(f"{name} has negative values; expected intensities in [0, 1]")
    return image


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    # CellProfiler's Resize: skimage.transform.resize, order 1 (bilinear), mode "symmetric",
    # skimage's default anti-aliasing when shrinking.
    return skimage.transform.resize(image, shape, order=1, mode="symmetric")


def downsample(image: np.ndarray, factor: float = 0.2) -> np.ndarray:
    """Resize by ``factor`` (CellProfiler rounds the new size), bilinear, as float in [0, 1]."""
    image = to_float(image)
    shape = (int(np.round(image.shape[0] * factor)), int(np.round(image.shape[1] * factor)))
    if (image.dtype == np.float32 and all(n % m == 0 and n // m >= 2 for n, m in zip(image.shape, shape))
            and image.shape[0] // shape[0] == image.shape[1] // shape[1]):
        return _shrink_by_integer(image, image.shape[0] // shape[0])
    return _resize(image, shape)


def _shrink_by_integer(image: np.ndarray, k: int) -> np.ndarray:
    """``_resize`` for an exact integer shrink factor ``k``, at a fraction of the cost.

    skimage's resize smooths with a Gaussian of sigma ``(k - 1) / 2`` (scipy's
    ``gaussian_filter``, "reflect" border) and then zooms with ``grid_mode``:
    output pixel ``i`` reads input ``k i + (k - 1) / 2``, an integer for odd
    ``k``, where bilinear interpolation returns the smoothed pixel itself. So
    only those rows and columns of the smoothed image are computed, in scipy's
    arithmetic (float64 sums in its order, float32 between the two axes).
    """
    sigma = (k - 1) / 2
    radius = int(4.0 * sigma + 0.5)  # scipy's default truncate = 4.0
    if k % 2 == 0 or min(image.shape) <= radius:
        # sample points between pixels, or a border reflected more than once: skimage's own way
        return _resize(image, (image.shape[0] // k, image.shape[1] // k))
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x.astype(np.float64) ** 2)
    weights = weights / weights.sum()
    h, w = image.shape
    rows = np.arange(h // k) * k + (k - 1) // 2
    cols = np.arange(w // k) * k + (k - 1) // 2
    out = _smooth_at(np.ascontiguousarray(image), rows, cols, weights[radius:])
    return np.clip(out, image.min(), image.max())  # skimage clips to the input range


@numba.njit(cache=True)
def _reflect(i, n):
    # scipy.ndimage "reflect" (d c b a | a b c d | d c b a), for |i| < 2n
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - i - 1
    return i


@numba.njit(cache=True)
def _smooth_at(image, rows, cols, half):
    """Separable symmetric filter (``half`` = centre and one side of its weights) evaluated at
    ``rows`` x ``cols`` only, as scipy's ``correlate1d`` sums it: centre first, then the pairs
    from the outermost in, in float64, rounded to float32 after each axis."""
    h, w = image.shape
    r = half.size - 1
    tmp = np.empty((rows.size, w), np.float32)
    acc = np.empty(w)
    for a in range(rows.size):  # whole rows at a time (vectorizes); each pixel's sum in the same order
        y = rows[a]
        centre = image[y]
        for x in range(w):
            acc[x] = np.float64(centre[x]) * half[0]
        for j in range(r, 0, -1):
            above = image[_reflect(y - j, h)]
            below = image[_reflect(y + j, h)]
            for x in range(w):
                acc[x] += (np.float64(above[x]) + np.float64(below[x])) * half[j]
        for x in range(w):
            tmp[a, x] = acc[x]
    out = np.empty((rows.size, cols.size), np.float32)
    for a in range(rows.size):
        for b in range(cols.size):
            x = cols[b]
            acc = np.float64(tmp[a, x]) * half[0]
            for j in range(r, 0, -1):
                acc += (np.float64(tmp[a, _reflect(x - j, w)]) + np.float64(tmp[a, _reflect(x + j, w)])) * half[j]
            out[a, b] = acc
    return out


def upsample(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize back to the full image ``shape``."""
    return _resize(np.asarray(image, dtype=np.float64), tuple(shape))


def _median_smooth(mean: np.ndarray, filter_size: float) -> np.ndarray:
    # CorrectIlluminationCalculate "Median Filter": sigma = size / 2.35, radius = int(sigma + 0.5),
    # applied to the image scaled to uint16 (its result stays on that scale; the rescale
    # step divides the scale out again).
    radius = max(1, int(filter_size / 2.35 + 0.5))
    scaled = (mean * 65535).astype(np.uint16)
    return disk_median(scaled, radius).astype(np.float64)


def disk_median(image: np.ndarray, radius: int) -> np.ndarray:
    """``skimage.filters.median(image, strel_disk(radius), behavior="rank")``, exactly, in a fraction of the time.

    scikit-image's rank median is the smallest value ``v`` with more than half of
    the footprint's in-image pixels ``<= v`` (the upper median). Its histogram
    has one bin per 16-bit value; here the values are first replaced by their
    rank among the image's distinct values, and a sliding two-level histogram
    of ranks (Huang's algorithm) moves along each row adding and removing only
    the disk's edge pixels.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind not in "ui":
        raise InputError(f"disk_median needs a 2-D integer image, got {image.dtype} {image.shape}")
    values, ranks = np.unique(image, return_inverse=True)
    ranks = ranks.reshape(image.shape).astype(np.int64)
    reach = np.array([int(np.floor(np.sqrt(radius * radius - dy * dy))) for dy in range(-radius, radius + 1)],
                     np.int64)  # half-width of the disk on each row offset
    return values[_sliding_median(ranks, values.size, reach)].astype(image.dtype)


@numba.njit(cache=True)
def _sliding_median(ranks, nvalues, reach):
    h, w = ranks.shape
    radius = (reach.size - 1) // 2
    coarse_size = 256
    ncoarse = nvalues // coarse_size + 1
    fine = np.zeros(nvalues, np.int64)
    coarse = np.zeros(ncoarse, np.int64)
    out = np.empty((h, w), np.int64)
    for y in range(h):
        fine[:] = 0
        coarse[:] = 0
        pop = 0
        for i in range(reach.size):  # the disk at x = 0
            yy = y + i - radius
            if yy < 0 or yy >= h:
                continue
            for xx in range(0, min(w - 1, reach[i]) + 1):
                r = ranks[yy, xx]
                fine[r] += 1
                coarse[r // coarse_size] += 1
                pop += 1
        for x in range(w):
            if x > 0:  # slide right: drop the left edge, add the right edge of every disk row
                for i in range(reach.size):
                    yy = y + i - radius
                    if yy < 0 or yy >= h:
                        continue
                    old = x - 1 - reach[i]
                    if old >= 0:
                        r = ranks[yy, old]
                        fine[r] -= 1
                        coarse[r // coarse_size] -= 1
                        pop -= 1
                    new = x + reach[i]
                    if new < w:
                        r = ranks[yy, new]
                        fine[r] += 1
                        coarse[r // coarse_size] += 1
                        pop += 1
            half = pop / 2.0
            total = 0
            c = 0
            while total + coarse[c] <= half:  # the coarse bin holding the median
                total += coarse[c]
                c += 1
            r = c * coarse_size
            while True:
                total += fine[r]
                if total > half:
                    break
                r += 1
            out[y, x] = r
    return out


def _rescale_robust_minimum(function: np.ndarray) -> np.ndarray:
    positive = np.sort(function[function > 0], axis=None)
    if positive.size == 0:
        return function
    robust_minimum = positive[int(positive.size * ROBUST_FACTOR)]
    if robust_minimum == 0:
        return function
    return np.maximum(function, robust_minimum) / robust_minimum


def finalize(mean_small: np.ndarray, full_shape: tuple[int, int], settings: dict | None = None) -> np.ndarray:
    """Turn the mean of the downsampled images into the full-size illumination function.

    Parameters
    ----------
    mean_small : ndarray
        Mean over sites of :func:`downsample` outputs.
    full_shape : (int, int)
        Size of the plate's images.
    settings : dict, optional
        ``median_filter_size`` (default 20), ``rescale`` (default True).

    Returns
    -------
    ndarray of float32
        The illumination function (>= 1 where rescaled), ``full_shape``.
    """
    settings = {**DEFAULTS, **(settings or {})}
    smoothed = _median_smooth(np.asarray(mean_small, dtype=np.float64), float(settings["median_filter_size"]))
    if settings["rescale"]:
        smoothed = _rescale_robust_minimum(smoothed)
    return upsample(smoothed, full_shape).astype(np.float32)


def calculate(images: Iterable[np.ndarray], settings: dict | None = None) -> np.ndarray:
    """Illumination function of one channel from all its images, streaming.

    Parameters
    ----------
    images : iterable of ndarray, or a dask array (n, H, W)
        One channel's images over the plate's sites (uint16 or float in [0, 1]).
        Consumed one at a time: memory does not grow with the number of sites.
    settings : dict, optional
        ``downsample`` (0.2), ``median_filter_size`` (20), ``rescale`` (True).

    Returns
    -------
    ndarray of float32, shape of the images

    Raises
    ------
    InputError
        No images, or images of different shapes.
    """
    settings = {**DEFAULTS, **(settings or {})}
    factor = float(settings["downsample"])
    total, shape, count = None, None, 0
    for image in images:
        image = np.asarray(image)
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            raise InputError(f"illumination images differ in shape: {shape} and {image.shape}")
        small = downsample(image, factor)
        total = small if total is None else total + small
        count += 1
    if count == 0:
        raise InputError("no images to compute an illumination function from")
    return finalize(total / count, shape, settings)


def apply(image: np.ndarray, function: np.ndarray | None = None, clip: bool = True) -> np.ndarray:
    """Correct one image: uint16 -> [0, 1], divide by the illumination function, clip to [0, 1].

    Parameters
    ----------
    image : ndarray
        Raw image (uint16 as stored) or float in [0, 1].
    function : ndarray, optional
        Illumination function of the same shape; None only rescales.
    clip : bool
        Clip the result to [0, 1] (CPJUMP1 module 2 does).

    Raises
    ------
    InputError
        Shapes differ, or the function has non-positive or non-finite values.
    """
    data = to_float(image)
    if function is None:
        return data
    function = np.asarray(function)
    if function.shape != data.shape:
        raise InputError(f"illumination function shape {function.shape} differs from image shape {data.shape}")
    if not np.isfinite(function).all() or (function.size and function.min() <= 0):
        raise InputError("illumination function has non-positive or non-finite values")
    # CellProfiler divides its float32 image by the float32 function; matching that precision
    # matters for rank-based features (RWC ties) and is exact for everything else.
    out = data / function.astype(data.dtype, copy=False)
    return np.clip(out, 0.0, 1.0) if clip else out


def background(image: np.ndarray, block_size: int = 30, smoothing_filter_size: float = 50) -> np.ndarray:
    """Per-image "Background" illumination function (CPJUMP1 module 14).

    The minimum of each ``block_size`` block (blocks tile the image from the
    top-left corner), smoothed by a Gaussian of sigma ``smoothing_filter_size /
    2.35`` with CellProfiler's edge correction (convolve the image and an
    all-ones image with zero padding and divide).
    """
    data = to_float(image)
    h, w = data.shape
    bi = np.arange(h) // block_size
    bj = np.arange(w) // block_size
    nbi, nbj = bi[-1] + 1, bj[-1] + 1
    padded = np.full((nbi * block_size, nbj * block_size), np.inf)
    padded[:h, :w] = data
    minima = padded.reshape(nbi, block_size, nbj, block_size).min(axis=(1, 3))
    # The block-minimum image is constant on blocks, so its (separable, linear) Gaussian
    # is A @ minima @ B.T, A and B being the 1-D Gaussians of the block indicator columns:
    # the same numbers as filtering the full image, about 300x cheaper.
    sigma = smoothing_filter_size / 2.35
    a = _smoothed_indicators(bi, nbi, sigma)
    b = _smoothed_indicators(bj, nbj, sigma)
    smoothed = a @ minima @ b.T
    bleed = np.outer(a.sum(axis=1), b.sum(axis=1))
    return smoothed / (bleed + np.finfo(float).eps)


def _smoothed_indicators(block_of: np.ndarray, n_blocks: int, sigma: float) -> np.ndarray:
    indicators = (block_of[:, None] == np.arange(n_blocks)[None, :]).astype(np.float64)
    return ndi.gaussian_filter1d(indicators, sigma, axis=0, mode="constant", cval=0)


def kernel_probes() -> list:
    """The numba kernel whose on-disk cache says whether the illumination functions were compiled here."""
    return [_sliding_median]
