"""The store's on-disk names, codecs, checksums, errors and recorded settings: what every reader and writer
of a store shares.

The layout itself is documented once, in ``docs/store.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib

import numpy as np

from ..errors import CpfeaturesError
from ..io import parse_site_key
from ..pipeline import OBJECT_TABLES

LAYOUT_VERSION = 1
#: The compartments of a single-cell row, in column order (pycytominer's merge order).
SINGLE_CELL_ORDER = ("Cells", "Cytoplasm", "Nuclei")
_TABLE_ALIASES = {t.lower(): t for t in (*OBJECT_TABLES, "Image")}
META = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
#: ``[store] codec`` values: zarr's default (zstd), gzip (read by more tools), or no compression.
CODECS = ("zstd", "gzip", "none")
#: Nodes left out of the consolidated metadata: the run's lock (removed when the run ends).
_NOT_CONSOLIDATED = ("lock",)


def dimension_names(name: str) -> tuple[str, str]:
    """Zarr ``dimension_names`` of a stored array: ``"Cells"`` -> ``("Cells_object", "Cells_feature")``.

    Image rows are ``("Image_row", "Image_feature")``; label images and illumination
    functions (``"labels/Nuclei"``, ``"illum"``) are ``("y", "x")``.
    """
    if name == "Image":
        return "Image_row", "Image_feature"
    if name in OBJECT_TABLES:
        return f"{name}_object", f"{name}_feature"
    return "y", "x"


def compressors(codec: str = "zstd", level: int | None = None) -> list:
    """The zarr compressors of a ``[store] codec`` (``level`` None: the codec's default).

    Examples
    --------
    >>> compressors("gzip", 6)
    [GzipCodec(level=6)]
    >>> compressors("none")
    []
    """
    from zarr.codecs import GzipCodec, ZstdCodec

    if codec == "zstd":  # level 0 is zstd's own default (3): what zarr writes without being asked
        # each frame carries its own checksum: a corrupted chunk fails to decode, naming itself
        return [ZstdCodec(level=0 if level is None else int(level), checksum=True)]
    if codec == "gzip":
        return [GzipCodec() if level is None else GzipCodec(level=int(level))]
    if codec == "none":
        return []
    raise StoreError(f"unknown codec {codec!r}; codecs are {', '.join(CODECS)}")


class StoreError(CpfeaturesError):
    """A store is missing, of another layout, or asked for a table it does not have."""


class DamagedStoreError(StoreError):
    """A committed site (or the illumination functions) differs from what was written.

    Raised by every reader instead of reading the damage as if it were data: a deleted chunk
    (Zarr would give its fill value), a corrupted one, a truncated metadata file. The message
    names the site and the array; ``cpfeatures verify`` lists every damaged site, ``cpfeatures
    run --verify`` writes them again, and readers given ``skip_damaged`` leave them out.
    """

    #: The exit status of a command that stops on it: the store is there, part of it is not.
    exit_code = 1


def damaged(url: str, key: str, problem: str) -> DamagedStoreError:
    """The error of a damaged site ``key`` (``"illum"``: the illumination functions)."""
    if key == "illum":
        return DamagedStoreError(f"the illumination functions are damaged ({problem}): `cpfeatures run --verify` "
                                 "computes them again", url)
    return DamagedStoreError(f"site {key} is damaged ({problem}): `cpfeatures verify` lists the damage, `cpfeatures "
                             "run --verify` writes it again, or read without it (--skip-damaged)", url)


def array_problem(values: np.ndarray, recorded: dict | None) -> str | None:
    """Why an array read back is not the one written (its recorded shape and CRC-32), or None."""
    if not recorded:
        return None
    if list(values.shape) != list(recorded["shape"]):
        return f"shape {list(values.shape)} but {recorded['shape']} was written"
    if checksum(values.astype(recorded.get("dtype", values.dtype), copy=False)) != recorded["crc32"]:
        return "content differs from its checksum (a chunk is missing or corrupt)"
    return None


class StoreWriteError(StoreError):
    """Writing to the store failed (disk full, permissions, network): the site stays uncommitted.

    The message names the store and the cause; a rerun resumes once the cause is fixed.
    """


def write_failure(url: str, what: str, exc: BaseException) -> StoreWriteError:
    cause = f"{exc.strerror} (errno {exc.errno})" if isinstance(exc, OSError) and exc.strerror else \
        (" ".join(str(exc).split()) or type(exc).__name__)
    return StoreWriteError(f"cannot write {what}: {cause}", url)


def checksum(values: np.ndarray) -> str:
    """CRC-32 of an array's bytes in C order, as recorded in a site's ``arrays`` attribute."""
    return f"{zlib.crc32(np.ascontiguousarray(values).view(np.uint8).reshape(-1)):08x}"



def site_order(key: str) -> tuple[str, int]:
    """Sort key of a site group's name: plate order (well, then field number); other names by name."""
    try:
        return tuple(parse_site_key(key))
    except ValueError:
        return str(key), 0


def digest(columns: list[str]) -> str:
    return hashlib.sha1("\x1f".join(columns).encode()).hexdigest()[:16]



def table_name(name: str, url: str) -> str:
    """A table's stored name from any case (``"cells"`` -> ``"Cells"``); an unknown one is refused."""
    table = _TABLE_ALIASES.get(str(name).lower())
    if table is None:
        raise StoreError(f"unknown table {name!r}; tables are image, nuclei, cells, cytoplasm", url)
    return table


def jsonable(value):
    """``value`` as JSON types (numpy scalars as numbers, anything else as text)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def store_settings(config_toml: str) -> dict:
    """The ``[store]`` settings of a recorded config: ``{"codec": ..., "level": ...}``."""
    import tomllib

    try:
        table = tomllib.loads(config_toml).get("store", {})
    except tomllib.TOMLDecodeError:
        table = {}
    table = table if isinstance(table, dict) else {}
    return {"codec": str(table.get("codec", "zstd")), "level": table.get("level")}


def local_zarr_kind(path) -> str | None:
    """What a local folder holds: ``"anndata"`` (AnnData written as Zarr), ``"group"`` (any other
    Zarr v3 group, e.g. a store) or None (not a local Zarr group).

    Read from the group's own ``zarr.json``; nothing is opened with zarr.
    """
    root = os.path.join(os.fspath(path), "zarr.json")
    if not os.path.isfile(root):
        return None
    try:
        with open(root, encoding="utf-8") as fh:
            attributes = json.load(fh).get("attributes", {})
    except (OSError, ValueError):
        return "group"
    return "anndata" if attributes.get("encoding-type") == "anndata" else "group"


def same_settings(stored: str, given: str) -> bool:
    """Settings recorded before ``[store]`` existed equal the same settings with the default ``[store]``.

    Such stores were written with zstd at zarr's default level, which is what the default
    ``[store]`` says: resuming them is allowed (the recorded text stays as it was).
    """
    import tomllib

    try:
        old, new = tomllib.loads(stored), tomllib.loads(given)
    except tomllib.TOMLDecodeError:
        return False
    if "store" in old or store_settings(given) != store_settings(""):
        return False
    return {k: v for k, v in new.items() if k != "store"} == old


def settings_differ(stored: str, given: str, most: int = 3) -> str:
    """Which settings differ between a store's recorded TOML and a run's: ``[table] key: old -> new``."""
    import tomllib

    def flat(table: dict, where: str = "") -> dict:
        out = {}
        for key, value in table.items():
            name = f"{where}.{key}" if where else key
            out.update(flat(value, name) if isinstance(value, dict) else {name: value})
        return out

    try:
        old, new = flat(tomllib.loads(stored)), flat(tomllib.loads(given))
    except tomllib.TOMLDecodeError:
        return "the store's recorded settings cannot be read"
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    shown = []
    for key in keys[:most]:
        table, _, name = key.rpartition(".")
        where = f"[{table}] {name}" if table else name
        shown.append(f"{where}: {old.get(key, '(not set)')!r} in the store, {new.get(key, '(not set)')!r} now")
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return "; ".join(shown) + more if shown else "the same values written differently"


def refuse_foreign_folder(url: str) -> None:
    """Never write into a local folder that holds other things than a Zarr hierarchy."""
    if "://" in url and not url.startswith("file://"):
        return
    path = url[len("file://"):] if url.startswith("file://") else url
    if os.path.isfile(path):
        raise StoreError("is a file, not a store folder", path)
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "zarr.json")):
        if os.path.exists(os.path.join(path, ".zgroup")) or os.path.exists(os.path.join(path, ".zarray")):
            raise StoreError("is a Zarr v2 store, not a cpfeatures store; choose a new output path", path)
        if any(True for _ in os.scandir(path)):
            raise StoreError("folder exists and is not a cpfeatures store; choose a new output path", path)
