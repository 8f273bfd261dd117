"""MeasureImageQuality (CPJUMP1 module 11): whole-image QC features for the Image table.

CellProfiler 4.2.8's definitions, for an image without a mask:

- ``FocusScore``: normalized variance ``sum((I - mean)^2) / (n * mean)`` (0 if the
  mean is not positive).
- ``LocalFocusScore_<s>``: the image is cut into a grid of about ``s x s`` tiles;
  each tile with a non-zero mean gets its normalized variance
  ``sum((I - m_t)^2) / (n_t * m_t)``; the score is ``var(v) / median(v)`` over
  tiles (0 when undefined).
- ``Correlation_<s>``: Haralick's correlation (H3) of the whole image at
  horizontal offset ``s``, after rescaling the image to [0, 1] and quantizing it
  to 8 gray levels (centrosome's ``Haralick(image, ones, 0, s).H3()``); 0 when
  not finite.
- ``PowerLogLogSlope``: the least-squares slope of log(power) against log(radius)
  of the radial power spectrum (radii 2 .. min(shape) / 8).
- ``PercentMaximal`` / ``PercentMinimal``: percentage of pixels equal to the
  image maximum / minimum (not to 1 / 0).
- ``TotalArea``, ``TotalIntensity``, ``MeanIntensity``, ``MedianIntensity``,
  ``StdIntensity``, ``MADIntensity``, ``MinIntensity``, ``MaxIntensity``: the
  pixel statistics of MeasureImageIntensity (population std; MAD is the median
  absolute deviation from the median).
- ``Scaling``: the rescaling value of a loaded image (65535 for 16-bit files);
  CellProfiler writes NaN for derived images such as illumination-corrected ones.

Column names put the image name before the scale:
``ImageQuality_LocalFocusScore_DNA_20``, ``ImageQuality_FocusScore_DNA``.

CPJUMP1 disables this module (so CellProfiler's reference Image table has no
``ImageQuality_*`` column); its settings there (scales 5, 10, 20, 50; blur,
saturation, intensity and scaling on) are the defaults here. CellProfiler measures
"All loaded images" (the raw images / 65535); which images are passed here is
the caller's choice.

References
----------
CellProfiler 4.2.8, ``cellprofiler/modules/measureimagequality.py``;
centrosome 1.3.4, ``haralick.py`` and ``radial_power_spectrum.py``.
Sun, Duthaler, Nelson, "Autofocusing in computer microscopy: selecting the
optimal focus algorithm", Microsc. Res. Tech. 65:139-149 (2004).
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import scipy.fftpack
import scipy.linalg

from ..errors import InputError
from . import _defaults
from ._objects import as_image

__all__ = ["image_quality", "focus_score", "local_focus_score", "correlation", "power_log_log_slope",
           "saturation", "intensity_statistics", "measure_image_family"]


_PREFIX = "ImageQuality"


# ----------------------------------------------------------------------------- blur
def focus_score(image: np.ndarray) -> float:
    """Normalized variance of the whole image (``ImageQuality_FocusScore``).

    Parameters
    ----------
    image : (H, W) ndarray of float

    Returns
    -------
    float
        ``sum((I - mean)^2) / (n * mean)``, or 0 when the mean is not positive.
        Computed in the image's dtype, as CellProfiler does.
    """
    if image.size == 0:
        return 0.0
    mean = np.mean(image)
    if not mean > 0:
        return 0.0
    # CellProfiler's numpy.product(shape) is an int64: times the float32 mean, a float64 (a Python
    # int would keep it float32 under numpy 2's promotion rules)
    return float(np.sum((image - mean) ** 2) / (np.prod(image.shape) * mean))


@lru_cache(maxsize=16)
def _grid(shape: tuple[int, int], scale: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Tile index of each row and column (CellProfiler's float grid), and the tile count.

    CellProfiler takes ``m = ceil(H / s)`` tiles and maps row ``i`` to
    ``int(i * m / H)``, so tiles are only about ``s`` tall when ``s`` does not
    divide ``H`` (1080 at scale 50 gives 22 tiles of ~49 rows).
    """
    h, w = shape
    m, n = (h + scale - 1) // scale, (w + scale - 1) // scale
    rows = (np.arange(h, dtype=float) * float(m) / float(h)).astype(np.int64)
    cols = (np.arange(w, dtype=float) * float(n) / float(w)).astype(np.int64)
    return rows, cols, n, m * n


