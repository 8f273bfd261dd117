"""Label-image morphology with CellProfiler's (centrosome's) definitions."""

from __future__ import annotations

import numba
import numpy as np
import scipy.ndimage as ndi

__all__ = ["outline", "fill_labeled_holes", "relabel", "is_local_maximum", "strel_disk", "touching_border"]

from ..illum import strel_disk  # noqa: E402  (one definition of CellProfiler's disk)

_FOUR = ndi.generate_binary_structure(2, 1)


def outline(labels: np.ndarray) -> np.ndarray:
    """Label value on object pixels that have an 8-neighbour with another value (image edge counts)."""
    diff = np.zeros(labels.shape, bool)
    for a, b in (((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                 ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
                 ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))):
        d = labels[a] != labels[b]
        diff[a] |= d
        diff[b] |= d
    diff[0, :] = diff[-1, :] = True
    diff[:, 0] = diff[:, -1] = True
    return np.where(diff, labels, 0)


def fill_labeled_holes(labels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Fill background regions enclosed by a single object with that object's label.

    A background region (4-connected) is a hole if it does not touch the image
    edge and every pixel around it (4-neighbours) belongs to one object, as
    centrosome's ``fill_labeled_holes`` decides for the common case. Pixels
    outside ``mask`` are not background.
    """
    labels = np.asarray(labels)
    background = labels == 0
    if mask is not None:
        background &= mask
    regions, n = ndi.label(background, _FOUR)
    if n == 0:
        return labels.copy()
    # A region bordered (4-neighbours) by one object only: its smallest and largest neighbour agree.
    lowest, highest = _neighbour_range(regions, labels, n)
    fill_with = lowest.astype(labels.dtype)
    edge = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    hole = (lowest == highest) & (highest > 0)
    hole[edge] = False
    hole[0] = False
    # Regions touching pixels outside the mask (neither background nor object) are not holes.
    if mask is not None:
        outside = ~mask & (labels == 0)
        near = ndi.binary_dilation(outside, _FOUR)
        hole[np.unique(regions[near])] = False
    out = labels.copy()
    fill = hole[regions]
    out[fill] = fill_with[regions[fill]]
    return out


@numba.njit(cache=True)
def _neighbour_range(regions, labels, n):
    """Smallest and largest object label 4-adjacent to each background region (0 when none)."""
    big = np.iinfo(np.int64).max
    lowest = np.full(n + 1, big, np.int64)
    highest = np.zeros(n + 1, np.int64)
    h, w = regions.shape
    for i in range(h):
        for j in range(w):
            r = regions[i, j]
            if r == 0:
                continue
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                y, x = i + di, j + dj
                if 0 <= y < h and 0 <= x < w:
                    lab = labels[y, x]
                    if lab > 0:
                        if lab < lowest[r]:
                            lowest[r] = lab
                        if lab > highest[r]:
                            highest[r] = lab
    lowest[lowest == big] = 0
    return lowest, highest


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber labels to 1..N consecutively, preserving order."""
    present = np.flatnonzero(np.bincount(labels.ravel())) if labels.size else np.zeros(0, np.int64)
    present = present[present > 0]
    lookup = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.int32)
    lookup[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lookup[labels]


def touching_border(labels: np.ndarray) -> np.ndarray:
    """Boolean per label id (index = label) telling whether it touches the image edge."""
    flags = np.zeros(int(labels.max()) + 1, bool)
    flags[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    flags[0] = False
    return flags


@numba.njit(cache=True)
def _local_max_kernel(image, labels, dy, dx, out):
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            if lab == 0:
                continue
            v = image[y, x]
            is_max = True
            for k in range(dy.size):
                yy = y + dy[k]
                xx = x + dx[k]
                if yy < 0 or yy >= h or xx < 0 or xx >= w:
                    continue
                if labels[yy, xx] == lab and image[yy, xx] > v:
                    is_max = False
                    break
            out[y, x] = is_max


def is_local_maximum(image: np.ndarray, labels: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Pixels not exceeded by any pixel of the same label within ``footprint`` (centrosome's definition)."""
    fy, fx = np.nonzero(footprint)
    cy, cx = footprint.shape[0] // 2, footprint.shape[1] // 2
    dy, dx = fy - cy, fx - cx
    keep = (dy != 0) | (dx != 0)
    out = np.zeros(labels.shape, np.bool_)
    _local_max_kernel(np.ascontiguousarray(image, np.float64), np.ascontiguousarray(labels, np.int32),
                      dy[keep].astype(np.int64), dx[keep].astype(np.int64), out)
    return out
