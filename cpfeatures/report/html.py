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
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CpfeaturesError, InputError, PlateError
from ..io import well_name
from ..io import site_key
from ..store import OBJECT_TABLES, open_store
from . import data as rd
from . import figures as rf
from . import qc
from . import sections as rs
from .layout import parse_well, plate_dimensions
from .markup import CSS as _CSS
from .markup import SCRIPT, esc, figure_tag, kv_html, note, table_html
from .markup import img_tag as img_tag
from .wellmap import label_of, well_annotations
from .overlay import OUTLINE_COLORS, RecordedPlate, open_plate, site_overlay, store_config
from .scores import ScoreTable, read_frame, score_tables

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

#: Profile annotation columns whose values define the well groups overlays are drawn from.
GROUP_COLUMNS = ("Metadata_control_type", "Metadata_pert_type", "Metadata_pert_iname", "Metadata_broad_sample")


# -- choosing sites ---------------------------------------------------------------------------------

_SITE = re.compile(r"^\s*([A-Za-z]+\s*\d+)\s*(?:_f(\d+))?\s*$")


def parse_sites(sites) -> list[tuple[str, int | None]]:
    """``"D08_f5,L09"`` or a list of such -> ``[("D08", 5), ("L09", None)]``.

    A bare well means "the first field of that well" (chosen later).

    Raises
    ------
    InputError
        An entry is not a well (``D08``) or a site (``D08_f5``).
    """
    if sites is None:
        return []
    if isinstance(sites, str):
        sites = sites.split(",")
    out = []
    for entry in sites:
        if isinstance(entry, tuple) and len(entry) == 2:
            entry = site_key(*entry)
        text = str(entry).strip()
        if not text:
            continue
        m = _SITE.match(text)
        if m is None:
            raise InputError(f"not a site: {text!r} (expected a site like D08_f5 or a well like D08)")
        r, c = parse_well(m.group(1))
        out.append((well_name(r, c), None if m.group(2) is None else int(m.group(2))))
    return list(dict.fromkeys(out))


def _well_order(well: str) -> tuple[int, int]:
    try:
        return parse_well(well)
    except InputError:
        return (10**6, 0)


def choose_sites(keys: list[str], errors: pd.DataFrame, wanted, n: int, plate=None,
                 groups: pd.DataFrame | None = None) -> list[tuple[str, int]]:
    """The sites to draw as overlays.

    ``wanted`` (from :func:`parse_sites`) wins; a bare well takes its first
    completed field, else its first failed one, else the plate's first field.
    Otherwise one site per well group (the values of the first of
    :data:`GROUP_COLUMNS` in ``groups``, a profile table), topped up with wells
    spread evenly over the plate, ``n`` in all.

    Raises
    ------
    InputError
        A wanted site is neither in the store nor in the plate.
    """
    done: dict[str, list[int]] = {}
    for key in keys:
        well, f = key.rsplit("_f", 1)
        done.setdefault(well, []).append(int(f))
    failed: dict[str, list[int]] = {}
    for row in errors.itertuples():
        failed.setdefault(str(row.well), []).append(int(row.field))
    in_plate = {(s.well, int(s.field)) for s in plate.sites} if plate is not None else None
    if wanted:
        out = []
        for well, f in wanted:
            if f is None:
                fields = sorted(done.get(well, [])) or sorted(failed.get(well, [])) or \
                    sorted(fi for w, fi in (in_plate or ()) if w == well)
                if not fields:
                    raise InputError(f"well {well} has no site in the store or the plate")
                f = fields[0]
            known = f in done.get(well, []) or f in failed.get(well, []) or (in_plate and (well, f) in in_plate)
            if not known:
                raise InputError(f"site {site_key(well, f)} is in neither the store nor the plate")
            out.append((well, f))
        return out
    wells = sorted(done, key=_well_order)
    if not wells or n <= 0:
        return []
    chosen: list[str] = []
    if groups is not None and "Metadata_Well" in groups:
        column = next((c for c in GROUP_COLUMNS if c in groups and groups[c].notna().any()), None)
        if column is not None:
            for _, frame in groups.dropna(subset=[column]).groupby(column, sort=True):
                for well in sorted(frame["Metadata_Well"].astype(str), key=_well_order):
                    if well in done and well not in chosen:
                        chosen.append(well)
                        break
                if len(chosen) >= n:
                    break
    rest = [w for w in wells if w not in chosen]
    chosen += rd.sample_keys(rest, n - len(chosen)) if len(chosen) < n else []
    chosen = sorted(chosen, key=_well_order)
    return [(w, sorted(done[w])[0]) for w in chosen]


