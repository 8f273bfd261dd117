"""The single-cell store: a run's Zarr store, its readers, its exports and its lock.

Only this package knows the store's on-disk layout (``docs/store.md``); everything else
goes through :class:`Store` and the functions here.

>>> from cpfeatures.store import Store, read_table            # doctest: +SKIP
>>> cells = read_table("example.zarr", "cells")              # doctest: +SKIP
>>> view = open_plate("example.zarr")                        # doctest: +SKIP
"""

from ..pipeline import OBJECT_TABLES, SiteTables
from ._anndata import (ANNDATA_SUFFIXES, OBS_NAMES, AnnDataWriter, anndata_kind, export_anndata, parse_features,
                       read_frame, write_frame)
from ._export import FORMATS, NAMINGS, export
from ._layout import (CODECS, LAYOUT_VERSION, META, SINGLE_CELL_ORDER, DamagedStoreError, StoreError, StoreWriteError,
                      checksum, compressors, dimension_names, local_zarr_kind, site_order, write_failure)
from ._lock import StoreLock, StoreLockedError
from ._names import IDENTIFYING, cytotable_name, export_name, is_identifying
from ._sites import commit_site, completed_attrs, remove_site, site_fetcher
from ._store import Store, open_store, read_table
from ._view import SINGLE_CELLS, open_plate, read_table_dask

__all__ = [
    # the store and its tables
    "Store", "open_store", "read_table", "read_table_dask", "open_plate", "SiteTables", "OBJECT_TABLES",
    "SINGLE_CELL_ORDER", "SINGLE_CELLS", "META",
    # exports
    "export", "export_anndata", "FORMATS", "NAMINGS", "OBS_NAMES", "ANNDATA_SUFFIXES", "AnnDataWriter",
    "anndata_kind", "parse_features", "read_frame", "write_frame", "cytotable_name", "export_name",
    "is_identifying", "IDENTIFYING",
    # layout, codecs, integrity
    "LAYOUT_VERSION", "CODECS", "compressors", "dimension_names", "checksum", "site_order", "local_zarr_kind",
    # sites as Zarr groups (shared with the crops store)
    "commit_site", "completed_attrs", "remove_site", "site_fetcher",
    # errors and the writer's lock
    "StoreError", "StoreWriteError", "DamagedStoreError", "write_failure", "StoreLock", "StoreLockedError",
]
