"""Cells: CPJUMP1 module 17 (IdentifySecondaryObjects) seeded by the nuclei."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from ..errors import ConfigError
from ..settings import defaults, table
from .morphology import fill_labeled_holes, touching_border
from .propagate import propagate
from .threshold import threshold_image
from .watershed import watershed

__all__ = ["identify_cells", "CELLS_DEFAULTS", "METHODS"]

#: IdentifySecondaryObjects settings of CPJUMP1_analysis.cppipe module 17.
#: Settings of :func:`identify_cells` (``[segment.cells]``, declared in :mod:`cpfeatures.settings`):
#: CPJUMP1_analysis.cppipe module 16.
CELLS_DEFAULTS = defaults(table("segment.cells"))
METHODS = ("watershed_image", "propagation", "distance_n")


def _seeds(nuclei: np.ndarray, unedited: np.ndarray | None) -> np.ndarray:
    # CellProfiler seeds from the unedited nuclei, keeping those that survived filtering
    # plus those discarded for touching the border (they still claim their territory).
    if unedited is None:
        return nuclei.copy()
    seeds = unedited.copy()
    touching = touching_border(unedited)[unedited]
    seeds[(~touching) & (nuclei == 0)] = 0
    return seeds


def _to_nucleus_ids(out: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    # filter_labels: each output region takes the (final) nucleus id found inside it; regions
    # grown from discarded nuclei get 0.
    n_out = int(out.max())
    if n_out == 0:
        return out.astype(np.int32)
    lookup = np.zeros(n_out + 1, np.int64)
    inside = nuclei > 0
    np.maximum.at(lookup, out[inside], nuclei[inside])  # the largest nucleus id in each region
    lookup[0] = 0
    return lookup[out].astype(np.int32)


def identify_cells(image: np.ndarray, nuclei: np.ndarray, unedited_nuclei: np.ndarray | None = None,
                   settings: dict | None = None) -> tuple[np.ndarray, dict]:
    """Grow cells from nuclei on a corrected cell-body image (CPJUMP1: RNA).

    Parameters
    ----------
    image : ndarray of float in [0, 1]
    nuclei : ndarray of int
        Final nuclei labels 1..N.
    unedited_nuclei : ndarray of int, optional
        Nuclei before border/size filtering (``details["unedited"]`` of
        :func:`identify_nuclei`); without it only the final nuclei seed.
    settings : dict, optional
        Overrides of :data:`CELLS_DEFAULTS`. ``method``: "watershed_image"
        (watershed of the inverted image within the thresholded foreground,
        CPJUMP1's choice), "propagation" (CellProfiler's geodesic propagation
        with ``regularization``, the default of most Cell Painting pipelines) or
        "distance_n" (nuclei expanded by ``distance`` pixels).

    Returns
    -------
    labels : ndarray of int32
        Cell ``i`` grown from nucleus ``i``.
    details : dict
        ``Threshold_*_Cells`` measurements and ``unedited`` (cells before
        dropping those of discarded nuclei).
    """
    s = {**CELLS_DEFAULTS, **(settings or {})}
    method = s["method"]
    if method not in METHODS:
        raise ConfigError(f"unknown cells method {method!r}; supported: {', '.join(METHODS)}")
    seeds = _seeds(nuclei, unedited_nuclei)
    details: dict = {}
    if method == "distance_n":
        distances, (i, j) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
        out = np.zeros(seeds.shape, np.int32)
        grow = distances <= s["distance"]
        out[grow] = seeds[i[grow], j[grow]]
    elif method == "propagation":
        binary, th = threshold_image(image, s["threshold_method"], s["threshold_correction"],
                                     tuple(s["threshold_bounds"]), s["threshold_smoothing_scale"])
        details.update({f"Threshold_{k}_Cells": v for k, v in th.items()})
        out, _ = propagate(image, seeds, binary, float(s["regularization"]))
    else:
        binary, th = threshold_image(image, s["threshold_method"], s["threshold_correction"],
                                     tuple(s["threshold_bounds"]), s["threshold_smoothing_scale"])
        details.update({f"Threshold_{k}_Cells": v for k, v in th.items()})
        mask = binary | (seeds > 0)
        out = watershed(1.0 - image, seeds, mask)
    if s["fill_holes"]:
        out = fill_labeled_holes(out)
    details["unedited"] = out.astype(np.int32)
    return _to_nucleus_ids(out, nuclei), details