# -- sections ------------------------------------------------------------------------------------------

def _run_versions(info: dict) -> list[tuple[str, str]]:
    """What the run recorded in its store: its cpfeatures, the store layout, and any other versions it kept."""
    rows = [("cpfeatures", info.get("cpfeatures_version", "not recorded")),
            ("store layout", info.get("layout_version"))]
    recorded = info.get("versions")
    if isinstance(recorded, dict):
        rows += [(str(k), str(v)) for k, v in recorded.items() if k != "cpfeatures"]
    return rows


def _versions(info: dict | None = None) -> list[tuple[str, str]]:
    """The report's own versions (the machine writing the report, not the run's)."""
    from importlib import metadata

    rows = []
    for dist in ("cpfeatures", "numpy", "pandas", "zarr", "scikit-image", "scipy", "numba", "matplotlib"):
        try:
            rows.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    rows.append(("python", f"{sys.version.split()[0]} ({platform.platform(terse=True)})"))
    return rows


def _timing_rows(ctx: dict, timing: dict) -> list[tuple[str, str | None]]:
    phases = rd.run_phases(ctx["store"], ctx["info"], ctx["data"].image)
    rows = [("run time", _duration(timing.get("span_seconds")) and
             f"{_duration(timing['span_seconds'])} (store created to last site written or failed; includes "
             "compiling the kernels on a machine's first run)")]
    recorded = phases.get("recorded")
    if isinstance(recorded, dict) and isinstance(recorded.get("sites"), (int, float)):
        # the run's own clock (the latest run of the store): compilation apart from the work
        n = recorded.get("sites_done")
        parts = [f"sites {_duration(recorded['sites'])} measuring {n if n is not None else '?'} "
                 f"site{'s' if n != 1 else ''}"]
        parts += [f"{label} {_duration(recorded[key])}" for key, label in
                  (("compile", "compiling the kernels"), ("illumination", "illumination functions"))
                  if isinstance(recorded.get(key), (int, float))]
        rows.append(("recorded by the run", "; ".join(parts) + " (the store's latest run, its own clock)"))
    if phases.get("sites_seconds") is not None:
        n = phases["n_sites"]
        start = phases["sites_from"]
        rows.append(("run time without compilation",
                     f"{_duration(phases['sites_seconds'])} measuring {n} site{'s' if n != 1 else ''} ({start} to "
                     f"last site written)"))
    if phases.get("setup_seconds") is not None:
        rows.append(("compilation and illumination", f"{_duration(phases['setup_seconds'])} (store created to "
                     "illumination functions written)"))
    return rows


