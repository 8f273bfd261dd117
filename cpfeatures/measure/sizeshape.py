"""MeasureObjectSizeShape (CPJUMP1 module 21) for 2-D objects, all objects at once.

CellProfiler 4.2.8 measures each object with scikit-image 0.18.3's
``regionprops`` on the object's bounding-box crop, plus centrosome 1.2.3 for
the radii, Zernike moments and Feret diameters. This module computes the same
55 ``AreaShape_`` columns (advanced moments off, Zernike on, as in CPJUMP1)
for every object of a label image in a few passes over the image, with
CellProfiler's definitions:

- ``Area``: pixel count; ``Center_X/Y``: mean column/row; ``BoundingBoxMinimum``
  is the first row/column, ``BoundingBoxMaximum`` the last + 1;
  ``BoundingBoxArea`` their product; ``Extent`` = Area / BoundingBoxArea;
  ``EquivalentDiameter`` = ``(4 Area / pi) ** 0.5``.
- Second moments: with the central moments ``mu`` of the pixel coordinates,
  the inertia tensor ``[[mu02, -mu11], [-mu11, mu20]] / Area`` has eigenvalues
  ``l1 >= l2``; ``MajorAxisLength`` = 4 sqrt(l1), ``MinorAxisLength`` =
  4 sqrt(l2), ``Eccentricity`` = sqrt(1 - l2 / l1) (0 when l1 = 0),
  ``Orientation`` = ``0.5 atan2(2 mu11, mu20 - mu02)`` in degrees, and for an
  exact tie ``mu20 == mu02`` -45 if ``mu11 > 0`` else +45 (scikit-image 0.18's
  rule; later versions flip it). The moments are exact integer sums here.
- ``Perimeter``: scikit-image's ``perimeter(image, 4)``: pixels of the object
  with a 4-neighbour outside it form the border; each border pixel is weighted
  by the pattern of border pixels of the same object around it (1, sqrt 2 or
  (1 + sqrt 2) / 2), the weighted pattern counts summed in the order of the
  BLAS dot product scikit-image uses. ``FormFactor`` = 4 pi Area /
  Perimeter**2, ``Compactness`` = Perimeter**2 / max(4 pi Area, 1).
- ``EulerNumber``: 8-connected objects minus 4-connected holes by the 2x2
  configuration count (Ohser's coefficients) over the object's padded mask.
- ``ConvexArea``: pixel centres inside or on the convex hull of the pixels'
  edge midpoints (``convex_hull_image`` with offset coordinates), counted
  exactly row by row; ``Solidity`` = Area / ConvexArea.
- ``MaximumRadius``, ``MeanRadius``, ``MedianRadius``: of the Euclidean
  distance from each object pixel to the nearest pixel not in the object (other
  objects and the image border count as outside), computed exactly by a
  separable distance transform within runs of equal labels; the mean is
  accumulated in raster order with numpy's pairwise summation.
- ``MinFeretDiameter``, ``MaxFeretDiameter``: centrosome's rotating-caliper
  walk over its convex hull of pixel centres (the hull itself is rebuilt with
  the same per-column monotone chain, so vertex order and start are the same).
- ``Zernike_n_m`` (n <= ``zernike_degree``, n - m even): pixel coordinates are
  mapped into the minimum enclosing circle of the object (centrosome's
  Chrystal algorithm on the same hull, all objects in lockstep, ties for the
  smallest angle broken by numpy 1.23's argsort order as in CellProfiler), then
  ``|sum R_nm(r) (y + i x)^m| / (pi radius^2)`` over the object's pixels with
  ``r**2 <= 1``; powers and sums are formed in the order numpy forms them. A
  pixel exactly on the circle counts or not by the last bit of the radius, so
  the circle is reproduced to the bit, not just to rounding.

Objects absent from the label image (label gaps) get NaN. A one-pixel object
has Perimeter 0, so FormFactor is inf and its Zernike values NaN (radius 0), as
in CellProfiler.

References
----------
CellProfiler 4.2.8, ``cellprofiler/modules/measureobjectsizeshape.py``;
scikit-image 0.18.3 ``skimage/measure/_regionprops.py``;
centrosome 1.2.3 ``cpmorphology.py`` (``convex_hull_ijv``, ``feret_diameter``,
``minimum_enclosing_circle``) and ``zernike.py``.
K. Benkrid, D. Crookes, "Design and FPGA implementation of a perimeter
estimator", Queen's University of Belfast.
J. Ohser, W. Nagel, K. Schladitz, "The Euler number of discretized sets", 2002.
P. Felzenszwalb, D. Huttenlocher, "Distance transforms of sampled functions",
Theory of Computing 8, 2012.
G. Chrystal, "On the problem to construct the minimum circle enclosing n given
points in a plane", Proc. Edinburgh Math. Soc. 3, 1885.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import InputError
from ._np123sort import argsort_np123
from .objects import Objects, as_objects

__all__ = ["sizeshape", "measure_family", "zernike_indexes", "FEATURES"]

#: The non-Zernike columns, without the ``AreaShape_`` prefix, in CellProfiler's export order.
FEATURES = ["Area", "BoundingBoxArea", "BoundingBoxMaximum_X", "BoundingBoxMaximum_Y",
            "BoundingBoxMinimum_X", "BoundingBoxMinimum_Y", "Center_X", "Center_Y", "Compactness",
            "ConvexArea", "Eccentricity", "EquivalentDiameter", "EulerNumber", "Extent", "FormFactor",
            "MajorAxisLength", "MaxFeretDiameter", "MaximumRadius", "MeanRadius", "MedianRadius",
            "MinFeretDiameter", "MinorAxisLength", "Orientation", "Perimeter", "Solidity"]

DEFAULTS = {"zernike": True, "zernike_degree": 9}

_SQRT2 = math.sqrt(2.0)
_HALF = (1.0 + math.sqrt(2.0)) / 2.0


def zernike_indexes(degree: int = 9) -> np.ndarray:
    """The ``(n, m)`` pairs CellProfiler measures: ``0 <= m <= n <= degree``, ``n - m`` even.

    Ordered by ``n`` then ``m`` (``(0, 0), (1, 1), (2, 0), (2, 2), ...``); 30 pairs for degree 9.
    """
    return np.array([(n, m) for n in range(degree + 1) for m in range(n % 2, n + 1, 2)],
                    dtype=np.int64).reshape(-1, 2)


def _zernike_coefficients(indexes: np.ndarray) -> np.ndarray:
    """Radial-polynomial coefficients, highest power first: row ``f``, column ``k`` multiplies
    ``r ** (n - 2k)``; ``(-1)^k (n-k)! / (k! ((n+m)/2-k)! ((n-m)/2-k)!)`` in float64 factorials."""
    n_max = int(indexes[:, 0].max())
    fact = [1.0]
    for v in range(1, n_max + 1):
        fact.append(fact[-1] * float(v))
    table = np.zeros((len(indexes), n_max // 2 + 1))
    for f, (n, m) in enumerate(indexes):
        half_sum, half_diff = (n + m) // 2, (n - m) // 2
        for k in range(half_diff + 1):
            sign = 1.0 if k % 2 == 0 else -1.0
            table[f, k] = sign * fact[n - k] / (fact[k] * fact[half_sum - k] * fact[half_diff - k])
    return table


# --------------------------------------------------------------------------------------------
# Pixel passes over the whole label image
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy")
def _pixel_pass(lab, n):
    """Per object: the histogram of scikit-image's 3x3 perimeter codes over its border pixels,
    its Euler number, and its number of outline pixels (an 8-neighbour differs, or image edge)."""
    h, w = lab.shape
    border = np.zeros((h, w), np.bool_)
    outline = np.zeros(n + 1, np.int64)
    for i in range(h):
        for j in range(w):
            k = lab[i, j]
            if k == 0:
                continue
            b = (i == 0 or i == h - 1 or j == 0 or j == w - 1
                 or lab[i - 1, j] != k or lab[i + 1, j] != k or lab[i, j - 1] != k or lab[i, j + 1] != k)
            border[i, j] = b
            if b or lab[i - 1, j - 1] != k or lab[i - 1, j + 1] != k or lab[i + 1, j - 1] != k \
                    or lab[i + 1, j + 1] != k:
                outline[k] += 1
    # perimeter: histogram of the 3x3 code (1 centre + 2 per 4-neighbour + 10 per diagonal)
    hist = np.zeros((n + 1, 50), np.int64)
    for i in range(h):
        for j in range(w):
            if not border[i, j]:
                continue
            k = lab[i, j]
            code = 1
            for di in range(-1, 2):
                ii = i + di
                if ii < 0 or ii >= h:
                    continue
                for dj in range(-1, 2):
                    jj = j + dj
                    if (di == 0 and dj == 0) or jj < 0 or jj >= w:
                        continue
                    if border[ii, jj] and lab[ii, jj] == k:
                        code += 2 if (di == 0 or dj == 0) else 10
            hist[k, code] += 1
    # Euler number: 2x2 windows over the padded image; code = 1*x11 + 2*x01 + 4*x10 + 8*x00
    euler = np.zeros(n + 1, np.int64)
    for i in range(h + 1):
        for j in range(w + 1):
            p00 = lab[i - 1, j - 1] if (i > 0 and j > 0) else 0
            p01 = lab[i - 1, j] if (i > 0 and j < w) else 0
            p10 = lab[i, j - 1] if (i < h and j > 0) else 0
            p11 = lab[i, j] if (i < h and j < w) else 0
            # each distinct non-zero label once
            for t in range(4):
                k = p00 if t == 0 else (p01 if t == 1 else (p10 if t == 2 else p11))
                if k == 0:
                    continue
                if (t >= 1 and k == p00) or (t >= 2 and k == p01) or (t >= 3 and k == p10):
                    continue
                code = (1 if p11 == k else 0) + (2 if p01 == k else 0) + (4 if p10 == k else 0) \
                    + (8 if p00 == k else 0)
                if code == 8:
                    euler[k] += 1
                elif code == 6 or code == 14:
                    euler[k] -= 1
    return hist[1:], euler[1:], outline[1:]


@numba.njit(cache=True, inline="always")
def _fma(a, b, c):
    """``a * b + c`` rounded once (error-free product and sum, Dekker / Knuth)."""
    p = a * b
    split = 134217729.0  # 2^27 + 1
    t = split * a
    ah = t - (t - a)
    al = a - ah
    t = split * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    s = p + c
    bb = s - p
    r = (p - (s - bb)) + (c - bb)
    return s + (r + e)


@numba.njit(cache=True, error_model="numpy")
def _perimeter_from_hist(hist, weights):
    """``hist @ weights`` per object, summed in the order of OpenBLAS's ddot (Haswell kernel:
    16 fused multiply-add lanes over blocks of 16, lanes reduced pairwise, then the tail),
    which is how scikit-image's ``perimeter`` histogram dot ran in CellProfiler's reference."""
    n, nb = hist.shape
    out = np.zeros(n)
    acc = np.zeros(16)
    body = nb - nb % 16
    for k in range(n):
        acc[:] = 0.0
        for e in range(body):
            acc[e % 16] = _fma(float(hist[k, e]), weights[e], acc[e % 16])
        u0 = (acc[0] + acc[2]) + (acc[4] + acc[6])
        u1 = (acc[1] + acc[3]) + (acc[5] + acc[7])
        v0 = (acc[8] + acc[10]) + (acc[12] + acc[14])
        v1 = (acc[9] + acc[11]) + (acc[13] + acc[15])
        res = (u0 + v0) + (u1 + v1)
        for e in range(body, nb):
            res += hist[k, e] * weights[e]
        out[k] = res
    return out


@numba.njit(cache=True, error_model="numpy")
def _edt_squared(lab, bbox, offsets):
    """Squared Euclidean distance from each object pixel to the nearest pixel not in the object
    (background, another object, or outside the image), in :attr:`Objects.order` (each
    object's pixels in raster order). Exact: per object within its box, the distance to the
    object's edge along each column, then the lower envelope of parabolas along each row run
    (Felzenszwalb & Huttenlocher)."""
    n = offsets.size - 1
    out = np.zeros(offsets[n], np.int64)
    hmax = 1
    wmax = 1
    for k in range(n):
        hmax = max(hmax, bbox[k, 2] - bbox[k, 0])
        wmax = max(wmax, bbox[k, 3] - bbox[k, 1])
    g = np.zeros((hmax, wmax), np.int64)
    v = np.empty(wmax + 2, np.int64)
    z = np.empty(wmax + 3)
    f = np.empty(wmax + 2, np.int64)
    for k in range(n):
        if offsets[k + 1] == offsets[k]:
            continue
        r0, c0, r1, c1 = bbox[k, 0], bbox[k, 1], bbox[k, 2], bbox[k, 3]
        h, w = r1 - r0, c1 - c0
        lk = k + 1
        # columns: distance to the object's edge in the same column, down then up
        for i in range(h):
            for j in range(w):
                if lab[r0 + i, c0 + j] != lk:
                    g[i, j] = 0
                elif i > 0 and g[i - 1, j] > 0:
                    g[i, j] = g[i - 1, j] + 1
                else:
                    g[i, j] = 1
        for j in range(w):  # the row below the box is outside
            if g[h - 1, j] > 1:
                g[h - 1, j] = 1
        for i in range(h - 2, -1, -1):
            for j in range(w):
                if g[i, j] > 0 and g[i + 1, j] + 1 < g[i, j]:
                    g[i, j] = g[i + 1, j] + 1
        t_out = offsets[k]
        for i in range(h):
            j = 0
            while j < w:
                if g[i, j] == 0:
                    j += 1
                    continue
                a = j
                while j < w and g[i, j] > 0:
                    j += 1
                b = j - 1
                # parabolas at q = a-1 .. b+1 (ends are outside: f = 0)
                m = b - a + 3
                f[0] = 0
                f[m - 1] = 0
                for q in range(1, m - 1):
                    f[q] = g[i, a - 1 + q] * g[i, a - 1 + q]
                kk = 0
                v[0] = 0
                z[0] = -np.inf
                z[1] = np.inf
                for q in range(1, m):
                    s = ((f[q] + q * q) - (f[v[kk]] + v[kk] * v[kk])) / (2.0 * q - 2.0 * v[kk])
                    while s <= z[kk]:
                        kk -= 1
                        s = ((f[q] + q * q) - (f[v[kk]] + v[kk] * v[kk])) / (2.0 * q - 2.0 * v[kk])
                    kk += 1
                    v[kk] = q
                    z[kk] = s
                    z[kk + 1] = np.inf
                kk = 0
                for q in range(1, m - 1):
                    while z[kk + 1] < q:
                        kk += 1
                    dq = q - v[kk]
                    out[t_out] = dq * dq + f[v[kk]]
                    t_out += 1
    return out


@numba.njit(cache=True, error_model="numpy")
def _pairwise_sum(a, lo, n):
    """numpy's pairwise summation of ``a[lo:lo+n]`` (8 accumulators, blocks of 128)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    if n <= 128:
        r = np.empty(8)
        for t in range(8):
            r[t] = a[lo + t]
        i = 8
        stop = n - (n % 8)
        while i < stop:
            for t in range(8):
                r[t] += a[lo + i + t]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, lo, n2) + _pairwise_sum(a, lo + n2, n - n2)


