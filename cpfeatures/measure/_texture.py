"""MeasureTexture (CPJUMP1 module 27): Haralick features of all objects in one pass.

CellProfiler 4.2.8 quantizes the whole image to 8 bits
(``skimage.util.img_as_ubyte``; other gray-level counts are rescaled from
there), then for each object calls ``mahotas.features.haralick`` on the
object's bounding box with the other pixels set to 0, ``ignore_zeros=True``,
``distance=scale``. We reproduce that definition without cropping: one numba
kernel per (image, object set) handles every scale. Object by object it walks
the object's row runs (label-only, computed once per label image), so no
label is read per pixel; it accumulates the 4 co-occurrence matrices over the
object's occupied gray-level range only (a small int32 buffer that stays in
cache) and evaluates the 13 features in reused scratch. The Image-table
texture counts the pairs of all scales and directions in one numba call.

Details that decide agreement (all from mahotas/CellProfiler):

- pixels quantized to 0 are ignored, whether background or object;
- directions 00..03 are the pixel offsets (0, d), (d, d), (d, 0), (d, -d)
  as (row, column);
- DifferenceVariance is the variance of the |i - j| distribution taken over
  ``max gray level in the object + 1`` bins (mahotas' matrix size);
- if any direction has no pair the whole object fails in mahotas, and
  CellProfiler writes 0 for every non-finite value.
"""

from __future__ import annotations

import numba
import numpy as np
import skimage.exposure
import skimage.util

from . import _defaults
from ._objects import Objects, as_image, as_objects, memo

__all__ = ["texture", "texture_image", "quantize", "measure_family", "measure_image_family", "FEATURES"]

FEATURES = ["AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment",
            "SumAverage", "SumVariance", "SumEntropy", "Entropy", "DifferenceVariance", "DifferenceEntropy",
            "InfoMeas1", "InfoMeas2"]
_DY = np.array([0, 1, 1, 1], np.int64)
_DX = np.array([1, 1, 0, -1], np.int64)
_NTAB = 1024
_LOG2 = np.log2(np.maximum(np.arange(_NTAB), 1))  # log2 of the small counts (log2 0 -> 0: p = 0 adds 0)


def quantize(image: np.ndarray, gray_levels: int = 256) -> np.ndarray:
    """CellProfiler's gray-level quantization of a [0, 1] float image (uint8): skimage's
    ``img_as_ubyte``, then a rescale to ``gray_levels`` levels."""
    if image.dtype == np.float32:
        q = _ubyte_float32(np.ascontiguousarray(image))
    else:
        q = skimage.util.img_as_ubyte(np.clip(image, 0, 1))
    if gray_levels != 256:
        q = skimage.exposure.rescale_intensity(q, in_range=(0, 255), out_range=(0, gray_levels - 1)).astype(np.uint8)
    return q


@numba.njit(cache=True)
def _ubyte_float32(image):
    """``img_as_ubyte(np.clip(image, 0, 1))`` for float32 in one pass: skimage multiplies by 255
    in float32, rounds half to even and clips."""
    out = np.empty(image.shape, np.uint8)
    flat_in = image.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        v = min(max(flat_in[i], np.float32(0.0)), np.float32(1.0)) * np.float32(255.0)
        flat_out[i] = np.uint8(np.rint(v))
    return out


