"""The report's ``controls`` section: do the controls separate, and does the plate have position effects?

Control roles come from the plate map (:mod:`cpfeatures.report.wellmap`). Each
per-well readout (cells per site, the mapped feature, the profiles' first
principal component) is scored by the Z' of positive against negative control
wells and by edge-against-interior and row / column trends; with the profiles,
each positive control's mAP against the negative controls is scored too.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pandas as pd

from . import data as rd
from . import figures as rf
from . import qc
from .heatmaps import plate_map
from .markup import figure_tag, note, table_html
from .wellmap import NEGATIVE, POSITIVE

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["controls_section", "controls_map", "control_map_scores", "readouts"]


def readouts(ctx: ReportContext) -> dict[str, pd.Series]:
    """Per-well readouts scored for control separation and position effects, by name."""
    out = {"cells per site": ctx.wells["cells_per_site"]}
    feature, table = ctx.feature, ctx.feature_table
    if feature is not None:
        median = rd.feature_well_median(ctx.data, feature, table)
        if len(median):
            out[f"{feature} (well median)"] = median
    if ctx.profile_pc is not None:
        out["first principal component of the profiles"] = ctx.profile_pc
    return out


def controls_map(ctx: ReportContext) -> str | None:
    """The plate map of control roles (-1 negative, +1 positive, 0 other), or None without annotations."""
    wells = ctx.wells
    if not len(wells) or not (wells["control"] != "").any():
        return None
    role = wells["control"].map({NEGATIVE: -1.0, POSITIVE: 1.0}).fillna(0.0)
    return plate_map(ctx, role, "controls-map", "controls: negative -1 (blue), positive +1 (red), others 0",
                     "role", cmap="coolwarm", vmin=-1, vmax=1, integer=True)


def controls_section(ctx: ReportContext) -> str:
    """The ``controls`` section: the control wells' map, Z' of each readout, mAP of the positive controls
    (with profiles), and position effects (these with or without controls)."""
    wells = ctx.wells
    out = []
    has_roles = len(wells) and (wells["control"] != "").any()
    if not has_roles:
        out.append(note(f"No control wells known ({ctx.annotation_source}): give the plate map (--platemap) or "
                        "the control queries (--negcon, --poscon) to score the controls."))
    else:
        n_neg = int((wells["control"] == NEGATIVE).sum())
        n_pos = int((wells["control"] == POSITIVE).sum())
        out.append(note(f"{n_neg} negative and {n_pos} positive control wells ({ctx.annotation_source})."))
        cm = controls_map(ctx)
        if cm:
            out.append(f'<div class="figs">{cm}</div>')
        sep = qc.control_separation(readouts(ctx), wells)
        out.append("<h3>Control separation (Z')</h3>")
        out.append(table_html(sep, scroll=False))
        out.append(note("Z' = 1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg| over one value per control well "
                        "(sample standard deviations): 0.5 or more separates the controls well, 0 or less not at all. "
                        "The first principal component is that of the profiles (standardized features), when given."))
        out.append(_controls_map_html(ctx))
    out.append("<h3>Position effects</h3>")
    out.append(_position_html(ctx))
    return "".join(out)


def control_map_scores(profiles: pd.DataFrame, wells: pd.DataFrame, null_size: int = 1000, seed: int = 0
                       ) -> tuple[pd.DataFrame | None, str]:
    """mAP of each positive control's wells retrieving each other against the negative control wells.

    The profiles of the control wells (one per well) are ranked by cosine
    similarity with :func:`cpfeatures.profile.mean_average_precision`, the
    negative controls as the reference (copairs' phenotypic-activity recipe).

    Parameters
    ----------
    profiles : DataFrame
        Well profiles with a ``Metadata_Well`` column.
    wells : DataFrame
        The report's well table (:func:`~cpfeatures.report.qc.well_table`): its
        ``control`` and ``perturbation`` columns, indexed by well.
    null_size : int
        Size of the null distribution of each p-value.
    seed : int

    Returns
    -------
    table : DataFrame or None
        One row per positive control; None when it cannot be scored.
    note : str
        What was scored, or why it was not.
    """
    from ..profile import canonical_well, mean_average_precision

    if "Metadata_Well" not in profiles:
        return None, "the profiles have no Metadata_Well column"
    frame = profiles.copy()
    key = frame["Metadata_Well"].map(lambda w: canonical_well(str(w)))
    frame["Metadata_report_control"] = wells["control"].reindex(key).fillna("").to_numpy()
    frame["Metadata_report_perturbation"] = wells["perturbation"].reindex(key).fillna("").to_numpy()
    frame = frame[frame["Metadata_report_control"].isin([NEGATIVE, POSITIVE])].reset_index(drop=True)
    n_neg = int((frame["Metadata_report_control"] == NEGATIVE).sum())
    pos = frame[frame["Metadata_report_control"] == POSITIVE]
    replicated = pos.groupby("Metadata_report_perturbation").size()
    if n_neg < 1 or not (replicated >= 2).any():
        return None, (f"needs negative control profiles and a positive control in 2 or more wells ({n_neg} negative, "
                      f"positive controls in {int(replicated.max()) if len(replicated) else 0} well(s) at most)")
    features = [c for c in frame.columns if not str(c).startswith("Metadata_")
                and pd.api.types.is_numeric_dtype(frame[c])]
    with warnings.catch_warnings(record=True) as caught:  # said in the report's note, not on the console
        warnings.simplefilter("always")
        table = mean_average_precision(frame, "Metadata_report_perturbation", reference_query=
                                       f"Metadata_report_control == '{NEGATIVE}'", null_size=null_size, seed=seed,
                                       features=features)
    table = table.rename(columns={"Metadata_report_perturbation": "positive control"})
    said = "; ".join(dict.fromkeys(str(w.message) for w in caught))
    return table, f"{n_neg} negative control profiles as the reference; null of {null_size}." + (
        f" Note: {said}" if said else "")


def _controls_map_html(ctx: ReportContext) -> str:
    profiles = ctx.plate_profiles
    out = ["<h3>Positive controls against the negative controls (mAP)</h3>"]
    if profiles is None:
        out.append(note("Give the profiles (--profiles) for the mAP of each positive control against the negative "
                        "controls and the Z' of the profiles' first principal component."))
        return "".join(out)
    table, text = control_map_scores(profiles, ctx.wells)
    if table is None:
        out.append(note(f"Not scored: {text}."))
        return "".join(out)
    out.append(table_html(table, scroll=False))
    out.append(note("Each positive control's wells retrieve each other among the negative control wells "
                    "(cosine similarity of the profiles; cpfeatures.profile.mean_average_precision). " + text))
    return "".join(out)


def _position_html(ctx: ReportContext) -> str:
    wells = ctx.wells
    if len(wells) < 3:
        return note("Too few wells for position effects.")
    values = readouts(ctx)
    table, trends = qc.position_effects(values, wells, ctx.shape)
    out = [table_html(table, scroll=False)]
    fig = rf.trends_figure(trends)
    out.append(figure_tag(fig, "row and column medians relative to the plate median", "position-trends"))
    out.append(note("Edge wells: the outer rows and columns. The row / column profiles are each row's and "
                    "column's median relative to the plate median (0 = the median); worst_row / worst_column "
                    "name the furthest. Mann-Whitney U (two-sided) compares edge and interior wells."))
    return "".join(out)
