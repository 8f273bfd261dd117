"""Export a store's tables to Parquet or CSV, a well at a time (AnnData: :mod:`cpfeatures.store._anndata`).

Memory is bounded by one row group whatever the plate size: each table is
written incrementally with one schema for the whole plate, fixed from the
sites' metadata before any row is read. Tables are those pycytominer, DuckDB
and polars read: ``Image``, ``Nuclei``, ``Cells``, ``Cytoplasm``, ``SingleCells``
(the three compartments joined per cell) and ``Errors`` when sites failed.
Columns are named as CytoTable names CellProfiler's (:mod:`cpfeatures.store._names`), or
as the store names them (``names="cpfeatures"``).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import pandas as pd

from ._names import NAMINGS, export_name
from ..pipeline import OBJECT_TABLES
from ._layout import META, SINGLE_CELL_ORDER, StoreError
from ._store import Store, open_store

__all__ = ["export", "FORMATS", "NAMINGS"]

FORMATS = ("parquet", "csv")
#: The compartments of a single-cell row in CytoTable's join order (``names="cytotable"``).
CYTOTABLE_ORDER = ("Cytoplasm", "Cells", "Nuclei")
#: Target size of a Parquet row group (the values held in memory before a group is written).
ROW_GROUP_BYTES = 128 * 2**20
_OBJECT_META = [*META, "Metadata_ObjectNumber"]


def export(store: "str | os.PathLike | Store", out_dir: str | os.PathLike, fmt: str = "parquet",
           single_cells: bool = True, tables: list[str] | None = None, names: str = "cytotable",
           skip_damaged: bool = False, platemap: pd.DataFrame | None = None) -> list[str]:
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
    names : {"cytotable", "cpfeatures"}
        ``"cytotable"``: CytoTable's ``cellprofiler_csv`` names, so that code written for
        CytoTable's output reads these tables: ``Metadata_ImageNumber`` (the site's number,
        1, 2, ... in plate order), ``Metadata_ObjectNumber``, the parent links and object ids
        as ``Metadata_Cells_Parent_Nuclei``, ``Metadata_Nuclei_Number_Object_Number``,
        ``Metadata_Nuclei_Children_Cells_Count`` (not features for pycytominer), Image columns as
        ``Image_FileName_OrigDNA``, ``Image_Count_Cells``; SingleCells has the Image file names
        and the compartments in CytoTable's order (Cytoplasm, Cells, Nuclei). ``Metadata_Plate``,
        ``Metadata_Well`` and (object tables) ``Metadata_Site`` are kept. ``"cpfeatures"``: the
        store's names, as exported before (SingleCells: Cells, Cytoplasm, Nuclei).
    skip_damaged : bool
        Leave damaged sites out, with a warning each, instead of refusing the store
        (:class:`~cpfeatures.store.DamagedStoreError`).
    platemap : DataFrame, optional
        What is in each well (:func:`cpfeatures.profile.platemap_by_well`): its ``Metadata_``
        columns are added to every row after the site's, as text, joined on ``Metadata_Well``
        (and ``Metadata_Plate`` when it has one); a well it does not list gets nulls.

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
    integers, and so are the object ids named ``Metadata_`` (``Metadata_Cells_Parent_Nuclei``:
    CytoTable's names; null where a site has none), image metadata (file names) text,
    features float64 (NaN kept in Parquet, empty fields in CSV).
    """
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r} ({' or '.join(FORMATS)})")
    check_names(names)
    st = open_store(store, skip_damaged=skip_damaged)
    os.makedirs(out_dir, exist_ok=True)
    keys = st.completed_sites()
    wanted = list(tables) if tables else ["Image", *OBJECT_TABLES]
    plans = {name: plan_table(st, keys, name, names, platemap) for name in wanted}
    if single_cells:
        plans["SingleCells"] = plan_table(st, keys, "SingleCells", names, platemap)
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


