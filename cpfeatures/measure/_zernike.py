"""Zernike moments, once for both families that measure them.

- Shape (MeasureObjectSizeShape, ``AreaShape_Zernike_n_m``): :func:`shape_zernike`,
  ``|sum R_nm(r) (y + i x)^m| / (pi radius^2)`` over the object's pixels inside its
  minimum enclosing circle, as centrosome's ``zernike.zernike`` forms it;
- intensity (MeasureObjectIntensityDistribution, ``RadialDistribution_ZernikeMagnitude``):
  :func:`intensity_zernike_sums`, the intensity-weighted sums of ``V_nm``, as CellProfiler's
  ``calculate_zernikes`` with centrosome's ``construct_zernike_polynomials``.

Both use the indexes and radial-polynomial coefficients below and the circle of
:func:`cpfeatures.measure._hull.enclosing_circles`.

References
----------
centrosome 1.2.3 ``zernike.py``; F. Zernike, "Beugungstheorie des Schneidenverfahrens und
seiner verbesserten Form, der Phasenkontrastmethode", Physica 1, 1934.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["zernike_indexes", "zernike_coefficients", "shape_zernike", "intensity_zernike_sums"]


def zernike_indexes(degree: int = 9) -> np.ndarray:
    """The ``(n, m)`` pairs CellProfiler measures: ``0 <= m <= n <= degree``, ``n - m`` even.

    Ordered by ``n`` then ``m`` (``(0, 0), (1, 1), (2, 0), (2, 2), ...``); 30 pairs for degree 9.
    """
    return np.array([(n, m) for n in range(degree + 1) for m in range(n % 2, n + 1, 2)],
                    dtype=np.int64).reshape(-1, 2)


def zernike_coefficients(indexes: np.ndarray) -> np.ndarray:
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
def shape_zernike(rows, cols, offsets, cy, cx, rad, ns, ms, coef):
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


@numba.njit(cache=True)
def intensity_zernike_sums(x, y, lab, weights, ns, ms, lut, count):
    """Per image, object and (n, m): sums of w * V_nm over the pixels inside the unit circle.

    ``V_nm = R_nm(r) / r^m * (y + i x)^m`` (centrosome's convention: the angle is measured
    from the y axis); NaN coordinates (one-pixel objects, radius 0) give NaN sums as in
    CellProfiler.
    """
    nimg = weights.shape[0]
    nz = ns.size
    re = np.zeros((nimg, count, nz))
    im = np.zeros((nimg, count, nz))
    maxm = 0
    for q in range(nz):
        if ms[q] > maxm:
            maxm = ms[q]
    zr = np.empty(maxm + 1)
    zi = np.empty(maxm + 1)
    for t in range(x.size):
        r2 = x[t] * x[t] + y[t] * y[t]
        if r2 > 1.0:
            continue
        zr[0], zi[0] = 1.0, 0.0
        for p in range(1, maxm + 1):
            zr[p] = zr[p - 1] * y[t] - zi[p - 1] * x[t]
            zi[p] = zr[p - 1] * x[t] + zi[p - 1] * y[t]
        k = lab[t] - 1
        for q in range(nz):
            s = 0.0
            for c in range((ns[q] - ms[q]) // 2 + 1):
                s = s * r2 + lut[q, c]
            br = s * zr[ms[q]]
            bi = s * zi[ms[q]]
            for g in range(nimg):
                w = weights[g, t]
                re[g, k, q] += w * br
                im[g, k, q] += w * bi
    return re, im