def _duration(seconds) -> str | None:
    if seconds is None or not np.isfinite(seconds):
        return None
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _summary_section(ctx: dict) -> str:
    info, image, errors = ctx["info"], ctx["data"].image, ctx["errors"]
    n_done, n_failed = len(ctx["keys"]), len(errors)
    plate = ctx["plate"]
    timing = rd.site_timing(info, image, errors)
    cells = pd.to_numeric(image["Count_Cells"] if "Count_Cells" in image else image.get("n_Cells",
                          pd.Series(dtype=float)), errors="coerce")
    sites = f"{n_done} done, {n_failed} failed"
    # The plate's sites: from its index when it was read, else from the image file names in its folder.
    plate_sites = None if plate is None else (plate.imaged_sites() if isinstance(plate, RecordedPlate)
                                              else plate.sites)
    if plate_sites:
        n_plate = len(plate_sites)
        not_run = n_plate - len({*ctx["keys"], *errors["site"].astype(str)} & {site_key(*s) for s in plate_sites})
        sites += f", {not_run} not run ({n_plate} in the plate)"
    rows = [
        ("plate", info.get("plate_id")),
        ("store", ctx["store"].url),
        ("plate folder", ctx["plate_note"]),
        ("sites", sites),
        ("wells with data", f"{image['Metadata_Well'].nunique() if len(image) else 0}"),
        ("cells", f"{int(np.nansum(cells))} ({np.nanmedian(cells):.0f} per site, median)" if cells.notna().any()
         else "0"),
        ("channels", ", ".join(info.get("roles", [])) or None),
        ("plate layout", "{} rows x {} columns".format(*ctx["shape"])),
        ("run started", timing.get("created")),
        ("last site written", timing.get("last_site")),
        *_timing_rows(ctx, timing),
    ]
    out = [kv_html(rows)]
    out.append("<h3>Failed sites</h3>")
    if n_failed:
        cols = [c for c in ("site", "well", "field", "error", "message", "file", "time") if c in errors]
        out.append(note(f"{n_failed} site(s) failed; their rows are absent from the tables. Fix the cause and "
                        "run the same command again to redo only them.", "warn"))
        out.append(table_html(errors[cols]))
        if "traceback" in errors:
            tb = "".join(f"{row.site}:\n{row.traceback}\n" for row in errors.itertuples()
                         if isinstance(row.traceback, str) and row.traceback)
            if tb:
                out.append(f'<details class="fold"><summary>tracebacks</summary><pre>{esc(tb)}</pre></details>')
    else:
        out.append(note("No site failed."))
    out.append(f'<details class="fold"><summary>settings (TOML)</summary><pre>'
               f'{esc(info.get("config") or "(not recorded)")}</pre></details>')
    out.append("<h3>Versions</h3>" + '<div class="figs"><div><b>the run</b> (recorded in the store)'
               + kv_html(_run_versions(info)) + "</div><div><b>this report</b>" + kv_html(_versions()) + "</div></div>")
    return "".join(out)


def _heatmaps_section(ctx: dict) -> str:
    data, errors = ctx["data"], ctx["errors"]
    image = data.image
    wells_done = sorted(image["Metadata_Well"].dropna().astype(str).unique()) if len(image) else []
    failures = rd.failures_per_well(errors, wells_done)
    marks = rs.plate_matrix(failures, ctx["shape"]) > 0
    cells = rd.cells_per_well(image)
    maps = [rs.plate_map(ctx, cells, "cells-per-well", "cells per well", "cells", marks=marks, integer=True,
                         vmin=0),
            rs.plate_map(ctx, failures, "failures-per-well", "failed sites per well", "failed sites", cmap="Reds",
                         integer=True, vmin=0)]
    feature, table = ctx["feature"], ctx["feature_table"]
    if feature is not None:
        median = rd.feature_well_median(data, feature, table)
        what = "over its sites" if table == "Image" else "over its cells"
        maps.append(rs.plate_map(ctx, median, "feature-median", f"{feature}: well median", f"median {what}"))
    out = ['<div class="figs">' + "".join(maps) + "</div>"]
    text = ("Grey wells have no data; a red cross marks a well with a failed site. Hover a well for its name, "
            f"perturbation and value ({ctx['annotation_source']}); zoom with the wheel or the buttons, drag to pan.")
    if feature is not None:
        text += f" The feature map shows the median of {feature} per well (choose another with --feature)"
        read, total = ctx["feature_sites"]
        if table != "Image" and read < total:
            text += f", over the cells of {read} of the {total} sites (--feature-sites per well)"
        text += "."
    out.append(note(text))
    return "".join(out)


