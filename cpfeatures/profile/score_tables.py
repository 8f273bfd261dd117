"""score_tables: every score of profile tables, once or per group of plates, as ``cpfeatures score`` writes them.

The tables are combined first (:func:`~cpfeatures.profile.combine_tables`: renamed, tagged,
concatenated; :func:`~cpfeatures.profile.join_plate_metadata` with a plate table), features
with missing values left out, then scored.

The CPJUMP1 notebooks score each group of plates (modality x cell type x time point) in turn,
in the nested order of ``.unique()`` loops, and continue one ``random`` stream from
``random.seed(9000)`` across the groups of a notebook. :func:`score_tables` does the same
with ``per=``: groups in that nested order, and with ``null="cpjump1"`` one generator for
Percent Replicating and one for Percent Matching (the paper's two notebooks), each continued
from group to group.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ._frames import infer_features, select_rows
from .average_precision import mean_average_precision
from .combine import combine_tables, join_plate_metadata
from .replicating import percent_matching, percent_replicating

__all__ = ["nested_groups", "score_tables", "Scores", "SCORE_TABLES", "WARNINGS_FILE"]

#: What the scoring warned about, one line each, beside the score tables (the report shows them).
WARNINGS_FILE = "warnings.txt"

#: The score tables, in the order they are written (``<name>.csv``), when computed.
SCORE_TABLES = ("percent_replicating", "percent_matching", "map", "map_matching")


@dataclass
class Scores:
    """Outcome of :func:`score_tables`.

    Attributes
    ----------
    rows : list of tuple
        ``(group, score, value, detail)`` per score (and group), all strings; group ``""``
        without ``per``.
    tables : dict
        ``percent_replicating``, ``map`` and, when computed, ``percent_matching`` and
        ``map_matching`` (DataFrames); with ``per``, the group columns first.
    files : list of str
        The files written with ``output=`` (``warnings.txt`` when the scoring warned, ``<name>.csv`` per
        table, then ``summary.csv``
        with ``per``); empty without.
    """

    rows: list[tuple]
    tables: dict[str, pd.DataFrame]
    files: list[str] = field(default_factory=list)


def nested_groups(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """The values of ``columns`` in the order of nested first-appearance loops.

    ``for a in df[c1].unique(): for b in df[df[c1] == a][c2].unique(): ...``, the notebooks'
    order, which differs from the order in which the combinations first appear.

    Examples
    --------
    >>> frame = pd.DataFrame({"m": ["cpd", "orf", "cpd"], "cell": ["A549", "U2OS", "U2OS"]})
    >>> nested_groups(frame, ["m", "cell"])
    [('cpd', 'A549'), ('cpd', 'U2OS'), ('orf', 'U2OS')]
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the profiles")
    empty = [c for c in columns if frame[c].isna().any()]
    if empty:
        raise InputError(f"{', '.join(f'{int(frame[c].isna().sum())} profile(s) have no {c}' for c in empty)}: "
                         "a group needs a value")
    keys = frame[columns].drop_duplicates()  # the few combinations, in first-appearance order
    out: list[tuple] = []

    def visit(part: pd.DataFrame, level: int, prefix: tuple) -> None:
        if level == len(columns):
            out.append(prefix)
            return
        for value in pd.unique(part[columns[level]]):
            visit(part[part[columns[level]] == value], level + 1, prefix + (value,))

    visit(keys, 0, ())
    return out


