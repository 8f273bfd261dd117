"""profile_plates: many plates' single cells -> one table of normalized, feature-selected well profiles.

The JUMP profiling recipe, plate by plate then across the batch: each plate is aggregated
(its store or single-cell table), annotated with its own plate map, normalized against its
own wells (or its negative controls); then one feature selection runs over the plates
together (``select_level="batch"``, the CPJUMP1 recipe), per plate, or over everything, and
every plate keeps the same columns. The kept list is returned so later plates can be
reduced to it (``features_from``). The profiles may then be whitened (``spherize``) and
reduced to one consensus signature per perturbation (``consensus``).

Plate maps come as the JUMP layout (:func:`read_jump_platemaps`: ``barcode_platemap.csv``
with ``Assay_Plate_Barcode, Plate_Map_Name``, ``platemap/<Plate_Map_Name>.txt`` and the
``external_metadata/<name>_metadata.tsv`` beside them), as a dict plate -> plate map, or as
one flat table (with a ``Metadata_Plate`` column when plates differ). One flat table for
several plates without such a column, or for a plate it does not list, is used as their
common layout, with a warning naming them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ._frames import UnknownColumnError, feature_array, infer_features, load_profiles, metadata_columns
from .aggregate import aggregate
from .annotate import annotate, read_platemap
from .consensus import consensus as consensus_profiles
from .feature_select import CPJUMP1_OPERATIONS, _check_operations, select_mask
from .normalize import normalize, normalized_array
from .spherize import spherize as spherize_profiles

__all__ = ["profile_plates", "read_jump_platemaps", "read_feature_list", "PlateProfiles", "SELECT_LEVELS"]

SELECT_LEVELS = ("plate", "batch", "all")


@dataclass
class PlateProfiles:
    """Outcome of :func:`profile_plates`.

    Attributes
    ----------
    profiles : DataFrame
        Every plate's normalized profiles, the kept features only (whitened with
        ``spherize``), plates in input order.
    features : list of str
        The kept features (write them beside the profiles to reduce later plates to them).
    plates : DataFrame
        ``Metadata_Plate, profiles, source`` per plate.
    consensus : DataFrame or None
        With ``consensus``: one signature per group of ``consensus_by``.
    files : list of str
        The files :func:`~cpfeatures.profile.write_plate_profiles` wrote (profiles, kept list,
        consensus); empty from :func:`profile_plates`.
    """

    profiles: pd.DataFrame
    features: list[str]
    plates: pd.DataFrame
    consensus: pd.DataFrame | None = None
    files: list[str] = field(default_factory=list)


def read_jump_platemaps(folder: str | os.PathLike, external_metadata: str | os.PathLike | None = None
                        ) -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]:
    """Plate maps in the JUMP layout: barcode -> (plate map, its external metadata or None).

    Parameters
    ----------
    folder : path-like
        The batch's plate-map folder, holding ``barcode_platemap.csv`` and ``platemap/``
        (``metadata/platemaps/<batch>/`` in the JUMP repositories).
    external_metadata : path-like, optional
        A folder of ``<Plate_Map_Name minus _platemap>_metadata.tsv`` files or one file
        for every plate. Default: ``<folder>/../../external_metadata`` when it exists.

    Returns
    -------
    dict
        ``Assay_Plate_Barcode -> (plate map, external metadata)``, read and checked.

    Raises
    ------
    InputError
        A missing ``barcode_platemap.csv`` or plate-map file, naming it.
    """
    folder = Path(folder)
    barcodes = folder / "barcode_platemap.csv"
    if not barcodes.is_file():
        raise InputError("no barcode_platemap.csv (Assay_Plate_Barcode, Plate_Map_Name) in the plate-map folder",
                         folder)
    table = pd.read_csv(barcodes, dtype=str)
    missing = [c for c in ("Assay_Plate_Barcode", "Plate_Map_Name") if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", barcodes)
    if external_metadata is None:
        guess = folder.parent.parent / "external_metadata"
        external_metadata = guess if guess.is_dir() else None
    maps: dict[str, pd.DataFrame] = {}
    out = {}
    for barcode, name in zip(table["Assay_Plate_Barcode"], table["Plate_Map_Name"]):
        if name not in maps:
            candidates = [folder / "platemap" / f"{name}{ext}" for ext in (".txt", ".tsv", ".csv")]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                raise InputError(f"plate map {name!r} of plate {barcode} not found (looked for {candidates[0].name})",
                                 folder / "platemap")
            maps[name] = read_platemap(path)
        out[str(barcode)] = (maps[name], _external_for(name, external_metadata))
    return out


def _external_for(name: str, where) -> pd.DataFrame | None:
    if where is None:
        return None
    where = Path(where)
    if where.is_file():
        return load_profiles(where, "external metadata")
    stem = name[: -len("_platemap")] if name.endswith("_platemap") else name
    for candidate in (where / f"{stem}_metadata.tsv", where / f"{stem}_metadata.csv"):
        if candidate.is_file():
            return load_profiles(candidate, "external metadata")
    return None


def _sources(sources) -> list:
    from ..store import local_zarr_kind

    if isinstance(sources, (str, os.PathLike)) or isinstance(sources, pd.DataFrame):
        sources = [sources]
    out = []
    for s in sources:
        if isinstance(s, (str, os.PathLike)) and Path(s).is_dir() and local_zarr_kind(s) is None:
            stores = sorted(p for p in Path(s).iterdir() if local_zarr_kind(p) is not None)
            if not stores:
                raise InputError("a folder of stores with no store in it", s)
            out += stores
        else:
            out.append(s)
    if not out:
        raise InputError("no stores or tables to profile")
    return out


def profile_plates(sources, platemaps=None, external_metadata=None, external_join_on: str | None = None,
                   operation: str = "median", method: str = "mad_robustize", samples: str = "all",
                   select_level: str = "batch", operations=CPJUMP1_OPERATIONS, corr_threshold: float = 0.9,
                   batch_column: str = "Metadata_Batch", features_from=None, feature_selection: bool = True,
                   features="infer", spherize: str | None = None, spherize_by: str | None = None,
                   consensus: str | None = None, consensus_by=("Metadata_broad_sample",),
                   skip_damaged: bool = False) -> PlateProfiles:
    """Profile several plates as the JUMP recipe does: per plate aggregate, annotate, normalize; then select.

    Parameters
    ----------
    sources : store, table, path, or a list of them (or a folder of stores)
        One plate each: a run's store, or a single-cell / profile table with ``Metadata_Plate``.
    platemaps : path, DataFrame or dict, optional
        A JUMP plate-map folder (see :func:`read_jump_platemaps`); a dict plate -> plate map
        (a file or DataFrame, or a pair (plate map, external metadata)), key ``"*"`` for the
        plates it does not name; or one flat plate map for every plate. A flat map with a
        ``Metadata_Plate`` column gives each plate its own rows. Otherwise every plate gets
        the same map: right when the plates share a layout (CPJUMP1's replicate plates), so
        a ``UserWarning`` names the plates annotated with one map when there are several of
        them, or when the map's ``Metadata_Plate`` does not list a plate.
        Without a plate map the profiles carry only their own metadata (plate, well); a
        ``samples`` query naming another column is then refused, naming it.
    external_metadata : path, optional
        With a flat plate map: one perturbation table; with a JUMP folder: its folder or file;
        with a dict: the table for the plates whose entry has none.
    external_join_on : str, optional
        The column joining plate map and external metadata (default ``broad_sample`` when
        both have it).
    operation : {"median", "mean", None}
        How single cells become well profiles; None (or ``"none"``) when the sources are well
        profiles already.
    method : str
        :func:`normalize` method per plate (``"none"`` to skip).
    samples : str
        The normalization reference, e.g. ``"Metadata_control_type == 'negcon'"``.
    select_level : {"plate", "batch", "all"}
        Feature selection per plate (the features every plate kept are kept), per
        ``batch_column`` value (all plates at once when the column is absent), or over all.
    operations, corr_threshold
        :func:`feature_select`'s.
    batch_column : str
    features_from : list of str or path, optional
        Keep exactly these features (an earlier run's kept list, or its file: one feature
        a line) instead of selecting.
    feature_selection : bool
    features : "infer" or list of str
        The single-cell features to aggregate (default: every CellProfiler feature).
    spherize : {"ZCA", "ZCA-cor", "PCA", "PCA-cor"}, optional
        After selection, whiten the profiles (:func:`~cpfeatures.profile.spherize`), fitted
        on ``samples``.
    spherize_by : str, optional
        Fit one whitening per value of this column; default all plates together.
    consensus : {"median", "mean", "modz"}, optional
        Also make one consensus signature per ``consensus_by`` group
        (:func:`~cpfeatures.profile.consensus`) of the final profiles.
    consensus_by : str or list of str
        The columns identifying a perturbation for ``consensus``.
    skip_damaged : bool
        Leave each store's damaged sites out, with a warning each, instead of refusing it.

    Returns
    -------
    PlateProfiles

    Raises
    ------
    InputError
        Unknown level; a feature-selection setting out of range (before any plate is read); a
        plate without a plate map, or whose plate map matches none of its wells; a ``samples``
        query matching no profile of a plate or naming a column the plate's profiles lack
        (each naming the plate); a feature of ``features_from`` missing.

    Warns
    -----
    UserWarning
        Several plates annotated with one flat plate map that does not tell them apart, or a
        plate absent from the flat map's ``Metadata_Plate`` column (the plates are named).
    """
    if select_level not in SELECT_LEVELS:
        raise InputError(f"select_level must be one of {SELECT_LEVELS}, got {select_level!r}")
    if isinstance(features_from, (str, os.PathLike)):
        features_from = read_feature_list(features_from)
    if operation is not None and str(operation).lower() == "none":
        operation = None
    if features_from is None and feature_selection:  # a bad setting is refused before hours of aggregation
        _check_operations(operations, 0.05, 0.01, 0.05, corr_threshold)
    maps = _plate_maps(platemaps, external_metadata)
    one_map: dict[str, list[str]] = {"shared": [], "unlisted": []}  # plates annotated with a common flat map
    # Each plate keeps only its metadata frame and its feature matrix; the batch matrix is then
    # assembled once, column-major, so selection reads it without a copy (a concat of the plates'
    # frames copied the batch twice and took longer than the selection itself).
    metas, arrays, names, rows = [], [], [], []
    for source in _sources(sources):
        table = aggregate(source, operation=operation, features=features, skip_damaged=skip_damaged) \
            if operation is not None \
            else load_profiles(source, "profiles")
        if "Metadata_Plate" not in table.columns:
            raise InputError("profiles without a Metadata_Plate column", _name(source))
        for plate, part in table.groupby("Metadata_Plate", sort=False):
            part = part.reset_index(drop=True)
            part = _annotate(part, str(plate), maps, external_join_on, one_map)
            feats = infer_features(part, features)
            with _annotations_needed(maps):
                if str(method).lower() == "spherize":  # its PCA variants name their own columns
                    part = normalize(part, method=method, samples=samples, features=feats)
                    feats = [c for c in part.columns if not str(c).startswith("Metadata_")]
                x = feature_array(part, feats, order="F")
                if str(method).lower() not in ("none", "spherize"):  # normalize's array form: no frame is built
                    x = normalized_array(x, part, feats, method, samples)
            metas.append(part[metadata_columns(part)])
            arrays.append(x)
            names.append(feats)
            rows.append({"Metadata_Plate": plate, "profiles": len(part),
                         "source": source if isinstance(source, (str, os.PathLike)) else "table"})
            del part
        del table
    plates = pd.DataFrame(rows)
    _warn_one_map(one_map, maps)
    if plates["Metadata_Plate"].duplicated().any():
        raise InputError(f"plate {plates.loc[plates['Metadata_Plate'].duplicated(), 'Metadata_Plate'].iloc[0]!r} "
                         "comes from two sources")
    shared = set(names[0]).intersection(*map(set, names[1:]))
    measured = [f for f in names[0] if f in shared]  # features measured on every plate, first plate's order
    meta = pd.concat(metas, ignore_index=True)  # every plate's metadata (missing values NaN)
    x = _stack(arrays, names, measured)
    if features_from is not None:
        missing = [f for f in features_from if f not in shared]
        if missing:
            raise InputError(f"{len(missing)} feature(s) of the kept list are not in these profiles: "
                             f"{', '.join(missing[:5])}")
        kept = list(features_from)
    elif not feature_selection:
        kept = measured
    else:
        kept = _select(x, measured, meta, plates, select_level, operations, corr_threshold, batch_column)
    if kept != measured:
        column = {f: i for i, f in enumerate(measured)}
        x = x[:, [column[f] for f in kept]]  # column-major still: the frame below shares it
    profiles = pd.concat([meta, pd.DataFrame(x, columns=kept, copy=False)], axis=1)
    if spherize:
        with _annotations_needed(maps):
            profiles = spherize_profiles(profiles, method=spherize, samples=samples, by=spherize_by)
    signatures = None
    if consensus:
        signatures = consensus_profiles(profiles, replicate_columns=consensus_by, operation=consensus)
    return PlateProfiles(profiles, kept, plates, signatures)


def read_feature_list(path: str | os.PathLike) -> list[str]:
    """The features listed in a file, one a line (an earlier run's ``<output>_features.txt``).

    Raises
    ------
    InputError
        The file cannot be read, naming it.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read the kept features: {exc.strerror or exc}", path) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _name(source) -> str | None:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else None


def _stack(arrays: list, names: list[list[str]], measured: list[str]) -> np.ndarray:
    """The plates' matrices one under the other (column-major), each plate's freed once copied."""
    x = np.empty((sum(len(a) for a in arrays), len(measured)), order="F")
    start = 0
    for i in range(len(arrays)):
        a = arrays[i]
        if names[i] != measured:
            column = {f: j for j, f in enumerate(names[i])}
            a = a[:, [column[f] for f in measured]]
        x[start:start + len(a)] = a
        start += len(a)
        arrays[i] = None  # the batch matrix is the only copy held
    return x


def _plate_maps(platemaps, external_metadata):
    """``{plate: (plate map, external metadata)}``, ``"*"`` for a map of every plate, or None."""
    if platemaps is None:
        return None
    ext_all = load_profiles(external_metadata, "external metadata") if external_metadata is not None else None
    if isinstance(platemaps, dict):
        read: dict = {}  # a file shared by several plates is read once

        def _read(table, kind):
            key = os.fspath(table) if isinstance(table, (str, os.PathLike)) else id(table)
            if key not in read:
                read[key] = read_platemap(table) if kind == "platemap" else load_profiles(table, kind)
            return read[key]

        out = {}
        for plate, entry in platemaps.items():
            pm, ext = entry if isinstance(entry, tuple) else (entry, None)
            out[str(plate)] = (_read(pm, "platemap"),
                               ext_all if ext is None else _read(ext, "external metadata"))
        return out
    if isinstance(platemaps, (str, os.PathLike)) and Path(platemaps).is_dir():
        return read_jump_platemaps(platemaps, external_metadata)
    return {"*": (read_platemap(platemaps), ext_all)}


def _annotate(part: pd.DataFrame, plate: str, maps, join_on, one_map: dict | None = None) -> pd.DataFrame:
    """``part`` (one plate's profiles) annotated with its plate map; plates given a common flat map are
    added to ``one_map["shared"]`` (no ``Metadata_Plate`` column) or ``one_map["unlisted"]`` (not in it)."""
    if maps is None:
        return part
    entry = maps.get(plate, maps.get("*"))
    if entry is None:
        raise InputError(f"plate {plate} has no plate map (the plate maps given name {len(maps)} other plate(s): "
                         f"{', '.join(sorted(map(str, maps))[:5])}{' ...' if len(maps) > 5 else ''})")
    platemap, ext = entry
    if plate not in maps and one_map is not None:  # the map of every plate
        listed = "Metadata_Plate" in platemap.columns
        one_map["unlisted" if listed else "shared"].append(plate)
    if "Metadata_Plate" in platemap.columns and plate in set(platemap["Metadata_Plate"].astype(str)):
        platemap = platemap[platemap["Metadata_Plate"].astype(str) == plate]
        if one_map is not None and plate in one_map["unlisted"]:
            one_map["unlisted"].remove(plate)  # its own rows
    on = join_on
    if ext is not None and on is None:
        on = "broad_sample" if "Metadata_broad_sample" in platemap.columns or "broad_sample" in platemap.columns \
            else None
        if on is None:
            raise InputError(f"plate {plate}: say which column joins the plate map and the external metadata")
    return annotate(part, platemap, external_metadata=ext, external_join_on=on if ext is not None else None)


def _warn_one_map(one_map: dict, maps) -> None:
    """Say which plates were annotated with one flat plate map that does not tell them apart."""
    if maps is None or "*" not in maps:
        return
    platemap = maps["*"][0]
    source = platemap.attrs.get("source")
    name = f"the plate map {source}" if source else "the one plate map given"
    advice = ("give each plate its own map (a JUMP plate-map folder, a dict plate -> plate-map file, or a "
              "Metadata_Plate column) unless they share a layout")
    shared, unlisted = one_map["shared"], one_map["unlisted"]
    if len(shared) > 1:
        warnings.warn(f"plates {', '.join(shared)} were all annotated with {name}, which has no Metadata_Plate "
                      f"column to tell them apart: {advice}", UserWarning, stacklevel=3)
    if unlisted:
        listed = sorted(set(platemap["Metadata_Plate"].astype(str)))
        warnings.warn(f"plate(s) {', '.join(unlisted)} are not in the Metadata_Plate column of {name} (it lists "
                      f"{', '.join(listed[:5])}{' ...' if len(listed) > 5 else ''}) and were annotated with all its "
                      f"rows, as if they shared that layout: {advice}", UserWarning, stacklevel=3)


class _annotations_needed:
    """A ``samples`` query naming a column the profiles lack, when no plate map was given: say so."""

    def __init__(self, maps):
        self.maps = maps

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if self.maps is None and isinstance(exc, UnknownColumnError):
            raise InputError(f"{exc}; no plate map was given (platemaps=, --platemap), so the profiles have no "
                             f"annotation such as {exc.column}") from None
        return False


def _select(x: np.ndarray, features: list[str], meta: pd.DataFrame, plates: pd.DataFrame, level: str,
            operations, corr_threshold, batch_column) -> list[str]:
    if level == "plate":
        bounds = np.cumsum([0, *plates["profiles"]])
        groups = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    elif level == "batch" and batch_column in meta.columns:
        groups = [np.flatnonzero((meta[batch_column] == v).to_numpy()) for v in pd.unique(meta[batch_column])]
    else:
        groups = [None]
    kept = np.ones(len(features), bool)
    for rows in groups:
        part = x if rows is None or len(rows) == len(x) else x[rows]
        chosen, _ = select_mask(part, features, operations, corr_threshold=corr_threshold)
        kept &= chosen  # the features every group kept
        del part
    return [f for f, k in zip(features, kept) if k]
