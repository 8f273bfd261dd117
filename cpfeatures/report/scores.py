"""Profiles and scores from the profiling step, as the report reads them.

The report accepts what the profiling step wrote without depending on its
classes: DataFrames, Parquet/CSV paths, a dict of those, or a result object
whose DataFrame attributes are its tables and whose numbers are its summary
(``percent_replicating``, ``null_p95``, ...). Each table is classified by the
columns it has.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["read_frame", "ScoreTable", "score_tables", "expand_paths", "CORRELATION_COLUMNS", "group_columns"]

#: Columns holding one correlation per group (Percent Replicating / Matching tables).
CORRELATION_COLUMNS = ("median_correlation", "replicate_correlation", "median_replicate_correlation",
                       "matching_correlation", "median_matching_correlation", "correlation")
#: Columns or attributes holding the null's threshold.
THRESHOLD_NAMES = ("null_p95", "null_threshold", "threshold", "null_95th_percentile")
#: Attributes holding a null distribution.
NULL_NAMES = ("null", "null_distribution", "null_correlations", "null_correlation", "null_values")


def read_frame(obj, what: str = "table") -> pd.DataFrame:
    """A DataFrame from a DataFrame or a ``.parquet`` / ``.csv`` / ``.tsv`` path.

    Raises
    ------
    InputError
        Missing file or unknown format.
    """
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise InputError(f"{what} file not found: {path}")
        suffix = "".join(path.suffixes[-2:]).lower()
        try:
            if suffix.endswith(".parquet") or path.is_dir():
                return pd.read_parquet(path)
            if suffix.endswith((".csv", ".csv.gz")):
                return pd.read_csv(path)
            if suffix.endswith((".tsv", ".tsv.gz", ".txt")):
                return pd.read_csv(path, sep="\t")
        except Exception as exc:
            raise InputError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from None
        raise InputError(f"{what} must be a .parquet, .csv or .tsv file: {path}")
    raise InputError(f"{what} must be a DataFrame or a path, not {type(obj).__name__}")


@dataclass
class ScoreTable:
    """One scores table with what the report draws from it.

    Attributes
    ----------
    name : str
    frame : DataFrame
    kind : {"map", "correlation", "other"}
    values : dict
        Scalar summaries given with it (``percent_replicating``, ``null_p95``, ...).
    null : ndarray or None
        The null distribution, when given.
    """

    name: str
    frame: pd.DataFrame
    kind: str
    values: dict = field(default_factory=dict)
    null: np.ndarray | None = None

    @property
    def correlation_column(self) -> str | None:
        """The table's correlation column (the first numeric one of :data:`CORRELATION_COLUMNS`), or None."""
        for c in CORRELATION_COLUMNS:
            if c in self.frame and pd.api.types.is_numeric_dtype(self.frame[c]):
                return c
        return None

    @property
    def threshold(self) -> float | None:
        """The null's 95th percentile: a scalar given with the table, or its constant column."""
        for name in THRESHOLD_NAMES:
            if name in self.values and np.isscalar(self.values[name]):
                return float(self.values[name])
        for name in THRESHOLD_NAMES:
            if name in self.frame:
                col = pd.to_numeric(self.frame[name], errors="coerce").dropna()
                if len(col) and np.allclose(col, col.iloc[0]):
                    return float(col.iloc[0])
        if self.null is not None and np.isfinite(self.null).any():
            return float(np.nanpercentile(self.null, 95))
        return None

    def fraction_above_null(self) -> float | None:
        """Fraction of groups whose correlation exceeds the null's 95th percentile.

        A per-group threshold column is compared row by row; otherwise the scalar
        threshold. This is the definition of Percent Replicating / Matching
        (as a fraction).
        """
        col = self.correlation_column
        if col is None:
            return None
        corr = pd.to_numeric(self.frame[col], errors="coerce")
        per_group = next((n for n in THRESHOLD_NAMES if n in self.frame), None)
        if per_group is not None:
            thr = pd.to_numeric(self.frame[per_group], errors="coerce")
        elif self.threshold is not None:
            thr = pd.Series(self.threshold, index=corr.index)
        else:
            return None
        ok = corr.notna() & thr.notna()
        if not ok.any():
            return None
        return float((corr[ok] > thr[ok]).mean())


    def percent_above_null(self) -> float | None:
        """Percent Replicating / Matching of the table: its ``above_null`` column, else recomputed."""
        if "above_null" in self.frame and len(self.frame):
            flags = self.frame["above_null"]
            if flags.dtype == object:  # CSV round trips may give "True"/"False" strings
                flags = flags.astype(str).str.lower().isin(("true", "1"))
            return 100.0 * float(flags.astype(bool).mean())
        fraction = self.fraction_above_null()
        return None if fraction is None else 100.0 * fraction


def _classify(frame: pd.DataFrame) -> str:
    if "mean_average_precision" in frame:
        return "map"
    if any(c in frame for c in CORRELATION_COLUMNS):
        return "correlation"
    return "other"


def _null_values(value) -> np.ndarray | None:
    """A null distribution as one flat array.

    A dict (``ReplicatingResult.null``: replicate count -> null medians) is
    pooled over its counts: one histogram for all group sizes.
    """
    if isinstance(value, dict):
        parts = [np.asarray(v, dtype=float).ravel() for v in value.values()
                 if isinstance(v, (np.ndarray, list, tuple, pd.Series))]
        return np.concatenate(parts) if parts else None
    if isinstance(value, (np.ndarray, list, tuple, pd.Series)):
        return np.asarray(value, dtype=float).ravel()
    return None


