"""What the report shows, as plain pandas: one pass over the store's sites, then per-well tables.

Sites are read through the :class:`~cpfeatures.store.Store` (its tables, a batch
of sites at a time), and only the columns a figure needs are kept in memory:
the Image row of every site, one chosen object feature over the whole plate,
and a few key features from a sample of sites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from ..store import OBJECT_TABLES, Store

__all__ = ["SiteData", "read_sites", "object_columns", "key_features", "default_feature", "feature_table",
           "cells_per_well", "failures_per_well", "feature_well_median", "site_timing",
           "sample_keys", "run_phases"]

#: Columns that describe an object's identity or position rather than its phenotype.
_NOT_PHENOTYPE = re.compile(r"^(?:(?:Nuclei|Cells|Cytoplasm)_)?(?:Location|Number|Parent|Children|ObjectNumber"
                            r"|Metadata)")

#: Preferred key features per compartment (the first few that exist are drawn).
KEY_FEATURES = {
    "Nuclei": ["AreaShape_Area", "Intensity_MeanIntensity_DNA", "Intensity_IntegratedIntensity_DNA",
               "AreaShape_FormFactor"],
    "Cells": ["AreaShape_Area", "Intensity_MeanIntensity_AGP", "Intensity_MeanIntensity_RNA",
              "AreaShape_Eccentricity"],
    "Cytoplasm": ["AreaShape_Area", "Intensity_MeanIntensity_Mito", "Intensity_MeanIntensity_ER",
                  "Intensity_MeanIntensity_RNA"],
}

@dataclass
class SiteData:
    """What one pass over the store's completed sites read.

    Attributes
    ----------
    image : DataFrame
        One row per completed site: ``site``, ``Metadata_Plate``, ``Metadata_Well``,
        ``Metadata_Site``, ``written`` (timestamp text), ``n_<Table>`` object counts,
        then the Image-table columns.
    objects : dict of str to DataFrame
        Per compartment: ``site``, ``Metadata_Well``, ``Metadata_Site`` and the
        requested columns, for the sites they were requested for.
    """

    image: pd.DataFrame
    objects: dict[str, pd.DataFrame] = field(default_factory=dict)


def object_columns(store: Store, keys: list[str] | None = None) -> dict[str, list[str]]:
    """Column names of each object table, from the first completed site (all sites share them)."""
    keys = store.completed_sites() if keys is None else keys
    if not keys:
        return {}
    attrs = store.site_attrs(keys[0])
    return {t: store.columns(d) for t, d in attrs.get("columns", {}).items()}


def read_sites(store: Store, keys: list[str] | None = None,
               wanted: "callable | dict[str, list[str]] | None" = None, batch: int = 64) -> SiteData:
    """Read the Image row of every completed site, and chosen object columns, in one pass.

    Parameters
    ----------
    store : Store
    keys : list of str, optional
        Sites to read (default: every completed site).
    wanted : dict or callable, optional
        ``{table: [columns]}`` to keep from the object tables, or a function
        ``key -> {table: [columns]}`` (e.g. more columns for a sample of sites).
    batch : int
        Sites read concurrently; only the wanted columns of a batch are kept
        before the next is read, so memory stays at ``batch`` sites' tables.

    Returns
    -------
    SiteData
    """
    keys = store.completed_sites() if keys is None else list(keys)
    if wanted is None:
        def want(_key):
            return {}
    elif callable(wanted):
        want = wanted
    else:
        def want(_key):
            return wanted
    rows: list[dict] = []
    image_parts: dict[str, list[tuple[int, np.ndarray]]] = {}  # digest -> (row index, values)
    object_parts: dict[str, dict[tuple, list]] = {}  # table -> present columns -> [(key, well, site, values)]

    def names(key: str) -> list[str]:
        return ["Image", *(t for t, c in want(key).items() if c)]

    for key, attrs, arrays, _ in store.read_sites(keys, names, batch=batch):
        w = want(key)
        digests = attrs.get("columns", {})
        counts = attrs.get("counts", {})
        row = {"site": key, "Metadata_Plate": attrs.get("plate"), "Metadata_Well": attrs.get("well"),
               "Metadata_Site": attrs.get("site"), "written": attrs.get("written")}
        row.update({f"n_{t}": counts.get(t) for t in OBJECT_TABLES})
        values = arrays.get("Image")
        if values is not None and values.shape[0]:
            image_parts.setdefault(digests["Image"], []).append((len(rows), values[0]))
        rows.append(row)
        for table, columns in w.items():
            if table not in arrays or not columns:
                continue
            names_ = store.columns(digests[table])
            position = {n: i for i, n in enumerate(names_)}
            present = tuple(c for c in columns if c in position)
            values = arrays[table]
            picked = values[:, [position[c] for c in present]] if values.size else \
                np.empty((values.shape[0], len(present)))
            object_parts.setdefault(table, {}).setdefault(present, []).append(
                (key, attrs.get("well"), attrs.get("site"), picked))
    image = pd.DataFrame(rows, columns=["site", "Metadata_Plate", "Metadata_Well", "Metadata_Site", "written",
                                        *(f"n_{t}" for t in OBJECT_TABLES)])
    blocks = []
    for digest, parts in image_parts.items():
        index = [i for i, _ in parts]
        blocks.append(pd.DataFrame(np.vstack([v for _, v in parts]), index=index, columns=store.columns(digest)))
    if blocks:
        values = pd.concat(blocks) if len(blocks) > 1 else blocks[0]
        image = pd.concat([image, values.reindex(image.index)], axis=1)
    objects = {}
    for table, by_columns in object_parts.items():
        frames = []
        for present, parts in by_columns.items():
            n = [p[3].shape[0] for p in parts]
            frame = pd.DataFrame(np.vstack([p[3] for p in parts]) if parts else np.empty((0, len(present))),
                                 columns=list(present))
            frame.insert(0, "Metadata_Site", np.repeat([p[2] for p in parts], n))
            frame.insert(0, "Metadata_Well", np.repeat(np.array([p[1] for p in parts], dtype=object), n))
            frame.insert(0, "site", np.repeat(np.array([p[0] for p in parts], dtype=object), n))
            frames.append(frame)
        objects[table] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return SiteData(image, objects)


def is_phenotype(column: str) -> bool:
    """True for a measured feature (not an identity/location/relationship column)."""
    return not _NOT_PHENOTYPE.match(column)


def key_features(columns: dict[str, list[str]], per_compartment: int = 4) -> dict[str, list[str]]:
    """A few key features per compartment: the preferred ones that exist, else the first measured ones."""
    out = {}
    for table in OBJECT_TABLES:
        names = columns.get(table, [])
        if not names:
            continue
        present = set(names)
        chosen = [f"{table}_{f}" for f in KEY_FEATURES.get(table, []) if f"{table}_{f}" in present]
        for name in names:
            if len(chosen) >= per_compartment:
                break
            if name not in chosen and is_phenotype(name):
                chosen.append(name)
        out[table] = chosen[:per_compartment]
    return out


def default_feature(columns: dict[str, list[str]]) -> str | None:
    """The feature mapped per well when none is chosen: a Cells DNA intensity, else a key Cells feature."""
    for name in ("Cells_Intensity_MeanIntensity_DNA", "Cells_AreaShape_Area"):
        if name in columns.get("Cells", []):
            return name
    for table in ("Cells", "Nuclei", "Cytoplasm"):
        keys = key_features({table: columns.get(table, [])}).get(table)
        if keys:
            return keys[0]
    return None


def feature_table(feature: str, columns: dict[str, list[str]], image_columns: list[str]) -> str:
    """Which table holds ``feature``: ``"Image"`` or an object table.

    Raises
    ------
    InputError
        No table has that column.
    """
    if feature in image_columns:
        return "Image"
    for table in OBJECT_TABLES:
        if feature in columns.get(table, []):
            return table
    close = [c for cols in columns.values() for c in cols if feature.lower() in c.lower()][:5]
    hint = f"; similar: {', '.join(close)}" if close else ""
    raise InputError(f"feature {feature!r} is in none of the store's tables{hint}")


def sample_keys(keys: list[str], n: int) -> list[str]:
    """Up to ``n`` sites spread evenly over the plate order."""
    if len(keys) <= n:
        return list(keys)
    idx = np.unique(np.linspace(0, len(keys) - 1, n).round().astype(int))
    return [keys[i] for i in idx]


# -- per-well tables --------------------------------------------------------------------

def cells_per_well(image: pd.DataFrame) -> pd.Series:
    """Total cells per well over its completed sites (``Count_Cells``, else the Cells row count)."""
    if image.empty:
        return pd.Series(dtype=float)
    column = "Count_Cells" if "Count_Cells" in image else "n_Cells"
    return image.groupby("Metadata_Well")[column].sum(min_count=1).astype(float)


def failures_per_well(errors: pd.DataFrame, wells: list[str]) -> pd.Series:
    """Failed sites per well; 0 for ``wells`` that have no failure."""
    counts = errors.groupby("well").size() if len(errors) else pd.Series(dtype=float)
    index = sorted(set(wells) | set(counts.index))
    return counts.reindex(index, fill_value=0).astype(float)


def feature_well_median(data: SiteData, feature: str, table: str) -> pd.Series:
    """Median of ``feature`` per well: over the well's cells (object table) or its sites (Image)."""
    frame = data.image if table == "Image" else data.objects.get(table)
    if frame is None or feature not in frame:
        return pd.Series(dtype=float)
    return pd.to_numeric(frame[feature], errors="coerce").groupby(frame["Metadata_Well"]).median()


