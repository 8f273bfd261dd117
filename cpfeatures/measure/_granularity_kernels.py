"""Numba kernels of MeasureGranularity: disk erosion/dilation, the fused erosion +
reconstruction steps, and the sparse bilinear-upsampling matrix of an object set.

All morphology here uses only comparisons, so results equal scikit-image's
(``erosion``/``dilation`` with ``disk(r)``, ``reconstruction`` with ``disk(1)``)
bit for bit; the tests check that.
"""

from __future__ import annotations

import numba
import numpy as np


# ----------------------------------------------------------------------------- disk min/max filters
def disk_half_widths(radius: int) -> np.ndarray:
    """Half-width of each row of ``skimage.morphology.disk(radius)`` (x^2 + y^2 <= r^2)."""
    dy = np.arange(-radius, radius + 1)
    return np.floor(np.sqrt(radius * radius - dy * dy) + 1e-9).astype(np.int64)


@numba.njit(cache=True, inline="always")
def _pick(u, v, use_max):
    # u if it beats v, else v: a select the compiler vectorizes (maxps/minps pick exactly this way)
    if use_max:
        return u if u > v else v
    return u if u < v else v


@numba.njit(cache=True)
def _disk_filter(image, widths, use_max):
    """Min (or max) of ``image`` over a row-convex symmetric footprint, clipped to the image.

    ``widths[dy + r]`` is the footprint's half-width on row offset ``dy``. Clipping
    the footprint to the image equals scipy/skimage's ``reflect`` border mode for
    such footprints: every reflected position is inside the footprint too.
    Horizontal running extrema of every half-width are built incrementally
    (``m_w = ext(m_{w-1}, I[x - w], I[x + w])``), then combined over rows. Every
    loop runs over a column range where all its reads are inside the image, on
    row slices with indices ``x + c`` (``x >= 0``), so it has no branch and vectorizes.
    """
    h, w = image.shape
    r = (widths.size - 1) // 2
    wmax = 0
    for k in range(widths.size):
        if widths[k] > wmax:
            wmax = widths[k]
    rows = np.empty((wmax + 1, h, w), image.dtype)
    for y in range(h):
        src = image[y]
        rows[0, y, :] = src
        for k in range(1, wmax + 1):
            prev = rows[k - 1, y]
            cur = rows[k, y]
            cur[:] = prev
            # x - k is inside for x >= k, x + k for x < w - k
            for x in range(max(w - k, 0)):  # right neighbour I[x + k]
                cur[x] = _pick(src[x + k], cur[x], use_max)
            for x in range(max(w - k, 0)):  # left neighbour I[x] of column x + k
                cur[x + k] = _pick(src[x], cur[x + k], use_max)
    out = np.empty_like(image)
    for y in range(h):
        o = out[y]
        o[:] = rows[widths[r], y]
        for d in range(1, r + 1):
            k = widths[r + d]  # symmetric: widths[r - d] == widths[r + d]
            for yy in (y - d, y + d):
                if yy < 0 or yy >= h:
                    continue
                other = rows[k, yy]
                for x in range(w):
                    o[x] = _pick(other[x], o[x], use_max)
    return out


def disk_opening(image: np.ndarray, radius: int) -> np.ndarray:
    """Grey opening (erosion then dilation) with ``disk(radius)``, equal to scikit-image's."""
    widths = disk_half_widths(int(radius))
    image = np.ascontiguousarray(image)
    return _disk_filter(_disk_filter(image, widths, False), widths, True)


