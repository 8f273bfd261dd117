"""One call per site: correct, then nuclei -> cells -> cytoplasm."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..illum import apply as apply_illum
from ..settings import defaults, table
from .cells import CELLS_DEFAULTS, identify_cells
from .cytoplasm import identify_cytoplasm
from .nuclei import NUCLEI_DEFAULTS, identify_nuclei

__all__ = ["segment_site", "DEFAULT_SETTINGS"]

#: Settings of :func:`segment_site` (``[segment]``, declared in :mod:`cpfeatures.settings`);
#: defaults = CPJUMP1_analysis.cppipe modules 14-18.
DEFAULT_SETTINGS = {**defaults(table("segment")), "nuclei": NUCLEI_DEFAULTS, "cells": CELLS_DEFAULTS}


def segment_site(images: dict[str, np.ndarray], illum: dict[str, np.ndarray] | None = None,
                 settings: dict | None = None, return_details: bool = False):
    """Segment one site into Nuclei, Cells and Cytoplasm label images.

    Parameters
    ----------
    images : dict of str to ndarray
        The site's images by role: raw uint16 as stored, or float in [0, 1]
        (already corrected). Needs the nuclei and cells images (DNA, RNA).
    illum : dict of str to ndarray, optional
        Illumination functions by role, applied first (CPJUMP1 module 2).
    settings : dict, optional
        Overrides of :data:`DEFAULT_SETTINGS` (nested ``nuclei``/``cells`` dicts
        override key by key).
    return_details : bool
        Also return the Image-table measurements (``Threshold_*``, ``Count_*``)
        and the unfiltered label images (``NucleiUnedited``,
        ``NucleiSmallRemoved``, ``CellsUnedited``).

    Returns
    -------
    labels : dict
        ``{"Nuclei", "Cells", "Cytoplasm"}`` int32 label images; object ``i``
        of each belongs to the same cell.
    details : dict
        Only with ``return_details``.

    Raises
    ------
    InputError
        A needed image is missing, has NaN/negative values, or an illumination
        function has the wrong shape.
    """
    s = dict(DEFAULT_SETTINGS)
    for key, value in (settings or {}).items():
        s[key] = {**s[key], **value} if isinstance(s.get(key), dict) and isinstance(value, dict) else value
    needed = (s["nuclei_image"], s["cells_image"])
    missing = [r for r in needed if r not in images]
    if missing:
        raise InputError(f"segmentation needs image(s) {', '.join(missing)}; got {', '.join(images)}")
    shape = np.asarray(images[needed[0]]).shape
    corrected = {}
    for role in dict.fromkeys(needed):
        image = np.asarray(images[role])
        if image.shape != shape:
            raise InputError(f"image {role} has shape {image.shape}, {needed[0]} has {shape}")
        corrected[role] = apply_illum(image, None if illum is None else illum.get(role))
    nuclei, ndet = identify_nuclei(corrected[s["nuclei_image"]], s["nuclei"])
    cells, cdet = identify_cells(corrected[s["cells_image"]], nuclei, ndet["unedited"], s["cells"])
    cytoplasm = identify_cytoplasm(cells, nuclei, s["shrink_nuclei"])
    labels = {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm}
    if not return_details:
        return labels
    details = {k: v for k, v in {**ndet, **cdet}.items() if k.startswith("Threshold_")}
    details.update({f"Count_{k}": int(np.count_nonzero(np.bincount(v.ravel())[1:])) for k, v in labels.items()})
    details.update({"NucleiUnedited": ndet["unedited"], "NucleiSmallRemoved": ndet["small_removed"],
                    "CellsUnedited": cdet["unedited"]})
    return labels, details
