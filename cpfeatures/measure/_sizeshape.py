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
from . import _defaults
from ._hull import column_extremes, convex_area, enclosing_circles, feret, hulls
from ._np123 import pairwise_sum
from ._objects import Objects, as_objects
from ._zernike import shape_zernike, zernike_coefficients, zernike_indexes

__all__ = ["sizeshape", "measure_family", "minimum_enclosing_circles", "zernike_indexes", "FEATURES"]

#: The non-Zernike columns, without the ``AreaShape_`` prefix, in CellProfiler's export order.
FEATURES = ["Area", "BoundingBoxArea", "BoundingBoxMaximum_X", "BoundingBoxMaximum_Y",
            "BoundingBoxMinimum_X", "BoundingBoxMinimum_Y", "Center_X", "Center_Y", "Compactness",
            "ConvexArea", "Eccentricity", "EquivalentDiameter", "EulerNumber", "Extent", "FormFactor",
            "MajorAxisLength", "MaxFeretDiameter", "MaximumRadius", "MeanRadius", "MedianRadius",
            "MinFeretDiameter", "MinorAxisLength", "Orientation", "Perimeter", "Solidity"]

_D = _defaults.DEFAULTS["sizeshape"]

_SQRT2 = math.sqrt(2.0)
_HALF = (1.0 + math.sqrt(2.0)) / 2.0


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
        mean[k] = pairwise_sum(dist, lo, cnt) / cnt
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


# --------------------------------------------------------------------------------------------
# Zernike moments
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def minimum_enclosing_circles(objects: Objects) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre row, centre column, radius) of every object's minimum enclosing circle, as
    centrosome finds it (cached): its hull of the outline pixels, the same column extremes
    as the convex hull, the outline count bounding the chain's push buffer."""
    def compute():
        geo = _geometry(objects)
        pts, off = hulls(geo["low"], geo["up"], geo["col_off"], geo["bbox"], geo["outline"])
        return enclosing_circles(pts, off)

    return objects.cached(("sizeshape", "enclosing_circles"), compute)


def _geometry(objects: Objects) -> dict:
    """Label-only work shared by every column (cached on the Objects)."""
    return objects.cached(("sizeshape", "geometry"), lambda: _pixel_geometry(objects))


def _pixel_geometry(objects: Objects) -> dict:
    n = objects.count
    offsets = objects.offsets
    rows = objects.rows.astype(np.int64)
    cols = objects.cols.astype(np.int64)
    bbox = objects.bbox
    hist, euler, outline = _pixel_pass(objects.labels, n)
    low, up, col_off = column_extremes(rows, cols, offsets, bbox)
    return {"rows": rows, "cols": cols, "bbox": bbox, "hist": hist, "euler": euler,
            "outline": outline, "low": low, "up": up, "col_off": col_off}


@_defaults.checked("sizeshape")
def sizeshape(labels, *, zernike: bool = _D["zernike"], zernike_degree: int = _D["zernike_degree"]
              ) -> dict[str, np.ndarray]:
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

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((9, 9), int); labels[2:7, 2:7] = 1
    >>> out = sizeshape(labels)
    >>> out["AreaShape_Area"], out["AreaShape_EulerNumber"], out["AreaShape_Solidity"]
    (array([25.]), array([1.]), array([1.]))
    """
    return _sizeshape(as_objects(labels), bool(zernike), int(zernike_degree))


def _sizeshape(objects: Objects, zernike: bool, zernike_degree: int) -> dict[str, np.ndarray]:
    degree = int(zernike_degree)
    if zernike and degree < 0:
        raise InputError(f"zernike_degree must be >= 0, got {zernike_degree}")
    n = objects.count
    idx = zernike_indexes(degree) if zernike else np.zeros((0, 2), np.int64)
    names = [f"AreaShape_{f}" for f in FEATURES] + [f"AreaShape_Zernike_{a}_{b}" for a, b in idx]
    if n == 0:
        return {k: np.zeros(0) for k in names}

    geo = _geometry(objects)
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

        hull_pts, hoff = hulls(geo["low"], geo["up"], geo["col_off"], bbox, area)
        fmin, fmax = feret(hull_pts, hoff)
        hull_area = convex_area(hull_pts, hoff).astype(np.float64)

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
            "ConvexArea": hull_area,
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
            "Solidity": areaf / hull_area,
        }
        result = {f"AreaShape_{k}": np.asarray(v, dtype=np.float64) for k, v in out.items()}
        if zernike:
            cy, cx, rad = minimum_enclosing_circles(objects)
            coef = zernike_coefficients(idx)
            score = shape_zernike(rows, cols, offsets, cy, cx, rad, idx[:, 0].copy(), idx[:, 1].copy(), coef)
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
    """Size and shape of the objects (images are not used), CellProfiler's column names."""
    settings = _defaults.resolve("sizeshape", settings)
    objects = as_objects(objects)
    zern, degree = bool(settings["zernike"]), int(settings["zernike_degree"])
    values = objects.cached(("sizeshape", zern, degree), lambda: _sizeshape(objects, zern, degree))
    return {k: v.copy() for k, v in values.items()}