@numba.njit(cache=True)
def _bilinear(src, oh, ow, sy, sx):
    h, w = src.shape
    out = np.empty((oh, ow), src.dtype)
    for i in range(oh):
        y = i * sy
        y0 = min(int(np.floor(y)), h - 1)
        fy = y - y0
        y1 = min(y0 + 1, h - 1)
        for j in range(ow):
            x = j * sx
            x0 = min(int(np.floor(x)), w - 1)
            fx = x - x0
            x1 = min(x0 + 1, w - 1)
            t = 0.0
            t += np.float64(src[y0, x0]) * (1.0 - fy) * (1.0 - fx)
            t += np.float64(src[y0, x1]) * (1.0 - fy) * fx
            t += np.float64(src[y1, x0]) * fy * (1.0 - fx)
            t += np.float64(src[y1, x1]) * fy * fx
            out[i, j] = t
    return out


def stretch(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Linear interpolation of ``image`` onto ``shape`` with corners on corners.

    Output pixel ``(i, j)`` reads ``image`` at ``(i (h - 1) / (H - 1), j (w - 1) / (W - 1))``:
    CellProfiler's ``map_coordinates(order=1)`` upsampling of the background and
    of the reconstructions, in the image's dtype (the tests check equality).
    """
    h, w = image.shape
    oh, ow = int(shape[0]), int(shape[1])
    sy = float(h - 1) / float(oh - 1) if oh > 1 else 0.0
    sx = float(w - 1) / float(ow - 1) if ow > 1 else 0.0
    return _bilinear(np.ascontiguousarray(image), oh, ow, sy, sx)


# ----------------------------------------------------------------------------- the granular steps
@numba.njit(cache=True, fastmath=True)  # min is exact; images are checked finite
def _erode_cross(src, dst):
    """4-neighbour minimum (``disk(1)``) of a 2-D array, neighbours outside the image ignored
    (scikit-image's reflect border gives the same for this footprint). A missing neighbour is
    replaced by the pixel itself, which leaves the minimum unchanged and keeps the inner loop
    branch-free; indices written as ``x + c`` with ``x >= 0`` let it vectorize."""
    h, w = src.shape
    for y in range(h):
        c = src[y]
        u = src[y - 1] if y > 0 else c
        d = src[y + 1] if y < h - 1 else c
        o = dst[y]
        if w == 1:
            o[0] = min(c[0], min(u[0], d[0]))
            continue
        o[0] = min(min(c[0], c[1]), min(u[0], d[0]))
        for x in range(w - 2):
            o[x + 1] = min(min(min(c[x], c[x + 1]), c[x + 2]), min(u[x + 1], d[x + 1]))
        o[w - 1] = min(min(c[w - 2], c[w - 1]), min(u[w - 1], d[w - 1]))


@numba.njit(cache=True)
def erosion_stack(pixels, nsteps):
    """``E[p, k]`` = ``pixels`` eroded ``k + 1`` times with ``disk(1)``, pixel-major.

    Levels are eroded in contiguous planes, then transposed block by block so
    each block of ``E`` is written while it sits in cache.
    """
    h, w = pixels.shape
    n = h * w
    planes = np.empty((nsteps + 1, h, w), pixels.dtype)
    planes[0] = pixels
    for k in range(nsteps):
        _erode_cross(planes[k], planes[k + 1])
    flat = planes.reshape(nsteps + 1, n)
    e = np.empty((n, nsteps), pixels.dtype)
    block = 512
    for start in range(0, n, block):
        stop = min(start + block, n)
        for k in range(nsteps):
            src = flat[k + 1]
            for p in range(start, stop):
                e[p, k] = src[p]
    return e


@numba.njit(cache=True)
def _find_root(zpar, u):
    root = u
    while zpar[root] != root:
        root = zpar[root]
    while zpar[u] != root:  # path compression
        nxt = zpar[u]
        zpar[u] = root
        u = nxt
    return root


@numba.njit(cache=True)
def max_tree(image, order):
    """4-connected max-tree of ``image`` in rank space (Berger et al.'s union-find).

    Parameters
    ----------
    image : (h, w) array
    order : int32 (h*w,), flat pixel indices by increasing value (ties in any order)

    Returns
    -------
    parent : int32 (h*w,)
        ``parent[t]`` is the rank of the max-tree parent of the pixel of rank ``t``
        (``<= t``; the root is its own parent). Pixels are visited by decreasing
        value; each becomes the root of the components of its already visited
        neighbours, so ties may chain inside a plateau, which reconstruction
        handles (see :func:`granular_steps`).

    References
    ----------
    C. Berger, T. Geraud, R. Levillain, N. Widynski, A. Baillard, E. Bertin,
    "Effective component tree computation with application to pattern
    recognition in astronomical imaging", ICIP 2007.
    """
    h, w = image.shape
    n = h * w
    rank = np.empty(n, np.int32)
    for t in range(n):
        rank[order[t]] = t
    parent = np.empty(n, np.int32)
    zpar = np.empty(n, np.int32)  # union-find forest, balanced by rank
    zrank = np.zeros(n, np.uint8)
    canon = np.empty(n, np.int32)  # lowest (latest visited) pixel of each set, by its root
    for t in range(n - 1, -1, -1):
        p = order[t]
        parent[t] = t
        zpar[t] = t
        canon[t] = t
        zt = t
        y = p // w
        x = p - y * w
        for k in range(4):
            if k == 0:
                if y == 0:
                    continue
                u = rank[p - w]
            elif k == 1:
                if y == h - 1:
                    continue
                u = rank[p + w]
            elif k == 2:
                if x == 0:
                    continue
                u = rank[p - 1]
            else:
                if x == w - 1:
                    continue
                u = rank[p + 1]
            if u > t:  # visited already
                r = _find_root(zpar, u)
                if r != zt:
                    parent[canon[r]] = t
                    if zrank[zt] < zrank[r]:
                        zpar[zt] = r
                        zt = r
                    else:
                        zpar[r] = zt
                        if zrank[zt] == zrank[r]:
                            zrank[zt] += 1
                    canon[zt] = t
    return parent


@numba.njit(cache=True)
def granular_steps(pixels, order, parent_rank, nsteps):
    """``nsteps`` successive ``disk(1)`` erosions, each reconstructed by dilation under ``pixels``.

    Reconstruction by dilation of a seed ``s <= I`` gives pixel ``p`` the highest
    level ``l <= I(p)`` whose connected component of ``{I >= l}`` holding ``p``
    contains a seed value ``>= l``: on the max-tree of ``I``, a bottom-up pass
    (largest seed in each subtree) and a top-down pass (best level along the path
    to the root). All steps share the tree, so both passes run once with a row of
    ``nsteps`` values per pixel (one cache line per tree node instead of one per
    node and step).

    Parameters
    ----------
    pixels : (h, w) float array, the background-subtracted image (mask of every reconstruction)
    order : int (h*w,), pixels sorted by increasing value (tree order: parents first)
    parent_rank : int (h*w,), max-tree parent of the pixel of each rank, as a rank (<= own rank)

    Returns
    -------
    recs : (h*w, nsteps) array of ``pixels.dtype``
        Reconstruction ``k`` in column ``k`` (its values are pixel values, so no precision is lost).
    means : (nsteps,) float64
        Mean of each reconstruction.
    """
    h, w = pixels.shape
    n = h * w
    flat = pixels.ravel()
    ero = erosion_stack(pixels, nsteps)
    best = np.empty((n, nsteps), flat.dtype)
    for t in range(n):  # seeds in tree order (erosions never exceed the mask)
        p = order[t]
        for k in range(nsteps):
            best[t, k] = ero[p, k]
    for t in range(n - 1, 0, -1):  # largest seed in each subtree, children first
        q = parent_rank[t]
        for k in range(nsteps):
            if best[t, k] > best[q, k]:
                best[q, k] = best[t, k]
    sums = np.zeros(nsteps)
    for t in range(n):  # highest reachable level, parents first; best becomes the result
        v = flat[order[t]]
        q = parent_rank[t]
        for k in range(nsteps):
            r = best[t, k] if best[t, k] < v else v
            if q != t and best[q, k] > r:
                r = best[q, k]
            best[t, k] = r
    recs = ero  # every row of ero was read above
    for t in range(n):  # back to pixel order
        p = order[t]
        for k in range(nsteps):
            recs[p, k] = best[t, k]
            sums[k] += best[t, k]
    return recs, sums / n


# ----------------------------------------------------------------------------- object upsampling matrix
@numba.njit(cache=True)
def upsampling_csr(order, offsets, shape, small_shape):
    """CSR rows (one per label) of bilinear weights summed over each object's pixels.

    Row ``i`` holds, for label ``i + 1``, ``sum over its pixels of`` the weights
    with which scipy's ``map_coordinates(order=1)`` upsampling of a
    ``small_shape`` image to ``shape`` (CellProfiler's coordinates
    ``i * (small - 1) / (full - 1)``) reads each small pixel; so
    ``row @ small.ravel()`` is the object's sum of the upsampled image.
    """
    h, w = shape
    sh, sw = small_shape
    sy = float(sh - 1) / float(h - 1) if h > 1 else 0.0
    sx = float(sw - 1) / float(w - 1) if w > 1 else 0.0
    nobj = offsets.size - 1
    s = sh * sw
    acc = np.zeros(s)
    seen = np.zeros(s, np.bool_)
    touched = np.empty(s, np.int64)
    indptr = np.zeros(nobj + 1, np.int64)
    cap = 4 * order.size + 16
    indices = np.empty(cap, np.int64)
    data = np.empty(cap)
    nnz = 0
    for i in range(nobj):
        nt = 0
        for t in range(offsets[i], offsets[i + 1]):
            p = order[t]
            y = (p // w) * sy
            x = (p % w) * sx
            y0 = min(int(np.floor(y)), sh - 1)
            x0 = min(int(np.floor(x)), sw - 1)
            fy = y - y0
            fx = x - x0
            y1 = min(y0 + 1, sh - 1)
            x1 = min(x0 + 1, sw - 1)
            for a in range(4):
                if a == 0:
                    q = y0 * sw + x0
                    wt = (1.0 - fy) * (1.0 - fx)
                elif a == 1:
                    q = y0 * sw + x1
                    wt = (1.0 - fy) * fx
                elif a == 2:
                    q = y1 * sw + x0
                    wt = fy * (1.0 - fx)
                else:
                    q = y1 * sw + x1
                    wt = fy * fx
                if wt == 0.0:
                    continue
                if not seen[q]:
                    seen[q] = True
                    touched[nt] = q
                    nt += 1
                acc[q] += wt
        for j in range(nt):
            q = touched[j]
            indices[nnz] = q
            data[nnz] = acc[q]
            nnz += 1
            acc[q] = 0.0
            seen[q] = False
        indptr[i + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()


@numba.njit(cache=True)
def csr_rows_times(indptr, indices, data, dense):
    """``csr @ dense`` for a float32 ``dense`` without scipy's float64 copy of it.

    ``dense`` (small pixels x steps) is read row by row in its own dtype; the
    products are summed in float64 in the order of ``indices``, as scipy's
    ``csr_matvecs`` does on the upcast copy (the same numbers).
    """
    nrows = indptr.size - 1
    ncols = dense.shape[1]
    out = np.zeros((nrows, ncols))
    for i in range(nrows):
        for j in range(indptr[i], indptr[i + 1]):
            wt = data[j]
            row = dense[indices[j]]
            for k in range(ncols):
                out[i, k] += wt * row[k]
    return out


@numba.njit(cache=True)
def segment_sums(flat, order, offsets):
    """Per object: the float64 sum of ``flat`` over its pixels, in ``order`` (``np.bincount``'s order)."""
    n = offsets.size - 1
    out = np.zeros(n)
    for i in range(n):
        total = 0.0
        for t in range(offsets[i], offsets[i + 1]):
            total += flat[order[t]]
        out[i] = total
    return out
