"""The ``cpfeatures`` command line.

Every command turns a :class:`~cpfeatures.errors.CpfeaturesError` into a
one-line message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
import warnings

import click

from .. import __version__
from ._friendly import friendly
from ..errors import CpfeaturesError


_friendly = friendly


def _show_warnings(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpfeatures")
def main():
    """cpfeatures: Cell Painting plates to single-cell features, profiles and scores."""
    warnings.showwarning = _show_warnings


_PLATE = click.option("--plate", "plate_name", default=None,
                      help="The plate to read from a LoadData CSV that lists several (Metadata_Plate).")


@main.command()
@click.argument("plate", type=click.Path(exists=False))
@_PLATE
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings (channel name -> role map).")
@click.option("--quick", is_flag=True, help="Skip reading every TIFF header (faster on big plates).")
@_friendly
def inspect(plate, plate_name, as_json, config, quick):
    """Describe a plate: wells x fields x planes x channels, channel roles, pixel size.

    PLATE is the plate folder, its Images/ folder, its Index.idx.xml / Index.xml,
    or a CellProfiler LoadData CSV (load_data.csv, load_data_with_illum.csv).
    Exits non-zero with a one-line message if the plate cannot be read or files are
    missing or unreadable.
    """
    from ..config import load_config
    from ..io import read_plate

    cfg = load_config(config)
    p = read_plate(plate, config=cfg, strict=False, plate=plate_name)
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


def _finish(result: dict, lines: list[str], as_json: bool, log_file: str | None, errors: list[str] = ()) -> None:
    """End a command: its summary as text lines (or one JSON object) on stdout, problems on stderr,
    the same appended to ``log_file``, and ``result["exit_code"]`` as the exit status."""
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)
    for line in errors:
        click.echo(line, err=True)
    if log_file:
        with open(log_file, "a", encoding="utf-8") as fh:
            for line in (json.dumps(result, default=str),) if as_json else (*lines, *errors):
                fh.write(line + "\n")
    if result.get("exit_code"):
        sys.exit(result["exit_code"])


def _as_interrupt(signum, frame):  # SIGTERM (a batch scheduler stopping the job) ends a run as Ctrl-C does
    raise KeyboardInterrupt


_JSON = click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")


def _crop_options(fn):
    """The crop settings shared by `run --save-crops` and `crops`."""
    options = [
        click.option("--crop-size", type=click.IntRange(min=2), default=128, show_default=True,
                     help="Crop side in pixels."),
        click.option("--crop-mode", type=click.Choice(["centre", "center", "bbox"]), default="centre",
                     show_default=True, help="centre: pixels around the nucleus centre; bbox: the cell's bounding "
                                             "box squared and resized to --crop-size (aspect ratio kept)."),
        click.option("--crop-border", type=click.Choice(["pad", "skip"]), default="pad", show_default=True,
                     help="Cells whose crop leaves the image: zero-padded, or left out."),
        click.option("--crop-masks", is_flag=True, help="Also crop each cell's Nuclei and Cells masks."),
        click.option("--crop-channels", default=None,
                     help="Comma-separated channels to crop, in order (default DNA,ER,RNA,AGP,Mito; add "
                          "Brightfield for example)."),
    ]
    if fn.__name__ == "run":
        options.append(click.option("--crops-output", default=None,
                                    help="With --save-crops: the crops store (default <out>.crops.zarr)."))
    for option in reversed(options):
        fn = option(fn)
    return fn


def _crop_settings(size, mode, border, masks, channels, path):
    from ..crops import FLUORESCENT, CropSettings

    return CropSettings(size=size, mode=mode, border=border, masks=masks,
                        channels=_split(channels) or FLUORESCENT, path=path)


_LOG = click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                    help="Append the progress lines and the final summary to this file.")


@main.command()
@click.argument("plates", nargs=-1, required=True, type=click.Path(exists=False))
@click.option("-o", "--output", "out", required=True,
              help="Output Zarr store: a path or an fsspec URL (s3://...); for several plates, the folder of "
                   "their stores (<plate>.zarr each).")
@_PLATE
@click.option("--illum", default=None,
              help="Precomputed CellProfiler illumination functions: a folder (or URL prefix) of "
                   "*Illum<Channel>.npy files or a LoadData CSV with FileName_Illum<Channel> columns "
                   "(skips the illumination phase).")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings (see `cpfeatures config --default`).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: one per core).")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None, help="Threads per local worker (default 1).")
@click.option("--scheduler", default=None, help="Address of an existing dask.distributed scheduler, e.g. tcp://host:8786.")
@click.option("--scheduler-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for --scheduler to answer.")
@click.option("--wells", default=None, help="Comma-separated wells to run, e.g. D08,D14.")
@click.option("--sites", default=None, help="Comma-separated sites to run, e.g. D08_f5,L09_f5.")
@click.option("--save-labels", is_flag=True, help="Also store the Nuclei/Cells/Cytoplasm label images.")
@click.option("--save-crops", is_flag=True,
              help="Also write single-cell crops of the corrected images to OUT's sibling <out>.crops.zarr "
                   "(see `cpfeatures crops`).")
@_crop_options
@click.option("--verify", "verify_first", is_flag=True,
              help="Check the completed sites' checksums first and write damaged sites again.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto",
              show_default=True, help="A live bar on a terminal, plain lines on stderr otherwise (batch jobs).")
@click.option("--no-progress", is_flag=True, help="Same as --progress none.")
@_LOG
@_JSON
@_friendly
def run(plates, out, plate_name, illum, config, workers, threads_per_worker, scheduler, scheduler_timeout, wells, sites,
        save_labels, save_crops, crop_size, crop_mode, crop_border, crop_masks, crop_channels, crops_output,
        verify_first, progress_mode, no_progress, log_file, as_json):
    """Segment and measure every site of PLATE into the store OUT (resumable).

    PLATE is a Harmony plate folder (or its index file), an ImageXpress or
    Yokogawa CellVoyager folder, or a CellProfiler LoadData CSV; a CSV's
    FileName_Illum<Channel> functions (or --illum) are used as given. Harmony
    folders, CSVs and the images they name may be fsspec URLs (s3://...; read
    anonymously when no AWS credentials are set); OUT may be one too.

    Illumination functions are computed once per channel over the plate, then
    each site is processed by one dask task and written atomically. Running the
    same command again resumes: finished sites are skipped. One writer per store:
    a second run on a store being written is refused.

    \b
    A bad image costs its site only: it is left out of its channel's illumination
    function, the site is recorded in the store's error table (file and reason),
    and the others complete. A site whose worker dies (killed, out of memory) is
    retried on another worker, then recorded. Ctrl-C (or SIGTERM) abandons the
    sites in flight, uncommitted; run again to resume. Exit status:
      0    every site is in the store
      1    some sites failed (see the error table: `cpfeatures export` writes Errors)
      2    bad input or options, refused before any work
      3    the store could not be written (disk full, ...): run again to resume
      130  interrupted: run again to resume
    """
    import signal

    from ..run import batch_plates, run_plate

    signal.signal(signal.SIGTERM, _as_interrupt)
    crops = _crop_settings(crop_size, crop_mode, crop_border, crop_masks, crop_channels, crops_output) \
        if save_crops else None
    if len(plates) > 1 or (plate_name is None and len(batch_plates(plates)) > 1):
        if crops is not None:
            raise click.UsageError("--save-crops runs one plate at a time (or use `cpfeatures crops` per store)")
        return _run_batch(plates, out, config, workers, threads_per_worker, scheduler, scheduler_timeout, wells, sites,
                          save_labels, verify_first, "none" if no_progress else progress_mode, log_file, as_json,
                          illum)
    plate = plates[0]
    summary = run_plate(plate, out, config, workers=workers, threads_per_worker=threads_per_worker,
                        scheduler=scheduler, scheduler_timeout=scheduler_timeout, wells=_split(wells),
                        sites=_split(sites), save_labels=save_labels, verify=verify_first,
                        progress="none" if no_progress else progress_mode, log_file=log_file,
                        plate=plate_name, illum=illum, crops=crops)
    done, skipped, failed = len(summary.done), len(summary.skipped), len(summary.failed)
    rate = done / summary.seconds * 60 if summary.seconds and done else 0.0
    code = 3 if summary.storage_error else 130 if summary.interrupted else 1 if failed else 0
    result = {"command": "run", "plate": summary.plate_id, "store": summary.store, "sites": summary.n_sites,
              "done": done, "already_in_store": skipped, "failed": failed, "cells": summary.n_objects,
              "seconds": round(summary.seconds, 1), "sites_per_minute": round(rate, 1),
              "illumination_seconds": round(summary.illum_seconds, 1),
              "images_left_out_of_illumination": len(summary.illum_excluded), "damaged_rewritten": summary.damaged,
              "failures": summary.failed[["site", "file", "message"]].to_dict("records") if failed else [],
              "error": summary.storage_error, "interrupted": summary.interrupted, "exit_code": code}
    lines = [f"plate {summary.plate_id}: {done} sites done, {skipped} already in the store, {failed} failed; "
             f"{summary.n_objects} cells; {summary.seconds:.1f} s ({rate:.1f} sites/min) -> {summary.store}"]
    if crops is not None:
        result["crops"] = crops.path
        lines.append(f"crops -> {crops.path}")
    errors = []
    if summary.damaged:
        errors.append(f"  {len(summary.damaged)} damaged site(s) written again: {', '.join(summary.damaged)}")
    errors += [f"  failed {row.site}: {row.message}" for row in summary.failed.itertuples()]
    if len(summary.illum_excluded):
        errors.append(f"  {len(summary.illum_excluded)} unreadable image(s) left out of the illumination functions "
                      f"({summary.illum_excluded['site'].nunique()} site(s))")
    if summary.storage_error:
        errors.append(f"error: {summary.storage_error}; {done} site(s) committed by this run, the rest not "
                      "written: fix the cause and run the same command again to resume")
    if summary.interrupted:
        errors.append("interrupted: the sites in flight were abandoned (uncommitted); run the same command again "
                      "to resume")
    _finish(result, lines, as_json, log_file, errors)


def _run_batch(plates, out, config, workers, threads_per_worker, scheduler, scheduler_timeout, wells, sites,
               save_labels, verify_first, progress, log_file, as_json, illum):
    """`cpfeatures run` of several plates: one cluster, one store per plate under OUT."""
    from ..run import run_plates

    def said(item):
        if isinstance(item, tuple):
            click.echo(f"error: {item[1]}", err=True)
        else:
            failed = len(item.failed)
            click.echo(f"plate {item.plate_id}: {len(item.done)} sites done, {len(item.skipped)} already in the "
                       f"store, {failed} failed; {item.n_objects} cells; {item.seconds:.1f} s -> {item.store}")

    batch = run_plates(list(plates), out, config, workers=workers, threads_per_worker=threads_per_worker,
                       scheduler=scheduler, scheduler_timeout=scheduler_timeout, progress=progress,
                       wells=_split(wells), sites=_split(sites), save_labels=save_labels, verify=verify_first,
                       log_file=log_file, illum=illum, on_plate=None if as_json else said)
    runs = batch.runs
    code = 3 if any(r.storage_error for r in runs) else 130 if any(r.interrupted for r in runs) else \
        2 if batch.refused else 1 if any(len(r.failed) for r in runs) else 0
    result = {"command": "run", "plates": [r.plate_id for r in runs], "stores": [r.store for r in runs],
              "refused": [{"source": s, "error": m} for s, m in batch.refused],
              "sites": sum(r.n_sites for r in runs), "done": sum(len(r.done) for r in runs),
              "already_in_store": sum(len(r.skipped) for r in runs), "failed": sum(len(r.failed) for r in runs),
              "cells": sum(r.n_objects for r in runs), "seconds": round(batch.seconds, 1), "exit_code": code}
    lines = [f"{len(runs)} plate(s) -> {out}: {result['done']} sites done, {result['already_in_store']} already in "
             f"the stores, {result['failed']} failed, {len(batch.refused)} plate(s) refused; {result['cells']} cells; "
             f"{batch.seconds:.1f} s"]
    _finish(result, lines, as_json, log_file, [])


@main.command()
@click.argument("store")
@click.argument("plate", type=click.Path(exists=False))
@click.option("-o", "--output", "crops_output", default=None,
              help="The crops store (default: <store>.crops.zarr beside STORE); complete sites are skipped.")
@_crop_options
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local worker processes (default: one per core; 0: in this process).")
@click.option("--scheduler", default=None, help="Address of an existing dask.distributed scheduler.")
@click.option("--wells", default=None, help="Comma-separated wells, e.g. D08,D14.")
@click.option("--sites", default=None, help="Comma-separated sites, e.g. D08_f5.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto",
              show_default=True)
@_JSON
@_friendly
def crops(store, plate, crops_output, crop_size, crop_mode, crop_border, crop_masks, crop_channels, workers,
          scheduler, wells, sites, progress_mode, as_json):
    """Write single-cell crops of a finished run's STORE from its PLATE's images (resumable).

    Each committed site's images are corrected with the store's illumination functions; its
    labels are the store's (--save-labels) or segmented again with the store's settings (and
    refused unless they reproduce the store's cells). Crops go to one Zarr group per site,
    uint16 (corrected intensity x 65535), with an index joining the single-cell tables on
    Metadata_Plate, Metadata_Well, Metadata_Site, Metadata_ObjectNumber. Exit 1 if a site failed.
    """
    from ..crops import crops_from_store

    settings = _crop_settings(crop_size, crop_mode, crop_border, crop_masks, crop_channels, None)
    summary = crops_from_store(store, plate, crops_output, settings=settings, workers=workers, scheduler=scheduler,
                               sites=_split(sites), wells=_split(wells), progress=progress_mode)
    failed = len(summary.failed)
    result = {"command": "crops", "crops": summary.path, "done": len(summary.done),
              "already_in_store": len(summary.skipped), "failed": failed, "crops_written": summary.n_crops,
              "failures": summary.failed, "seconds": round(summary.seconds, 1), "exit_code": 1 if failed else 0}
    lines = [f"{len(summary.done)} sites cropped, {len(summary.skipped)} already done, {failed} failed; "
             f"{summary.n_crops} crops; {summary.seconds:.1f} s -> {summary.path}"]
    _finish(result, lines, as_json, None, [f"  failed {k}: {v}" for k, v in summary.failed.items()])


@main.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@_friendly
def verify(store, as_json):
    """Check every committed site of STORE against the sizes and checksums it recorded.

    Names each damaged site (a missing or corrupt chunk, a wrong size) and exits 1 if
    any is found; `cpfeatures run --verify` writes damaged sites again.
    """
    from ..store import open_store

    st = open_store(store)
    n = len(st.completed_sites())
    report = st.verify()
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


@main.command()
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
@_LOG
@_JSON
@_friendly
def export(store, fmt, out, names, obs_names, log_file, as_json):
    """Write a store's tables as Parquet or CSV, or its single cells as AnnData (pycytominer reads them).

    Written a well (AnnData: a site) at a time: memory does not grow with the plate.
    """
    import os
    import time

    t0 = time.perf_counter()
    if fmt == "anndata":
        from ..store import ANNDATA_SUFFIXES, anndata_kind, export_anndata

        if anndata_kind(out) is None:
            raise click.UsageError(f"--format anndata writes {' or '.join(ANNDATA_SUFFIXES)}; got -o {out}")
        paths = [export_anndata(store, out, names=names, obs_names=obs_names)]
    else:
        from ..store import export as export_tables

        if os.path.isfile(out):
            raise click.UsageError(f"-o {out} is a file; --format {fmt} writes a folder of tables")
        paths = export_tables(store, out, fmt=fmt, names=names)
    result = {"command": "export", "store": store, "format": fmt, "names": names, "files": paths,
              "seconds": round(time.perf_counter() - t0, 1), "exit_code": 0}
    _finish(result, paths, as_json, log_file)


@main.command()
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
@_friendly
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


@main.command()
@click.argument("stores", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True, help="Profiles file (.parquet, .csv or .csv.gz).")
@click.option("--platemap", type=click.Path(), default=None,
              help="Plate map (CSV, or tab-separated .txt/.tsv) joined on the well, with Metadata_Plate when "
                   "plates differ; or a JUMP plate-map folder (barcode_platemap.csv + platemap/).")
@click.option("--external-metadata", type=click.Path(), default=None,
              help="Perturbation annotations joined on --external-join-on (e.g. CPJUMP1 compound metadata); with "
                   "a JUMP folder, the folder of <name>_metadata.tsv files (default: ../../external_metadata).")
@click.option("--external-join-on", default=None, help="Column shared by the plate map and --external-metadata.")
@click.option("--operation", type=click.Choice(["median", "mean", "none"]), default="median", show_default=True,
              help="How cells become well profiles; none: the inputs are well profiles already.")
@click.option("--normalize", "method", type=click.Choice(["mad_robustize", "standardize", "robustize", "none"]),
              default="mad_robustize", show_default=True, help="Per-plate normalization.")
@click.option("--samples", default="all", show_default=True,
              help="Rows the normalization is fitted on: 'all' or a query like \"Metadata_control_type == 'negcon'\".")
@click.option("--feature-select/--no-feature-select", default=True, show_default=True,
              help="CPJUMP1's selection: frequency, correlation (--corr-threshold), NaN and blocklist filters.")
@click.option("--select-level", type=click.Choice(["plate", "batch", "all"]), default="batch", show_default=True,
              help="Feature selection per plate (features all plates kept), per Metadata_Batch (all plates when "
                   "absent; the CPJUMP1 recipe), or over everything.")
@click.option("--features-from", type=click.Path(dir_okay=False), default=None,
              help="Keep the features listed in this file (an earlier run's <output>_features.txt) instead of "
                   "selecting.")
@click.option("--corr-threshold", type=float, default=0.9, show_default=True)
@click.option("--spherize", "spherize_method", type=click.Choice(["ZCA", "ZCA-cor", "PCA", "PCA-cor"]), default=None,
              help="After selection, whiten the profiles, fitted on --samples (e.g. the negative controls).")
@click.option("--spherize-by", default=None,
              help="Fit one whitening per value of this column (a group of plates); default all plates together.")
@click.option("--consensus", "consensus_op", type=click.Choice(["median", "mean", "modz"]), default=None,
              help="Also write one consensus profile per --consensus-by group to <output>_consensus.")
@click.option("--consensus-by", default="Metadata_broad_sample", show_default=True,
              help="Comma-separated columns identifying a perturbation for --consensus.")
@click.option("--keep-stages", is_flag=True, help="Also write the aggregated, annotated and normalized tables.")
@_LOG
@_JSON
@_friendly
def profile(stores, out, platemap, external_metadata, external_join_on, operation, method, samples,
            feature_select, select_level, features_from, corr_threshold, spherize_method, spherize_by, consensus_op,
            consensus_by, keep_stages, log_file, as_json):
    """Turn runs' single cells into well profiles: aggregate, annotate, normalize, select.

    STORES are run stores (or single-cell tables, or a folder of stores), one plate each.
    Each plate is aggregated, annotated and normalized on its own; feature selection then
    runs over the plates together (--select-level), and the kept features are written to
    <output>_features.txt beside the profiles.

    Warns, naming the plate, when the normalization reference is a single well or features
    have no spread in it (their normalized values are then divided by ~0).
    """
    import time
    from pathlib import Path

    from .. import profile as prof

    t0 = time.perf_counter()
    out = Path(prof.check_profiles_path(out))
    kept_list = None
    if features_from:
        try:
            kept_list = [ln.strip() for ln in Path(features_from).read_text().splitlines() if ln.strip()]
        except OSError as exc:
            raise click.UsageError(f"--features-from {features_from}: {exc.strerror or exc}") from None
    if platemap and not Path(platemap).is_dir():
        prof.read_platemap(platemap)  # refused before the cells are read
    if keep_stages and len(stores) == 1:
        _profile_stages(prof, stores[0], out, platemap, external_metadata, external_join_on, operation, method,
                        samples)
    result_profiles = prof.profile_plates(
        list(stores), platemaps=platemap, external_metadata=external_metadata, external_join_on=external_join_on,
        operation=operation, method=method, samples=samples, select_level=select_level,
        corr_threshold=corr_threshold, features_from=kept_list, feature_selection=feature_select)
    table = result_profiles.profiles
    if spherize_method:
        table = prof.spherize(table, method=spherize_method, samples=samples, by=spherize_by)
    prof.write_profiles(table, out)
    stem = out.name.split(".")[0]
    features_file = out.with_name(f"{stem}_features.txt")
    features_file.write_text("\n".join(result_profiles.features) + "\n")
    written = [str(out), str(features_file)]
    if consensus_op:
        signatures = prof.consensus(table, replicate_columns=_split(consensus_by), operation=consensus_op)
        written.append(str(prof.write_profiles(signatures, out.with_name(f"{stem}_consensus{''.join(out.suffixes)}"))))
    kept = len(result_profiles.features)
    result = {"command": "profile", "stores": list(stores), "output": str(out), "files": written,
              "plates": list(map(str, result_profiles.plates["Metadata_Plate"])), "profiles": len(table),
              "features": kept, "seconds": round(time.perf_counter() - t0, 1), "exit_code": 0}
    plates = len(result_profiles.plates)
    _finish(result, [f"{len(table)} profiles of {plates} plate(s), {kept} features -> {out} "
                     f"(kept list: {features_file.name})"], as_json, log_file)


def _profile_stages(prof, store, out, platemap, external_metadata, external_join_on, operation, method, samples):
    """--keep-stages for one store: the aggregated, annotated and normalized tables beside the output."""
    table = prof.load_profiles(store) if operation == "none" else prof.aggregate(store, operation=operation)
    stem = out.name.split(".")[0]
    stages = [] if operation == "none" else [("aggregated", table)]
    if platemap:
        table = prof.annotate(table, platemap, external_metadata=external_metadata, external_join_on=external_join_on)
        stages.append(("annotated", table))
    if method != "none":
        stages.append(("normalized", prof.normalize(table, method=method, samples=samples)))
    for name, frame in stages:
        prof.write_profiles(frame, out.with_name(f"{stem}_{name}{''.join(out.suffixes)}"))


@main.command()
@click.argument("profiles", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--replicates-by", required=True, help="Column(s) identifying a perturbation, comma-separated.")
@click.option("--match-by", default=None, help="Annotation column for Percent Matching (e.g. Metadata_target).")
@click.option("--rename", "renames", multiple=True, metavar="OLD=NEW",
              help="In each table that has column OLD, it becomes NEW (replacing a NEW there), before the tables "
                   "are joined: e.g. Metadata_target_list=Metadata_gene matches compounds' target lists with genes, "
                   "as the CPJUMP1 notebooks rename Metadata_target. Repeatable.")
@click.option("--tag", "tags", multiple=True, metavar="COLUMN=V1,V2,...",
              help="Set COLUMN in each table to its value, one per table in the order given (e.g. "
                   "Metadata_modality=compound,orf for --across Metadata_modality). Repeatable.")
@click.option("--per", default=None, metavar="COLUMNS",
              help="Score each group of these columns on its own (comma-separated, e.g. Metadata_Perturbation,"
                   "Metadata_Cell_type,Metadata_Time), in the notebooks' nested order; with --null cpjump1 one "
                   "random stream continues across the groups, as in the paper's notebooks.")
@click.option("--plate-metadata", default=None, type=click.Path(dir_okay=False),
              help="A table with one row per plate (JUMP's experiment-metadata.tsv): joined on "
                   "Assay_Plate_Barcode = Metadata_Plate, its columns as Metadata_<name> (for --per). Only its "
                   "plates are scored, ordered as it lists them, as the notebooks concatenate them.")
@click.option("--match-sep", default="|", show_default=True,
              help="Several annotations in one --match-by cell (a target list) are split on this; '' for none.")
@click.option("--across", default=None, help="Percent Matching only between groups differing in this column "
                                             "(with --null cpjump1: the modality column).")
@click.option("--null", "null_kind", type=click.Choice(["numpy", "cpjump1"]), default="numpy", show_default=True,
              help="cpjump1: the CPJUMP1 paper's own null (Python random, seed 9000, np.corrcoef medians).")
@click.option("--tail", type=click.Choice(["right", "left", "both"]), default="right", show_default=True,
              help="Percent Matching above the 95th, below the 5th percentile of its null, or either.")
@click.option("--modalities", default=None, help="With --null cpjump1: the two values of --across, first,second.")
@click.option("--n-replicates", type=int, default=4, show_default=True,
              help="With --null cpjump1: profiles per replicating null sample (the paper's 4).")
@click.option("--reference", default=None,
              help="Query selecting control profiles (e.g. \"Metadata_control_type == 'negcon'\"): mAP ranks "
                   "replicates against them; they are not scored for replicating/matching.")
@click.option("--null-size", type=int, default=10000, show_default=True, help="mAP null rankings.")
@click.option("--n-samples", type=int, default=1000, show_default=True, help="Replicating/matching null samples.")
@click.option("--seed", type=int, default=None, help="Null seed (default 0; 9000 with --null cpjump1).")
@click.option("-o", "--output", "out", default="scores", show_default=True, type=click.Path(file_okay=False),
              help="Folder for percent_replicating.csv, map.csv, with --match-by percent_matching.csv (and "
                   "map_matching.csv with --across), with --per summary.csv.")
@_LOG
@_JSON
@_friendly
def score(profiles, replicates_by, match_by, renames, tags, per, plate_metadata, match_sep, across, null_kind, tail,
          modalities, n_replicates, reference, null_size, n_samples, seed, out, log_file, as_json):
    """Percent Replicating, Percent Matching and mAP of profile tables (several: concatenated).

    The same numbers as the Python functions called with the same arguments
    (``reference_query=`` for --reference). Warns when a score rests on a degenerate
    null (NaN samples, too few perturbations). Several tables (plates, modalities) are
    concatenated on the columns they share, so replicates on different plates and
    matches across modalities are scored together; with --per, each group of
    plates is scored on its own.
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from .. import profile as prof
    from ..errors import InputError

    import pandas as pd

    pairs = []
    for item in renames:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--rename {item!r}: expected OLD=NEW")
        pairs.append((old.strip(), new.strip()))
    tagged = []
    for item in tags:
        column, sep, values = item.partition("=")
        values = [v.strip() for v in values.split(",")]
        if not sep or not column.strip() or len(values) != len(profiles) or not all(values):
            raise InputError(f"--tag {item!r}: expected COLUMN= and one value per table ({len(profiles)})")
        tagged.append((column.strip(), values))
    frames = []
    for k, p in enumerate(profiles):
        table = prof.load_profiles(p)
        for old, new in pairs:
            if old in table.columns:
                table = table.drop(columns=[new], errors="ignore").rename(columns={old: new})
        for column, values in tagged:
            table = table.drop(columns=[column], errors="ignore")
            table.insert(0, column, values[k])  # a metadata column, first as metadata are
        frames.append(table)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, join="inner")
    if plate_metadata:
        frame = _join_plate_metadata(frame, plate_metadata)
    by = _split(replicates_by)
    feats = prof.infer_features(frame)
    incomplete = [c for c in feats if not frame[c].notna().all()]
    if incomplete:
        click.echo(f"warning: {len(incomplete)} feature(s) with missing values are left out of the scores", err=True)
        frame = frame.drop(columns=incomplete)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    from ..profile import score_tables

    rows, tables = score_tables(frame, by, per=_split(per), match_by=match_by, across=across,
                                match_sep=match_sep or None, null=null_kind, tail=tail,
                                modalities=_split(modalities), n_replicates=n_replicates, reference=reference,
                                null_size=null_size, n_samples=n_samples, seed=seed)
    written = []
    for name in ("percent_replicating", "percent_matching", "map", "map_matching"):
        if name in tables:
            written.append(str(outdir / f"{name}.csv"))
            tables[name].to_csv(written[-1], index=False)
    if per:
        written.append(str(outdir / "summary.csv"))
        pd.DataFrame(rows, columns=["group", "score", "value", "detail"]).to_csv(written[-1], index=False)
    else:
        rows = [r[1:] for r in rows]
    result = {"command": "score", "profiles": list(profiles), "output": str(outdir), "files": written,
              "scores": [dict(zip((("group",) if per else ()) + ("score", "value", "detail"), r)) for r in rows],
              "exit_code": 0}
    if not as_json:
        table = Table(title=", ".join(map(str, profiles)))
        for name in (("group",) if per else ()) + ("score", "value", "detail"):
            table.add_column(name)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    _finish(result, [f"tables written to {outdir}"], as_json, log_file)