def _illumination_section(ctx: dict) -> str:
    illum = ctx["illum"]
    if not illum:
        return note("No illumination functions in the store (illumination correction was disabled, or the "
                    "run did not get that far).")
    fig = rf.illum_figure(illum, ctx["info"].get("roles"))
    return (figure_tag(fig, "illumination functions", "illumination")
            + note("Each channel's function (raw images are divided by it); a smooth, centred dome is "
                   "expected. Stripes or spots point to debris or a bad site in the plate mean."))


def _overlays_section(ctx: dict) -> str:
    chosen, plate = ctx["overlay_sites"], ctx["plate"]
    if plate is None:
        return note(f"Plate images not available ({ctx['plate_note']}); pass the plate folder "
                    "(--plate) to draw segmentation overlays.")
    if not chosen:
        return note("No completed site to draw.")
    colours = {"red": "#e53935", "green": "#43a047", "blue": "#1e88e5"}
    out = []
    cards = []
    legend_roles = {}
    for key, drawn in ctx["overlays"].result():
        if isinstance(drawn, CpfeaturesError):
            cards.append(f'<div class="site-error">{note(f"{key}: not drawn: {drawn}", "warn")}</div>')
            continue
        thumb_png, full_png, details = drawn
        legend_roles.update(details["colours"])
        counts = ", ".join(f"{n} {k.lower()}" for k, n in details["counts"].items())
        status = " (failed site)" if key in ctx["failed_keys"] else ""
        h, w = details["shape"]
        label = _well_label(ctx, key.rsplit("_f", 1)[0])
        caption = f"{key}{status}{label}: {counts}; labels {details['labels']}; {w} x {h} px"
        cards.append(
            f'<details class="site" data-site="{esc(key)}"><summary>'
            f'{img_tag(thumb_png, f"{key} thumbnail", f"overlay-thumb-{key}", "thumb")}'
            f'<div class="caption">{esc(caption)}</div></summary>'
            f'<div class="full">{img_tag(full_png, f"{key} full resolution", f"overlay-full-{key}", "full")}'
            f"</div></details>")
    legend = "".join(f'<span style="background:{colours[c]}"></span>{esc(c)} = {esc(r)}'
                     for c, r in legend_roles.items())
    outlines = "".join(f'<span style="background:rgb({",".join(str(int(255 * x)) for x in rgb)})"></span>'
                       f"{esc(name)} outlines" for name, rgb in reversed(list(OUTLINE_COLORS.items())))
    out.append(f'<p class="legend">{legend}{outlines}</p>')
    out.append('<div class="sites">' + "".join(cards) + "</div>")
    out.append(note("Click a thumbnail for the full-resolution image (click its caption to close). Channels are "
                    "illumination-corrected and contrast-stretched (0.5-99.8 percentiles) per site. Choose "
                    "sites with --sites D08_f5,L09_f5."))
    return "".join(out)


def _well_label(ctx: dict, well: str) -> str:
    """`` (FK-866, positive control)`` for a well with a plate-map entry, else ``""``."""
    ann = ctx.get("annotations")
    if ann is None or well not in ann.index:
        return ""
    parts = [p for p in (ann.at[well, "perturbation"], ann.at[well, "control"]) if p]
    return f" ({', '.join(parts)})" if parts else ""


def _draw_overlays(plate, chosen, store, illum, config, thumb_size: int) -> list[tuple[str, object]]:
    """``[(site, (thumbnail PNG, full PNG, details) or the CpfeaturesError that stopped it)]``."""
    out = []
    if plate is None:
        return out
    for well, f in chosen:
        key = site_key(well, f)
        try:
            full, thumb, details = site_overlay(plate, well, f, store=store, thumb_size=thumb_size, illum=illum,
                                                config=config)
        except CpfeaturesError as exc:
            out.append((key, exc))
            continue
        details["shape"] = full.shape[:2]
        out.append((key, (rf.array_png(thumb), rf.array_png(full), details)))
    return out


