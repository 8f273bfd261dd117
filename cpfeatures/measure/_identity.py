"""What CellProfiler's Identify modules write beside the measurements: object locations,
numbers, parent/child links (per object) and object counts (Image table).

In the CPJUMP1 pipeline the three compartments are one cell each: object ``i`` of Nuclei,
Cells and Cytoplasm is the same cell (IdentifySecondaryObjects keeps the nuclei's numbers,
IdentifyTertiaryObjects the cells'), so the links are the object's own number.
"""

from __future__ import annotations

import numpy as np

from ._objects import Objects, as_objects

__all__ = ["identity_columns", "object_counts"]

#: (child compartment, its parents), CPJUMP1's Identify modules 16-18.
_PARENTS = {"Cells": ("Nuclei",), "Cytoplasm": ("Cells", "Nuclei")}
_CHILDREN = {"Nuclei": ("Cells", "Cytoplasm"), "Cells": ("Cytoplasm",)}


def identity_columns(compartment: str, objects: dict[str, "Objects | np.ndarray"], numbers) -> dict[str, np.ndarray]:
    """Location, number and parent/child columns of one compartment's objects.

    Parameters
    ----------
    compartment : {"Nuclei", "Cells", "Cytoplasm"}
    objects : dict of str to Objects or label image
        Every compartment of the site (children and parents are looked up there).
    numbers : sequence of int
        The object numbers of the rows (``ObjectNumber`` of :func:`measure_objects`).

    Returns
    -------
    dict
        ``Location_Center_X/Y`` (pixel centroid), ``Location_Center_Z`` (0; Identify modules
        write it, IdentifyTertiaryObjects does not), ``Number_Object_Number``,
        ``Parent_<Objects>`` and ``Children_<Objects>_Count`` (1 if that compartment has the
        object, else 0), in CellProfiler's column order.

    Examples
    --------
    >>> import numpy as np
    >>> nuclei = np.array([[1, 0, 2]]); cells = np.array([[1, 1, 2]])
    >>> identity_columns("Cells", {"Nuclei": nuclei, "Cells": cells}, [1, 2])["Location_Center_X"]
    array([0.5, 2. ])
    """
    objs = {k: as_objects(v) for k, v in objects.items()}
    obj = objs[compartment]
    idx = np.asarray(numbers, dtype=np.int64) - 1
    area = obj.area.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(obj.pixel_labels, weights=obj.cols, minlength=obj.count + 1)[1:] / area
        cy = np.bincount(obj.pixel_labels, weights=obj.rows, minlength=obj.count + 1)[1:] / area
    out = {"Location_Center_X": cx[idx], "Location_Center_Y": cy[idx]}
    if compartment != "Cytoplasm":
        out["Location_Center_Z"] = np.zeros(idx.size)
    out["Number_Object_Number"] = (idx + 1).astype(float)
    for child in _CHILDREN.get(compartment, ()):
        out[f"Children_{child}_Count"] = _has(objs, child, idx)
    for parent in _PARENTS.get(compartment, ()):
        out[f"Parent_{parent}"] = (idx + 1).astype(float)
    # CellProfiler's order: Nuclei's children, then Cells' parent before its children
    order = ["Location_Center_X", "Location_Center_Y", "Location_Center_Z", "Number_Object_Number",
             "Children_Cells_Count", "Parent_Nuclei", "Children_Cytoplasm_Count", "Parent_Cells"]
    if compartment == "Cytoplasm":
        order = ["Location_Center_X", "Location_Center_Y", "Number_Object_Number", "Parent_Cells", "Parent_Nuclei"]
    return {k: out[k] for k in order if k in out}


def _has(objects: dict[str, Objects], compartment: str, idx: np.ndarray) -> np.ndarray:
    if compartment not in objects:
        return np.zeros(idx.size)
    area = objects[compartment].area
    ok = (idx >= 0) & (idx < len(area))
    out = np.zeros(idx.size)
    out[ok] = (area[idx[ok]] > 0).astype(float)
    return out


def object_counts(labels: dict[str, "Objects | np.ndarray"]) -> dict[str, float]:
    """``Count_<Objects>``: the number of distinct objects in each label image (Image table).

    Examples
    --------
    >>> import numpy as np
    >>> object_counts({"Nuclei": np.array([[1, 0, 3]])})
    {'Count_Nuclei': 2.0}
    """
    return {f"Count_{name}": float(np.count_nonzero(as_objects(lab).present)) for name, lab in labels.items()}
