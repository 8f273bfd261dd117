"""The QC report: one self-contained HTML file from a run's store (and optional scores).

Everything is inline: CSS in a ``<style>`` element, figures as PNG ``data:``
URIs or inline SVG, and one small vanilla-JS script (:data:`~cpfeatures.report.markup.SCRIPT`)
for tooltips, zoom and choosers; no external asset and no request, so the
file opens in any browser, offline, and can be mailed or archived as is.
Without scripts every panel shows and the browser's own tooltips remain.
Text from the store, the plate map and the score tables is escaped
(:func:`html.escape`) before it is written.

Sections (``id`` of each ``<section>``):

``summary``
    Plate, store, sites done / failed / not run, the error table, run time
    (and without compilation), settings (TOML), the run's and the report's versions.
``heatmaps``
    Plate maps (SVG, zoomable, each well's perturbation and value on hover):
    cells per well, failed sites per well, the chosen feature's well median.
``quality``
    Image quality of every channel measured (focus, blur, saturation, mean
    intensity), one channel at a time, and a table over all channels.
``wells``
    Cell-count distributions over sites and wells, the flagged wells with their
    reasons, and a card per well (its sites' counts and thumbnails, key features).
``controls``
    Z' of positive against negative control wells, mAP of each positive control
    against the negative controls (with profiles), position effects.
``illumination``
    The illumination function of each channel with its colour bar.
``overlays``
    A few sites as channel composites with nuclei and cell outlines; a click
    on a thumbnail opens the full-resolution image (a ``<details>`` element:
    browsers refuse to navigate to ``data:`` links).
``distributions``
    Histograms of key features per compartment, from a sample of sites.
``scores``
    Percent Replicating / Matching (correlations against the null) and mAP
    tables and figures, and the profiles' correlation matrix, when given.

This module assembles the page: :func:`~cpfeatures.report.context.build_context`
reads everything once into a :class:`~cpfeatures.report.context.ReportContext`,
then each section's function (:data:`BUILDERS`, one module per concern) writes
its body from it.
"""

from __future__ import annotations

import time
from pathlib import Path

from .context import build_context
from .controls import controls_section
from .features import distributions_section, scores_section
from .heatmaps import heatmaps_section, quality_section
from .images import illumination_section, overlays_section
from .markup import CSS, SCRIPT, esc
from .sites import parse_sites
from .summary import summary_section
from .wells import wells_section

__all__ = ["build_report", "parse_sites", "SECTIONS"]

#: (id, heading) of the report's sections, in order.
SECTIONS = (
    ("summary", "Run summary"),
    ("heatmaps", "Plate heatmaps"),
    ("quality", "Image quality"),
    ("wells", "Wells"),
    ("controls", "Controls and position effects"),
    ("illumination", "Illumination functions"),
    ("overlays", "Segmentation overlays"),
    ("distributions", "Feature distributions"),
    ("scores", "Profiles and scores"),
)

#: Section id -> the function writing its body from the report's :class:`~cpfeatures.report.context.ReportContext`.
BUILDERS = {"summary": summary_section, "heatmaps": heatmaps_section, "quality": quality_section,
            "wells": wells_section, "controls": controls_section, "illumination": illumination_section,
            "overlays": overlays_section, "distributions": distributions_section, "scores": scores_section}


