"""The report's sections on what the features add up to: ``distributions`` (key features per compartment over
a sample of sites) and ``scores`` (Percent Replicating / Matching, mAP, the profiles' correlations).

The score tables are read by :mod:`cpfeatures.report.scores`; this module draws them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..store import OBJECT_TABLES
from . import figures as rf
from .markup import esc, figure_tag, note, table_html
from .scores import ScoreTable, read_frame
from .wellmap import GROUP_COLUMNS, label_of

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["distributions_section", "scores_section", "score_summary", "profiles_html"]


def distributions_section(ctx: ReportContext) -> str:
    """The ``distributions`` section: histograms of each compartment's key features over the sampled sites."""
    data, keys = ctx.data, ctx.key_features
    out = []
    n_sites = len(ctx.sample)
    for table in OBJECT_TABLES:
        names = keys.get(table)
        frame = data.objects.get(table)
        if not names or frame is None:
            continue
        sample = frame[frame["site"].isin(ctx.sample)]
        panels = [(name, pd.to_numeric(sample[name], errors="coerce").to_numpy()) for name in names if name in sample]
        if not panels:
            continue
        fig = rf.histograms_figure(panels, f"{table}: {len(sample)} objects from {n_sites} site(s)")
        shown = ", ".join(name for name, _ in panels)
        out.append(figure_tag(fig, f"{table} feature distributions: {shown}", f"distributions-{table}"))
    if not out:
        return note("No object measurements in the store yet.")
    total = len(ctx.keys)
    out.append(note(f"Sites sampled evenly over the plate: {n_sites} of {total}. With 200 objects or more a "
                    "panel spans the 0.5-99.5 percentile range; the red line is the median."))
    return "".join(out)


# -- scores ---------------------------------------------------------------------------------------------

def _correlation_table_html(t: ScoreTable) -> str:
    """A Percent Replicating / Matching table: its correlations against the null (when kept), then the table."""
    col = t.correlation_column
    out = []
    matching = "match" in t.name.lower() or "shared" in t.frame
    label = "median matching correlation" if matching else "median replicate correlation"
    if col is not None:
        threshold = t.threshold
        fig = rf.replicate_figure(pd.to_numeric(t.frame[col], errors="coerce").to_numpy(), t.null, threshold,
                                  t.name, label=label,
                                  null_label="null (non-matching pairs)" if matching else "null (non-replicates)")
        out.append(figure_tag(fig, f"{t.name}: {label} vs null", f"score-{_slug(t.name)}"))
        if t.null is None:
            out.append(note("The null distribution is not stored with this table: the correlations are drawn "
                            + ("with the null's 95th percentile." if threshold is not None else
                               "without the null (no threshold column either).")))
    out.append(table_html(t.frame))
    return "".join(out)


def _map_table_html(t: ScoreTable) -> str:
    frame = t.frame
    p = next((frame[c] for c in ("corrected_p_value", "p_value") if c in frame), None)
    fig = rf.map_figure(pd.to_numeric(frame["mean_average_precision"], errors="coerce").to_numpy(),
                        None if p is None else pd.to_numeric(p, errors="coerce").to_numpy(), t.name)
    return figure_tag(fig, f"{t.name}: mean average precision", f"score-{_slug(t.name)}") + table_html(frame)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "table"


def score_summary(tables: list[ScoreTable]) -> pd.DataFrame:
    """One row per score table: ``score``, ``value`` (percent above the null, or the mean mAP), ``detail``."""
    rows = []
    for t in tables:
        if t.kind == "correlation":
            pct = t.percent_above_null()
            thr = t.threshold
            detail = f"{len(t.frame)} groups"
            if thr is not None:
                detail += f", null 95th percentile {thr:.3f}"
            rows.append((t.name, "" if pct is None else f"{pct:.1f}%", detail))
        elif t.kind == "map":
            m = pd.to_numeric(t.frame["mean_average_precision"], errors="coerce")
            detail = f"{len(t.frame)} groups"
            if "below_corrected_p" in t.frame:
                sig = t.frame["below_corrected_p"].astype(str).str.lower().isin(("true", "1")).sum()
                detail += f", {sig} significant (FDR < 0.05)"
            rows.append((f"{t.name} (mean)", f"{m.mean():.3f}", detail))
    return pd.DataFrame(rows, columns=["score", "value", "detail"])


