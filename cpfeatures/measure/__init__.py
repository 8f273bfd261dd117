"""Per-object measurements with CellProfiler 4.2.8's names and definitions.

One function per family, one convention::

    family(labels, image[, image2], **settings) -> {CellProfiler name: one value per object}

``labels`` is a label image (0 background, objects 1..N) or an :class:`Objects` built from
it once and shared (label geometry is then computed once for every image). ``image`` is
float in [0, 1] (illumination-corrected, as CellProfiler measures) or integers, divided by
their type's maximum as CellProfiler loads them; anything else is an error. Keys are
CellProfiler's column names without the compartment and the channel
(``Intensity_MeanIntensity``, ``Texture_Contrast_3_00_256``, ``Neighbors_NumberOfNeighbors_5``);
arrays have one value per label ``1..labels.max()`` (NaN for a label that does not occur).
Settings default to the CPJUMP1 pipeline (:data:`DEFAULTS`, the same values as
``cpfeatures config --default``); an unknown or mistyped setting is an error naming the
valid ones.

==========================  =====================================  =========================
function                    CellProfiler module                    settings
==========================  =====================================  =========================
:func:`intensity`           MeasureObjectIntensity                 -
:func:`texture`             MeasureTexture                         scales, gray_levels
:func:`granularity`         MeasureGranularity                     subsample, ...
:func:`sizeshape`           MeasureObjectSizeShape (no image)      zernike, zernike_degree
:func:`radial`              MeasureObjectIntensityDistribution     bins, scaled, zernike, ...
:func:`colocalization`      MeasureColocalization (two images)     threshold, costes, ...
:func:`neighbors`           MeasureObjectNeighbors (no image)      distance, adjacent, ...
:func:`texture_image`       MeasureTexture, Image table            scales, gray_levels
:func:`granularity_image`   MeasureGranularity, Image table        subsample, ...
:func:`image_quality`       MeasureImageQuality (one image)        scales, blur, ...
:func:`image_intensity`     MeasureImageIntensity (+ mask_image)   mask, labels, percentiles
==========================  =====================================  =========================

:func:`measure_objects` runs families over many images into one table (what a plate run
does per object set); :data:`FAMILIES` and :data:`IMAGE_FAMILIES` are the registries.
"""

import importlib

#: public name -> the private module defining it (imported on first use, so that reading the
#: defaults, e.g. for ``cpfeatures config``, does not load the numba kernels)
_WHERE = {
    "intensity": "_intensity", "texture": "_texture", "texture_image": "_texture", "granularity": "_granularity",
    "granularity_image": "_granularity", "sizeshape": "_sizeshape", "radial": "_radial",
    "colocalization": "_colocalization", "neighbors": "_neighbors", "image_quality": "_imagequality",
    "measure_objects": "_core", "measure_image": "_core", "FAMILIES": "_core", "IMAGE_FAMILIES": "_core",
    "Family": "_core", "available_families": "_core", "identity_columns": "_identity",
    "object_counts": "_identity", "Objects": "_objects", "as_objects": "_objects", "as_image": "_objects",
    "DEFAULTS": "_defaults", "SETTINGS": "_defaults", "resolve_settings": "_defaults", "toml_section": "_defaults",
    "kernel_probes": "_probes",
    "image_intensity": "_imageintensity", "mask_image": "_imageintensity",
    "IMAGE_INTENSITY_FEATURES": "_imageintensity",
}

__all__ = ["intensity", "texture", "granularity", "sizeshape", "radial", "colocalization", "neighbors",
           "texture_image", "granularity_image", "image_quality", "measure_objects", "measure_image",
           "identity_columns", "object_counts", "Objects", "as_objects", "as_image", "FAMILIES", "IMAGE_FAMILIES",
           "Family", "DEFAULTS", "SETTINGS", "resolve_settings", "toml_section", "available_families",
           "kernel_probes", "image_intensity", "mask_image", "IMAGE_INTENSITY_FEATURES"]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
