"""``cpfeatures inspect``: what a plate holds, from :meth:`cpfeatures.io.Plate.describe`."""

from __future__ import annotations

import json
import sys

import click

from ..errors import CpfeaturesError
from ._common import _PLATE, friendly

__all__ = ["inspect"]


@click.command()
@click.argument("plate", type=click.Path(exists=False))
@_PLATE
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings (channel name -> role map).")
@click.option("--quick", is_flag=True, help="Skip reading every TIFF header (faster on big plates).")
@click.option("--deep", is_flag=True, help="Decode every image's pixels too (finds truncated or corrupt pixel data "
                                           "that a header check passes; reads the whole plate).")
@friendly
def inspect(plate, plate_name, as_json, config, quick, deep):
    """Describe a plate: wells x fields x planes x channels, channel roles, pixel size.

    PLATE is the plate folder, its Images/ folder, its Index.idx.xml / Index.xml,
    or a CellProfiler LoadData CSV (load_data.csv, load_data_with_illum.csv).
    Exits non-zero with a one-line message if the plate cannot be read or files are
    missing or unreadable.
    """
    from ..config import load_config
    from ..io import read_plate

    p = read_plate(plate, config=load_config(config), strict=False, plate=plate_name)
    problem = None
    if not quick or deep:
        try:
            p.verify(deep=deep)
        except CpfeaturesError as exc:
            problem = str(exc)
    summary = p.describe()
    summary["checked"] = ("pixels" if problem is None else "pixels-unreadable") if deep else \
        "none" if quick else "headers"
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
    console.print({"pixels": "  every image decoded: pixels readable",
                   "pixels-unreadable": "  images decoded up to an unreadable one (below)",
                   "headers": "  image headers read; pixels not read (--deep decodes every image)",
                   "none": "  files not read (--quick); --deep decodes every image"}[s["checked"]])