@numba.njit(cache=True, error_model="numpy")
def _radii(d2, offsets):
    """Max, mean (raster-order pairwise sum / count) and median of sqrt(d2) per object.

    The median takes the middle squared distance(s) from a histogram of the integer d2."""
    n = offsets.size - 1
    mx = np.full(n, np.nan)
    mean = np.full(n, np.nan)
    med = np.full(n, np.nan)
    dist = np.empty(d2.size)
    for t in range(d2.size):
        dist[t] = math.sqrt(d2[t])
    hist = np.zeros(16, np.int64)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        cnt = hi - lo
        if cnt == 0:
            continue
        best = 0
        for t in range(lo, hi):
            best = max(best, d2[t])
        mx[k] = math.sqrt(best)
        mean[k] = _pairwise_sum(dist, lo, cnt) / cnt
        if hist.size < best + 1:
            hist = np.zeros(2 * best + 1, np.int64)
        hist[:best + 1] = 0
        for t in range(lo, hi):
            hist[d2[t]] += 1
        # 0-based ranks of the lower and upper middle elements
        r_lo = (cnt - 1) // 2
        r_hi = r_lo if cnt % 2 == 1 else r_lo + 1
        v_lo = v_hi = -1
        seen = 0
        for v in range(best + 1):
            seen += hist[v]
            if v_lo < 0 and seen > r_lo:
                v_lo = v
            if seen > r_hi:
                v_hi = v
                break
        if cnt % 2 == 1:
            med[k] = math.sqrt(v_lo)
        else:
            med[k] = (math.sqrt(v_lo) + math.sqrt(v_hi)) / 2
    return mx, mean, med


