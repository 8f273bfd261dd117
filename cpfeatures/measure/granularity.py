"""MeasureGranularity (CPJUMP1 module 20): the granular spectrum of images and objects.

All the work that depends only on the image (subsampling, background removal
by an opening with a disk of ``element_size`` on a further subsampled image,
and the ``spectrum_length`` erosion + reconstruction steps) is done once per
image by :func:`granularity_spectrum`; every object set then only needs the
mean of each reconstructed image within its objects. CellProfiler upsamples
each reconstruction back to full size before taking object means; since
bilinear upsampling is linear, the object means are a fixed sparse matrix
(computed once per label image) times the small reconstruction, which gives
the same numbers without 16 full-size interpolations per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse
import skimage.morphology

from ._morphology import MaxTree
from .objects import Objects, as_objects, check_image

__all__ = ["granularity", "granularity_spectrum", "granularity_image", "GranularitySpectrum",
           "measure_family", "measure_image_family"]

DEFAULTS = {"subsample": 0.5, "background_subsample": 0.5, "element_size": 10, "spectrum_length": 16}


@dataclass
class GranularitySpectrum:
    """Whole-image results shared by all object sets.

    Attributes
    ----------
    image_spectrum : ndarray (spectrum_length,)
        The Image-table ``Granularity_<k>`` values.
    reconstructions : list of ndarray
        The reconstructed (subsampled) image after each step.
    small_shape, full_shape : tuple
    full_image : ndarray
        The original image (object start means are taken on it, as CellProfiler does).
    """

    image_spectrum: np.ndarray
    reconstructions: list
    small_shape: tuple
    full_shape: tuple
    full_image: np.ndarray


def _subsample(image: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    # CellProfiler: new_shape = shape * factor (float), mgrid over it / factor, linear map_coordinates.
    shape = np.array(image.shape) * factor
    i, j = np.mgrid[0:shape[0], 0:shape[1]].astype(float) / factor
    return ndi.map_coordinates(image, (i, j), order=1), shape


def granularity_spectrum(image: np.ndarray, subsample: float = 0.25, background_subsample: float = 0.25,
                         element_size: int = 10, spectrum_length: int = 16) -> GranularitySpectrum:
    """The image-only part of MeasureGranularity (see the module docstring)."""
    image = check_image(image)
    full_shape = image.shape
    if subsample < 1:
        pixels, new_shape = _subsample(image, subsample)
    else:
        pixels, new_shape = image.copy(), np.array(image.shape, float)
    if background_subsample < 1:
        back, back_shape = _subsample(pixels, background_subsample)
    else:
        back, back_shape = pixels, new_shape
    disk = skimage.morphology.disk(element_size).astype(bool)
    back = skimage.morphology.dilation(skimage.morphology.erosion(back, disk), disk)
    if background_subsample < 1:
        i, j = np.mgrid[0:new_shape[0], 0:new_shape[1]].astype(float)
        i *= float(back_shape[0] - 1) / float(new_shape[0] - 1)
        j *= float(back_shape[1] - 1) / float(new_shape[1] - 1)
        back = ndi.map_coordinates(back, (i, j), order=1)
    pixels = np.maximum(pixels - back, 0)
    start = float(pixels.mean())
    current = start
    start = max(start, np.finfo(float).eps)
    cross = skimage.morphology.disk(1).astype(bool)
    ero = pixels.copy()
    tree = MaxTree(pixels)  # every step reconstructs under the same image
    spectrum = np.zeros(spectrum_length)
    recs = []
    for k in range(spectrum_length):
        previous = current
        ero = skimage.morphology.erosion(ero, cross)
        rec = tree.reconstruct(ero)  # = skimage reconstruction with disk(1), exactly
        current = float(rec.mean())
        spectrum[k] = (previous - current) * 100 / start
        recs.append(rec)
    return GranularitySpectrum(spectrum, recs, tuple(pixels.shape), full_shape, image)


def _upsampling_matrix(objects: Objects, small_shape: tuple) -> scipy.sparse.csr_matrix:
    """Sparse (n_objects x small pixels): row sums of bilinear weights over each object's pixels."""
    def compute():
        h, w = objects.shape
        sh, sw = small_shape
        y = objects.rows * (float(sh - 1) / float(h - 1))
        x = objects.cols * (float(sw - 1) / float(w - 1))
        y0 = np.minimum(np.floor(y).astype(np.int64), sh - 1)
        x0 = np.minimum(np.floor(x).astype(np.int64), sw - 1)
        fy, fx = y - y0, x - x0
        y1, x1 = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
        rows = np.tile(objects.pixel_labels - 1, 4)
        cols = np.concatenate([y0 * sw + x0, y0 * sw + x1, y1 * sw + x0, y1 * sw + x1])
        vals = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
        m = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(objects.count, sh * sw)).tocsr()
        m.sum_duplicates()
        return m
    return objects.cached(("granularity", "upsample", small_shape), compute)