def _strings(values: pd.Series) -> np.ndarray:
    """A column as an array of str, missing values as "" (sortable, whatever the column's dtype)."""
    return np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)


def profiles_html(profiles, annotations: pd.DataFrame | None = None) -> str:
    """The profiles' correlation matrix, ordered by well group (:data:`~cpfeatures.report.wellmap.GROUP_COLUMNS`).

    Parameters
    ----------
    profiles : path or DataFrame
        Well profiles: their numeric non-``Metadata_`` columns are the features.
    annotations : DataFrame, optional
        The plate map's wells (:func:`~cpfeatures.report.wellmap.well_annotations`): labels the rows.

    Returns
    -------
    str
        HTML: the figure and its note, or a note when there is too little to correlate.
    """
    frame = read_frame(profiles, "profiles")
    features = [c for c in frame.columns if not str(c).startswith("Metadata_")
                and pd.api.types.is_numeric_dtype(frame[c])]
    values = frame[features].to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=0) & (np.nanstd(values, axis=0) > 0)
    values = values[:, keep]
    if values.shape[0] < 2 or values.shape[1] < 2:
        return note(f"profiles: {len(frame)} profile(s) x {int(keep.sum())} usable feature(s): too few to correlate.")
    present = [c for c in GROUP_COLUMNS if c in frame and frame[c].notna().any()]
    group = present[0] if present else None
    order = np.arange(len(frame))
    groups = None
    if group is not None:  # by group, then by the finer annotations (replicates side by side)
        order = np.lexsort([_strings(frame[c]) for c in reversed(present)])
        groups = _strings(frame[group])[order].tolist()
    labels = None
    if "Metadata_Well" in frame:
        wells = _strings(frame["Metadata_Well"])[order]
        if annotations is not None:  # the plate map's label of each well
            from ..profile import canonical_well

            names = label_of(annotations, [canonical_well(w) for w in wells])
        else:
            names = _strings(frame["Metadata_pert_iname"])[order] if "Metadata_pert_iname" in frame \
                else np.full(len(wells), "")
        labels = [f"{w} {n}".strip() for w, n in zip(wells, names)]
    corr = np.corrcoef(values[order])
    title = f"profile correlations ({len(frame)} profiles, {values.shape[1]} features)"
    fig = rf.correlation_figure(corr, labels, title, groups=groups)
    text = note("Pearson correlation between well profiles" + (f", ordered by {group}" if group else "") + ".")
    return figure_tag(fig, title, "profile-correlation") + text


def scores_section(ctx: ReportContext) -> str:
    """The ``scores`` section: a summary row per score table, each table with its figure, the profiles'
    correlation matrix; or how to make them when none is given."""
    tables, profiles = ctx.scores, ctx.profiles
    if not tables and profiles is None:
        return note("No scores yet: run `cpfeatures profile STORE -o profiles.parquet --platemap MAP` and "
                    "`cpfeatures score profiles.parquet --replicates-by COLUMN -o scores/`, then "
                    "`cpfeatures report ... --scores scores/`.")
    # the warnings the scoring gave (its CLI printed them): the same numbers carry the same caveats here
    out = [note(f"Warning from the scoring: {w}", "warn") for w in ctx.score_warnings]
    summary = score_summary(tables)
    if len(summary):
        out.append(table_html(summary, scroll=False))
    for t in tables:
        out.append(f"<h3>{esc(t.name)}</h3>")
        if t.kind == "correlation":
            out.append(_correlation_table_html(t))
        elif t.kind == "map":
            out.append(_map_table_html(t))
        else:
            out.append(table_html(t.frame))
    if profiles is not None:
        out.append("<h3>Profiles</h3>")
        out.append(profiles_html(profiles, ctx.annotations))
    return "".join(out)