def site_timing(info: dict, image: pd.DataFrame, errors: pd.DataFrame) -> dict:
    """Start, last write and span of the run, from the store's timestamps.

    The store records when it was created and when each site was written or
    failed; the span from the first to the last is the run's wall time (for a
    resumed run, including the pause).
    """
    out = {"created": info.get("created")}
    stamps = []
    for values in (image.get("written"), errors.get("time") if len(errors) else None):
        if values is not None:
            stamps.extend(v for v in values if isinstance(v, str) and v)
    parsed = pd.to_datetime(pd.Series(stamps, dtype=object), format="%Y-%m-%dT%H:%M:%S%z", errors="coerce",
                            utc=True).dropna()
    if len(parsed):
        out["last_site"] = parsed.max().isoformat()
        start = pd.to_datetime(info.get("created"), format="%Y-%m-%dT%H:%M:%S%z", errors="coerce", utc=True)
        first = parsed.min() if pd.isna(start) else min(start, parsed.min())
        out["span_seconds"] = float((parsed.max() - first).total_seconds())
    for key in ("seconds", "run_seconds", "elapsed_seconds", "finished", "updated"):
        if key in info:
            out[key] = info[key]
    return out


def run_phases(store, info: dict, image: pd.DataFrame) -> dict:
    """When the run's phases ended, from what the store holds, and the time spent on the sites.

    A run compiles its numba kernels (first run on a machine), computes the
    illumination functions, then measures the sites. The store records when it
    was created and when each site was written; the illumination functions'
    metadata file is written when they are, so its modification time (local
    stores) marks the end of compilation and illumination. The sites phase,
    from then to the last site written, is the run time without compilation.
    A run that recorded its own phase times (``info["phase_seconds"]``) is
    reported as recorded.

    Returns
    -------
    dict
        ``illum_written`` (ISO time or None), ``setup_seconds`` (created to
        illumination written: compilation and illumination), ``sites_seconds``
        (illumination written, else the first site, to the last site),
        ``sites_from`` (which start was used), ``recorded`` (the run's own times).
    """
    out: dict = {"recorded": info.get("phase_seconds")}
    fmt = "%Y-%m-%dT%H:%M:%S%z"
    stamps = pd.to_datetime(pd.Series([v for v in image.get("written", []) if isinstance(v, str) and v],
                                      dtype=object), format=fmt, errors="coerce", utc=True).dropna()
    created = pd.to_datetime(info.get("created"), format=fmt, errors="coerce", utc=True)
    illum = store.illum_written()
    # Site stamps are whole seconds: a site written in the same second as the functions is not after them.
    if illum is not None and len(stamps) and illum > stamps.min() + pd.Timedelta(seconds=1):
        illum = None  # rewritten after the sites (e.g. a resumed run): not the end of the set-up
    out["illum_written"] = illum.isoformat(timespec="seconds") if illum is not None else None
    if illum is not None and not pd.isna(created):
        out["setup_seconds"] = max(0.0, float((illum - created).total_seconds()))
    if len(stamps):
        start = illum if illum is not None else stamps.min()
        out["sites_from"] = "illumination written" if illum is not None else "first site written"
        out["sites_seconds"] = max(0.0, float((stamps.max() - start).total_seconds()))
        out["n_sites"] = int(len(stamps))
    return out