# --------------------------------------------------------------------------------------------
# Moments
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy")
def _moment_sums(rows, cols, offsets, bbox):
    """Exact integer sums per object: sum r, sum c (absolute), and n*sum(r'^2) - (sum r')^2,
    n*sum(c'^2) - (sum c')^2, n*sum(r'c') - sum r' sum c' with coordinates relative to the box."""
    n = offsets.size - 1
    out = np.zeros((n, 5), np.int64)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        r0, c0 = bbox[k, 0], bbox[k, 1]
        sr = sc = srr = scc = src = 0
        for t in range(lo, hi):
            r = rows[t] - r0
            c = cols[t] - c0
            sr += r
            sc += c
            srr += r * r
            scc += c * c
            src += r * c
        cnt = hi - lo
        out[k, 0] = sr + cnt * r0
        out[k, 1] = sc + cnt * c0
        out[k, 2] = cnt * srr - sr * sr
        out[k, 3] = cnt * scc - sc * sc
        out[k, 4] = cnt * src - sr * sc
    return out


# --------------------------------------------------------------------------------------------
# Convex hull (centrosome's per-column monotone chain) and what is built on it
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _convex(ai, aj, bi, bj, ci, cj):
    """Does a -> b -> c turn convexly (x is j, y is i)? Collinear: only a U-turn at the end."""
    cross = (bj - aj) * (ci - bi) - (cj - bj) * (bi - ai)
    if cross > 0:
        return True
    if cross < 0:
        return False
    return bj > aj and bj > cj


