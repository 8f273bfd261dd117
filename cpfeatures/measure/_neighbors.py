"""MeasureObjectNeighbors (CPJUMP1 modules 22-24), every object of an image at once.

An object set is measured against itself, with CellProfiler 4.2.8's
definitions for the "Within a specified distance" and "Adjacent" methods
("Adjacent" is the same computation with distance 1) and "Consider objects
discarded for touching image border?" = Yes.

Two label images take part:

- the **kept** labels (the object set as exported, objects ``1..N``);
- the **discarded-inclusive** labels, CellProfiler's ``small_removed_segmented``
  of the object set (``discarded``). Their ids need not equal the kept ids:
  each kept object is related to the discarded-inclusive object it overlaps
  most (ties to the lowest id), as CellProfiler's ``relate_labels`` does.
  Without ``discarded`` the kept labels play both roles.

Per kept object ``k`` related to discarded-inclusive object ``s``:

- ``NumberOfNeighbors``: distinct discarded-inclusive objects other than ``s``
  with a pixel within a disk of radius ``distance`` (``x^2 + y^2 <= d^2``,
  centrosome's ``strel_disk``) of a pixel of ``s``; discarded objects count.
- ``PercentTouching``: 100 x the outline pixels of ``s`` (object pixels with a
  different 8-neighbour, or on the image edge) having a pixel of another
  object within a disk of radius ``distance + 0.5``, over all outline pixels
  of ``s``.
- ``FirstClosestDistance``, ``SecondClosestDistance``: distances from the
  centre of mass of ``s`` to the nearest and second-nearest centres of the
  other discarded-inclusive objects (discarded ones included).
- ``AngleBetweenNeighbors``: the angle, in degrees, at the centre of ``s``
  between the vectors to those two centres.
- ``FirstClosestObjectNumber``, ``SecondClosestObjectNumber``: the nearest and
  second-nearest **kept** objects, centres again taken from the related
  discarded-inclusive objects; ties go to the lower object number.

So the closest distance may belong to a discarded object while the closest
number names a kept one: CellProfiler computes them separately and we keep
that. For IdentifyPrimaryObjects objects (Nuclei) CellProfiler's
``small_removed_segmented`` is taken **after** border objects were removed
(only objects dropped for being too large remain as "discarded"); for
IdentifySecondaryObjects objects (Cells) it holds the cells grown from
border-touching nuclei. Pass exactly that image as ``discarded``: from
``segment_site(..., return_details=True)`` that is ``NucleiSmallRemoved``
for Nuclei and ``CellsUnedited`` for Cells (``NucleiUnedited``, before
border removal, does not reproduce CellProfiler).

NaN/zero policy: labels absent from the kept image get 0 neighbours, 0 %
touching, object numbers 0 and NaN distances and angle (CellProfiler would
report values of an unrelated object there). With fewer than two
discarded-inclusive objects everything is 0, with fewer than three the second
distance and the angle are 0, as in CellProfiler. Collinear neighbours may
give NaN angles where rounding puts the cosine beyond 1, as in CellProfiler.

Implementation: one raster pass (object relation, centres, outlines), a
counting sort of outline pixels by object, then a numba kernel visiting each
outline pixel's disk once; nearest centres by a numba all-pairs scan.
"""

from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from ..errors import InputError
from . import _defaults
from ._objects import Objects, as_objects

__all__ = ["neighbors", "measure_family", "FEATURES"]