@numba.njit(cache=True)
def _features(cnt, r, lo, maxv, scratch, nz, out):
    """13 Haralick features of one-way co-occurrence counts ``cnt[:r, :r]`` over gray levels lo..lo+r-1.

    mahotas counts both orders of every pair, i.e. the symmetric matrix
    ``cnt + cnt.T``; it is read on the fly and only its upper triangle is
    visited (off-diagonal cells count twice). Loops run over occupied levels
    only (non-zero marginal): a cell in an unoccupied row or column is 0 and
    adds nothing. The values are mahotas' definitions, see the module
    docstring. ``scratch`` (float, >= 5r) and ``nz`` (int, >= r) are reused
    work space. Returns False, leaving ``out`` alone, when there is no pair.
    """
    px = scratch[0:r]
    lpx = scratch[r:2 * r]
    minus = scratch[2 * r:3 * r]
    plus = scratch[3 * r:5 * r - 1]
    px[:] = 0.0
    lpx[:] = 0.0
    minus[:] = 0.0
    plus[:] = 0.0
    total = 0
    for a in range(r):
        row = 0
        for b in range(r):
            c = np.int64(cnt[a, b])
            row += c
            px[b] += c  # column sums; integer-valued, exact in any order
        px[a] += row
        total += 2 * row
    m = 0
    for a in range(r):
        if px[a] != 0.0:
            nz[m] = a
            m += 1
    if total == 0:
        return False  # no pair in this direction (mahotas raises)
    inv = 1.0 / total
    ux = 0.0
    vx2 = 0.0
    for ia in range(m):
        a = nz[ia]
        px[a] = px[a] / total  # mahotas divides (p = cmat / T); c * (1 / c) is not 1 for some c
        lpx[a] = np.log2(px[a])
        ux += px[a] * (lo + a)
        vx2 += px[a] * (lo + a) * (lo + a)
    vx = vx2 - ux * ux
    sx = np.sqrt(vx) if vx > 0 else 0.0
    asm = 0.0
    sij = 0.0
    ent = 0.0
    hxy1 = 0.0
    flo = np.float64(lo)
    linv = np.log2(inv)  # p log2 p = p (log2 c + log2(1 / total)), from a table of log2 c
    # unsigned indices below: numba then skips its negative-index wraparound on every access
    for ia in range(m):
        a = np.uint64(nz[ia])
        i = flo + np.float64(a)  # integer-valued floats: i * j is exact, as in integers
        lpa = lpx[a]
        for ib in range(ia, m):
            b = np.uint64(nz[ib])
            # branch-free over empty cells (about half of them): a zero count adds exact zeros
            c = np.uint64(cnt[a, b]) + np.uint64(cnt[b, a])
            v = np.float64(c) / total
            if c < _NTAB:
                vlv = v * (_LOG2[c] + linv)
            else:
                vlv = v * np.log2(v)
            if c == total:
                vlv = 0.0  # the whole matrix in one cell: p = 1 exactly, as mahotas has it
            v2 = v + v if ib != ia else v  # off the diagonal, cell (b, a) holds the same count
            vlv = vlv + vlv if ib != ia else vlv
            asm += v2 * v
            sij += i * (flo + np.float64(b)) * v2
            ent += vlv  # entropies summed positive and negated once: mahotas' -dot gives -0.0
            hxy1 += v2 * (lpa + lpx[b])
            plus[a + b] += v2
            minus[b - a] += v2
    contrast = 0.0
    msq = 0.0
    hm = 0.0
    idm = 0.0
    for k in range(r):
        mk = minus[k]
        contrast += k * k * mk
        idm += mk / (1.0 + k * k)
        msq += mk * mk
        if mk > 0:
            hm += mk * np.log2(mk)
    sa = 0.0
    sv2 = 0.0
    hp = 0.0
    for k in range(2 * r - 1):
        t = 2 * lo + k
        pk = plus[k]
        sa += t * pk
        sv2 += t * t * pk
        if pk > 0:
            hp += pk * np.log2(pk)
    hx = 0.0
    for ia in range(m):
        a = nz[ia]
        hx += px[a] * lpx[a]
    ent, hxy1, hm, hp, hx = -ent, -hxy1, -hm, -hp, -hx
    # HXY2 = -sum_ab px_a px_b log2(px_a px_b) = 2 HX (the marginals sum to 1); mahotas sums the
    # outer product, which agrees to rounding (~1e-16) at a fraction of the cost
    hxy2 = 2.0 * hx
    out[0] = asm
    out[1] = contrast
    out[2] = 1.0 if sx == 0.0 else (sij - ux * ux) / (sx * sx)
    out[3] = vx
    out[4] = idm
    out[5] = sa
    out[6] = sv2 - sa * sa
    out[7] = hp
    out[8] = ent
    out[9] = msq / maxv - 1.0 / (maxv * maxv)
    out[10] = hm
    out[11] = (ent - hxy1) / hx if hx > 0 else ent - hxy1
    d = 1.0 - np.exp(-2.0 * (hxy2 - ent))
    out[12] = np.sqrt(d) if d > 0 else 0.0
    return True