@numba.njit(cache=True, error_model="numpy")
def _column_extremes(rows, cols, offsets, bbox):
    """For each object and each column of its box: first and last row (-1 where empty),
    flattened object after object; ``col_off[k]`` starts object ``k``."""
    n = offsets.size - 1
    col_off = np.zeros(n + 1, np.int64)
    for k in range(n):
        col_off[k + 1] = col_off[k] + max(bbox[k, 3] - bbox[k, 1], 0)
    low = np.full(col_off[n], -1, np.int64)
    up = np.full(col_off[n], -1, np.int64)
    for k in range(n):
        base = col_off[k] - bbox[k, 1]
        for t in range(offsets[k], offsets[k + 1]):
            p = base + cols[t]
            r = rows[t]
            if low[p] < 0 or r < low[p]:
                low[p] = r
            if r > up[p]:
                up[p] = r
    return low, up, col_off


@numba.njit(cache=True, error_model="numpy")
def _hulls(low, up, col_off, bbox, pixel_counts):
    """centrosome's ``convex_hull_ijv`` for every object: counter-clockwise from the lower
    envelope, collinear points dropped. ``pixel_counts`` are the pixels each object had in the
    call (they bound, as in centrosome's in-place buffer, how many points may be pushed)."""
    n = col_off.size - 1
    pts = np.empty((col_off[n] * 2 + n, 2), np.int64)
    hoff = np.zeros(n + 1, np.int64)
    pix_end = 0
    out = 0
    for k in range(n):
        pix_end += pixel_counts[k]
        hoff[k] = out
        if pixel_counts[k] == 0:
            hoff[k + 1] = out
            continue
        c0 = bbox[k, 1]
        base = col_off[k]
        width = col_off[k + 1] - base
        need_last_upper = low[base] != up[base]
        ne = 0
        for jj in range(width):
            if low[base + jj] < 0:
                continue
            pi, pj = low[base + jj], c0 + jj
            while ne >= 2 and not _convex(pts[out + ne - 2, 0], pts[out + ne - 2, 1],
                                          pts[out + ne - 1, 0], pts[out + ne - 1, 1], pi, pj):
                ne -= 1
            pts[out + ne, 0] = pi
            pts[out + ne, 1] = pj
            ne += 1
        for jj in range(width - 1, 0, -1):
            if up[base + jj] < 0:
                continue
            pi, pj = up[base + jj], c0 + jj
            while ne >= 2 and not _convex(pts[out + ne - 2, 0], pts[out + ne - 2, 1],
                                          pts[out + ne - 1, 0], pts[out + ne - 1, 1], pi, pj):
                ne -= 1
            if pix_end > out + ne:
                pts[out + ne, 0] = pi
                pts[out + ne, 1] = pj
                ne += 1
        pi, pj = up[base], c0
        while ne >= 2 and not _convex(pts[out + ne - 2, 0], pts[out + ne - 2, 1],
                                      pts[out + ne - 1, 0], pts[out + ne - 1, 1], pi, pj):
            ne -= 1
        if need_last_upper:
            pts[out + ne, 0] = pi
            pts[out + ne, 1] = pj
            ne += 1
        out += ne
        hoff[k + 1] = out
    return pts[:out].copy(), hoff


@numba.njit(cache=True, inline="always")
def _dist2_to_line(pi, pj, ai, aj, bi, bj):
    """Squared distance from p to the line through a and b (centrosome's expression)."""
    num = (ai - bi) * (aj - pj) - (ai - pi) * (aj - bj)
    return (num * num) / ((bi - ai) * (bi - ai) + (bj - aj) * (bj - aj))


