"""annotate: join a plate map (and perturbation metadata) onto well profiles.

Plate maps come in several spellings: CPJUMP1's ``platemap/*.txt`` (tab-separated,
``well_position``, ``broad_sample``), the example plate's ``platemap.csv``
(``Metadata_Well``, ``pert_iname``, ...), NF1's ``well_position``. Columns without
the ``Metadata_`` prefix get it (pycytominer's rule), and wells are matched on
their row letter and column number so ``A1``, ``A01`` and ``a001`` agree.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd

from ..errors import InputError
from ._frames import load_profiles, metadata_columns

__all__ = ["annotate", "canonical_well", "read_platemap", "platemap_by_well"]

_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")
_WELL_COLUMNS = ("Metadata_Well", "Metadata_well_position", "Metadata_well", "Metadata_WellPosition")


def canonical_well(value) -> str | None:
    """``"A01"`` style name of a well spelled ``A1``, ``a01``, ``A001``; None if not a well name."""
    if not isinstance(value, str):
        return None
    m = _WELL.match(value)
    return f"{m.group(1).upper()}{int(m.group(2)):02d}" if m else None


def _prefixed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={c: c if str(c).startswith("Metadata_") else f"Metadata_{c}" for c in frame.columns})


def _source(frame: pd.DataFrame):
    """The file a table was read from (``load_profiles`` records it), for error messages."""
    return frame.attrs.get("source")


def _well_column(frame: pd.DataFrame, what: str) -> str:
    for name in _WELL_COLUMNS:
        if name in frame.columns:
            return name
    raise InputError(f"{what} has no well column (looked for {', '.join(_WELL_COLUMNS)})", _source(frame))


def _well_key(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    key = frame[column].map(canonical_well)
    bad = frame.loc[key.isna(), column]
    if len(bad):
        raise InputError(f"{what} column {column} has values that are not well names, e.g. {bad.iloc[0]!r}",
                         _source(frame))
    return key


def _listed(values, n: int = 6) -> str:
    values = sorted(set(map(str, values)))
    return ", ".join(values[:n]) + (f" ... ({len(values)})" if len(values) > n else "")


def _matches_none(prof: pd.DataFrame, pm: pd.DataFrame, keys: list[str], platemap: pd.DataFrame) -> str:
    """Why no profile found its well in the plate map, in one line naming the plate(s) and the file."""
    plates = _listed(prof["Metadata_Plate"]) if "Metadata_Plate" in prof.columns else None
    source = _source(platemap)
    wells = prof["_well_key"].nunique()
    text = (f"{'plate ' + plates + ': ' if plates else ''}the plate map{' ' + str(source) if source else ''} "
            f"matches none of its {wells} well(s) (wells {_listed(prof['_well_key'])}; plate map wells "
            f"{_listed(pm['_well_key'])}")
    if "Metadata_Plate" in keys:
        text += f"; matched on Metadata_Plate too, which the plate map gives as {_listed(pm['Metadata_Plate'])}"
    return text + ")"


def read_platemap(platemap, join_on: str | None = None) -> pd.DataFrame:
    """A plate map, read and checked: ``Metadata_`` prefixes added, a well column of well names.

    Parameters
    ----------
    platemap : DataFrame or path
        CSV, or tab-separated ``.txt``/``.tsv``.
    join_on : str, optional
        Its well column (default: the first of ``Metadata_Well``, ``Metadata_well_position``, ...).

    Raises
    ------
    InputError
        The file is missing or unreadable, or has no well column of well names; the message
        names the file.
    """
    frame = load_profiles(platemap, "platemap")
    source = _source(frame)
    frame = _prefixed(frame)
    frame.attrs["source"] = source
    column = join_on or _well_column(frame, "platemap")
    if column not in frame.columns:
        raise InputError(f"platemap has no column {column!r}", source)
    _well_key(frame, column, "platemap")
    return frame


def platemap_by_well(platemap, join_on: str | None = None) -> pd.DataFrame:
    """A plate map as single-cell exports join it: ``Metadata_Well`` in ``A01`` form, then its other
    ``Metadata_`` columns (``Metadata_Plate`` too, when it names plates).

    Examples
    --------
    >>> platemap_by_well(pd.DataFrame({"well_position": ["A1", "B02"], "pert_iname": ["DMSO", "x"]}))
      Metadata_Well Metadata_pert_iname
    0           A01                DMSO
    1           B02                   x
    """
    frame = read_platemap(platemap, join_on)
    column = join_on or _well_column(frame, "platemap")
    wells = _well_key(frame, column, "platemap")
    rest = frame.drop(columns=[c for c in (column, "Metadata_Well") if c in frame.columns])
    out = pd.concat([pd.DataFrame({"Metadata_Well": wells.to_numpy()}), rest.reset_index(drop=True)], axis=1)
    out.attrs["source"] = frame.attrs.get("source")
    return out


def annotate(profiles, platemap, join_on: str | None = None, external_metadata=None,
             external_join_on: str | list[str] | None = None) -> pd.DataFrame:
    """Add plate-map and perturbation metadata to profiles.

    Parameters
    ----------
    profiles : DataFrame or path
        Well profiles with a well column (``Metadata_Well``).
    platemap : DataFrame or path
        One row per well; CSV, or tab-separated ``.txt``/``.tsv``.
    join_on : str, optional
        The plate map's well column after prefixing (default: the first of
        ``Metadata_Well``, ``Metadata_well_position`` present).
    external_metadata : DataFrame or path, optional
        Perturbation annotations (e.g. CPJUMP1's compound metadata), joined
        left on ``external_join_on``.
    external_join_on : str or list of str, optional
        Column(s) of both tables (``Metadata_`` prefix added to the external
        table's columns as to the plate map's).

    Returns
    -------
    pandas.DataFrame
        Metadata columns first, then the features. Profiles whose well is not
        in the plate map are dropped with a warning (an inner join, as pycytominer).

    Raises
    ------
    InputError
        The plate map has no well column, lists a well twice, or matches none of the profiles'
        wells (pycytominer returns an empty table there): the message names the plate, the plate
        map's file and both sets of wells.
    """
    profiles = load_profiles(profiles)
    platemap = read_platemap(platemap, join_on)
    left = join_on or _well_column(platemap, "platemap")
    right = _well_column(profiles, "profiles")
    pm = platemap.assign(_well_key=_well_key(platemap, left, "platemap"))
    if pm["_well_key"].duplicated().any() and "Metadata_Plate" not in pm.columns:
        dup = pm.loc[pm["_well_key"].duplicated(), left].iloc[0]
        raise InputError(f"platemap lists well {dup} more than once", _source(platemap))
    keys = ["_well_key"]
    if "Metadata_Plate" in pm.columns and "Metadata_Plate" in profiles.columns and \
            pm["_well_key"].duplicated().any():
        keys.append("Metadata_Plate")  # a plate map covering several plates
    # the profile's own values win over the plate map's for shared columns (pycytominer: "_platemap" suffix)
    shared = [c for c in pm.columns if c in profiles.columns and c not in keys]
    pm = pm.drop(columns=shared)
    prof = profiles.assign(_well_key=_well_key(profiles, right, "profiles"))
    out = prof.merge(pm, on=keys, how="inner", validate="many_to_one")
    if out.empty and len(prof):
        raise InputError(_matches_none(prof, pm, keys, platemap))
    if len(out) < len(prof):
        lost = sorted(set(prof["_well_key"]) - set(out["_well_key"]))
        warnings.warn(f"{len(prof) - len(out)} profile(s) in wells absent from the platemap were dropped: "
                      f"{', '.join(lost[:10])}{' ...' if len(lost) > 10 else ''}", stacklevel=2)
    out = out.drop(columns=["_well_key"] + ([left] if left != right and left in out.columns else []))
    if external_metadata is not None:
        if external_join_on is None:
            raise InputError("external_metadata needs external_join_on (the column shared with the platemap)")
        ext = _prefixed(load_profiles(external_metadata, "external metadata"))
        on = [external_join_on] if isinstance(external_join_on, str) else list(external_join_on)
        on = [c if c.startswith("Metadata_") else f"Metadata_{c}" for c in on]
        for c in on:
            if c not in ext.columns or c not in out.columns:
                raise InputError(f"external_join_on column {c!r} must be in both the profiles/platemap and "
                                 "the external metadata")
        ext = ext.drop_duplicates()
        if ext.duplicated(on).any():
            raise InputError(f"external metadata has several rows for the same {on}")
        ext = ext.drop(columns=[c for c in ext.columns if c in out.columns and c not in on])
        out = out.merge(ext, on=on, how="left")
    meta = metadata_columns(out)
    return out[meta + [c for c in out.columns if c not in set(meta)]].reset_index(drop=True)
