"""Crops of a finished run: ``cpfeatures crops STORE PLATE -o CROPS`` (one dask task per site)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CpfeaturesError
from ..io import parse_site_key, site_key
from ..store import Store, StoreWriteError
from ._write import CropSettings, CropStore, default_path

__all__ = ["crops_from_store", "crop_store_site", "CropSummary"]

_TABLE_COLUMNS = {
    "Nuclei": ["Nuclei_Location_Center_X", "Nuclei_Location_Center_Y"],
    "Cells": ["Cells_Location_Center_X", "Cells_Location_Center_Y", "Cells_AreaShape_Area",
              "Cells_AreaShape_BoundingBoxMinimum_X", "Cells_AreaShape_BoundingBoxMinimum_Y",
              "Cells_AreaShape_BoundingBoxMaximum_X", "Cells_AreaShape_BoundingBoxMaximum_Y"],
}


@dataclass
class CropSummary:
    """What :func:`crops_from_store` did.

    Attributes
    ----------
    path : str
        The crops store.
    done, skipped : list of str
        Sites cropped now; sites whose crops were already complete.
    failed : dict of str to str
        Site -> why it could not be cropped.
    n_crops : int
        Crops written now.
    seconds : float
    """

    path: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_crops: int = 0
    seconds: float = 0.0


def crop_store_site(store_url: str, crops_url: str, plate_id: str, well: str, fieldno: int, paths: dict[str, str],
                    shape, dtype: str, config: dict, settings: CropSettings, illum_version: str = "") -> dict:
    """Crop one committed site of a feature store (runs on a worker; never raises for a bad site).

    The corrected images are recomputed from the raw images and the store's illumination
    functions with the run's own function; the labels are the store's (``--save-labels``)
    or segmented again with the store's settings, and refused unless they reproduce the
    store's cells (their number and each cell's area).

    Returns
    -------
    dict
        ``{"site", "ok", "n_crops", "error"}`` (plus ``"storage_error"`` when the crops store
        could not be written).
    """
    from ..io import read_image
    from ..pipeline import correct_images, segment_images
    from ..run import cached_illum
    from ._site import site_crops

    key = site_key(well, fieldno)
    try:
        store = Store(store_url)
        store.completed_sites()
        tables = {name: store.read_table(name, sites=[key], columns=cols) for name, cols in _TABLE_COLUMNS.items()}
        labels = store.site_labels(key)
        seg = config.get("segment", {})
        need = set(settings.channels)
        if not labels:
            need |= {seg.get("nuclei_image", "DNA"), seg.get("cells_image", "RNA")}
        missing = [r for r in need if r not in paths]
        if missing:
            raise CpfeaturesError(f"site {key} has no image for channel(s) {', '.join(sorted(missing))}")
        images = {r: read_image(paths[r], shape, dtype) for r in sorted(need)}
        illum = cached_illum(store_url, illum_version) if config.get("illum", {}).get("enabled", True) else None
        if labels:
            corrected = correct_images(images, illum)
        else:  # segmented again as the run did, and checked against the run's cells
            corrected, labels = segment_images(images, illum, config)
            _check_labels(labels["Cells"], tables["Cells"], key)
        crops, masks, index = site_crops(corrected, labels, tables["Nuclei"], tables["Cells"], settings)
        CropStore(crops_url, mode="a").write_site(plate_id, well, fieldno, crops, index, masks)
        return {"site": key, "ok": True, "n_crops": int(len(index)), "error": None}
    except StoreWriteError as exc:
        return {"site": key, "ok": False, "n_crops": 0, "error": str(exc), "storage_error": str(exc)}
    except Exception as exc:  # a bad site must never stop the others
        return {"site": key, "ok": False, "n_crops": 0, "error": " ".join(str(exc).split()) or type(exc).__name__}


def _check_labels(cells: np.ndarray, table: pd.DataFrame, key: str) -> None:
    """Segmented-again labels must be the run's: same objects, same areas."""
    numbers = table["Metadata_ObjectNumber"].to_numpy().astype(np.int64)
    areas = np.bincount(cells.ravel(), minlength=int(cells.max()) + 1)
    ok = int(cells.max()) == len(numbers) and (numbers.max(initial=0) < len(areas)) and \
        np.array_equal(areas[numbers], table["Cells_AreaShape_Area"].to_numpy())
    if not ok:
        raise CpfeaturesError(f"site {key}: segmenting again does not reproduce the store's cells (another "
                              "cpfeatures version or settings?); run again with --save-crops or --save-labels")