def score_tables(profiles, by, *, rename=None, tag=None, plate_metadata=None, per: list[str] | None = None,
                 match_by: str | None = None, across: str | None = None, match_sep: str | None = "|",
                 null: str = "numpy", tail: str = "right", modalities=None, n_replicates: int = 4,
                 reference: str | None = None, null_size: int = 10000, n_samples: int = 1000,
                 seed: int | None = None, output: str | os.PathLike | None = None) -> Scores:
    """Percent Replicating, Percent Matching, mAP and matching mAP of profile tables, whole or per group.

    What ``cpfeatures score`` computes and writes: the tables combined
    (:func:`~cpfeatures.profile.combine_tables`), joined with ``plate_metadata``
    (:func:`~cpfeatures.profile.join_plate_metadata`), features with missing values left
    out (with a warning), then every score, once or per group of ``per``.

    Parameters
    ----------
    profiles : DataFrame, path, or a list of them
        Profile tables; several are concatenated on the columns they share.
    by : str or list of str
        The perturbation columns (``--replicates-by``).
    rename, tag
        Per table, before they are concatenated: see :func:`~cpfeatures.profile.combine_tables`.
    plate_metadata : path or DataFrame, optional
        One row per plate (``Assay_Plate_Barcode``): see :func:`~cpfeatures.profile.join_plate_metadata`.
    per : list of str, optional
        Score each group of these columns on its own (:func:`nested_groups` order).
    match_by, across, match_sep, null, tail, modalities, n_replicates, reference, null_size, n_samples, seed
        As ``cpfeatures score``'s options of the same names (``reference``: a query selecting
        the control profiles).
    output : path, optional
        A folder (created) for ``<table>.csv`` per score table and, with ``per``,
        ``summary.csv`` (the rows).

    Returns
    -------
    Scores
        ``rows``, ``tables`` and the ``files`` written.

    Raises
    ------
    InputError
        A table that cannot be read or joined, an unknown column (naming it).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=(6, 20))
    >>> x = np.repeat(base, 3, axis=0) + rng.normal(scale=0.1, size=(18, 20))
    >>> frame = pd.DataFrame(x, columns=[f"Cells_f{i}" for i in range(20)])
    >>> frame.insert(0, "Metadata_pert", np.repeat(list("abcdef"), 3))
    >>> scores = score_tables(frame, "Metadata_pert", n_samples=100, null_size=100)
    >>> [(score, value) for _, score, value, _ in scores.rows]
    [('Percent Replicating', '100.0%'), ('mAP (mean)', '1.000')]
    """
    with warnings.catch_warnings(record=True) as said:  # kept beside the tables: the report shows them too
        warnings.simplefilter("always")
        frame = combine_tables(profiles, rename=rename, tag=tag)
        if plate_metadata is not None:
            frame = join_plate_metadata(frame, plate_metadata)
        by = [by] if isinstance(by, str) else by
        incomplete = [c for c in infer_features(frame) if not frame[c].notna().all()]
        if incomplete:
            warnings.warn(f"{len(incomplete)} feature(s) with missing values are left out of the scores",
                          stacklevel=2)
            frame = frame.drop(columns=incomplete)
        folder = None
        if output is not None:
            folder = Path(output)
            folder.mkdir(parents=True, exist_ok=True)
        rows, tables = _score(frame, by, per=per, match_by=match_by, across=across, match_sep=match_sep, null=null,
                              tail=tail, modalities=modalities, n_replicates=n_replicates, reference=reference,
                              null_size=null_size, n_samples=n_samples, seed=seed)
    messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in said))
    for w in said:  # said again, as they were raised, to whoever called
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    files = []
    if folder is not None:
        notes = folder / WARNINGS_FILE
        if messages:
            notes.write_text("\n".join(messages) + "\n", encoding="utf-8")
            files.append(str(notes))
        elif notes.exists():  # an earlier scoring's warnings no longer hold
            notes.unlink()
    if folder is not None:
        for name in SCORE_TABLES:
            if name in tables:
                files.append(str(folder / f"{name}.csv"))
                tables[name].to_csv(files[-1], index=False)
        if per:
            files.append(str(folder / "summary.csv"))
            pd.DataFrame(rows, columns=["group", "score", "value", "detail"]).to_csv(files[-1], index=False)
    return Scores(rows, tables, files)


