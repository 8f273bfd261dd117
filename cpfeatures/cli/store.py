"""``cpfeatures verify``, ``export`` and ``config``: a store checked, its tables written, its settings shown."""

from __future__ import annotations

import json
import sys

import click

from ._common import _JSON, _LOG, _SKIP_DAMAGED, _finish, friendly

__all__ = ["verify", "export", "config"]


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@friendly
def verify(store, as_json):
    """Check every committed site of STORE against the sizes and checksums it recorded.

    Names each damaged site (a missing or corrupt chunk, a wrong size) and exits 1 if
    any is found; `cpfeatures run --verify` writes damaged sites again.
    """
    from ..store import open_store

    st = open_store(store)
    report = st.verify()  # names the sites whose metadata cannot be read, too
    n = len(st.completed_sites(check=False)) + int((report["problem"] == "its metadata is unreadable").sum())
    damaged = report[report["status"] == "damaged"]
    unverified = report[report["status"] == "unverified"]
    if as_json:
        click.echo(json.dumps({"store": st.url, "sites": n, "damaged": damaged.to_dict("records"),
                               "unverified": len(unverified)}, indent=2))
    else:
        for row in damaged.itertuples():
            click.echo(f"damaged {row.site}: {row.problem}")
        if len(unverified):
            click.echo(f"{len(unverified)} site(s) written without checksums: sizes checked only")
        click.echo(f"{st.url}: {n} committed sites checked, {len(damaged)} damaged")
    if len(damaged):
        sys.exit(1)


@click.command()
@click.argument("store")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "anndata"]), default="parquet", show_default=True,
              help="Tables (Parquet, CSV), or one AnnData file of the single cells (-o cells.h5ad or cells.zarr).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Folder for Image, Nuclei, Cells, Cytoplasm and SingleCells tables; with --format anndata, "
                   "the .h5ad file or .zarr folder.")
@click.option("--names", type=click.Choice(["cytotable", "cpfeatures"]), default="cytotable", show_default=True,
              help="Column names: CytoTable's for CellProfiler output (ids as Metadata_, Image_FileName_*), or "
                   "the store's (as exported before).")
@click.option("--obs-names", type=click.Choice(["number", "id"]), default="number", show_default=True,
              help="AnnData row names: 0, 1, ... (pycytominer reads these) or <plate>_<well>_<site>_<object> "
                   "(in obs column Metadata_ObjectID either way).")
@click.option("--platemap", default=None, type=click.Path(dir_okay=False),
              help="A plate map (CSV or tab-separated): its columns are added to every row, joined on the well "
                   "(and the plate, when it names plates); AnnData: obs columns.")
@_SKIP_DAMAGED
@_LOG
@_JSON
@friendly
def export(store, fmt, out, names, obs_names, platemap, skip_damaged, log_file, as_json):
    """Write a store's tables as Parquet or CSV, or its single cells as AnnData (pycytominer reads them).

    Written a well (AnnData: a site) at a time: memory does not grow with the plate.
    """
    import os
    import time

    t0 = time.perf_counter()
    if platemap is not None:  # read and checked before any site is
        from ..profile import platemap_by_well

        platemap = platemap_by_well(platemap)
    if fmt == "anndata":
        from ..store import ANNDATA_SUFFIXES, anndata_kind, export_anndata

        if anndata_kind(out) is None:
            raise click.UsageError(f"--format anndata writes {' or '.join(ANNDATA_SUFFIXES)}; got -o {out}")
        paths = [export_anndata(store, out, names=names, obs_names=obs_names, skip_damaged=skip_damaged,
                                platemap=platemap)]
    else:
        from ..store import export as export_tables

        if os.path.isfile(out):
            raise click.UsageError(f"-o {out} is a file; --format {fmt} writes a folder of tables")
        paths = export_tables(store, out, fmt=fmt, names=names, skip_damaged=skip_damaged, platemap=platemap)
    result = {"command": "export", "store": store, "format": fmt, "names": names, "files": paths,
              "seconds": round(time.perf_counter() - t0, 1), "exit_code": 0}
    _finish(result, paths, as_json, log_file)


@click.command()
@click.option("--default", "show_default", is_flag=True, help="Print the default settings (CPJUMP1 pipelines).")
@click.option("--show", "store", default=None, help="Print the settings a store was written with.")
@click.option("--from-cppipe", "cppipe", default=None, type=click.Path(dir_okay=False),
              help="Translate this CellProfiler analysis pipeline (.cppipe) into settings.")
@click.option("--illum", "illum_cppipe", default=None, type=click.Path(dir_okay=False),
              help="With --from-cppipe: its illumination pipeline ([illum] settings).")
@click.option("--allow-unsupported", is_flag=True,
              help="With --from-cppipe: write the settings even if modules or settings that change the numbers "
                   "are not implemented (the TOML lists what was dropped).")
@click.option("-o", "--output", "out", default=None, type=click.Path(dir_okay=False),
              help="Write the TOML here instead of standard output.")
@friendly
def config(show_default, store, cppipe, illum_cppipe, allow_unsupported, out):
    """Print settings as TOML: the defaults, those recorded in a store, or a CellProfiler pipeline's.

    \b
    With --from-cppipe, every enabled module of the pipeline is translated, listed as
    not needed (it only loads, saves, displays or exports) or refused: a module or
    setting that changes the numbers and that cpfeatures does not implement is
    printed on stderr (module number, name, setting, value) and the command exits 2
    without writing settings, unless --allow-unsupported is given. Disabled modules
    are skipped. The summary goes to stderr, the TOML to stdout (or -o).
    """
    from ..config import DEFAULT_CONFIG_TOML
    from ..store import open_store

    if illum_cppipe and not cppipe:
        raise click.UsageError("--illum needs --from-cppipe")
    if cppipe:
        from ..cppipe import import_cppipe

        result = import_cppipe(cppipe, illum_cppipe)
        counts = (f"{len(result.translated)} translated, {len(result.not_needed)} not needed, "
                  f"{len(result.disabled)} disabled, {len(result.unsupported)} unsupported")
        for finding in result.unsupported:
            click.echo(f"{'dropped' if allow_unsupported else 'unsupported'}: {cppipe}: {finding.line()}", err=True)
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        if result.unsupported and not allow_unsupported:
            click.echo(f"error: {cppipe}: {len(result.unsupported)} module(s) or setting(s) would change the "
                       f"numbers and are not implemented ({counts}); nothing written. --allow-unsupported writes "
                       "the settings without them", err=True)
            raise SystemExit(2)
        text = result.to_toml()
        click.echo(f"{cppipe}: {counts}", err=True)
    elif store:
        text = open_store(store).info.get("config", "")
    else:
        text = DEFAULT_CONFIG_TOML
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    else:
        click.echo(text)
