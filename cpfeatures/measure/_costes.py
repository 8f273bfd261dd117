"""Costes' automatic thresholds for MeasureColocalization (off in CPJUMP1).

``Costes_1`` / ``Costes_2`` are Manders' coefficients above Costes' automatic thresholds
(CellProfiler's "Calculate the Manders coefficients using Costes auto threshold", columns
``Correlation_Costes_<First>_<Second>`` and ``..._<Second>_<First>``):

- CellProfiler 4.2.8 finds **one** pair of thresholds ``(t, a t + b)`` per image pair from
  all pixels of the two whole images (not per object): ``y = a x + b`` is the orthogonal
  regression of the pixels non-zero in either image, ``t`` a multiple of ``1 / scale``
  (``scale``: the images' acquisition maximum, 65535 for 16-bit TIFFs) chosen from the
  Pearson r of the "background" pixels ``x < t or y < a t + b``. "Faster" (CellProfiler's
  default) narrows a window of candidates (r >= 0 moves the top down, r < 0 the bottom up)
  and returns one step below the last candidate with r >= 0; "Accurate" walks down from
  the images' maximum one step at a time and stops at the first r <= 0; "Fast" does the
  same with 10, 5 or 2 steps while r is above 0.45, 0.35 or 0.25;
- per object, ``Costes_1`` = sum of x over pixels with ``x > tx and y > ty`` / sum of x
  over pixels with ``x >= tx`` (``Costes_2`` likewise for y); an object with no pixel at
  or above the threshold is NaN (0/0), and every object is 0 when no object pixel of the
  image is above both thresholds.

The arithmetic is CellProfiler's under its numpy 1.23: the regression's means and
variances in float32, summed as numpy 1.23 sums (:mod:`._np123`), float32 images
compared with the thresholds in float32, r in float64 as scipy's ``pearsonr`` — so the
thresholds are bit-identical to CellProfiler's.

``costes_scope="object"`` instead searches thresholds within each object, as cp-measure
0.3's ``get_correlation_costes`` does (with its guards: NaN where the regression or a
background correlation is undefined). The searches run in numba for all objects at once;
the linear searches update running sums along value-sorted pixels instead of recomputing
r over every pixel at every step.

References
----------
Costes SV et al. Automatic and quantitative measurement of protein-protein colocalization
in live cells. Biophys J. 2004;86(6):3993-4003.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import InputError
from ._np123 import np123_mean_var
from ._objects import Objects, as_image, memo

__all__ = ["costes_thresholds", "costes_pair", "costes_settings", "COSTES_FEATURES", "COSTES_METHODS",
           "COSTES_SCOPES"]

COSTES_FEATURES = ["Correlation_Costes_1", "Correlation_Costes_2"]
COSTES_METHODS = ("faster", "fast", "accurate")  # CellProfiler's "Faster", "Fast", "Accurate"
COSTES_SCOPES = ("image", "object")
_FASTER, _FAST, _ACCURATE = 0, 1, 2


@numba.njit(cache=True)
def _py_floordiv(vx, wx):
    """Python's (and numpy's) float ``vx // wx``."""
    mod = np.fmod(vx, wx)
    div = (vx - mod) / wx
    if mod != 0.0:
        if (wx < 0.0) != (mod < 0.0):
            div -= 1.0
    if div != 0.0:
        floordiv = math.floor(div)
        if div - floordiv > 0.5:
            floordiv += 1.0
    else:
        floordiv = math.copysign(0.0, vx / wx)
    return floordiv


@numba.njit(cache=True)
def _cast(t, f32):
    """The threshold as the comparison sees it: numpy 1.x compares a float32 array with a float
    scalar in float32 (CellProfiler's images are float32)."""
    if f32:
        return np.float64(np.float32(t))
    return t


