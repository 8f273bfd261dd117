"""The report's sections that show the images: ``illumination`` (each channel's function) and ``overlays``
(a few sites as channel composites with nuclei and cell outlines, drawn by :mod:`cpfeatures.report.sites`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CpfeaturesError
from ..io import parse_site_key
from . import figures as rf
from .markup import esc, figure_tag, img_tag, note
from .overlay import OUTLINE_COLORS

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["illumination_section", "overlays_section"]

#: The composite's colours as drawn in the legend.
_LEGEND_COLOURS = {"red": "#e53935", "green": "#43a047", "blue": "#1e88e5"}


def illumination_section(ctx: ReportContext) -> str:
    """The ``illumination`` section: each channel's illumination function with its colour bar."""
    illum = ctx.illum
    if not illum:
        return note("No illumination functions in the store (illumination correction was disabled, or the "
                    "run did not get that far).")
    fig = rf.illum_figure(illum, ctx.info.get("roles"))
    return (figure_tag(fig, "illumination functions", "illumination")
            + note("Each channel's function (raw images are divided by it); a smooth, centred dome is "
                   "expected. Stripes or spots point to debris or a bad site in the plate mean."))


def overlays_section(ctx: ReportContext) -> str:
    """The ``overlays`` section: a thumbnail per drawn site that opens its full-resolution image.

    A ``<details>`` element opens it (browsers refuse to navigate to ``data:`` links).
    """
    chosen, plate = ctx.overlay_sites, ctx.plate
    if plate is None:
        return note(f"Plate images not available ({ctx.plate_note}); pass the plate folder "
                    "(--plate) to draw segmentation overlays.")
    if not chosen:
        return note("No completed site to draw.")
    out = []
    cards = []
    legend_roles = {}
    for key, drawn in ctx.overlays:
        if isinstance(drawn, CpfeaturesError):
            cards.append(f'<div class="site-error">{note(f"{key}: not drawn: {drawn}", "warn")}</div>')
            continue
        thumb_png, full_png, details = drawn
        legend_roles.update(details["colours"])
        counts = ", ".join(f"{n} {k.lower()}" for k, n in details["counts"].items())
        status = " (failed site)" if key in ctx.failed_keys else ""
        h, w = details["shape"]
        label = _well_label(ctx, parse_site_key(key).well)
        caption = f"{key}{status}{label}: {counts}; labels {details['labels']}; {w} x {h} px"
        cards.append(
            f'<details class="site" data-site="{esc(key)}"><summary>'
            f'{img_tag(thumb_png, f"{key} thumbnail", f"overlay-thumb-{key}", "thumb")}'
            f'<div class="caption">{esc(caption)}</div></summary>'
            f'<div class="full">{img_tag(full_png, f"{key} full resolution", f"overlay-full-{key}", "full")}'
            f"</div></details>")
    legend = "".join(f'<span style="background:{_LEGEND_COLOURS[c]}"></span>{esc(c)} = {esc(r)}'
                     for c, r in legend_roles.items())
    outlines = "".join(f'<span style="background:rgb({",".join(str(int(255 * x)) for x in rgb)})"></span>'
                       f"{esc(name)} outlines" for name, rgb in reversed(list(OUTLINE_COLORS.items())))
    out.append(f'<p class="legend">{legend}{outlines}</p>')
    out.append('<div class="sites">' + "".join(cards) + "</div>")
    out.append(note("Click a thumbnail for the full-resolution image (click its caption to close). Channels are "
                    "illumination-corrected and contrast-stretched (0.5-99.8 percentiles) per site. Choose "
                    "sites with --sites D08_f5,L09_f5."))
    return "".join(out)


def _well_label(ctx: ReportContext, well: str) -> str:
    """`` (FK-866, positive control)`` for a well with a plate-map entry, else ``""``."""
    ann = ctx.annotations
    if ann is None or well not in ann.index:
        return ""
    parts = [p for p in (ann.at[well, "perturbation"], ann.at[well, "control"]) if p]
    return f" ({', '.join(parts)})" if parts else ""
