"""MeasureTexture (CPJUMP1 module 27): Haralick features of all objects in one pass.

CellProfiler 4.2.8 quantizes the whole image to 8 bits
(``skimage.util.img_as_ubyte``; other gray-level counts are rescaled from
there), then for each object calls ``mahotas.features.haralick`` on the
object's bounding box with the other pixels set to 0, ``ignore_zeros=True``,
``distance=scale``. We reproduce that definition without cropping: one numba
kernel walks each object's pixels once, accumulates its 4 symmetric
co-occurrence matrices over the object's occupied gray-level range only, and
evaluates the 13 features from them.

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


def quantize(image: np.ndarray, gray_levels: int = 256) -> np.ndarray:
    """CellProfiler's gray-level quantization of a [0, 1] image (uint8)."""
    q = skimage.util.img_as_ubyte(np.clip(image, 0, 1))
    if gray_levels != 256:
        q = skimage.exposure.rescale_intensity(q, in_range=(0, 255), out_range=(0, gray_levels - 1)).astype(np.uint8)
    return q


@numba.njit(cache=True)
def _entropy(p):
    h = 0.0
    for v in p:
        if v > 0:
            h -= v * np.log2(v)
    return h


@numba.njit(cache=True)
def _features(mat, lo, maxv, out):
    """13 Haralick features of one symmetric count matrix over gray levels lo..lo+R-1.

    Loops run over occupied levels only (rows with a non-zero marginal); the
    values are mahotas' definitions, see the module docstring.
    """
    r = mat.shape[0]
    inv = 1.0 / mat.sum()
    px = np.zeros(r)
    for a in range(r):
        for b in range(r):
            px[b] += mat[a, b]
    nz = np.flatnonzero(px)
    lpx = np.zeros(r)
    ux = 0.0
    vx2 = 0.0
    for a in nz:
        px[a] *= inv
        lpx[a] = np.log2(px[a])
        ux += px[a] * (lo + a)
        vx2 += px[a] * (lo + a) * (lo + a)
    vx = vx2 - ux * ux
    sx = np.sqrt(vx) if vx > 0 else 0.0
    plus = np.zeros(2 * r - 1)
    minus = np.zeros(r)
    asm = 0.0
    sij = 0.0
    idm = 0.0
    ent = 0.0
    hxy1 = 0.0
    for a in nz:
        for b in nz:
            c = mat[a, b]
            if c == 0:
                continue
            v = c * inv
            lc = lpx[a] + lpx[b]
            i = lo + a
            j = lo + b
            asm += v * v
            sij += i * j * v
            idm += v / (1.0 + (i - j) * (i - j))
            ent -= v * np.log2(v)
            hxy1 -= v * lc
            plus[a + b] += v
            minus[abs(a - b)] += v
    contrast = 0.0
    msq = 0.0
    for k in range(r):
        contrast += k * k * minus[k]
        msq += minus[k] * minus[k]
    sa = 0.0
    sv2 = 0.0
    for k in range(2 * r - 1):
        t = 2 * lo + k
        sa += t * plus[k]
        sv2 += t * t * plus[k]
    hx = 0.0
    for a in nz:
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
    out[7] = _entropy(plus)
    out[8] = ent
    out[9] = msq / maxv - 1.0 / (maxv * maxv)
    out[10] = _entropy(minus)
    out[11] = (ent - hxy1) / hx if hx > 0 else ent - hxy1
    d = 1.0 - np.exp(-2.0 * (hxy2 - ent))
    out[12] = np.sqrt(d) if d > 0 else 0.0