def _join_plate_metadata(frame, path):
    """Per-plate columns (JUMP's experiment-metadata.tsv) joined onto the profiles by their plate."""
    import numpy as np

    from .. import profile as prof
    from ..errors import InputError

    plates = prof.load_profiles(path, "plate metadata")
    plates = plates.rename(columns={c: c if str(c).startswith("Metadata_") else f"Metadata_{c}" for c in plates})
    key = "Metadata_Assay_Plate_Barcode"
    if key not in plates.columns or "Metadata_Plate" not in frame.columns:
        raise InputError("--plate-metadata joins its Assay_Plate_Barcode with the profiles' Metadata_Plate; "
                         f"{'the plate table' if key not in plates.columns else 'the profiles'} lack(s) it", path)
    if plates[key].duplicated().any():
        raise InputError(f"plate {plates.loc[plates[key].duplicated(), key].iloc[0]!r} has several rows", path)
    plates = plates.drop(columns=[c for c in plates.columns if c in frame.columns and c != key])
    plates = plates.rename(columns={key: "Metadata_Plate"}).astype({"Metadata_Plate": str})
    joined = frame.astype({"Metadata_Plate": str}).merge(plates, on="Metadata_Plate", how="left", indicator=True)
    lost = sorted(set(joined.loc[joined["_merge"] == "left_only", "Metadata_Plate"]))
    if lost:  # the table chooses the plates, as the notebooks' filtered experiment table does
        click.echo(f"warning: {len(lost)} plate(s) not in {path} are left out: {', '.join(lost[:5])}", err=True)
        joined = joined[joined["_merge"] == "both"]
        if joined.empty:
            raise InputError("no profile is of a plate in the plate table", path)
    # plates in the plate table's order, each plate's rows in theirs: the notebooks concatenate a group's
    # plates as their experiment table lists them, and the paper's null draws rows by position
    position = {plate: k for k, plate in enumerate(plates["Metadata_Plate"])}
    rank = joined["Metadata_Plate"].map(position).fillna(len(position))
    joined = joined.drop(columns="_merge").iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
    meta = [c for c in joined.columns if str(c).startswith("Metadata_")]
    known = set(meta)
    return joined[meta + [c for c in joined.columns if c not in known]]


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


def _register_report_commands() -> None:
    from .report import overlay, report

    main.add_command(report)
    main.add_command(overlay)


_register_report_commands()
