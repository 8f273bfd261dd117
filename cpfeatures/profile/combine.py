"""combine_tables, join_plate_metadata: several profile tables -> the one table that is scored.

The CPJUMP1 notebooks score compounds, ORFs and CRISPR guides together: each modality's
table has its own annotation names (a compound's ``Metadata_target_list``, a gene's
``Metadata_gene``) and no column saying which modality it is. :func:`combine_tables`
renames and tags each table, then concatenates them on the columns they share;
:func:`join_plate_metadata` adds the per-plate columns of JUMP's
``experiment-metadata.tsv`` (cell type, time point, ...) and keeps the plates it lists, in
its order, as the notebooks concatenate them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import InputError
from ._frames import load_profiles

__all__ = ["combine_tables", "join_plate_metadata"]


def _pairs(rename) -> list[tuple[str, str]]:
    if rename is None:
        return []
    items = rename.items() if isinstance(rename, Mapping) else rename
    pairs = []
    for item in items:
        if isinstance(item, str) or len(item) != 2:
            raise InputError(f"rename: expected (old, new) pairs or a mapping, got {item!r}")
        pairs.append((str(item[0]), str(item[1])))
    return pairs


def combine_tables(tables, rename=None, tag=None) -> pd.DataFrame:
    """Profile tables renamed, tagged and concatenated on the columns they share.

    Parameters
    ----------
    tables : DataFrame, path, or a list of them
        Profile tables (CSV, TSV, Parquet, AnnData files or frames), e.g. one per modality.
    rename : mapping or list of (old, new) pairs, optional
        In each table that has column ``old``, it becomes ``new`` (replacing a ``new``
        column there), in the order given: ``{"Metadata_target_list": "Metadata_gene"}``
        matches compounds' target lists with genes, as the CPJUMP1 notebooks rename
        ``Metadata_target``.
    tag : mapping, optional
        Column -> one value per table, in the order of ``tables``: the column is set
        (replaced) in each table to its value and put first, e.g.
        ``{"Metadata_modality": ["compound", "orf"]}``.

    Returns
    -------
    DataFrame
        The one table as is (renamed and tagged), or the tables one under the other with
        the columns every table has (a fresh 0..n-1 index).

    Raises
    ------
    InputError
        A table that cannot be read (naming the file), ``tag`` values not one per table.

    Examples
    --------
    >>> compounds = pd.DataFrame({"Metadata_target_list": ["A|B"], "Metadata_gene": ["-"], "Cells_x": [1.0]})
    >>> genes = pd.DataFrame({"Metadata_gene": ["A"], "Cells_x": [2.0]})
    >>> combine_tables([compounds, genes], rename={"Metadata_target_list": "Metadata_gene"},
    ...                tag={"Metadata_modality": ["compound", "orf"]})
      Metadata_modality Metadata_gene  Cells_x
    0          compound           A|B      1.0
    1               orf             A      2.0
    """
    if isinstance(tables, (str, os.PathLike, pd.DataFrame)):
        tables = [tables]
    tables = list(tables)
    if not tables:
        raise InputError("no profile tables to combine")
    pairs = _pairs(rename)
    tagged = []
    for column, values in (tag or {}).items():
        values = [values] if isinstance(values, str) else list(values)
        if len(values) != len(tables):
            raise InputError(f"tag {column!r}: {len(values)} value(s) for {len(tables)} table(s); one per table")
        tagged.append((str(column), values))
    frames = []
    for k, source in enumerate(tables):
        table = load_profiles(source)
        for old, new in pairs:
            if old in table.columns:
                table = table.drop(columns=[new], errors="ignore").rename(columns={old: new})
        for column, values in tagged:
            table = table.drop(columns=[column], errors="ignore")  # a copy: the caller's frame is not changed
            table.insert(0, column, values[k])  # a metadata column, first as metadata are
        frames.append(table)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, join="inner")


def join_plate_metadata(frame, path) -> pd.DataFrame:
    """Per-plate columns (JUMP's ``experiment-metadata.tsv``) joined onto profiles by their plate.

    The plate table chooses the plates: profiles of plates it does not list are left out
    (with a warning naming them), and the plates come in its order, each plate's rows in
    theirs, as the CPJUMP1 notebooks concatenate a group's plates (the paper's null draws
    rows by position).

    Parameters
    ----------
    frame : DataFrame or path
        Profiles with a ``Metadata_Plate`` column.
    path : path or DataFrame
        One row per plate with an ``Assay_Plate_Barcode`` column (CSV, or tab-separated
        ``.tsv`` / ``.txt``). Its columns are joined as ``Metadata_<name>`` (names already
        starting with ``Metadata_`` kept); the profiles' own columns win.

    Returns
    -------
    DataFrame
        The joined profiles, metadata columns first, a fresh 0..n-1 index.

    Raises
    ------
    InputError
        No ``Assay_Plate_Barcode`` in the plate table or no ``Metadata_Plate`` in the
        profiles, a plate listed twice, or no profile of a listed plate (naming the file).

    Examples
    --------
    >>> profiles = pd.DataFrame({"Metadata_Plate": ["P1", "P2", "P1"], "Cells_x": [1.0, 2.0, 3.0]})
    >>> plates = pd.DataFrame({"Assay_Plate_Barcode": ["P2", "P1"], "Cell_type": ["U2OS", "A549"]})
    >>> join_plate_metadata(profiles, plates)
      Metadata_Plate Metadata_Cell_type  Cells_x
    0             P2               U2OS      2.0
    1             P1               A549      1.0
    2             P1               A549      3.0
    """
    frame = load_profiles(frame)
    where = None if isinstance(path, pd.DataFrame) else path
    plates = load_profiles(path, "plate metadata")
    plates = plates.rename(columns={c: c if str(c).startswith("Metadata_") else f"Metadata_{c}" for c in plates})
    key = "Metadata_Assay_Plate_Barcode"
    if key not in plates.columns or "Metadata_Plate" not in frame.columns:
        raise InputError("--plate-metadata joins its Assay_Plate_Barcode with the profiles' Metadata_Plate; "
                         f"{'the plate table' if key not in plates.columns else 'the profiles'} lack(s) it", where)
    if plates[key].duplicated().any():
        raise InputError(f"plate {plates.loc[plates[key].duplicated(), key].iloc[0]!r} has several rows", where)
    plates = plates.drop(columns=[c for c in plates.columns if c in frame.columns and c != key])
    plates = plates.rename(columns={key: "Metadata_Plate"}).astype({"Metadata_Plate": str})
    joined = frame.astype({"Metadata_Plate": str}).merge(plates, on="Metadata_Plate", how="left", indicator=True)
    lost = sorted(set(joined.loc[joined["_merge"] == "left_only", "Metadata_Plate"]))
    if lost:  # the table chooses the plates, as the notebooks' filtered experiment table does
        warnings.warn(f"{len(lost)} plate(s) not in {'the plate table' if where is None else where} are left out: "
                      f"{', '.join(lost[:5])}", stacklevel=2)
        joined = joined[joined["_merge"] == "both"]
        if joined.empty:
            raise InputError("no profile is of a plate in the plate table", where)
    # plates in the plate table's order, each plate's rows in theirs: the notebooks concatenate a group's
    # plates as their experiment table lists them, and the paper's null draws rows by position
    position = {plate: k for k, plate in enumerate(plates["Metadata_Plate"])}
    rank = joined["Metadata_Plate"].map(position).fillna(len(position))
    joined = joined.drop(columns="_merge").iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
    meta = [c for c in joined.columns if str(c).startswith("Metadata_")]
    known = set(meta)
    return joined[meta + [c for c in joined.columns if c not in known]]