FEATURES = ["NumberOfNeighbors", "PercentTouching", "FirstClosestObjectNumber", "FirstClosestDistance",
            "SecondClosestObjectNumber", "SecondClosestDistance", "AngleBetweenNeighbors"]


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _scan(kept, disc, n_kept, n_disc):
    """One raster pass over both label images.

    Returns per kept label: area, the first discarded-inclusive label it
    overlaps and whether it overlaps more than one; per discarded-inclusive
    label: pixel count, sums of rows and columns (accumulated in row-major
    order, as scipy's ``center_of_mass`` does, so centres are bit-identical)
    and outline pixel count; and the outline flag image (centrosome's
    ``outline``: a labelled pixel with a different 8-neighbour or on the edge).
    """
    h, w = disc.shape
    kept_area = np.zeros(n_kept + 1, np.int64)
    count = np.zeros(n_disc + 1, np.float64)
    sum_r = np.zeros(n_disc + 1, np.float64)
    sum_c = np.zeros(n_disc + 1, np.float64)
    perim = np.zeros(n_disc + 2, np.int64)
    edge = np.zeros((h, w), np.uint8)
    cand = np.zeros(n_kept + 1, np.int64)
    multi = np.zeros(n_kept + 1, np.bool_)
    for r in range(h):
        for c in range(w):
            s = disc[r, c]
            k = kept[r, c]
            kept_area[k] += 1
            if k > 0 and s > 0:
                if cand[k] == 0:
                    cand[k] = s
                elif cand[k] != s:
                    multi[k] = True
            if s == 0:
                continue
            count[s] += 1.0
            sum_r[s] += r
            sum_c[s] += c
            out = r == 0 or c == 0 or r == h - 1 or c == w - 1
            if not out:
                out = (disc[r - 1, c - 1] != s or disc[r - 1, c] != s or disc[r - 1, c + 1] != s
                       or disc[r, c - 1] != s or disc[r, c + 1] != s or disc[r + 1, c - 1] != s
                       or disc[r + 1, c] != s or disc[r + 1, c + 1] != s)
            if out:
                edge[r, c] = 1
                perim[s] += 1
    return kept_area, count, sum_r, sum_c, perim, edge, cand, multi


@numba.njit(cache=True)
def _bucket(disc, edge, starts, pad):
    """Outline pixels grouped by label (label s owns ``pix[starts[s]:starts[s+1]]``) as flat
    indices into the image padded by ``pad`` zeros on every side."""
    h, w = disc.shape
    wp = w + 2 * pad
    pos = starts.copy()
    pix = np.empty(starts[-1], np.int64)
    for r in range(h):
        for c in range(w):
            if edge[r, c]:
                s = disc[r, c]
                pix[pos[s]] = (r + pad) * wp + c + pad
                pos[s] += 1
    return pix


@numba.njit(cache=True)
def _contacts(flat, starts, pix, wanted, offsets, n_inner, n_disc):
    """Per wanted label: distinct other labels within the inner disk of an outline pixel, and
    outline pixels with another label within the full (inner + ring) disk.

    Only outline pixels are visited: a pixel of s within the disk of some pixel of s also lies
    within the disk of a pixel of s with a 4-neighbour outside s (walk from the first towards it).
    """
    nbr = np.zeros(n_disc + 1, np.int64)
    touch = np.zeros(n_disc + 1, np.int64)
    mark = np.zeros(n_disc + 1, np.int64)
    n_off = offsets.size
    for i in range(wanted.size):
        s = wanted[i]
        for m in range(starts[s], starts[s + 1]):
            p = pix[m]
            touched = False
            for o in range(n_off):
                if o >= n_inner and touched:
                    break
                t = flat[p + offsets[o]]
                if t != 0 and t != s:
                    touched = True
                    if o < n_inner and mark[t] != s:
                        mark[t] = s
                        nbr[s] += 1
            if touched:
                touch[s] += 1
    return nbr, touch


@numba.njit(inline="always")
def _before(a, ia, b, ib):
    """Order of a stable ascending sort: NaN last, equal values by index."""
    if a == b or (a != a and b != b):
        return ia < ib
    if a != a:
        return False
    if b != b:
        return True
    return a < b


@numba.njit(cache=True)
def _nearest3(qy, qx, py, px, valid):
    """For each query point, indices of the 3 smallest ``sqrt(dy*dy + dx*dx)`` to the points
    (invalid points at +inf), ordered like a stable sort; -1 when there are fewer points."""
    nq = qy.size
    npt = py.size
    out = np.full((nq, 3), -1, np.int64)
    for i in range(nq):
        bd = np.empty(3)
        bi = np.full(3, -1, np.int64)
        filled = 0
        for j in range(npt):
            if valid[j]:
                dyy = qy[i] - py[j]
                dxx = qx[i] - px[j]
                d = math.sqrt(dyy * dyy + dxx * dxx)
            else:
                d = np.inf
            if filled < 3:
                pos = filled
                filled += 1
            elif _before(d, j, bd[2], bi[2]):
                pos = 2
            else:
                continue
            while pos > 0 and _before(d, j, bd[pos - 1], bi[pos - 1]):
                bd[pos] = bd[pos - 1]
                bi[pos] = bi[pos - 1]
                pos -= 1
            bd[pos] = d
            bi[pos] = j
        out[i] = bi
    return out


