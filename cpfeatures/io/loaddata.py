"""CellProfiler's LoadData CSV as a plate, and CellProfiler's ``.npy`` illumination functions.

A LoadData CSV (``load_data.csv``, ``load_data_with_illum.csv`` as the JUMP Cell Painting
Gallery ships them) has one row per site: ``Metadata_Plate``, ``Metadata_Well``,
``Metadata_Site``, and per channel ``FileName_Orig<Ch>`` with ``PathName_Orig<Ch>`` (or one
``URL_Orig<Ch>``). ``FileName_Illum<Ch>`` / ``PathName_Illum<Ch>`` name the channel's
illumination function, a 2-D ``.npy`` array that CellProfiler's CorrectIlluminationApply
divides the image by. Other ``Metadata_*`` columns are the site's own and go into its Image row.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from ..errors import ConfigError, ImageError, PlateError
from . import fs as _fs
from .plate import Plate, well_name
from .tiff import read_header

#: LoadData channel columns: FileName_/PathName_/URL_ + image name; "Orig" names the raw image.
_CHANNEL = re.compile(r"^(FileName|PathName|URL)_(.+)$")
_WELL = re.compile(r"^\s*(?:([A-Za-z]{1,2})\s*0*(\d{1,3})|r0*(\d+)c0*(\d+))\s*$")
#: the columns that name a site; the other Metadata_* columns are carried into its Image row
SITE_COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")


def _role(image_name: str) -> str:
    return image_name[4:] if image_name.startswith("Orig") and len(image_name) > 4 else image_name


def _row_col(well: str, csv: Path) -> tuple[int, int]:
    m = _WELL.match(str(well))
    if not m:
        raise PlateError(f"Metadata_Well {well!r} is not a well name (A01, P24, AA48 or r01c01)", csv)
    if m.group(1):
        letters = m.group(1).upper()
        row = 0
        for ch in letters:
            row = row * 26 + ord(ch) - 64
        return row, int(m.group(2))
    return int(m.group(3)), int(m.group(4))


def _location(value: str, base: str, csv) -> str:
    """An image's location from a CSV cell: a local path, a ``file://`` URL or any fsspec URL
    (``s3://...``, as the Cell Painting Gallery's CSVs have); relative to the CSV's folder."""
    if _fs.is_url(value):
        problem = _fs.protocol_problem(value)
        if problem:
            raise PlateError(f"image URL {value!r}: {problem}", csv)
        return value
    parsed = urlparse(value)
    path = unquote(parsed.path) if parsed.scheme == "file" else value
    if _fs.is_url(base):
        return path if os.path.isabs(path) else _fs.join(base, path)
    return path if os.path.isabs(path) else os.path.join(base, path)


def _channel_paths(frame: pd.DataFrame, name: str, csv) -> pd.Series:
    """The location of image ``name`` on every row, from URL_ or PathName_ + FileName_."""
    base = _fs.parent(csv) if _fs.is_url(csv) else str(Path(csv).parent.absolute())
    if f"FileName_{name}" in frame:
        files = frame[f"FileName_{name}"]
        if f"PathName_{name}" in frame:
            folders = frame[f"PathName_{name}"]
        elif f"URL_{name}" not in frame:
            folders = pd.Series([""] * len(frame), index=frame.index)
        else:
            folders = None
        if folders is not None:
            out = []
            for folder, file in zip(folders, files):
                if pd.isna(file) or str(file) == "":
                    out.append(None)
                    continue
                folder = "" if pd.isna(folder) else str(folder)
                where = _location(folder, base, csv) if folder else base
                out.append(_fs.join(where, str(file)) if _fs.is_url(where) else os.path.join(where, str(file)))
            return pd.Series(out, index=frame.index)
    urls = frame[f"URL_{name}"]
    out = [None if (pd.isna(u) or str(u) == "") else _location(str(u), base, csv) for u in urls]
    return pd.Series(out, index=frame.index)


def load_data_plates(path: str | os.PathLike) -> list[str]:
    """The plates a LoadData CSV lists (``Metadata_Plate``), in order of first appearance."""
    csv = _csv_location(path)
    frame = _read_csv(csv, usecols=lambda c: c == "Metadata_Plate")
    return list(dict.fromkeys(frame["Metadata_Plate"])) if "Metadata_Plate" in frame else []


def _csv_location(path) -> str | Path:
    return str(path) if _fs.is_url(path) else Path(_fs._local(path))


def _read_csv(csv, **kwargs) -> pd.DataFrame:
    try:
        data = _fs.read_bytes(csv)
    except (FileNotFoundError, IsADirectoryError):
        raise PlateError("LoadData CSV does not exist", csv) from None
    except OSError as exc:
        raise PlateError(f"cannot read the LoadData CSV ({' '.join(str(exc).split())})", csv) from None
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise PlateError(f"not a readable LoadData CSV ({' '.join(str(exc).split())})", csv) from None


def read_load_data(path: str | os.PathLike, config: dict | None = None, plate: str | None = None,
                   strict: bool = True) -> Plate:
    """Read a CellProfiler LoadData CSV as a :class:`~cpfeatures.io.Plate`.

    Parameters
    ----------
    path : path-like
        The CSV. Relative ``PathName_`` folders are relative to the CSV's folder.
    config : dict, optional
        Settings; its ``[channels]`` table may rename LoadData image names
        (``OrigDNA`` or ``DNA``) to roles. By default the role is the image name
        without ``Orig`` (``FileName_OrigDNA`` -> ``DNA``), as in the CPJUMP1 pipelines.
    plate : str, optional
        The ``Metadata_Plate`` to read when the CSV lists several.
    strict : bool
        If True, listed images that are absent raise one :class:`PlateError`;
        if False they are recorded in ``Plate.missing_files`` and their sites fail.

    Returns
    -------
    Plate
        ``index_path`` is the CSV; ``illum_files`` maps roles to the CSV's
        ``FileName_Illum<Ch>`` functions (empty without them); the other
        ``Metadata_*`` columns are in ``images``.

    Raises
    ------
    PlateError
        No channel or site columns, several plates and none chosen, an unknown
        plate, a bad well name, a site listed twice, missing images (strict), or
        illumination functions that differ between sites of one plate.

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(d / "a.tif", np.zeros((8, 8), np.uint16))
    >>> _ = (d / "load_data.csv").write_text(
    ...     "Metadata_Plate,Metadata_Well,Metadata_Site,FileName_OrigDNA,PathName_OrigDNA\\n"
    ...     f"P1,A01,1,a.tif,{d}\\n")
    >>> read_load_data(d / "load_data.csv")
    Plate('P1': 1 wells x 1 fields x 1 planes x 1 channels, 8x8 uint16)
    """
    csv = _csv_location(path)
    frame = _read_csv(csv)
    missing_cols = [c for c in SITE_COLUMNS if c not in frame]
    if "Metadata_Site" in missing_cols and "Metadata_Field" in frame:
        frame["Metadata_Site"] = frame["Metadata_Field"]
        missing_cols.remove("Metadata_Site")
    if missing_cols:
        raise PlateError(f"a LoadData CSV needs the columns {', '.join(SITE_COLUMNS)}; "
                         f"missing {', '.join(missing_cols)}", csv)
    if frame.empty:
        raise PlateError("the LoadData CSV has no rows", csv)
    plates = list(dict.fromkeys(frame["Metadata_Plate"]))
    if plate is None and len(plates) > 1:
        raise PlateError(f"the CSV lists {len(plates)} plates ({', '.join(plates[:10])}"
                         f"{', ...' if len(plates) > 10 else ''}): choose one with --plate (one store per plate)", csv)
    plate = plates[0] if plate is None else str(plate)
    if plate not in plates:
        raise PlateError(f"plate {plate!r} is not in the CSV (plates: {', '.join(plates[:10])})", csv)
    frame = frame[frame["Metadata_Plate"] == plate].reset_index(drop=True)

    names = list(dict.fromkeys(m.group(2) for c in frame.columns if (m := _CHANNEL.match(c))))
    illum_names = [n for n in names if n.startswith("Illum")]
    image_names = [n for n in names if not n.startswith("Illum")
                   and (f"FileName_{n}" in frame or f"URL_{n}" in frame)]
    # a channel named by a PathName_ column alone cannot be found: never drop it without a word
    lost = [n for n in names if n not in image_names and f"FileName_{n}" not in frame and f"URL_{n}" not in frame]
    if lost:
        raise PlateError(f"PathName_{lost[0]} has no FileName_{lost[0]} (nor URL_{lost[0]}) column: the "
                         f"{_role(lost[0])} images cannot be found", csv)
    if not image_names:
        raise PlateError("no image columns (FileName_Orig<Ch> with PathName_Orig<Ch>, or URL_Orig<Ch>)", csv)
    by_name = (config or {}).get("channels", {}) or {}
    roles = {n: by_name.get(n, _role(n)) for n in image_names}
    clash = pd.Series(list(roles.values())).duplicated()
    if clash.any():
        raise ConfigError(f"{csv}: image names {image_names} map to the same role "
                          f"{sorted(set(pd.Series(list(roles.values()))[clash]))}")

    try:
        fields = frame["Metadata_Site"].astype(int)
    except ValueError:
        raise PlateError("Metadata_Site must be a whole number on every row", csv) from None
    rc = [_row_col(w, csv) for w in frame["Metadata_Well"]]
    wells = [well_name(r, c) for r, c in rc]
    site_ids = pd.Series([f"{w}_f{f}" for w, f in zip(wells, fields)])
    dupes = site_ids[site_ids.duplicated()]
    if len(dupes):
        raise PlateError(f"{len(dupes)} site(s) listed twice for plate {plate} (first: {dupes.iloc[0]})", csv)

    extra = [c for c in frame.columns if c.startswith("Metadata_") and c not in SITE_COLUMNS
             and c != "Metadata_Field"]
    parts = []
    for cid, name in enumerate(image_names, start=1):
        part = pd.DataFrame({
            "row": [r for r, _ in rc], "col": [c for _, c in rc], "well": wells, "field": fields.to_numpy(),
            "plane": 1, "timepoint": 0, "channel_id": cid, "channel_name": name, "role": roles[name],
            "path": _channel_paths(frame, name, csv).to_numpy(),
        })
        for col in extra:
            part[col] = frame[col].to_numpy()
        parts.append(part[part["path"].notna()])
    images = pd.concat(parts, ignore_index=True)
    images["url"] = images["path"]
    images["pixel_size_um"] = np.nan

    illum_files = {}
    for name in illum_names:
        role = _role(name[len("Illum"):]) if name[len("Illum"):] else name
        role = by_name.get(f"Orig{role}", role)
        paths = _channel_paths(frame, name, csv).dropna().unique()
        if len(paths) > 1:
            raise PlateError(f"{name}: {len(paths)} different illumination functions for plate {plate} "
                             f"(one per channel and plate expected: {paths[0]}, {paths[1]}, ...)", csv)
        if len(paths):
            illum_files[role] = str(paths[0])

    there = _fs.present(images["path"].unique())  # one listing per folder, not one request per image
    missing = sorted(p for p in images["path"].unique() if p not in there)
    if missing and strict:
        shown = ", ".join(missing[:20]) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
        raise PlateError(f"{len(missing)} image file(s) listed in the CSV are missing: {shown}", csv)
    if len(missing) == images["path"].nunique():
        raise PlateError("none of the images listed in the CSV exist", csv)
    present = images[~images["path"].isin(set(missing))]
    first_path = present["path"].iloc[0]
    shape, dtype = read_header(first_path)
    shape = tuple(s for s in shape if s != 1)
    if len(shape) != 2:
        raise ImageError(f"expected single-plane 2-D images, got shape {shape}", first_path)
    images = images.sort_values(["row", "col", "field", "channel_id"]).reset_index(drop=True)
    remote = _fs.is_url(csv)
    return Plate(plate_id=plate, root=_fs.parent(csv) if remote else csv.parent.absolute(),
                 index_path=csv if remote else csv.absolute(), images=images,
                 image_shape=(int(shape[0]), int(shape[1])), dtype=np.dtype(dtype), missing_files=missing,
                 attrs={"source": "LoadData", "csv": csv if remote else str(csv.absolute())},
                 illum_files=illum_files)


def read_illum_files(source: str | os.PathLike | dict, roles, shape: tuple[int, int],
                     plate: str | None = None) -> dict[str, np.ndarray]:
    """Load CellProfiler illumination functions (``.npy``, or ``.npy.gz``) for ``roles``.

    Parameters
    ----------
    source : path-like, URL or dict
        A folder (or fsspec URL prefix) of ``*Illum<Role>.npy`` files (the JUMP Gallery's naming,
        ``<plate>_IllumDNA.npy``; gzipped ``*Illum<Role>.npy.gz`` are read as well; files of
        ``plate`` are preferred when the folder holds several plates), a LoadData CSV with
        ``FileName_Illum<Ch>`` columns, or a dict role -> file.
    roles : list of str
        The channels the run corrects; each needs a function.
    shape : tuple of int
        The plate's image shape; every function must have it (checked on the file's
        ``.npy`` header before its data is read).
    plate : str, optional
        The plate, to pick its rows / files.

    Returns
    -------
    dict of str to ndarray
        Role -> float32 function.

    Raises
    ------
    PlateError
        A role without a function (for a folder, every file in it is named with why it was
        not taken), a folder with several candidates for one.
    ImageError
        A file that is not a 2-D ``.npy`` array of the plate's shape (a header claiming
        another shape is refused without reading the data), has a dtype other than
        integers or floats, or has non-positive or non-finite values (the image is divided by it).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> np.save(d / "P1_IllumDNA.npy", np.ones((8, 8), np.float32))
    >>> read_illum_files(d, ["DNA"], (8, 8))["DNA"].shape
    (8, 8)
    >>> read_illum_files(d, ["DNA", "RNA"], (8, 8))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cpfeatures.errors.PlateError: ...: no illumination function for channel(s) RNA (have: DNA); ... (DNA's); ...
    """
    if isinstance(source, dict):
        files = {r: str(p) for r, p in source.items()}
        where, why = None, ""
    else:
        where = _csv_location(source)
        if str(where).lower().endswith(".csv") and _fs.isfile(where):
            files, why = _illum_from_csv(where, plate)
        elif _fs.isdir(where):
            files, why = _illum_from_folder(where, roles, plate)
        else:
            raise PlateError("illumination functions: expected a folder of *Illum<Channel>.npy files or a "
                             "LoadData CSV with FileName_Illum<Channel> columns", where)
    lacking = [r for r in roles if r not in files]
    if lacking:
        raise PlateError(f"no illumination function for channel(s) {', '.join(lacking)}"
                         f" (have: {', '.join(sorted(files)) or 'none'}){why}", where)
    out = {}
    for role in roles:
        out[role] = _load_function(files[role], shape)
    return out


#: a folder's file names that are illumination functions: <anything>Illum<Channel>.npy, gzipped or not
_ILLUM_NAME = re.compile(r"^(?P<prefix>.*)Illum(?P<role>.+?)\.npy(?P<gz>\.gz)?$")


def _illum_from_csv(csv, plate: str | None) -> tuple[dict, str]:
    """Role -> function file from a LoadData CSV's FileName_Illum columns, and why some may be missing."""
    plates = load_data_plates(csv)
    if plate is not None and plate not in plates:
        return {}, f"; the CSV lists no rows of plate {plate} (plates: {', '.join(map(str, plates[:10]))})"
    files = dict(read_load_data(csv, plate=plate, strict=False).illum_files)
    return files, "" if files else "; the CSV has no FileName_Illum<Channel> columns"


def _illum_from_folder(where, roles, plate: str | None) -> tuple[dict, str]:
    """Role -> function file from a folder's ``*Illum<Role>.npy[.gz]``, and what every other file there is."""
    names = sorted(_fs.listdir(where))
    files, taken = {}, {}
    for role in roles:
        candidates = [n for n in names if (m := _ILLUM_NAME.match(n)) and m["role"] == role]
        if plate is not None and len(candidates) > 1:
            own = [n for n in candidates if n.startswith(str(plate))]
            for n in candidates:
                if own and n not in own:
                    taken[n] = f"another plate's (this plate is {plate})"
            candidates = own or candidates
        if len(candidates) > 1:
            raise PlateError(f"{len(candidates)} files are channel {role}'s function ({', '.join(candidates[:4])}): "
                             f"keep one (or name the plate's {plate or '<plate>'}_Illum{role}.npy)", where)
        if candidates:
            files[role] = _fs.join(where, candidates[0])
            taken[candidates[0]] = f"{role}'s"
    if all(r in files for r in roles):
        return files, ""
    if not names:
        return files, "; the folder is empty"
    shown = [f"{n} ({taken.get(n) or _not_taken(n, roles)})" for n in names[:12]]
    more = f", ... ({len(names) - 12} more)" if len(names) > 12 else ""
    return files, (f"; the folder holds {len(names)} file(s): {', '.join(shown)}{more}; a channel's function is "
                   "found as <anything>Illum<Channel>.npy or .npy.gz, the channel named as the run names it")


def _not_taken(name: str, roles) -> str:
    """Why a file of an illumination folder is no channel's function."""
    m = _ILLUM_NAME.match(name)
    if m:
        same = [r for r in roles if r.lower() == m["role"].lower()]
        if same:
            return f"channel {m['role']!r} is not {same[0]!r}: names are case-sensitive"
        return f"channel {m['role']!r} is not one this run corrects ({', '.join(roles)})"
    if re.match(_ILLUM_NAME.pattern, name, re.IGNORECASE):
        return "named <anything>Illum<Channel>.npy but in other letter case (names are case-sensitive)"
    lower = name.lower()
    if lower.endswith((".npy", ".npy.gz")):
        return "not named <anything>Illum<Channel>.npy"
    if lower.endswith((".npz", ".npy.bz2", ".npy.xz", ".npy.zip", ".mat", ".tif", ".tiff", ".png")):
        return "not a .npy (or .npy.gz) file: cpfeatures reads CellProfiler's .npy functions"
    return "not a .npy file"


#: the most bytes a .npy header may claim (numpy writes a few hundred)
_NPY_HEADER_MAX = 1 << 16


def _load_function(path: str, shape: tuple[int, int]) -> np.ndarray:
    """One function: its ``.npy`` header is checked against ``shape`` before its data is read."""
    import zlib

    try:
        with _fs.open_binary(path, partial=True) as raw:
            stream = _gunzip(raw, path)
            header_bytes, nbytes, (dims, fortran, dtype) = _npy_header(stream, path, shape)
            if not _fs.is_url(path):
                body = _read_exact(stream, nbytes, path)
        if _fs.is_url(path):  # the header came in one small request; the rest in one more
            body = _remote_body(path, header_bytes, nbytes)
    except FileNotFoundError:
        raise ImageError("illumination function file does not exist", path) from None
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise ImageError(f"not a readable .npy array ({' '.join(str(exc).split())[:300]})", path) from None
    data = np.frombuffer(body, dtype=dtype).reshape(dims, order="F" if fortran else "C")
    data = np.squeeze(data).astype(np.float32)
    if not np.isfinite(data).all() or (data <= 0).any():
        raise ImageError("illumination function has non-finite or non-positive values (images are divided by it)",
                         path)
    return data


def _gunzip(stream, path: str):
    """``stream``, decompressed when ``path`` ends in ``.gz`` (read as it is decompressed: never all at once)."""
    if not str(path).lower().endswith(".gz"):
        return stream
    import gzip

    return gzip.GzipFile(fileobj=stream, mode="rb")


def _read_exact(stream, n: int, path: str, what: str = "array data") -> bytes:
    """Exactly ``n`` bytes of ``stream`` (a truncated file is a ValueError naming what is short)."""
    chunks, have = [], 0
    while have < n:
        chunk = stream.read(min(n - have, 1 << 24))
        if not chunk:
            raise ValueError(f"truncated: the header announces {n} bytes of {what}, the file has {have}")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def _npy_header(stream, path: str, shape: tuple[int, int]):
    """Read and check a ``.npy`` header: ``(its bytes, the data's size, (shape, fortran order, dtype))``.

    Nothing but the header is read: a shape other than the plate's (say a header edited to claim
    400000x500000 float32, 745 GiB) or a dtype that is not numbers is refused here, naming it.
    """
    import math
    import struct

    from numpy.lib import format as npy

    magic = _read_exact(stream, npy.MAGIC_LEN, path, "header")
    major, minor = npy.read_magic(io.BytesIO(magic))  # ValueError: not a .npy file
    if (major, minor) not in ((1, 0), (2, 0)):
        raise ImageError(f".npy format version {major}.{minor} is not read (an illumination function is a plain "
                         "numeric array: numpy writes format 1.0 or 2.0)", path)
    length_bytes = _read_exact(stream, 2 if major == 1 else 4, path, "header")
    length = struct.unpack("<H" if major == 1 else "<I", length_bytes)[0]
    if length > _NPY_HEADER_MAX:
        raise ImageError(f"the .npy header claims to be {length} bytes long (numpy writes a few hundred; "
                         f"at most {_NPY_HEADER_MAX} are read): not an illumination function", path)
    header = _read_exact(stream, length, path, "header")
    reader = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
    dims, fortran, dtype = reader(io.BytesIO(length_bytes + header), max_header_size=_NPY_HEADER_MAX)
    dims = tuple(int(d) for d in dims)
    nbytes = math.prod(dims) * dtype.itemsize if all(d >= 0 for d in dims) else -1
    squeezed = tuple(d for d in dims if d != 1)
    if squeezed != tuple(shape):
        raise ImageError(f"illumination function is {'x'.join(map(str, squeezed)) or 'one value'}, the plate's "
                         f"images are {shape[0]}x{shape[1]} (from the .npy header: shape {dims}, {dtype}"
                         f"{f', {_human(nbytes)}' if nbytes >= 0 else ''}; its data was not read)", path)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
            or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ImageError(f"illumination function has dtype {dtype} (integers or floats expected; "
                         "its data was not read)", path)
    return magic + length_bytes + header, nbytes, (dims, fortran, dtype)


def _remote_body(url: str, header_bytes: bytes, nbytes: int) -> bytes:
    """The data of a remote ``.npy`` (``.gz``) whose header was checked: one request, bounded by the header."""
    info = _fs._info(url, None) or {}
    size, bound = info.get("size"), len(header_bytes) + nbytes + nbytes // 100 + (1 << 16)
    if size is not None and int(size) > bound:
        raise ImageError(f"the file is {_human(int(size))}, its .npy header announces {_human(nbytes)} of data: "
                         "not read", url)
    stream = _gunzip(io.BytesIO(_fs.read_bytes(url)), url)
    _read_exact(stream, len(header_bytes), url, "header")
    return _read_exact(stream, nbytes, url)


def _human(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
