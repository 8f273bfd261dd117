"""Convex hulls and what is measured on them, for every object at once: centrosome 1.2.3's
algorithms with its float operations (MeasureObjectSizeShape's ConvexArea, Feret diameters
and the minimum enclosing circle of the Zernike moments, also used by the intensity Zernikes).

- :func:`column_extremes` and :func:`hulls`: the hull of each object as centrosome's
  ``convex_hull_ijv`` builds it, a monotone chain over the lowest and highest pixel of
  every column, so vertex order and start are centrosome's;
- :func:`feret`: its rotating-caliper walk (``feret_diameter``);
- :func:`convex_area`: pixel centres inside or on the hull of the pixels' edge midpoints
  (scikit-image's ``convex_hull_image``), counted exactly row by row;
- :func:`enclosing_circles`: ``minimum_enclosing_circle``, Chrystal's walk from the first
  two hull points with the smallest angle's ties broken by numpy 1.23's argsort.

References
----------
centrosome 1.2.3 ``cpmorphology.py``. G. Chrystal, "On the problem to construct the minimum
circle enclosing n given points in a plane", Proc. Edinburgh Math. Soc. 3, 1885.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._np123 import argsort_np123

__all__ = ["column_extremes", "hulls", "feret", "convex_area", "enclosing_circles"]


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
def column_extremes(rows, cols, offsets, bbox):
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
def hulls(low, up, col_off, bbox, pixel_counts):
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
def feret(pts, hoff):
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
def convex_area(pts, hoff):
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
def enclosing_circles(pts, hoff):
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