def _from_object(name: str, obj) -> list[ScoreTable]:
    """Tables, scalars and null distributions of a result object (dataclass or plain attributes)."""
    if dataclasses.is_dataclass(obj):
        attrs = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        attrs = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    # Properties (e.g. a computed percent_replicating) count too.
    for k in dir(type(obj)):
        if not k.startswith("_") and isinstance(getattr(type(obj), k, None), property):
            try:
                attrs.setdefault(k, getattr(obj, k))
            except Exception:
                pass
    frames = {k: v for k, v in attrs.items() if isinstance(v, pd.DataFrame)}
    scalars = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()
               if isinstance(v, (int, float, np.number, str)) and not isinstance(v, bool)}
    null = next((_null_values(attrs[k]) for k in NULL_NAMES if k in attrs and _null_values(attrs[k]) is not None),
                None)
    kinds = {k: _classify(f) for k, f in frames.items()}
    if any(kind != "other" for kind in kinds.values()):  # drop auxiliary tables (e.g. MatchingResult.groups)
        frames = {k: f for k, f in frames.items() if kinds[k] != "other"}
    out = []
    for key, frame in frames.items():
        label = name if len(frames) == 1 else f"{name}: {key}"
        out.append(ScoreTable(label, frame, kinds[key], scalars, null))
    if not frames and scalars:
        out.append(ScoreTable(name, pd.DataFrame([scalars]), "other", scalars, null))
    return out


#: Titles of the files the score step writes.
KNOWN_FILES = {"percent_replicating": "Percent Replicating", "percent_matching": "Percent Matching",
               "map": "mAP"}
_RESULT_TITLES = {"ReplicatingResult": "Percent Replicating", "MatchingResult": "Percent Matching"}
_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")


def _title(path: Path, kind: str, i: int) -> str:
    stem = path.name.split(".")[0]
    return KNOWN_FILES.get(stem, stem or {"map": "mAP", "correlation": "correlations"}.get(kind, f"scores {i + 1}"))


def expand_paths(obj) -> list:
    """A folder of score tables -> its tables (the score step's files first); anything else as is."""
    if not isinstance(obj, (str, os.PathLike)) or not Path(obj).is_dir():
        return [obj]
    folder = Path(obj)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(_TABLE_SUFFIXES))
    if not files:
        if any(p.suffix == ".parquet" for p in folder.rglob("*.parquet")):
            return [folder]  # a partitioned Parquet dataset
        raise InputError("no score tables (.csv, .tsv or .parquet) in this folder", folder)
    rank = {name: i for i, name in enumerate(KNOWN_FILES)}
    return sorted(files, key=lambda p: (rank.get(p.name.split(".")[0], len(rank)), p.name))


def score_warnings(scores) -> list[str]:
    """What the scoring warned about (``warnings.txt`` of each folder ``cpfeatures score -o`` wrote)."""
    from ..profile import WARNINGS_FILE

    items = list(scores.values()) if isinstance(scores, dict) else list(scores) \
        if isinstance(scores, (list, tuple)) else [scores]
    out: list[str] = []
    for obj in items:
        if isinstance(obj, (str, os.PathLike)) and (Path(obj) / WARNINGS_FILE).is_file():
            out += [ln.strip() for ln in (Path(obj) / WARNINGS_FILE).read_text(encoding="utf-8").splitlines()
                    if ln.strip()]
    return list(dict.fromkeys(out))


def score_tables(scores) -> list[ScoreTable]:
    """Normalize the ``scores`` argument of :func:`~cpfeatures.report.build_report` to a list of tables.

    Parameters
    ----------
    scores : DataFrame, path, dict, list, result object or None
        A dict maps a title to any of the others. A folder stands for the
        tables in it (what ``cpfeatures score -o DIR`` wrote).

    Returns
    -------
    list of ScoreTable
    """
    if scores is None:
        return []
    if isinstance(scores, dict):
        items = list(scores.items())
    elif isinstance(scores, (list, tuple)):
        items = [(None, s) for s in scores]
    else:
        items = [(None, scores)]
    items = [(name, p) for name, obj in items for p in expand_paths(obj)]
    out = []
    for i, (name, obj) in enumerate(items):
        if isinstance(obj, (pd.DataFrame, str, os.PathLike)):
            frame = read_frame(obj, "scores")
            kind = _classify(frame)
            if name:
                title = name
            elif isinstance(obj, (str, os.PathLike)):
                title = _title(Path(obj), kind, i)
            else:
                title = {"map": "mAP", "correlation": "Percent Replicating"}.get(kind, f"scores {i + 1}")
            out.append(ScoreTable(title, frame, kind))
        elif obj is not None:
            out.extend(_from_object(name or _RESULT_TITLES.get(type(obj).__name__, type(obj).__name__), obj))
    seen: dict[str, int] = {}
    for t in out:  # titles name the figures: keep them unique
        seen[t.name] = seen.get(t.name, 0) + 1
        if seen[t.name] > 1:
            t.name = f"{t.name} ({seen[t.name]})"
    return out


def group_columns(frame: pd.DataFrame) -> list[str]:
    """Non-numeric columns that name groups (replicate group, target, ...)."""
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
