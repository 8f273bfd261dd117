"""Export a store's tables to Parquet or CSV, a well at a time.

Memory is bounded by one row group whatever the plate size: each table is
written incrementally with one schema for the whole plate, fixed from the
sites' metadata before any row is read. Tables are those pycytominer, DuckDB
and polars read: ``Image``, ``Nuclei``, ``Cells``, ``Cytoplasm``, ``SingleCells``
(the three compartments joined per cell) and ``Errors`` when sites failed.
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import pandas as pd

from .store import META, OBJECT_TABLES, SINGLE_CELL_ORDER, Store, StoreError, open_store

__all__ = ["export", "FORMATS"]

FORMATS = ("parquet", "csv")
#: Target size of a Parquet row group (the values held in memory before a group is written).
ROW_GROUP_BYTES = 128 * 2**20
_OBJECT_META = [*META, "Metadata_ObjectNumber"]


def export(store: "str | os.PathLike | Store", out_dir: str | os.PathLike, fmt: str = "parquet",
           single_cells: bool = True, tables: list[str] | None = None) -> list[str]:
    """Write the store's tables as Parquet or CSV files for pycytominer and friends.

    Parameters
    ----------
    store : path, URL or Store
        A cpfeatures store.
    out_dir : path-like
        Folder for ``<Table>.parquet`` / ``<Table>.csv`` (created).
    fmt : {"parquet", "csv"}
    single_cells : bool
        Also write ``SingleCells``: Nuclei, Cells and Cytoplasm joined per cell.
    tables : list of str, optional
        Only these of ``Image, Nuclei, Cells, Cytoplasm`` (default: all).

    Returns
    -------
    list of str
        The written paths (each file appears only once complete).

    Notes
    -----
    Sites are read a batch at a time and appended a well at a time; Parquet rows are
    grouped into row groups of whole wells of about 128 MB, so peak memory is about one
    row group plus the file's footer (~0.5 kB per column per row group) whatever the
    plate size (measured in ``benchmarks/bench_plate_scale.py``). Columns are the union
    over sites in first-seen order; ``Metadata_Site`` and ``Metadata_ObjectNumber`` are
    integers, image metadata (file names) text, features float64 (NaN kept in Parquet,
    empty fields in CSV).
    """
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r} ({' or '.join(FORMATS)})")
    st = open_store(store)
    os.makedirs(out_dir, exist_ok=True)
    keys = st.completed_sites()
    names = list(tables) if tables else ["Image", *OBJECT_TABLES]
    features = {t: [c for c in st.table_columns(t, keys) if c != "ObjectNumber"] for t in ("Image", *OBJECT_TABLES)}
    text = _text_columns(st, keys)
    plans = {name: _Plan(name, features[name], text if name == "Image" else []) for name in names}
    if single_cells:
        merged: list[str] = []
        for table in SINGLE_CELL_ORDER:
            merged += [c for c in features[table] if c not in merged]
        plans["SingleCells"] = _Plan("SingleCells", merged, [])
    written = []
    for name, plan in plans.items():
        path = os.path.join(os.fspath(out_dir), f"{name}.{fmt}")
        with _Writer(path, fmt, plan) as write:
            for meta, block in _well_blocks(st, plan, keys):
                write(meta, block)
        written.append(path)
    errors = st.errors()
    if len(errors):
        path = os.path.join(os.fspath(out_dir), f"Errors.{fmt}")
        errors.to_parquet(path, index=False) if fmt == "parquet" else errors.to_csv(path, index=False)
        written.append(path)
    return written


class _Plan:
    """One exported table: its metadata columns, text columns and feature columns, in file order."""

    def __init__(self, name: str, features: list[str], text: list[str]):
        self.name = name
        self.meta = list(META) if name == "Image" else list(_OBJECT_META)
        self.text = text
        self.features = features
        self.position = {c: i for i, c in enumerate(features)}
        self.sources = list(SINGLE_CELL_ORDER) if name == "SingleCells" else [name]

    @property
    def columns(self) -> list[str]:
        return self.meta + self.text + self.features


def _text_columns(st: Store, keys: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for key in keys:
        seen.update(dict.fromkeys(st.site_attrs(key).get("image_metadata", {})))
    return list(seen)


def _well_blocks(st: Store, plan: _Plan, keys: list[str]) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The table a well at a time, reading sites in batches (their I/O overlaps)."""
    well, metas, blocks = None, [], []
    for key, attrs, arrays, _ in st.read_sites(keys, plan.sources):
        if attrs["well"] != well and blocks:
            yield pd.concat(metas, ignore_index=True), np.vstack(blocks)
            metas, blocks = [], []
        well = attrs["well"]
        meta, block, _ = st.site_block(attrs, arrays, plan.sources, plan.features)
        metas.append(meta.reindex(columns=plan.meta + plan.text))
        blocks.append(block)
    if blocks:
        yield pd.concat(metas, ignore_index=True), np.vstack(blocks)


class _Writer:
    """Append rows to one file with a fixed schema (context manager giving ``write(meta, block)``).

    Both formats go through pyarrow (its CSV writer is ~20x faster than pandas'). Parquet rows
    are gathered into row groups of about :data:`ROW_GROUP_BYTES`: a writer keeps every row
    group's column metadata until it closes (~0.5 kB per column chunk), so one row group per
    well of a 5,800-column table would cost more than the rows themselves on a 384-well plate.
    Statistics are kept for the metadata columns only, for the same reason.
    """

    def __init__(self, path: str, fmt: str, plan: _Plan):
        import pyarrow as pa

        self.path, self.fmt, self.plan = path, fmt, plan
        self.tmp = f"{path}.partial"
        fields = [pa.field(c, pa.string() if c in ("Metadata_Plate", "Metadata_Well") or c in plan.text
                           else pa.int64()) for c in plan.meta + plan.text]
        fields += [pa.field(c, pa.float64()) for c in plan.features]
        self.schema = pa.schema(fields)
        self.pending: list = []
        self.pending_bytes = 0

    def __enter__(self):
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.tmp, self.schema,
                                           write_statistics=[c for c in self.plan.columns if c.startswith("Metadata_")])
        else:
            import pyarrow.csv as pacsv

            self.writer = pacsv.CSVWriter(self.tmp, self.schema)
        return self.write

    def write(self, meta: pd.DataFrame, block: np.ndarray) -> None:
        import pyarrow as pa

        block = np.asfortranarray(block)  # contiguous columns: no copy per column below
        csv = self.fmt == "csv"  # CSV: NaN as an empty field (null), as pandas writes it
        arrays = [pa.array(meta[c].to_numpy(), type=f.type, from_pandas=True)  # absent text: null
                  for c, f in zip(self.plan.meta + self.plan.text, self.schema)]
        arrays += [pa.array(block[:, j], type=pa.float64(), from_pandas=csv) for j in range(block.shape[1])]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if csv:
            self.writer.write_table(table)
            return
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        if self.pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            import pyarrow as pa

            table = pa.concat_tables(self.pending)  # no copy: one row group of the wells' chunks
            self.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.pending, self.pending_bytes = [], 0

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.fmt == "parquet":
            self._flush()
        self.writer.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)  # a finished file only: never a half-written one
        else:
            try:
                os.remove(self.tmp)
            except OSError:
                pass
        return False
