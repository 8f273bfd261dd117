"""One site's crops from its corrected images, final labels and object tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import CpfeaturesError
from ._extract import INDEX_COLUMNS, MASKS, crop_boxes, extract_crops, inside

if TYPE_CHECKING:  # the settings come from _write, which imports this module
    from ._write import CropSettings

__all__ = ["site_crops"]

_BBOX = [f"Cells_AreaShape_BoundingBox{m}_{a}" for m, a in
         (("Minimum", "X"), ("Minimum", "Y"), ("Maximum", "X"), ("Maximum", "Y"))]


def _numbers(frame: pd.DataFrame) -> np.ndarray:
    col = "ObjectNumber" if "ObjectNumber" in frame.columns else "Metadata_ObjectNumber"
    return frame[col].to_numpy().astype(np.int64)


def site_crops(corrected: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None, nuclei: pd.DataFrame,
               cells: pd.DataFrame, settings: "CropSettings") -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Crops of every cell of a site.

    Parameters
    ----------
    corrected : dict of str to ndarray
        Illumination-corrected images by role (float in [0, 1]), the images the site was measured on.
    labels : dict of str to ndarray, optional
        The site's final ``Nuclei`` / ``Cells`` label images (needed for masks).
    nuclei, cells : DataFrame
        The site's Nuclei and Cells tables (``ObjectNumber`` or ``Metadata_ObjectNumber``,
        ``Nuclei_Location_Center_X/Y``, ``Cells_AreaShape_BoundingBox*``). One crop per row
        of ``cells``: object ``i`` of every table is the same cell.
    settings : CropSettings

    Returns
    -------
    images : ndarray
        ``(n, channels, size, size)`` uint16.
    masks : ndarray or None
        ``(n, 2, size, size)`` uint8 (Nuclei, Cells) with ``settings.masks``.
    index : ndarray
        ``(n, len(INDEX_COLUMNS))`` float64 rows (object number, centre, box, clipped).

    Raises
    ------
    CpfeaturesError
        A channel to crop is not among the images, or masks are asked for without labels.
    """
    missing = [r for r in settings.channels if r not in corrected]
    if missing:
        raise CpfeaturesError(f"cannot crop channel(s) {', '.join(missing)}: the site has {', '.join(corrected)}")
    objects = _numbers(cells)
    # the nucleus centre of each cell (its own Nuclei row); a cell without one falls back to its own centre
    nuc_numbers = _numbers(nuclei)
    pos = np.searchsorted(nuc_numbers, objects) if len(nuc_numbers) else np.zeros(len(objects), np.int64)
    found = (pos < len(nuc_numbers)) & (nuc_numbers[np.minimum(pos, max(len(nuc_numbers) - 1, 0))] == objects) \
        if len(nuc_numbers) else np.zeros(len(objects), bool)
    cx = np.full(len(objects), np.nan)
    cy = np.full(len(objects), np.nan)
    cx[found] = nuclei["Nuclei_Location_Center_X"].to_numpy()[pos[found]]
    cy[found] = nuclei["Nuclei_Location_Center_Y"].to_numpy()[pos[found]]
    if (~found).any() and "Cells_Location_Center_X" in cells.columns:
        cx[~found] = cells["Cells_Location_Center_X"].to_numpy()[~found]
        cy[~found] = cells["Cells_Location_Center_Y"].to_numpy()[~found]
    bbox = cells[_BBOX].to_numpy() if settings.mode == "bbox" else None
    valid = np.isfinite(cx) & np.isfinite(cy)
    if bbox is not None:
        valid &= np.isfinite(bbox).all(axis=1)
        bbox = np.where(np.isfinite(bbox), bbox, 0)
    cx0, cy0 = np.where(valid, cx, 0), np.where(valid, cy, 0)
    boxes = crop_boxes(settings.mode, settings.size, cx0, cy0, bbox)
    shape = next(iter(corrected.values())).shape
    whole = inside(boxes, shape)
    keep = valid & (whole if settings.border == "skip" else True)
    objects, boxes, cx, cy, whole = objects[keep], boxes[keep], cx[keep], cy[keep], whole[keep]
    stack = np.stack([corrected[r] for r in settings.channels])
    mask_stack = None
    if settings.masks:
        if not labels or any(m not in labels for m in MASKS):
            raise CpfeaturesError("masks need the site's Nuclei and Cells label images")
        mask_stack = np.stack([labels[m] for m in MASKS])
    images, masks = extract_crops(stack, boxes, settings.size, mask_stack, objects)
    index = np.empty((len(objects), len(INDEX_COLUMNS)), np.float64)
    x0, y0, side = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    index[:] = np.stack([objects, cx, cy, x0, y0, x0 + side, y0 + side, ~whole], axis=1) if len(objects) else 0
    return images, masks, index
