"""Grey-level reconstruction by dilation through a max-tree (numba), 4-connected.

Reconstruction by dilation of a seed ``s <= I`` under ``I`` is, for each pixel
``p``, the highest level ``l <= I(p)`` at which the connected component of
``{I >= l}`` holding ``p`` contains a seed value ``>= l``. On the max-tree of
``I`` (the inclusion tree of those components) that is one bottom-up pass
(largest seed value in each subtree) and one top-down pass (best level along
the path to the root). MeasureGranularity reconstructs 16 successive
erosions under the same image, so the tree is built once per image (Berger's
union-find construction) and each reconstruction costs two linear passes.
Only comparisons are involved, so the values equal
``skimage.morphology.reconstruction(seed, mask, footprint=disk(1))`` exactly.

References
----------
C. Berger, T. Geraud, R. Levillain, N. Widynski, A. Baillard, E. Bertin,
"Effective component tree computation with application to pattern
recognition in astronomical imaging", ICIP 2007.
L. Vincent, "Morphological grayscale reconstruction in image analysis:
applications and efficient algorithms", IEEE Trans. Image Process. 2(2), 1993.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["MaxTree", "reconstruct_dilation"]


@numba.njit(cache=True)
def _find(zpar, p):
    root = p
    while zpar[root] != root:
        root = zpar[root]
    while zpar[p] != root:  # path compression
        nxt = zpar[p]
        zpar[p] = root
        p = nxt
    return root


@numba.njit(cache=True)
def _build(values, order, h, w):
    n = values.size
    parent = np.empty(n, np.int64)
    zpar = np.empty(n, np.int64)
    done = np.zeros(n, np.bool_)
    for t in range(n - 1, -1, -1):  # decreasing values
        p = order[t]
        parent[p] = p
        zpar[p] = p
        done[p] = True
        y = p // w
        x = p % w
        for k in range(4):
            if k == 0:
                if y == 0:
                    continue
                q = p - w
            elif k == 1:
                if y == h - 1:
                    continue
                q = p + w
            elif k == 2:
                if x == 0:
                    continue
                q = p - 1
            else:
                if x == w - 1:
                    continue
                q = p + 1
            if done[q]:
                r = _find(zpar, q)
                if r != p:
                    parent[r] = p
                    zpar[r] = p
    return parent


@numba.njit(cache=True)
def _reconstruct(sorted_values, sorted_seed, parent_rank):
    """Both passes over the pixels in tree order (rank t's parent has rank parent_rank[t] <= t)."""
    n = sorted_values.size
    best = sorted_seed.copy()  # largest seed value in each subtree
    for t in range(n - 1, 0, -1):  # children before parents
        q = parent_rank[t]
        if best[t] > best[q]:
            best[q] = best[t]
    out = np.empty(n)
    for t in range(n):  # parents before children
        v = sorted_values[t] if sorted_values[t] < best[t] else best[t]
        q = parent_rank[t]
        if q != t and out[q] > v:
            v = out[q]
        out[t] = v
    return out


class MaxTree:
    """The 4-connected max-tree of an image, for repeated reconstructions under it."""

    def __init__(self, image: np.ndarray):
        self.image = np.ascontiguousarray(image, np.float64)
        self.values = self.image.ravel()
        # parents are processed after their children (decreasing values); the ascending
        # order is the reverse of that, so it lists parents first.
        self.order = np.argsort(self.values, kind="stable")
        parent = _build(self.values, self.order, *self.image.shape)
        rank = np.empty_like(self.order)
        rank[self.order] = np.arange(self.order.size)
        # work on pixels in tree order so both passes read memory sequentially
        self.parent_rank = rank[parent[self.order]]
        self.sorted_values = self.values[self.order]

    def reconstruct(self, seed: np.ndarray) -> np.ndarray:
        """Reconstruction by dilation of ``seed`` (``<= image``) under the image."""
        seed = np.minimum(np.ascontiguousarray(seed, np.float64).ravel()[self.order], self.sorted_values)
        out = np.empty(self.values.size)
        out[self.order] = _reconstruct(self.sorted_values, seed, self.parent_rank)
        return out.reshape(self.image.shape)


def reconstruct_dilation(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reconstruction by dilation of ``seed`` under ``mask`` (4-connected), float64."""
    return MaxTree(mask).reconstruct(seed)
