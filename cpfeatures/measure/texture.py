"""MeasureTexture (CPJUMP1 module 27): Haralick features of all objects in one pass.

CellProfiler 4.2.8 quantizes the whole image to 8 bits
(``skimage.util.img_as_ubyte``; other gray-level counts are rescaled from
there), then for each object calls ``mahotas.features.haralick`` on the
object's bounding box with the other pixels set to 0, ``ignore_zeros=True``,
``distance=scale``. We reproduce that definition without cropping: one numba
kernel per (image, object set) handles every scale; object by object it walks
the object's bounding box, accumulates its 4 co-occurrence matrices over the
object's occupied gray-level range only (a small int32 buffer that stays in
cache), and evaluates the 13 features in reused scratch. The Image-table
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

from .objects import Objects, as_objects, check_image

__all__ = ["texture", "texture_image", "quantize", "measure_family", "measure_image_family", "FEATURES"]

FEATURES = ["AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment",
            "SumAverage", "SumVariance", "SumEntropy", "Entropy", "DifferenceVariance", "DifferenceEntropy",
            "InfoMeas1", "InfoMeas2"]
_DY = np.array([0, 1, 1, 1], np.int64)
_DX = np.array([1, 1, 0, -1], np.int64)
_NTAB = 1024  # counts below this get their p log2 p cached per matrix


def quantize(image: np.ndarray, gray_levels: int = 256) -> np.ndarray:
    """CellProfiler's gray-level quantization of a [0, 1] image (uint8)."""
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
def _symmetrize(cnt, sym):
    """``sym[:r*r]`` as the R x R float matrix ``cnt + cnt.T`` (mahotas counts both orders); returns that view."""
    r = cnt.shape[0]
    mat = sym[:r * r].reshape(r, r)
    for a in range(r):
        for b in range(r):
            mat[a, b] = np.float64(cnt[a, b]) + np.float64(cnt[b, a])
    return mat


@numba.njit(cache=True)
def _features(mat, lo, maxv, scratch, nz, seen, out):
    """13 Haralick features of one symmetric count matrix over gray levels lo..lo+R-1.

    Loops run over occupied levels only (rows with a non-zero marginal); the
    values are mahotas' definitions, see the module docstring. ``scratch``
    (float, >= 5R + _NTAB), ``nz`` (int, >= R) and ``seen`` (int, _NTAB + 1,
    zeros at first, then only passed along) are reused work space;
    the same count always gives the same p log2 p, so it is computed once per
    distinct small count (bit-identical to computing it every time).
    """
    r = mat.shape[0]
    px = scratch[0:r]
    lpx = scratch[r:2 * r]
    minus = scratch[2 * r:3 * r]
    plus = scratch[3 * r:5 * r - 1]
    tab = scratch[5 * r:5 * r + _NTAB]
    seen[_NTAB] += 1  # a new stamp: seen[c] == stamp means tab[c] holds this matrix's p log2 p of count c
    stamp = seen[_NTAB]
    px[:] = 0.0
    lpx[:] = 0.0
    minus[:] = 0.0
    plus[:] = 0.0
    total = 0.0
    for a in range(r):
        for b in range(r):
            px[b] += mat[a, b]
    m = 0
    for a in range(r):
        total += px[a]  # integer-valued: exact in any order
        if px[a] != 0.0:
            nz[m] = a
            m += 1
    inv = 1.0 / total
    ux = 0.0
    vx2 = 0.0
    for ia in range(m):
        a = nz[ia]
        px[a] *= inv
        lpx[a] = np.log2(px[a])
        ux += px[a] * (lo + a)
        vx2 += px[a] * (lo + a) * (lo + a)
    vx = vx2 - ux * ux
    sx = np.sqrt(vx) if vx > 0 else 0.0
    asm = 0.0
    sij = 0.0
    idm = 0.0
    ent = 0.0
    hxy1 = 0.0
    for ia in range(m):
        a = nz[ia]
        for ib in range(m):
            b = nz[ib]
            # branch-free over empty cells: a zero count adds exact zeros to every sum
            c = mat[a, b]
            v = c * inv
            ci = np.int64(c)
            if ci < _NTAB:
                if seen[ci] != stamp:
                    tab[ci] = v * np.log2(v) if ci > 0 else 0.0
                    seen[ci] = stamp
                vlv = tab[ci]
            else:
                vlv = v * np.log2(v)
            lc = lpx[a] + lpx[b]
            i = lo + a
            j = lo + b
            asm += v * v
            sij += i * j * v
            idm += v / (1.0 + (i - j) * (i - j))
            ent -= vlv
            hxy1 -= v * lc
            plus[a + b] += v
            minus[abs(a - b)] += v
    contrast = 0.0
    msq = 0.0
    hm = 0.0
    for k in range(r):
        mk = minus[k]
        contrast += k * k * mk
        msq += mk * mk
        if mk > 0:
            hm -= mk * np.log2(mk)
    sa = 0.0
    sv2 = 0.0
    hp = 0.0
    for k in range(2 * r - 1):
        t = 2 * lo + k
        pk = plus[k]
        sa += t * pk
        sv2 += t * t * pk
        if pk > 0:
            hp -= pk * np.log2(pk)
    hx = 0.0
    for ia in range(m):
        a = nz[ia]
        hx -= px[a] * lpx[a]
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


