"""The family registry and the calls that run families over an object set's images.

Every family is registered with callables (not module paths), so a family whose code fails
to import fails ``import cpfeatures.measure`` loudly instead of vanishing from ``"all"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from . import (_colocalization, _granularity, _imagequality, _intensity, _neighbors, _radial, _sizeshape,
               _texture)
from ._defaults import DEFAULTS
from ._objects import as_image, as_objects, memo

__all__ = ["Family", "FAMILIES", "IMAGE_FAMILIES", "measure_objects", "measure_image", "available_families",
           "validated_images"]


@dataclass(frozen=True)
class Family:
    """A measurement family.

    Attributes
    ----------
    name : str
        Its settings table (``[measure.<name>]``) and registry key.
    function : callable
        The public per-object (or, for image families, per-image) function.
    objects : callable or None
        ``(objects, images, settings, cache) -> {column: per-object values}`` with
        CellProfiler's column names (no compartment prefix); images already validated.
    image : callable or None
        ``(images, settings, cache) -> {column: value}`` for the Image table.
    """

    name: str
    function: Callable
    objects: Callable | None = None
    image: Callable | None = None

    @property
    def defaults(self) -> dict:
        return dict(DEFAULTS[self.name])


#: Object families: name -> Family (CPJUMP1 modules 19-27).
FAMILIES: dict[str, Family] = {
    "intensity": Family("intensity", _intensity.intensity, _intensity.measure_family),
    "texture": Family("texture", _texture.texture, _texture.measure_family, _texture.measure_image_family),
    "granularity": Family("granularity", _granularity.granularity, _granularity.measure_family,
                          _granularity.measure_image_family),
    "sizeshape": Family("sizeshape", _sizeshape.sizeshape, _sizeshape.measure_family),
    "radial": Family("radial", _radial.radial, _radial.measure_family),
    "colocalization": Family("colocalization", _colocalization.colocalization, _colocalization.measure_family),
    "neighbors": Family("neighbors", _neighbors.neighbors, _neighbors.measure_family),
}

#: Image-table families: name -> Family.
IMAGE_FAMILIES: dict[str, Family] = {
    "texture": Family("texture", _texture.texture_image, image=_texture.measure_image_family),
    "granularity": Family("granularity", _granularity.granularity_image, image=_granularity.measure_image_family),
    "imagequality": Family("imagequality", _imagequality.image_quality, image=_imagequality.measure_image_family),
}


def available_families() -> list[str]:
    """The object families, in the order ``families="all"`` runs them."""
    return list(FAMILIES)


def _resolve(families: str | Iterable[str], registry: dict[str, Family], what: str) -> list[str]:
    if families == "all":
        return list(registry)
    names = [families] if isinstance(families, str) else list(families)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InputError(f"unknown {what} famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(map(repr, unknown))}; valid: {', '.join(registry)}")
    return names


def validated_images(images: dict[str, np.ndarray], objects=None, cache: dict | None = None) -> dict[str, np.ndarray]:
    """Every image through :func:`as_image`, once per site when a ``cache`` is shared."""
    return {name: memo(cache, ("image", name), image, lambda name=name, image=image: as_image(image, objects, name))
            for name, image in images.items()}


def measure_objects(labels, images: dict[str, np.ndarray], families: str | Iterable[str] = ("intensity",),
                    settings: dict | None = None, cache: dict | None = None) -> pd.DataFrame:
    """Measure one object set on several images.

    Parameters
    ----------
    labels : ndarray of int or Objects
        The object set's label image; label geometry is prepared once and
        shared by every family and image.
    images : dict of str to ndarray
        Images by name (``{"DNA": ..., "RNA": ...}``): float in [0, 1] (corrected), or
        integers, divided by their type's maximum; names end the column names.
    families : "all" or iterable of str
        Names from :data:`FAMILIES`.
    settings : dict, optional
        ``{family: {setting: value}}``; defaults are CPJUMP1's
        (:data:`cpfeatures.measure.DEFAULTS`). Unknown families or settings are errors.
    cache : dict, optional
        Shared across calls for the same site so whole-image work (validation, texture
        quantization, granularity's spectrum, Costes thresholds) is done once for all object
        sets. Entries keep their arrays, so a cache reused for another site recomputes.

    Returns
    -------
    pandas.DataFrame
        One row per object present in the label image, ``ObjectNumber``
        (= label id) first, then the families' columns in CellProfiler names
        (``Intensity_MeanIntensity_DNA``).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> image = np.array([[10, 20, 90], [0, 50, 50]], np.uint8)
    >>> measure_objects(labels, {"DNA": image})["Intensity_MeanIntensity_DNA"].round(4).tolist()
    [0.0588, 0.1961]
    """
    objects = as_objects(labels)
    names = _resolve(families, FAMILIES, "measurement")
    settings = settings or {}
    unknown = [k for k in settings if k not in FAMILIES and k not in IMAGE_FAMILIES]
    if unknown:
        raise InputError(f"settings for unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(map(repr, unknown))}; valid: {', '.join(FAMILIES)}")
    cache = {} if cache is None else cache
    checked = validated_images(images, objects, cache)
    columns: dict[str, np.ndarray] = {}
    for name in names:
        columns.update(FAMILIES[name].objects(objects, checked, settings.get(name), cache))
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
    """Image-table features of every image: whole-image texture, granularity spectrum, image quality.

    Parameters
    ----------
    images : dict of str to ndarray
    settings : dict, optional
        ``{family: {setting: value}}``.
    cache : dict, optional
        The site's cache, shared with :func:`measure_objects`.
    families : iterable of str, optional
        Names from :data:`IMAGE_FAMILIES` (default: all of them).
    """
    settings = settings or {}
    names = list(IMAGE_FAMILIES) if families is None else _resolve(families, IMAGE_FAMILIES, "image")
    checked = validated_images(images, None, cache)
    out: dict[str, float] = {}
    for name in names:
        out.update(IMAGE_FAMILIES[name].image(checked, settings.get(name), cache))
    return out