def _distributions_section(ctx: dict) -> str:
    data, keys = ctx["data"], ctx["key_features"]
    out = []
    n_sites = len(ctx["sample"])
    for table in OBJECT_TABLES:
        names = keys.get(table)
        frame = data.objects.get(table)
        if not names or frame is None:
            continue
        sample = frame[frame["site"].isin(ctx["sample"])]
        panels = [(name, pd.to_numeric(sample[name], errors="coerce").to_numpy()) for name in names if name in sample]
        if not panels:
            continue
        fig = rf.histograms_figure(panels, f"{table}: {len(sample)} objects from {n_sites} site(s)")
        shown = ", ".join(name for name, _ in panels)
        out.append(figure_tag(fig, f"{table} feature distributions: {shown}", f"distributions-{table}"))
    if not out:
        return note("No object measurements in the store yet.")
    total = len(ctx["keys"])
    out.append(note(f"Sites sampled evenly over the plate: {n_sites} of {total}. With 200 objects or more a "
                    "panel spans the 0.5-99.5 percentile range; the red line is the median."))
    return "".join(out)


def _correlation_table_html(t: ScoreTable) -> str:
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


def _score_summary(tables: list[ScoreTable]) -> pd.DataFrame:
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


def _profiles_html(profiles, annotations: pd.DataFrame | None = None) -> str:
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
            from ..profile.annotate import canonical_well

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


def _scores_section(ctx: dict) -> str:
    tables, profiles = ctx["scores"], ctx["profiles"]
    if not tables and profiles is None:
        return note("No scores yet: run `cpfeatures profile STORE -o profiles.parquet --platemap MAP` and "
                    "`cpfeatures score profiles.parquet --replicates-by COLUMN -o scores/`, then "
                    "`cpfeatures report ... --scores scores/`.")
    out = []
    summary = _score_summary(tables)
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
        out.append(_profiles_html(profiles, ctx.get("annotations")))
    return "".join(out)


# -- the report -------------------------------------------------------------------------------------