@numba.njit(cache=True)
def _haralick_objects(q, labels, n, distance, out):
    """Haralick features of objects 1..n, ignoring pixels quantized to 0 (as CellProfiler does).

    Two raster passes over the image (sequential memory): the occupied gray
    range of each object, then the co-occurrence counts of every object into
    one buffer holding each object's 4 R x R matrices.
    """
    h, w = labels.shape
    lo = np.full(n, 256, np.int64)
    hi = np.full(n, -1, np.int64)
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            v = q[y, x]
            if lab == 0 or v == 0:
                continue
            if v < lo[lab - 1]:
                lo[lab - 1] = v
            if v > hi[lab - 1]:
                hi[lab - 1] = v
    size = np.zeros(n, np.int64)
    base = np.zeros(n + 1, np.int64)
    for k in range(n):
        size[k] = hi[k] - lo[k] + 1 if hi[k] >= 0 else 0
        base[k + 1] = base[k] + 4 * size[k] * size[k]
    buf = np.zeros(base[n])
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            v = q[y, x]
            if lab == 0 or v == 0:
                continue
            k = lab - 1
            r = size[k]
            row = base[k] + (v - lo[k]) * r - lo[k]
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
                buf[row + d * r * r + u] += 1.0
    feats = np.empty(13)
    for k in range(n):
        r = size[k]
        if r == 0:
            out[k, :, :] = np.nan  # no pixel above 0: mahotas raises, CellProfiler stores 0
            continue
        mats = buf[base[k]:base[k + 1]].reshape(4, r, r)
        empty = False
        for d in range(4):
            if mats[d].sum() == 0:
                empty = True
        if empty:
            out[k, :, :] = np.nan  # a direction without pairs: mahotas raises for the object
            continue
        for d in range(4):
            sym = mats[d] + mats[d].T  # mahotas counts both orders
            _features(sym, lo[k], hi[k] + 1, feats)  # matrix size = largest value + 1
            out[k, d, :] = feats


def _run(objects: Objects, q: np.ndarray, scale: int) -> np.ndarray:
    out = np.full((objects.count, 4, 13), np.nan)
    _haralick_objects(np.ascontiguousarray(q), objects.labels, objects.count, int(scale), out)
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
    values = _run(objects, quantized, scale)
    values[objects.present] = np.nan_to_num(values[objects.present], nan=0.0, posinf=0.0, neginf=0.0)
    out = {}
    for d in range(4):
        for f, name in enumerate(FEATURES):
            out[f"Texture_{name}_{scale}_{d:02d}_{gray_levels}"] = values[:, d, f]
    return out


def _whole_image(q: np.ndarray, scale: int) -> np.ndarray:
    """mahotas.haralick(q, distance=scale) for a whole image: counts pairs with one bincount per direction."""
    levels = int(q.max()) + 1
    h, w = q.shape
    out = np.full((4, 13), np.nan)
    codes = q.astype(np.int64)
    mats = []
    for dy, dx in zip(_DY * scale, _DX * scale):
        # pixel (y, x) pairs with (y + dy, x + dx), both inside the image
        a = codes[0:h - dy, max(0, -dx):w - max(0, dx)]
        b = codes[dy:h, max(0, dx):w - max(0, -dx)]
        m = np.bincount((a * levels + b).ravel(), minlength=levels * levels).reshape(levels, levels)
        mats.append((m + m.T).astype(np.float64))
    if any(m.sum() == 0 for m in mats):
        return out  # mahotas raises; CellProfiler stores 0
    feats = np.empty(13)
    for d, m in enumerate(mats):
        _features(m, 0, levels, feats)
        out[d] = feats
    return out


def texture_image(image: np.ndarray, scale: int = 3, gray_levels: int = 256,
                  quantized: np.ndarray | None = None) -> dict[str, float]:
    """Whole-image Haralick features (CellProfiler's Image-table texture; zeros are counted)."""
    q = quantize(check_image(image), gray_levels) if quantized is None else quantized
    values = np.nan_to_num(_whole_image(q, int(scale)), nan=0.0)
    return {f"Texture_{name}_{scale}_{d:02d}_{gray_levels}": float(values[d, f])
            for d in range(4) for f, name in enumerate(FEATURES)}


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
        for scale in scales:
            for key, values in texture(objects, image, int(scale), levels, quantized=q).items():
                out[_named(key, name)] = values
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
        for scale in scales:
            for key, value in texture_image(image, int(scale), levels, quantized=q).items():
                out[_named(key, name)] = value
    return out
