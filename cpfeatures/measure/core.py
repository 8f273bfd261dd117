"""One call per object set: every registered family over every image -> one DataFrame."""

from __future__ import annotations

import importlib
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from .objects import Objects, as_objects

__all__ = ["FAMILIES", "IMAGE_FAMILIES", "measure_objects", "measure_image", "available_families"]

#: Family name -> module whose ``measure_family(objects, images, settings, cache)`` returns
#: ``{column: per-object values}`` with CellProfiler's column names (no compartment prefix).
FAMILIES: dict[str, str] = {
    "intensity": "cpfeatures.measure.intensity",
    "texture": "cpfeatures.measure.texture",
    "granularity": "cpfeatures.measure.granularity",
    "sizeshape": "cpfeatures.measure.sizeshape",
    "radial": "cpfeatures.measure.radial",
    "colocalization": "cpfeatures.measure.colocalization",
    "neighbors": "cpfeatures.measure.neighbors",
}

#: Family name -> module whose ``measure_image_family(images, settings, cache)`` returns
#: Image-table columns.
IMAGE_FAMILIES: dict[str, str] = {
    "texture": "cpfeatures.measure.texture",
    "granularity": "cpfeatures.measure.granularity",
    "imagequality": "cpfeatures.measure.imagequality",
}


def _module(name: str, registry: dict[str, str]):
    try:
        return importlib.import_module(registry[name])
    except ModuleNotFoundError:
        return None


def available_families() -> list[str]:
    """Registered families whose module is installed in this version."""
    return [name for name in FAMILIES if _module(name, FAMILIES) is not None]


def _resolve(families: str | Iterable[str]) -> list[str]:
    if families == "all":
        return available_families()
    names = [families] if isinstance(families, str) else list(families)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise InputError(f"unknown measurement famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; valid: {', '.join(FAMILIES)}")
    missing = [n for n in names if _module(n, FAMILIES) is None]
    if missing:
        raise InputError(f"measurement famil{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)} "
                         f"not available in this version; available: {', '.join(available_families())}")
    return names


def measure_objects(labels, images: dict[str, np.ndarray], families: str | Iterable[str] = ("intensity",),
                    settings: dict | None = None, cache: dict | None = None) -> pd.DataFrame:
    """Measure one object set on several images.

    Parameters
    ----------
    labels : ndarray of int or Objects
        The object set's label image; label geometry is prepared once and
        shared by every family and image.
    images : dict of str to ndarray
        Corrected float images in [0, 1] by name (``{"DNA": ..., "RNA": ...}``);
        names end the column names.
    families : "all" or iterable of str
        Names from :data:`FAMILIES`.
    settings : dict, optional
        ``{family: {parameter: value}}``; defaults are CPJUMP1's.
    cache : dict, optional
        Shared across calls for the same site so whole-image work (e.g.
        granularity's spectrum) is done once for all object sets.

    Returns
    -------
    pandas.DataFrame
        One row per object present in the label image, ``ObjectNumber``
        (= label id) first, then the families' columns in CellProfiler names
        (``Intensity_MeanIntensity_DNA``).
    """
    objects = as_objects(labels)
    names = _resolve(families)
    settings = settings or {}
    cache = {} if cache is None else cache
    columns: dict[str, np.ndarray] = {}
    for name in names:
        module = _module(name, FAMILIES)
        columns.update(module.measure_family(objects, images, settings.get(name), cache))
    present = np.flatnonzero(objects.present)
    # one float64 block: building thousands of separate columns costs more than some families
    values = np.empty((present.size, len(columns)))
    for j, v in enumerate(columns.values()):
        values[:, j] = np.asarray(v)[present]
    frame = pd.DataFrame(values, columns=list(columns))
    frame.insert(0, "ObjectNumber", present + 1)
    return frame


def measure_image(images: dict[str, np.ndarray], settings: dict | None = None, cache: dict | None = None,
                  families: Iterable[str] | None = None) -> dict[str, float]:
    """Image-table features (whole-image texture, granularity spectrum, image quality) of available families."""
    settings = settings or {}
    out: dict[str, float] = {}
    names = list(IMAGE_FAMILIES) if families is None else list(families)
    unknown = [n for n in names if n not in IMAGE_FAMILIES]
    if unknown:
        raise InputError(f"unknown image famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"valid: {', '.join(IMAGE_FAMILIES)}")
    for name in names:
        module = _module(name, IMAGE_FAMILIES)
        if module is None or not hasattr(module, "measure_image_family"):
            continue
        out.update(module.measure_image_family(images, settings.get(name), cache))
    return out