@numba.njit(cache=True)
def _row_runs(labels, n):
    """Objects 1..n as horizontal runs of pixels, from one raster scan of the label image.

    Returns ``(ry, rx0, rx1, run_offsets)``: run ``i`` covers row ``ry[i]``,
    columns ``rx0[i] <= x < rx1[i]``; object ``k + 1``'s runs are
    ``run_offsets[k]:run_offsets[k+1]``, in raster order.
    """
    h, w = labels.shape
    run_offsets = np.zeros(n + 1, np.int64)
    for y in range(h):
        prev = 0
        for x in range(w):
            lab = labels[y, x]
            if lab != prev and lab > 0:
                run_offsets[lab] += 1
            prev = lab
    for k in range(n):
        run_offsets[k + 1] += run_offsets[k]
    nruns = run_offsets[n]
    ry = np.empty(nruns, np.int64)
    rx0 = np.empty(nruns, np.int64)
    rx1 = np.empty(nruns, np.int64)
    cursor = run_offsets[:n].copy()
    for y in range(h):
        prev = 0
        run = -1
        for x in range(w):
            lab = labels[y, x]
            if lab != prev:
                if prev > 0:
                    rx1[run] = x
                if lab > 0:
                    run = cursor[lab - 1]
                    cursor[lab - 1] += 1
                    ry[run] = y
                    rx0[run] = x
            prev = lab
        if prev > 0:
            rx1[run] = w
    return ry, rx0, rx1, run_offsets