@numba.njit(cache=True, error_model="numpy")
def _pearson_direct(x, y, lo, hi, tx, ty, cpm):
    """Pearson r of the pixels of ``[lo, hi)`` with ``x < tx or y < ty`` (scipy's ``pearsonr``).

    Returns ``(count, r, err)``; ``err`` is scipy's ValueError (fewer than 2 pixels). A constant
    subset gives NaN, 2 pixels give the sign product (scipy 1.9). ``cpm``: cp-measure's guard
    (fewer than 3 pixels -> NaN, never an error).
    """
    n = 0
    sx = 0.0
    sy = 0.0
    x0 = y0 = x1 = y1 = 0.0
    xconst = True
    yconst = True
    for t in range(lo, hi):
        if x[t] < tx or y[t] < ty:
            if n == 0:
                x0 = x[t]
                y0 = y[t]
            else:
                if n == 1:
                    x1 = x[t]
                    y1 = y[t]
                if x[t] != x0:
                    xconst = False
                if y[t] != y0:
                    yconst = False
            n += 1
            sx += x[t]
            sy += y[t]
    if n < 2:
        return n, np.nan, not cpm
    if cpm and n < 3:
        return n, np.nan, False
    if xconst or yconst:
        return n, np.nan, False
    if n == 2:
        return n, np.sign(x1 - x0) * np.sign(y1 - y0), False
    mx = sx / n
    my = sy / n
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for t in range(lo, hi):
        if x[t] < tx or y[t] < ty:
            dx = x[t] - mx
            dy = y[t] - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
    r = sxy / (math.sqrt(sxx) * math.sqrt(syy))
    return n, max(min(r, 1.0), -1.0), False


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _shifted_sums(x, y, lo, hi, tx, ty, mx, my):
    """Count and sums of ``x - mx``, ``y - my``, their squares and product over the pixels of
    ``[lo, hi)`` with ``x < tx or y < ty``, branch-free (reassociation lets LLVM vectorize the
    sums; only their rounding, not the pixel set, depends on it)."""
    n = 0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for t in range(lo, hi):
        inside = (x[t] < tx) | (y[t] < ty)
        w = np.float64(inside)
        dx = (x[t] - mx) * w
        dy = (y[t] - my) * w
        n += np.int64(inside)
        sx += dx
        sy += dy
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    return n, sx, sy, sxx, syy, sxy


@numba.njit(cache=True, error_model="numpy")
def _pearson(x, y, lo, hi, tx, ty, cpm, mx, my, tolx, toly):
    """:func:`_pearson_direct` from one pass of shifted sums; falls back to the exact two-pass
    form near r = 0 or a near-constant subset."""
    n, sx, sy, sxx, syy, sxy = _shifted_sums(x, y, lo, hi, tx, ty, mx, my)
    r, unsure = _running_r(n, sx, sy, sxx, syy, sxy, tolx, toly)
    if unsure or abs(r) < 1e-7:
        return _pearson_direct(x, y, lo, hi, tx, ty, cpm)
    return n, r, False


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _segment_moments(x, y, lo, hi):
    """Means of the segment and 1e-9 of its sums of squared deviations (the near-constant tolerance)."""
    m = hi - lo
    mx = 0.0
    my = 0.0
    for t in range(lo, hi):
        mx += x[t]
        my += y[t]
    mx /= m
    my /= m
    vx = 0.0
    vy = 0.0
    for t in range(lo, hi):
        vx += (x[t] - mx) * (x[t] - mx)
        vy += (y[t] - my) * (y[t] - my)
    return mx, my, 1e-9 * vx, 1e-9 * vy


@numba.njit(cache=True, error_model="numpy")
def _bisection(x, y, lo, hi, a, b, scale, fx32, fy32, cpm):
    """CellProfiler's ``bisection_costes`` ("Faster") on pixels ``[lo, hi)``: thresholds or NaN."""
    mx, my, tolx, toly = _segment_moments(x, y, lo, hi)
    left = 1.0
    right = scale
    mid = _py_floordiv(right - left, 1.2) + left
    lastmid = 0.0
    valid = 1.0
    found = False
    iterations = 0
    while lastmid != mid:
        iterations += 1
        if cpm and iterations > 256:
            return np.nan, np.nan
        tx = mid / scale
        ty = a * tx + b
        n, r, err = _pearson(x, y, lo, hi, _cast(tx, fx32), _cast(ty, fy32), cpm, mx, my, tolx, toly)
        if cpm:
            if not np.isfinite(r) or r < 0:
                left = mid - 1.0
            else:
                right = mid + 1.0
                valid = mid
                found = True
        elif n <= 2 or err:
            left = mid - 1.0
        elif r < 0:
            left = mid - 1.0
        elif r >= 0:
            right = mid + 1.0
            valid = mid
        # CellProfiler: a NaN r (constant subset) changes nothing, so the loop ends
        lastmid = mid
        if right - left > 6:
            mid = _py_floordiv(right - left, 1.2) + left
        else:
            mid = _py_floordiv(right - left, 2.0) + left
    if cpm and not found:
        return np.nan, np.nan
    tx = (valid - 1.0) / scale
    return tx, a * tx + b