def check_names(names: str) -> None:
    """Refuse an unknown naming (:data:`NAMINGS`) with a clear error."""
    if names not in NAMINGS:
        raise StoreError(f"unknown column naming {names!r} ({' or '.join(NAMINGS)})")


class _Plan:
    """One exported table: its columns in file order and where each value comes from.

    ``meta`` are the site's metadata columns (integers and text: plate, well, site, object and
    image numbers), ``text`` the image metadata (file names), ``features`` the float64 block's
    columns by their store names. ``columns`` gives the file's names in file order; ``order``
    says, per file column, ``("meta", name)`` or ``("block", index)``.
    """

    def __init__(self, name: str, features: list[str], text: list[str], names: str = "cpfeatures",
                 sources: list[str] | None = None, platemap: pd.DataFrame | None = None):
        self.name = name
        self.naming = names
        self.meta = list(META) if name == "Image" else list(_OBJECT_META)
        if names == "cytotable":
            self.meta = ["Metadata_ImageNumber", *self.meta]
        self.annotations, self.annotation_of = _annotations(platemap, self.meta)
        self.text = text
        self.features = features
        self.position = {c: i for i, c in enumerate(features)}
        self.sources = sources or (list(SINGLE_CELL_ORDER) if name == "SingleCells" else [name])
        table_of = {}  # the compartment of each feature (by its prefix), for its exported name
        for c in features:
            table_of[c] = "Image" if name == "Image" else next(
                (t for t in OBJECT_TABLES if c.startswith(f"{t}_")), self.sources[0])
        self.out = {c: export_name(table_of[c], c, names) for c in features}
        self.meta_out = {c: export_name(name, c, names) for c in self.meta}  # only Image's Metadata_Site changes
        self.meta_out.update({c: c for c in self.annotations})
        self.text_out = {c: export_name("Image", c, names) for c in text}
        ids = [i for i, c in enumerate(features) if names == "cytotable" and self.out[c].startswith("Metadata_")]
        rest = [i for i in range(len(features)) if i not in set(ids)]
        self.order = ([("meta", c) for c in self.meta] + [("meta", c) for c in self.annotations]
                      + [("block", i) for i in ids]
                      + [("meta", c) for c in text] + [("block", i) for i in rest])

    @property
    def columns(self) -> list[str]:
        return [self.meta_out.get(k, self.text_out.get(k)) if kind == "meta" else self.out[self.features[k]]
                for kind, k in self.order]


def _annotations(platemap: pd.DataFrame | None, meta: list[str]):
    """The plate map's columns for the rows, and ``(plate, well) -> {column: text}``."""
    if platemap is None:
        return [], lambda plate, well: {}
    columns = [c for c in platemap.columns if c not in ("Metadata_Well", "Metadata_Plate", *meta)]
    by_plate = "Metadata_Plate" in platemap.columns
    table = {}
    for row in platemap.to_dict("records"):
        key = (str(row["Metadata_Plate"]) if by_plate else None, row["Metadata_Well"])
        table[key] = {c: None if pd.isna(row[c]) else str(row[c]) for c in columns}

    def lookup(plate: str, well: str) -> dict:
        return table.get((str(plate) if by_plate else None, well), {})

    return columns, lookup


def plan_table(st: Store, keys: list[str], name: str, names: str = "cytotable",
               platemap: pd.DataFrame | None = None) -> _Plan:
    """The columns of one exported table (``Image``, a compartment or ``SingleCells``) over ``keys``.

    Columns are the union over sites in first-seen order; SingleCells joins the compartments in
    pycytominer's order (``cpfeatures`` names) or CytoTable's (``cytotable``), with the Image file
    names (``FileName_*``) for CytoTable's.
    """
    text = _text_columns(st, keys)
    if name != "SingleCells":
        features = [c for c in st.table_columns(name, keys) if c != "ObjectNumber"]
        return _Plan(name, features, text if name == "Image" else [], names, platemap=platemap)
    order = list(CYTOTABLE_ORDER if names == "cytotable" else SINGLE_CELL_ORDER)
    merged: dict[str, None] = {}
    for table in order:
        merged.update(dict.fromkeys(c for c in st.table_columns(table, keys) if c != "ObjectNumber"))
    files = [c for c in text if c.startswith("FileName_")] if names == "cytotable" else []
    return _Plan("SingleCells", list(merged), files, names, sources=order, platemap=platemap)