@numba.njit(cache=True)
def _haralick_objects(q, labels, n, distances, out):
    """Haralick features of objects 1..n at every distance, ignoring pixels quantized to 0.

    One raster pass finds each object's occupied gray range and the bounding
    box of its counted pixels. Then object by object, and distance by
    distance, the 4 one-way R x R co-occurrence matrices are accumulated over
    the bounding box into one small int32 buffer that stays in cache, and the
    features are evaluated in reused scratch. ``out`` has shape (S, n, 4, 13).
    """
    h, w = labels.shape
    lo = np.full(n, 256, np.int64)
    hi = np.full(n, -1, np.int64)
    y0 = np.full(n, h, np.int64)
    y1 = np.full(n, -1, np.int64)
    x0 = np.full(n, w, np.int64)
    x1 = np.full(n, -1, np.int64)
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            v = q[y, x]
            if lab == 0 or v == 0:
                continue
            k = lab - 1
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v
            if y < y0[k]:
                y0[k] = y
            y1[k] = y
            if x < x0[k]:
                x0[k] = x
            if x > x1[k]:
                x1[k] = x
    rmax = 1
    for k in range(n):
        if hi[k] >= 0:
            rmax = max(rmax, hi[k] - lo[k] + 1)
    buf = np.empty(4 * rmax * rmax, np.int32)
    feats = np.empty(13)
    sym = np.empty(rmax * rmax)
    scratch = np.empty(5 * rmax + _NTAB)
    nz = np.empty(rmax, np.int64)
    seen = np.zeros(_NTAB + 1, np.int64)
    for k in range(n):
        if hi[k] < 0:
            out[:, k, :, :] = np.nan  # no pixel above 0: mahotas raises, CellProfiler stores 0
            continue
        lab = k + 1
        l0 = lo[k]
        r = hi[k] - l0 + 1
        rr = r * r
        for s in range(distances.shape[0]):
            distance = distances[s]
            buf[:4 * rr] = 0
            for y in range(y0[k], y1[k] + 1):
                for x in range(x0[k], x1[k] + 1):
                    v = q[y, x]
                    if labels[y, x] != lab or v == 0:
                        continue
                    row = (v - l0) * r - l0
                    for d in range(4):
                        yy = y + _DY[d] * distance
                        xx = x + _DX[d] * distance
                        if yy < 0 or yy >= h or xx < 0 or xx >= w:
                            continue
                        if labels[yy, xx] != lab:
                            continue
                        u = q[yy, xx]
                        if u == 0:
                            continue
                        buf[row + d * rr + u] += 1
            empty = False
            for d in range(4):
                tot = 0
                for i in range(d * rr, (d + 1) * rr):
                    tot += buf[i]
                if tot == 0:
                    empty = True
            if empty:
                out[s, k, :, :] = np.nan  # a direction without pairs: mahotas raises for the object
                continue
            for d in range(4):
                mat = _symmetrize(buf[d * rr:(d + 1) * rr].reshape(r, r), sym)
                _features(mat, l0, hi[k] + 1, scratch, nz, seen, feats)  # matrix size = largest value + 1
                out[s, k, d, :] = feats


def _run(objects: Objects, q: np.ndarray, scales) -> np.ndarray:
    """Features of shape (len(scales), count, 4, 13)."""
    distances = np.array([int(s) for s in scales], np.int64)
    out = np.full((len(distances), objects.count, 4, 13), np.nan)
    _haralick_objects(np.ascontiguousarray(q, dtype=np.uint8), objects.labels, objects.count, distances, out)
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


