"""The single-cell Zarr store: one per run, written one site at a time.

Layout (Zarr v3; readable with plain ``zarr`` + ``pandas``, see the README)::

    OUT.zarr/
      zarr.json                      root attributes under "cpfeatures": layout version,
                                     plate id, package version, the run's config (TOML
                                     text), the tables' names
      illum/<Role>                   float32 (H, W) illumination function per channel
      columns/<digest>               group whose attribute "columns" lists a table's
                                     column names (shared by every site with that list)
      sites/<Well>_f<Field>/         one group per site, written atomically:
        Image                        float64 (1, F) the site's Image-table row
        Nuclei, Cells, Cytoplasm     float64 (n_objects, F) per-object tables
        labels/<Objects>             int32 (H, W) label images (only with --save-labels)
        attributes: plate, well, site (field), columns {table: digest}, counts,
                    image metadata (file names), "complete": true  <- written last
      errors/<Well>_f<Field>         group whose attributes describe why a site failed

Atomicity: a site's arrays are written first, the ``complete`` attribute last.
Readers and resumed runs only see sites whose group says ``complete``; an
incomplete group (a worker killed mid-write) is deleted and written again, so
a site is never half-present or duplicated. Workers never write the same key:
each site owns its group, and ``columns/<digest>`` content is identical
whoever writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import zarr

from . import __version__
from .errors import CpfeaturesError

__all__ = ["Store", "open_store", "read_table", "read_table_dask", "export", "site_key", "OBJECT_TABLES",
           "StoreError"]

LAYOUT_VERSION = 1
OBJECT_TABLES = ("Nuclei", "Cells", "Cytoplasm")
_TABLE_ALIASES = {t.lower(): t for t in (*OBJECT_TABLES, "Image")}
META = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]


class StoreError(CpfeaturesError):
    """A store is missing, of another layout, or asked for a table it does not have."""


def site_key(well: str, field: int) -> str:
    """Group name of a site: ``"D08_f5"``."""
    return f"{well}_f{int(field)}"


def _digest(columns: list[str]) -> str:
    return hashlib.sha1("\x1f".join(columns).encode()).hexdigest()[:16]


@dataclass
class SiteTables:
    """What one site contributes to the store.

    Attributes
    ----------
    tables : dict of str to DataFrame
        ``Image`` (one row) and ``Nuclei``/``Cells``/``Cytoplasm`` (one row per
        object), numeric columns only, column names with their compartment
        prefix (``Cells_AreaShape_Area``) and ``ObjectNumber`` first.
    image_metadata : dict
        Non-numeric Image-table values (file names, ...).
    labels : dict of str to ndarray, optional
        Label images to keep.
    """

    tables: dict[str, pd.DataFrame]
    image_metadata: dict
    labels: dict[str, np.ndarray] | None = None


class Store:
    """A cpfeatures single-cell store (see the module docstring for the layout).

    Parameters
    ----------
    url : str or path-like
        Local path or fsspec URL (``s3://bucket/run.zarr``).
    mode : {"r", "a"}
        Read only, or read/write (created if absent).
    storage_options : dict, optional
        Passed to fsspec for remote URLs.
    """

    def __init__(self, url: str | os.PathLike, mode: str = "r", storage_options: dict | None = None):
        url = os.fspath(url)
        # Local paths are made absolute: workers of a cluster may run in another directory.
        self.url = url if "://" in url else os.path.abspath(url)
        kwargs = {"storage_options": storage_options} if storage_options else {}
        try:
            if mode == "r":
                self.root = zarr.open_group(self.url, mode="r", **kwargs)
            else:
                self.root = zarr.open_group(self.url, mode="a", **kwargs)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError if hasattr(zarr.errors, "GroupNotFoundError")
                else FileNotFoundError):
            raise StoreError("no cpfeatures store here", self.url) from None
        except Exception as exc:  # zarr raises several types for "not a zarr group"
            raise StoreError(f"cannot open store ({type(exc).__name__}: {exc})", self.url) from None
        meta = self.root.attrs.get("cpfeatures")
        if meta is None:
            if mode == "r":
                raise StoreError("not a cpfeatures store (no 'cpfeatures' attribute)", self.url)
        elif meta.get("layout_version", 0) > LAYOUT_VERSION:
            raise StoreError(f"store layout {meta['layout_version']} is newer than this cpfeatures "
                             f"understands ({LAYOUT_VERSION})", self.url)
        self._columns: dict[str, list[str]] = {}

    # -- run-level metadata --------------------------------------------------------
    @property
    def info(self) -> dict:
        """The root ``cpfeatures`` attributes (plate id, version, config, ...)."""
        return dict(self.root.attrs.get("cpfeatures", {}))

    def initialize(self, plate_id: str, config_toml: str, **extra) -> None:
        """Write the run-level attributes (idempotent; keeps the first run's start time).

        Raises
        ------
        StoreError
            The store already belongs to another plate, or to a run with other settings
            (resuming with different settings would mix incompatible rows).
        """
        meta = self.info
        if meta:
            if meta.get("plate_id") != plate_id:
                raise StoreError(f"store holds plate {meta.get('plate_id')!r}, not {plate_id!r}", self.url)
            if meta.get("config") != config_toml:
                raise StoreError("store was written with different settings; use a new output or the same "
                                 "config (see `cpfeatures config --show STORE`)", self.url)
            meta.update({k: v for k, v in extra.items() if k not in meta})
        else:
            meta = {"layout_version": LAYOUT_VERSION, "plate_id": plate_id, "cpfeatures_version": __version__,
                    "config": config_toml, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "tables": ["Image", *OBJECT_TABLES], **extra}
        self.root.attrs["cpfeatures"] = meta
        for name in ("sites", "errors", "illum", "columns"):
            self.root.require_group(name)

    # -- illumination -----------------------------------------------------------------
    def write_illum(self, functions: dict[str, np.ndarray]) -> None:
        """Store illumination functions; the group is marked complete after all are written."""
        group = self.root.require_group("illum")
        for role, array in functions.items():
            group.create_array(role, data=np.asarray(array, dtype=np.float32), overwrite=True)
        group.attrs["complete"] = sorted(functions)

    def read_illum(self) -> dict[str, np.ndarray] | None:
        """The stored illumination functions, or None if they were not all written."""
        if "illum" not in self.root:
            return None
        group = self.root["illum"]
        roles = group.attrs.get("complete")
        if not roles:
            return None
        return {role: group[role][:] for role in roles}

    # -- sites -----------------------------------------------------------------------------
    def completed_sites(self) -> list[str]:
        """Keys of the sites written completely, sorted."""
        if "sites" not in self.root:
            return []
        done = []
        for key, group in self.root["sites"].groups():
            try:
                if group.attrs.get("complete"):
                    done.append(key)
            except Exception:  # a truncated zarr.json from a killed writer: not complete
                continue
        return sorted(done)

    def write_site(self, plate_id: str, well: str, field: int, site: SiteTables) -> None:
        """Write one site atomically (arrays first, then the ``complete`` attribute).

        A previous incomplete attempt of the same site is removed first.
        """
        key = site_key(well, field)
        sites = self.root.require_group("sites")
        if key in sites:
            del sites[key]
        group = sites.create_group(key)
        digests = {}
        counts = {}
        for name, frame in site.tables.items():
            columns = [str(c) for c in frame.columns]
            digest = _digest(columns)
            self._ensure_columns(digest, columns)
            values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
            rows = max(values.shape[0], 1)
            group.create_array(name, data=values, chunks=(rows, max(values.shape[1], 1)))
            digests[name] = digest
            counts[name] = int(values.shape[0])
        if site.labels:
            lab = group.create_group("labels")
            for name, array in site.labels.items():
                lab.create_array(name, data=np.asarray(array, dtype=np.int32))
        group.attrs.update({
            "plate": plate_id, "well": well, "site": int(field), "columns": digests, "counts": counts,
            "image_metadata": _jsonable(site.image_metadata), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        group.attrs["complete"] = True  # last: the commit point of the site
        self.clear_error(well, field)

    def _ensure_columns(self, digest: str, columns: list[str]) -> None:
        if digest in self._columns:
            return
        group = self.root.require_group("columns")
        if digest not in group:
            try:
                group.create_group(digest, attributes={"columns": columns})
            except Exception:  # another worker created it at the same moment: same content
                pass
        self._columns[digest] = columns

    def columns(self, digest: str) -> list[str]:
        if digest not in self._columns:
            self._columns[digest] = list(self.root["columns"][digest].attrs["columns"])
        return self._columns[digest]

    # -- errors ----------------------------------------------------------------------------
    def record_error(self, well: str, field: int, exc: BaseException) -> dict:
        """Record why a site failed (file, type, one-line message, traceback tail)."""
        record = {
            "site": site_key(well, field), "well": well, "field": int(field),
            "file": getattr(exc, "path", None), "error": type(exc).__name__,
            "message": " ".join(str(exc).split()) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)[-3:])[-2000:],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        errors = self.root.require_group("errors")
        key = site_key(well, field)
        if key in errors:
            del errors[key]
        errors.create_group(key, attributes=record)
        return record

    def clear_error(self, well: str, field: int) -> None:
        if "errors" in self.root and site_key(well, field) in self.root["errors"]:
            del self.root["errors"][site_key(well, field)]

    def errors(self) -> pd.DataFrame:
        """The error table: one row per failed site (site, well, field, file, error, message, time)."""
        cols = ["site", "well", "field", "file", "error", "message", "time"]
        if "errors" not in self.root:
            return pd.DataFrame(columns=cols)
        rows = [dict(g.attrs) for _, g in self.root["errors"].groups()]
        return pd.DataFrame(rows, columns=cols + ["traceback"]).sort_values("site").reset_index(drop=True)

    # -- reading -----------------------------------------------------------------------------
    def site_table(self, key: str, name: str) -> pd.DataFrame:
        """One completed site's table with its ``Metadata_`` columns."""
        group = self.root["sites"][key]
        attrs = group.attrs.asdict()
        columns = self.columns(attrs["columns"][name])
        values = group[name][:]
        frame = pd.DataFrame(values, columns=columns)
        meta = pd.DataFrame({"Metadata_Plate": attrs["plate"], "Metadata_Well": attrs["well"],
                             "Metadata_Site": attrs["site"]}, index=frame.index)
        if name == "Image":
            extra = pd.DataFrame([attrs.get("image_metadata", {})] * len(frame), index=frame.index)
            return pd.concat([meta, extra, frame], axis=1)
        if "ObjectNumber" in frame:
            frame = frame.rename(columns={"ObjectNumber": "Metadata_ObjectNumber"})
            frame["Metadata_ObjectNumber"] = frame["Metadata_ObjectNumber"].astype(np.int64)
            meta["Metadata_ObjectNumber"] = frame.pop("Metadata_ObjectNumber")
        return pd.concat([meta, frame], axis=1)

    def site_labels(self, key: str) -> dict[str, np.ndarray]:
        group = self.root["sites"][key]
        if "labels" not in group:
            return {}
        return {name: arr[:] for name, arr in group["labels"].arrays()}

    def read_table(self, name: str, sites: Iterable[str] | None = None, wells: Iterable[str] | None = None
                   ) -> pd.DataFrame:
        """Concatenate a table over completed sites (optionally a subset)."""
        table = _table_name(name, self.url)
        keys = self._select(sites, wells)
        frames = [self.site_table(k, table) for k in keys]
        if not frames:
            return pd.DataFrame(columns=META + ([] if table == "Image" else ["Metadata_ObjectNumber"]))
        return pd.concat(frames, ignore_index=True)

    def _select(self, sites, wells) -> list[str]:
        keys = self.completed_sites()
        if sites is not None:
            wanted = set(sites)
            keys = [k for k in keys if k in wanted]
        if wells is not None:
            wanted = set(wells)
            keys = [k for k in keys if k.rsplit("_f", 1)[0] in wanted]
        return keys

    def single_cells(self, sites: Iterable[str] | None = None) -> pd.DataFrame:
        """Nuclei, Cells and Cytoplasm joined per cell (object ``i`` of each is the same cell)."""
        return pd.concat([self._merged_site(k) for k in self._select(sites, None)] or [pd.DataFrame()],
                         ignore_index=True)

    def _merged_site(self, key: str) -> pd.DataFrame:
        keys = META + ["Metadata_ObjectNumber"]
        merged = None
        for table in ("Cells", "Cytoplasm", "Nuclei"):
            frame = self.site_table(key, table)
            merged = frame if merged is None else merged.merge(frame, on=keys, how="outer")
        return merged

    def iter_wells(self) -> Iterator[pd.DataFrame]:
        """Per-well single-cell frames (all compartments merged), one well in memory at a time."""
        by_well: dict[str, list[str]] = {}
        for key in self.completed_sites():
            by_well.setdefault(key.rsplit("_f", 1)[0], []).append(key)
        for well in sorted(by_well):
            yield pd.concat([self._merged_site(k) for k in by_well[well]], ignore_index=True)


def _table_name(name: str, url: str) -> str:
    table = _TABLE_ALIASES.get(name.lower())
    if table is None:
        raise StoreError(f"unknown table {name!r}; tables are image, nuclei, cells, cytoplasm", url)
    return table


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def open_store(store: "str | os.PathLike | Store", mode: str = "r") -> Store:
    """A :class:`Store` from a path/URL (or the store itself)."""
    return store if isinstance(store, Store) else Store(store, mode=mode)


def read_table(store: "str | os.PathLike | Store", name: str, sites=None, wells=None) -> pd.DataFrame:
    """Read a table (``"image"``, ``"nuclei"``, ``"cells"``, ``"cytoplasm"``) from a store as pandas.

    Only completely written sites are included. Columns: ``Metadata_Plate``,
    ``Metadata_Well``, ``Metadata_Site``, ``Metadata_ObjectNumber`` (object
    tables), then CellProfiler-named features (``Cells_AreaShape_Area``, ...).
    """
    return open_store(store).read_table(name, sites=sites, wells=wells)


def read_table_dask(store: "str | os.PathLike | Store", name: str):
    """The same table as a lazy ``dask.dataframe`` with one partition per site (for large plates)."""
    import dask
    import dask.dataframe as dd

    st = open_store(store)
    table = _table_name(name, st.url)
    keys = st.completed_sites()
    if not keys:
        return dd.from_pandas(st.read_table(table), npartitions=1)
    url = st.url
    meta = st.site_table(keys[0], table).iloc[:0]
    parts = [dask.delayed(_read_site_part)(url, k, table) for k in keys]
    return dd.from_delayed(parts, meta=meta)


def _read_site_part(url: str, key: str, table: str) -> pd.DataFrame:
    return Store(url).site_table(key, table)


def export(store: "str | os.PathLike | Store", out_dir: str | os.PathLike, fmt: str = "parquet",
           single_cells: bool = True) -> list[str]:
    """Write the store's tables as Parquet or CSV files for pycytominer and friends.

    Writes ``Image``, ``Nuclei``, ``Cells``, ``Cytoplasm`` and (by default)
    ``SingleCells`` (the three compartments joined per cell), plus ``Errors``
    when sites failed. Returns the written paths.
    """
    if fmt not in ("parquet", "csv"):
        raise StoreError(f"unknown export format {fmt!r} (parquet or csv)")
    st = open_store(store)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    frames = {t: st.read_table(t) for t in ("Image", *OBJECT_TABLES)}
    if single_cells:
        frames["SingleCells"] = st.single_cells()
    errors = st.errors()
    if len(errors):
        frames["Errors"] = errors
    for name, frame in frames.items():
        path = os.path.join(out_dir, f"{name}.{fmt}")
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        written.append(path)
    return written