def _text_columns(st: Store, keys: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for key in keys:
        seen.update(dict.fromkeys(st.site_attrs(key).get("image_metadata", {})))
    return list(seen)


def _well_blocks(st: Store, plan: _Plan, keys: list[str]) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The table a well at a time, reading sites in batches (their I/O overlaps)."""
    well, metas, blocks = None, [], []
    for key, attrs, block, meta in site_rows(st, plan, keys):
        if attrs["well"] != well and blocks:
            yield pd.concat(metas, ignore_index=True), np.vstack(blocks)
            metas, blocks = [], []
        well = attrs["well"]
        metas.append(meta)
        blocks.append(block)
    if blocks:
        yield pd.concat(metas, ignore_index=True), np.vstack(blocks)


def site_rows(st: Store, plan: _Plan, keys: list[str]) -> Iterator[tuple[str, dict, np.ndarray, pd.DataFrame]]:
    """Per site, in plate order: (key, attributes, float64 block of ``plan.features``, metadata frame).

    The metadata frame has ``plan.meta + plan.text`` (store names); ``Metadata_ImageNumber`` is the
    site's position in ``keys`` plus one, as CellProfiler numbers the image sets of a run.
    """
    number = {k: i + 1 for i, k in enumerate(keys)}
    for key, attrs, arrays, _ in st.read_sites(keys, plan.sources):
        meta, block, _ = st.site_block(attrs, arrays, plan.sources, plan.features)
        if "Metadata_ImageNumber" in plan.meta:
            meta["Metadata_ImageNumber"] = np.int64(number[key])
        files = attrs.get("image_metadata", {})
        for c in plan.text:
            if c not in meta:
                meta[c] = files.get(c)
        annotation = plan.annotation_of(attrs["plate"], attrs["well"])
        for c in plan.annotations:
            meta[c] = annotation.get(c)
        yield key, attrs, block, meta.reindex(columns=plan.meta + plan.annotations + plan.text)


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
        fields = []
        for (kind, k), name in zip(plan.order, plan.columns):
            text = kind == "meta" and (k in ("Metadata_Plate", "Metadata_Well") or k in plan.text
                                       or k in plan.annotations)
            # the object ids among the store's float64 columns (CytoTable's Metadata_ names) are integers
            ident = kind == "block" and name.startswith("Metadata_")
            fields.append(pa.field(name, pa.string() if text else pa.int64() if kind == "meta" or ident
                                   else pa.float64()))
        self.schema = pa.schema(fields)
        self.pending: list = []
        self.pending_bytes = 0

    def __enter__(self):
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.tmp, self.schema, write_statistics=[
                c for (kind, _), c in zip(self.plan.order, self.plan.columns) if kind == "meta"])
        else:
            import pyarrow.csv as pacsv

            self.writer = pacsv.CSVWriter(self.tmp, self.schema)
        return self.write

    def write(self, meta: pd.DataFrame, block: np.ndarray) -> None:
        import pyarrow as pa

        block = np.asfortranarray(block)  # contiguous columns: no copy per column below
        csv = self.fmt == "csv"  # CSV: NaN as an empty field (null), as pandas writes it
        arrays = [pa.array(meta[k].to_numpy(), type=f.type, from_pandas=True) if kind == "meta"  # absent text: null
                  else pa.array(block[:, k], type=pa.float64(), from_pandas=csv) if f.type == pa.float64()
                  else pa.array(block[:, k], type=pa.float64(), from_pandas=True).cast(pa.int64())  # an id; NaN: null
                  for (kind, k), f in zip(self.plan.order, self.schema)]
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
