"""Segmentation overlays: a site's channels as an RGB composite with nuclei and cell outlines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
# Reaching the plate is plates.py's part; its names also stay importable from here, where drawing callers look.
from .plates import RecordedPlate, open_plate, plate_illumination, store_config

__all__ = ["overlay", "composite", "composite_roles", "outline_masks", "overlay_image", "thumbnail", "site_overlay",
           "COMPOSITE_ROLES", "OUTLINE_COLORS"]

#: Colour -> roles tried in order (the usual Cell Painting rendering: DNA blue,
#: RNA/ER green, actin-Golgi-membrane (AGP)/Mito red).
COMPOSITE_ROLES = {"red": ("AGP", "Mito", "ER"), "green": ("RNA", "ER", "Mito"), "blue": ("DNA",)}
#: Outline colours (RGB in [0, 1]): nuclei cyan, cells yellow.
OUTLINE_COLORS = {"Cells": (1.0, 0.85, 0.0), "Nuclei": (0.0, 1.0, 1.0)}


def _stretch(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """Contrast stretch for display: percentiles ``low``-``high`` -> [0, 1]."""
    image = np.asarray(image, dtype=np.float32)
    # Percentiles from a strided sample: the same display at a fraction of the cost.
    step = max(1, int(np.sqrt(image.size / 250_000)))
    lo, hi = np.percentile(image[::step, ::step], [low, high])
    if not np.isfinite(hi) or hi <= lo:
        return np.zeros(image.shape, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0, 1)


def composite_roles(available, roles: dict[str, str] | None = None) -> dict[str, str]:
    """Colour -> role drawn, from the roles ``available``: the first free one of :data:`COMPOSITE_ROLES`."""
    used: dict[str, str] = {}
    for colour, candidates in COMPOSITE_ROLES.items():
        if roles and colour in roles:
            candidates = (roles[colour],)
        for role in candidates:
            if role in available and role not in used.values():
                used[colour] = role
                break
    return used


def composite(images: dict[str, np.ndarray], illum: dict[str, np.ndarray] | None = None,
              roles: dict[str, str] | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """Three channels of a site as a display RGB image.

    Parameters
    ----------
    images : dict of str to ndarray
        A site's images by role (raw uint16 or float).
    illum : dict of str to ndarray, optional
        Illumination functions by role; images are divided by them first, so
        the composite shows what segmentation saw.
    roles : dict, optional
        ``{"red": role, "green": role, "blue": role}``; default: the first
        available of :data:`COMPOSITE_ROLES`.

    Returns
    -------
    rgb : ndarray of float32, shape (H, W, 3)
        In [0, 1], each channel stretched between its 0.5 and 99.8 percentiles.
    used : dict
        Colour -> role actually drawn (missing colours stay black).

    Raises
    ------
    InputError
        No image, or images of different shapes.
    """
    if not images:
        raise InputError("no images to draw")
    shapes = {np.asarray(v).shape for v in images.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"a site's images must be 2-D and of one shape; got {sorted(shapes)}")
    shape = shapes.pop()
    used = composite_roles(list(images), roles)
    rgb = np.zeros((*shape, 3), dtype=np.float32)
    for i, colour in enumerate(("red", "green", "blue")):
        role = used.get(colour)
        if role is None:
            continue
        image = np.asarray(images[role], dtype=np.float32)
        f = None if illum is None else illum.get(role)
        if f is not None and np.shape(f) == shape:
            image = image / np.maximum(np.asarray(f, dtype=np.float32), 1e-6)
        rgb[..., i] = _stretch(image)
    return rgb, used


def outline_masks(labels: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean outline (inner boundary) of each labelled compartment in :data:`OUTLINE_COLORS`.

    Raises
    ------
    InputError
        A label image has another shape than the site's images.
    """
    from skimage.segmentation import find_boundaries

    masks = {}
    for name in OUTLINE_COLORS:
        if name not in labels or labels[name] is None:
            continue
        lab = np.asarray(labels[name])
        if lab.shape != tuple(shape):
            raise InputError(f"{name} label image is {lab.shape}, the site's images are {tuple(shape)}")
        masks[name] = find_boundaries(lab, mode="inner")
    return masks


def _paint(rgb: np.ndarray, masks: dict[str, np.ndarray]) -> np.ndarray:
    out = rgb.copy()
    for name in OUTLINE_COLORS:  # cells first, nuclei on top
        if name in masks:
            out[masks[name]] = OUTLINE_COLORS[name]
    return out