@numba.njit(cache=True, error_model="numpy")
def _running_r(n, sx, sy, sxx, syy, sxy, tolx, toly):
    """r from shifted running sums, and whether it is too close to a degenerate case to trust."""
    if n < 3:
        return np.nan, True
    vx = sxx - sx * sx / n
    vy = syy - sy * sy / n
    if vx <= tolx or vy <= toly:
        return np.nan, True
    r = (sxy - sx * sy / n) / math.sqrt(vx * vy)
    return max(min(r, 1.0), -1.0), False


@numba.njit(cache=True, error_model="numpy")
def _linear(x, y, lo, hi, a, b, scale, accurate, fx32, fy32, cpm, ordx, ordy):
    """CellProfiler's ``linear_costes`` ("Fast" / "Accurate") on pixels ``[lo, hi)``.

    ``ordx`` / ``ordy``: positions ``lo..hi-1`` sorted by ascending x / y. As the candidate
    threshold goes down, a pixel leaves the background set once ``x >= tx and y >= ty`` (or
    comes back when ``ty`` rises, for a negative slope); pointers along the sorted values track
    the set exactly, with the comparisons CellProfiler makes, and update running sums, so a step
    costs O(pixels that change) instead of a pass over the image. Where r from the running sums
    is within 1e-7 of a decision (0, and 0.25 / 0.35 / 0.45 for "Fast") or the set is nearly
    constant, r is recomputed exactly over the set.
    """
    m = hi - lo
    i_step = 1.0 / scale
    fmax = -np.inf
    smax = -np.inf
    mx = 0.0
    my = 0.0
    for t in range(lo, hi):
        fmax = max(fmax, x[t])
        smax = max(smax, y[t])
        mx += x[t]
        my += y[t]
    mx /= m
    my /= m
    img_max = max(fmax, smax)
    i = i_step * (_py_floordiv(img_max, i_step) + 1.0)
    thr_x = i
    thr_y = a * i + b
    while i > fmax and (a * i) + b > smax:
        i -= i_step
    # state: every pixel in the background set (x below +inf), running sums of shifted values
    c1 = np.zeros(m, np.bool_)  # not (x < tx)
    c2 = np.zeros(m, np.bool_)  # not (y < ty)
    finite = np.isfinite(a) and np.isfinite(b)
    rising = finite and a < 0  # ty grows as tx goes down
    if not finite:  # ty is the same for every candidate (i > 0)
        ty0 = _cast(a * i + b, fy32)
        for t in range(lo, hi):
            c2[t - lo] = not (y[t] < ty0)
    elif rising:
        c2[:] = True
    n = m
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for t in range(lo, hi):
        dx = x[t] - mx
        dy = y[t] - my
        sx += dx
        sy += dy
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    tolx = 1e-9 * (sxx - sx * sx / m)
    toly = 1e-9 * (syy - sy * sy / m)
    px = hi - 1  # next position of ordx (descending x) to test
    py = hi - 1 if not rising else lo
    num_true = -1
    cost = np.nan
    while i > i_step:
        thr_x = i
        thr_y = a * i + b
        tx = _cast(thr_x, fx32)
        ty = _cast(thr_y, fy32)
        while px >= lo and not (x[ordx[px]] < tx):
            t = ordx[px]
            c1[t - lo] = True
            if c2[t - lo]:
                dx = x[t] - mx
                dy = y[t] - my
                n -= 1
                sx -= dx
                sy -= dy
                sxx -= dx * dx
                syy -= dy * dy
                sxy -= dx * dy
            px -= 1
        if finite and not rising:
            while py >= lo and not (y[ordy[py]] < ty):
                t = ordy[py]
                c2[t - lo] = True
                if c1[t - lo]:
                    dx = x[t] - mx
                    dy = y[t] - my
                    n -= 1
                    sx -= dx
                    sy -= dy
                    sxx -= dx * dx
                    syy -= dy * dy
                    sxy -= dx * dy
                py -= 1
        elif rising:
            while py < hi and y[ordy[py]] < ty:
                t = ordy[py]
                c2[t - lo] = False
                if c1[t - lo]:
                    dx = x[t] - mx
                    dy = y[t] - my
                    n += 1
                    sx += dx
                    sy += dy
                    sxx += dx * dx
                    syy += dy * dy
                    sxy += dx * dy
                py += 1
        if n != num_true:
            r, unsure = _running_r(n, sx, sy, sxx, syy, sxy, tolx, toly)
            if not unsure:
                d = abs(r)
                if not accurate:
                    d = min(d, abs(r - 0.45), abs(r - 0.35), abs(r - 0.25))
                unsure = d < 1e-7
            if unsure:
                cnt, r, err = _pearson_direct(x, y, lo, hi, tx, ty, cpm)
                if err:  # CellProfiler: pearsonr raised, the search stops here
                    break
            cost = r
            num_true = n
        if cpm and not np.isfinite(cost):
            return np.nan, np.nan
        if cost <= 0:
            break
        elif accurate or i < i_step * 10:
            i -= i_step
        elif cost > 0.45:
            i -= i_step * 10
        elif cost > 0.35:
            i -= i_step * 5
        elif cost > 0.25:
            i -= i_step * 2
        else:
            i -= i_step
    return thr_x, thr_y


