"""Vectorised single-cell crop extraction from a site's corrected images and labels.

Geometry (image pixel coordinates, x = column, y = row, boxes half-open ``[min, max)``):

- ``centre``: a ``size`` x ``size`` box whose pixel ``(size // 2, size // 2)`` is the image
  pixel nearest the nucleus centre: ``min = floor(centre + 0.5) - size // 2``. Pixels are
  copied, not resampled.
- ``bbox``: the cell's bounding box (``Cells_AreaShape_BoundingBox*``, CellProfiler's
  half-open box) padded to a square of side ``max(width, height)`` around it (the extra
  ``(side - extent) // 2`` pixels before, the rest after), then resized to ``size`` x ``size``
  bilinearly, pixel centres mapped as ``skimage.transform.resize(order=1, mode="edge",
  anti_aliasing=False)`` maps them (the aspect ratio is kept since the box is square). Masks
  are resized by nearest neighbour (the box pixel under each output pixel's centre).

Pixels outside the image are zero. Intensities are the corrected images quantised to
uint16: ``floor(value * 65535 + 0.5)`` (values are in [0, 1]; one step is the raw images'
own 1/65535 step), read back as ``uint16 / 65535``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputError

__all__ = ["crop_boxes", "extract_crops", "quantise", "SCALE", "MODES", "BORDERS", "INDEX_COLUMNS", "FLUORESCENT", "MASKS"]

#: uint16 value of intensity 1.0.
SCALE = 65535
MODES = ("centre", "bbox")
BORDERS = ("pad", "skip")
#: Columns of a site's ``index`` array (see :func:`cpfeatures.crops.read_index` for their meaning).
INDEX_COLUMNS = ["ObjectNumber", "Center_X", "Center_Y", "Box_MinX", "Box_MinY", "Box_MaxX", "Box_MaxY",
                 "Clipped"]
#: The five Cell Painting channels cropped by default, in this order.
FLUORESCENT = ("DNA", "ER", "RNA", "AGP", "Mito")
#: The objects whose masks are cropped with ``masks=True``.
MASKS = ("Nuclei", "Cells")
# cells gathered at once in bbox mode: four float32 corner blocks of this many crops per channel
_BLOCK = 128


def quantise(values: np.ndarray) -> np.ndarray:
    """Intensities in [0, 1] -> uint16: ``floor(value * 65535 + 0.5)`` (values clipped to [0, 1])."""
    scaled = np.clip(values, 0.0, 1.0).astype(np.float64)
    scaled *= SCALE
    scaled += 0.5
    return scaled.astype(np.uint16)  # truncation is floor: the values are >= 0


def crop_boxes(mode: str, size: int, centre_x: np.ndarray, centre_y: np.ndarray,
               bbox: np.ndarray | None = None) -> np.ndarray:
    """Square boxes ``(min_x, min_y, side)`` (int64, ``(n, 3)``) of each cell's crop.

    Parameters
    ----------
    mode : {"centre", "bbox"}
        See the module docstring.
    size : int
        Crop side in pixels (the box side in ``centre`` mode).
    centre_x, centre_y : ndarray
        Nucleus centres (``Nuclei_Location_Center_X/Y``), used in ``centre`` mode.
    bbox : ndarray, optional
        ``(n, 4)`` min_x, min_y, max_x, max_y (half-open), needed in ``bbox`` mode.

    Returns
    -------
    ndarray
        ``(n, 3)`` int64: min_x, min_y, side; the box is ``[min, min + side)`` on both axes.

    Examples
    --------
    >>> crop_boxes("centre", 4, np.array([10.4]), np.array([3.6])).tolist()
    [[8, 2, 4]]
    >>> crop_boxes("bbox", 4, np.array([0.0]), np.array([0.0]), np.array([[5, 0, 9, 2]])).tolist()
    [[5, -1, 4]]
    """
    if mode not in MODES:
        raise InputError(f"crop mode {mode!r}: use one of {', '.join(MODES)}")
    size = int(size)
    if mode == "centre":
        cx = np.asarray(centre_x, dtype=np.float64)
        cy = np.asarray(centre_y, dtype=np.float64)
        half = size // 2
        x0 = np.floor(cx + 0.5).astype(np.int64) - half
        y0 = np.floor(cy + 0.5).astype(np.int64) - half
        return np.stack([x0, y0, np.full(len(x0), size, np.int64)], axis=1)
    if bbox is None:
        raise InputError("crop mode 'bbox' needs the cells' bounding boxes")
    b = np.asarray(bbox, dtype=np.int64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(np.maximum(w, h), 1)
    return np.stack([b[:, 0] - (side - w) // 2, b[:, 1] - (side - h) // 2, side], axis=1)


def inside(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean per box: wholly inside an image of ``shape`` (rows, columns)."""
    x0, y0, side = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    return (x0 >= 0) & (y0 >= 0) & (x0 + side <= shape[1]) & (y0 + side <= shape[0])


def _pad_width(boxes: np.ndarray, shape: tuple[int, int]) -> int:
    if not len(boxes):
        return 0
    x0, y0, side = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    need = max(-x0.min(), -y0.min(), (x0 + side).max() - shape[1], (y0 + side).max() - shape[0], 0)
    return int(need)