def texture(labels, image: np.ndarray, scale: int = 3, gray_levels: int = 256,
            quantized: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Haralick texture features of every object, CellProfiler's definition.

    Parameters
    ----------
    labels : ndarray of int or Objects
    image : ndarray of float in [0, 1]
    scale : int
        Pixel distance of the co-occurring pairs.
    gray_levels : int
        Gray levels of the quantized image (CPJUMP1: 256).
    quantized : ndarray of uint8, optional
        :func:`quantize` output, to share across scales and object sets.

    Returns
    -------
    dict
        ``Texture_<Feature>_<scale>_<dd>_<levels>`` (13 features x 4 directions),
        one value per label 1..max. Absent labels are NaN; objects with no
        co-occurring pair in some direction get 0, as CellProfiler stores them.
    """
    objects = as_objects(labels)
    if quantized is None:
        quantized = quantize(check_image(image, objects), gray_levels)
    return _columns(_run(objects, quantized, (scale,))[0], objects.present, scale, gray_levels)


@numba.njit(cache=True)
def _image_counts(q, levels, distances):
    """One-way co-occurrence counts of a whole image, shape (S, 4, levels, levels).

    Pixel (y, x) pairs with (y + dy, x + dx) when both are inside the image;
    one sweep per distance and direction. Neighbouring pixels mostly hit the
    same cell, so four interleaved int32 partial matrices take consecutive
    pixels (no increment waits for the previous one); they are summed at the end.
    """
    h, w = q.shape
    ns = distances.shape[0]
    cnt = np.zeros((ns, 4, levels, levels), np.int64)
    part = np.zeros((4, levels, levels), np.int32)  # a 1080 x 1080 image has < 2**31 pairs
    for s in range(ns):
        for d in range(4):
            dy = _DY[d] * distances[s]
            dx = _DX[d] * distances[s]
            part[:] = 0
            x0 = max(0, -dx)
            x1 = w - max(0, dx)
            for y in range(max(0, -dy), h - max(0, dy)):
                here = q[y]
                there = q[y + dy]
                x = x0
                while x + 3 < x1:
                    part[0, here[x], there[x + dx]] += 1
                    part[1, here[x + 1], there[x + 1 + dx]] += 1
                    part[2, here[x + 2], there[x + 2 + dx]] += 1
                    part[3, here[x + 3], there[x + 3 + dx]] += 1
                    x += 4
                while x < x1:
                    part[0, here[x], there[x + dx]] += 1
                    x += 1
            for i in range(levels):
                for j in range(levels):
                    cnt[s, d, i, j] = np.int64(part[0, i, j]) + part[1, i, j] + part[2, i, j] + part[3, i, j]
    return cnt


@numba.njit(cache=True)
def _image_features(cnt, levels, out):
    """Haralick features of each (scale, direction) count matrix; a scale with an empty direction stays NaN."""
    sym = np.empty(levels * levels)
    scratch = np.empty(5 * levels + _NTAB)
    nz = np.empty(levels, np.int64)
    seen = np.zeros(_NTAB + 1, np.int64)
    feats = np.empty(13)
    for s in range(cnt.shape[0]):
        empty = False
        for d in range(4):
            if cnt[s, d].sum() == 0:
                empty = True
        if empty:
            continue  # mahotas raises; CellProfiler stores 0
        for d in range(4):
            _features(_symmetrize(cnt[s, d], sym), 0, levels, scratch, nz, seen, feats)
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


def texture_image(image: np.ndarray, scale: int = 3, gray_levels: int = 256,
                  quantized: np.ndarray | None = None) -> dict[str, float]:
    """Whole-image Haralick features (CellProfiler's Image-table texture; zeros are counted)."""
    q = quantize(check_image(image), gray_levels) if quantized is None else quantized
    return _image_columns(_whole_image(q, (int(scale),))[0], int(scale), gray_levels)


def _named(key: str, image_name: str) -> str:
    # Texture_Contrast_3_00_256 -> Texture_Contrast_DNA_3_00_256
    category, feature, rest = key.split("_", 2)
    return f"{category}_{feature}_{image_name}_{rest}"


def _quantized(cache: dict | None, name: str, image: np.ndarray, levels: int) -> np.ndarray:
    if cache is None:
        return quantize(image, levels)
    key = ("texture", "quantized", name, id(image), levels)
    if key not in cache:
        cache[key] = quantize(image, levels)
    return cache[key]


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Texture of every image at every scale (CPJUMP1: 3, 5, 10 at 256 levels), CellProfiler names."""
    settings = settings or {}
    scales = settings.get("scales", (3, 5, 10))
    levels = int(settings.get("gray_levels", 256))
    out = {}
    for name, image in images.items():
        q = _quantized(cache, name, check_image(image, objects), levels)
        values = _run(objects, q, scales)  # all scales in one pass over the image
        for i, scale in enumerate(scales):
            for key, column in _columns(values[i], objects.present, int(scale), levels).items():
                out[_named(key, name)] = column
    return out


def measure_image_family(images: dict[str, np.ndarray], settings: dict | None = None,
                         cache: dict | None = None) -> dict[str, float]:
    """Image-table texture of every image and scale (MeasureTexture "Both")."""
    settings = settings or {}
    scales = settings.get("scales", (3, 5, 10))
    levels = int(settings.get("gray_levels", 256))
    out = {}
    for name, image in images.items():
        q = _quantized(cache, name, check_image(image), levels)
        values = _whole_image(q, scales)
        for i, scale in enumerate(scales):
            for key, value in _image_columns(values[i], int(scale), levels).items():
                out[_named(key, name)] = value
    return out