def _resolve_plate(plate, info: dict, config: dict, store, keys: list[str], wanted_sites):
    """(plate or None, what to say about it).

    The run's images are found by the file names the store recorded
    (:class:`~cpfeatures.report.overlay.RecordedPlate`, no index to parse) when
    every site to draw is in the store; otherwise the plate's index is read.
    An explicitly given plate must open; the recorded one may be gone.
    """
    if plate is not None and hasattr(plate, "load_site"):
        return plate, str(getattr(plate, "root", "given plate"))
    folder = plate if plate is not None else info.get("plate_path")
    if not folder:
        return None, "no plate folder recorded in the store"
    remote = "://" in str(folder) and not str(folder).startswith("file://")
    if not remote and not os.path.exists(folder):
        if plate is not None:
            raise PlateError("plate path does not exist", folder)
        return None, f"{folder} (recorded in the store) not found"
    done = set(keys)
    done_wells = {k.rsplit("_f", 1)[0] for k in keys}
    need_index = any((f is None and w not in done_wells) or (f is not None and site_key(w, f) not in done)
                     for w, f in wanted_sites)
    if keys and not need_index and not remote:
        try:
            return RecordedPlate(folder, store, keys), str(folder)
        except CpfeaturesError:
            pass  # no file names recorded, or not in this folder: read the index
    try:
        return open_plate(folder, config, plate_id=info.get("plate_id")), str(folder)
    except CpfeaturesError as exc:
        if plate is not None:
            raise
        return None, f"{folder}: cannot be read ({exc})"


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
    t0 = time.perf_counter()
    st = open_store(store)
    info = st.info
    config = store_config(st)
    keys = st.completed_sites()
    errors = st.errors()
    columns = rd.object_columns(st, keys)
    image_columns = columns.pop("Image", [])
    if feature is None:
        feature = rd.default_feature(columns)
        table = None if feature is None else rd.feature_table(feature, columns, image_columns)
    else:
        table = rd.feature_table(str(feature), columns, image_columns)
    wanted_sites = parse_sites(sites)
    score_list = score_tables(scores)
    profile_frame = None if profiles is None else read_frame(profiles, "profiles")
    plate_obj, plate_note = _resolve_plate(plate, info, config, st, keys, wanted_sites)

    plate_folder = plate if isinstance(plate, (str, os.PathLike)) else info.get("plate_path")
    annotations, annotation_source = well_annotations(platemap, profile_frame, plate_folder, info.get("plate_id"),
                                                      external_metadata, negcon=negcon, poscon=poscon)
    well_names = {k.rsplit("_f", 1)[0] for k in keys} | set(errors["well"].dropna().astype(str))
    if plate_obj is not None:
        well_names |= set(plate_obj.wells)
    shape = plate_dimensions(sorted(well_names), plate=plate_obj, info=info)

    sample = rd.sample_keys(keys, sample_sites)
    key_feats = rd.key_features(columns)
    in_sample = set(sample)
    always = {table: [feature]} if table not in (None, "Image") else {}
    # An object feature's map reads whole tables: up to `feature_sites` fields per well, spread over the well.
    by_well: dict[str, list[str]] = {}
    for key in keys:
        by_well.setdefault(key.rsplit("_f", 1)[0], []).append(key)
    if feature_sites and always:
        feature_keys = {k for ks in by_well.values()
                        for k in rd.sample_keys(sorted(ks, key=lambda k: int(k.rsplit("_f", 1)[1])), feature_sites)}
    else:
        feature_keys = set(keys)
    overlay_sites = choose_sites(keys, errors, wanted_sites, n_overlays, plate_obj, profile_frame)
    # The wells given a card with thumbnails: flagged wells (from the counts the sites' metadata records, before
    # any table is read) and the overlay wells; their sites' key features are read in full.
    counted = pd.DataFrame({"Metadata_Well": [k.rsplit("_f", 1)[0] for k in keys],
                            "n_Cells": [st.site_attrs(k).get("counts", {}).get("Cells") for k in keys]})
    pre_flags = qc.flag_wells(qc.well_table(counted, errors, None, shape))
    card_wells = list(dict.fromkeys([w for w in pre_flags["well"] if w in by_well][:well_cards]
                                    + [w for w, _ in overlay_sites]))
    card_keys = [k for w in card_wells for k in by_well.get(w, [])]
    in_cards = set(card_keys)

    def wanted(key):
        if key not in in_sample and key not in in_cards:
            return always if key in feature_keys else {}
        merged = {t: list(v) for t, v in key_feats.items()}
        for t, v in always.items():
            merged.setdefault(t, [])
            merged[t] = list(dict.fromkeys(merged[t] + v))
        return merged

    illum = st.read_illum()
    drawn_keys = {site_key(w, f) for w, f in overlay_sites}
    # Overlays (image reads, segmentation) are drawn while the tables are read: the reading mostly waits
    # on zarr's I/O thread, so the two overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        overlays = pool.submit(_draw_overlays, plate_obj, overlay_sites, st, illum, config, thumb_size)
        thumbs = pool.submit(_draw_thumbs, plate_obj, [k for k in card_keys if k not in drawn_keys], st, illum)
        data = rd.read_sites(st, keys, wanted)
        overlays.result()  # errors other than bad input surface here, before any HTML is written
        thumbs.result()
    ctx = {
        "store": st, "info": info, "config": config, "keys": keys, "errors": errors, "data": data,
        "image_columns": image_columns, "feature": feature, "feature_table": table, "shape": shape,
        "plate": plate_obj, "plate_note": plate_note, "illum": illum, "overlay_sites": overlay_sites,
        "overlays": overlays,
        "failed_keys": set(errors["site"].astype(str)), "thumb_size": thumb_size, "sample": sample,
        "key_features": key_feats, "scores": score_list, "profiles": profile_frame,
        "feature_sites": (len(feature_keys | (in_sample if always else set())), len(keys)),
        "annotations": annotations, "annotation_source": annotation_source, "card_wells": card_wells,
    }
    ctx["tips"] = rs.well_tips(ctx)
    ctx["wells"] = qc.well_table(data.image, errors, annotations, shape)
    ctx["flags"] = qc.flag_wells(ctx["wells"])
    ctx["well_thumbs"] = _card_thumbs(card_keys, overlays.result(), thumbs.result())
    ctx["plate_profiles"], ctx["profile_pc"] = _plate_profiles(profile_frame, info.get("plate_id"))
    builders = {"summary": _summary_section, "heatmaps": _heatmaps_section, "quality": rs.quality_section,
                "wells": rs.wells_section, "controls": rs.controls_section, "illumination": _illumination_section,
                "overlays": _overlays_section, "distributions": _distributions_section, "scores": _scores_section}
    body = []
    timings = [("reading and overlays", time.perf_counter() - t0)]
    for sid, heading in SECTIONS:
        t1 = time.perf_counter()
        body.append(f'<section id="{sid}"><h2>{esc(heading)}</h2>{builders[sid](ctx)}</section>')
        timings.append((sid, time.perf_counter() - t1))
    plate_id = info.get("plate_id") or "unknown plate"
    title = title or f"cpfeatures QC report: {plate_id}"
    nav = "".join(f'<a href="#{sid}">{esc(heading)}</a>' for sid, heading in SECTIONS)
    seconds = time.perf_counter() - t0
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">'
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
           f"<header><h1>{esc(title)}</h1><nav>{nav}</nav></header><main>{''.join(body)}</main>"
           f"<footer>generated {esc(stamp)} by cpfeatures {esc(_own_version())} in {seconds:.1f} s "
           f"({esc(', '.join(f'{k} {v:.1f} s' for k, v in timings))})</footer>"
           f"<script>{SCRIPT}</script></body></html>\n")
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out


