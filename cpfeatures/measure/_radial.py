"""MeasureObjectIntensityDistribution (CPJUMP1 module 25), all objects at once.

CellProfiler 4.2.8's radial distribution of intensity, from each object's
centre to its edge, in ``bins`` rings:

- **distance to the edge** of a pixel: Euclidean distance to the nearest pixel
  of another label or of the background (pixels outside the image do not
  count), as ``centrosome.cpmorphology.distance_to_edge``;
- **centre** of an object: its pixel farthest from the edge. Ties between
  equally distant pixels are broken as CellProfiler 4.2.8 breaks them:
  ``scipy.ndimage.maximum_position`` keeps, per label, the last pixel of an
  unstable ``argsort`` (numpy 1.23's introsort) of the *whole* distance image,
  so the chosen pixel depends on every value of the image. We run that exact
  sort (a port of numpy 1.23's ``aquicksort``) once per label image;
- **distance from the centre**: geodesic distance within the object (steps of
  1 and sqrt(2) between 8-neighbours), which is what CellProfiler's
  ``propagate`` on a zero image with weight 1 computes;
- normalized radius ``r = d_centre / (d_centre + d_edge + 0.001)`` (scaled) or
  ``d_centre / max_radius`` (unscaled, with an overflow ring beyond it); a
  pixel's ring is ``floor(r * bins)``; pixels the centre does not reach (other
  pieces of a fragmented object) are left out;
- 8 angular wedges around the centre (above/below, left/right, and whether the
  vertical offset exceeds the horizontal one).

Per object and ring: ``FracAtD`` = fraction of the object's intensity in the
ring; ``MeanFrac`` = FracAtD / (fraction of the object's pixels in the ring +
eps); ``RadialCV`` = standard deviation / mean of the wedges' mean
intensities over the wedges that have pixels (0 when none has). All of this
geometry depends only on the labels and is computed once per label image
(:meth:`Objects.cached`); each image then costs one pass over the object
pixels, summing in the image's dtype and pixel order as CellProfiler does.

Centres may instead come from another object set (``centers``; CellProfiler's
"Centers of other objects" / "Edges of other objects"), propagated over all
objects at once with :func:`cpfeatures.segment.propagate.propagate`, exactly
as CellProfiler does. Intensity Zernike moments (``RadialDistribution_Zernike
Magnitude/Phase``) are available with ``zernike=<degree>`` (and ``zernike_phase``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba
import numpy as np

from ..errors import InputError
from ..segment.propagate import propagate
from . import _defaults
from ._np123 import argsort_np123, positions_of_peaks
from ._objects import Objects, as_image, as_objects
from ._sizeshape import minimum_enclosing_circles
from ._zernike import intensity_zernike_sums, zernike_coefficients, zernike_indexes

__all__ = ["radial", "measure_family", "FEATURES"]

FEATURES = ("FracAtD", "MeanFrac", "RadialCV")
_CENTER_CHOICES = ("centers", "edges")
_BIG = np.int64(1) << 40  # "no other label in this direction" (squared distance)


# --------------------------------------------------------------------------------------------
# distance to the edge of the object (exact Euclidean distance transform per object)
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _squared_distance_to_edge(labels):
    """Squared Euclidean distance of each object pixel to the nearest pixel of another label.

    The background (label 0) counts as another label; outside the image does not (as
    scipy's EDT of CellProfiler's colour masks). Exact separable transform on integers:
    distances along each column to the ends of the pixel's run of equal labels (two
    row-major sweeps), then, per row run, the nearest of the run's column values and of
    the two pixels bounding the run. Background pixels get 0.
    """
    m, n = labels.shape
    g = np.empty((m, n), np.int64)
    start = np.zeros(n, np.int64)
    for i in range(m):
        for j in range(n):
            if i > 0 and labels[i, j] != labels[i - 1, j]:
                start[j] = i
            g[i, j] = _BIG if start[j] == 0 else (i - start[j] + 1) * (i - start[j] + 1)
    end = np.full(n, m - 1, np.int64)
    for i in range(m - 1, -1, -1):
        for j in range(n):
            if i < m - 1 and labels[i, j] != labels[i + 1, j]:
                end[j] = i
            if labels[i, j] == 0:
                g[i, j] = 0
            elif end[j] < m - 1:
                d = (end[j] + 1 - i) * (end[j] + 1 - i)
                if d < g[i, j]:
                    g[i, j] = d
    out = np.zeros((m, n), np.int64)
    for i in range(m):
        j = 0
        while j < n:
            lab = labels[i, j]
            s = j
            while j < n and labels[i, j] == lab:
                j += 1
            e = j - 1
            if lab == 0:
                continue
            for k in range(s, e + 1):
                best = g[i, k]
                if s > 0:
                    d = (k - s + 1) * (k - s + 1)
                    if d < best:
                        best = d
                if e < n - 1:
                    d = (e + 1 - k) * (e + 1 - k)
                    if d < best:
                        best = d
                dd = 1
                while dd * dd < best:
                    left = k - dd >= s
                    right = k + dd <= e
                    if not left and not right:
                        break
                    if left:
                        v = g[i, k - dd] + dd * dd
                        if v < best:
                            best = v
                    if right:
                        v = g[i, k + dd] + dd * dd
                        if v < best:
                            best = v
                    dd += 1
                out[i, k] = best
    return out


def _distance_to_edge2(labels: np.ndarray) -> np.ndarray:
    """:func:`_squared_distance_to_edge`, and scipy's answer where there is no edge at all.

    When one object is the whole image, CellProfiler's ``distance_transform_edt`` of a mask
    without background returns ``(i + 1)^2 + j^2`` (as if the pixel above the top-left corner
    were background): its centre is then the bottom-right corner and the rings spread over
    the image. That is reproduced rather than putting every pixel in the first ring.
    """
    if labels.size and labels.min() > 0 and labels.min() == labels.max():
        i, j = np.indices(labels.shape, dtype=np.int64)
        return (i + 1) * (i + 1) + j * j
    return _squared_distance_to_edge(labels)


@numba.njit(cache=True)
def _peaks(keys, flat, count):
    """Largest key per label 0..count (-1 where absent)."""
    peak = np.full(count + 1, -1, np.int64)
    for p in range(keys.size):
        if keys[p] > peak[flat[p]]:
            peak[flat[p]] = keys[p]
    return peak


def _maximum_positions(d2: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """CellProfiler's ``maximum_position_of_labels`` for labels 1..count: flat index per label.

    scipy (1.9) argsorts the whole distance image and keeps, per label, the last pixel of
    that order; labels without pixels get position 0. The squared integer distances (in the
    narrowest integer type that holds them) order the pixels as their square roots do.
    """
    top = int(d2.max()) if d2.size else 0
    dtype = np.uint16 if top < 2 ** 16 else (np.int32 if top < 2 ** 31 else np.int64)
    keys, flat = d2.ravel().astype(dtype), labels.ravel()
    peak = _peaks(keys, flat, count)
    targets = np.unique(peak[1:][peak[1:] >= 0]).astype(np.float64)
    return positions_of_peaks(keys, flat, peak, targets)


# --------------------------------------------------------------------------------------------
# geodesic distance from each object's own centre
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _geodesic_from_centres(labels, bbox, ci, cj):
    """Distance from each object's centre over the object's pixels, steps 1 and sqrt(2).

    CellProfiler runs ``propagate(zeros, centres, colour mask, 1)`` per colour of
    ``color_labels`` (touching objects never share a colour, so a centre only grows in its
    own object). Each pixel's distance is then the least fixed point of
    ``d(q) = min over reached 8-neighbours p of (step + d(p))``, which does not depend on
    the order pixels are visited in (float addition is monotone). We reach the same fixed
    point with alternating raster sweeps in each object's bounding box until nothing
    changes: the same step costs and additions, so the same values. Returns the distance
    (-1 where the centre does not reach: other pieces of a fragmented object).
    """
    m, n = labels.shape
    dist = np.full((m, n), np.inf)
    r1 = np.sqrt(0.0 * 0.0 + 1 * 1.0 * 1.0)
    r2 = np.sqrt(0.0 * 0.0 + 2 * 1.0 * 1.0)
    for obj in range(bbox.shape[0]):
        own = obj + 1
        i0, j0, i1, j1 = bbox[obj, 0], bbox[obj, 1], bbox[obj, 2], bbox[obj, 3]
        if i1 <= i0:
            continue
        dist[ci[obj], cj[obj]] = 0.0
        changed = True
        while changed:
            changed = False
            for i in range(i0, i1):
                for j in range(j0, j1):
                    if labels[i, j] != own:
                        continue
                    d = dist[i, j]
                    if i > 0:
                        if j > 0 and labels[i - 1, j - 1] == own:
                            c = r2 + dist[i - 1, j - 1]
                            if c < d:
                                d = c
                        if labels[i - 1, j] == own:
                            c = r1 + dist[i - 1, j]
                            if c < d:
                                d = c
                        if j < n - 1 and labels[i - 1, j + 1] == own:
                            c = r2 + dist[i - 1, j + 1]
                            if c < d:
                                d = c
                    if j > 0 and labels[i, j - 1] == own:
                        c = r1 + dist[i, j - 1]
                        if c < d:
                            d = c
                    if d < dist[i, j]:
                        dist[i, j] = d
                        changed = True
            for i in range(i1 - 1, i0 - 1, -1):
                for j in range(j1 - 1, j0 - 1, -1):
                    if labels[i, j] != own:
                        continue
                    d = dist[i, j]
                    if i < m - 1:
                        if j < n - 1 and labels[i + 1, j + 1] == own:
                            c = r2 + dist[i + 1, j + 1]
                            if c < d:
                                d = c
                        if labels[i + 1, j] == own:
                            c = r1 + dist[i + 1, j]
                            if c < d:
                                d = c
                        if j > 0 and labels[i + 1, j - 1] == own:
                            c = r2 + dist[i + 1, j - 1]
                            if c < d:
                                d = c
                    if j < n - 1 and labels[i, j + 1] == own:
                        c = r1 + dist[i, j + 1]
                        if c < d:
                            d = c
                    if d < dist[i, j]:
                        dist[i, j] = d
                        changed = True
    for i in range(m):
        for j in range(n):
            if dist[i, j] == np.inf:
                dist[i, j] = -1.0
    return dist


@numba.njit(cache=True)
def _compact(labels, centre, d_from, d2_edge, keep, own):
    """The pixels that have a centre, row-major: flat index, label, centre index, distance from
    the centre and to the edge (``sqrt`` of the squared distance, as scipy's EDT).

    ``own``: a pixel's centre is its object's own wherever ``d_from >= 0``; otherwise it is
    ``centre`` (0 = none) and the pixel must be in ``keep``.
    """
    m, n = labels.shape
    count = 0
    for i in range(m):
        for j in range(n):
            if labels[i, j] > 0 and (d_from[i, j] >= 0 if own else centre[i, j] > 0 and keep[i, j]):
                count += 1
    flat = np.empty(count, np.int64)
    lab = np.empty(count, np.int64)
    cidx = np.empty(count, np.int64)
    dfrom = np.empty(count, np.float64)
    dedge = np.empty(count, np.float64)
    t = 0
    for i in range(m):
        for j in range(n):
            if labels[i, j] > 0 and (d_from[i, j] >= 0 if own else centre[i, j] > 0 and keep[i, j]):
                flat[t] = i * n + j
                lab[t] = labels[i, j]
                cidx[t] = (labels[i, j] if own else centre[i, j]) - 1
                dfrom[t] = d_from[i, j]
                dedge[t] = np.sqrt(np.float64(d2_edge[i, j]))
                t += 1
    return flat, lab, cidx, dfrom, dedge


@dataclass
class _Centres:
    """Label-only geometry: every pixel that has a centre, with its distances (row-major)."""

    flat: np.ndarray  # flat pixel index
    label: np.ndarray  # object label (1-based)
    centre: np.ndarray  # 0-based index into ci / cj
    d_from: np.ndarray  # distance from the centre
    d_edge: np.ndarray  # distance to the object's edge
    ci: np.ndarray  # centre row per centre index
    cj: np.ndarray  # centre column per centre index


def _self_centres(objects: Objects) -> _Centres:
    labels = objects.labels
    n = objects.count
    d2_edge = _distance_to_edge2(labels)
    pos = _maximum_positions(d2_edge, labels, n)
    ci, cj = pos // labels.shape[1], pos % labels.shape[1]
    d_from = _geodesic_from_centres(labels, objects.bbox, ci, cj)
    if n and not objects.present.all() and labels[0, 0] > 0:
        # CellProfiler puts an absent label's centre at (0, 0) with that pixel's label, a
        # second centre for the object there; the farther centre loses wherever it is farther
        k = labels[0, 0] - 1
        box = np.zeros_like(objects.bbox)
        box[k] = objects.bbox[k]
        extra = _geodesic_from_centres(labels, box, np.zeros(n, np.int64), np.zeros(n, np.int64))
        d_from = np.where(extra < 0, d_from, np.where((d_from < 0) | (extra < d_from), extra, d_from))
    none = np.zeros((1, 1), np.int32)
    flat, lab, cidx, dfrom, dedge = _compact(labels, none, d_from, d2_edge, none.astype(np.bool_), True)
    return _Centres(flat, lab, cidx, dfrom, dedge, ci, cj)


def _label_centroids(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel counts and mean row / column per label 1..count (NaN where absent)."""
    flat = labels.ravel()
    rows, cols = np.indices(labels.shape)
    area = np.bincount(flat, minlength=count + 1)[1:count + 1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mi = np.bincount(flat, rows.ravel().astype(np.float64), minlength=count + 1)[1:count + 1] / area
        mj = np.bincount(flat, cols.ravel().astype(np.float64), minlength=count + 1)[1:count + 1] / area
    return area, mi, mj


def _other_centres(objects: Objects, centers: np.ndarray, choice: str) -> _Centres:
    """CellProfiler's "Centers of other objects" / "Edges of other objects"."""
    labels = objects.labels
    d2_edge = _distance_to_edge2(labels)
    nc = int(centers.max()) if centers.size else 0
    area, mi, mj = _label_centroids(centers, nc)
    good = area > 0
    ci = np.zeros(nc, np.int64)
    cj = np.zeros(nc, np.int64)
    ci[good] = (mi[good] + 0.5).astype(np.int64)
    cj[good] = (mj[good] + 0.5).astype(np.int64)
    ig, jg, lg = ci[good], cj[good], np.flatnonzero(good) + 1
    if choice == "centers":
        seeds = np.zeros(labels.shape, np.int64)
        seeds[ig, jg] = lg
    else:
        seeds = centers.astype(np.int64)
    cl, d_from = propagate(np.zeros(labels.shape), seeds, labels != 0, 1.0)
    cl[labels == 0] = 0
    missing = (labels != 0) & (cl == 0)
    missing_labels = np.unique(labels[missing])
    if missing_labels.size and lg.size:
        # objects no centre reaches: the centre closest to the object's centroid, then straight-line
        # distances to it (CellProfiler's fallback for hollow or crescent-shaped objects)
        _, oi, oj = _label_centroids(labels, objects.count)
        di = oi[missing_labels - 1][:, None] - ig[None, :]
        dj = oj[missing_labels - 1][:, None] - jg[None, :]
        d2 = di * di + dj * dj
        first = np.array([argsort_np123(row)[0] for row in d2], np.int64)
        best = np.zeros(objects.count + 1, np.int64)
        best[missing_labels] = lg[first]
        cl[missing] = best[labels[missing]]
        pi, pj = np.nonzero(missing)
        c = cl[missing] - 1
        ddi, ddj = pi - ci[c], pj - cj[c]
        d_from[missing] = np.sqrt(ddi * ddi + ddj * ddj)
    keep = seeds == 0 if choice == "edges" else np.ones(labels.shape, np.bool_)
    flat, lab, cidx, dfrom, dedge = _compact(labels, cl, d_from, d2_edge, keep, False)
    return _Centres(flat, lab, cidx, dfrom, dedge, ci, cj)


# --------------------------------------------------------------------------------------------
# rings and wedges, then per-image sums
# --------------------------------------------------------------------------------------------
@dataclass
class _Rings:
    count: int  # objects (labels 1..count)
    bins: int
    scaled: bool
    flat: np.ndarray  # flat index of each measured pixel
    cell: np.ndarray  # ((label - 1) * (bins + 1) + ring) * 8 + wedge
    npix: np.ndarray  # (count, bins + 1, 8) pixel counts


@numba.njit(cache=True)
def _ring_cells(flat, label, centre, d_from, d_edge, ci, cj, width, bins, scaled, max_radius, count):
    """Each measured pixel's cell ``((label - 1) * (bins + 1) + ring) * 8 + wedge`` and the
    pixel count per cell, with CellProfiler's float operations."""
    cell = np.empty(flat.size, np.int64)
    npix = np.zeros(count * (bins + 1) * 8)
    for t in range(flat.size):
        if scaled:
            r = d_from[t] / ((d_from[t] + d_edge[t]) + 0.001)
        else:
            r = d_from[t] / max_radius
        ring = np.int64(r * bins)
        if ring > bins:
            ring = bins
        i = flat[t] // width
        j = flat[t] - i * width
        ic = ci[centre[t]]
        jc = cj[centre[t]]
        wedge = (1 if i > ic else 0) + (2 if j > jc else 0) + (4 if abs(i - ic) > abs(j - jc) else 0)
        c = ((label[t] - 1) * (bins + 1) + ring) * 8 + wedge
        cell[t] = c
        npix[c] += 1.0
    return cell, npix


def _rings(objects: Objects, c: _Centres, bins: int, scaled: bool, max_radius: float) -> _Rings:
    cell, npix = _ring_cells(c.flat, c.label, c.centre, c.d_from, c.d_edge, c.ci, c.cj, objects.shape[1],
                             bins, scaled, float(max_radius), objects.count)
    return _Rings(objects.count, bins, scaled, c.flat, cell, npix.reshape(objects.count, bins + 1, 8))


def _geometry(objects: Objects, bins: int, scaled: bool, max_radius: float, centers, center_choice: str
              ) -> _Rings:
    if int(bins) != bins or bins < 1:
        raise InputError(f"radial bins must be a positive integer, got {bins!r}")
    bins = int(bins)
    if not scaled and not max_radius > 0:
        raise InputError(f"radial max_radius must be positive, got {max_radius!r}")
    if center_choice not in _CENTER_CHOICES:
        raise InputError(f"radial center_choice must be one of {', '.join(_CENTER_CHOICES)}, "
                         f"got {center_choice!r}")
    if centers is None:
        ckey = None
        make = lambda: _self_centres(objects)  # noqa: E731
    else:
        centers = centers.labels if isinstance(centers, Objects) else np.asarray(centers)
        if centers.shape != objects.shape:
            raise InputError(f"centre labels shape {centers.shape} differs from label shape {objects.shape}")
        if centers.dtype.kind not in "iub" or (centers.size and centers.min() < 0):
            raise InputError("centre labels must be non-negative integers")
        centers = np.ascontiguousarray(centers, np.int32)
        ckey = (center_choice, hashlib.blake2b(centers.tobytes(), digest_size=16).hexdigest())
        make = lambda: _other_centres(objects, centers, center_choice)  # noqa: E731
    cen = objects.cached(("radial_centres", ckey), make)
    radius = None if scaled else float(max_radius)
    return objects.cached(("radial_rings", ckey, bins, bool(scaled), radius),
                          lambda: _rings(objects, cen, bins, bool(scaled), float(max_radius)))


@numba.njit(cache=True)
def _ring_sums(values, flat, cell, size):
    """Per (object, ring, wedge) and per (object, ring): sums of ``values`` at the measured
    pixels, accumulated in row-major pixel order and in the image's own dtype, as
    CellProfiler's ``coo_matrix(...).toarray()`` adds them (float32 for its images)."""
    wedge = np.zeros(size, values.dtype)
    ring = np.zeros(size >> 3, values.dtype)
    for t in range(flat.size):
        v = values[flat[t]]
        c = cell[t]
        wedge[c] += v
        ring[c >> 3] += v
    return wedge, ring


def _pairwise_rows(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` in numpy's order (pairwise blocks of 8, 128 per leaf) and dtype."""
    n = a.shape[1]
    if n < 8:
        out = np.zeros(a.shape[0], a.dtype)
        for b in range(n):
            out += a[:, b]
        return out
    if n <= 128:
        r = [a[:, b].copy() for b in range(8)]
        for i in range(8, n - n % 8, 8):
            for b in range(8):
                r[b] += a[:, i + b]
        out = (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))
        for i in range(n - n % 8, n):
            out += a[:, i]
        return out
    half = (n // 2) - (n // 2) % 8
    return _pairwise_rows(a[:, :half]) + _pairwise_rows(a[:, half:])


def _measure(objects: Objects, g: _Rings, image: np.ndarray) -> dict[str, np.ndarray]:
    n, nb = g.count, g.bins + 1
    wsum, rsum = _ring_sums(image.ravel(), g.flat, g.cell, n * nb * 8)
    hist = rsum.reshape(n, nb)
    sums = wsum.reshape(n, nb, 8)
    npix = g.npix
    number = npix.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (hist / _pairwise_rows(hist)[:, None]).astype(np.float64)
        pixel_frac = number / number.sum(axis=1, keepdims=True)
        mean_frac = frac / (pixel_frac + np.finfo(float).eps)
        occupied = npix > 0
        k = occupied.sum(axis=2)
        means = np.where(occupied, sums / npix, 0.0)
        mu = means.sum(axis=2) * 1.0 / k
        dev = np.where(occupied, means - mu[..., None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=2) / k)
        # numpy.ma's division keeps the numerator where the divisor is (nearly) 0
        cv = np.where(np.abs(std) * np.finfo(float).tiny >= np.abs(mu), std, std / mu)
    cv[k == 0] = 0.0
    out: dict[str, np.ndarray] = {}
    suffixes = [f"{b + 1}of{g.bins}" for b in range(g.bins)] + ([] if g.scaled else ["Overflow"])
    for feature, table in zip(FEATURES, (frac, mean_frac, cv)):
        for b, suffix in enumerate(suffixes):
            out[f"RadialDistribution_{feature}_{suffix}"] = np.ascontiguousarray(table[:, b])
    return out


_D = _defaults.DEFAULTS["radial"]


@_defaults.checked("radial")
def radial(labels, image, *, bins: int = _D["bins"], max_radius: float = _D["max_radius"],
           scaled: bool = _D["scaled"], centers=_D["centers"], center_choice: str = _D["center_choice"],
           zernike: int | None = _D["zernike"], zernike_phase: bool = _D["zernike_phase"]) -> dict[str, np.ndarray]:
    """Radial distribution of an image's intensity within every object.

    Parameters
    ----------
    labels : ndarray of int or Objects
        Objects to measure (0 = background).
    image : ndarray of float
        Intensity image of the same shape (CellProfiler's corrected image).
    bins : int
        Number of rings (CPJUMP1: 4).
    max_radius : float
        Radius of the outer ring boundary in pixels when ``scaled`` is False; beyond
        it pixels go to an ``Overflow`` ring.
    scaled : bool
        True (CPJUMP1): each pixel's radius is normalized by its distance from the
        centre plus its distance to the edge, so the rings span every object.
    centers : ndarray of int or Objects, optional
        Labels of another object set whose objects give the centres (e.g. nuclei as
        centres of cells). None (CPJUMP1): each object's own centre, the pixel
        farthest from its edge with CellProfiler's tie-breaking.
    center_choice : {"centers", "edges"}
        With ``centers``: measure from the centroids of those objects
        (CellProfiler's "Centers of other objects"), or from their whole area,
        leaving their pixels out ("Edges of other objects").
    zernike : int, optional
        Also the intensity Zernike moments up to this degree (CPJUMP1: off):
        ``RadialDistribution_ZernikeMagnitude_<n>_<m>``, ``|sum(I V_nm)| / area`` with the
        pixels scaled into the object's minimum enclosing circle (centrosome's, to the bit).
    zernike_phase : bool
        Also ``RadialDistribution_ZernikePhase_<n>_<m>`` = ``arctan2(Re, Im)``.

    Returns
    -------
    dict
        ``RadialDistribution_FracAtD_<k>of<bins>``, ``RadialDistribution_MeanFrac_<k>of<bins>``
        and ``RadialDistribution_RadialCV_<k>of<bins>`` for k = 1..bins (plus ``_Overflow``
        when not scaled); one value per label 1..max. Absent labels get NaN for FracAtD and
        MeanFrac and 0 for RadialCV, as CellProfiler computes them. With ``zernike``, the
        Zernike magnitudes (and phases), NaN for absent and one-pixel objects.

    Notes
    -----
    See the module docstring for the definitions. The centres, rings and wedges are
    CellProfiler 4.2.8's pixel for pixel (ties included), and intensities are summed in
    the image's dtype and in CellProfiler's pixel order, so values equal its export (to the
    printed precision on the 7 CPJUMP1 reference sites). Intensities outside objects do
    not matter; objects without any centre (other-object centres, none at all) get NaN.

    References
    ----------
    CellProfiler 4.2.8, ``cellprofiler/modules/measureobjectintensitydistribution.py``;
    centrosome 1.2, ``cpmorphology.distance_to_edge``, ``maximum_position_of_labels``,
    ``propagate``, ``zernike.construct_zernike_polynomials``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((21, 21), int); labels[2:19, 2:19] = 1
    >>> yy, xx = np.mgrid[:21, :21]
    >>> image = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 20.0)  # bright in the middle
    >>> out = radial(labels, image)
    >>> inner, outer = out["RadialDistribution_MeanFrac_1of4"][0], out["RadialDistribution_MeanFrac_4of4"][0]
    >>> bool(inner > 1 > outer)  # more intensity per pixel near the centre than at the edge
    True
    """
    objects = as_objects(labels)
    image = as_image(image, objects)
    out = _measure(objects, _geometry(objects, bins, scaled, max_radius, centers, center_choice), image)
    if zernike is not None:
        out.update(_zernikes(objects, _zernike_geometry(objects, zernike), [image], bool(zernike_phase))[0])
    return out


# --------------------------------------------------------------------------------------------
# optional intensity Zernike moments
# --------------------------------------------------------------------------------------------


def _zernike_geometry(objects: Objects, degree):
    if isinstance(degree, bool) or int(degree) != degree or degree < 0:
        raise InputError(f"zernike degree must be a non-negative integer, got {degree!r}")
    degree = int(degree)

    def make():
        ci, cj, rad = minimum_enclosing_circles(objects)  # centrosome's circle, to the bit
        lab = objects.pixel_labels.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (objects.rows - ci[lab - 1]) / rad[lab - 1]
            x = (objects.cols - cj[lab - 1]) / rad[lab - 1]
        return x, y, lab

    return objects.cached(("radial_zernike_xy",), make), degree


def _zernikes(objects: Objects, geo, images: list, phase: bool) -> list[dict[str, np.ndarray]]:
    (x, y, lab), degree = geo
    idx = zernike_indexes(degree)
    ns, ms = idx[:, 0].copy(), idx[:, 1].copy()
    weights = np.empty((len(images), objects.order.size))
    for g, image in enumerate(images):
        weights[g] = image.ravel()[objects.order]
    re, im = intensity_zernike_sums(x, y, lab, weights, ns, ms, zernike_coefficients(idx), objects.count)
    area = objects.area.astype(np.float64)
    results = []
    for g in range(len(images)):
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.sqrt(re[g] * re[g] + im[g] * im[g]) / area[:, None]
        for q, (n, m) in enumerate(idx.tolist()):
            out[f"RadialDistribution_ZernikeMagnitude_{n}_{m}"] = mag[:, q]
            if phase:
                out[f"RadialDistribution_ZernikePhase_{n}_{m}"] = np.arctan2(re[g][:, q], im[g][:, q])
        results.append(out)
    return results


# --------------------------------------------------------------------------------------------
# family entry point
# --------------------------------------------------------------------------------------------
def _column(key: str, image: str) -> str:
    # RadialDistribution_<Feature>_<suffix> -> RadialDistribution_<Feature>_<image>_<suffix>
    head, feature, suffix = key.split("_", 2)
    return f"{head}_{feature}_{image}_{suffix}"


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """Every (validated) image's radial distribution with CellProfiler names (see :func:`radial`)."""
    st = _defaults.resolve("radial", settings)
    geometry = _geometry(objects, st["bins"], bool(st["scaled"]), st["max_radius"], st["centers"],
                         st["center_choice"])
    names = sorted(images)
    out: dict[str, np.ndarray] = {}
    for name in names:
        for key, values in _measure(objects, geometry, images[name]).items():
            out[_column(key, name)] = values
    if st["zernike"] is not None:
        zs = _zernikes(objects, _zernike_geometry(objects, st["zernike"]), [images[n] for n in names],
                       bool(st["zernike_phase"]))
        for name, z in zip(names, zs):
            for key, values in z.items():
                out[_column(key, name)] = values
    return out
