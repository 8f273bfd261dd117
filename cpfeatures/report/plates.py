"""Where the report finds a run's images: the plate's folder and index, or the file names the store recorded.

A site is drawn from its raw images, so the report needs the plate the run read.
:func:`resolve_plate` picks how to reach it: a :class:`RecordedPlate` (the file
names each completed site recorded: no index to parse, seconds saved on a
384-well plate) when every site to draw is in the store, else the plate's own
index (:func:`open_plate`). Drawing without a store needs the settings and the
illumination functions a run would use: :func:`store_config` and
:func:`plate_illumination`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CpfeaturesError, InputError, PlateError
from ..io import parse_site_key, site_key

__all__ = ["store_config", "plate_illumination", "open_plate", "RecordedPlate", "resolve_plate",
           "MAX_SITES_WITHOUT_STORE"]

#: Without a store, a site is drawn with the plate's illumination functions computed here (as a
#: run would), up to this many sites; bigger plates need the run's store.
MAX_SITES_WITHOUT_STORE = 96


def store_config(store) -> dict:
    """The settings a store was written with (:meth:`cpfeatures.store.Store.config`), or the defaults.

    Parameters
    ----------
    store : Store or None
        An open store; None for the defaults (drawing a site without a run).

    Returns
    -------
    dict
        The settings, defaults merged with the run's recorded TOML.
    """
    if store is None:
        from ..config import load_config

        return load_config()
    return store.config()


def plate_illumination(plate, config: dict) -> dict:
    """The plate's illumination functions, computed over its sites as a run does (small plates only).

    Raises
    ------
    InputError
        The plate has more than :data:`MAX_SITES_WITHOUT_STORE` sites: pass the run's store.
    """
    from ..run import compute_illumination

    roles = [r for r in config.get("run", {}).get("channels", plate.roles) if r in plate.roles] or plate.roles
    if getattr(plate, "illum_files", None):  # a LoadData CSV's own functions, as a run uses them
        from ..io import read_illum_files

        return read_illum_files(plate.illum_files, roles, plate.image_shape)
    if len(plate.sites) > MAX_SITES_WITHOUT_STORE:
        raise InputError(f"a site is segmented after illumination correction, whose functions come from all "
                         f"{len(plate.sites)} sites of the plate: pass the run's --store to use its functions",
                         plate.root)
    return compute_illumination(plate, roles=roles, config=config).functions


def open_plate(plate, config: dict | None = None, plate_id: str | None = None):
    """A :class:`~cpfeatures.io.Plate` from a Plate or a path (read with the run's channel map).

    ``plate_id`` (a store's plate) picks that plate from a LoadData CSV of several.
    """
    if plate is None:
        raise InputError("a plate (folder or Plate) is needed to draw a site")
    if hasattr(plate, "load_site"):
        return plate
    from ..io import read_plate

    csv = str(plate).lower().endswith(".csv")
    return read_plate(plate, config=config, strict=False, plate=plate_id if csv else None)


class RecordedPlate:
    """A run's completed sites, read from the image folder by the file names the store recorded.

    Drawing a few sites then needs no index: a 384-well x 9-field Harmony index
    takes seconds to parse. Offers what the overlays use of
    :class:`~cpfeatures.io.Plate`: ``root``, ``wells``, ``sites``, ``roles``,
    ``load_site``.

    Parameters
    ----------
    folder : path-like
        The plate folder, its image folder or its index file.
    store : Store
    keys : list of str, optional
        The store's completed sites (read from it when not given).

    Raises
    ------
    InputError
        No site records its file names, or the folder does not hold them.
    """

    def __init__(self, folder, store, keys: list[str] | None = None):
        self.store = store
        keys = store.completed_sites() if keys is None else list(keys)
        self.sites = [parse_site_key(k) for k in keys]
        self.wells = sorted({s.well for s in self.sites})
        self.roles = list(store.info.get("roles") or [])
        folder = Path(folder)
        first = self._files(keys[0]) if keys else {}
        if not first:
            raise InputError("the store records no image file names for its sites", store.url)
        name = next(iter(first.values()))
        candidates = [folder.parent] if folder.is_file() else [folder, folder / "Images", folder / "images"]
        self.root = next((c for c in candidates if (c / name).is_file()), None)
        if self.root is None:
            raise InputError(f"the run's images (e.g. {name}) are not in this folder", folder)
        self.roles = self.roles or list(first)

    def imaged_sites(self) -> list:
        """The sites whose images are in the folder, from the Harmony file names (no index needed)."""
        from ..io import Site, parse_filename, well_name

        found = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                try:
                    m = parse_filename(entry.name)
                except PlateError:  # not an image of the plate
                    continue
                found.add(Site(well_name(m["row"], m["col"]), m["field"]))
        return sorted(found)

    def _files(self, key: str) -> dict[str, str]:
        meta = self.store.site_attrs(key).get("image_metadata") or {}
        return {k[len("FileName_Orig"):]: v for k, v in meta.items() if k.startswith("FileName_Orig")}

    def load_site(self, well: str, field: int, roles=None) -> dict[str, np.ndarray]:
        """A site's images by role (``roles``: those to read; default all the store recorded).

        Raises
        ------
        InputError
            The site is not in the store, or its images differ in shape.
        """
        from ..io import read_image

        try:
            files = self._files(site_key(well, field))
        except KeyError:
            raise InputError(f"site {site_key(well, field)} is not in the store", self.store.url) from None
        roles = list(files) if roles is None else [r for r in roles if r in files]
        images = {role: read_image(self.root / files[role]) for role in roles}
        shapes = {im.shape for im in images.values()}
        if len(shapes) > 1:
            raise InputError(f"the images of site {site_key(well, field)} differ in shape: {sorted(shapes)}",
                             self.root)
        return images


def resolve_plate(plate, info: dict, config: dict, store, keys: list[str], wanted_sites) -> tuple[object, str]:
    """The plate the report draws from, and what to say about it.

    The run's images are found by the file names the store recorded
    (:class:`RecordedPlate`, no index to parse) when every site to draw is in
    the store; otherwise the plate's index is read. An explicitly given plate
    must open; the recorded one may be gone.

    Parameters
    ----------
    plate : Plate, path-like or None
        The plate given to the report (None: the folder the store recorded).
    info : dict
        The store's ``info``.
    config : dict
        The run's settings (for the plate's channel map).
    store : Store
    keys : list of str
        The store's completed sites.
    wanted_sites : list of (str, int or None)
        The sites asked for (:func:`~cpfeatures.report.sites.parse_sites`).

    Returns
    -------
    plate : Plate, RecordedPlate or None
        None when no plate can be read.
    note : str
        Where the plate is, or why it is not available.

    Raises
    ------
    PlateError
        A given plate path does not exist.
    CpfeaturesError
        A given plate cannot be read (a recorded one that cannot is noted instead).
    """
    if plate is not None and hasattr(plate, "load_site"):
        return plate, str(getattr(plate, "root", "given plate"))
    folder = plate if plate is not None else info.get("plate_path")
    if not folder:
        return None, "no plate folder recorded in the store"
    remote = "://" in str(folder) and not str(folder).startswith("file://")
    if not remote and not os.path.exists(folder):
        if plate is not None:
            raise PlateError("plate path does not exist", folder)
        return None, f"{folder} (recorded in the store) not found"
    done = set(keys)
    done_wells = {parse_site_key(k).well for k in keys}
    need_index = any((f is None and w not in done_wells) or (f is not None and site_key(w, f) not in done)
                     for w, f in wanted_sites)
    if keys and not need_index and not remote:
        try:
            return RecordedPlate(folder, store, keys), str(folder)
        except CpfeaturesError:
            pass  # no file names recorded, or not in this folder: read the index
    try:
        return open_plate(folder, config, plate_id=info.get("plate_id")), str(folder)
    except CpfeaturesError as exc:
        if plate is not None:
            raise
        return None, f"{folder}: cannot be read ({exc})"