def extract_crops(stack: np.ndarray, boxes: np.ndarray, size: int, labels: np.ndarray | None = None,
                  objects: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every cell's crop of every channel at once (no loop over cells).

    Parameters
    ----------
    stack : ndarray
        ``(C, H, W)`` corrected images, float in [0, 1].
    boxes : ndarray
        ``(n, 3)`` boxes from :func:`crop_boxes`. A box of side ``size`` is copied; any other
        side is resized to ``size`` (bilinear, see the module docstring).
    size : int
        Output side.
    labels : ndarray, optional
        ``(M, H, W)`` label images: masks ``labels[m] == objects[i]`` are cropped too.
    objects : ndarray, optional
        ``(n,)`` object numbers (needed with ``labels``).

    Returns
    -------
    crops : ndarray
        ``(n, C, size, size)`` uint16 (:func:`quantise`).
    masks : ndarray or None
        ``(n, M, size, size)`` uint8, 1 inside the cell's object.

    Examples
    --------
    >>> stack = np.zeros((1, 8, 8)); stack[0, 3, 4] = 1.0
    >>> crops, _ = extract_crops(stack, np.array([[3, 2, 3]]), 3)
    >>> crops[0, 0].tolist()
    [[0, 0, 0], [0, 65535, 0], [0, 0, 0]]
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise InputError(f"images must be stacked as (channels, rows, columns), got shape {stack.shape}")
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 3)
    n, size = len(boxes), int(size)
    shape = stack.shape[1:]
    pad = _pad_width(boxes, shape)
    crops = np.zeros((n, stack.shape[0], size, size), np.uint16)
    masks = None
    if labels is not None:
        if objects is None:
            raise InputError("masks need the cells' object numbers")
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels[None]
        masks = np.zeros((n, labels.shape[0], size, size), np.uint8)
    if n == 0:
        return crops, masks
    x0, y0, side = boxes[:, 0] + pad, boxes[:, 1] + pad, boxes[:, 2]
    copied = side == size
    if copied.any():
        # quantise once, pad once, then gather every cell's window of a sliding-window view at once
        # (whole rows of the window are copied: ~8x faster than fancy indexing pixel by pixel)
        idx = np.flatnonzero(copied)
        for c in range(stack.shape[0]):
            windows = sliding_window_view(np.pad(quantise(stack[c]), pad), (size, size))
            crops[idx, c] = windows[y0[idx], x0[idx]]
        if masks is not None:
            obj = np.asarray(objects)[idx, None, None]
            for m in range(labels.shape[0]):
                windows = sliding_window_view(np.pad(labels[m], pad), (size, size))
                masks[idx, m] = windows[y0[idx], x0[idx]] == obj
    resized = np.flatnonzero(~copied)
    if len(resized):
        _resize_all(crops, masks, stack, labels, objects, resized, x0, y0, side, size, pad)
    return crops, masks


def _resize_all(crops, masks, stack, labels, objects, which, x0, y0, side, size, pad) -> None:
    """Bilinear resize of each box to ``size`` (``ndi.zoom(grid_mode=True)`` sample points, edge mode).

    The four neighbours of every output pixel are gathered with ``np.take`` on flat indices
    (one index array: several times faster than two-array fancy indexing)."""
    padded = [np.pad(np.asarray(stack[c], np.float32), pad).ravel() for c in range(stack.shape[0])]
    width = stack.shape[2] + 2 * pad
    padded_labels = None if masks is None else [np.pad(labels[m], pad).ravel() for m in range(labels.shape[0])]
    r = np.arange(size, dtype=np.float64) + 0.5
    for start in range(0, len(which), _BLOCK):
        idx = which[start:start + _BLOCK]
        s = side[idx].astype(np.float64)[:, None]
        # output pixel centre -> box coordinate; edge mode = clamp to the box's first/last pixel
        u = np.clip(r[None, :] * s / size - 0.5, 0.0, s - 1)
        f = np.floor(u).astype(np.int64)
        f1 = np.minimum(f + 1, side[idx, None] - 1)
        t = (u - f).astype(np.float32)
        top, bottom = ((y0[idx, None] + f) * width)[:, :, None], ((y0[idx, None] + f1) * width)[:, :, None]
        left, right = (x0[idx, None] + f)[:, None, :], (x0[idx, None] + f1)[:, None, :]
        corners = [top + left, top + right, bottom + left, bottom + right]
        ty, tx = t[:, :, None], t[:, None, :]
        weights = [(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx]
        for ch, image in enumerate(padded):
            value = np.take(image, corners[0]) * weights[0]
            for k in (1, 2, 3):
                value += np.take(image, corners[k]) * weights[k]
            crops[idx, ch] = quantise(value)
        if padded_labels is not None:
            # nearest: the box pixel containing each output pixel's centre
            near = np.minimum(np.floor(r[None, :] * s / size).astype(np.int64), side[idx, None] - 1)
            flat = ((y0[idx, None] + near) * width)[:, :, None] + (x0[idx, None] + near)[:, None, :]
            obj = np.asarray(objects)[idx, None, None]
            for m, lab in enumerate(padded_labels):
                masks[idx, m] = np.take(lab, flat) == obj
