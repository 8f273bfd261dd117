"""Nuclei: CPJUMP1 modules 14-16 (background subtraction, IdentifyPrimaryObjects)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from ..illum import background
from ..settings import defaults, table
from .morphology import fill_labeled_holes, is_local_maximum, relabel, strel_disk, touching_border
from .threshold import threshold_image
from .watershed import watershed

__all__ = ["identify_nuclei", "subtract_background", "declump_shape", "NUCLEI_DEFAULTS"]

#: IdentifyPrimaryObjects settings of CPJUMP1_analysis.cppipe module 16 (and 14-15 background).
#: Settings of :func:`identify_nuclei` (``[segment.nuclei]``, declared in :mod:`cpfeatures.settings`):
#: CPJUMP1_analysis.cppipe modules 14-15.
NUCLEI_DEFAULTS = defaults(table("segment.nuclei"))

_EIGHT = np.ones((3, 3), bool)


def subtract_background(image: np.ndarray, block_size: int = 30, smoothing: float = 50.0) -> np.ndarray:
    """Modules 14-15: subtract the per-image block-minimum background, clip to [0, 1]."""
    if smoothing <= 0:
        return image
    return np.clip(image - background(image, block_size, smoothing), 0.0, 1.0)


def _maxima(distance: np.ndarray, labels: np.ndarray, suppression: float, min_diameter: float,
            low_res: bool) -> np.ndarray:
    # IdentifyPrimaryObjects.get_maxima: optionally on an image resized by 10 / min diameter.
    factor = 10.0 / float(min_diameter) if (min_diameter > 10 and low_res) else 1.0
    size = suppression * factor + 0.5 if factor < 1.0 else suppression
    footprint = strel_disk(max(1.0, size - 0.5))
    if factor < 1.0:
        shape = np.array(distance.shape) * factor
        ij = np.mgrid[0:shape[0], 0:shape[1]].astype(float) / factor
        small = ndi.map_coordinates(distance, ij)
        small_labels = ndi.map_coordinates(labels, ij, order=0).astype(labels.dtype)
        peaks = is_local_maximum(small, small_labels, footprint) & (small > 0)
        inverse = float(distance.shape[0]) / float(peaks.shape[0])
        ij = np.mgrid[0:distance.shape[0], 0:distance.shape[1]].astype(float) / inverse
        return ndi.map_coordinates(peaks.astype(float), ij) > 0.5
    return is_local_maximum(distance, labels, footprint) & (distance > 0)


def declump_shape(labels: np.ndarray, suppression: float = 8.0, min_diameter: float = 10.0,
                  low_res: bool = True) -> np.ndarray:
    """Split touching objects by shape: watershed of the distance transform from its maxima.

    As CellProfiler's "Shape"/"Shape" declumping: the distance transform of the
    hole-filled foreground plus CellProfiler's tie-breaking noise (uniform in
    [0, 0.001) from ``numpy.random.seed(0)``), maxima not exceeded within a disk
    of the suppression distance inside the same object, then a watershed of the
    inverted distance restricted to the objects.
    """
    if labels.max() == 0:
        return labels.astype(np.int32)
    foreground = fill_labeled_holes(labels) > 0
    distance = ndi.distance_transform_edt(foreground)
    distance += np.random.RandomState(0).uniform(0, 0.001, distance.shape)
    peaks = _maxima(distance, labels, suppression, min_diameter, low_res)
    # CellProfiler shrinks touching maxima to one point; labelling them as one marker is equivalent.
    markers, _ = ndi.label(peaks, _EIGHT)
    surface = -distance
    surface -= surface.min()
    return watershed(surface, markers, labels != 0)


def identify_nuclei(dna: np.ndarray, settings: dict | None = None) -> tuple[np.ndarray, dict]:
    """Find nuclei in a corrected DNA image (float in [0, 1]).

    Parameters
    ----------
    dna : ndarray
        Illumination-corrected DNA image.
    settings : dict, optional
        Overrides of :data:`NUCLEI_DEFAULTS`.

    Returns
    -------
    labels : ndarray of int32
        Nuclei 1..N, consecutive.
    details : dict
        ``Threshold_*_Nuclei`` measurements, ``unedited`` (after declumping,
        before border and size filters) and ``small_removed`` label images.
    """
    s = {**NUCLEI_DEFAULTS, **(settings or {})}
    image = subtract_background(dna, int(s["background_block_size"]), float(s["background_smoothing"]))
    binary, th = threshold_image(image, s["threshold_method"], s["threshold_correction"],
                                 tuple(s["threshold_bounds"]), s["threshold_smoothing_scale"])
    labeled, _ = ndi.label(binary, _EIGHT)
    min_d, max_d = s["diameter_range"]
    labeled = declump_shape(labeled, float(s["maxima_suppression_distance"]), float(min_d),
                            bool(s["low_resolution_maxima"]))
    unedited = labeled.copy()
    if s["discard_border"] and labeled.max():
        labeled[touching_border(labeled)[labeled]] = 0
    small_removed = labeled.copy()
    if s["discard_outside_diameter"] and labeled.max():
        areas = np.bincount(labeled.ravel())
        area_image = areas[labeled]
        labeled[area_image < np.pi * min_d * min_d / 4] = 0
        small_removed = labeled.copy()
        labeled[area_image > np.pi * max_d * max_d / 4] = 0
    labels = relabel(labeled)
    details = {f"Threshold_{k}_Nuclei": v for k, v in th.items()}
    details.update({"unedited": unedited, "small_removed": small_removed})
    return labels, details