@numba.njit(cache=True, error_model="numpy")
def _feret(pts, hoff):
    """centrosome's ``feret_diameter``: antipodal pairs by its caliper walk; max = largest pair
    distance, min = smallest distance from a vertex to an edge both of whose ends are antipodal
    to it (0 when there is none)."""
    n = hoff.size - 1
    fmin = np.zeros(n)
    fmax = np.zeros(n)
    for k in range(n):
        lo = hoff[k]
        c = hoff[k + 1] - lo
        if c == 0:
            fmin[k] = np.nan
            fmax[k] = np.nan
            continue
        P = pts[lo:lo + c].astype(np.float64)
        pa = np.empty(2 * c + 4, np.int64)
        pb = np.empty(2 * c + 4, np.int64)
        npairs = 0
        if c == 1:
            pa[0] = 0
            pb[0] = 0
            npairs = 1
        elif c == 2:
            pa[0] = 0
            pb[0] = 1
            npairs = 1
        else:
            best = -1.0
            ant = 1
            for v in range(1, c - 1):
                d = _dist2_to_line(P[v, 0], P[v, 1], P[c - 1, 0], P[c - 1, 1], P[0, 0], P[0, 1])
                if d > best:
                    best = d
                    ant = v
            vert = 0
            while True:
                if npairs == pa.size:
                    pa = np.concatenate((pa, np.empty(pa.size, np.int64)))
                    pb = np.concatenate((pb, np.empty(pb.size, np.int64)))
                pa[npairs] = vert
                pb[npairs] = ant
                npairs += 1
                dc = _dist2_to_line(P[ant, 0], P[ant, 1], P[vert, 0], P[vert, 1],
                                    P[vert + 1, 0], P[vert + 1, 1])
                nxt = ant + 1
                if nxt == c:
                    nxt = 0
                dn = _dist2_to_line(P[nxt, 0], P[nxt, 1], P[vert, 0], P[vert, 1],
                                    P[vert + 1, 0], P[vert + 1, 1])
                if dc <= dn:
                    ant += 1
                else:
                    vert += 1
                if not (ant < c and vert != ant):
                    break
        big = 0
        for t in range(npairs):
            di = pts[lo + pa[t], 0] - pts[lo + pb[t], 0]
            dj = pts[lo + pa[t], 1] - pts[lo + pb[t], 1]
            d = di * di + dj * dj
            if d > big:
                big = d
        fmax[k] = math.sqrt(big)
        # antipodal relation (both orders); column c stands for vertex 0 "after the last one"
        anti = np.zeros((c, c + 1), np.bool_)
        for t in range(npairs):
            a, b = pa[t], pb[t]
            if a == b:
                continue
            anti[a, b] = True
            anti[b, a] = True
            if b == 0:
                anti[a, c] = True
            if a == 0:
                anti[b, c] = True
        small = np.inf
        for a in range(c):
            for b in range(c):
                if anti[a, b] and anti[a, b + 1]:
                    b1 = b + 1 if b + 1 < c else 0
                    d = _dist2_to_line(P[a, 0], P[a, 1], P[b, 0], P[b, 1], P[b1, 0], P[b1, 1])
                    if d < small:
                        small = d
        fmin[k] = 0.0 if small == np.inf or np.isnan(small) else math.sqrt(small)
    return fmin, fmax


