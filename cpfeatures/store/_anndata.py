"""AnnData files (``.h5ad``, ``.zarr``) written without anndata, a chunk of rows at a time.

The layout is anndata's on-disk format (anndata 0.8+ "On-disk format" specification): the root
group says ``encoding-type: anndata, 0.1.0``; ``X`` is a dense float64 array (``array, 0.2.0``);
``obs`` and ``var`` are dataframes (``dataframe, 0.2.0``, ``_index``, ``column-order``) whose
columns are numeric arrays, ``categorical`` groups (``codes`` + ``categories``, ``-1`` missing)
or ``string-array`` s; ``layers``, ``obsm``, ``obsp``, ``varm``, ``varp``, ``uns`` are empty
``dict`` groups. HDF5 strings are variable-length UTF-8; Zarr is format 3 (what anndata 0.12
writes by default and reads with zarr-python 3), strings its variable-length UTF-8 type.

anndata itself is not needed (its releases that read Zarr 3 pin pandas below 3). Rows are
appended as they come (a site at a time); every array grows along its rows, so memory is one
chunk of rows (~8 MB of X) plus what the caller hands over.

Single cells follow the scverse community's CellProfiler -> AnnData object (``cp2adata``, see
``docs/store.md``): one row per cell with the compartments side by side, ``obs_names`` 0, 1, ...
(pycytominer reads these) or ``<plate>_<well>_<site>_<object>`` (``obs_names="id"``; in ``obs``
column ``Metadata_ObjectID`` either way), ``var_names`` the feature names verbatim and ``var`` columns
``compartment``, ``family``, ``measurement``, ``channel``, ``channel_2`` (the second image of a
correlation) and ``parameter`` parsed from them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["ANNDATA_SUFFIXES", "AnnDataWriter", "anndata_kind", "parse_features", "write_frame", "read_frame",
           "export_anndata"]

#: File names an AnnData file is written as.
ANNDATA_SUFFIXES = (".h5ad", ".zarr")
#: Target bytes of one chunk of X rows (what the writer holds before it writes).
CHUNK_BYTES = 8 * 2**20
#: obs names of an exported AnnData file: row numbers (pycytominer reads them) or the cells' ids.
OBS_NAMES = ("number", "id")
#: The obs column holding a cell's id ``<plate>_<well>_<site>_<object>``.
ID_COLUMN = "Metadata_ObjectID"
_VAR_COLUMNS = ("compartment", "family", "measurement", "channel", "channel_2", "parameter")


def anndata_kind(path: "str | os.PathLike") -> str | None:
    """``"h5ad"`` or ``"zarr"`` from a path's suffix, else None."""
    name = os.fspath(path).rstrip("/").lower()
    return "h5ad" if name.endswith(".h5ad") else "zarr" if name.endswith(".zarr") else None


# -- var: what a CellProfiler feature name says -------------------------------------------------------
def feature_channels(names: Iterable[str]) -> set[str]:
    """Image (channel) names of a feature list: the ``<image>`` of every ``*_Intensity_MeanIntensity_<image>``."""
    out = set()
    for name in names:
        parts = str(name).split("_")
        if len(parts) == 4 and parts[1:3] == ["Intensity", "MeanIntensity"]:
            out.add(parts[3])
    return out