@numba.njit(cache=True)
def _haralick_objects(q, n, ry, rx0, rx1, run_offsets, distances, out):
    """Haralick features of objects 1..n at every distance, ignoring pixels quantized to 0.

    Object by object: its pixels, already mapped to co-occurrence matrix
    indices (gray level - lowest level; 0 and every pixel outside the object
    -> a spare index ``r``), are written into a small crop of its bounding box,
    padded by the largest distance with the spare index. Then,
    distance by distance, each pixel of the object's row runs adds one count
    to each of the 4 direction matrices, read at fixed offsets in the crop, so
    the loop reads no label and tests nothing; pairs with a spare index land
    in the matrices' spare row or column and are dropped. The 4 matrices
    interleave, so consecutive counts never wait on each other, and they stay
    in cache. The features are evaluated in reused scratch. ``out`` has shape
    (S, n, 4, 13).
    """
    pad = 0
    for s in range(distances.shape[0]):
        pad = max(pad, distances[s])
    lo = np.full(n, 256, np.int64)
    hi = np.full(n, -1, np.int64)
    bx0 = np.full(n, np.iinfo(np.int64).max, np.int64)
    bx1 = np.full(n, -1, np.int64)
    for k in range(n):
        below = np.uint8(255)  # smallest level - 1 over the non-zero pixels (0 - 1 wraps to 255)
        top = np.uint8(0)
        for i in range(run_offsets[k], run_offsets[k + 1]):
            bx0[k] = min(bx0[k], rx0[i])
            bx1[k] = max(bx1[k], rx1[i])
            run = q[ry[i], rx0[i]:rx1[i]]  # a slice: no wraparound test per pixel, branch-free min/max
            for x in range(run.size):
                below = min(below, np.uint8(run[x] - np.uint8(1)))
                top = max(top, run[x])
        if top > 0:
            lo[k] = np.int64(below) + 1
            hi[k] = np.int64(top)
    rmax = 1
    crop_size = 1
    for k in range(n):
        if hi[k] >= 0:
            rmax = max(rmax, hi[k] - lo[k] + 1)
            height = ry[run_offsets[k + 1] - 1] - ry[run_offsets[k]] + 1
            crop_size = max(crop_size, (height + pad) * (bx1[k] - bx0[k] + 2 * pad))
    mats = np.empty(4 * (rmax + 1) * (rmax + 1), np.int32)
    crop = np.empty(crop_size, np.uint8)  # r <= 255: levels 1..255 (0 is never counted)
    index = np.empty(256, np.uint8)
    feats = np.empty(13)
    scratch = np.empty(5 * rmax)
    nz = np.empty(rmax, np.int64)
    for k in range(n):
        if hi[k] < 0:
            out[:, k, :, :] = np.nan  # no pixel above 0: mahotas raises, CellProfiler stores 0
            continue
        l0 = lo[k]
        r = hi[k] - l0 + 1
        r1 = r + 1  # matrices are (r + 1) x (r + 1): index r collects pairs that do not count
        m1 = r1 * r1
        y0 = ry[run_offsets[k]]
        height = ry[run_offsets[k + 1] - 1] - y0 + 1
        cw = bx1[k] - bx0[k] + 2 * pad  # pad columns each side, pad rows below (dy >= 0)
        index[:] = r
        for v in range(l0, hi[k] + 1):
            index[v] = v - l0
        crop[:(height + pad) * cw] = r
        for i in range(run_offsets[k], run_offsets[k + 1]):
            c0 = (ry[i] - y0) * cw + rx0[i] - bx0[k] + pad
            run = q[ry[i], rx0[i]:rx1[i]]
            dst = crop[c0:c0 + run.size]
            for x in range(run.size):
                dst[x] = index[run[x]]
        # unsigned indices below: numba then skips its negative-index wraparound on every access
        ur1 = np.uint64(r1)
        um1 = np.uint64(m1)
        for s in range(distances.shape[0]):
            dist = distances[s]
            o0 = np.uint64(_DY[0] * dist * cw + _DX[0] * dist)
            o1 = np.uint64(_DY[1] * dist * cw + _DX[1] * dist)
            o2 = np.uint64(_DY[2] * dist * cw + _DX[2] * dist)
            o3 = np.uint64(_DY[3] * dist * cw + _DX[3] * dist)  # >= 0: dy >= 0, and dx > 0 where dy = 0
            mats[:4 * m1] = 0
            for i in range(run_offsets[k], run_offsets[k + 1]):
                p = np.uint64((ry[i] - y0) * cw + rx0[i] - bx0[k] + pad)
                end = p + np.uint64(rx1[i] - rx0[i])
                while p < end:
                    at = np.uint64(crop[p]) * ur1
                    mats[at + np.uint64(crop[p + o0])] += 1
                    mats[um1 + at + np.uint64(crop[p + o1])] += 1
                    mats[np.uint64(2) * um1 + at + np.uint64(crop[p + o2])] += 1
                    mats[np.uint64(3) * um1 + at + np.uint64(crop[p + o3])] += 1
                    p += np.uint64(1)
            for d in range(4):  # each matrix without its spare row and column
                counts = mats[d * m1:(d + 1) * m1].reshape(r1, r1)
                if not _features(counts, r, l0, hi[k] + 1, scratch, nz, feats):  # matrix size = largest value + 1
                    out[s, k, :, :] = np.nan  # a direction without pairs: mahotas raises for the object
                    break
                out[s, k, d, :] = feats


def _runs(objects: Objects):
    """The objects' row runs (:func:`_row_runs`), computed once per label image."""
    return objects.cached(("texture", "runs"),
                          lambda: _row_runs(objects.labels, objects.count))


def _run(objects: Objects, q: np.ndarray, scales) -> np.ndarray:
    """Features of shape (len(scales), count, 4, 13)."""
    distances = np.array([int(s) for s in scales], np.int64)
    out = np.full((len(distances), objects.count, 4, 13), np.nan)
    _haralick_objects(np.ascontiguousarray(q, dtype=np.uint8), objects.count, *_runs(objects), distances, out)
    return out


def _columns(values: np.ndarray, present: np.ndarray | None, scale: int, gray_levels: int) -> dict[str, np.ndarray]:
    if present is None:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    else:
        values[present] = np.nan_to_num(values[present], nan=0.0, posinf=0.0, neginf=0.0)
    out = {}
    for d in range(4):
        for f, name in enumerate(FEATURES):
            out[f"Texture_{name}_{scale}_{d:02d}_{gray_levels}"] = values[..., d, f]
    return out


_D = _defaults.DEFAULTS["texture"]


