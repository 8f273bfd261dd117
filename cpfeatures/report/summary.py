"""The report's ``summary`` section: what was run, how it went, how long it took, with which versions.

The run's own record (its store: sites done and failed, time stamps, settings,
versions) is shown apart from the machine writing the report, which may differ.
"""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..io import site_key
from . import data as rd
from .markup import esc, kv_html, note, table_html
from .plates import RecordedPlate

if TYPE_CHECKING:
    from .context import ReportContext

__all__ = ["summary_section", "run_versions", "report_versions", "duration"]


def run_versions(info: dict) -> list[tuple[str, str]]:
    """What the run recorded in its store: its cpfeatures, the store layout, and any other versions it kept."""
    rows = [("cpfeatures", info.get("cpfeatures_version", "not recorded")),
            ("store layout", info.get("layout_version"))]
    recorded = info.get("versions")
    if isinstance(recorded, dict):
        rows += [(str(k), str(v)) for k, v in recorded.items() if k != "cpfeatures"]
    return rows


def report_versions() -> list[tuple[str, str]]:
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


def duration(seconds) -> str | None:
    """``"12.3 s"``, ``"4.5 min"`` or ``"1.25 h"``; None for no (or a non-finite) time."""
    if seconds is None or not np.isfinite(seconds):
        return None
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _timing_rows(ctx: ReportContext, timing: dict) -> list[tuple[str, str | None]]:
    """The run-time rows: wall time from the store's stamps, then the phases (the run's own clock when it kept one).

    A machine's first run compiles the kernels; the time without compilation is what a plate costs.
    """
    phases = rd.run_phases(ctx.store, ctx.info, ctx.data.image)
    rows = [("run time", duration(timing.get("span_seconds")) and
             f"{duration(timing['span_seconds'])} (store created to last site written or failed; includes "
             "compiling the kernels on a machine's first run)")]
    recorded = phases.get("recorded")
    if isinstance(recorded, dict) and isinstance(recorded.get("sites"), (int, float)):
        # the run's own clock (the latest run of the store): compilation apart from the work
        n = recorded.get("sites_done")
        parts = [f"sites {duration(recorded['sites'])} measuring {n if n is not None else '?'} "
                 f"site{'s' if n != 1 else ''}"]
        parts += [f"{label} {duration(recorded[key])}" for key, label in
                  (("compile", "compiling the kernels"), ("illumination", "illumination functions"))
                  if isinstance(recorded.get(key), (int, float))]
        rows.append(("recorded by the run", "; ".join(parts) + " (the store's latest run, its own clock)"))
    if phases.get("sites_seconds") is not None:
        n = phases["n_sites"]
        start = phases["sites_from"]
        rows.append(("run time without compilation",
                     f"{duration(phases['sites_seconds'])} measuring {n} site{'s' if n != 1 else ''} ({start} to "
                     f"last site written)"))
    if phases.get("setup_seconds") is not None:
        rows.append(("compilation and illumination", f"{duration(phases['setup_seconds'])} (store created to "
                     "illumination functions written)"))
    return rows


def summary_section(ctx: ReportContext) -> str:
    """The ``summary`` section: plate, store, sites done / failed / not run, cells, run time, the failed
    sites' table (and tracebacks), the settings (TOML), and the run's and the report's versions."""
    info, image, errors = ctx.info, ctx.data.image, ctx.errors
    n_done, n_failed = len(ctx.keys), len(errors)
    plate = ctx.plate
    timing = rd.site_timing(info, image, errors)
    cells = pd.to_numeric(image["Count_Cells"] if "Count_Cells" in image else image.get("n_Cells",
                          pd.Series(dtype=float)), errors="coerce")
    sites = f"{n_done} done, {n_failed} failed"
    # The plate's sites: from its index when it was read, else from the image file names in its folder.
    plate_sites = None if plate is None else (plate.imaged_sites() if isinstance(plate, RecordedPlate)
                                              else plate.sites)
    if plate_sites:
        n_plate = len(plate_sites)
        not_run = n_plate - len({*ctx.keys, *errors["site"].astype(str)} & {site_key(*s) for s in plate_sites})
        sites += f", {not_run} not run ({n_plate} in the plate)"
    rows = [
        ("plate", info.get("plate_id")),
        ("store", ctx.store.url),
        ("plate folder", ctx.plate_note),
        ("sites", sites),
        ("wells with data", f"{image['Metadata_Well'].nunique() if len(image) else 0}"),
        ("cells", f"{int(np.nansum(cells))} ({np.nanmedian(cells):.0f} per site, median)" if cells.notna().any()
         else "0"),
        ("channels", ", ".join(info.get("roles", [])) or None),
        ("plate layout", "{} rows x {} columns".format(*ctx.shape)),
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
               + kv_html(run_versions(info)) + "</div><div><b>this report</b>" + kv_html(report_versions())
               + "</div></div>")
    return "".join(out)
