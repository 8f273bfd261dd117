"""The lazy whole-plate view of a store: every cell as xarray (or a dask DataFrame), a site per chunk.

:func:`open_plate` lists the store's committed sites (their attributes only: row
counts, column lists) and builds a dask graph with one task per site; nothing
else is read until a result is computed, and computing part of the plate reads
only the sites it covers. A task opens the site's arrays directly (never the
store's root), so the graph is the same on a laptop and on a dask cluster.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ._layout import META, SINGLE_CELL_ORDER, StoreError, table_name
from ._sites import site_block, site_fetcher
from ._store import Store, open_store

__all__ = ["open_plate"]

#: The dtype pandas gives a column of text (``str`` from pandas 3, ``object`` before).
_STR = pd.Series(["x"]).dtype

#: ``table`` of :func:`open_plate` for Nuclei, Cells and Cytoplasm joined per cell.
SINGLE_CELLS = "single_cells"


def open_plate(store: "str | os.PathLike | Store", table: str = SINGLE_CELLS, *, as_frame: bool = False,
               storage_options: dict | None = None):
    """Every cell of a store, lazily: one dask chunk (or partition) per site.

    Parameters
    ----------
    store : str, path-like or Store
        The store (local path or fsspec URL).
    table : str
        ``"single_cells"`` (default): Cells, Cytoplasm and Nuclei joined per cell, the rows
        of :meth:`Store.single_cells <cpfeatures.store.Store.single_cells>`; or one table,
        ``"cells"``, ``"nuclei"``, ``"cytoplasm"`` or ``"image"`` (the rows of
        :func:`~cpfeatures.store.read_table`).
    as_frame : bool
        Return a dask DataFrame (one pandas partition per site, the index numbering the
        plate's rows) instead of an xarray Dataset.
    storage_options : dict, optional
        fsspec options of a remote store.

    Returns
    -------
    xarray.Dataset or dask.dataframe.DataFrame
        The Dataset has dimensions ``cell`` (``site`` for the Image table) and ``feature``:
        variable ``features`` (float64, dask, one chunk per site), coordinate ``feature``
        (the column names), and per row ``Metadata_Plate``, ``Metadata_Well``,
        ``Metadata_Site`` (numpy: known without reading) and ``Metadata_ObjectNumber``
        (dask, read with the site's chunk); the Image table has the image metadata
        (``FileName_Orig<Role>``) instead of object numbers. Attributes: ``plate``,
        ``store``, ``table``, ``sites`` (the sites, in chunk order). The DataFrame has
        the same columns as the eager readers.

    Raises
    ------
    StoreError
        Not a store, or an unknown table; when computed, a site whose tables number
        their objects differently than their counts say.

    Notes
    -----
    Sites written by a run still going on after this call are not in the view: open it
    again. Only the sites' attributes are read at once (about a second for 3,456 local
    sites), but for a site whose tables hold different numbers of objects (never the
    case for cpfeatures' own pipeline): its rows are read to count the joined cells.

    Examples
    --------
    >>> ds = open_plate("example.zarr")                          # doctest: +SKIP
    >>> area = ds.features.sel(feature="Cells_AreaShape_Area")   # doctest: +SKIP
    >>> area.groupby("Metadata_Well").mean().compute()           # doctest: +SKIP
    """
    st = store if isinstance(store, Store) else (Store(store, storage_options=storage_options)
                                                 if storage_options else open_store(store))
    merged = str(table).lower() == SINGLE_CELLS
    tables = list(SINGLE_CELL_ORDER) if merged else [table_name(table, st.url)]
    keys = st.completed_sites()
    plan = _Plan(st, keys, tables)
    if as_frame:
        return plan.frame()
    return plan.dataset("site" if tables == ["Image"] else "cell", SINGLE_CELLS if merged else tables[0])


class _Plan:
    """What the view needs of each site, known from its attributes: rows, columns."""

    def __init__(self, st: Store, keys: list[str], tables: list[str]):
        self.st, self.keys, self.tables = st, keys, tables
        self.attrs = [_lite(st.site_attrs(k), tables) for k in keys]
        digests = {d for a in self.attrs for d in a["columns"].values()}
        self.columns = {d: st.columns(d) for d in digests}
        combos = {tuple(a["columns"].get(t) for t in tables): None for a in self.attrs}
        self.uniform = len(combos) <= 1
        features: dict[str, None] = {}
        for combo in combos:
            features.update(dict.fromkeys(c for d in combo if d for c in self.columns[d] if c != "ObjectNumber"))
        self.features = list(features)
        self.image_metadata = list(dict.fromkeys(k for a in self.attrs for k in a.get("image_metadata", {})))
        self.rows = self._rows()

    def _rows(self) -> list[int]:
        counts = [[a["counts"].get(t, 0) for t in self.tables if t in a["columns"]] for a in self.attrs]
        rows = [c[0] if c else 0 for c in counts]
        odd = [k for k, c in zip(self.keys, counts) if len(set(c)) > 1]
        if odd:  # the outer join of differently numbered tables: count it (read these sites)
            where = {k: i for i, k in enumerate(self.keys)}
            for key, attrs, arrays, _ in self.st.read_sites(odd, self.tables):
                meta, _, _ = site_block(self.st.columns, attrs, arrays, self.tables, [])
                rows[where[key]] = len(meta)
        return rows

    def reader(self) -> "_SiteReader":
        return _SiteReader(self.st.url, self.st.storage_options, self.tables, self.columns,
                           None if self.uniform else self.features, self.features, self.image_metadata)

    # -- xarray ---------------------------------------------------------------------------
    def dataset(self, dim: str, name: str):
        import dask.array as da
        import xarray as xr

        n_sites = len(self.keys)
        coords = {"feature": np.array(self.features, dtype=str),
                  "Metadata_Plate": (dim, np.repeat(np.array([a["plate"] for a in self.attrs], dtype=str),
                                                    self.rows)),
                  "Metadata_Well": (dim, np.repeat(np.array([a["well"] for a in self.attrs], dtype=str),
                                                   self.rows)),
                  "Metadata_Site": (dim, np.repeat(np.array([a["site"] for a in self.attrs], np.int64), self.rows))}
        if n_sites == 0:
            values = np.zeros((0, len(self.features)))
            numbers = np.zeros(0, np.int64)
        else:
            reader = self.reader()
            items = np.empty(n_sites, dtype=object)
            for i, item in enumerate(zip(self.keys, self.attrs, self.rows)):  # sites, not cells
                items[i] = item
            sites = da.from_array(items, chunks=1)
            # one task per site reads it; the two arrays below take their parts of its result
            blocks = sites.map_blocks(reader.read, dtype=object, meta=np.empty(0, object),
                                      name=f"cpfeatures-read-{_token(self)}")
            values = blocks.map_blocks(_values, chunks=(tuple(self.rows), (len(self.features),)), new_axis=1,
                                       dtype=np.float64, meta=np.empty((0, 0)))
            numbers = blocks.map_blocks(_numbers, chunks=(tuple(self.rows),), dtype=np.int64,
                                        meta=np.empty(0, np.int64))
        if self.tables == ["Image"]:
            for key in self.image_metadata:
                coords[key] = (dim, np.array([a.get("image_metadata", {}).get(key) for a in self.attrs],
                                             dtype=object))
        else:
            coords["Metadata_ObjectNumber"] = (dim, numbers)
        return xr.Dataset({"features": ((dim, "feature"), values)}, coords=coords,
                          attrs={"plate": self.attrs[0]["plate"] if self.attrs else self.st.info.get("plate_id"),
                                 "store": self.st.url, "table": name, "sites": list(self.keys)})

    # -- dask DataFrame -------------------------------------------------------------------
    def frame(self):
        import dask.dataframe as dd

        reader = self.reader()
        meta = reader.empty()
        if not self.keys:
            return dd.from_pandas(meta, npartitions=1)
        starts = np.concatenate([[0], np.cumsum(self.rows)]).astype(int)
        parts = [(k, a, int(r), int(s)) for k, a, r, s in zip(self.keys, self.attrs, self.rows, starts)]
        divisions = None
        if all(self.rows):  # partition i holds rows starts[i] .. starts[i+1] - 1
            divisions = tuple(int(s) for s in starts[:-1]) + (int(starts[-1]) - 1,)
        import dask

        # from_delayed keeps pandas' own dtypes (from_map would turn text into pyarrow strings)
        read = dask.delayed(reader.frame, pure=True)
        return dd.from_delayed([read(p, dask_key_name=f"cpfeatures-site-{_token(self)}-{i}")
                                for i, p in enumerate(parts)], meta=meta, divisions=divisions, verify_meta=False)


class _SiteReader:
    """Reads one site's rows in a dask task (picklable: the graph may run on a cluster)."""

    def __init__(self, url: str, storage_options: dict, tables: list[str], columns: dict[str, list[str]],
                 features: list[str] | None, all_features: list[str], image_metadata: list[str]):
        self.url, self.storage_options, self.tables = url, storage_options, tables
        self.columns, self.features, self.all_features = columns, features, all_features
        self.image_metadata = image_metadata

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def _fetch(self):
        fetch = getattr(self, "_fetcher", None)
        if fetch is None:
            fetch = self._fetcher = site_fetcher(zstore=_zarr_store(self.url, self.storage_options),
                                                        url=self.url)
        return fetch

    def block(self, key: str, attrs: dict, rows: int) -> tuple[pd.DataFrame, np.ndarray]:
        """(metadata frame, float64 block) of a site, its columns those of the view."""
        names = [t for t in self.tables if t in attrs["columns"]]
        (_, arrays, _), = self._fetch()([key], [names], False)
        meta, block, _ = site_block(self.columns.__getitem__, attrs, arrays, names, self.features)
        if len(meta) != rows:
            raise StoreError(f"site {key}: its tables give {len(meta)} joined rows, its counts said {rows} "
                             "(objects numbered differently across tables); read it with Store.single_cells",
                             self.url)
        return meta, block

    def read(self, chunk: np.ndarray) -> np.ndarray:
        """The map_blocks task of a site: a one-item object array holding (object numbers, block)."""
        (key, attrs, rows), = chunk
        meta, block = self.block(key, attrs, rows)
        numbers = meta["Metadata_ObjectNumber"].to_numpy(np.int64) if "Metadata_ObjectNumber" in meta \
            else np.zeros(len(meta), np.int64)
        out = np.empty(1, dtype=object)
        out[0] = (numbers, block)
        return out

    def frame(self, part: tuple) -> pd.DataFrame:
        """A site's pandas partition (the index continues the previous sites')."""
        key, attrs, rows, start = part
        meta, block = self.block(key, attrs, rows)
        frame = pd.concat([meta, pd.DataFrame(block, columns=self.all_features)], axis=1)
        frame.index = pd.RangeIndex(start, start + len(frame))
        if self.tables == ["Image"] and list(frame.columns) != self._frame_columns():  # other file names
            frame = frame.reindex(columns=self._frame_columns())
        return frame

    def _frame_columns(self) -> list[str]:
        if getattr(self, "_columns_cache", None) is None:
            self._columns_cache = list(self.empty().columns)
        return self._columns_cache

    def empty(self) -> pd.DataFrame:
        """The frame of no rows: the columns and dtypes of every partition."""
        meta = {c: pd.Series([], dtype=_STR) for c in META[:2]}
        meta["Metadata_Site"] = pd.Series([], dtype=np.int64)
        if self.tables != ["Image"]:
            meta["Metadata_ObjectNumber"] = pd.Series([], dtype=np.int64)
        else:
            for name in self.image_metadata:
                meta[name] = pd.Series([], dtype=_STR)
        frame = pd.DataFrame(meta)
        return pd.concat([frame, pd.DataFrame(np.zeros((0, len(self.all_features))), columns=self.all_features)],
                         axis=1)


def _values(chunk: np.ndarray) -> np.ndarray:
    return chunk[0][1]


def _numbers(chunk: np.ndarray) -> np.ndarray:
    return chunk[0][0]


def _lite(attrs: dict, tables: list[str]) -> dict:
    """The part of a site's attributes a task needs (the graph carries it per site)."""
    out = {"plate": attrs["plate"], "well": attrs["well"], "site": int(attrs["site"]),
           "columns": {t: d for t, d in attrs.get("columns", {}).items() if t in tables},
           "counts": {t: int(c) for t, c in attrs.get("counts", {}).items() if t in tables}}
    if "Image" in tables:
        out["image_metadata"] = attrs.get("image_metadata", {})
    return out


def _token(plan: _Plan) -> str:
    from dask.base import tokenize

    return tokenize(plan.st.url, plan.keys, plan.tables, plan.rows, plan.features)


_STORES: dict = {}


def _zarr_store(url: str, storage_options: dict | None):
    """A read-only zarr store of ``url``, made once per process."""
    key = (url, repr(sorted((storage_options or {}).items())))
    if key not in _STORES:
        from zarr.storage import FsspecStore, LocalStore

        if "://" in url and not url.startswith("file://"):
            _STORES[key] = FsspecStore.from_url(url, storage_options=storage_options or None, read_only=True)
        else:
            _STORES[key] = LocalStore(url[len("file://"):] if url.startswith("file://") else url, read_only=True)
    return _STORES[key]



def read_table_dask(store: "str | os.PathLike | Store", name: str):
    """A table as a lazy ``dask.dataframe`` with one partition per site (for large plates).

    The same as ``open_plate(store, name, as_frame=True)`` (see :func:`open_plate`).
    """
    return open_plate(store, name, as_frame=True)
