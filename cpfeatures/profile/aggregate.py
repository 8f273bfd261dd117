"""aggregate: single cells -> one profile per well (or any strata), pycytominer's semantics.

From a run's store, cells are read one well at a time (the store's sites are
already merged per cell: object ``i`` of Nuclei, Cells and Cytoplasm is one
cell), so memory is bounded by the largest well, not the plate.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from ..errors import InputError
from ._frames import feature_array, infer_features, load_profiles

__all__ = ["aggregate"]

_OPERATIONS = ("median", "mean")


def _is_store(data) -> bool:
    from ..store import Store, local_zarr_kind

    if isinstance(data, Store):
        return True
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        kind = local_zarr_kind(path)
        if kind is not None:  # a local Zarr group: a run's store, or AnnData profiles written as .zarr
            # AnnData profiles are a table; any other group is a store (its reader says if it is not one)
            return kind != "anndata"
        return path.rstrip("/").endswith(".zarr")  # remote or missing: the store's reader says what is wrong
    return False


def _group(frame: pd.DataFrame, strata: list[str], features: list[str], operation: str) -> pd.DataFrame:
    missing = [s for s in strata if s not in frame.columns]
    if missing:
        raise InputError(f"strata column(s) {missing} not in the single-cell table")
    # one float block: a frame of thousands of separately built columns makes pandas warn and crawl
    # ("None" or pd.NA read as missing, a value that is not a number refused naming its column)
    values = pd.DataFrame(feature_array(frame, features, order="F"), columns=features, index=frame.index)
    keys = [frame[s] for s in strata]
    grouped = values.groupby(keys, dropna=False, sort=True)
    medians = grouped.median() if operation == "median" else grouped.mean()
    counts = grouped.size().astype(np.int64).rename("Metadata_Object_Count")
    out = pd.concat([counts, medians], axis=1).reset_index()
    return out.drop(columns=[c for c in ("ImageNumber", "ObjectNumber") if c in out.columns])


def _is_id(column: str) -> bool:
    """A store column that is an object id, not a measurement: ``Cells_Parent_Nuclei``,
    ``Nuclei_Number_Object_Number``, ``Nuclei_Children_Cells_Count``."""
    from ..store import is_identifying

    return "_" in column and is_identifying(column.split("_", 1)[1])


def _well_frames(data, skip_damaged: bool = False) -> Iterator[pd.DataFrame]:
    from ..store import open_store

    yield from open_store(data, skip_damaged=skip_damaged).iter_wells()


def aggregate(data, strata: Iterable[str] = ("Metadata_Plate", "Metadata_Well"), operation: str = "median",
              features="infer", image_features: bool = False, skip_damaged: bool = False) -> pd.DataFrame:
    """Aggregate single cells into profiles.

    Parameters
    ----------
    data : DataFrame, path of a table, run store (``.zarr`` path or :class:`~cpfeatures.store.Store`)
        Single cells with ``Metadata_`` columns and compartment-prefixed features.
        A store is read one well at a time.
    strata : sequence of str
        Columns whose unique combinations define a profile (CPJUMP1: plate and well).
    operation : {"median", "mean"}
    features : "infer" or list of str
        Feature columns (see :func:`~cpfeatures.profile.infer_features`).
    image_features : bool
        Also aggregate ``Image_`` columns when inferring features.
    skip_damaged : bool
        From a store: leave damaged sites out, with a warning each, instead of refusing it.

    Returns
    -------
    pandas.DataFrame
        ``strata``, ``Metadata_Object_Count`` (cells per profile), then the
        aggregated features; one row per stratum, sorted by the strata.

    Notes
    -----
    Equal to ``pycytominer.aggregate(..., compute_object_count=True)``: NaN values
    are skipped per feature, a stratum whose feature is NaN in every cell gets NaN.
    A feature value that is not a number (``#DIV/0!``) is an :class:`~cpfeatures.errors.InputError`
    naming the column and the value (pycytominer refuses it too); ``"None"``, ``"nan"`` and
    ``pd.NA`` are missing values, as pycytominer's ``normalize`` reads them.
    From a store, the inferred features leave out the object ids (``Cells_Parent_Nuclei``,
    ``*_Number_Object_Number``, ``*_Children_*_Count``), as pycytominer does on the
    exported tables, where they are named ``Metadata_`` (CytoTable's convention).
    Streaming per well requires ``Metadata_Well`` in ``strata`` (each profile then
    lies within one well); other strata read the whole store at once.
    """
    strata = [strata] if isinstance(strata, str) else list(strata)
    if not strata:
        raise InputError("aggregate needs at least one strata column")
    operation = str(operation).lower()
    if operation not in _OPERATIONS:
        raise InputError(f"aggregate operation must be one of {_OPERATIONS}, got {operation!r}")
    if _is_store(data):
        frames = _well_frames(data, skip_damaged)
        if "Metadata_Well" not in strata:
            frames = iter([pd.concat(list(frames), ignore_index=True)])
        parts = []
        chosen = None
        for frame in frames:
            if frame.empty:
                continue
            if chosen is None:
                chosen = infer_features(frame, features, image_features)
                if isinstance(features, str):  # ids are not measurements (CytoTable's export names them Metadata_)
                    chosen = [c for c in chosen if not _is_id(c)]
            parts.append(_group(frame, strata, [c for c in chosen if c in frame.columns], operation))
        if not parts:
            raise InputError("the store holds no completed site with cells to aggregate",
                             os.fspath(getattr(data, "url", data)))
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values(strata, kind="stable").reset_index(drop=True)
    frame = load_profiles(data, "single-cell table")
    return _group(frame, strata, infer_features(frame, features, image_features), operation)