# --------------------------------------------------------------------------------------
# distance-independent geometry, shared by every distance of one object set
# --------------------------------------------------------------------------------------
def _as_labels(image, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"{name} must be a 2-D label image, got shape {image.shape}")
    if image.dtype.kind not in "iub":
        raise InputError(f"{name} must be an integer label image, got dtype {image.dtype}")
    if image.size and image.min() < 0:
        raise InputError(f"{name} has negative labels")
    return np.ascontiguousarray(image, dtype=np.int32)


def _relate_exact(kept: np.ndarray, disc: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Most-overlapping discarded-inclusive label of each kept label in ``ks`` (ties -> lowest),
    CellProfiler's ``relate_labels``; only needed for kept objects overlapping several."""
    sel = np.isin(kept, ks) & (disc > 0)
    base = int(disc.max()) + 1
    key, cnt = np.unique(kept[sel].astype(np.int64) * base + disc[sel], return_counts=True)
    k, s = key // base, key % base
    order = np.lexsort((s, -cnt, k))  # per k: largest overlap first, then lowest s
    k, s = k[order], s[order]
    first = np.ones(k.size, bool)
    first[1:] = k[1:] != k[:-1]
    return s[first][np.searchsorted(k[first], ks)]


class _Geometry:
    """Relation kept -> discarded-inclusive, centres, outlines and the closest-object features."""

    def __init__(self, objects: Objects, discarded, distances=()):
        kept = objects.labels
        disc = kept if discarded is None else _as_labels(discarded, "discarded label image")
        if disc.shape != kept.shape:
            raise InputError(f"discarded label image shape {disc.shape} differs from "
                             f"label shape {kept.shape}")
        self.shape = kept.shape
        self.n_kept = objects.count
        self.n_disc = int(disc.max()) if disc.size else 0
        self.disc = disc
        kept_area, count, sum_r, sum_c, perim, edge, cand, multi = _scan(kept, disc, self.n_kept, self.n_disc)
        self.has = kept_area[1:] > 0
        related = cand[1:].copy()  # 0 = no overlap
        if multi.any():
            ks = np.flatnonzero(multi[1:]) + 1
            related[ks - 1] = _relate_exact(kept, disc, ks)
        self.related = related
        with np.errstate(invalid="ignore", divide="ignore"):
            self.cy = sum_r[1:] / count[1:]  # NaN for ids without pixels, like scipy
            self.cx = sum_c[1:] / count[1:]
        self.perim = perim[: self.n_disc + 1]
        starts = np.zeros(self.n_disc + 2, np.int64)
        np.cumsum(perim[: self.n_disc + 1], out=starts[1:])
        self.starts = starts
        self._edge = edge
        # one zero-padded copy serves every distance: disk offsets never leave the array
        self._pad = max([int(d + 0.5) for d in distances], default=1)
        self._padded = None
        # CellProfiler indexes with related - 1, so an unrelated object (0) would read the last id
        self.index = related - 1
        self.wanted = np.unique(related[self.has & (related > 0)]).astype(np.int64)
        self._closest = None

    def closest(self) -> dict[str, np.ndarray]:
        if self._closest is None:
            self._closest = self._compute_closest()
        return self._closest

    def _compute_closest(self) -> dict[str, np.ndarray]:
        n, nd = self.n_kept, self.n_disc
        out = {"FirstClosestObjectNumber": np.zeros(n, np.int64),
               "SecondClosestObjectNumber": np.zeros(n, np.int64),
               "FirstClosestDistance": np.zeros(n), "SecondClosestDistance": np.zeros(n),
               "AngleBetweenNeighbors": np.zeros(n)}
        if nd <= 1 or n == 0:
            for key in ("FirstClosestDistance", "SecondClosestDistance", "AngleBetweenNeighbors"):
                out[key][~self.has] = np.nan
            return out
        # nearest centres among all discarded-inclusive objects (position 0 is the object itself)
        idx = self.index
        oy, ox = self.cy[idx], self.cx[idx]
        near = _nearest3(oy, ox, self.cy, self.cx, np.ones(nd, np.bool_))
        with np.errstate(invalid="ignore"):
            fx = self.cx[near[:, 1]] - ox
            fy = self.cy[near[:, 1]] - oy
            out["FirstClosestDistance"] = np.sqrt(fx ** 2 + fy ** 2)
            if nd > 2:
                sx = self.cx[near[:, 2]] - ox
                sy = self.cy[near[:, 2]] - oy
                out["SecondClosestDistance"] = np.sqrt(sx ** 2 + sy ** 2)
                dot = (fx * sx + fy * sy) / np.sqrt((fx ** 2 + fy ** 2) * (sx ** 2 + sy ** 2))
                out["AngleBetweenNeighbors"] = np.arccos(dot) * 180.0 / np.pi
        for key in ("FirstClosestDistance", "SecondClosestDistance", "AngleBetweenNeighbors"):
            out[key][~self.has] = np.nan
        # nearest kept objects, centres from the related objects, absent ones at +inf
        if n > 1:
            rows = np.flatnonzero(self.has)
            kn = _nearest3(oy[rows], ox[rows], oy, ox, self.has)
            out["FirstClosestObjectNumber"][rows] = kn[:, 1] + 1
            if n > 2:
                out["SecondClosestObjectNumber"][rows] = kn[:, 2] + 1
        return out

    def contacts(self, distance: float) -> dict[str, np.ndarray]:
        n = self.n_kept
        nbr_out, pct_out = np.zeros(n), np.zeros(n)
        if self.n_disc <= 1 or n == 0:
            return {"NumberOfNeighbors": nbr_out, "PercentTouching": pct_out}
        dy, dx, n_inner = _offsets(distance)
        if self._padded is None or int(distance + 0.5) > self._pad:
            self._pad = max(self._pad, int(distance + 0.5))
            flat = np.pad(self.disc, self._pad).ravel()
            self._padded = (flat, _bucket(self.disc, self._edge, self.starts, self._pad))
        flat, pix = self._padded
        offsets = dy * (self.shape[1] + 2 * self._pad) + dx
        nbr, touch = _contacts(flat, self.starts, pix, self.wanted, offsets, n_inner, self.n_disc)
        ok = self.has & (self.related > 0)
        s = self.related[ok]
        nbr_out[ok] = nbr[s]
        pct_out[ok] = touch[s] * 100 / self.perim[s]
        return {"NumberOfNeighbors": nbr_out, "PercentTouching": pct_out}


def _offsets(distance: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Offsets of strel_disk(distance) (inner) then of the ring up to strel_disk(distance + 0.5),
    without the centre, nearest first."""
    outer = distance + 0.5
    ir = int(outer)
    y, x = np.mgrid[-ir:ir + 1, -ir:ir + 1]
    y, x = y.ravel(), x.ravel()
    r2 = (x * x + y * y).astype(np.float64)
    keep = (r2 <= outer * outer) & (r2 > 0)
    y, x, r2 = y[keep], x[keep], r2[keep]
    order = np.argsort(r2, kind="stable")
    y, x, r2 = y[order], x[order], r2[order]
    n_inner = int(np.count_nonzero(r2 <= distance * distance))
    return y.astype(np.int64), x.astype(np.int64), n_inner


def _check_distance(distance, adjacent: bool) -> float:
    if adjacent:
        if distance is not None:
            raise InputError("give either a neighbor distance or adjacent=True, not both")
        return 1.0
    if distance is None:
        raise InputError("give a neighbor distance in pixels or adjacent=True")
    if isinstance(distance, bool) or not isinstance(distance, numbers.Real):
        raise InputError(f"neighbor distance must be a number of pixels, got {distance!r}")
    distance = float(distance)
    if not math.isfinite(distance) or distance <= 0:
        raise InputError(f"neighbor distance must be a positive number of pixels, got {distance}")
    return distance


@_defaults.checked("neighbors")
def neighbors(labels, *, distance: float | None = None, adjacent: bool = False, discarded=None
              ) -> dict[str, np.ndarray]:
    """Neighbour measurements of every object against the same object set.

    Parameters
    ----------
    labels : ndarray of int or Objects
        The kept objects, 1..N (0 background).
    distance : float, optional
        "Within a specified distance": objects whose pixels are within this
        many pixels (Euclidean disk) are neighbours (CPJUMP1: Cells 5, Nuclei 1).
    adjacent : bool
        "Adjacent": neighbours share a 4-connected edge; same as distance 1.
    discarded : ndarray of int, optional
        CellProfiler's ``small_removed_segmented`` of the object set: the same
        objects with different ids allowed, plus objects that were discarded
        and still count as neighbours (see the module docstring for which
        image that is for primary and secondary objects). ``None``: none.

    Returns
    -------
    dict
        ``Neighbors_<Feature>_<scale>`` for ``NumberOfNeighbors``, ``PercentTouching``,
        ``FirstClosestObjectNumber``, ``FirstClosestDistance``, ``SecondClosestObjectNumber``,
        ``SecondClosestDistance``, ``AngleBetweenNeighbors`` (degrees), the scale being the
        distance (``5``) or ``Adjacent``, as CellProfiler names them; one value per label
        1..max. Object numbers are int64, the rest float64.

    Raises
    ------
    InputError
        Neither or both of ``distance`` and ``adjacent``; a non-positive
        distance; label images that are not 2-D non-negative integers or differ
        in shape.

    Notes
    -----
    Definitions, and where they follow CellProfiler's quirks, are in the
    module docstring. Distances are in pixels between centres of mass.

    References
    ----------
    CellProfiler 4.2.8, ``cellprofiler/modules/measureobjectneighbors.py``;
    centrosome ``strel_disk``, ``outline`` and ``centers_of_labels``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), int)
    >>> labels[1:4, 1:4], labels[1:4, 5:8], labels[7:9, 7:9] = 1, 2, 3
    >>> out = neighbors(labels, distance=2)
    >>> out["Neighbors_NumberOfNeighbors_2"]
    array([1., 1., 0.])
    >>> out["Neighbors_FirstClosestObjectNumber_2"]
    array([2, 1, 2])
    """
    d = _check_distance(distance, adjacent)
    name = "Adjacent" if adjacent else _scale(d)[0]
    geometry = _Geometry(as_objects(labels), discarded, [d])
    out = {**geometry.contacts(d), **geometry.closest()}
    return {f"Neighbors_{k}_{name}": out[k] for k in FEATURES}


def _scale(item) -> tuple[str, float | None, bool]:
    if isinstance(item, str):
        if item.strip().lower() == "adjacent":
            return "Adjacent", None, True
        raise InputError(f"unknown neighbors measurement {item!r}: give a distance in pixels or 'adjacent'")
    d = _check_distance(item, False)
    return (str(int(d)) if d.is_integer() else repr(d)), d, False


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """``Neighbors_<Feature>_<scale>`` for each item of ``settings["measurements"]``.

    ``settings = {"measurements": [5, "adjacent", ...], "discarded": labels or None}``;
    the scale is the distance (``_5``) or ``Adjacent``. Images are not used.
    """
    settings = dict(settings or {})
    items = settings.pop("measurements", None) or []
    _defaults.resolve("neighbors", settings)
    if isinstance(items, (str, numbers.Real)):
        items = [items]
    scales = [_scale(item) for item in items]
    if not scales:
        return {}
    geometry = _Geometry(as_objects(objects), settings.get("discarded"),
                         [1.0 if adjacent else d for _, d, adjacent in scales])
    closest = geometry.closest()
    out: dict[str, np.ndarray] = {}
    for name, d, adjacent in scales:
        values = {**geometry.contacts(1.0 if adjacent else d), **closest}
        for key in FEATURES:
            out[f"Neighbors_{key}_{name}"] = values[key].copy()
    return out