@_defaults.checked("texture")
def texture(labels, image, *, scales=_D["scales"], gray_levels: int = _D["gray_levels"]) -> dict[str, np.ndarray]:
    """Haralick texture features of every object, CellProfiler's MeasureTexture.

    Parameters
    ----------
    labels : (H, W) ndarray of int or Objects
    image : (H, W) ndarray
        Float in [0, 1], or integers (divided by their type's maximum).
    scales : sequence of int
        Pixel distances of the co-occurring pairs (CPJUMP1: 3, 5, 10).
    gray_levels : int
        Gray levels of the quantized image (CPJUMP1: 256).

    Returns
    -------
    dict
        ``Texture_<Feature>_<scale>_<dd>_<levels>`` (13 features x 4 directions per
        scale), one value per label 1..max. Absent labels are NaN; objects with no
        co-occurring pair in some direction get 0, as CellProfiler stores them.

    References
    ----------
    CellProfiler 4.2.8, ``cellprofiler/modules/measuretexture.py``; mahotas 1.4
    ``features.haralick``. R. M. Haralick, K. Shanmugam, I. Dinstein, "Textural features
    for image classification", IEEE Trans. SMC 3(6), 1973.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((12, 12), int); labels[2:10, 2:10] = 1
    >>> image = np.tile(np.linspace(0.1, 0.9, 12), (12, 1))
    >>> out = texture(labels, image, scales=[3])  # a horizontal ramp
    >>> len(out)  # 13 features x 4 directions
    52
    >>> bool(out["Texture_Contrast_3_00_256"][0] > 0), float(out["Texture_Contrast_3_02_256"][0])  # across, along
    (True, 0.0)
    """
    objects = as_objects(labels)
    quantized = quantize(as_image(image, objects), int(gray_levels))
    values = _run(objects, quantized, scales)
    out = {}
    for i, scale in enumerate(scales):
        out.update(_columns(values[i], objects.present, int(scale), int(gray_levels)))
    return out


@numba.njit(cache=True)
def _image_counts(q, levels, distances):
    """One-way co-occurrence counts of a whole image, shape (S, 4, levels, levels).

    Pixel (y, x) pairs with (y + dy, x + dx) when both are inside the image;
    one sweep per distance and direction. Neighbouring pixels mostly hit the
    same cell, so four interleaved int32 lanes (entry 4 * cell + lane) take
    consecutive pixels and no increment waits for the previous one; the lanes
    are summed at the end. Row slices and unsigned indices keep numba's
    negative-index wraparound out of the loop.
    """
    h, w = q.shape
    ns = distances.shape[0]
    cells = levels * levels
    cnt = np.zeros((ns, 4, levels, levels), np.int64)
    lanes = np.zeros(4 * cells, np.int32)  # a 1080 x 1080 image has < 2**31 pairs
    ul = np.uint64(levels)
    two = np.uint64(2)
    for s in range(ns):
        for d in range(4):
            dy = _DY[d] * distances[s]
            dx = _DX[d] * distances[s]
            lanes[:] = 0
            x0 = max(0, -dx)
            x1 = w - max(0, dx)
            m = x1 - x0
            for y in range(max(0, -dy), h - max(0, dy)):
                a = q[y, x0:x1]
                b = q[y + dy, x0 + dx:x1 + dx]
                x = 0
                while x + 3 < m:
                    lanes[(np.uint64(a[x]) * ul + np.uint64(b[x])) << two] += 1
                    lanes[((np.uint64(a[x + 1]) * ul + np.uint64(b[x + 1])) << two) | np.uint64(1)] += 1
                    lanes[((np.uint64(a[x + 2]) * ul + np.uint64(b[x + 2])) << two) | np.uint64(2)] += 1
                    lanes[((np.uint64(a[x + 3]) * ul + np.uint64(b[x + 3])) << two) | np.uint64(3)] += 1
                    x += 4
                while x < m:
                    lanes[(np.uint64(a[x]) * ul + np.uint64(b[x])) << two] += 1
                    x += 1
            flat = cnt[s, d].ravel()
            for i in range(cells):
                flat[i] = np.int64(lanes[4 * i]) + lanes[4 * i + 1] + lanes[4 * i + 2] + lanes[4 * i + 3]
    return cnt