@numba.njit(cache=True)
def _tile_sums(image, rows, cols, n, ntiles):
    """Per-tile pixel count, mean (float64), and sum of squared deviations from the mean."""
    h, w = image.shape
    count = np.zeros(ntiles)
    total = np.zeros(ntiles)
    for i in range(h):
        base = rows[i] * n
        for j in range(w):
            t = base + cols[j]
            count[t] += 1.0
            total[t] += image[i, j]
    mean = total / np.maximum(count, 1.0)
    ss = np.zeros(ntiles)
    for i in range(h):
        base = rows[i] * n
        for j in range(w):
            t = base + cols[j]
            d = image[i, j] - mean[t]
            ss[t] += d * d
    return count, mean, ss


def local_focus_score(image: np.ndarray, scale: int) -> float:
    """Dispersion of the tiles' normalized variances (``ImageQuality_LocalFocusScore_<scale>``).

    Parameters
    ----------
    image : (H, W) ndarray of float
    scale : int
        Tile size in pixels (see :func:`_grid` for CellProfiler's tiling).

    Returns
    -------
    float
        ``var(v) / median(v)`` over the tiles with non-zero mean, where ``v`` is
        each tile's ``sum((I - m)^2) / (n * m)``; 0 when no tile qualifies or the
        median is not positive.
    """
    if scale < 1:
        raise InputError(f"local focus scale must be >= 1, got {scale}")
    if image.size == 0:
        return 0.0
    rows, cols, n, ntiles = _grid(image.shape, int(scale))
    count, mean, ss = _tile_sums(image, rows, cols, n, ntiles)
    keep = (count > 0) & (mean != 0)
    if not keep.any():
        return 0.0
    v = ss[keep] / (count[keep] * mean[keep])
    med = np.median(v)
    if not (np.isfinite(med) and med > 0):
        return 0.0
    return float(np.var(v) / med)


@numba.njit(cache=True)
def _quantize8_kernel(image, lo, divisor):
    h, w = image.shape
    out = np.empty((h, w), np.int8)
    for i in range(h):
        for j in range(w):
            # (I - min) in the image's dtype, then divided in float64: centrosome's dtypes.
            # Floor-dividing by 1/8 (a power of two) equals floor(8 v) exactly.
            q = np.floor(np.float64(image[i, j] - lo) / divisor * 8.0)
            out[i, j] = 7 if q > 7 else (0 if q < 0 else np.int8(q))
    return out


def _quantize8(image: np.ndarray) -> np.ndarray:
    """centrosome's whole-image normalization to [0, 1] and 8-level quantization.

    ``(I - min) / (max - min)`` (divisor 1 for a constant image) floor-divided
    by 1/8 and clipped to 0..7, as ``centrosome.haralick.quantize``.
    """
    lo, hi = image.min(), image.max()
    divisor = np.float64(hi - lo) if hi > lo else np.float64(1.0)
    return _quantize8_kernel(image, lo, divisor)


@numba.njit(cache=True)
def _horizontal_cooccurrence(q, scale, levels):
    h, w = q.shape
    counts = np.zeros(levels * levels, np.int64)
    for i in range(h):
        row = q[i]
        for j in range(w - scale):
            counts[np.int64(row[j]) * levels + np.int64(row[j + scale])] += 1
    return counts.reshape(levels, levels).astype(np.float64)