def build_report(store, out_html, plate=None, scores=None, profiles=None, sites=None, feature=None, *,
                 platemap=None, external_metadata=None, negcon: str | None = None, poscon: str | None = None,
                 n_overlays: int = 6, well_cards: int = 8, sample_sites: int = 48, feature_sites: int | None = 3,
                 thumb_size: int = 320, title: str | None = None) -> Path:
    """Write the QC report of a run as one self-contained HTML file.

    Parameters
    ----------
    store : Store or path-like
        The run's store (``cpfeatures run PLATE -o OUT.zarr``).
    out_html : path-like
        Where to write the report.
    plate : Plate or path-like, optional
        The plate folder, for the segmentation overlays (default: the folder
        the run read, recorded in the store, when it still exists).
    scores : path, DataFrame, result object, list or dict, optional
        Score tables: the folder ``cpfeatures score -o DIR`` wrote (or some of
        its files), DataFrames, or :class:`~cpfeatures.profile.ReplicatingResult`
        / :class:`~cpfeatures.profile.MatchingResult` objects (whose null
        distributions are then drawn too).
    profiles : path or DataFrame, optional
        Well profiles (``cpfeatures profile``): their correlation matrix is
        shown, and their annotations pick one overlay site per well group.
    sites : str or list of str, optional
        Sites to draw (``"D08_f5,L09_f5"``; a bare well takes its first field).
        Default: ``n_overlays`` sites, one per well group or spread over the plate.
    feature : str, optional
        Feature mapped per well (its median); default a Cells DNA intensity.
    platemap : path or DataFrame, optional
        What is in each well: a plate-map file or a JUMP plate-map folder (the
        store's plate id is the barcode). Default: the profiles' annotations,
        else a ``platemap.csv`` in the plate folder. Wells are then labelled
        with their perturbation, and controls are scored
        (:mod:`cpfeatures.report.wellmap`).
    external_metadata : path or DataFrame, optional
        Perturbation metadata joined to a plate-map file on ``broad_sample``.
    negcon, poscon : str, optional
        Queries (pandas syntax on the plate map's ``Metadata_`` columns)
        selecting the negative / positive control wells, instead of the
        plate map's control types.
    n_overlays : int
        Number of sites drawn by default.
    well_cards : int
        Flagged wells whose sites are drawn as thumbnails in the per-well
        section (besides the overlay wells).
    sample_sites : int
        Sites sampled for the feature distributions.
    feature_sites : int or None
        Fields per well whose cells give an object feature's well median
        (spread over the well's fields); None or 0 for all. Each site's whole
        table is read for it, the report's largest cost on big plates.
    thumb_size : int
        Longest side of overlay thumbnails, in pixels.
    title : str, optional
        Report title (default ``"cpfeatures QC report: <plate>"``).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    StoreError
        ``store`` is not a cpfeatures store.
    InputError
        Unknown ``feature``, malformed or unknown ``sites``, unreadable scores or profiles.
    PlateError
        An explicitly given plate cannot be read.
    """
    from ..io.fs import check_writable

    t0 = time.perf_counter()
    check_writable(Path(out_html).parent)  # a read-only or full folder is found before the store is read
    ctx = build_context(store, plate, scores, profiles, sites, feature, platemap=platemap,
                        external_metadata=external_metadata, negcon=negcon, poscon=poscon, n_overlays=n_overlays,
                        well_cards=well_cards, sample_sites=sample_sites, feature_sites=feature_sites,
                        thumb_size=thumb_size)
    body = []
    timings = [("reading and overlays", time.perf_counter() - t0)]
    for sid, heading in SECTIONS:
        t1 = time.perf_counter()
        body.append(f'<section id="{sid}"><h2>{esc(heading)}</h2>{BUILDERS[sid](ctx)}</section>')
        timings.append((sid, time.perf_counter() - t1))
    plate_id = ctx.info.get("plate_id") or "unknown plate"
    title = title or f"cpfeatures QC report: {plate_id}"
    nav = "".join(f'<a href="#{sid}">{esc(heading)}</a>' for sid, heading in SECTIONS)
    seconds = time.perf_counter() - t0
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">'
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
           f"<header><h1>{esc(title)}</h1><nav>{nav}</nav></header><main>{''.join(body)}</main>"
           f"<footer>generated {esc(stamp)} by cpfeatures {esc(_own_version())} in {seconds:.1f} s "
           f"({esc(', '.join(f'{k} {v:.1f} s' for k, v in timings))})</footer>"
           f"<script>{SCRIPT}</script></body></html>\n")
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out


def _own_version() -> str:
    from .. import __version__

    return __version__
