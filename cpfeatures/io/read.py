"""Which reader a plate path needs (Harmony, ImageXpress, Yokogawa, LoadData, a folder of TIFFs), and its :class:`Plate`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import channel_roles
from ..errors import ConfigError, ImageError, PlateError
from . import fs as _fs
from .filenames import TIFF_SUFFIXES, scan_folder
from .harmony import INDEX_NAMES, parse_index
from .imagexpress import IMAGEXPRESS_PATTERN, find_htd, metaseries_pixel_size, parse_htd, scan_imagexpress
from .loaddata import read_load_data
from .plate import Plate, PlateWarning, well_name
from .tiff import read_header
from .yokogawa import MLF_NAME, scan_yokogawa

__all__ = ["read_plate"]

def _locate(path: Path) -> tuple[Path | None, Path]:
    """(index file or None, image folder) for a plate dir, its Images/ folder, or an index file."""
    if not path.exists():
        raise PlateError("plate path does not exist", path)
    if path.is_file():
        if path.suffix.lower() in TIFF_SUFFIXES:
            raise PlateError("expected a plate folder or its index file, got a single image", path)
        return path, path.parent
    for folder in (path, path / "Images", path / "images"):
        for name in INDEX_NAMES:
            if (folder / name).is_file():
                return folder / name, folder
    for folder in (path / "Images", path / "images", path):
        if folder.is_dir() and any(p.suffix.lower() in TIFF_SUFFIXES for p in folder.iterdir()):
            return None, folder
    raise PlateError("no Harmony index (Index.idx.xml / Index.xml) and no TIFF images found", path)


def _locate_url(url: str) -> tuple[str, str]:
    """(index URL, image folder URL) for a Harmony plate on object storage (``s3://bucket/plate/``)."""
    url = url.rstrip("/")
    name = _fs.basename(url)
    if name.lower().endswith(".xml"):
        if not _fs.isfile(url):
            raise PlateError("index file does not exist", url)
        return url, _fs.parent(url)
    if any(name.lower().endswith(s) for s in TIFF_SUFFIXES):
        raise PlateError("expected a plate folder or its index file, got a single image", url)
    try:
        top = _fs.listdir(url)
    except FileNotFoundError:
        top = []
    except OSError as exc:
        raise PlateError(f"cannot list the plate folder ({exc})", url) from None
    if not top:
        raise PlateError("plate path does not exist (no objects under this prefix)", url)
    if MLF_NAME in top or any(n.lower().endswith(".htd") for n in top):
        raise PlateError("Yokogawa and ImageXpress plates are read from a local folder or a LoadData CSV; "
                         "only Harmony folders are listed on object storage", url)
    for folder, names in ((url, top), *((_fs.join(url, sub), None) for sub in ("Images", "images") if sub in top)):
        names = names if names is not None else _fs.listdir(folder)
        for index in INDEX_NAMES:
            if index in names:
                return _fs.join(folder, index), folder
    raise PlateError("no Harmony index (Index.idx.xml / Index.xml) under this prefix (a plate on object storage "
                     "needs its index, or a LoadData CSV)", url)


def _imagexpress(path: Path) -> tuple[Path, Path | None] | None:
    """(folder, HTD file or None) when ``path`` is an ImageXpress plate, else None (Harmony)."""
    if path.is_file():
        return (path.parent, path) if path.suffix.lower() == ".htd" else None
    if not path.is_dir() or any((f / n).is_file() for f in (path, path / "Images", path / "images")
                                for n in INDEX_NAMES):
        return None
    htd = find_htd(path)
    if htd is not None:
        return path, htd
    names = [p.name for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES]
    if not names:
        names = [q.name for p in path.iterdir() if p.is_dir() and p.name.lower().startswith("timepoint_")
                 for q in p.iterdir() if q.suffix.lower() in TIFF_SUFFIXES]
    if names and all(IMAGEXPRESS_PATTERN.match(n) for n in names):
        return path, None
    return None


def _assign_roles(images: pd.DataFrame, config: dict | None, from_names: bool) -> pd.Series:
    by_name, by_id = channel_roles(config)
    roles = []
    for cid, name in zip(images["channel_id"], images["channel_name"]):
        if from_names and name is not None and name in by_name:
            roles.append(by_name[name])
        elif int(cid) in by_id:
            roles.append(by_id[int(cid)])
        else:
            roles.append(name if (from_names and name) else f"ch{int(cid)}")
    roles = pd.Series(roles, index=images.index)
    per_role = images.assign(role=roles).groupby("role")["channel_id"].nunique()
    clash = per_role[per_role > 1]
    if len(clash):
        raise ConfigError(f"channels map to the same role {list(clash.index)}; fix [channels] in the config")
    return roles


def read_plate(path: str | os.PathLike, config: dict | None = None, strict: bool = True,
               plate: str | None = None) -> Plate:
    """Read a plate: Opera Phenix / Operetta (Harmony), ImageXpress, Yokogawa CellVoyager, or a LoadData CSV.

    Parameters
    ----------
    path : path-like
        The plate folder, its ``Images/`` folder, the index file
        (``Index.idx.xml`` for Harmony 4-6, ``Index.xml`` for Harmony 7), or a
        LoadData CSV (see :func:`cpfeatures.io.read_load_data`), or an
        ImageXpress plate folder or its ``.HTD`` file (see
        :mod:`cpfeatures.io.imagexpress`; wavelength names from the HTD map to
        roles through ``[channels]``, wavelength numbers through ``[channel_ids]``),
        or a Yokogawa CellVoyager measurement folder or its ``MeasurementData.mlf``
        (see :mod:`cpfeatures.io.yokogawa`; the ``.mes`` channel ``Target`` names
        map through ``[channels]``).
        Harmony folders and LoadData CSVs may also be fsspec URLs
        (``s3://bucket/plate/``, ``https://...``): the index and the folder
        listing are read here, the images by whoever loads them (on a cluster,
        the workers); ``s3://`` without credentials is read anonymously.
        Without an index, the layout comes from the file names
        (``rRRcCCfFFpPP-chNskKfkKflL.tiff``) and a :class:`PlateWarning` says
        channel names are unknown.
    config : dict, optional
        Settings from :func:`cpfeatures.config.load_config`; its
        ``[channels]`` table maps Harmony channel names to roles (default:
        the CPJUMP1 Phenix mapping) and ``[channel_ids]`` maps channel numbers
        to roles when there is no index.
    strict : bool
        If True (default), files listed in the index but absent raise one
        :class:`PlateError` listing them all. If False they are recorded in
        ``Plate.missing_files`` and loading those sites fails with an
        :class:`ImageError` (a plate run records that site and goes on).
    plate : str, optional
        The plate to read from a LoadData CSV that lists several; for a Harmony
        folder, the plate it must be.

    Returns
    -------
    Plate

    Raises
    ------
    PlateError
        Unreadable or malformed index, missing files (strict), no images, an
        unparseable file name in fallback mode, images of different sizes.
    ImageError
        The first image is not a readable TIFF.
    """
    text = os.fspath(path) if not isinstance(path, bytes) else os.fsdecode(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # the tables keep paths as text: a path that is not text is refused by name
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise PlateError("the path is not valid UTF-8 (cpfeatures keeps image paths as text in its tables): "
                         "rename the folder", shown) from None
    remote = _fs.is_url(path)
    if str(path).lower().endswith(".csv"):
        return read_load_data(path, config=config, plate=plate, strict=strict)
    path = str(path) if remote else Path(_fs._local(path))
    attrs: dict = {}
    plate_rows = plate_cols = None
    if remote:
        problem = _fs.protocol_problem(path)
        if problem:
            raise PlateError(problem, path)
        yokogawa = imagexpress = None
        index_path, folder = _locate_url(path)
        index = parse_index(index_path)
        images, plate_id = index.images, index.plate_id
        attrs, plate_rows, plate_cols = index.attrs, index.plate_rows, index.plate_columns
    else:
        yokogawa = (path.parent if path.is_file() else path) if (path.name == MLF_NAME and path.is_file()) or \
                   (path.is_dir() and (path / MLF_NAME).is_file()) else None
        imagexpress = _imagexpress(path) if path.exists() and yokogawa is None else None
        if yokogawa is not None:
            folder, index_path = yokogawa, yokogawa / MLF_NAME
            plate_id, images, attrs, (plate_rows, plate_cols) = scan_yokogawa(folder)
        elif imagexpress is not None:
            folder, index_path = imagexpress
            htd = parse_htd(index_path) if index_path is not None else None
            plate_id, images, attrs = scan_imagexpress(folder, htd)
            if htd is not None:
                plate_rows = int(htd["YWells"][0]) if htd.get("YWells") else None
                plate_cols = int(htd["XWells"][0]) if htd.get("XWells") else None
            else:
                warnings.warn(f"{folder}: no .HTD file found; wavelength names are unknown (map wavelength numbers "
                              "to roles with [channel_ids] in the config)", PlateWarning, stacklevel=2)
        else:
            index_path, folder = _locate(path)
            if index_path is not None:
                index = parse_index(index_path)
                images = index.images
                plate_id = index.plate_id
                attrs, plate_rows, plate_cols = index.attrs, index.plate_rows, index.plate_columns
            else:
                images = scan_folder(folder)
                plate_id = (folder.parent if folder.name.lower() == "images" else folder).name
                warnings.warn(f"{folder}: no Harmony index found; plate layout taken from file names, channel names "
                              "are unknown (map channel numbers to roles with [channel_ids] in the config)",
                              PlateWarning, stacklevel=2)
    if not remote:
        folder = folder.absolute()  # image paths must work from any worker's working directory
    images = images.copy()
    for col, default in (("plane", 1), ("timepoint", 0), ("channel_name", None), ("pixel_size_um", np.nan)):
        if col not in images:
            images[col] = default
        elif default is not None:
            images[col] = images[col].fillna(default)
    images["well"] = [well_name(r, c) for r, c in zip(images["row"], images["col"])]
    images["role"] = _assign_roles(images, config, from_names=index_path is not None)
    images["path"] = [_fs.join(folder, u) for u in images["url"]] if remote else \
        [str(folder / u) for u in images["url"]]
    dupes = images.duplicated(["well", "field", "plane", "timepoint", "channel_id"])
    if dupes.any():
        first = images[dupes].iloc[0]
        raise PlateError(f"{int(dupes.sum())} duplicate image entries (first: {first['url']})", index_path or folder)

    on_disk = set(_fs.listdir(folder)) if remote else {p.name for p in folder.iterdir()}
    listed = [u for u in images["url"]]
    # one listing of the folder, not one request per image (27,648 of them on a full plate)
    missing = sorted(u for u in listed if Path(u).name not in on_disk and not _fs.exists(_fs.join(folder, u)))
    listed_names = {Path(u).name for u in listed}
    # an ImageXpress folder's list comes from the files themselves (thumbnails are left out on purpose)
    # (a CellVoyager folder also holds its shading and dark-current images, SC_* and DC_*)
    extra = [] if imagexpress is not None else \
        sorted(n for n in on_disk if Path(n).suffix.lower() in TIFF_SUFFIXES and n not in listed_names
               and not (yokogawa is not None and n.startswith(("SC_", "DC_"))))
    if missing and strict:
        shown = ", ".join(missing[:20]) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
        raise PlateError(f"{len(missing)} image file(s) listed in the index are missing: {shown}",
                         index_path or folder)
    if len(missing) == len(listed):
        raise PlateError("none of the images listed in the index exist", index_path or folder)

    # Shape: from the index when it says, checked against the first file's header.
    present = images[~images["url"].isin(missing)]
    first_path = present["path"].iloc[0]
    shape, dtype = read_header(first_path)
    shape = tuple(s for s in shape if s != 1)
    if len(shape) != 2:
        raise ImageError(f"expected single-plane 2-D images, got shape {shape}", first_path)
    if "size_x" in images and images["size_x"].notna().any():
        sizes = images[["size_y", "size_x"]].dropna().drop_duplicates()
        if len(sizes) > 1:
            raise PlateError(f"the index lists images of different sizes: "
                             f"{', '.join(f'{int(y)}x{int(x)}' for y, x in sizes.values)}", index_path)
        declared = tuple(int(v) for v in sizes.iloc[0])
        if declared != shape:
            raise ImageError(f"image is {shape[0]}x{shape[1]} but the index says {declared[0]}x{declared[1]}",
                             first_path)
    if imagexpress is not None:  # the pixel size is in the MetaSeries XML of every TIFF
        images["pixel_size_um"] = metaseries_pixel_size(first_path)
    ordered = ["row", "col", "well", "field", "plane", "timepoint", "channel_id", "channel_name", "role", "path",
               "url", "pixel_size_um", "position_x_um", "position_y_um", "position_z_um", "excitation_nm",
               "emission_nm", "exposure_s"]
    columns = [c for c in ordered if c in images] + [c for c in images if c not in ordered]
    images = images[columns].sort_values(["row", "col", "field", "plane", "timepoint", "channel_id"])
    if plate is not None and str(plate) != str(plate_id):
        raise PlateError(f"--plate {plate}: this folder holds plate {plate_id}", index_path or folder)
    return Plate(
        plate_id=str(plate_id),
        root=folder,
        index_path=index_path,
        images=images.reset_index(drop=True),
        image_shape=(int(shape[0]), int(shape[1])),
        dtype=np.dtype(dtype),
        missing_files=missing,
        extra_files=extra,
        attrs=attrs,
        plate_rows=plate_rows,
        plate_columns=plate_cols,
    )