@numba.njit(cache=True, error_model="numpy")
def _regression_cpm(x, y, lo, hi):
    """cp-measure's checks and orthogonal regression for one object (float64); NaN if undefined."""
    m = hi - lo
    if m < 3:
        return np.nan, np.nan
    nz = 0
    sx = 0.0
    sy = 0.0
    xmin = np.inf
    xmax = -np.inf
    ymin = np.inf
    ymax = -np.inf
    for t in range(lo, hi):
        if x[t] > 0 or y[t] > 0:
            nz += 1
            sx += x[t]
            sy += y[t]
            xmin = min(xmin, x[t])
            xmax = max(xmax, x[t])
            ymin = min(ymin, y[t])
            ymax = max(ymax, y[t])
    if nz < 3 or xmax == xmin or ymax == ymin:
        return np.nan, np.nan
    xmean = sx / nz
    ymean = sy / nz
    zmean = (sx + sy) / nz
    ssx = 0.0
    ssy = 0.0
    ssz = 0.0
    for t in range(lo, hi):
        if x[t] > 0 or y[t] > 0:
            dx = x[t] - xmean
            dy = y[t] - ymean
            dz = (x[t] + y[t]) - zmean
            ssx += dx * dx
            ssy += dy * dy
            ssz += dz * dz
    xvar = ssx / (nz - 1)
    yvar = ssy / (nz - 1)
    zvar = ssz / (nz - 1)
    covar = 0.5 * (zvar - (xvar + yvar))
    if abs(covar) <= 8 * 2.220446049250313e-16 * max(xvar, yvar):
        return np.nan, np.nan
    num = (yvar - xvar) + math.sqrt((yvar - xvar) * (yvar - xvar) + 4 * (covar * covar))
    a = num / (2 * covar)
    b = ymean - a * xmean
    if not (np.isfinite(a) and np.isfinite(b)):
        return np.nan, np.nan
    return a, b


@numba.njit(cache=True, error_model="numpy")
def _search(x, y, offsets, method, scale, fx32, fy32, cpm, a_in, b_in, ordx, ordy):
    """Costes thresholds for every segment ``offsets[k]:offsets[k + 1]`` (one kernel for both scopes).

    ``cpm`` False: CellProfiler's search with the given regression (``a_in``, ``b_in``; the
    image scope passes one segment, the whole image). ``cpm`` True: cp-measure 0.3's search per
    object, its own regression and guards (NaN where undefined).
    """
    n = offsets.size - 1
    thr = np.full((n, 2), np.nan)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        a, b = a_in, b_in
        if cpm:
            a, b = _regression_cpm(x, y, lo, hi)
            if not np.isfinite(a):
                continue
        if method == _FASTER:
            tx, ty = _bisection(x, y, lo, hi, a, b, scale, fx32, fy32, cpm)
        else:
            tx, ty = _linear(x, y, lo, hi, a, b, scale, method == _ACCURATE, fx32, fy32, cpm, ordx, ordy)
        if cpm:
            if not (np.isfinite(tx) and np.isfinite(ty)):
                continue
            cnt, r, err = _pearson_direct(x, y, lo, hi, tx, ty, True)  # the chosen background set
            if not np.isfinite(r):
                continue
        thr[k, 0] = tx
        thr[k, 1] = ty
    return thr