def overlay_image(images: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None,
                  illum: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Composite with outlines, full resolution, as uint8 RGB (H, W, 3)."""
    rgb, _ = composite(images, illum)
    masks = outline_masks(labels or {}, rgb.shape[:2])
    return (_paint(rgb, masks) * 255 + 0.5).astype(np.uint8)


def thumbnail(images: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None,
              illum: dict[str, np.ndarray] | None = None, size: int = 320
              ) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """(full-resolution overlay, thumbnail, colour -> role drawn); images uint8 RGB.

    The thumbnail averages ``f x f`` blocks of the composite and keeps an outline
    pixel wherever its block had one, so outlines stay visible when shrunk.
    """
    from skimage.measure import block_reduce

    rgb, used = composite(images, illum)
    masks = outline_masks(labels or {}, rgb.shape[:2])
    full = (_paint(rgb, masks) * 255 + 0.5).astype(np.uint8)
    f = max(1, int(np.ceil(max(rgb.shape[:2]) / size)))
    if f == 1:
        return full, full, used
    small = block_reduce(rgb, (f, f, 1), np.mean)
    small_masks = {k: block_reduce(m, (f, f), np.max) for k, m in masks.items()}
    return full, (_paint(small, small_masks) * 255 + 0.5).astype(np.uint8), used


def _needed_roles(available: list[str], settings: dict | None) -> list[str]:
    """The channels a drawing reads: the composite's three and the two segmentation needs."""
    seg = settings or {}
    wanted = [*composite_roles(available).values(), seg.get("nuclei_image", "DNA"), seg.get("cells_image", "RNA")]
    return [r for r in dict.fromkeys(wanted) if r in available]


def _check_site(plate, well: str, field: int) -> None:
    """Name the plate's wells / fields when asked for one it does not have."""
    wells = list(getattr(plate, "wells", []))
    if wells and well not in wells:
        shown = ", ".join(wells[:12]) + (", ..." if len(wells) > 12 else "")
        raise InputError(f"well {well} is not in the plate ({len(wells)} wells: {shown})")
    fields = sorted({int(s.field) for s in getattr(plate, "sites", []) if s.well == well})
    if fields and int(field) not in fields:
        raise InputError(f"well {well} has no field {int(field)} (fields: {', '.join(map(str, fields))})")


def site_overlay(plate, well: str, field: int, labels: dict | None = None, store=None,
                 thumb_size: int = 320, illum: dict | None = None, config: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load a site and draw it: (full-resolution overlay, thumbnail, details).

    ``details`` says where the labels came from (``"given"``, ``"store"`` or
    ``"segmented"``), the roles drawn per colour, and the object counts.
    Labels: those given, else the store's (runs with ``--save-labels``),
    else :func:`cpfeatures.pipeline.segment_images` on the site's images with the
    run's segmentation settings and illumination functions (from the store when
    given). Only the channels needed are read.

    Parameters
    ----------
    plate : Plate or path-like
    well : str
    field : int
    labels : dict, optional
    store : Store or path-like, optional
    thumb_size : int
        Longest side of the thumbnail, in pixels.
    illum : dict, optional
        Illumination functions (default: the store's).
    config : dict, optional
        Settings (default: the store's, else the defaults).
    """
    from ..io import site_key, well_name
    from ..store import open_store
    from .layout import parse_well

    well = well_name(*parse_well(well))  # "d8" -> "D08", as the plate names wells
    st = open_store(store) if store is not None else None
    config = config if config is not None else store_config(st)
    plate = open_plate(plate, config, plate_id=st.info.get("plate_id") if st is not None else None)
    _check_site(plate, well, field)
    settings = config.get("segment")
    images = plate.load_site(well, int(field), roles=_needed_roles(list(plate.roles), settings))
    if illum is None and st is not None:
        illum = st.read_illum()
    if illum is None and st is None and labels is None and config.get("illum", {}).get("enabled", True):
        illum = plate_illumination(plate, config)  # what a run would correct with, or the outlines differ
    source = "given"
    if labels is None and st is not None:
        try:
            labels = st.site_labels(site_key(well, field)) or None
        except KeyError:  # the site is not in the store (failed or not run)
            labels = None
        source = "store"
    if labels is None:
        from ..pipeline import segment_images  # corrected and segmented as the run does it

        labels = segment_images(images, illum, config)[1]
        source = "segmented"
    full, thumb, used = thumbnail(images, labels, illum, size=thumb_size)
    counts = {k: int(np.unique(np.asarray(v)[np.asarray(v) > 0]).size) for k, v in labels.items()
              if k in OUTLINE_COLORS}
    return full, thumb, {"labels": source, "colours": used, "counts": counts}


def overlay(plate, well: str, field: int, out_png: str | os.PathLike, labels: dict | None = None,
            store=None) -> Path:
    """Draw one site as a composite with nuclei and cell outlines, and save it as a PNG.

    The composite shows AGP (red), RNA (green) and DNA (blue), falling back to
    Mito / ER when a channel is absent, each illumination-corrected when the store
    has the functions and contrast-stretched (0.5-99.8 percentiles). Nuclei are
    outlined in cyan and cells in yellow, at the images' full resolution.

    Parameters
    ----------
    plate : Plate or path-like
        The plate (from :func:`cpfeatures.io.read_plate`) or its folder / index.
    well : str
        Well, e.g. ``"D08"``.
    field : int
        Field number.
    out_png : path-like
        Where to write the PNG.
    labels : dict of str to ndarray, optional
        ``{"Nuclei": ..., "Cells": ...}`` label images. Default: the store's
        saved labels for this site, else a fresh segmentation
        (:func:`cpfeatures.segment.segment_site`).
    store : Store or path-like, optional
        A run's store: its label images, illumination functions and
        segmentation settings are used.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    InputError
        No plate, label images of the wrong shape, or images segmentation cannot use.
    PlateError
        The site is not in the plate.
    StoreError
        ``store`` is not a cpfeatures store.
    """
    from ..io import site_key, well_name
    from ..store import open_store
    from .figures import array_png
    from .layout import parse_well

    if store is not None and not hasattr(plate, "load_site"):
        # A site the run completed is found by its recorded file names: no index to parse.
        st = open_store(store)
        key = site_key(well_name(*parse_well(well)), field)
        done = st.is_complete(key)
        if done and plate is not None and os.path.exists(plate):
            try:
                plate = RecordedPlate(plate, st, [key])
            except InputError:
                pass
        store = st
    full, _, _ = site_overlay(plate, well, field, labels=labels, store=store)
    out = Path(out_png)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(array_png(full))
    return out
