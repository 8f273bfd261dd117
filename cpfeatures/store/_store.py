"""The :class:`Store`: a run's single-cell Zarr store, written one site at a time and read by every reader.

The layout (``docs/store.md``) is known here and in the modules of this package only.
Atomicity: a site's arrays are written first, its ``complete`` attribute last
(:func:`cpfeatures.store._sites.commit_site`); readers and resumed runs see only
committed sites. Integrity: every committed site records the shape, dtype and CRC-32
of each of its arrays, so :meth:`Store.verify` finds a site whose chunk was deleted
(Zarr would silently read the fill value) or corrupted. Consolidated metadata is
written for other tools only: cpfeatures lists the store itself on every read.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import zarr

from .. import __version__
from ..io import parse_site_key, site_key
from ..pipeline import OBJECT_TABLES, SiteTables
from ._layout import (_NOT_CONSOLIDATED, LAYOUT_VERSION, META, SINGLE_CELL_ORDER, DamagedStoreError, StoreError,
                      array_problem, checksum, compressors, damaged, digest, dimension_names, jsonable, site_order,
                      refuse_foreign_folder, same_settings, settings_differ, store_settings, table_name)
from ._layout import write_failure as _write_failure
from ._sites import commit_site, completed_attrs, fetch_sync, remove_site, site_block, site_fetcher

__all__ = ["Store", "open_store", "read_table"]

#: Sites whose arrays are read concurrently by :meth:`Store.read_sites` (their I/O overlaps).
READ_BATCH = 32


def _table_chunks(name: str, data: np.ndarray):
    """A site's table is one chunk (rows are read whole); label images take zarr's chunks."""
    return (max(data.shape[0], 1), max(data.shape[1], 1)) if not name.startswith("labels/") else "auto"


class Store:
    """A cpfeatures single-cell store (its layout: ``docs/store.md``).

    Parameters
    ----------
    url : str or path-like
        Local path or fsspec URL (``s3://bucket/run.zarr``).
    mode : {"r", "a"}
        Read only, or read/write (created if absent).
    storage_options : dict, optional
        Passed to fsspec for remote URLs.
    skip_damaged : bool
        Readers leave damaged sites out, with a warning naming each (:attr:`skipped_damaged`),
        instead of raising :class:`DamagedStoreError` at the first.

    Raises
    ------
    StoreError
        Read mode and no cpfeatures store at ``url``; or write mode and ``url`` holds
        something else (a folder of other files, another program's Zarr data, a store
        of a newer layout), which is never written into.
    """

    def __init__(self, url: str | os.PathLike, mode: str = "r", storage_options: dict | None = None,
                 skip_damaged: bool = False):
        url = os.fspath(url)
        self.mode, self.skip_damaged = mode, bool(skip_damaged)
        #: Damaged sites left out by readers (``skip_damaged``), in the order met.
        self.skipped_damaged: list[str] = []
        # Local paths are made absolute: workers of a cluster may run in another directory.
        self.url = url if "://" in url else os.path.abspath(url)
        from ..io.fs import store_options as default_options

        # anonymous reads of a public bucket when there are no credentials (as for the images)
        self.storage_options = default_options(self.url, storage_options) if "://" in self.url \
            else dict(storage_options or {})
        kwargs = {"storage_options": self.storage_options} if self.storage_options else {}
        if mode != "r":
            refuse_foreign_folder(self.url)
        try:
            # Consolidated metadata is for other tools only: it may predate sites a later run added.
            self.root = zarr.open_group(self.url, mode="r" if mode == "r" else "a", use_consolidated=False,
                                        **kwargs)
        except (FileNotFoundError, getattr(zarr.errors, "GroupNotFoundError", FileNotFoundError)) as exc:
            if mode != "r" and isinstance(exc, FileNotFoundError):  # e.g. a bucket that does not exist
                raise _write_failure(self.url, "the store (its bucket or parent folder does not exist)", exc) \
                    from None
            raise StoreError("no cpfeatures store here", self.url) from None
        except OSError as exc:
            raise _write_failure(self.url, "the store", exc) from None
        except Exception as exc:  # zarr raises several types for "not a zarr group"
            raise StoreError(f"cannot open store ({type(exc).__name__}: {exc})", self.url) from None
        meta = self.root.attrs.get("cpfeatures")
        if meta is None:
            if mode == "r":
                raise StoreError("not a cpfeatures store (no 'cpfeatures' attribute)", self.url)
            if any(k != "lock" for k in self.root.keys()):  # a run's lock may come before its metadata
                raise StoreError("this Zarr group was written by another program (no 'cpfeatures' attribute); "
                                 "choose a new output path", self.url)
        elif meta.get("layout_version", 0) > LAYOUT_VERSION:
            raise StoreError(f"store layout {meta['layout_version']} is newer than this cpfeatures "
                             f"understands ({LAYOUT_VERSION}); upgrade cpfeatures", self.url)
        self._columns: dict[str, list[str]] = {}
        self._attrs: dict[str, dict] = {}
        self._compressors: list | None = None

    # -- run-level metadata --------------------------------------------------------
    @property
    def info(self) -> dict:
        """The root ``cpfeatures`` attributes (plate id, version, config, ...)."""
        return dict(self.root.attrs.get("cpfeatures", {}))

    @property
    def codec(self) -> dict:
        """How this store's arrays are compressed: ``{"codec": "zstd", "level": None}``.

        The ``[store]`` table of the run's recorded settings; stores without one (written
        before the setting existed) are zstd at zarr's default level, as they were written.
        """
        return store_settings(self.info.get("config") or "")

    def config(self) -> dict:
        """The settings this store was written with: the defaults merged with its recorded TOML.

        A store without recorded settings (or with unreadable ones, e.g. written by hand)
        gives the defaults.
        """
        import tomllib

        from ..config import load_config

        text = self.info.get("config")
        if not text:
            return load_config()
        try:
            return load_config(overrides=tomllib.loads(text), strict=False)  # what the run used, as recorded
        except tomllib.TOMLDecodeError:
            return load_config()

    def _array_compressors(self) -> list:
        if self._compressors is None:
            settings = self.codec
            self._compressors = compressors(settings["codec"], settings.get("level"))
        return self._compressors

    def initialize(self, plate_id: str, config_toml: str, **extra) -> None:
        """Write the run-level attributes (idempotent; keeps the first run's start time).

        The store's consolidated metadata, if any, is dropped: the run is about to change
        the store, and :meth:`consolidate` writes it again at the end.

        Raises
        ------
        StoreError
            The store already belongs to another plate, or to a run with other settings
            (resuming with different settings would mix incompatible rows).
        StoreWriteError
            The store cannot be written.
        """
        meta = self.info
        if meta:
            if meta.get("plate_id") != plate_id:
                raise StoreError(f"store holds plate {meta.get('plate_id')!r}, not {plate_id!r}", self.url)
            if meta.get("config") != config_toml and not same_settings(meta.get("config") or "", config_toml):
                raise StoreError("store was written with different settings ("
                                 f"{settings_differ(meta.get('config') or '', config_toml)}); use a new output or "
                                 "the same config (see `cpfeatures config --show STORE`)", self.url)
            if all(k in meta for k in extra) and not self._consolidated():
                return
            meta.update({k: v for k, v in extra.items() if k not in meta})
        else:
            meta = {"layout_version": LAYOUT_VERSION, "plate_id": plate_id, "cpfeatures_version": __version__,
                    "config": config_toml, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "tables": ["Image", *OBJECT_TABLES], **extra}
        try:
            self.root.attrs["cpfeatures"] = meta  # rewrites the root's zarr.json: no consolidated copy
            self._compressors = None
            for name in ("sites", "errors", "illum", "columns"):
                self.root.require_group(name)
        except OSError as exc:
            raise _write_failure(self.url, "the store's metadata", exc) from None

    def record_info(self, **values) -> None:
        """Set run-level attributes (``phase_seconds`` of the last run, ...) beside the first run's.

        Unlike :meth:`initialize`, the values replace earlier ones: they describe the
        latest run.
        """
        meta = self.info
        meta.update({k: jsonable(v) for k, v in values.items()})
        try:
            self.root.attrs["cpfeatures"] = meta
        except OSError as exc:
            raise _write_failure(self.url, "the store's metadata", exc) from None

    # -- illumination -----------------------------------------------------------------
    def write_illum(self, functions: dict[str, np.ndarray], source: str | None = None,
                    excluded: list[dict] | None = None) -> None:
        """Store illumination functions; the group is marked complete after all are written.

        ``source`` (e.g. ``"precomputed"``) records where they came from; ``excluded`` the
        images left out of them (``{"role", "file"}`` each, see :meth:`illum_excluded`).
        """
        try:
            group = self.root.require_group("illum")
            sums = {}
            for role, array in functions.items():
                data = np.asarray(array, dtype=np.float32)
                group.create_array(role, data=data, overwrite=True, compressors=self._array_compressors(),
                                   dimension_names=dimension_names("illum"))
                sums[role] = {"shape": list(data.shape), "dtype": "float32", "crc32": checksum(data)}
            extra = {"source": source} if source else {}
            extra["excluded"] = jsonable(list(excluded or []))
            group.attrs.update({"arrays": sums, "complete": sorted(functions), **extra,
                                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        except OSError as exc:
            raise _write_failure(self.url, "the illumination functions", exc) from None

    def illum_excluded(self) -> list[dict]:
        """The images left out of the stored illumination functions (unreadable when they were
        computed): ``[{"role": ..., "file": ...}, ...]``."""
        if "illum" not in self.root:
            return []
        return list(self.root["illum"].attrs.get("excluded", []))

    def drop_illum(self) -> None:
        """Mark the illumination functions incomplete, so that the next run computes them again."""
        if "illum" in self.root:
            self.root["illum"].attrs["complete"] = []

    def illum_version(self) -> str:
        """A token that changes whenever the stored illumination functions do (their checksums).

        Workers cache the functions they read per store URL and this token.
        """
        if "illum" not in self.root:
            return ""
        return ",".join(str(a.get("crc32")) for a in self.root["illum"].attrs.get("arrays", {}).values())

    def illum_written(self):
        """When the complete illumination functions were written (a UTC ``pandas.Timestamp``), or None.

        Stores written before the time was recorded give the modification time of the
        functions' metadata file, where the store is a local folder.
        """
        if "illum" not in self.root or not self.root["illum"].attrs.get("complete"):
            return None
        stamp = self.root["illum"].attrs.get("written")
        if stamp:
            return pd.to_datetime(stamp, format="%Y-%m-%dT%H:%M:%S%z", utc=True)
        if "://" in self.url and not self.url.startswith("file://"):
            return None
        path = os.path.join(self.url.removeprefix("file://"), "illum", "zarr.json")
        return pd.Timestamp(os.path.getmtime(path), unit="s", tz="UTC") if os.path.exists(path) else None

    def read_illum(self) -> dict[str, np.ndarray] | None:
        """The stored illumination functions, or None if they were not all written.

        Raises
        ------
        DamagedStoreError
            A function differs from the size and checksum it was written with (every site
            corrected with it would be wrong): ``run --verify`` computes them again.
        """
        if "illum" not in self.root:
            return None
        group = self.root["illum"]
        roles = group.attrs.get("complete")
        if not roles:
            return None
        recorded = group.attrs.get("arrays", {})
        out = {}
        for role in roles:
            try:
                out[role] = group[role][:]
                problem = array_problem(out[role], recorded.get(role))
            except Exception as exc:
                problem = f"unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            if problem:
                raise damaged(self.url, "illum", f"{role}: {problem}")
        return out

    # -- sites -----------------------------------------------------------------------------
    def completed_sites(self, check: bool = True) -> list[str]:
        """Keys of the sites written completely, in plate order (well, then field number).

        Their attributes are kept (:meth:`site_attrs`), so readers that follow pay
        no second metadata read. A site whose metadata cannot be read is not complete: a
        store opened for reading refuses it by name (:class:`DamagedStoreError`; or leaves it
        out with a warning, ``skip_damaged``) unless ``check`` is False; a writer rewrites it.
        """
        unreadable: list[str] = []
        self._attrs = completed_attrs(self.root, unreadable)
        if unreadable and check and self.mode == "r":  # a reader never passes over a site it cannot read
            for key in unreadable:
                self._damaged(key, "its metadata is unreadable")
        return sorted(self._attrs, key=site_order)

    def _damaged(self, key: str, problem: str) -> None:
        """Leave a damaged site out with a warning (``skip_damaged``), or refuse it."""
        if not self.skip_damaged:
            raise damaged(self.url, key, problem)
        if key not in self.skipped_damaged:
            self.skipped_damaged.append(key)
            warnings.warn(f"{self.url}: site {key} is damaged ({problem}) and left out", RuntimeWarning,
                          stacklevel=3)

    def is_complete(self, key: str) -> bool:
        """The site ``key`` is committed (read from the store now, not from a listing)."""
        try:
            return bool(self.root["sites"][key].attrs.get("complete"))
        except (KeyError, FileNotFoundError):
            return False

    def site_attrs(self, key: str) -> dict:
        """A completed site's attributes (plate, well, site, columns, counts, arrays, ...)."""
        if key not in self._attrs:
            self._attrs[key] = self.root["sites"][key].attrs.asdict()
        return self._attrs[key]

    def write_site(self, plate_id: str, well: str, field: int, site: SiteTables) -> None:
        """Write one site atomically (arrays first, then the ``complete`` attribute).

        A previous incomplete attempt of the same site is removed first.

        Raises
        ------
        StoreWriteError
            A write failed (disk full, ...); the site is left uncommitted.
        """
        key = site_key(well, field)
        arrays, digests, counts = {}, {}, {}
        for name, frame in site.tables.items():
            columns = [str(c) for c in frame.columns]
            digests[name] = digest(columns)
            counts[name] = len(frame)
            arrays[name] = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        for name, image in (site.labels or {}).items():
            arrays[f"labels/{name}"] = np.asarray(image, dtype=np.int32)
        try:
            for name, frame in site.tables.items():
                self._ensure_columns(digests[name], [str(c) for c in frame.columns])
            commit_site(self.root, key, arrays, {
                "plate": plate_id, "well": well, "site": int(field), "columns": digests, "counts": counts,
                "image_metadata": site.image_metadata, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }, self._array_compressors(), chunks=_table_chunks, dimension_names=dimension_names)
        except OSError as exc:
            raise _write_failure(self.url, f"site {key}", exc) from None
        self._attrs.pop(key, None)
        self.clear_error(well, field)

    def uncommit(self, key: str) -> None:
        """Remove a site (e.g. a damaged one) so that the next run writes it again."""
        remove_site(self.root, key)
        self._attrs.pop(key, None)

    def _ensure_columns(self, digest: str, columns: list[str]) -> None:
        if digest in self._columns:
            return
        group = self.root.require_group("columns")
        if digest not in group:
            try:
                group.create_group(digest, attributes={"columns": columns})
            except OSError:
                raise
            except Exception:  # another worker created it at the same moment: same content
                pass
        self._columns[digest] = columns

    def columns(self, digest: str) -> list[str]:
        """The column names a ``columns/<digest>`` group lists."""
        if digest not in self._columns:
            try:
                self._columns[digest] = list(self.root["columns"][digest].attrs["columns"])
            except Exception as exc:
                raise DamagedStoreError(f"the column list columns/{digest} of its tables is missing or unreadable "
                                        f"({type(exc).__name__}); the store cannot be read", self.url) from None
        return self._columns[digest]

    def table_columns(self, name: str, keys: list[str] | None = None) -> list[str]:
        """Every column of a table over the given (default: all completed) sites, in first-seen order.

        Sites of one run share their columns, so this reads metadata only.
        """
        table = table_name(name, self.url)
        keys = self.completed_sites() if keys is None else keys
        seen: dict[str, None] = {}
        digests: dict[str, None] = {}
        for key in keys:
            digest = self.site_attrs(key).get("columns", {}).get(table)
            if digest is not None and digest not in digests:
                digests[digest] = None
                seen.update(dict.fromkeys(self.columns(digest)))
        return list(seen)

    # -- errors ----------------------------------------------------------------------------
    def record_error(self, well: str, field: int, exc: BaseException, phase: str = "site") -> dict:
        """Record why a site failed (file, type, one-line message, phase, traceback tail).

        ``phase`` says where: ``"illumination"`` (an image unreadable while the plate's
        illumination functions were computed), ``"site"`` (processing the site) or
        ``"worker"`` (the worker process died on it).
        """
        record = {
            "site": site_key(well, field), "well": well, "field": int(field),
            "file": getattr(exc, "path", None), "error": getattr(exc, "kind", type(exc).__name__),
            "message": " ".join(str(exc).split()) or type(exc).__name__, "phase": phase,
            "traceback": "".join(traceback.format_exception(exc)[-3:])[-2000:],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        key = site_key(well, field)
        try:
            errors = self.root.require_group("errors")
            if key in errors:
                del errors[key]
            errors.create_group(key, attributes=record)
        except OSError as exc2:
            raise _write_failure(self.url, f"the error record of site {key}", exc2) from None
        return record

    def clear_error(self, well: str, field: int) -> None:
        """Forget a site's error record (it has been written since)."""
        try:
            if "errors" in self.root and site_key(well, field) in self.root["errors"]:
                del self.root["errors"][site_key(well, field)]
        except OSError as exc:
            raise _write_failure(self.url, f"the error record of site {site_key(well, field)}", exc) from None

    def errors(self) -> pd.DataFrame:
        """The error table: one row per failed site (site, well, field, file, error, message, phase, time)."""
        cols = ["site", "well", "field", "file", "error", "message", "phase", "time"]
        if "errors" not in self.root:
            return pd.DataFrame(columns=cols)
        rows = [dict(g.attrs) for _, g in self.root["errors"].groups()]
        frame = pd.DataFrame(rows, columns=cols + ["traceback"])
        frame["phase"] = frame["phase"].fillna("site")
        return frame.sort_values("site", key=lambda s: s.map(site_order)).reset_index(drop=True)

    # -- reading -----------------------------------------------------------------------------
    def read_sites(self, keys: list[str], names: list[str] | None = None, batch: int | None = None,
                   tolerant: bool = False) -> Iterator[tuple[str, dict, dict[str, np.ndarray], dict[str, str]]]:
        """Read whole arrays of many sites, a batch at a time, overlapping their I/O.

        Parameters
        ----------
        keys : list of str
            Completed sites to read.
        names : list of str or callable, optional
            Arrays to read per site (``"Cells"``, ``"labels/Nuclei"``), or a function
            ``key -> list``; default: the site's tables.
        batch : int
            Sites read concurrently (memory is ``batch`` sites' arrays).
        tolerant : bool
            Report an unreadable array in the fourth item instead of raising.

        Yields
        ------
        (key, attrs, {name: array}, {name: problem})
        """
        fetch = site_fetcher(self.root, url=self.url)
        batch = batch or READ_BATCH
        for start in range(0, len(keys), batch):
            chunk = keys[start:start + batch]
            if names is None:
                wanted = [list(self.site_attrs(k).get("columns", {})) for k in chunk]
            else:
                wanted = [list(names(k) if callable(names) else names) for k in chunk]
            # problems are collected for the whole batch, then refused (or skipped) site by site
            if fetch is not None:
                results = fetch(chunk, wanted, True)
            else:  # pragma: no cover - a zarr without the asynchronous API
                results = [fetch_sync(self.root, k, w, True, self.url) for k, w in zip(chunk, wanted)]
            results.reverse()
            for key in chunk:  # hand each site over and drop it: one batch in memory, not two
                attrs, arrays, problems = results.pop()
                if problems and not tolerant:
                    name, problem = next(iter(problems.items()))
                    self._damaged(key, problem if name == "metadata" else f"{name}: {problem}")
                    continue
                if attrs is None:  # unreadable metadata (tolerant mode): what the listing read
                    attrs = self._attrs.get(key, {})
                yield key, attrs, arrays, problems
                del attrs, arrays, problems

    def site_block(self, attrs: dict, arrays: dict[str, np.ndarray], tables: list[str],
                   features: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        """A site's rows joined over ``tables`` as (metadata frame, float64 block, feature names).

        Object tables are aligned on their object numbers (an outer join: object ``i`` of
        Nuclei, Cells and Cytoplasm is one cell; a compartment without that object gives
        NaN). ``features`` fixes the block's columns (absent ones are NaN); by default they
        are every table's columns but ``ObjectNumber``, in order. Built with numpy, not
        pandas merges: a merge of 5,800-column frames costs ~0.5 s per site.
        """
        return site_block(self.columns, attrs, arrays, tables, features)

    def _frame(self, key: str, attrs: dict, name: str, values: np.ndarray,
               columns: list[str] | None = None) -> pd.DataFrame:
        """A site's table as pandas with its ``Metadata_`` columns (``columns``: keep only these)."""
        features = None
        if columns is not None:
            present = set(self.columns(attrs["columns"][name]))
            features = [c for c in columns if c in present and c != "ObjectNumber"]
        meta, block, names = self.site_block(attrs, {name: values}, [name], features)
        return pd.concat([meta, pd.DataFrame(block, columns=names)], axis=1)

    def site_table(self, key: str, name: str) -> pd.DataFrame:
        """One completed site's table with its ``Metadata_`` columns."""
        table = table_name(name, self.url)
        for key, attrs, arrays, _ in self.read_sites([key], [table]):
            return self._frame(key, attrs, table, arrays[table])
        raise damaged(self.url, key, "left out")  # skipped as damaged: nothing to return

    def site_labels(self, key: str) -> dict[str, np.ndarray]:
        """A site's label images (empty unless the run saved them), checked as every read is."""
        recorded = self.site_attrs(key).get("arrays")
        if recorded is None:  # written before checksums: the labels are whatever the group holds
            group = self.root["sites"][key]
            return {name: arr[:] for name, arr in group["labels"].arrays()} if "labels" in group else {}
        names = [n for n in recorded if n.startswith("labels/")]
        if not names:
            return {}
        for _, _, arrays, _ in self.read_sites([key], names):
            return {n.removeprefix("labels/"): arrays[n] for n in names}
        return {}

    def iter_tables(self, name: str, sites: Iterable[str] | None = None, wells: Iterable[str] | None = None,
                    columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """A table one site at a time (plate order): the lazy way through a whole plate.

        Memory is one batch of sites, whatever the plate size. ``columns`` keeps only those
        feature columns (metadata columns are always there).
        """
        table = table_name(name, self.url)
        for key, attrs, arrays, _ in self.read_sites(self._select(sites, wells), [table]):
            yield self._frame(key, attrs, table, arrays[table], columns)

    def read_table(self, name: str, sites: Iterable[str] | None = None, wells: Iterable[str] | None = None,
                   columns: list[str] | None = None) -> pd.DataFrame:
        """Concatenate a table over completed sites (optionally a subset of sites, wells or columns).

        Notes
        -----
        The result is in memory: about ``8 x rows x columns`` bytes, twice that while
        concatenating (a 3,456-site plate's Cells table, ~200,000 cells x ~2,000 columns,
        is ~3 GB). For whole plates read only the ``columns`` needed, or go site by site
        with :meth:`iter_tables` or :func:`read_table_dask`.
        """
        table = table_name(name, self.url)
        frames = list(self.iter_tables(table, sites, wells, columns))
        if not frames:
            return pd.DataFrame(columns=META + ([] if table == "Image" else ["Metadata_ObjectNumber"]))
        return pd.concat(frames, ignore_index=True)

    def _select(self, sites, wells) -> list[str]:
        if sites is not None and wells is None:
            sites = list(dict.fromkeys(sites))
            if all(k in self._attrs for k in sites):  # known complete: no second pass over the plate per call
                return sorted(sites, key=site_order)
        keys = self.completed_sites()
        if sites is not None:
            wanted = set(sites)
            keys = [k for k in keys if k in wanted]
        if wells is not None:
            wanted = set(wells)
            keys = [k for k in keys if parse_site_key(k).well in wanted]
        return keys

    def iter_single_cells(self, sites: Iterable[str] | None = None) -> Iterator[pd.DataFrame]:
        """Per site: Nuclei, Cells and Cytoplasm joined per cell (object ``i`` of each is the same cell)."""
        for key, attrs, arrays, _ in self.read_sites(self._select(sites, None), list(OBJECT_TABLES)):
            yield self._merge(key, attrs, arrays)

    def _merge(self, key: str, attrs: dict, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
        meta, block, names = self.site_block(attrs, arrays, list(SINGLE_CELL_ORDER))
        return pd.concat([meta, pd.DataFrame(block, columns=names)], axis=1)

    def single_cells(self, sites: Iterable[str] | None = None) -> pd.DataFrame:
        """Nuclei, Cells and Cytoplasm joined per cell, over all (or the given) sites, in memory."""
        return pd.concat(list(self.iter_single_cells(sites)) or [pd.DataFrame()], ignore_index=True)

    def iter_wells(self) -> Iterator[pd.DataFrame]:
        """Per-well single-cell frames (all compartments merged), one well in memory at a time."""
        by_well: dict[str, list[str]] = {}
        for key in self.completed_sites():
            by_well.setdefault(parse_site_key(key).well, []).append(key)
        for well in sorted(by_well):
            frames = list(self.iter_single_cells(by_well[well]))
            if frames:  # a well whose sites were all left out as damaged has no rows
                yield pd.concat(frames, ignore_index=True)

    # -- consolidated metadata ---------------------------------------------------------------
    def consolidate(self) -> None:
        """Write the store's metadata into the root ``zarr.json`` for other tools (xarray, zarr).

        First each table's column names become a root array ``<Table>_feature`` (dimension
        ``<Table>_feature``) when every committed site has the same columns, so that
        ``xarray.open_datatree`` labels the feature axis of every site (a table whose sites
        differ gets none). Then the hierarchy is consolidated, but for the run's lock and sites
        not committed. cpfeatures' own readers ignore the consolidated copy; a run drops it
        when it starts (:meth:`initialize`) and writes it again at its end.

        Raises
        ------
        StoreWriteError
            The store cannot be written.
        """
        import warnings

        keys = self.completed_sites()
        try:
            for table in ("Image", *OBJECT_TABLES):
                digests = {self._attrs[k].get("columns", {}).get(table) for k in keys}
                name = f"{table}_feature"
                if len(digests) == 1 and None not in digests:
                    self._write_coordinate(name, self.columns(digests.pop()))
                elif name in self.root:
                    del self.root[name]
            with warnings.catch_warnings():  # "consolidated metadata is not in the v3 spec": known, wanted
                warnings.simplefilter("ignore")
                zarr.consolidate_metadata(self.root.store, path=self.root.path or None)
            committed = set(keys)
            doc = self._root_document()
            nodes = doc["consolidated_metadata"]["metadata"]
            for key in [k for k in nodes if _left_out(k, committed)]:
                del nodes[key]
            self._write_root_document(doc)
        except OSError as exc:
            raise _write_failure(self.url, "the store's consolidated metadata", exc) from None

    def _write_coordinate(self, name: str, names: list[str]) -> None:
        import warnings

        values = np.array(names, dtype=str)
        if name in self.root:
            old = self.root[name]
            if old.shape == values.shape and np.array_equal(old[:], values):
                return
            del self.root[name]
        with warnings.catch_warnings():  # numpy strings have no v3 spec yet; xarray and zarr read them
            warnings.simplefilter("ignore")
            self.root.create_array(name, data=values, compressors=self._array_compressors(),
                                   dimension_names=(name,))

    def _root_key(self) -> str:
        return f"{self.root.path}/zarr.json" if self.root.path else "zarr.json"

    def _root_document(self) -> dict:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        buf = sync(self.root.store.get(self._root_key(), prototype=default_buffer_prototype()))
        return json.loads(buf.to_bytes()) if buf is not None else {}

    def _write_root_document(self, doc: dict) -> None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        data = json.dumps(doc, separators=(",", ":")).encode()
        sync(self.root.store.set(self._root_key(), default_buffer_prototype().buffer.from_bytes(data)))

    def _consolidated(self) -> bool:
        """The root ``zarr.json`` holds a consolidated copy of the hierarchy."""
        try:
            return bool(self._root_document().get("consolidated_metadata"))
        except Exception:  # unreadable: nothing to drop
            return False

    # -- integrity ---------------------------------------------------------------------------
    def verify(self, keys: list[str] | None = None, progress=None) -> pd.DataFrame:
        """Check every committed site's arrays against the sizes and checksums it recorded.

        Parameters
        ----------
        keys : list of str, optional
            Sites to check (default: every completed site).
        progress : callable, optional
            Called with the number of sites checked after each batch.

        Returns
        -------
        pandas.DataFrame
            One row per site with a problem: ``site``, ``status`` (``"damaged"``: an
            array is missing, unreadable, of the wrong size or content; ``"unverified"``:
            written before checksums were recorded, sizes checked only) and ``problem``.
            The illumination functions are checked too (site ``"illum"``).
        """
        if keys is None:
            unreadable: list[str] = []
            self._attrs = completed_attrs(self.root, unreadable)
            keys = sorted(self._attrs, key=site_order)
        else:
            keys, unreadable = list(keys), []
        rows = [{"site": k, "status": "damaged", "problem": "its metadata is unreadable"} for k in unreadable]
        for key, attrs, arrays, problems in self.read_sites(keys, _recorded_arrays(self), batch=16, tolerant=True):
            found = _site_problems(self, key, attrs, arrays, problems)
            if found:
                status, text = found
                rows.append({"site": key, "status": status, "problem": text})
            if progress:
                progress(1)
        illum = self._verify_illum()
        if illum:
            rows.append({"site": "illum", "status": "damaged", "problem": illum})
        return pd.DataFrame(rows, columns=["site", "status", "problem"])

    def _verify_illum(self) -> str | None:
        if "illum" not in self.root or not self.root["illum"].attrs.get("complete"):
            return None
        group = self.root["illum"]
        recorded = group.attrs.get("arrays", {})
        for role in group.attrs["complete"]:
            try:
                data = group[role][:]
            except Exception as exc:
                return f"illumination function {role} unreadable ({type(exc).__name__}: {exc})"
            want = recorded.get(role)
            if want and (list(data.shape) != want["shape"] or checksum(data) != want["crc32"]):
                return f"illumination function {role} differs from its recorded checksum"
        return None


def _recorded_arrays(store: Store):
    """Per site, the arrays its attributes say were written (the tables, for sites without checksums)."""
    def names(key: str) -> list[str]:
        attrs = store.site_attrs(key)
        return list(attrs.get("arrays") or attrs.get("columns", {}))

    return names


def _site_problems(store: Store, key: str, attrs: dict, arrays: dict, problems: dict) -> tuple[str, str] | None:
    """(status, problem) of one committed site, or None when it is intact."""
    recorded = attrs.get("arrays")
    for name, problem in problems.items():
        return "damaged", f"{name}: {problem}"
    digests = attrs.get("columns", {})
    for name in digests:
        try:
            width = len(store.columns(digests[name]))
        except Exception:
            return "damaged", f"{name}: its column list columns/{digests[name]} is missing"
        shape = arrays[name].shape if name in arrays else None
        if shape is None:
            return "damaged", f"{name}: array missing"
        want = (attrs.get("counts", {}).get(name, shape[0]), width)
        if tuple(shape) != tuple(want):
            return "damaged", f"{name}: shape {shape} but {want} was written"
    if not recorded:
        return "unverified", "written without checksums (cpfeatures before 0.2): sizes checked only"
    for name in recorded:  # the arrays read were checked against their checksums as they were read
        if name not in arrays:
            return "damaged", f"{name}: array missing"
    return None


def _left_out(node: str, committed: set[str]) -> bool:
    """A node the consolidated metadata does not list: the lock, sites not committed."""
    parts = node.split("/")
    if parts[0] in _NOT_CONSOLIDATED:
        return True
    return parts[0] == "sites" and len(parts) > 1 and parts[1] not in committed


def open_store(store: "str | os.PathLike | Store", mode: str = "r", skip_damaged: bool = False) -> Store:
    """A :class:`Store` from a path/URL (or the store itself; ``skip_damaged`` then also applies to it)."""
    if isinstance(store, Store):
        store.skip_damaged = store.skip_damaged or skip_damaged
        return store
    return Store(store, mode=mode, skip_damaged=skip_damaged)


def read_table(store: "str | os.PathLike | Store", name: str, sites=None, wells=None, columns=None) -> pd.DataFrame:
    """Read a table (``"image"``, ``"nuclei"``, ``"cells"``, ``"cytoplasm"``) from a store as pandas.

    Only completely written sites are included. Columns: ``Metadata_Plate``,
    ``Metadata_Well``, ``Metadata_Site``, ``Metadata_ObjectNumber`` (object
    tables), then CellProfiler-named features (``Cells_AreaShape_Area``, ...).

    The whole table is built in memory (~8 bytes x rows x columns, twice that while
    concatenating): pass ``columns`` to keep a few features of a whole plate, or read
    it lazily with :meth:`Store.iter_tables` (one site at a time) or
    :func:`read_table_dask`.
    """
    return open_store(store).read_table(name, sites=sites, wells=wells, columns=columns)