@numba.njit(cache=True)
def _image_features(cnt, levels, out):
    """Haralick features of each (scale, direction) count matrix; a scale with an empty direction stays NaN."""
    scratch = np.empty(5 * levels)
    nz = np.empty(levels, np.int64)
    feats = np.empty(13)
    for s in range(cnt.shape[0]):
        for d in range(4):
            if not _features(cnt[s, d], levels, 0, levels, scratch, nz, feats):
                out[s, :, :] = np.nan  # mahotas raises; CellProfiler stores 0
                break
            out[s, d, :] = feats


def _whole_image(q: np.ndarray, scales) -> np.ndarray:
    """mahotas.haralick(q, distance=scale) of a whole image at every scale, shape (len(scales), 4, 13)."""
    q = np.ascontiguousarray(q, dtype=np.uint8)
    levels = int(q.max()) + 1
    distances = np.array([int(s) for s in scales], np.int64)
    out = np.full((len(distances), 4, 13), np.nan)
    _image_features(_image_counts(q, levels, distances), levels, out)
    return out


def _image_columns(values: np.ndarray, scale: int, gray_levels: int) -> dict[str, float]:
    values = np.nan_to_num(values, nan=0.0)
    return {f"Texture_{name}_{scale}_{d:02d}_{gray_levels}": float(values[d, f])
            for d in range(4) for f, name in enumerate(FEATURES)}


@_defaults.checked("texture")
def texture_image(image, *, scales=_D["scales"], gray_levels: int = _D["gray_levels"]) -> dict[str, float]:
    """Whole-image Haralick features (CellProfiler's Image-table texture; zero pixels count).

    Parameters
    ----------
    image : (H, W) ndarray
        Float in [0, 1], or integers (divided by their type's maximum).
    scales : sequence of int
    gray_levels : int

    Returns
    -------
    dict
        ``Texture_<Feature>_<scale>_<dd>_<levels>`` -> float.

    Examples
    --------
    >>> import numpy as np
    >>> out = texture_image(np.tile(np.linspace(0.1, 0.9, 12), (12, 1)), scales=[3])
    >>> round(out["Texture_AngularSecondMoment_3_02_256"], 4)
    0.0833
    """
    q = quantize(as_image(image), int(gray_levels))
    values = _whole_image(q, scales)
    out = {}
    for i, scale in enumerate(scales):
        out.update(_image_columns(values[i], int(scale), int(gray_levels)))
    return out


def _named(key: str, image_name: str) -> str:
    # Texture_Contrast_3_00_256 -> Texture_Contrast_DNA_3_00_256
    category, feature, rest = key.split("_", 2)
    return f"{category}_{feature}_{image_name}_{rest}"


def _quantized(cache: dict | None, name: str, image: np.ndarray, levels: int) -> np.ndarray:
    """The quantized image, once per site for the object sets and the Image table."""
    return memo(cache, ("texture", "quantized", name, levels), image, lambda: quantize(image, levels))


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Texture of every (validated) image at every scale (CPJUMP1: 3, 5, 10 at 256 levels), CellProfiler names."""
    settings = _defaults.resolve("texture", settings)
    scales, levels = settings["scales"], int(settings["gray_levels"])
    out = {}
    for name, image in images.items():
        values = _run(objects, _quantized(cache, name, image, levels), scales)  # all scales in one pass
        for i, scale in enumerate(scales):
            for key, column in _columns(values[i], objects.present, int(scale), levels).items():
                out[_named(key, name)] = column
    return out


def measure_image_family(images: dict[str, np.ndarray], settings: dict | None = None,
                         cache: dict | None = None) -> dict[str, float]:
    """Image-table texture of every (validated) image and scale (MeasureTexture "Both")."""
    settings = _defaults.resolve("texture", settings)
    scales, levels = settings["scales"], int(settings["gray_levels"])
    out = {}
    for name, image in images.items():
        values = _whole_image(_quantized(cache, name, image, levels), scales)
        for i, scale in enumerate(scales):
            for key, value in _image_columns(values[i], int(scale), levels).items():
                out[_named(key, name)] = value
    return out
