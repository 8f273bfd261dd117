"""``cpfeatures run`` (plates -> a store per plate) and ``cpfeatures crops`` (a store -> single-cell crops)."""

from __future__ import annotations

import click

from ..errors import CpfeaturesError
from ._common import (_JSON, _LOG, _PLATE, _VERBOSE, _crop_options, _crop_settings, _finish, _split, friendly,
                      quiet_cluster)

__all__ = ["run", "crops"]


def _TLS(fn):
    """--tls-ca-file, --tls-cert, --tls-key: a tls:// --scheduler's certificates (else dask's configuration)."""
    for option in reversed((
            click.option("--tls-ca-file", default=None, metavar="PEM",
                         help="For a tls:// --scheduler: the CA certificate that signed the scheduler's certificate "
                              "(default: dask's distributed.comm.tls.ca-file configuration)."),
            click.option("--tls-cert", default=None, metavar="PEM",
                         help="This client's certificate, signed by the scheduler's CA (default: "
                              "distributed.comm.tls.client.cert)."),
            click.option("--tls-key", default=None, metavar="PEM",
                         help="The client certificate's private key, unless in the --tls-cert file (default: "
                              "distributed.comm.tls.client.key)."))):
        fn = option(fn)
    return fn


def _as_interrupt(signum, frame):  # SIGTERM (a batch scheduler stopping the job) ends a run as Ctrl-C does
    raise KeyboardInterrupt


@click.command()
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
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
              help="Threads per local worker (default 1).")
@click.option("--scheduler", default=None,
              help="Address of an existing dask.distributed scheduler, e.g. tls://host:8786 (tcp://host:8786 is "
                   "not encrypted: a warning unless on this machine).")
@click.option("--scheduler-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for --scheduler to answer.")
@_TLS
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
@click.option("--unsafe-lock", is_flag=True,
              help="Write a store on storage that cannot create its lock file exclusively (refused otherwise): "
                   "only when no other run writes it.")
