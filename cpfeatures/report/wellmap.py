"""What is in each well, for the report: perturbation labels and control roles from a plate map.

The report labels wells with their perturbation in heatmaps, overlays and
correlation figures, and scores controls against each other, so it needs one
row per well saying what was put there. That comes from, in this order:

1. a plate map given to the report: a flat file (CSV, or tab-separated
   ``.txt``/``.tsv``, read by :func:`cpfeatures.profile.read_platemap`) or a
   JUMP plate-map folder (``barcode_platemap.csv`` + ``platemap/``, read by
   :func:`cpfeatures.profile.read_jump_platemaps`, the store's plate id being
   the barcode), with optional external perturbation metadata;
2. the annotations of the profiles given to the report (``Metadata_`` columns);
3. a ``platemap.csv`` beside the plate's images (the bundled example plate has one).

The label of a well is the first present of :data:`LABEL_COLUMNS`. A well is a
negative control when its ``Metadata_control_type`` or ``Metadata_pert_type`` is
``negcon``, or, in JUMP compound maps, when it has a solvent but no
``broad_sample`` (the DMSO wells); a positive control when its control type
starts with ``poscon`` or its perturbation type is ``poscon``. Queries given as
``negcon=`` / ``poscon=`` (pandas syntax on the ``Metadata_`` columns) replace
these rules.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .layout import row_labels

__all__ = ["well_annotations", "label_of", "well_tips", "LABEL_COLUMNS", "GROUP_COLUMNS", "NEGATIVE", "POSITIVE"]

#: Columns that name a well's perturbation, in order of preference.
LABEL_COLUMNS = ("Metadata_pert_iname", "Metadata_gene", "Metadata_Symbol", "Metadata_broad_sample",
                 "Metadata_pert_id", "Metadata_treatment", "Metadata_compound", "Metadata_solvent")
#: Profile annotation columns whose values define the well groups (overlays are drawn one per group, the
#: correlation matrix is ordered by them), in order of preference.
GROUP_COLUMNS = ("Metadata_control_type", "Metadata_pert_type", "Metadata_pert_iname", "Metadata_broad_sample")
#: Values of the ``control`` column.
NEGATIVE, POSITIVE = "negative control", "positive control"


def _present(values: pd.Series) -> np.ndarray:
    """True where a value is given (not missing, not blank, not the text "nan")."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return ((text != "") & (text.str.lower() != "nan")).to_numpy(bool)