@numba.njit(cache=True)
def _object_costes(x, y, offsets, thr):
    """cp-measure's per-object Manders above that object's own thresholds."""
    n = offsets.size - 1
    out = np.full((n, 2), np.nan)
    for k in range(n):
        tx, ty = thr[k, 0], thr[k, 1]
        if not (np.isfinite(tx) and np.isfinite(ty)):
            continue
        tot1 = tot2 = num1 = num2 = 0.0
        for t in range(offsets[k], offsets[k + 1]):
            if x[t] >= tx:
                tot1 += x[t]
            if y[t] >= ty:
                tot2 += y[t]
            if x[t] > tx and y[t] > ty:
                num1 += x[t]
                num2 += y[t]
        if tot1 > 0 and tot2 > 0:
            out[k, 0] = num1 / tot1
            out[k, 1] = num2 / tot2
    return out


@numba.njit(cache=True, error_model="numpy")
def _image_costes(lab, n, x, y, tx, ty):
    """CellProfiler's per-object Manders above the image's thresholds (``tx``, ``ty`` as compared).

    Numerators count pixels above both thresholds (``>``), denominators pixels at or above the
    own threshold (``>=``), as CellProfiler; all 0 when no object pixel is above both.
    """
    s = np.zeros((n, 4))
    any_both = False
    for t in range(lab.size):
        k = lab[t] - 1
        if x[t] >= tx:
            s[k, 0] += x[t]
        if y[t] >= ty:
            s[k, 1] += y[t]
        if x[t] > tx and y[t] > ty:
            s[k, 2] += x[t]
            s[k, 3] += y[t]
            any_both = True
    out = np.zeros((n, 2))
    if any_both:
        for k in range(n):
            out[k, 0] = s[k, 2] / s[k, 0]
            out[k, 1] = s[k, 3] / s[k, 1]
    return out


def _costes_method(method) -> int:
    key = str(method).lower()
    if key not in COSTES_METHODS:
        raise InputError(f"unknown Costes method {method!r}; valid: {', '.join(COSTES_METHODS)}")
    return COSTES_METHODS.index(key)


def _costes_scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer, float, np.floating)) \
            or not np.isfinite(scale) or scale < 2 or scale != int(scale):
        raise InputError(f"Costes scale must be a whole number >= 2 (65535 for 16-bit images), got {scale!r}")
    return float(scale)


def _regression_cp(fi: np.ndarray, si: np.ndarray) -> tuple[float, float]:
    """CellProfiler's orthogonal regression of the pixels non-zero in either image, with the
    arithmetic of its numpy 1.23: means and variances in the images' dtype (float32) summed as
    numpy 1.23 does, a float32 scalar with a Python float promoted to float64."""
    nz = (fi > 0) | (si > 0)
    fz, sz = fi[nz], si[nz]
    dtype = np.result_type(fi.dtype, si.dtype)
    xmean, xvar = (fi.dtype.type(v) for v in np123_mean_var(fz))
    ymean, yvar = (si.dtype.type(v) for v in np123_mean_var(sz))
    zvar = dtype.type(np123_mean_var(fz + sz)[1])
    with np.errstate(all="ignore"):
        covar = 0.5 * float(zvar - (xvar + yvar))
        d = yvar - xvar
        num = float(d) + math.sqrt(float(d * d) + 4 * (covar * covar))
        a = num / (2 * covar) if covar != 0 else (math.nan if num == 0 else math.copysign(math.inf, covar))
        b = float(ymean) - a * float(xmean)
    return a, b