def _draw_thumbs(plate, keys: list[str], store, illum, size: int = 180) -> dict[str, object]:
    """``{site: thumbnail PNG or the CpfeaturesError that stopped it}``: composites of the per-well cards.

    No segmentation: the store's labels are outlined when the run kept them (--save-labels), else the
    channels alone are drawn (the overlays section shows outlines).
    """
    from .overlay import composite_roles, thumbnail

    out: dict[str, object] = {}
    if plate is None:
        return out
    roles = list(composite_roles(list(plate.roles)).values())
    for key in keys:
        well, f = key.rsplit("_f", 1)
        try:
            images = plate.load_site(well, int(f), roles=roles)
            try:
                labels = store.site_labels(key) or None
            except KeyError:
                labels = None
            _, thumb, _ = thumbnail(images, labels, illum, size=size)
            out[key] = rf.array_png(thumb)
        except CpfeaturesError as exc:
            out[key] = exc
    return out


def _card_thumbs(card_keys: list[str], overlays: list, thumbs: dict) -> dict[str, list]:
    """Well -> [(site, PNG or error)] for the per-well cards: the overlay's thumbnail when there is one."""
    drawn = {key: value[0] if isinstance(value, tuple) else value for key, value in overlays}
    out: dict[str, list] = {}
    for key in card_keys:
        value = drawn.get(key, thumbs.get(key))
        if value is not None:
            out.setdefault(key.rsplit("_f", 1)[0], []).append((key, value))
    return out


def _plate_profiles(profiles: pd.DataFrame | None, plate_id) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The profiles of this plate (all when they carry no plate) and their first principal component per well."""
    if profiles is None or "Metadata_Well" not in profiles:
        return None, None
    from ..profile.annotate import canonical_well

    frame = profiles
    if "Metadata_Plate" in frame and plate_id is not None and str(plate_id) in set(frame["Metadata_Plate"].astype(str)):
        frame = frame[frame["Metadata_Plate"].astype(str) == str(plate_id)]
    features = [c for c in frame.columns if not str(c).startswith("Metadata_")
                and pd.api.types.is_numeric_dtype(frame[c])]
    pc = qc.first_component(frame, features)
    wells = frame["Metadata_Well"].map(lambda w: canonical_well(str(w)))
    return frame.reset_index(drop=True), pc.groupby(wells.to_numpy()).median()


def _own_version() -> str:
    from .. import __version__

    return __version__