def crops_from_store(store: str | os.PathLike, plate: str | os.PathLike, out: str | os.PathLike | None = None, *,
                     settings: CropSettings | None = None, workers: int | None = None, scheduler: str | None = None,
                     sites=None, wells=None, progress: bool | str = False, tls_ca_file=None, tls_cert=None,
                     tls_key=None) -> CropSummary:
    """Write the crops of every committed site of a finished run (resumable).

    Parameters
    ----------
    store : path-like
        The run's feature store (it holds the illumination functions and the settings).
    plate : path-like
        The plate the run read (its raw images).
    out : path-like, optional
        The crops store (default ``<store>.crops.zarr``); sites already complete there are skipped.
    settings : CropSettings, optional
        Size, mode, border, channels, masks (default: 128-pixel crops around nucleus centres).
    workers : int, optional
        Local worker processes (default one per core); ``0`` crops in this process.
    scheduler : str, optional
        An existing dask scheduler's address.
    tls_ca_file, tls_cert, tls_key : str, optional
        For a ``tls://`` scheduler, as :class:`cpfeatures.run.RunOptions` takes them.
    sites, wells : iterable of str, optional
        Only these sites or wells.
    progress : bool or str
        As :func:`cpfeatures.run.run_plate`.

    Returns
    -------
    CropSummary

    Raises
    ------
    CpfeaturesError
        The plate is not the store's, a channel is missing, or the crops store holds other settings.

    Examples
    --------
    >>> crops_from_store("example.zarr", "data/example_plate", "crops.zarr", workers=0)  # doctest: +SKIP
    """
    from ..run import progress as _progress
    from ..io import read_plate
    from ..run import TaskWindow, cluster_client

    t0 = time.perf_counter()
    settings = settings or CropSettings()
    st = Store(store)
    meta = st.info
    cfg = st.config()
    p = read_plate(plate, config=cfg, strict=False)
    if p.plate_id != meta.get("plate_id"):
        raise CpfeaturesError(f"plate {p.plate_id!r} is not the store's plate {meta.get('plate_id')!r}", plate)
    missing = [r for r in settings.channels if r not in p.roles]
    if missing:
        raise CpfeaturesError(f"channel(s) {', '.join(missing)} not on this plate (channels: {', '.join(p.roles)})",
                              plate)
    path = os.fspath(out) if out is not None else (settings.path or default_path(st.url))
    crop_store = CropStore(path, mode="a")
    crop_store.initialize(p.plate_id, settings, source=st.url)
    keys = st.completed_sites()
    if sites:
        keys = [k for k in keys if k in set(sites)]
    if wells:
        keys = [k for k in keys if parse_site_key(k).well in set(wells)]
    summary = CropSummary(crop_store.url)
    have = set(crop_store.completed_sites())
    summary.skipped = [k for k in keys if k in have]
    by_key = {site_key(*s): s for s in p.sites}
    todo = [by_key[k] for k in keys if k not in have and k in by_key]
    for k in keys:
        if k not in by_key:
            summary.failed[k] = "site not on the plate"
    paths, problems = p.site_paths(todo, p.roles)
    summary.failed.update({k: str(e) for k, e in problems.items()})
    illum_version = st.illum_version()
    runnable = [s for s in todo if site_key(*s) in paths]
    args = [(st.url, crop_store.url, p.plate_id, s.well, s.field, paths[site_key(*s)], p.image_shape,
             str(p.dtype), cfg, settings, illum_version) for s in runnable]
    with _progress(progress) as bar:
        task = bar.add("crops", len(keys), completed=len(summary.skipped))

        def take(res: dict) -> None:
            if res["ok"]:
                summary.done.append(res["site"])
                summary.n_crops += res["n_crops"]
            else:
                summary.failed[res["site"]] = res["error"]
            bar.advance(task, 1, failures=len(summary.failed))

        if workers == 0 and scheduler is None:
            for a in args:
                res = crop_store_site(*a)
                take(res)
                if res.get("storage_error"):
                    break
        elif args:
            with cluster_client(scheduler, workers, 1, tls_ca_file=tls_ca_file, tls_cert=tls_cert,
                                tls_key=tls_key) as client:
                window = TaskWindow(client, crop_store_site, args, None, "crops")
                for i, res in window:
                    if isinstance(res, BaseException):
                        res = {"site": site_key(*runnable[i]), "ok": False, "n_crops": 0,
                               "error": f"the worker died on this site ({type(res).__name__})"}
                    take(res)
                    if res.get("storage_error"):
                        window.stop()
    summary.seconds = time.perf_counter() - t0
    return summary