def parse_features(names: list[str], channels: Iterable[str] | None = None) -> pd.DataFrame:
    """The ``var`` table: what each ``<compartment>_<family>_<measurement>[_<channel>...][_<parameter>]`` says.

    Parameters
    ----------
    names : list of str
        Feature names (kept verbatim as the index, so a mis-parse is visible, not destructive).
    channels : iterable of str, optional
        The image names that can appear in a name (default: those of the ``MeanIntensity``
        features).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``names``; ``compartment`` and ``family`` (the first two tokens),
        ``measurement`` (the next token that is not a channel; a Granularity scale is a
        parameter), ``channel`` and ``channel_2`` (tokens that are channels, in order: two for
        Correlation features), ``parameter`` (the remaining tokens joined by ``_``: texture
        scale/angle/levels, radial bin, neighbor distance, coordinate). Missing parts are None.

    Examples
    --------
    >>> var = parse_features(["Cells_Texture_Contrast_DNA_3_00_256", "Cells_Correlation_K_DNA_ER"], {"DNA", "ER"})
    >>> var.loc["Cells_Texture_Contrast_DNA_3_00_256", ["measurement", "channel", "parameter"]].tolist()
    ['Contrast', 'DNA', '3_00_256']
    >>> var.loc["Cells_Correlation_K_DNA_ER", ["channel", "channel_2"]].tolist()
    ['DNA', 'ER']
    """
    names = [str(n) for n in names]
    known = set(channels) if channels is not None else feature_channels(names)
    rows = []
    for name in names:
        parts = name.split("_")
        rest = parts[2:]
        found = [t for t in rest if t in known]
        others = [t for t in rest if t not in known]
        measurement = others.pop(0) if others else None
        if measurement is not None and measurement.isdigit():  # Granularity_<scale>_<image>
            others.insert(0, measurement)
            measurement = None
        rows.append((parts[0], parts[1] if len(parts) > 1 else None, measurement,
                     found[0] if found else None, found[1] if len(found) > 1 else None,
                     "_".join(others) or None))
    return pd.DataFrame(rows, index=pd.Index(names), columns=list(_VAR_COLUMNS))


# -- the writer ------------------------------------------------------------------------------------------
class _Column:
    """One obs/var column's on-disk encoding: ``kind`` is int64, float64, bool, category or string."""

    def __init__(self, name: str, kind: str, categories: list[str] | None = None):
        self.name, self.kind = name, kind
        self.categories = list(categories or [])
        self.lookup = {c: i for i, c in enumerate(self.categories)}
        n = len(self.categories)
        self.code_dtype = np.int8 if n < 127 else np.int16 if n < 32767 else np.int32

    @classmethod
    def infer(cls, name: str, values: pd.Series) -> "_Column":
        """The encoding of a column from its values (strings and objects: categorical, as anndata writes them)."""
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) and not values.isna().any():
            return cls(name, "bool")
        if pd.api.types.is_integer_dtype(dtype) and not values.isna().any():
            return cls(name, "int64")
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return cls(name, "float64")
        if isinstance(dtype, pd.CategoricalDtype):
            return cls(name, "category", [str(c) for c in dtype.categories])
        return cls(name, "category", sorted({str(v) for v in values.dropna()}))

    def encode(self, values) -> np.ndarray:
        if self.kind == "category":  # a value outside the categories (or missing) is code -1
            series = pd.Series(values, dtype=object)
            series = series.where(series.isna(), series.astype(str))
            return pd.Categorical(series, categories=self.categories).codes.astype(self.code_dtype)
        if self.kind == "string":
            return _strings(values)
        return np.asarray(values, dtype=self.kind)


def _strings(values) -> np.ndarray:
    """Values as an object array of str (what both backends write as variable-length UTF-8)."""
    return np.asarray(values).astype(str).astype(object)