def _object_spectrum(objects: Objects, spec: GranularitySpectrum) -> np.ndarray:
    n = objects.count
    area = objects.area.astype(float)
    out = np.full((n, len(spec.reconstructions)), np.nan)
    if n == 0:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        current = np.bincount(objects.pixel_labels, weights=spec.full_image.ravel()[objects.order],
                              minlength=n + 1)[1:] / area
        start = np.maximum(current, np.finfo(float).eps)
        up = _upsampling_matrix(objects, spec.small_shape)
        for k, rec in enumerate(spec.reconstructions):
            new = (up @ rec.ravel()) / area
            out[:, k] = (current - new) * 100 / start
            current = new
    out[~objects.present] = np.nan
    return out


def granularity(labels, image: np.ndarray, subsample: float = 0.25, background_subsample: float = 0.25,
                element_size: int = 10, spectrum_length: int = 16,
                spectrum: GranularitySpectrum | None = None) -> dict[str, np.ndarray]:
    """Per-object granular spectrum ``Granularity_1..N`` (CellProfiler's definition).

    Parameters
    ----------
    labels : ndarray of int or Objects
    image : ndarray of float in [0, 1]
    subsample, background_subsample, element_size, spectrum_length
        MeasureGranularity settings (CPJUMP1: 0.5, 0.5, 10, 16).
    spectrum : GranularitySpectrum, optional
        :func:`granularity_spectrum` of this image, to share across object sets.

    Returns
    -------
    dict
        ``Granularity_k`` -> one value per label 1..max (NaN for absent labels).
    """
    objects = as_objects(labels)
    if spectrum is None:
        spectrum = granularity_spectrum(check_image(image, objects), subsample, background_subsample,
                                        element_size, spectrum_length)
    values = _object_spectrum(objects, spectrum)
    return {f"Granularity_{k + 1}": values[:, k] for k in range(values.shape[1])}


def granularity_image(image: np.ndarray, **settings) -> dict[str, float]:
    """Image-table spectrum ``Granularity_k``."""
    spec = granularity_spectrum(image, **settings)
    return {f"Granularity_{k + 1}": float(v) for k, v in enumerate(spec.image_spectrum)}


def _cached_spectrum(cache: dict | None, name: str, image: np.ndarray, settings: dict) -> GranularitySpectrum:
    params = {**DEFAULTS, **(settings or {})}
    key = ("granularity", name, id(image), tuple(sorted(params.items())))
    if cache is not None and key in cache:
        return cache[key]
    spec = granularity_spectrum(image, **params)
    if cache is not None:
        cache[key] = spec
    return spec


def measure_family(objects: Objects, images: dict[str, np.ndarray], settings: dict | None = None,
                   cache: dict | None = None) -> dict[str, np.ndarray]:
    """``Granularity_<k>_<Image>`` for every image; the spectrum is shared through ``cache``."""
    out = {}
    for name, image in images.items():
        spec = _cached_spectrum(cache, name, check_image(image, objects), settings)
        for key, values in granularity(objects, image, spectrum=spec).items():
            out[f"{key}_{name}"] = values
    return out


def measure_image_family(images: dict[str, np.ndarray], settings: dict | None = None,
                         cache: dict | None = None) -> dict[str, float]:
    out = {}
    for name, image in images.items():
        spec = _cached_spectrum(cache, name, check_image(image), settings)
        for k, v in enumerate(spec.image_spectrum):
            out[f"Granularity_{k + 1}_{name}"] = float(v)
    return out
