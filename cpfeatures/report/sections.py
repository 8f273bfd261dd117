"""The report's screening sections: image quality per channel, wells (counts, flags, per-well cards),
controls (Z', mAP of positive controls against the negative controls, position effects).

Each ``*_section(ctx)`` returns HTML; ``ctx`` is the dict :func:`cpfeatures.report.build_report` builds.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from . import figures as rf
from . import qc
from .layout import plate_matrix, row_labels
from .markup import chooser_html, choice_html, esc, figure_tag, img_tag, kv_html, map_html, note, table_html
from .svg import heatmap_svg
from .wellmap import NEGATIVE, POSITIVE

__all__ = ["quality_section", "wells_section", "controls_section", "well_tips", "plate_map", "plate_matrix",
           "QUALITY_SHOWN", "quality_by_channel", "controls_map", "control_map_scores", "readouts"]

#: Image-quality measurements mapped per channel: (metric, title, colour map).
QUALITY_SHOWN = (
    ("FocusScore", "focus score (normalized variance; low: out of focus)", "cividis"),
    ("PowerLogLogSlope", "power log-log slope (blur: more negative)", "cividis"),
    ("PercentMaximal", "saturation: % of pixels at the maximum", "magma"),
    ("MeanIntensity", "mean intensity", "viridis"),
)


def well_tips(ctx: dict) -> np.ndarray:
    """Tooltip head of every well of the layout: ``"D08 FK-866 (positive control)"``."""
    rows, cols = ctx["shape"]
    letters = row_labels(rows)
    names = np.array([[f"{letters[r]}{c + 1:02d}" for c in range(cols)] for r in range(rows)], dtype=object)
    ann = ctx.get("annotations")
    if ann is None:
        return names
    out = names.copy()
    for (r, c), well in np.ndenumerate(names):
        if well in ann.index:
            label, role = ann.at[well, "perturbation"], ann.at[well, "control"]
            out[r, c] = f"{well} {label}".strip() + (f" ({role})" if role else "")
    return out


def plate_map(ctx: dict, values: pd.Series, name: str, caption: str, label: str = "", **kw) -> str:
    """A per-well Series as a zoomable SVG plate map with perturbation tooltips."""
    svg = heatmap_svg(plate_matrix(values, ctx["shape"]), name, label, tips=ctx["tips"], **kw)
    return map_html(svg, caption)


def controls_map(ctx: dict) -> str | None:
    """The plate map of control roles (-1 negative, +1 positive, 0 other), or None without annotations."""
    wells = ctx["wells"]
    if not len(wells) or not (wells["control"] != "").any():
        return None
    role = wells["control"].map({NEGATIVE: -1.0, POSITIVE: 1.0}).fillna(0.0)
    return plate_map(ctx, role, "controls-map", "controls: negative -1 (blue), positive +1 (red), others 0",
                     "role", cmap="coolwarm", vmin=-1, vmax=1, integer=True)


# -- image quality ------------------------------------------------------------------------------------------

def quality_by_channel(image_columns: list[str], roles: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``{channel: {metric: column}}`` for the :data:`QUALITY_SHOWN` metrics the Image table has.

    Channels in the run's role order (DNA first when present), then the others.
    """
    pattern = re.compile(r"^ImageQuality_(" + "|".join(m for m, _, _ in QUALITY_SHOWN) + r")_([^_]+)$")
    out: dict[str, dict[str, str]] = {}
    for column in image_columns:
        m = pattern.match(column)
        if m:
            out.setdefault(m.group(2), {})[m.group(1)] = column
    order = (["DNA"] if "DNA" in out else []) + [r for r in (roles or []) if r in out and r != "DNA"]
    order += sorted(r for r in out if r not in order)
    return {r: out[r] for r in order}


def quality_section(ctx: dict) -> str:
    image = ctx["data"].image
    channels = quality_by_channel(ctx["image_columns"], ctx["info"].get("roles"))
    if not channels:
        return note("No image-quality measurements in this run (no ImageQuality_ columns): add "
                    "\"imagequality\" to [measure] image_families to get focus, saturation and intensity maps "
                    "of every channel.")
    out = [chooser_html("channel", list(channels), prompt="channel:")]
    rows = []
    for channel, metrics in channels.items():
        maps = []
        for metric, title, cmap in QUALITY_SHOWN:
            column = metrics.get(metric)
            if column is None:
                continue
            values = pd.to_numeric(image[column], errors="coerce")
            per_well = values.groupby(image["Metadata_Well"]).median()
            maps.append(plate_map(ctx, per_well, f"quality-{metric}-{channel}", f"{channel}: {title}",
                                  "well median", cmap=cmap))
            z = qc.robust_z(values)
            rows.append({"channel": channel, "measurement": column, "median": values.median(), "min": values.min(),
                         "max": values.max(), "sites beyond robust z 3": int((z.abs() > qc.Z_LIMIT).sum()),
                         "worst site": image["site"].iloc[int(np.nanargmax(z.abs().to_numpy()))]
                         if z.abs().notna().any() and (z.abs() > qc.Z_LIMIT).any() else ""})
        out.append(choice_html("channel", channel, f'<div class="figs">{"".join(maps)}</div>'))
    out.append(note("Choose a channel above (every map is in the file; without scripts all are shown). Values "
                    "are well medians over the well's sites; hover a well for its perturbation and value, zoom "
                    "with the wheel or the buttons."))
    out.append("<h3>Every channel at a glance (over sites)</h3>")
    out.append(table_html(pd.DataFrame(rows)))
    return "".join(out)


