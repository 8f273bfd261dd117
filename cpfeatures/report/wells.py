"""The report's ``wells`` section: cell-count distributions, the wells to look at, and a card per well.

A card holds the well's sites' counts, its key features against the plate's, and
thumbnails of its sites when it is one of the card wells (flagged or drawn as an
overlay: thumbnails are drawn for a few wells only, they cost an image read each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import figures as rf
from . import qc
from .markup import chooser_html, choice_html, esc, figure_tag, img_tag, kv_html, note, table_html

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["wells_section"]


def _key_feature_table(ctx: ReportContext) -> pd.DataFrame:
    """Median of each key feature per well (rows: wells) over the cells read for it."""
    parts = []
    for table, names in ctx.key_features.items():
        frame = ctx.data.objects.get(table)
        if frame is None:
            continue
        present = [n for n in names if n in frame]
        if present:
            parts.append(frame.groupby("Metadata_Well")[present].median())
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def _site_counts(ctx: ReportContext) -> pd.DataFrame:
    image = ctx.data.image
    cols = [c for c in ("Count_Nuclei", "Count_Cells") if c in image] or ["n_Nuclei", "n_Cells"]
    return image[["site", "Metadata_Well", *cols]]


def wells_section(ctx: ReportContext) -> str:
    """The ``wells`` section: cells per site and per well, the flagged wells with their reasons, the cards."""
    wells, flags = ctx.wells, ctx.flags
    image = ctx.data.image
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


def _well_cards(ctx: ReportContext) -> str:
    """One card per well, one shown at a time (a chooser, the first card well first)."""
    wells = ctx.wells
    if not len(wells):
        return note("No well with data.")
    flags = ctx.flags.set_index("well")["reasons"] if len(ctx.flags) else pd.Series(dtype=object)
    features = _key_feature_table(ctx)
    plate_median = features.median() if len(features) else pd.Series(dtype=float)
    counts = _site_counts(ctx)
    z = qc.robust_z(wells["cells_per_site"])
    thumbs = ctx.well_thumbs
    labels = [f"{w} {wells.at[w, 'perturbation']}".strip() + (" (flagged)" if w in flags.index else "")
              for w in wells.index]
    first = next((w for w in ctx.card_wells if w in wells.index), wells.index[0])
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
        elif ctx.plate is not None:
            parts.append(note("Thumbnails are drawn for the flagged wells and the overlay wells "
                              "(--well-cards); pick this well's sites with --sites to draw it."))
        out.append(choice_html("well", well, "".join(parts), "well-card", element_id=f"well-{well}"))
    n_feat = int(ctx.data.objects.get("Cells", pd.DataFrame()).get("site", pd.Series(dtype=object)).nunique())
    out.append(note(f"Key features: the median over the cells read for the well (all sites of the wells with "
                    f"thumbnails, a sample of {n_feat} sites otherwise), against the median over the wells."))
    return "".join(out)
