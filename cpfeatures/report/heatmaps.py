"""The sections drawn as plate maps: ``heatmaps`` (cells, failures and a feature per well) and ``quality``
(image quality of every channel), and :func:`plate_map`, which every plate map of the report goes through.

A plate map is inline SVG (:func:`~cpfeatures.report.svg.heatmap_svg`): each well
names its perturbation and value on hover, and the page's script zooms and pans it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import data as rd
from . import qc
from .layout import plate_matrix
from .markup import chooser_html, choice_html, map_html, note, table_html
from .svg import heatmap_svg

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["plate_map", "heatmaps_section", "quality_section", "quality_by_channel", "QUALITY_SHOWN"]

#: Image-quality measurements mapped per channel: (metric, title, colour map).
QUALITY_SHOWN = (
    ("FocusScore", "focus score (normalized variance; low: out of focus)", "cividis"),
    ("PowerLogLogSlope", "power log-log slope (blur: more negative)", "cividis"),
    ("PercentMaximal", "saturation: % of pixels at the maximum", "magma"),
    ("MeanIntensity", "mean intensity", "viridis"),
)


def plate_map(ctx: ReportContext, values: pd.Series, name: str, caption: str, label: str = "", **kw) -> str:
    """A per-well Series as a zoomable SVG plate map with perturbation tooltips.

    Parameters
    ----------
    ctx : ReportContext
        Gives the plate layout and each well's tooltip.
    values : Series
        Indexed by well name; wells without a value are grey.
    name : str
        The map's ``data-figure`` name (unique in the report).
    caption : str
        Shown under the map.
    label : str
        What the value is, in each well's tooltip and on the colour bar.
    **kw
        Passed to :func:`~cpfeatures.report.svg.heatmap_svg` (``cmap``, ``vmin``, ``marks``, ``integer``, ...).

    Returns
    -------
    str
        HTML.
    """
    svg = heatmap_svg(plate_matrix(values, ctx.shape), name, label, tips=ctx.tips, **kw)
    return map_html(svg, caption)


def heatmaps_section(ctx: ReportContext) -> str:
    """The ``heatmaps`` section: cells per well, failed sites per well, and the chosen feature's well median."""
    data, errors = ctx.data, ctx.errors
    image = data.image
    wells_done = sorted(image["Metadata_Well"].dropna().astype(str).unique()) if len(image) else []
    failures = rd.failures_per_well(errors, wells_done)
    marks = plate_matrix(failures, ctx.shape) > 0
    cells = rd.cells_per_well(image)
    maps = [plate_map(ctx, cells, "cells-per-well", "cells per well", "cells", marks=marks, integer=True, vmin=0),
            plate_map(ctx, failures, "failures-per-well", "failed sites per well", "failed sites", cmap="Reds",
                      integer=True, vmin=0)]
    feature, table = ctx.feature, ctx.feature_table
    if feature is not None:
        median = rd.feature_well_median(data, feature, table)
        what = "over its sites" if table == "Image" else "over its cells"
        maps.append(plate_map(ctx, median, "feature-median", f"{feature}: well median", f"median {what}"))
    out = ['<div class="figs">' + "".join(maps) + "</div>"]
    text = ("Grey wells have no data; a red cross marks a well with a failed site. Hover a well for its name, "
            f"perturbation and value ({ctx.annotation_source}); zoom with the wheel or the buttons, drag to pan.")
    if feature is not None:
        text += f" The feature map shows the median of {feature} per well (choose another with --feature)"
        read, total = ctx.feature_sites
        if table != "Image" and read < total:
            text += f", over the cells of {read} of the {total} sites (--feature-sites per well)"
        text += "."
    out.append(note(text))
    return "".join(out)


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


def quality_section(ctx: ReportContext) -> str:
    """The ``quality`` section: per channel (one shown at a time), plate maps of the :data:`QUALITY_SHOWN`
    metrics; then a table over all channels with the sites beyond a robust z-score of 3."""
    image = ctx.data.image
    channels = quality_by_channel(ctx.image_columns, ctx.info.get("roles"))
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