def costes_thresholds(image1: np.ndarray, image2: np.ndarray, method: str = "faster", scale: float = 65535
                      ) -> tuple[float, float]:
    """CellProfiler 4.2.8's Costes thresholds of two whole images.

    Parameters
    ----------
    image1, image2 : ndarray
        The whole images, float in [0, 1] or integers (CellProfiler uses every unmasked
        pixel, also for per-object measurements).
    method : {"faster", "fast", "accurate"}
        CellProfiler's "Method for Costes thresholding" (default "Faster": bisection window).
    scale : float
        The images' acquisition maximum (CellProfiler's ``Image.scale``; 65535 for 16-bit
        TIFFs), which sets the step ``1 / scale`` of the candidate grid.

    Returns
    -------
    (float, float)
        The thresholds of image 1 and image 2, as CellProfiler returns them (float64; CellProfiler
        compares them with float32 images in float32).

    Notes
    -----
    The regression uses the pixels non-zero in either image; each candidate's Pearson r uses
    the pixels below either threshold. "Faster" may stop at a lower threshold than the linear
    searches when r is not monotone.

    References
    ----------
    Costes SV et al. Automatic and quantitative measurement of protein-protein colocalization in
    live cells. Biophys J. 2004;86(6):3993-4003.
    """
    i1 = as_image(image1, name="image1")
    i2 = as_image(image2, name="image2")
    if i1.shape != i2.shape:
        raise InputError(f"image shapes differ: {i1.shape} and {i2.shape}")
    return image_thresholds(i1, i2, _costes_method(method), _costes_scale(scale), {})


def _sorted_positions(image: np.ndarray, store: dict) -> np.ndarray:
    return memo(store, ("colocalization-costes-order",), image, lambda: np.argsort(image.ravel()))


def _as_float64(image: np.ndarray, store: dict) -> np.ndarray:
    return memo(store, ("colocalization-costes-f64",), image, lambda: image.ravel().astype(np.float64))


def image_thresholds(i1: np.ndarray, i2: np.ndarray, method: int, scale: float, store: dict
                      ) -> tuple[float, float]:
    if i1.size == 0:
        return math.nan, math.nan
    a, b = _regression_cp(i1.ravel(), i2.ravel())
    x, y = _as_float64(i1, store), _as_float64(i2, store)  # exact; compared with the cast thresholds
    fx32, fy32 = i1.dtype == np.float32, i2.dtype == np.float32
    if method == _FASTER:
        ordx = ordy = np.zeros(0, np.int64)
    else:
        ordx, ordy = _sorted_positions(i1, store), _sorted_positions(i2, store)
    thr = _search(x, y, np.array([0, x.size], np.int64), method, scale, fx32, fy32, False, a, b, ordx, ordy)
    return float(thr[0, 0]), float(thr[0, 1])


def _segment_order(objects: Objects, c: "_Channel") -> np.ndarray:
    """Positions of :attr:`_Channel.values` sorted by (object, value)."""
    if c._segment_order is None:
        c._segment_order = np.lexsort((c.values, objects.pixel_labels))
    return c._segment_order


def costes_pair(objects: Objects, c1: "_Channel", c2: "_Channel", method: int, scale: float, scope: str,
                 thresholds: tuple[float, float] | None = None, store: dict | None = None
                 ) -> dict[str, np.ndarray]:
    n = objects.count
    if n == 0:
        return {k: np.zeros(0) for k in COSTES_FEATURES}
    if scope == "image":
        if thresholds is None:
            thresholds = image_thresholds(c1.image, c2.image, method, scale, {} if store is None else store)
        tx = float(np.float32(thresholds[0])) if c1.image.dtype == np.float32 else thresholds[0]
        ty = float(np.float32(thresholds[1])) if c2.image.dtype == np.float32 else thresholds[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = _image_costes(objects.pixel_labels, n, c1.values, c2.values, tx, ty)
    else:
        if method == _FASTER:
            ox = oy = np.zeros(0, np.int64)
        else:
            ox, oy = _segment_order(objects, c1), _segment_order(objects, c2)
        thr = _search(c1.values, c2.values, objects.offsets, method, scale, False, False, True, 0.0, 0.0, ox, oy)
        out = _object_costes(c1.values, c2.values, objects.offsets, thr)
    out[~objects.present] = np.nan
    return {"Correlation_Costes_1": out[:, 0].copy(), "Correlation_Costes_2": out[:, 1].copy()}


def costes_settings(costes_method, costes_scale, costes_scope) -> tuple[int, float, str]:
    scope = str(costes_scope).lower()
    if scope not in COSTES_SCOPES:
        raise InputError(f"unknown Costes scope {costes_scope!r}; valid: {', '.join(COSTES_SCOPES)}")
    return _costes_method(costes_method), _costes_scale(costes_scale), scope
