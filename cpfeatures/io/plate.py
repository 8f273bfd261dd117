"""The :class:`Plate`: one plate's images, channels and sites, from a Harmony export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from ..errors import CpfeaturesError, ImageError, PlateError
from . import fs as _fs
from .tiff import read_header, read_image

__all__ = ["Plate", "Site", "site_key", "parse_site_key", "well_name", "PlateWarning"]


class PlateWarning(UserWarning):
    """Something about a plate that works but deserves attention."""


class Site(NamedTuple):
    """One imaged field of one well: the unit of work of a plate run."""

    well: str
    field: int

    def __str__(self) -> str:
        return site_key(self.well, self.field)


def site_key(well: str, field: int) -> str:
    """The name of a site wherever one is stored or listed: ``"D08_f5"``.

    Examples
    --------
    >>> site_key("D08", 5)
    'D08_f5'
    >>> parse_site_key(site_key("D08", 5))
    Site(well='D08', field=5)
    """
    return f"{well}_f{int(field)}"


def parse_site_key(key: str) -> Site:
    """The inverse of :func:`site_key`: ``"D08_f5"`` -> ``Site("D08", 5)``.

    Raises
    ------
    ValueError
        ``key`` is not ``WELL_fFIELD`` with a whole-number field.
    """
    well, sep, fieldno = str(key).rpartition("_f")
    if not sep or not well or not fieldno.isdigit():
        raise ValueError(f"not a site key (WELL_fFIELD): {key!r}")
    return Site(well, int(fieldno))


def well_name(row: int, col: int) -> str:
    """Well name from 1-based row and column: (4, 8) -> ``"D08"``; rows past Z go AA, AB, ..."""
    letters = ""
    r = int(row)
    while r > 0:
        r, rem = divmod(r - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{int(col):02d}"


@dataclass
class Plate:
    """A plate as exported by Harmony: where each image is and what it shows.

    Build it with :func:`read_plate`.

    Attributes
    ----------
    plate_id : str
    root : Path or str
        The folder holding the images (the index's folder); a URL string for a
        plate on object storage.
    index_path : Path, str or None
        The Harmony index, or None when the layout came from file names.
    images : pandas.DataFrame
        One row per image: ``row, col, well, field, plane, timepoint,
        channel_id, channel_name, role, path, pixel_size_um, position_x_um,
        position_y_um, position_z_um, excitation_nm, emission_nm, exposure_s``
        and the other index fields.
    image_shape : tuple of int
        ``(height, width)`` of every image.
    dtype : numpy.dtype
        The stored pixel type (uint16 for Phenix).
    missing_files : list of str
        Images the index lists that are not on disk.
    extra_files : list of str
        TIFFs in the folder that the index does not list.
    attrs : dict
        Plate-level metadata from the index (instrument, measurement, ...).
    plate_rows, plate_columns : int or None
        Plate dimensions from the index.
    illum_files : dict
        Role -> precomputed illumination function file (a LoadData CSV's
        ``FileName_Illum<Ch>``); empty when the run computes its own.
    """

    plate_id: str
    root: Path | str
    index_path: Path | str | None
    images: pd.DataFrame
    image_shape: tuple[int, int]
    dtype: np.dtype
    missing_files: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    plate_rows: int | None = None
    plate_columns: int | None = None
    illum_files: dict = field(default_factory=dict)

    # -- summaries ---------------------------------------------------------------
    @property
    def channels(self) -> pd.DataFrame:
        """One row per channel: ``channel_id, channel_name, role, excitation_nm, emission_nm, ...``."""
        cols = [c for c in ("channel_id", "channel_name", "role", "excitation_nm", "emission_nm",
                            "channel_type", "exposure_s") if c in self.images]
        return (self.images[cols].drop_duplicates("channel_id").sort_values("channel_id")
                .reset_index(drop=True))

    @property
    def roles(self) -> list[str]:
        """Channel roles in channel-number order (``["Mito", "AGP", ...]`` for CPJUMP1)."""
        return list(self.channels["role"])

    @property
    def wells(self) -> list[str]:
        """Wells with images, in plate order (row, then column)."""
        w = self.images.drop_duplicates("well").sort_values(["row", "col"])
        return list(w["well"])

    @property
    def fields(self) -> list[int]:
        return sorted(int(f) for f in self.images["field"].unique())

    @property
    def planes(self) -> list[int]:
        return sorted(int(p) for p in self.images["plane"].unique())

    @property
    def timepoints(self) -> list[int]:
        return sorted(int(t) for t in self.images["timepoint"].unique())

    @property
    def sites(self) -> list[Site]:
        """Every (well, field) with images, in plate order."""
        s = self.images.drop_duplicates(["well", "field"]).sort_values(["row", "col", "field"])
        return [Site(w, int(f)) for w, f in zip(s["well"], s["field"])]

    @property
    def pixel_size_um(self) -> float | None:
        """Pixel size from the index (the TIFF resolution tag of Phenix files is wrong)."""
        values = self.images["pixel_size_um"].dropna() if "pixel_size_um" in self.images else []
        return float(np.median(values)) if len(values) else None

    def describe(self) -> dict:
        """The plate in one JSON-ready dict: what ``cpfeatures inspect --json`` prints.

        Returns
        -------
        dict
            ``plate_id``, ``index`` (the index file or None), ``image_folder``, ``wells``,
            ``fields``, ``planes``, ``timepoints``, ``channels`` (one dict per channel: ``id``,
            ``name``, ``role``, ``excitation_nm``, ``emission_nm``; None when unknown),
            ``pixel_size_um``, ``image_shape`` (``[height, width]``), ``dtype``, ``n_sites``,
            ``n_images``, ``missing_files``, ``extra_files``, ``instrument`` and ``plate_type``
            (None when the index does not say). Plain Python values only.

        Examples
        --------
        >>> from cpfeatures.io import read_plate
        >>> summary = read_plate("data/example_plate").describe()   # doctest: +SKIP
        >>> summary["wells"], summary["n_images"]                    # doctest: +SKIP
        (['D08', 'D14', 'G21', 'L09'], 32)
        """
        def number(value):  # a wavelength: int when whole, None when absent or NaN
            try:
                value = float(value)
            except (TypeError, ValueError):
                return None
            return None if value != value else (int(value) if value.is_integer() else value)

        channels = [
            {
                "id": int(r.channel_id),
                "name": r.channel_name,
                "role": r.role,
                "excitation_nm": number(getattr(r, "excitation_nm", None)),
                "emission_nm": number(getattr(r, "emission_nm", None)),
            }
            for r in self.channels.itertuples()
        ]
        return {
            "plate_id": self.plate_id,
            "index": str(self.index_path) if self.index_path else None,
            "image_folder": str(self.root),
            "wells": self.wells,
            "fields": self.fields,
            "planes": self.planes,
            "timepoints": self.timepoints,
            "channels": channels,
            "pixel_size_um": self.pixel_size_um,
            "image_shape": list(self.image_shape),
            "dtype": str(self.dtype),
            "n_sites": len(self.sites),
            "n_images": int(len(self.images)),
            "missing_files": self.missing_files,
            "extra_files": self.extra_files,
            "instrument": self.attrs.get("instrument"),
            "plate_type": self.attrs.get("plate_type"),
        }

    def __repr__(self) -> str:
        return (f"Plate({self.plate_id!r}: {len(self.wells)} wells x {len(self.fields)} fields x "
                f"{len(self.planes)} planes x {len(self.channels)} channels, "
                f"{self.image_shape[0]}x{self.image_shape[1]} {self.dtype})")

    # -- loading -------------------------------------------------------------------
    def site_images(self, well: str, field: int, plane: int | None = None,
                    timepoint: int | None = None) -> pd.DataFrame:
        """The image rows of one site (one plane and timepoint), one per channel."""
        img = self.images
        sel = img[(img["well"] == well) & (img["field"] == int(field))]
        if sel.empty:
            raise PlateError(f"no images for well {well} field {field}", self.root)
        for name, value in (("plane", plane), ("timepoint", timepoint)):
            available = sorted(sel[name].unique())
            if value is None:
                if len(available) > 1:
                    raise PlateError(
                        f"well {well} field {field} has {len(available)} {name}s {available}; choose one with {name}=",
                        self.root)
                value = available[0]
            sel = sel[sel[name] == value]
            if sel.empty:
                raise PlateError(f"well {well} field {field} has no {name} {value}", self.root)
        return sel.sort_values("channel_id")

    def load_site(self, well: str, field: int, roles: Iterable[str] | None = None,
                  plane: int | None = None, timepoint: int | None = None) -> dict[str, np.ndarray]:
        """Load one site's images.

        Parameters
        ----------
        well : str
            Well name, e.g. ``"D08"``.
        field : int
            Field number as in the index.
        roles : iterable of str, optional
            Only these channels (by role); all by default.
        plane, timepoint : int, optional
            Needed only when the plate has several.

        Returns
        -------
        dict of str to ndarray
            Role -> image as stored (uint16 for Phenix).

        Raises
        ------
        ImageError
            A file is missing, unreadable, or of another shape/dtype than the plate.
        PlateError
            The site does not exist, or a requested role is not imaged there.
        """
        rows = self.site_images(well, field, plane, timepoint)
        if roles is not None:
            roles = list(roles)
            missing = [r for r in roles if r not in set(rows["role"])]
            if missing:
                raise PlateError(f"well {well} field {field} has no image for channel(s) {', '.join(missing)}",
                                 self.root)
            rows = rows.set_index("role").loc[roles].reset_index()
        return {role: read_image(path, self.image_shape, self.dtype)
                for role, path in zip(rows["role"], rows["path"])}

    def site_paths(self, sites: "Iterable[Site] | None" = None, roles: "Iterable[str] | None" = None
                   ) -> tuple[dict[str, dict[str, str]], dict[str, Exception]]:
        """Image paths of each site (key -> role -> path), and the sites that cannot be run, with why.

        A site with several planes or timepoints cannot be run (cpfeatures measures one of
        each per site); every other site is listed with the images of ``roles`` it has.

        Parameters
        ----------
        sites : iterable of Site, optional
            Default: every site of the plate.
        roles : iterable of str, optional
            Default: every channel of the plate.
        """
        images = self.images
        wanted = {(s.well, int(s.field)) for s in (self.sites if sites is None else sites)}
        roles = set(self.roles if roles is None else roles)
        paths, problems = {}, {}
        for (well, fieldno), rows in images.groupby(["well", "field"], sort=False):
            if (well, int(fieldno)) not in wanted:
                continue
            key = site_key(well, fieldno)
            for name in ("plane", "timepoint"):
                values = sorted(rows[name].unique())
                if len(values) > 1:
                    problems[key] = CpfeaturesError(
                        f"well {well} field {fieldno} has {len(values)} {name}s {values}; cpfeatures measures one "
                        f"{name} per site", self.root)
                    break
            else:
                paths[key] = {r: p for r, p in zip(rows["role"], rows["path"]) if r in roles}
        return paths, problems

    def verify(self, deep: bool = False) -> None:
        """Read every image's header (``deep``: decode its pixels too): raise on the first unreadable
        file or shape/dtype mismatch, in the plate's order.

        A header can be whole while the pixel data after it is truncated or corrupt: only ``deep``
        finds that (it reads every byte of the plate, decoding images on a few threads).

        Raises
        ------
        ImageError
        """
        paths = [p for p in self.images["path"] if p not in self._missing_paths]
        if deep:
            import os
            from concurrent.futures import ThreadPoolExecutor

            def decode(path):
                try:
                    read_image(path, self.image_shape, self.dtype)
                except ImageError as exc:
                    return exc
                return None

            with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:  # decoders release the GIL
                for problem in pool.map(decode, paths):
                    if problem is not None:
                        raise problem
            return
        for path in paths:
            shape, dtype = read_header(path)
            shape = tuple(s for s in shape if s != 1)
            if shape != tuple(self.image_shape):
                raise ImageError(f"image is {'x'.join(map(str, shape))}, the plate's images are "
                                 f"{self.image_shape[0]}x{self.image_shape[1]}", path)
            if dtype != self.dtype:
                raise ImageError(f"image dtype is {dtype}, the plate's images are {self.dtype}", path)

    @property
    def _missing_paths(self) -> set[str]:
        return {_fs.join(self.root, m) if _fs.is_url(self.root) else str(self.root / m) for m in self.missing_files}