@numba.njit(cache=True, error_model="numpy")
def _convex_area(pts, hoff):
    """Pixel centres in the closed convex hull of the edge midpoints (r +- 1/2, c) and
    (r, c +- 1/2) of the hull pixels: exact integer arithmetic in doubled coordinates."""
    n = hoff.size - 1
    out = np.zeros(n, np.int64)
    for k in range(n):
        lo = hoff[k]
        c = hoff[k + 1] - lo
        if c == 0:
            continue
        # diamond points in doubled coordinates (x = 2 col, y = 2 row), sorted by (x, y)
        m = 4 * c
        xs = np.empty(m, np.int64)
        ys = np.empty(m, np.int64)
        for t in range(c):
            r2, c2 = 2 * pts[lo + t, 0], 2 * pts[lo + t, 1]
            xs[4 * t], ys[4 * t] = c2, r2 - 1
            xs[4 * t + 1], ys[4 * t + 1] = c2, r2 + 1
            xs[4 * t + 2], ys[4 * t + 2] = c2 - 1, r2
            xs[4 * t + 3], ys[4 * t + 3] = c2 + 1, r2
        # insertion sort by (x, y): the points come nearly in order along the hull
        key = xs * (1 << 24) + ys
        idx = np.arange(m)
        for s in range(1, m):
            cur = idx[s]
            t = s - 1
            while t >= 0 and key[idx[t]] > key[cur]:
                idx[t + 1] = idx[t]
                t -= 1
            idx[t + 1] = cur
        # Andrew's monotone chain (strict), counter-clockwise
        hx = np.empty(2 * m + 1, np.int64)
        hy = np.empty(2 * m + 1, np.int64)
        nh = 0
        for s in range(m):
            x, y = xs[idx[s]], ys[idx[s]]
            while nh >= 2 and (hx[nh - 1] - hx[nh - 2]) * (y - hy[nh - 2]) - \
                    (hy[nh - 1] - hy[nh - 2]) * (x - hx[nh - 2]) <= 0:
                nh -= 1
            hx[nh], hy[nh] = x, y
            nh += 1
        lower_n = nh + 1
        for s in range(m - 2, -1, -1):
            x, y = xs[idx[s]], ys[idx[s]]
            while nh >= lower_n and (hx[nh - 1] - hx[nh - 2]) * (y - hy[nh - 2]) - \
                    (hy[nh - 1] - hy[nh - 2]) * (x - hx[nh - 2]) <= 0:
                nh -= 1
            hx[nh], hy[nh] = x, y
            nh += 1
        nh -= 1  # last point repeats the first
        # rows: y = 2r; the polygon's x-range at y, then even x inside it
        ymin = hy[0]
        ymax = hy[0]
        for s in range(nh):
            ymin = min(ymin, hy[s])
            ymax = max(ymax, hy[s])
        r_lo = (ymin + 1) // 2
        r_hi = ymax // 2
        total = 0
        for r in range(r_lo, r_hi + 1):
            y = 2 * r
            # the polygon's x-range at y as exact fractions lo_n / lo_d .. hi_n / hi_d (d > 0)
            lo_n, lo_d, hi_n, hi_d = 0, 0, 0, 0
            for s in range(nh):
                x0, y0 = hx[s], hy[s]
                x1, y1 = hx[(s + 1) % nh], hy[(s + 1) % nh]
                if y < min(y0, y1) or y > max(y0, y1):
                    continue
                if y0 == y1:  # horizontal edge on this row: both ends
                    a_n, a_d, b_n, b_d = min(x0, x1), 1, max(x0, x1), 1
                else:
                    num = x0 * (y1 - y0) + (y - y0) * (x1 - x0)
                    den = y1 - y0
                    if den < 0:
                        num, den = -num, -den
                    a_n, a_d, b_n, b_d = num, den, num, den
                if lo_d == 0 or a_n * lo_d < lo_n * a_d:
                    lo_n, lo_d = a_n, a_d
                if hi_d == 0 or b_n * hi_d > hi_n * b_d:
                    hi_n, hi_d = b_n, b_d
            if lo_d == 0:
                continue
            first = -((-lo_n) // (2 * lo_d))  # ceil(lo / 2): columns with lo <= 2 col <= hi
            last = hi_n // (2 * hi_d)
            if last >= first:
                total += last - first + 1
        out[k] = total
    return out


@numba.njit(cache=True, error_model="numpy")
def _enclosing_circles(pts, hoff):
    """centrosome's ``minimum_enclosing_circle`` on its hull: Chrystal's walk from the first
    two hull points, all objects in lockstep as centrosome runs them, with the same angle tests,
    the same tie-breaking for the smallest angle (first in numpy's argsort of all objects'
    angles) and the same circumcentre formula."""
    n = hoff.size - 1
    cy = np.full(n, np.nan)
    cx = np.full(n, np.nan)
    rad = np.zeros(n)
    half_pi = np.pi / 2
    total = hoff[n]
    P = pts.astype(np.float64)
    wl = np.empty(total, np.int64)  # within-label index of every hull point
    s0 = np.zeros(n, np.int64)      # global index of S0 / S1
    s1 = np.zeros(n, np.int64)
    active = np.zeros(n, np.bool_)
    for k in range(n):
        lo = hoff[k]
        c = hoff[k + 1] - lo
        for t in range(c):
            wl[lo + t] = t
        if c == 1:
            cy[k], cx[k] = P[lo, 0], P[lo, 1]
        elif c == 2:
            cy[k] = (P[lo, 0] + P[lo + 1, 0]) / 2
            cx[k] = (P[lo, 1] + P[lo + 1, 1]) / 2
            d0, d1 = cy[k] - P[lo, 0], cx[k] - P[lo, 1]
            rad[k] = math.sqrt(d0 * d0 + d1 * d1)
        elif c > 2:
            s0[k] = lo
            s1[k] = lo + 1
            active[k] = True
    vobj = np.empty(total, np.int64)
    vpt = np.empty(total, np.int64)
    a1s = np.empty(total)
    a0s = np.empty(total)
    avs = np.empty(total)
    first = np.empty(n, np.int64)
    minval = np.empty(n)
    for _ in range(total + 10):
        nv = 0
        any_active = False
        for k in range(n):
            if not active[k]:
                continue
            any_active = True
            S0, S1 = s0[k], s1[k]
            s01_0, s01_1 = P[S0, 0] - P[S1, 0], P[S0, 1] - P[S1, 1]
            n01 = s01_0 * s01_0 + s01_1 * s01_1
            first[k] = -1
            minval[k] = np.inf
            for v in range(hoff[k], hoff[k + 1]):
                if wl[v] < 2:
                    continue
                vs0_0, vs0_1 = P[v, 0] - P[S0, 0], P[v, 1] - P[S0, 1]
                vs1_0, vs1_1 = P[v, 0] - P[S1, 0], P[v, 1] - P[S1, 1]
                dot1 = (s01_0 * vs1_0 + s01_1 * vs1_1) / math.sqrt(n01 * (vs1_0 * vs1_0 + vs1_1 * vs1_1))
                a1 = abs(math.acos(dot1))
                dot0 = (-s01_0 * vs0_0 + -s01_1 * vs0_1) / math.sqrt(n01 * (vs0_0 * vs0_0 + vs0_1 * vs0_1))
                a0 = abs(math.acos(dot0))
                av = np.pi - a1 - a0
                vobj[nv] = k
                vpt[nv] = v
                a1s[nv] = a1
                a0s[nv] = a0
                avs[nv] = av
                if av < minval[k]:
                    minval[k] = av
                nv += 1
        if not any_active:
            break
        order = argsort_np123(avs[:nv])
        for t in range(nv):
            q = order[t]
            if first[vobj[q]] < 0:
                first[vobj[q]] = q
        for k in range(n):
            if not active[k]:
                continue
            S0, S1 = s0[k], s1[k]
            q = first[k]
            if q < 0 or minval[k] >= half_pi:  # S0-S1 is a diameter
                cy[k] = (P[S0, 0] + P[S1, 0]) / 2
                cx[k] = (P[S0, 1] + P[S1, 1]) / 2
                d0, d1 = P[S0, 0] - P[S1, 0], P[S0, 1] - P[S1, 1]
                rad[k] = math.sqrt(d0 * d0 + d1 * d1) / 2
                active[k] = False
                continue
            bv = vpt[q]
            if a1s[q] <= half_pi and a0s[q] <= half_pi and avs[q] <= half_pi:  # circumcircle
                y0, x0 = P[S0, 0], P[S0, 1]
                y1, x1 = P[S1, 0], P[S1, 1]
                yv, xv = P[bv, 0], P[bv, 1]
                dd = 2 * (x0 * (y1 - yv) + x1 * (yv - y0) + xv * (y0 - y1))
                q0 = y0 * y0 + x0 * x0
                q1 = y1 * y1 + x1 * x1
                qv = yv * yv + xv * xv
                xc = (q0 * (y1 - yv) + q1 * (yv - y0) + qv * (y0 - y1)) / dd
                yc = (q0 * (xv - x1) + q1 * (x0 - xv) + qv * (x1 - x0)) / dd
                cx[k], cy[k] = xc, yc
                d0, d1 = y0 - yc, x0 - xc
                rad[k] = math.sqrt(d0 * d0 + d1 * d1)
                active[k] = False
                continue
            if a0s[q] > half_pi:  # the angle at S0 is obtuse: V replaces S0
                wl[S0] = wl[bv]
                s0[k] = bv
                wl[bv] = 0
            else:                 # V replaces S1
                wl[S1] = wl[bv]
                s1[k] = bv
                wl[bv] = 1
    return cy, cx, rad


# --------------------------------------------------------------------------------------------
# Zernike moments
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _cmul(ar, ai, br, bi):
    return ar * br - ai * bi, ar * bi + ai * br


@numba.njit(cache=True, inline="always")
def _powers(zr, zi, pr, pi, sr, si):
    """``z ** m`` for m = 0..len(pr)-1 as numpy forms them: z*z for 2, z*(z*z) for 3, and
    binary powering above (products of z^(2^b) from the low bit up, starting from 1 * first,
    which is the first factor itself). The repeated squares ``sr, si`` are formed once."""
    mmax = pr.size - 1
    sr[0], si[0] = zr, zi
    for b in range(1, sr.size):
        sr[b], si[b] = _cmul(sr[b - 1], si[b - 1], sr[b - 1], si[b - 1])
    pr[0], pi[0] = 1.0, 0.0
    if mmax >= 1:
        pr[1], pi[1] = zr, zi
    if mmax >= 2:
        pr[2], pi[2] = sr[1], si[1]
    if mmax >= 3:
        pr[3], pi[3] = _cmul(zr, zi, sr[1], si[1])
    for m in range(4, mmax + 1):
        ar, ai = 0.0, 0.0
        first = True
        for b in range(sr.size):
            if m & (1 << b):
                if first:
                    ar, ai = sr[b], si[b]
                    first = False
                else:
                    ar, ai = _cmul(ar, ai, sr[b], si[b])
        pr[m], pi[m] = ar, ai


@numba.njit(cache=True, error_model="numpy")
def _zernike(rows, cols, offsets, cy, cx, rad, ns, ms, coef):
    """Per object and (n, m): |sum over pixels with r <= 1 of R_nm(r) (y + i x)^m| / (pi rad^2)."""
    n = offsets.size - 1
    nf = ns.size
    m_max = 0
    for f in range(nf):
        m_max = max(m_max, ms[f])
    nbits = 1
    while (1 << nbits) <= m_max:
        nbits += 1
    nterms = (ns - ms) // 2 + 1
    score = np.zeros((n, nf))
    re = np.zeros(nf)
    im = np.zeros(nf)
    pow_r = np.empty(m_max + 1)
    pow_i = np.empty(m_max + 1)
    sq_r = np.empty(nbits)
    sq_i = np.empty(nbits)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        if hi == lo:
            score[k, :] = np.nan
            continue
        re[:] = 0.0
        im[:] = 0.0
        for t in range(lo, hi):
            ym = (rows[t] - cy[k]) / rad[k]
            xm = (cols[t] - cx[k]) / rad[k]
            r2 = xm * xm + ym * ym
            _powers(ym, xm, pow_r, pow_i, sq_r, sq_i)
            if r2 > 1.0:  # outside the unit circle: contributes zeros
                continue
            for f in range(nf):
                s = 0.0
                for q in range(nterms[f]):
                    s = s * r2
                    s = s + coef[f, q]
                mf = ms[f]
                if mf == 0:
                    re[f] += s
                else:  # real * complex, as numpy multiplies s + 0j by z^m (up to signed zeros)
                    re[f] += s * pow_r[mf]
                    im[f] += s * pow_i[mf]
        area = rad[k] * rad[k]
        area = area * np.pi
        for f in range(nf):
            score[k, f] = math.sqrt(re[f] * re[f] + im[f] * im[f]) / area
    return score


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def _geometry(objects: Objects) -> dict:
    """Label-only work shared by every column (cached on the Objects)."""
    n = objects.count
    offsets = objects.offsets
    rows = objects.rows.astype(np.int64)
    cols = objects.cols.astype(np.int64)
    bbox = objects.bbox
    hist, euler, outline = _pixel_pass(objects.labels, n)
    low, up, col_off = _column_extremes(rows, cols, offsets, bbox)
    return {"rows": rows, "cols": cols, "bbox": bbox, "hist": hist, "euler": euler,
            "outline": outline, "low": low, "up": up, "col_off": col_off}


def sizeshape(labels, zernike: bool = True, zernike_degree: int = 9) -> dict[str, np.ndarray]:
    """CellProfiler's MeasureObjectSizeShape features of every object (see the module docstring).

    Parameters
    ----------
    labels : (H, W) ndarray of int or Objects
        0 is background, objects are 1..N.
    zernike : bool
        Also compute the Zernike shape moments (CPJUMP1: yes).
    zernike_degree : int
        Largest ``n`` of the Zernike moments (CellProfiler: 9, 30 moments).

    Returns
    -------
    dict of str to ndarray
        ``AreaShape_<feature>`` -> one value per label 1..max (NaN for absent labels);
        the 25 size/shape columns, then ``AreaShape_Zernike_<n>_<m>``.

    Notes
    -----
    Exact integer arithmetic is used wherever CellProfiler's result is a function of
    integers (moments, hulls, convex area, distance transform), and float operations follow
    CellProfiler's order where they matter (Zernike sums in raster order, numpy's pairwise
    summation for the mean radius, OpenBLAS's dot-product order for the perimeter, numpy
    1.23's argsort ties in the enclosing circle). On CellProfiler's reference sites 51 of
    the 55 columns are equal to the last bit; Eccentricity, Major/MinorAxisLength and
    Orientation differ in the last bits because scikit-image forms the central moments
    with BLAS and the eigenvalues with LAPACK. For an exact moment tie (symmetric
    objects) Orientation follows scikit-image 0.18's rule, where CellProfiler's own
    result depends on that rounding noise.

    References
    ----------
    CellProfiler 4.2.8 MeasureObjectSizeShape; scikit-image 0.18.3 ``regionprops``;
    centrosome 1.2.3 ``cpmorphology`` and ``zernike``.
    """
    objects = as_objects(labels)
    degree = int(zernike_degree)
    if zernike and degree < 0:
        raise InputError(f"zernike_degree must be >= 0, got {zernike_degree}")
    n = objects.count
    idx = zernike_indexes(degree) if zernike else np.zeros((0, 2), np.int64)
    names = [f"AreaShape_{f}" for f in FEATURES] + [f"AreaShape_Zernike_{a}_{b}" for a, b in idx]
    if n == 0:
        return {k: np.zeros(0) for k in names}

    geo = objects.cached(("sizeshape", "geometry"), lambda: _geometry(objects))
    rows, cols, bbox = geo["rows"], geo["cols"], geo["bbox"]
    offsets = objects.offsets
    area = objects.area.astype(np.int64)
    present = objects.present
    with np.errstate(divide="ignore", invalid="ignore"):
        areaf = area.astype(np.float64)
        sums = _moment_sums(rows, cols, offsets, bbox)
        nn = areaf * areaf
        # n^2 times the central second moments: s_rr (rows), s_cc (columns), s_rc; exact integers
        s_rr, s_cc, s_rc = (sums[:, 2].astype(np.float64), sums[:, 3].astype(np.float64),
                            sums[:, 4].astype(np.float64))
        # inertia tensor [[s_cc, -s_rc], [-s_rc, s_rr]] / n^2: eigenvalues l1 >= l2 >= 0
        root = np.sqrt((s_rr - s_cc) ** 2 + 4 * s_rc * s_rc)
        big = s_rr + s_cc + root
        l1 = big / (2 * nn)
        l2 = np.where(big > 0, 2 * (s_rr * s_cc - s_rc * s_rc) / big, 0.0) / nn
        l2 = np.clip(np.minimum(l2, l1), 0, None)
        ecc = np.where(l1 == 0, 0.0, np.sqrt(1 - l2 / l1))
        # scikit-image 0.18: 0.5 atan2(-2b, c - a) with a = mu02, b = -mu11, c = mu20 (over n)
        orient = np.where(sums[:, 2] == sums[:, 3], np.where(sums[:, 4] > 0, -np.pi / 4, np.pi / 4),
                          0.5 * np.arctan2(2 * s_rc, s_rr - s_cc))

        weights = np.zeros(50)
        weights[[5, 7, 15, 17, 25, 27]] = 1.0
        weights[[21, 33]] = _SQRT2
        weights[[13, 23]] = _HALF
        perimeter = _perimeter_from_hist(geo["hist"], weights)

        h = (bbox[:, 2] - bbox[:, 0]).astype(np.int64)
        w = (bbox[:, 3] - bbox[:, 1]).astype(np.int64)
        bbox_area = (h * w).astype(np.float64)

        hull_pts, hoff = _hulls(geo["low"], geo["up"], geo["col_off"], bbox, area)
        fmin, fmax = _feret(hull_pts, hoff)
        convex_area = _convex_area(hull_pts, hoff).astype(np.float64)

        d2 = _edt_squared(objects.labels, bbox, offsets)
        max_r, mean_r, med_r = _radii(d2, offsets)

        four_pi_area = 4.0 * np.pi * areaf
        out = {
            "Area": areaf,
            "BoundingBoxArea": bbox_area,
            "BoundingBoxMaximum_X": bbox[:, 3].astype(np.float64),
            "BoundingBoxMaximum_Y": bbox[:, 2].astype(np.float64),
            "BoundingBoxMinimum_X": bbox[:, 1].astype(np.float64),
            "BoundingBoxMinimum_Y": bbox[:, 0].astype(np.float64),
            "Center_X": sums[:, 1] / areaf,
            "Center_Y": sums[:, 0] / areaf,
            "Compactness": perimeter ** 2 / np.maximum(four_pi_area, 1),
            "ConvexArea": convex_area,
            "Eccentricity": ecc,
            "EquivalentDiameter": _pow_half(4 * area / np.pi),
            "EulerNumber": geo["euler"].astype(np.float64),
            "Extent": areaf / bbox_area,
            "FormFactor": four_pi_area / perimeter ** 2,
            "MajorAxisLength": 4 * np.sqrt(l1),
            "MaxFeretDiameter": fmax,
            "MaximumRadius": max_r,
            "MeanRadius": mean_r,
            "MedianRadius": med_r,
            "MinFeretDiameter": fmin,
            "MinorAxisLength": 4 * np.sqrt(l2),
            "Orientation": orient * (180 / np.pi),
            "Perimeter": perimeter,
            "Solidity": areaf / convex_area,
        }
        result = {f"AreaShape_{k}": np.asarray(v, dtype=np.float64) for k, v in out.items()}
        if zernike:
            # centrosome's circle starts from its hull of the outline pixels: the same column
            # extremes, with the outline count bounding the chain's push buffer
            mec_pts, mec_off = _hulls(geo["low"], geo["up"], geo["col_off"], bbox, geo["outline"])
            cy, cx, rad = _enclosing_circles(mec_pts, mec_off)
            coef = _zernike_coefficients(idx)
            score = _zernike(rows, cols, offsets, cy, cx, rad, idx[:, 0].copy(), idx[:, 1].copy(), coef)
            for f, (zn, zm) in enumerate(idx):
                result[f"AreaShape_Zernike_{zn}_{zm}"] = score[:, f]
    if not present.all():
        for v in result.values():
            v[~present] = np.nan
    return result


@numba.njit(cache=True, error_model="numpy")
def _pow_kernel(x, exponent):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = math.pow(x[i], exponent)
    return out


def _pow_half(x: np.ndarray) -> np.ndarray:
    """``x ** 0.5`` through libm's pow, as scikit-image evaluates it on a numpy scalar.

    numpy arrays and compilers turn a constant 0.5 power into sqrt, which differs from pow in
    the last bit for some x; passing the exponent at run time keeps the pow call."""
    return _pow_kernel(np.ascontiguousarray(x, dtype=np.float64), 0.5)


def measure_family(objects: Objects, images: dict[str, np.ndarray] | None = None, settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Size and shape of the objects (images are not used). Settings: ``zernike`` (default True),
    ``zernike_degree`` (default 9)."""
    settings = {**DEFAULTS, **(settings or {})}
    objects = as_objects(objects)
    zern = bool(settings["zernike"])
    degree = int(settings["zernike_degree"])
    values = objects.cached(("sizeshape", zern, degree), lambda: sizeshape(objects, zern, degree))
    return {k: v.copy() for k, v in values.items()}