def _labels(frame: pd.DataFrame) -> pd.Series:
    out = np.full(len(frame), "", dtype=object)
    for column in LABEL_COLUMNS:
        if column in frame:
            fill = (out == "") & _present(frame[column])
            out[fill] = frame[column].astype(object).to_numpy()[fill]
    return pd.Series([str(v).strip() for v in out], index=frame.index, dtype=object)


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as lower-case stripped text, "" where missing."""
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    values = frame[name]
    return values.astype(object).where(values.notna(), "").astype(str).str.strip().str.lower()


def _roles(frame: pd.DataFrame, negcon: str | None, poscon: str | None) -> pd.Series:
    from ..profile import select_rows

    role = pd.Series("", index=frame.index, dtype=object)
    ctype, ptype = _text(frame, "Metadata_control_type"), _text(frame, "Metadata_pert_type")
    if poscon is not None:
        role[select_rows(frame, poscon).index] = POSITIVE
    else:
        role[(ctype.str.startswith("poscon") | (ptype == "poscon")).to_numpy(bool)] = POSITIVE
    if negcon is not None:
        role[select_rows(frame, negcon).index] = NEGATIVE
    else:
        neg = ((ctype == "negcon") | (ptype == "negcon")).to_numpy(bool, copy=True)
        if "Metadata_broad_sample" in frame and "Metadata_solvent" in frame:  # JUMP: DMSO wells name no sample
            neg = neg | ~_present(frame["Metadata_broad_sample"]) & _present(frame["Metadata_solvent"])
        role[neg] = NEGATIVE
    return role


def _from_platemap(platemap, plate_id: str | None, external_metadata, join_on: str | None) -> pd.DataFrame:
    from ..profile import annotate, read_jump_platemaps, read_platemap
    from ..profile import load_profiles

    if isinstance(platemap, (str, os.PathLike)) and Path(platemap).is_dir():
        maps = read_jump_platemaps(platemap, external_metadata)
        if str(plate_id) not in maps:
            raise InputError(f"plate {plate_id} is not in barcode_platemap.csv ({len(maps)} plates listed): give "
                             "its plate-map file instead (platemap/<Plate_Map_Name>.txt)",
                             Path(platemap) / "barcode_platemap.csv")
        frame, ext = maps[str(plate_id)]
    else:
        frame = read_platemap(platemap)
        ext = None if external_metadata is None else load_profiles(external_metadata, "external metadata")
        if "Metadata_Plate" in frame and plate_id is not None and \
                str(plate_id) in set(frame["Metadata_Plate"].astype(str)):
            frame = frame[frame["Metadata_Plate"].astype(str) == str(plate_id)]
    if ext is not None:
        on = join_on or ("Metadata_broad_sample" if "Metadata_broad_sample" in frame else None)
        if on is None:
            raise InputError("external metadata given, but the plate map has no broad_sample column to join on: "
                             "name the column (external_join_on)")
        # annotate() joins plate-map rows onto "profiles" by well: the plate map's own wells stand in for them.
        wells = read_platemap(frame)
        well_col = next(c for c in ("Metadata_Well", "Metadata_well_position", "Metadata_well",
                                    "Metadata_WellPosition") if c in wells)
        base = pd.DataFrame({"Metadata_Well": wells[well_col].astype(str)})
        frame = annotate(base, frame, external_metadata=ext, external_join_on=on)
    return frame


def _well_column(frame: pd.DataFrame) -> str:
    for name in ("Metadata_Well", "Metadata_well_position", "Metadata_well", "Metadata_WellPosition"):
        if name in frame:
            return name
    raise InputError("the plate map has no well column (Metadata_Well, well_position, ...)")


def well_annotations(platemap=None, profiles: pd.DataFrame | None = None, plate_folder=None,
                     plate_id: str | None = None, external_metadata=None, join_on: str | None = None,
                     negcon: str | None = None, poscon: str | None = None) -> tuple[pd.DataFrame | None, str]:
    """One row per well: its perturbation label, control role and plate-map columns.

    Parameters
    ----------
    platemap : path or DataFrame, optional
        A plate map file or a JUMP plate-map folder.
    profiles : DataFrame, optional
        Annotated well profiles (used when no plate map is given).
    plate_folder : path, optional
        The plate's folder: its ``platemap.csv`` is used when nothing else is given.
    plate_id : str, optional
        The store's plate (a JUMP barcode; rows of a multi-plate map).
    external_metadata : path or DataFrame, optional
        Perturbation metadata joined on ``join_on`` (default ``broad_sample``).
    join_on : str, optional
    negcon, poscon : str, optional
        Queries selecting the negative / positive control wells.

    Returns
    -------
    annotations : DataFrame or None
        Indexed by well name (``D08``): ``perturbation``, ``control`` (``""``,
        :data:`NEGATIVE` or :data:`POSITIVE`) and the ``Metadata_`` columns;
        None when no source is available.
    source : str
        Where the annotations came from, for the report.

    Raises
    ------
    InputError
        An unreadable plate map, a plate missing from a JUMP folder, a bad query.

    Examples
    --------
    >>> wells, source = well_annotations("data/example_plate/platemap.csv")   # doctest: +SKIP
    >>> wells.loc["D14", ["perturbation", "control"]].tolist()                # doctest: +SKIP
    ['DMSO', 'negative control']
    """
    from ..profile import canonical_well

    if platemap is not None:
        frame, source = _from_platemap(platemap, plate_id, external_metadata, join_on), f"plate map {platemap}"
    elif profiles is not None and any(str(c).startswith("Metadata_") and c not in ("Metadata_Well", "Metadata_Plate")
                                      for c in profiles.columns):
        frame = profiles[[c for c in profiles.columns if str(c).startswith("Metadata_")]]
        if "Metadata_Plate" in frame and plate_id is not None and \
                str(plate_id) in set(frame["Metadata_Plate"].astype(str)):
            frame = frame[frame["Metadata_Plate"].astype(str) == str(plate_id)]
        source = "the profiles' annotations"
    elif plate_folder is not None and "://" not in str(plate_folder) and \
            (Path(plate_folder) / "platemap.csv").is_file():
        path = Path(plate_folder) / "platemap.csv"
        frame, source = _from_platemap(path, plate_id, external_metadata, join_on), f"plate map {path}"
    else:
        return None, "no plate map (give --platemap)"
    column = _well_column(frame)
    wells = frame[column].map(lambda w: canonical_well(str(w)))
    frame = frame.loc[wells.notna().to_numpy()].copy()
    frame.index = pd.Index(wells.dropna().to_numpy(), name="well")
    frame = frame[~frame.index.duplicated(keep="first")]
    out = pd.DataFrame({"perturbation": _labels(frame).to_numpy(), "control": _roles(frame, negcon, poscon).to_numpy()},
                       index=frame.index)
    return pd.concat([out, frame.drop(columns=[c for c in ("perturbation", "control") if c in frame])], axis=1), source


def label_of(annotations: pd.DataFrame | None, wells) -> np.ndarray:
    """The perturbation label of each well (``""`` when unknown)."""
    wells = list(wells)
    if annotations is None:
        return np.array([""] * len(wells), dtype=object)
    return annotations["perturbation"].reindex(wells).fillna("").to_numpy(dtype=object)


def well_tips(shape: tuple[int, int], annotations: pd.DataFrame | None) -> np.ndarray:
    """The tooltip head of every well of the layout: ``"D08 FK-866 (positive control)"``.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)`` of the plate layout.
    annotations : DataFrame or None
        From :func:`well_annotations`; without them a tip is the well's name.

    Returns
    -------
    ndarray of str, shape ``shape``
    """
    rows, cols = shape
    letters = row_labels(rows)
    names = np.array([[f"{letters[r]}{c + 1:02d}" for c in range(cols)] for r in range(rows)], dtype=object)
    if annotations is None:
        return names
    out = names.copy()
    for (r, c), well in np.ndenumerate(names):
        if well in annotations.index:
            label, role = annotations.at[well, "perturbation"], annotations.at[well, "control"]
            out[r, c] = f"{well} {label}".strip() + (f" ({role})" if role else "")
    return out
