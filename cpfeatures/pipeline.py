"""One site, start to finish: correct -> segment -> measure -> tables.

:func:`process_site` is a plain function of arrays (no dask, no store), usable
on its own from Python; the plate run (:mod:`cpfeatures.run`) calls it once per
site and hands its :class:`SiteTables` to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .config import load_config
from .errors import InputError

__all__ = ["process_site", "correct_images", "segment_images", "site_tables", "SiteTables", "OBJECT_TABLES"]

#: The per-object tables of a site, in the order they are segmented.
OBJECT_TABLES = ("Nuclei", "Cells", "Cytoplasm")


@dataclass
class SiteTables:
    """What one site contributes to the store.

    Attributes
    ----------
    tables : dict of str to DataFrame
        ``Image`` (one row) and ``Nuclei``/``Cells``/``Cytoplasm`` (one row per
        object), numeric columns only, column names with their compartment
        prefix (``Cells_AreaShape_Area``) and ``ObjectNumber`` first.
    image_metadata : dict
        Non-numeric Image-table values (file names, ...).
    labels : dict of str to ndarray, optional
        Label images to keep.
    """

    tables: dict[str, pd.DataFrame]
    image_metadata: dict
    labels: dict[str, np.ndarray] | None = None


def correct_images(images: dict[str, np.ndarray], illum: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Raw images -> float images in [0, 1], divided by the illumination function when given.

    Matches CellProfiler's LoadData "rescale" (uint16 / 65535) followed by
    CorrectIlluminationApply "Divide" and clipping (CPJUMP1 module 2).
    """
    from .illum import apply as apply_illum

    out = {}
    for role, image in images.items():
        function = None if illum is None else illum.get(role)
        out[role] = apply_illum(image, function)
    return out


def process_site(images: dict[str, np.ndarray], illum: dict[str, np.ndarray] | None = None,
                 config: dict | None = None, save_labels: bool = False,
                 image_metadata: dict | None = None) -> SiteTables:
    """Segment and measure one site with the run's settings.

    Parameters
    ----------
    images : dict of str to ndarray
        Raw images by role as stored (uint16), e.g. from ``Plate.load_site``.
    illum : dict of str to ndarray, optional
        Illumination functions by role (from the plate-level reduction).
    config : dict, optional
        Settings (:func:`cpfeatures.config.load_config`); defaults = CPJUMP1.
    save_labels : bool
        Keep the label images in the result.
    image_metadata : dict, optional
        Extra non-numeric Image-table values (file names).

    Returns
    -------
    SiteTables
        ``Image`` (one row) and ``Nuclei``/``Cells``/``Cytoplasm`` tables with
        CellProfiler column names, ready for the store.
    """
    cfg = config or load_config()
    if not images:
        raise InputError("no images given for the site")
    corrected, labels, details = segment_images(images, illum, cfg, return_details=True)
    tables = site_tables(labels, corrected, cfg, details)
    return SiteTables(tables, dict(image_metadata or {}), labels=labels if save_labels else None)


def segment_images(images: dict[str, np.ndarray], illum: dict[str, np.ndarray] | None = None,
                   config: dict | None = None, return_details: bool = False):
    """Correct and segment one site's raw images with the run's settings.

    The one way from a site's images to what it is measured on: :func:`process_site`
    measures its result, and the per-site products drawn after a run (crops, overlays)
    segment again with it, so their objects are the run's.

    Parameters
    ----------
    images : dict of str to ndarray
        Raw images by role (uint16 as stored); at least the segmentation's (``[segment]
        nuclei_image`` and ``cells_image``).
    illum : dict of str to ndarray, optional
        Illumination functions by role.
    config : dict, optional
        Settings (:func:`cpfeatures.config.load_config`); defaults = CPJUMP1.
    return_details : bool
        Also return the Image-table values and intermediate label images of the
        segmentation (:func:`cpfeatures.segment.segment_site`).

    Returns
    -------
    corrected : dict of str to ndarray
        Every image corrected (float in [0, 1]).
    labels : dict of str to ndarray
        ``Nuclei``, ``Cells``, ``Cytoplasm`` label images.
    details : dict
        With ``return_details``.
    """
    from .segment import segment_site

    cfg = config or load_config()
    corrected = correct_images(images, illum)
    labels, details = segment_site(corrected, illum=None, settings=cfg.get("segment"), return_details=True)
    return (corrected, labels, details) if return_details else (corrected, labels)


def site_tables(labels: dict[str, np.ndarray], corrected: dict[str, np.ndarray], cfg: dict,
                details: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Measure every compartment and build the Image row (see :func:`process_site`)."""
    from .measure import Objects, identity_columns, measure_objects

    details = details or {}
    mcfg = cfg.get("measure", {})
    compartments = mcfg.get("compartments", list(OBJECT_TABLES))
    roles = [r for r in mcfg.get("images", list(corrected)) if r in corrected]
    measured_images = {r: corrected[r] for r in roles}
    objects = {c: Objects(labels[c]) for c in compartments}
    shared_cache: dict = {}  # whole-image work (granularity) shared across compartments
    tables = {}
    for comp in compartments:
        frame = measure_objects(objects[comp], measured_images, families=mcfg.get("families", "all"),
                                settings=_family_settings(mcfg, comp, details), cache=shared_cache)
        ids = identity_columns(comp, objects, frame["ObjectNumber"].to_numpy())
        frame = pd.concat([frame, pd.DataFrame(ids, index=frame.index)], axis=1)
        frame = frame.rename(columns={c: f"{comp}_{c}" for c in frame.columns if c != "ObjectNumber"})
        tables[comp] = frame
    tables = {"Image": _image_row(labels, measured_images, cfg, details, shared_cache), **tables}
    return tables


def _family_settings(mcfg: dict, comp: str, details: dict) -> dict:
    settings = {k: dict(v) for k, v in mcfg.items() if isinstance(v, dict)}
    neighbors = settings.get("neighbors", {})
    # CellProfiler's "objects discarded for touching the border" image is the object set's
    # small_removed_segmented: for nuclei that is taken after the border filter (so only objects
    # removed as too large come back), for cells the watershed from all nuclei before filtering.
    discarded = {"Nuclei": "NucleiSmallRemoved", "Cells": "CellsUnedited"}.get(comp)
    settings["neighbors"] = {"measurements": neighbors.get(comp, []),
                             "discarded": details.get(discarded) if discarded else None}
    return settings


def _image_row(labels, images, cfg, details, shared_cache) -> pd.DataFrame:
    from .measure import measure_image, object_counts

    row: dict[str, float] = object_counts(labels)
    for key, value in details.items():
        if key.startswith("Threshold_") and np.isscalar(value):
            row[key] = float(value)
    mcfg = cfg.get("measure", {})
    row.update(measure_image(images, mcfg, cache=shared_cache, families=mcfg.get("image_families")))
    return pd.DataFrame([row])
