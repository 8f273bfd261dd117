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