def _chunk_rows(n_vars: int) -> int:
    return int(max(16, min(65536, CHUNK_BYTES // (8 * max(n_vars, 1)))))


class AnnDataWriter:
    """Write an AnnData file a block of rows at a time (context manager; see the module docstring).

    Parameters
    ----------
    path : path-like
        ``.h5ad`` (HDF5) or ``.zarr`` (Zarr format 3 folder). Written to ``<path>.partial`` and
        renamed when complete; an existing file (or AnnData Zarr folder) is replaced.
    var : DataFrame
        The variables: index = feature names, columns written as categoricals or arrays.
    obs_columns : list of _Column
        The obs columns, in order; the obs index is handed to :meth:`append` with each block.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> path = tempfile.mkdtemp() + "/t.h5ad"
    >>> with AnnDataWriter(path, pd.DataFrame(index=["a", "b"]), [_Column("n", "int64")]) as w:
    ...     w.append(["r1", "r2"], {"n": [1, 2]}, np.ones((2, 2)))
    >>> import h5py; h5py.File(path)["X"].shape
    (2, 2)
    """

    def __init__(self, path: "str | os.PathLike", var: pd.DataFrame, obs_columns: list[_Column]):
        self.path = os.fspath(path).rstrip("/")
        self.kind = anndata_kind(self.path)
        if self.kind is None:
            raise InputError(f"AnnData is written as {' or '.join(ANNDATA_SUFFIXES)}; choose one of these suffixes",
                             self.path)
        _refuse_foreign(self.path, self.kind)
        self.var = var
        self.obs_columns = obs_columns
        self.n_vars = len(var)
        self.chunk = _chunk_rows(self.n_vars)
        self.rows = 0
        self.pending_index: list = []
        self.pending_obs: dict[str, list] = {c.name: [] for c in obs_columns}
        self.pending_x: list[np.ndarray] = []
        self.pending_rows = 0
        self.tmp = f"{self.path}.partial"

    # -- backends -----------------------------------------------------------------------------------------
    def _open(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)
        if self.kind == "h5ad":
            import h5py

            self.root = h5py.File(self.tmp, "w")
        else:
            import zarr

            self.root = zarr.open_group(self.tmp, mode="w", zarr_format=3)

    def _group(self, parent, name: str, encoding: str, version: str, **attrs):
        group = parent.create_group(name)
        group.attrs.update({"encoding-type": encoding, "encoding-version": version, **attrs})
        return group

    def _array(self, parent, name: str, dtype, width: int | None = None, chunk: int | None = None,
               data: np.ndarray | None = None, encoding: str = "array"):
        """A growable array (rows along axis 0) or, with ``data``, a written one."""
        text = dtype == "string"
        shape = (0,) if width is None else (0, width)
        chunk = chunk or self.chunk
        chunks = (chunk,) if width is None else (chunk, width)
        if self.kind == "h5ad":
            import h5py

            h5type = h5py.string_dtype("utf-8") if text else dtype
            if data is not None:
                arr = parent.create_dataset(name, data=np.asarray(data, dtype=object) if text else data, dtype=h5type)
            else:
                arr = parent.create_dataset(name, shape=shape, maxshape=(None,) + shape[1:], chunks=chunks, dtype=h5type)
        else:
            zdtype = str if text else dtype
            if data is not None:
                values = np.asarray(data, dtype=object if text else dtype)
                arr = parent.create_array(name, shape=values.shape, dtype=zdtype,
                                          chunks=(max(len(values), 1),) + values.shape[1:])
                if len(values):
                    arr[...] = values
            else:
                arr = parent.create_array(name, shape=shape, dtype=zdtype, chunks=chunks,
                                          fill_value="" if text else None)
        arr.attrs.update({"encoding-type": "string-array" if text else encoding, "encoding-version": "0.2.0"})
        return arr

    def _write_frame_header(self, name: str, columns: list[_Column], index_key: str = "_index"):
        group = self._group(self.root, name, "dataframe", "0.2.0", **{
            "_index": index_key, "column-order": [c.name for c in columns]})
        return group

    def __enter__(self):
        self._open()
        self.root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        for name in ("layers", "obsm", "obsp", "varm", "varp", "uns"):
            self._group(self.root, name, "dict", "0.1.0")
        var_cols = [_Column.infer(c, self.var[c]) for c in self.var.columns]
        var = self._write_frame_header("var", var_cols)
        self._array(var, "_index", "string", data=_strings(self.var.index))
        for col in var_cols:
            self._write_column(var, col, col.encode(self.var[col.name].to_numpy(object)))
        obs = self._write_frame_header("obs", self.obs_columns)
        big = self.chunk * 64  # 1-D obs arrays: bigger chunks than X's rows (fewer, still small, files)
        self.obs_arrays = {"_index": self._array(obs, "_index", "string", chunk=big)}
        for col in self.obs_columns:
            if col.kind == "category":
                group = self._group(obs, col.name, "categorical", "0.2.0", ordered=False)
                self._array(group, "categories", "string", data=np.asarray(col.categories, dtype=object))
                self.obs_arrays[col.name] = self._array(group, "codes", col.code_dtype, chunk=big)
            else:
                self.obs_arrays[col.name] = self._array(obs, col.name, "string" if col.kind == "string" else col.kind,
                                                        chunk=big)
        self.x = self._array(self.root, "X", "float64", width=self.n_vars)
        return self

    def _write_column(self, parent, col: _Column, values: np.ndarray):
        if col.kind == "category":
            group = self._group(parent, col.name, "categorical", "0.2.0", ordered=False)
            self._array(group, "categories", "string", data=np.asarray(col.categories, dtype=object))
            self._array(group, "codes", col.code_dtype, data=values)
        else:
            self._array(parent, col.name, "string" if col.kind == "string" else col.kind, data=values)

    # -- rows ---------------------------------------------------------------------------------------------
    def append(self, index, obs: "pd.DataFrame | dict", x: np.ndarray) -> None:
        """Add rows: their obs names, obs values (by column name) and X block (rows x n_vars)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_vars:
            raise ValueError(f"X block of shape {x.shape}, expected (rows, {self.n_vars})")
        self.pending_index.append(_strings(index))
        for col in self.obs_columns:
            self.pending_obs[col.name].append(col.encode(np.asarray(obs[col.name], dtype=object)
                                                         if col.kind in ("category", "string") else obs[col.name]))
        self.pending_x.append(x)
        self.pending_rows += x.shape[0]
        if self.pending_rows >= self.chunk:
            self._flush(aligned=True)

    def _flush(self, aligned: bool) -> None:
        if not self.pending_rows:
            return
        n = self.pending_rows - self.pending_rows % self.chunk if aligned else self.pending_rows
        if n == 0:
            return
        x = np.concatenate(self.pending_x) if len(self.pending_x) > 1 else self.pending_x[0]
        index = np.concatenate(self.pending_index)
        obs = {k: np.concatenate(v) for k, v in self.pending_obs.items()}
        start, stop = self.rows, self.rows + n
        self._grow(self.x, stop)[start:stop] = x[:n]
        self._grow(self.obs_arrays["_index"], stop)[start:stop] = index[:n]
        for name, values in obs.items():
            self._grow(self.obs_arrays[name], stop)[start:stop] = values[:n]
        self.rows = stop
        # what is left (less than a chunk) stays pending: Zarr chunks are written whole, once
        self.pending_x = [x[n:]] if n < len(x) else []
        self.pending_index = [index[n:]] if n < len(index) else []
        self.pending_obs = {k: ([v[n:]] if n < len(v) else []) for k, v in obs.items()}
        self.pending_rows -= n

    def _grow(self, arr, rows: int):
        arr.resize((rows,) + tuple(arr.shape[1:]))
        return arr

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._flush(aligned=False)
        finally:
            if self.kind == "h5ad":
                self.root.close()
        if exc_type is not None:
            _remove(self.tmp)
            return False
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)
        elif os.path.exists(self.path):
            os.remove(self.path)
        os.replace(self.tmp, self.path)  # a finished file only: never a half-written one
        return False


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def _refuse_foreign(path: str, kind: str) -> None:
    """Never replace a folder that is not an AnnData Zarr group (a store, say), nor a directory by a file."""
    if kind == "h5ad":
        if os.path.isdir(path):
            raise InputError("is a folder; an .h5ad file is written here", path)
        return
    if os.path.isfile(path):
        raise InputError("is a file; an AnnData .zarr folder is written here", path)
    if os.path.isdir(path):
        try:
            meta = json.loads((Path(path) / "zarr.json").read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("attributes", {}).get("encoding-type") != "anndata":
            raise InputError("folder exists and is not an AnnData Zarr folder; choose a new output path", path)


# -- frames and stores -------------------------------------------------------------------------------------
def write_frame(frame: pd.DataFrame, path: "str | os.PathLike", index: list[str] | None = None) -> Path:
    """Write a table (profiles) as AnnData: ``Metadata_`` and non-numeric columns to ``obs``, the rest to ``X``.

    Parameters
    ----------
    frame : DataFrame
    path : path-like
        ``.h5ad`` or ``.zarr``.
    index : list of str, optional
        obs names (default: the row numbers ``"0"``, ``"1"``, ..., which pycytominer's
        ``load_profiles`` needs).

    Returns
    -------
    Path
    """
    meta = [c for c in frame.columns if str(c).startswith("Metadata_")
            or not pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c].dtype)]
    features = [c for c in frame.columns if c not in set(meta)]
    if index is None:
        index = np.arange(len(frame))
    columns = [_Column.infer(str(c), frame[c]) for c in meta]
    var = parse_features([str(c) for c in features])
    with AnnDataWriter(path, var, columns) as out:
        out.append(index, {str(c): frame[c].to_numpy() for c in meta},
                   frame[features].to_numpy(dtype=np.float64, na_value=np.nan))
    return Path(path)


def read_frame(path: "str | os.PathLike") -> pd.DataFrame:
    """An AnnData file (dense X) as one table: the obs columns, then one column per variable.

    Reads what :func:`write_frame` and anndata write for profiles: numeric, boolean, string and
    categorical obs columns (a categorical becomes its values, missing as NaN); the obs names are
    dropped (profiles are identified by their ``Metadata_`` columns).

    Parameters
    ----------
    path : path-like
        ``.h5ad`` file or ``.zarr`` folder.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        Not an AnnData file, or one whose X is sparse.
    """
    path = os.fspath(path)
    try:
        if anndata_kind(path) == "h5ad":
            import h5py

            root = h5py.File(path, "r")
        else:
            import zarr

            root = zarr.open_group(path, mode="r")
    except Exception as exc:
        raise InputError(f"cannot read AnnData ({type(exc).__name__}: {exc})", path) from None
    try:
        if root.attrs.get("encoding-type") != "anndata":
            raise InputError("not an AnnData file (no encoding-type 'anndata')", path)
        if root["X"].attrs.get("encoding-type") != "array":
            raise InputError(f"X is {root['X'].attrs.get('encoding-type')}, only dense X is read", path)

        def column(node) -> np.ndarray:
            if node.attrs.get("encoding-type") == "categorical":
                codes = np.asarray(node["codes"][...])
                categories = _text(node["categories"])
                return np.where(codes >= 0, categories[np.clip(codes, 0, None)] if len(categories) else None, None)
            return _text(node) if node.attrs.get("encoding-type") == "string-array" else np.asarray(node[...])

        obs, var = root["obs"], root["var"]
        names = [str(c) for c in obs.attrs.get("column-order", [])]
        features = [str(v) for v in _text(var[var.attrs["_index"]])]
        x = np.asarray(root["X"][...], dtype=np.float64)
        frame = pd.DataFrame({c: column(obs[c]) for c in names})
        return pd.concat([frame, pd.DataFrame(x, columns=features)], axis=1)
    finally:
        if hasattr(root, "close"):
            root.close()


def _text(node) -> np.ndarray:
    """A string array's values as str (h5py hands variable-length strings over as bytes unless asked)."""
    return np.asarray(node.asstr()[...] if hasattr(node, "asstr") else node[...], dtype=object)


def export_anndata(store, path: "str | os.PathLike", names: str = "cytotable", obs_names: str = "number",
                   skip_damaged: bool = False, platemap=None) -> str:
    """Write a store's single cells as one AnnData file, a site at a time (memory: a read batch of sites).

    Parameters
    ----------
    store : path, URL or Store
    path : path-like
        ``cells.h5ad`` or ``cells.zarr``.
    names : {"cytotable", "cpfeatures"}
        Column naming as for the Parquet export (:func:`cpfeatures.store.export`).
    obs_names : {"number", "id"}
        ``"number"``: ``"0"``, ``"1"``, ... (row numbers, as pycytominer's and CytoTable's AnnData
        writers name rows: pycytominer's ``load_profiles`` reads only such names); ``"id"``: the
        cell's id ``<plate>_<well>_<site>_<object>`` (cp2adata's obs names). The id is in the obs
        column ``Metadata_ObjectID`` either way.

    skip_damaged : bool
        Leave damaged sites out, with a warning each, instead of refusing the store.
    platemap : DataFrame, optional
        What is in each well (:func:`cpfeatures.profile.platemap_by_well`): its columns become
        ``obs`` categoricals (see :func:`cpfeatures.store.export`).

    Returns
    -------
    str
        The path written.

    Notes
    -----
    One row per cell, the columns of the ``SingleCells`` export: ``X`` holds the features
    (float64, NaN kept), ``obs`` the metadata (the cell's id, plate, well, site, object and
    image numbers, the parent links and object ids, the images' file names); ``var`` the
    parsed feature names. Plate, well and file
    names are categoricals whose categories come from the sites' metadata before any row is
    read, so rows can be written as they come.
    """
    from ._export import check_names, plan_table, site_rows
    from ._store import open_store

    check_names(names)
    if obs_names not in OBS_NAMES:
        raise InputError(f"unknown obs names {obs_names!r} ({' or '.join(OBS_NAMES)})")
    st = open_store(store, skip_damaged=skip_damaged)
    keys = st.completed_sites()
    if not keys:
        from ._layout import StoreError

        raise StoreError("the store holds no completed site to export", st.url)
    plan = plan_table(st, keys, "SingleCells", names, platemap)
    id_cols = [k for kind, k in plan.order if kind == "block" and names == "cytotable"
               and plan.out[plan.features[k]].startswith("Metadata_")]
    if names == "cpfeatures":  # the ids are metadata whatever their names
        from ._names import is_identifying

        id_cols = [i for i, c in enumerate(plan.features) if is_identifying(c.split("_", 1)[-1])]
    x_cols = [i for i in range(len(plan.features)) if i not in set(id_cols)]
    attrs = [st.site_attrs(k) for k in keys]
    categories = {"Metadata_Plate": sorted({str(a["plate"]) for a in attrs}),
                  "Metadata_Well": sorted({str(a["well"]) for a in attrs})}
    for c in plan.text:
        categories[c] = sorted({str(a.get("image_metadata", {})[c]) for a in attrs if c in a.get("image_metadata", {})})
    for c in plan.annotations:
        categories[c] = sorted({v for a in attrs if (v := plan.annotation_of(a["plate"], a["well"]).get(c)) is not None})
    obs_cols, sources = [_Column(ID_COLUMN, "string")], [("id", None)]
    for kind, k in plan.order:
        if kind == "meta":
            out = plan.meta_out.get(k, plan.text_out.get(k))
            obs_cols.append(_Column(out, "category", categories[k]) if k in categories else _Column(out, "int64"))
            sources.append(("meta", k))
        elif k in set(id_cols):
            obs_cols.append(_Column(plan.out[plan.features[k]], "float64"))
            sources.append(("block", k))
    features = [plan.out[plan.features[i]] for i in x_cols]
    var = parse_features(features, channels=st.info.get("roles") or None)
    with AnnDataWriter(path, var, obs_cols) as out:
        for _, attrs_, block, meta in site_rows(st, plan, keys):
            numbers = meta["Metadata_ObjectNumber"].to_numpy(np.int64).astype(str)
            ids = np.char.add(f"{attrs_['plate']}_{attrs_['well']}_{int(attrs_['site'])}_", numbers)
            obs = {col.name: (ids if kind == "id" else meta[k].to_numpy() if kind == "meta" else block[:, k])
                   for col, (kind, k) in zip(obs_cols, sources)}
            index = ids if obs_names == "id" else np.arange(out.rows + out.pending_rows,
                                                           out.rows + out.pending_rows + len(ids))
            out.append(index, obs, block[:, x_cols])
    return os.fspath(path)