@_VERBOSE
@_LOG
@_JSON
@friendly
def run(plates, out, plate_name, illum, config, workers, threads_per_worker, scheduler, scheduler_timeout, tls_ca_file,
        tls_cert, tls_key, wells, sites, save_labels, save_crops, crop_size, crop_mode, crop_border, crop_masks,
        crop_channels, crops_output, verify_first, progress_mode, no_progress, unsafe_lock, verbose, log_file,
        as_json):
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
      3    the store could not be written (disk full, ...) or the local cluster lost
           every worker: run again to resume
      130  interrupted: run again to resume
    """
    import signal

    from ..run import batch_plates, run_plate

    signal.signal(signal.SIGTERM, _as_interrupt)
    quiet_cluster(verbose)
    tls = {"tls_ca_file": tls_ca_file, "tls_cert": tls_cert, "tls_key": tls_key, "unsafe_lock": unsafe_lock}
    crops = _crop_settings(crop_size, crop_mode, crop_border, crop_masks, crop_channels, crops_output) \
        if save_crops else None
    if len(plates) > 1 or (plate_name is None and len(batch_plates(plates)) > 1):
        if crops is not None:
            raise click.UsageError("--save-crops runs one plate at a time (or use `cpfeatures crops` per store)")
        return _run_batch(plates, out, config, workers, threads_per_worker, scheduler, scheduler_timeout, wells, sites,
                          save_labels, verify_first, "none" if no_progress else progress_mode, log_file, as_json,
                          illum, tls)
    plate = plates[0]
    summary = run_plate(plate, out, config, workers=workers, threads_per_worker=threads_per_worker,
                        scheduler=scheduler, scheduler_timeout=scheduler_timeout, **tls, wells=_split(wells),
                        sites=_split(sites), save_labels=save_labels, verify=verify_first,
                        progress="none" if no_progress else progress_mode, log_file=log_file,
                        plate=plate_name, illum=illum, crops=crops)
    done, skipped, failed = len(summary.done), len(summary.skipped), len(summary.failed)
    rate = done / summary.seconds * 60 if summary.seconds and done else 0.0
    code = 3 if summary.storage_error or summary.stopped else 130 if summary.interrupted else 1 if failed else 0
    result = {"command": "run", "plate": summary.plate_id, "store": summary.store, "sites": summary.n_sites,
              "done": done, "already_in_store": skipped, "failed": failed, "cells": summary.n_objects,
              "seconds": round(summary.seconds, 1), "sites_per_minute": round(rate, 1),
              "illumination_seconds": round(summary.illum_seconds, 1),
              "images_left_out_of_illumination": len(summary.illum_excluded), "damaged_rewritten": summary.damaged,
              "failures": summary.failed[["site", "file", "message"]].to_dict("records") if failed else [],
              "error": summary.storage_error or summary.stopped, "interrupted": summary.interrupted,
              "store_sites": summary.store_sites, "store_cells": summary.store_cells, "exit_code": code}
    lines = [f"plate {summary.plate_id}: {done} sites done, {skipped} already in the store, {failed} failed; "
             f"{summary.n_objects} cells; {summary.seconds:.1f} s ({rate:.1f} sites/min) -> {summary.store}"]
    if skipped:  # a resume: what the store holds, not only what this run added
        lines.append(f"store: {summary.store_sites} sites, {summary.store_cells} cells")
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
    if summary.stopped:
        errors.append(f"error: {summary.stopped}")
    if summary.interrupted:
        errors.append("interrupted: the sites in flight were abandoned (uncommitted); run the same command again "
                      "to resume")
    _finish(result, lines, as_json, log_file, errors)


def _run_batch(plates, out, config, workers, threads_per_worker, scheduler, scheduler_timeout, wells, sites,
               save_labels, verify_first, progress, log_file, as_json, illum, tls):
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
                       scheduler=scheduler, scheduler_timeout=scheduler_timeout, **tls, progress=progress,
                       wells=_split(wells), sites=_split(sites), save_labels=save_labels, verify=verify_first,
                       log_file=log_file, illum=illum, on_plate=None if as_json else said)
    runs = batch.runs
    code = 3 if any(r.storage_error or r.stopped for r in runs) else 130 if any(r.interrupted for r in runs) else \
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


@click.command()
@click.argument("store")
@click.argument("plate", type=click.Path(exists=False))
@click.option("-o", "--output", "crops_output", default=None,
              help="The crops store (default: <store>.crops.zarr beside STORE); complete sites are skipped.")
@_crop_options
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local worker processes (default: one per core; 0: in this process).")
@click.option("--scheduler", default=None,
              help="Address of an existing dask.distributed scheduler, e.g. tls://host:8786.")
@_TLS
@click.option("--wells", default=None, help="Comma-separated wells, e.g. D08,D14.")
@click.option("--sites", default=None, help="Comma-separated sites, e.g. D08_f5.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto",
              show_default=True)
@_VERBOSE
@_JSON
@friendly
def crops(store, plate, crops_output, crop_size, crop_mode, crop_border, crop_masks, crop_channels, workers,
          scheduler, tls_ca_file, tls_cert, tls_key, wells, sites, progress_mode, verbose, as_json):
    """Write single-cell crops of a finished run's STORE from its PLATE's images (resumable).

    Each committed site's images are corrected with the store's illumination functions; its
    labels are the store's (--save-labels) or segmented again with the store's settings (and
    refused unless they reproduce the store's cells). Crops go to one Zarr group per site,
    uint16 (corrected intensity x 65535), with an index joining the single-cell tables on
    Metadata_Plate, Metadata_Well, Metadata_Site, Metadata_ObjectNumber. Exit 1 if a site failed.
    """
    from ..crops import crops_from_store

    quiet_cluster(verbose)
    settings = _crop_settings(crop_size, crop_mode, crop_border, crop_masks, crop_channels, None)
    if not scheduler and any((tls_ca_file, tls_cert, tls_key)):
        raise CpfeaturesError("--tls-ca-file, --tls-cert and --tls-key are for an existing scheduler reached over "
                              "TLS (--scheduler tls://HOST:PORT)")
    summary = crops_from_store(store, plate, crops_output, settings=settings, workers=workers, scheduler=scheduler,
                               sites=_split(sites), wells=_split(wells), progress=progress_mode,
                               tls_ca_file=tls_ca_file, tls_cert=tls_cert, tls_key=tls_key)
    failed = len(summary.failed)
    result = {"command": "crops", "crops": summary.path, "done": len(summary.done),
              "already_in_store": len(summary.skipped), "failed": failed, "crops_written": summary.n_crops,
              "failures": summary.failed, "seconds": round(summary.seconds, 1), "exit_code": 1 if failed else 0}
    lines = [f"{len(summary.done)} sites cropped, {len(summary.skipped)} already done, {failed} failed; "
             f"{summary.n_crops} crops; {summary.seconds:.1f} s -> {summary.path}"]
    _finish(result, lines, as_json, None, [f"  failed {k}: {v}" for k, v in summary.failed.items()])
