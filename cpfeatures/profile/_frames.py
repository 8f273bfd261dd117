"""Reading, writing and splitting profile tables (metadata columns vs feature columns).

Profiles are pandas DataFrames whose metadata columns start with ``Metadata_``
and whose features carry CellProfiler's compartment prefix (``Cells_``,
``Nuclei_``, ``Cytoplasm_``; ``Image_`` optionally), as pycytominer expects.
Every public verb accepts such a frame or the path of a CSV / TSV / Parquet file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["load_profiles", "write_profiles", "check_profiles_path", "PROFILE_SUFFIXES", "infer_features",
           "metadata_columns", "COMPARTMENTS"]

COMPARTMENTS = ("Cells", "Nuclei", "Cytoplasm")


def _suffixes(path: Path) -> str:
    return "".join(path.suffixes[-2:]).lower()


def load_profiles(data: "pd.DataFrame | str | os.PathLike", what: str = "profiles") -> pd.DataFrame:
    """A profile table from a DataFrame (returned as is) or a CSV/TSV/Parquet file.

    Parameters
    ----------
    data : DataFrame or path
        ``.csv``, ``.csv.gz``, ``.tsv``, ``.txt`` (tab-separated), ``.parquet``, ``.h5ad`` or
        ``.zarr`` (AnnData profiles: obs columns, then X).
    what : str
        What the table is, for error messages ("profiles", "platemap").

    Returns
    -------
    pandas.DataFrame
    """
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise InputError(f"{what} must be a pandas DataFrame or a file path, got {type(data).__name__}")
    path = Path(data)
    if not path.exists():
        raise InputError(f"{what} file not found", path)
    kind = _suffixes(path)
    if kind.endswith((".h5ad", ".zarr")):
        from ..store import read_frame

        frame = read_frame(path)  # InputError naming the file when it is not AnnData
        frame.attrs["source"] = str(path)
        return frame
    try:
        if kind.endswith(".parquet") or kind.endswith(".pq"):
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if any(kind.endswith(s) for s in (".tsv", ".txt", ".tsv.gz", ".txt.gz")) else ","
            frame = pd.read_csv(path, sep=sep, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read {what}: {' '.join(str(exc).split())}", path) from None
    frame.attrs["source"] = str(path)  # error messages about its content can name the file
    return frame


#: The file types profiles are written as (``.h5ad`` / ``.zarr``: AnnData, ``Metadata_`` columns as obs).
PROFILE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".h5ad", ".zarr")


def check_profiles_path(path: "str | os.PathLike") -> Path:
    """``path`` if its suffix is one :func:`write_profiles` writes, else an :class:`InputError`."""
    path = Path(path)
    if not any(str(path).lower().endswith(s) for s in PROFILE_SUFFIXES):
        raise InputError(f"profiles are written as {', '.join(PROFILE_SUFFIXES)}; choose one of these suffixes",
                         path)
    return path


def write_profiles(frame: pd.DataFrame, path: "str | os.PathLike") -> Path:
    """Write a table as Parquet (``.parquet``), CSV (``.csv``, ``.csv.gz``), tab-separated text
    (``.tsv``, ``.txt``, gzipped too) or AnnData (``.h5ad``, ``.zarr``: ``Metadata_`` columns as
    ``obs``, features as ``X``, see :func:`cpfeatures.store._anndata.write_frame`); another suffix is an
    :class:`InputError`."""
    path = check_profiles_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path).lower().rstrip("/").endswith((".h5ad", ".zarr")):
        from ..store import write_frame

        return write_frame(frame, path)
    if _suffixes(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        tab = path.name.lower().endswith((".tsv", ".txt", ".tsv.gz", ".txt.gz"))
        frame.to_csv(path, index=False, sep="\t" if tab else ",")
    return path


def metadata_columns(frame: pd.DataFrame) -> list[str]:
    """Columns starting with ``Metadata_``, in table order."""
    return [c for c in frame.columns if isinstance(c, str) and c.startswith("Metadata_")]


def infer_features(frame: pd.DataFrame, features="infer", image_features: bool = False,
                   compartments=COMPARTMENTS) -> list[str]:
    """The feature columns of a profile table.

    Parameters
    ----------
    frame : DataFrame
    features : "infer" or list of str
        With "infer", the columns whose names start with a compartment (and ``Image_`` if
        ``image_features``), pycytominer's rule; a list is checked against the table.
    image_features : bool
    compartments : sequence of str

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        A listed column is missing, or a feature column holds a value that is not a number
        (``#DIV/0!``, say): the message names the column, its first such value and the file
        the table was read from. A feature is never dropped for such a value, as pycytominer's
        ``aggregate`` and ``normalize`` refuse it too.

    Notes
    -----
    Feature values read as numbers are numbers, numeric text (``"1.5"``) and the
    missing-value markers pycytominer's ``normalize`` reads as NaN (``"None"``, ``"nan"``,
    ``"NA"``, ``"N/A"``, ``"null"``, ``""``, any case) besides NaN, ``None`` and ``pd.NA``;
    :func:`feature_array` converts them. As pycytominer, inferring leaves out ``Image_``
    columns without a single number in them (file names, image payloads) and columns of
    nested values (lists, arrays).
    """
    if not isinstance(features, str):
        features = list(features)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InputError(f"{len(missing)} feature column(s) not in the table, e.g. {missing[:3]}",
                             frame.attrs.get("source"))
        return features
    if features != "infer":
        raise InputError(f'features must be "infer" or a list of column names, got {features!r}')
    prefixes = tuple(f"{c}_" if not c.endswith("_") else c for c in compartments)
    if image_features:
        prefixes += ("Image_",)
    dtypes = frame.dtypes
    numeric = {d: pd.api.types.is_numeric_dtype(d) for d in set(dtypes)}  # thousands of columns, a few dtypes
    out = [c for c, dtype in dtypes.items() if isinstance(c, str) and c.startswith(prefixes)
           and (numeric[dtype] or _is_feature(frame, c))]
    if not out:
        raise InputError("no feature columns found: expected columns starting with "
                         f"{', '.join(prefixes)} (pass features=[...] for other names)", frame.attrs.get("source"))
    return out


#: Text pycytominer's ``normalize`` reads as a missing value (compared stripped and lower-cased).
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "none", "null"})


def _read_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A non-numeric column's values as float64, and a mask of the values that are not numbers.

    Missing values (NaN, None, pd.NA, the text of :data:`MISSING_TEXT`) become NaN; numbers and
    numeric text their value; anything else NaN and flagged.
    """
    values = series.astype(object)
    missing = values.isna().to_numpy(bool, copy=True)
    text = values.map(lambda v: isinstance(v, str)).to_numpy(bool)
    if text.any():
        marker = values[text].str.strip().str.lower().isin(MISSING_TEXT).to_numpy(bool)
        missing[np.flatnonzero(text)[marker]] = True
    numbers = pd.to_numeric(values.where(~missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, np.isnan(numbers) & ~missing


def _is_feature(frame: pd.DataFrame, column: str) -> bool:
    """Whether a non-numeric column with a feature prefix is a feature (see :func:`infer_features`)."""
    values = frame[column]
    present = values.dropna()
    if present.empty:
        return True  # no value: a feature with NaN only
    if present.map(lambda v: not pd.api.types.is_scalar(v)).all():
        return False  # nested payloads, as pycytominer (infer_cp_features) leaves them out
    numbers, bad = _read_numbers(values)
    if not bad.any():
        return True
    if column.startswith("Image_") and np.isnan(numbers).all():
        return False  # not one number: a file name or payload, as pycytominer leaves out non-numeric Image_ columns
    _refuse(frame, column, bad)
    return False


def _refuse(frame: pd.DataFrame, column: str, bad: np.ndarray) -> None:
    first = int(np.flatnonzero(bad)[0])
    raise InputError(f"feature column {column} holds a value that is not a number: {frame[column].iloc[first]!r} "
                     f"(row {first}, {int(bad.sum())} such value(s)); correct or drop it, or pass features=[...] "
                     f"without it (text read as missing: {', '.join(repr(t) for t in sorted(MISSING_TEXT))})",
                     frame.attrs.get("source"))


def feature_array(frame: pd.DataFrame, features: list[str], order: str = "C") -> np.ndarray:
    """Features as a float64 matrix (rows = profiles), C- or Fortran-contiguous.

    pandas keeps a float frame's columns contiguous, so ``order="F"`` (one
    contiguous array per feature, what column-wise statistics want) usually
    needs no copy. Columns of text or objects are read as :func:`infer_features`
    describes (``"None"`` and ``pd.NA`` as NaN); a value that is not a number is an
    :class:`InputError` naming the column and the value.
    """
    dtypes = frame.dtypes
    numeric = {d: pd.api.types.is_numeric_dtype(d) for d in set(dtypes)}
    text = [i for i, f in enumerate(features) if not numeric[dtypes[f]]]
    if not text:
        x = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asfortranarray(x) if order == "F" else np.ascontiguousarray(x)
    # columns of text or objects: read "None", "nan", pd.NA as missing, refuse what is not a number
    x = np.empty((len(frame), len(features)), order=order)
    rest = np.setdiff1d(np.arange(len(features)), text)
    if len(rest):
        x[:, rest] = frame[[features[i] for i in rest]].to_numpy(dtype=np.float64, na_value=np.nan)
    for i in text:
        x[:, i], bad = _read_numbers(frame[features[i]])
        if bad.any():
            _refuse(frame, features[i], bad)
    return x


class UnknownColumnError(InputError):
    """A samples query names a column the profiles do not have (``column``: its name)."""

    def __init__(self, message: str, column: str, path=None):
        super().__init__(message, path)
        self.column = column


def select_rows(frame: pd.DataFrame, samples: str, where: str | None = None) -> pd.DataFrame:
    """``frame`` (``samples == "all"``) or the rows matching a pandas query (see :func:`select_positions`)."""
    positions = select_positions(frame, samples, where)
    return frame if positions is None else frame.iloc[positions]


def select_positions(frame: pd.DataFrame, samples: str, where: str | None = None) -> np.ndarray | None:
    """Row positions matching a pandas query, or None for ``samples == "all"`` (every row).

    Parameters
    ----------
    frame : DataFrame
    samples : str
    where : str, optional
        Which profiles these are ("plate BR00117012"), to begin the error messages with.

    Raises
    ------
    InputError
        A bad query, or one that matches no row; :class:`UnknownColumnError` (an InputError) when
        it names a column the table does not have.
    """
    if samples == "all":
        return None
    lead = f"{where}: " if where else ""
    if not isinstance(samples, str):
        raise InputError(f'{lead}samples must be "all" or a pandas query string, got {samples!r}')
    # the query is evaluated on the metadata columns: pandas builds a resolver per column, which on a
    # profile table of thousands of features costs more than the query (0.2 s a plate); a query that
    # names a feature falls back to the whole table. A fresh RangeIndex makes the result positions.
    meta = [c for c in frame.columns if str(c).startswith("Metadata")]
    try:
        try:
            chosen = (frame[meta] if meta else frame).reset_index(drop=True).query(samples).index
        except pd.errors.UndefinedVariableError:
            chosen = frame.reset_index(drop=True).query(samples).index
    except pd.errors.UndefinedVariableError as exc:
        found = re.search(r"name '([^']+)' is not defined", str(exc))
        column = found.group(1) if found else str(exc)
        shown = ", ".join(meta[:8]) + (" ..." if len(meta) > 8 else "")
        raise UnknownColumnError(f"{lead}samples query {samples!r} names {column}, which is not a column of the "
                                 f"profiles (their metadata columns: {shown or 'none'})", column) from None
    except Exception as exc:  # pandas raises many types for a bad expression
        raise InputError(f"{lead}samples query {samples!r} failed: {exc}") from None
    if len(chosen) == 0:
        raise InputError(f"{lead}samples query {samples!r} matches no profile (of {len(frame)})")
    return chosen.to_numpy(np.int64)
