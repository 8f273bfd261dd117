"""The ``cpfeatures`` command line.

Every command turns a :class:`~cpfeatures.errors.CpfeaturesError` into a
one-line message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings

import click

from . import __version__
from .errors import CpfeaturesError


def _friendly(func):
    """Run a command; print cpfeatures errors as one line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CpfeaturesError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _show_warnings(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpfeatures")
def main():
    """cpfeatures: Cell Painting plates to single-cell features, profiles and scores."""
    warnings.showwarning = _show_warnings


@main.command()
@click.argument("plate", type=click.Path(exists=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings (channel name -> role map).")
@click.option("--quick", is_flag=True, help="Skip reading every TIFF header (faster on big plates).")
@_friendly
def inspect(plate, as_json, config, quick):
    """Describe a plate: wells x fields x planes x channels, channel roles, pixel size.

    PLATE is the plate folder, its Images/ folder, or its Index.idx.xml / Index.xml.
    Exits non-zero with a one-line message if the plate cannot be read or files are
    missing or unreadable.
    """
    from .config import load_config
    from .io import read_plate

    cfg = load_config(config)
    p = read_plate(plate, config=cfg, strict=False)
    problem = None
    if not quick:
        try:
            p.verify()
        except CpfeaturesError as exc:
            problem = str(exc)
    channels = [
        {
            "id": int(r.channel_id),
            "name": r.channel_name,
            "role": r.role,
            "excitation_nm": _num(getattr(r, "excitation_nm", None)),
            "emission_nm": _num(getattr(r, "emission_nm", None)),
        }
        for r in p.channels.itertuples()
    ]
    summary = {
        "plate_id": p.plate_id,
        "index": str(p.index_path) if p.index_path else None,
        "image_folder": str(p.root),
        "wells": p.wells,
        "fields": p.fields,
        "planes": p.planes,
        "timepoints": p.timepoints,
        "channels": channels,
        "pixel_size_um": p.pixel_size_um,
        "image_shape": list(p.image_shape),
        "dtype": str(p.dtype),
        "n_sites": len(p.sites),
        "n_images": int(len(p.images)),
        "missing_files": p.missing_files,
        "extra_files": p.extra_files,
        "instrument": p.attrs.get("instrument"),
        "plate_type": p.attrs.get("plate_type"),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_inspect(summary)
    if p.missing_files:
        click.echo(f"error: {p.index_path or p.root}: {len(p.missing_files)} image file(s) listed in the index "
                   f"are missing: {', '.join(p.missing_files[:20])}", err=True)
        sys.exit(2)
    if problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(2)


@main.command()
@click.argument("plate", type=click.Path(exists=False))
@click.option("-o", "--output", "out", required=True, help="Output Zarr store: a path or an fsspec URL (s3://...).")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings (see `cpfeatures config --default`).")
@click.option("--workers", type=int, default=None, help="Local worker processes (default: one per core).")
@click.option("--threads-per-worker", type=int, default=None, help="Threads per local worker (default 1).")
@click.option("--scheduler", default=None, help="Address of an existing dask.distributed scheduler, e.g. tcp://host:8786.")
@click.option("--wells", default=None, help="Comma-separated wells to run, e.g. D08,D14.")
@click.option("--sites", default=None, help="Comma-separated sites to run, e.g. D08_f5,L09_f5.")
@click.option("--save-labels", is_flag=True, help="Also store the Nuclei/Cells/Cytoplasm label images.")
@click.option("--no-progress", is_flag=True, help="No live progress bar.")
@_friendly
def run(plate, out, config, workers, threads_per_worker, scheduler, wells, sites, save_labels, no_progress):
    """Segment and measure every site of PLATE into the store OUT (resumable).

    Illumination functions are computed once per channel over the plate, then
    each site is processed by one dask task and written atomically. Running the
    same command again resumes: finished sites are skipped. Failed sites are
    recorded in the store's error table; the exit code is 1 if any failed.
    """
    from .run import run_plate

    summary = run_plate(plate, out, config, workers=workers, threads_per_worker=threads_per_worker,
                        scheduler=scheduler, wells=_split(wells), sites=_split(sites), save_labels=save_labels,
                        progress=not no_progress)
    done, skipped, failed = len(summary.done), len(summary.skipped), len(summary.failed)
    rate = done / summary.seconds * 60 if summary.seconds and done else 0.0
    click.echo(f"plate {summary.plate_id}: {done} sites done, {skipped} already in the store, {failed} failed; "
               f"{summary.n_objects} cells; {summary.seconds:.1f} s ({rate:.1f} sites/min) -> {summary.store}")
    for row in summary.failed.itertuples():
        click.echo(f"  failed {row.site}: {row.message}", err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("store")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for Image, Nuclei, Cells, Cytoplasm and SingleCells tables.")
@_friendly
def export(store, fmt, out):
    """Write a store's tables as Parquet or CSV (pycytominer reads them unchanged)."""
    from .store import export as export_store

    for path in export_store(store, out, fmt=fmt):
        click.echo(path)


@main.command()
@click.option("--default", "show_default", is_flag=True, help="Print the default settings (CPJUMP1 pipelines).")
@click.option("--show", "store", default=None, help="Print the settings a store was written with.")
@_friendly
def config(show_default, store):
    """Print settings as TOML: the defaults, or those recorded in a store."""
    from .config import DEFAULT_CONFIG_TOML
    from .store import open_store

    if store:
        click.echo(open_store(store).info.get("config", ""))
    else:
        click.echo(DEFAULT_CONFIG_TOML)


def _split(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _num(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else (int(value) if value.is_integer() else value)


def _print_inspect(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    px = f"{s['pixel_size_um']:.4f} µm" if s["pixel_size_um"] else "unknown (no index)"
    console.print(f"[bold]Plate {s['plate_id']}[/bold]  ({s['instrument'] or 'unknown instrument'}, "
                  f"{s['plate_type'] or 'plate type unknown'})")
    console.print(f"  {len(s['wells'])} wells x {len(s['fields'])} fields x {len(s['planes'])} planes x "
                  f"{len(s['channels'])} channels = {s['n_images']} images ({s['n_sites']} sites)")
    console.print(f"  image {s['image_shape'][0]} x {s['image_shape'][1]} {s['dtype']}, pixel size {px}")
    console.print(f"  wells: {' '.join(s['wells'])}")
    console.print(f"  fields: {' '.join(map(str, s['fields']))}")
    table = Table(title="channels")
    for col in ("id", "name", "role", "excitation nm", "emission nm"):
        table.add_column(col)
    for ch in s["channels"]:
        table.add_row(str(ch["id"]), str(ch["name"]), ch["role"], str(ch["excitation_nm"] or "-"),
                      str(ch["emission_nm"] or "-"))
    console.print(table)
    console.print(f"  missing files: {len(s['missing_files'])}   extra TIFFs not in index: {len(s['extra_files'])}")


if __name__ == "__main__":  # pragma: no cover
    main()