# -- wells -------------------------------------------------------------------------------------------------

def _key_feature_table(ctx: dict) -> pd.DataFrame:
    """Median of each key feature per well (rows: wells) over the cells read for it."""
    parts = []
    for table, names in ctx["key_features"].items():
        frame = ctx["data"].objects.get(table)
        if frame is None:
            continue
        present = [n for n in names if n in frame]
        if present:
            parts.append(frame.groupby("Metadata_Well")[present].median())
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def _site_counts(ctx: dict) -> pd.DataFrame:
    image = ctx["data"].image
    cols = [c for c in ("Count_Nuclei", "Count_Cells") if c in image] or ["n_Nuclei", "n_Cells"]
    return image[["site", "Metadata_Well", *cols]]


def wells_section(ctx: dict) -> str:
    wells, flags = ctx["wells"], ctx["flags"]
    image = ctx["data"].image
    out = []
    column = "Count_Cells" if "Count_Cells" in image else "n_Cells"
    per_site = pd.to_numeric(image[column], errors="coerce").to_numpy() if len(image) else np.array([])
    per_well = wells["cells_per_site"].to_numpy(dtype=float) if len(wells) else np.array([])
    if per_site.size:
        fig = rf.histograms_figure([("cells per site", per_site), ("cells per site, well mean", per_well)],
                                   f"cell counts: {per_site.size} sites, {np.isfinite(per_well).sum()} wells", ncols=2)
        out.append(figure_tag(fig, "cell count distributions over sites and wells", "count-distributions"))
    out.append("<h3>Wells to look at</h3>")
    rule = (f"Failed: a site of the well failed (see the run summary) or none completed. Low count: fewer cells "
            f"per site than {qc.LOW_FRACTION:g} x the plate median, or a robust z-score below -{qc.Z_LIMIT:g}. High "
            f"count: robust z-score above {qc.Z_LIMIT:g}. Robust z = (x - median) / (1.4826 MAD) over the wells, "
            f"from {qc.MIN_WELLS_Z} wells with data on.")
    if len(flags):
        out.append(note(f"{len(flags)} of {len(wells)} wells flagged.", "warn"))
        out.append(table_html(flags, links="well"))
    else:
        out.append(note(f"No well flagged among {len(wells)}."))
    out.append(note(rule))
    out.append("<h3>Per well</h3>")
    out.append(_well_cards(ctx))
    return "".join(out)


def _well_cards(ctx: dict) -> str:
    wells = ctx["wells"]
    if not len(wells):
        return note("No well with data.")
    flags = ctx["flags"].set_index("well")["reasons"] if len(ctx["flags"]) else pd.Series(dtype=object)
    features = _key_feature_table(ctx)
    plate_median = features.median() if len(features) else pd.Series(dtype=float)
    counts = _site_counts(ctx)
    z = qc.robust_z(wells["cells_per_site"])
    thumbs = ctx.get("well_thumbs", {})
    labels = [f"{w} {wells.at[w, 'perturbation']}".strip() + (" (flagged)" if w in flags.index else "")
              for w in wells.index]
    first = next((w for w in ctx["card_wells"] if w in wells.index), wells.index[0])
    keys = [first] + [w for w in wells.index if w != first]
    labels = [labels[list(wells.index).index(k)] for k in keys]
    out = [chooser_html("well", keys, labels, select=True, prompt="well:")]
    for well in wells.index:
        w = wells.loc[well]
        parts = [f"<h3>{esc(well)} {esc(w['perturbation'])}</h3>"]
        if well in flags.index:
            parts.append(f'<p class="flag">{esc(flags[well])}</p>')
        parts.append(kv_html([("perturbation", w["perturbation"] or None), ("control", w["control"] or None),
                              ("sites", f"{int(w['sites_done'])} done, {int(w['sites_failed'])} failed"),
                              ("cells", w["cells"]), ("cells per site", w["cells_per_site"]),
                              ("robust z (cells per site)", z.get(well))]))
        site_rows = counts[counts["Metadata_Well"] == well].drop(columns=["Metadata_Well"])
        blocks = []
        if len(site_rows):
            blocks.append(table_html(site_rows, scroll=False))
        if well in features.index:
            f = features.loc[well]
            key = pd.DataFrame({"feature": f.index, "well median": f.to_numpy(),
                                "plate median": plate_median.reindex(f.index).to_numpy()})
            key["well / plate"] = key["well median"] / key["plate median"].where(key["plate median"] != 0)
            blocks.append(table_html(key, scroll=False))
        parts.append('<div class="figs">' + "".join(blocks) + "</div>")
        if well in thumbs:
            figs = []
            for key, drawn in thumbs[well]:
                if isinstance(drawn, Exception):
                    figs.append(f"<figure>{esc(key)}: not drawn ({esc(drawn)})</figure>")
                else:
                    figs.append(f"<figure>{img_tag(drawn, f'{key} thumbnail', f'well-thumb-{key}', 'thumb')}"
                                f"<figcaption>{esc(key)}</figcaption></figure>")
            parts.append('<div class="thumbs">' + "".join(figs) + "</div>")
        elif ctx.get("plate") is not None:
            parts.append(note("Thumbnails are drawn for the flagged wells and the overlay wells "
                              "(--well-cards); pick this well's sites with --sites to draw it."))
        out.append(choice_html("well", well, "".join(parts), "well-card", element_id=f"well-{well}"))
    n_feat = int(ctx["data"].objects.get("Cells", pd.DataFrame()).get("site", pd.Series(dtype=object)).nunique())
    out.append(note(f"Key features: the median over the cells read for the well (all sites of the wells with "
                    f"thumbnails, a sample of {n_feat} sites otherwise), against the median over the wells."))
    return "".join(out)