def _score(frame: pd.DataFrame, by: list[str], *, per, match_by, across, match_sep, null, tail, modalities,
           n_replicates, reference, null_size, n_samples, seed) -> tuple[list[tuple], dict[str, pd.DataFrame]]:
    """The rows and tables of :func:`score_tables` of one table of complete features."""
    paper = null == "cpjump1"
    streams = {"replicating": random.Random(9000 if seed is None else seed),
               "matching": random.Random(9000 if seed is None else seed)} if paper else {}
    groups = [((), frame)] if not per else \
        [(key, frame[(frame[per] == pd.Series(key, index=per)).all(axis=1)]) for key in nested_groups(frame, per)]
    rows: list[tuple] = []
    parts: dict[str, list[pd.DataFrame]] = {}

    def keep(name: str, table: pd.DataFrame, key: tuple) -> None:
        if per:
            table = pd.concat([pd.DataFrame({c: [v] * len(table) for c, v in zip(per, key)}),
                               table.reset_index(drop=True)], axis=1)
        parts.setdefault(name, []).append(table)

    for key, part in groups:
        label = " ".join(map(str, key))
        rep = percent_replicating(part, by, n_samples=n_samples, seed=seed, reference_query=reference,
                                  **(dict(null=null, n_replicates=n_replicates, rng=streams["replicating"])
                                     if paper else {}))
        keep("percent_replicating", rep.per_group, key)
        rows.append((label, "Percent Replicating", f"{rep.percent_replicating:.1f}%",
                     f"{len(rep.per_group)} perturbations, null p95 = {rep.null_p95:.3f}"))
        if match_by:
            try:
                mat = percent_matching(part, by, match_by, across=across, sep=match_sep or None,
                                       n_samples=n_samples, seed=seed, reference_query=reference, tail=tail,
                                       **({"null": null, "modalities": modalities, "rng": streams["matching"]}
                                          if paper else {}))
            except InputError as exc:
                rows.append((label, "Percent Matching", "n/a", str(exc)))
            else:
                keep("percent_matching", mat.per_pair, key)
                rows.append((label, "Percent Matching", f"{mat.percent_matching:.1f}%",
                             f"{len(mat.per_pair)} matching pairs, null p95 = {mat.null_p95:.3f}"
                             + (f", p5 = {mat.null_p5:.3f}" if mat.null_p5 is not None else "")))
        maps = mean_average_precision(part, by, reference_query=reference, null_size=null_size,
                                      seed=0 if seed is None else seed)
        keep("map", maps, key)
        rows.append((label, "mAP (mean)", f"{maps['mean_average_precision'].mean():.3f}",
                     f"{int(maps['below_corrected_p'].sum())} of {len(maps)} significant (FDR < 0.05)"
                     + (" vs reference" if reference else "")))
        if match_by and across:
            # matching mAP (copairs): a profile retrieves the other modality's profiles of its annotation,
            # against the other modality's profiles of other annotations; a target list is copairs' multilabel
            scored = part if reference is None else part.drop(select_rows(part, reference).index)
            listed = bool(match_sep) and scored[match_by].astype("string").str.contains(match_sep, regex=False).any()
            try:
                matching = mean_average_precision(scored, match_by, diffby=[match_by, across], pos_diffby=[across],
                                                  null_size=null_size, seed=0 if seed is None else seed,
                                                  multilabel=match_by if listed else None, sep=match_sep or "|")
            except InputError as exc:  # as Percent Matching: said in the table, the other scores still written
                rows.append((label, "mAP matching", "n/a", str(exc)))
            else:
                keep("map_matching", matching, key)
                rows.append((label, "mAP matching", f"{matching['mean_average_precision'].mean():.3f}",
                             f"{int(matching['below_corrected_p'].sum())} of {len(matching)} {match_by} "
                             f"significant (FDR < 0.05), across {across}"))
    return rows, {name: pd.concat(tables, ignore_index=True) for name, tables in parts.items()}