def _haralick_correlation(counts: np.ndarray) -> float:
    """Haralick's H3 from a co-occurrence count matrix, with centrosome's 1-based levels."""
    total = counts.sum()
    if total == 0:
        return np.nan
    p = counts / total
    px, py = p.sum(1), p.sum(0)
    px, py = px / px.sum(), py / py.sum()
    lv = np.arange(1, p.shape[0] + 1, dtype=float)
    mux, muy = (lv * px).sum(), (lv * py).sum()
    sx = np.sqrt((((lv - mux) ** 2) * px).sum())
    sy = np.sqrt((((lv - muy) ** 2) * py).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        h3 = ((np.outer(lv, lv) * p).sum() - mux * muy) / (sx * sy)
    return 0.0 if np.isinf(h3) else float(h3)


def correlation(image: np.ndarray, scale: int, quantized: np.ndarray | None = None) -> float:
    """Haralick correlation at horizontal offset ``scale`` (``ImageQuality_Correlation_<scale>``).

    Parameters
    ----------
    image : (H, W) ndarray of float
    scale : int
        Pixel offset to the right.
    quantized : ndarray of int8, optional
        ``_quantize8(image)``, to share across scales.

    Returns
    -------
    float
        H3 of the 8-level co-occurrence matrix (levels 1..8), 0 when not finite
        (constant image, or no pixel pair at this offset), as CellProfiler.

    Notes
    -----
    The quantization is centrosome's: ``(I - min) / (max - min)`` floor-divided
    by 1/8 and clipped to 0..7, so the maximum joins level 7. The co-occurrence
    matrix only depends on the image, so a constant image has a single level
    (centrosome then sizes the matrix to 1 level; the result is 0 either way).
    """
    if scale < 1:
        raise InputError(f"correlation scale must be >= 1, got {scale}")
    q = _quantize8(image) if quantized is None else quantized
    if q.shape[1] <= scale:
        return 0.0
    levels = int(q.max()) + 1 if q.size else 1
    value = _haralick_correlation(_horizontal_cooccurrence(q, int(scale), levels))
    return value if np.isfinite(value) else 0.0


@lru_cache(maxsize=4)
def _spectrum_bins(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat indices of the FFT pixels in radius bins 2 .. floor(min(shape)/8) - 1, and their bin.

    centrosome's radius of pixel (i, j) is ``floor(sqrt(min(i, H-1-i)^2 + min(j, W-1-j)^2)) + 1``
    (note H-1-i, not the conjugate-symmetric H-i); bin 1 (the DC term) is skipped.
    """
    h, w = shape
    i = np.arange(h)
    j = np.arange(w)
    di = np.minimum(i, i[::-1]) ** 2
    dj = np.minimum(j, j[::-1]) ** 2
    radii = np.floor(np.sqrt(di[:, None] + dj[None, :])).astype(np.int64) + 1
    last = int(np.floor(min(h, w) / 8.0))  # labels are arange(2, floor(maxwidth))
    flat = radii.ravel()
    idx = np.flatnonzero((flat >= 2) & (flat < last))
    return idx, flat[idx], last


def power_log_log_slope(image: np.ndarray) -> float:
    """Slope of the log-log radial power spectrum (``ImageQuality_PowerLogLogSlope``).

    Parameters
    ----------
    image : (H, W) ndarray of float

    Returns
    -------
    float
        Least-squares slope of ``log(sum of |FFT|^2 in radius bin r)`` against
        ``log(r)`` over the bins with non-zero magnitude and finite log power,
        ``r = 2 .. floor(min(H, W) / 8) - 1``; 0 for a constant image or fewer
        than two bins.

    Notes
    -----
    centrosome's ``rps`` step by step, in its precision: the image divided by its median
    absolute deviation from the mean, ``scipy.fftpack.fft2`` (single precision for
    float32), the power squared in the magnitude's dtype, bin sums in float64, scipy's
    least squares. The MAD scaling only moves the intercept in exact arithmetic, but its
    rounding moves the slope by up to 6e-7 relative, so it is kept.
    """
    if image.ndim != 2 or image.size == 0 or not image.max() > image.min():
        return 0.0
    idx, bins, last = _spectrum_bins(image.shape)
    if last <= 2:
        return 0.0
    scaled = image / np.median(np.abs(image - image.mean()))
    with np.errstate(invalid="ignore", over="ignore"):
        mag = np.abs(scipy.fftpack.fft2(scaled - np.mean(scaled)))
        power = mag ** 2
    magsum = np.bincount(bins, weights=mag.ravel()[idx], minlength=last)[2:last]
    powsum = np.bincount(bins, weights=power.ravel()[idx], minlength=last)[2:last]
    radii = np.arange(2, last, dtype=float)
    valid = magsum > 0
    radii, powsum = radii[valid], powsum[valid]
    if radii.size <= 1:
        return 0.0
    with np.errstate(divide="ignore"):
        logp = np.log(powsum)
    ok = np.isfinite(logp)
    if ok.sum() <= 1:
        return 0.0
    a = np.column_stack([np.log(radii)[ok], np.ones(ok.sum())])
    return float(scipy.linalg.lstsq(a, logp[ok][:, None])[0][0, 0])


# ----------------------------------------------------------------------------- saturation, intensity
def saturation(image: np.ndarray) -> dict[str, float]:
    """``PercentMaximal`` and ``PercentMinimal``: % of pixels at the image's own max / min."""
    n = image.size
    if n == 0:
        return {"PercentMaximal": 0.0, "PercentMinimal": 0.0}
    return {"PercentMaximal": 100.0 * float(np.count_nonzero(image == image.max())) / n,
            "PercentMinimal": 100.0 * float(np.count_nonzero(image == image.min())) / n}


def intensity_statistics(image: np.ndarray) -> dict[str, float]:
    """MeasureImageIntensity's whole-image statistics, as MeasureImageQuality reports them.

    Returns
    -------
    dict
        ``TotalArea`` (pixel count), ``TotalIntensity``, ``MeanIntensity``,
        ``MedianIntensity``, ``StdIntensity`` (population), ``MADIntensity``,
        ``MaxIntensity``, ``MinIntensity``; all 0 for an empty image. Sums are
        numpy's in the image dtype, as CellProfiler's.
    """
    n = image.size
    if n == 0:
        return dict.fromkeys(("TotalArea", "TotalIntensity", "MeanIntensity", "MedianIntensity",
                              "StdIntensity", "MADIntensity", "MaxIntensity", "MinIntensity"), 0.0)
    total = np.sum(image)
    median = np.median(image)
    # CellProfiler's ``pixel_sum / float(pixel_count)``: under its numpy 1.23 a float32 scalar over a
    # Python float is float64 (numpy 2 would keep float32)
    return {"TotalArea": float(n), "TotalIntensity": float(total), "MeanIntensity": float(total) / float(n),
            "MedianIntensity": float(median), "StdIntensity": float(np.std(image)),
            "MADIntensity": float(np.median(np.abs(image - median))),
            "MaxIntensity": float(image.max()), "MinIntensity": float(image.min())}


# ----------------------------------------------------------------------------- all together
_D = _defaults.DEFAULTS["imagequality"]


@_defaults.checked("imagequality")
def image_quality(image, *, scales=_D["scales"], blur: bool = _D["blur"], saturation: bool = _D["saturation"],
                  intensity: bool = _D["intensity"], scaling: bool = _D["scaling"]) -> dict[str, float]:
    """All MeasureImageQuality features of one image.

    Parameters
    ----------
    image : (H, W) ndarray
        Float in [0, 1], or integers (divided by their type's maximum, as CellProfiler loads them).
    scales : sequence of int
        Spatial scales for LocalFocusScore and Correlation (5, 10, 20, 50).
    blur, saturation, intensity : bool
        The module's "Calculate blur / saturation / intensity metrics?".
    scaling : bool
        Also ``ImageQuality_Scaling``: the integer type's maximum the image was divided by
        (65535 for uint16), NaN for a float image (CellProfiler's value for derived images).

    Returns
    -------
    dict
        ``ImageQuality_<Feature>`` and ``ImageQuality_<Feature>_<scale>``.

    References
    ----------
    CellProfiler 4.2.8, ``cellprofiler/modules/measureimagequality.py``; centrosome
    ``radial_power_spectrum.rps``.

    Examples
    --------
    >>> import numpy as np
    >>> image = (np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint16)
    >>> out = image_quality(image, scales=[5])
    >>> out["ImageQuality_Scaling"], out["ImageQuality_PercentMaximal"] > 0
    (65535.0, True)
    """
    raw = np.asarray(image)
    scale_value = float(np.iinfo(raw.dtype).max) if raw.dtype.kind in "ui" else np.nan
    return _image_quality(as_image(image), list(scales), bool(blur), bool(saturation), bool(intensity),
                          scale_value if scaling else None)


def _image_quality(image: np.ndarray, scales: list, blur: bool, saturation_metrics: bool, intensity: bool,
                   scaling: float | None) -> dict[str, float]:
    scales = [int(s) for s in scales]
    out: dict[str, float] = {}
    if scaling is not None:
        out[f"{_PREFIX}_Scaling"] = float(scaling)
    if blur:
        out[f"{_PREFIX}_FocusScore"] = focus_score(image)
        for s in scales:
            out[f"{_PREFIX}_LocalFocusScore_{s}"] = local_focus_score(image, s)
        q = _quantize8(image) if image.size else np.zeros(image.shape, np.int8)
        for s in scales:
            out[f"{_PREFIX}_Correlation_{s}"] = correlation(image, s, quantized=q)
        out[f"{_PREFIX}_PowerLogLogSlope"] = power_log_log_slope(image)
    if saturation_metrics:
        out.update({f"{_PREFIX}_{k}": v for k, v in saturation(image).items()})
    if intensity:
        out.update({f"{_PREFIX}_{k}": v for k, v in intensity_statistics(image).items()})
    return out


def _named(key: str, name: str) -> str:
    """``ImageQuality_LocalFocusScore_20`` -> ``ImageQuality_LocalFocusScore_DNA_20``."""
    parts = key.split("_")
    if parts[-1].isdigit():
        return "_".join(parts[:-1] + [name, parts[-1]])
    return f"{key}_{name}"


def measure_image_family(images: dict[str, np.ndarray], settings: dict | None = None,
                         cache: dict | None = None) -> dict[str, float]:
    """Image-table ``ImageQuality_*_<Image>`` columns for every (validated) image.

    ``ImageQuality_Scaling_<Image>`` is the image's value in ``scalings`` (``{name: scale}``),
    NaN when absent (CellProfiler's value for derived images, e.g. corrected ones); ``scaling``
    False leaves it out.
    """
    st = _defaults.resolve("imagequality", settings)
    scalings = st["scalings"] or {}
    out: dict[str, float] = {}
    for name, image in images.items():
        values = _image_quality(image, list(st["scales"]), bool(st["blur"]), bool(st["saturation"]),
                                bool(st["intensity"]), float(scalings.get(name, np.nan)) if st["scaling"] else None)
        out.update({_named(k, name): v for k, v in values.items()})
    return out