# -- controls ---------------------------------------------------------------------------------------------

def readouts(ctx: dict) -> dict[str, pd.Series]:
    """Per-well readouts scored for control separation and position effects."""
    from . import data as rd

    out = {"cells per site": ctx["wells"]["cells_per_site"]}
    feature, table = ctx["feature"], ctx["feature_table"]
    if feature is not None:
        median = rd.feature_well_median(ctx["data"], feature, table)
        if len(median):
            out[f"{feature} (well median)"] = median
    pc = ctx.get("profile_pc")
    if pc is not None:
        out["first principal component of the profiles"] = pc
    return out


def controls_section(ctx: dict) -> str:
    wells = ctx["wells"]
    out = []
    has_roles = len(wells) and (wells["control"] != "").any()
    if not has_roles:
        out.append(note(f"No control wells known ({ctx['annotation_source']}): give the plate map (--platemap) or "
                        "the control queries (--negcon, --poscon) to score the controls."))
    else:
        n_neg = int((wells["control"] == NEGATIVE).sum())
        n_pos = int((wells["control"] == POSITIVE).sum())
        out.append(note(f"{n_neg} negative and {n_pos} positive control wells ({ctx['annotation_source']})."))
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

    Returns
    -------
    (table or None, note)
    """
    from ..profile import mean_average_precision
    from ..profile.annotate import canonical_well

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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = mean_average_precision(frame, "Metadata_report_perturbation", reference_query=
                                       f"Metadata_report_control == '{NEGATIVE}'", null_size=null_size, seed=seed,
                                       features=features)
    table = table.rename(columns={"Metadata_report_perturbation": "positive control"})
    said = "; ".join(dict.fromkeys(str(w.message) for w in caught))
    return table, f"{n_neg} negative control profiles as the reference; null of {null_size}." + (
        f" Note: {said}" if said else "")


def _controls_map_html(ctx: dict) -> str:
    profiles = ctx.get("plate_profiles")
    out = ["<h3>Positive controls against the negative controls (mAP)</h3>"]
    if profiles is None:
        out.append(note("Give the profiles (--profiles) for the mAP of each positive control against the negative "
                        "controls and the Z' of the profiles' first principal component."))
        return "".join(out)
    table, text = control_map_scores(profiles, ctx["wells"])
    if table is None:
        out.append(note(f"Not scored: {text}."))
        return "".join(out)
    out.append(table_html(table, scroll=False))
    out.append(note("Each positive control's wells retrieve each other among the negative control wells "
                    "(cosine similarity of the profiles; cpfeatures.profile.mean_average_precision). " + text))
    return "".join(out)


def _position_html(ctx: dict) -> str:
    wells = ctx["wells"]
    if len(wells) < 3:
        return note("Too few wells for position effects.")
    values = readouts(ctx)
    table, trends = qc.position_effects(values, wells, ctx["shape"])
    out = [table_html(table, scroll=False)]
    fig = rf.trends_figure(trends)
    out.append(figure_tag(fig, "row and column medians relative to the plate median", "position-trends"))
    out.append(note("Edge wells: the outer rows and columns. The row / column profiles are each row's and "
                    "column's median relative to the plate median (0 = the median); worst_row / worst_column "
                    "name the furthest. Mann-Whitney U (two-sided) compares edge and interior wells."))
    return "".join(out)
