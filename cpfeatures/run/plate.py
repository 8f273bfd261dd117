"""The plate run: illumination reduction, then one dask task per site writing to the store (orchestration).

Nothing outside :mod:`cpfeatures.run` imports dask. Each task is a plain function call
(:func:`run_site`) that loads one site, processes it with
:func:`cpfeatures.pipeline.process_site`, and writes it to the store itself,
so results never travel through the scheduler and memory per task is bounded
by one site whatever the plate size.

What a fault costs:

- an unreadable, truncated, empty or wrong-size image: its site (it is left out
  of its channel's illumination function and the site is recorded as failed);
- a worker process killed or out of memory: nothing while a retry on another
  worker succeeds (``[run] worker_retries``), then that site;
- a storage fault (disk full, write error): no site is lost; the run stops
  submitting, the sites in flight stay uncommitted, and a rerun resumes;
- Ctrl-C: the sites in flight (uncommitted, written again by the next run).

A second run on a store being written is refused (:class:`cpfeatures.store.StoreLock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..config import dump_config, load_config
from ..errors import CpfeaturesError, InputError
from ..settings import defaults, table
from ..io import Site, parse_site_key, read_illum_files, read_image, read_plate, site_key
from ..store import Store, StoreLock, StoreWriteError, checksum
from ._cluster import (TaskWindow, WorkersLostError, cluster_client, compile_in_workers, scheduler_security,
                       worker_death_message)
from .illumination import compute_illumination, record_excluded
from .progress import progress as open_progress
from .site import SiteTask, run_site

__all__ = ["run_plate", "RunOptions", "RunSummary", "run_versions"]

#: ``[run]`` defaults, for settings given as a partial dict.
RUN_DEFAULTS = defaults(table("run"))


@dataclass
class RunSummary:
    """What a plate run did.

    Attributes
    ----------
    plate_id, store : str
    n_sites : int
        Sites asked for.
    done, skipped : list of str
        Sites written by this run; sites already complete in the store.
    failed : DataFrame
        The store's error records of the sites asked for.
    seconds, illum_seconds : float
        Wall time of the run and of its illumination phase.
    n_objects : int
        Cells written by this run.
    illum_excluded : DataFrame
        Images left out of the illumination functions (``site, role, file, message``).
    storage_error : str or None
        Set when the store could not be written: the run stopped early, a rerun resumes.
    interrupted : bool
        The run was stopped by Ctrl-C (or SIGTERM); a rerun resumes.
    damaged : list of str
        Damaged sites found by ``verify=True`` and written again.
    store_sites, store_cells : int
        What the store holds after the run (with the sites of earlier runs): committed sites and cells.
    stopped : str or None
        Set when the run stopped early for another cause than the store (every worker of a local
        cluster lost): the sites in flight are recorded as failed, a rerun resumes.
    illum_redone : list of str
        Images that were left out of the stored illumination functions and can be read now: the
        functions and every site were computed again.
    """

    plate_id: str
    store: str
    n_sites: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    illum_seconds: float = 0.0
    n_objects: int = 0
    illum_excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    storage_error: str | None = None
    interrupted: bool = False
    damaged: list[str] = field(default_factory=list)
    illum_redone: list[str] = field(default_factory=list)
    stopped: str | None = None
    store_sites: int = 0
    store_cells: int = 0

    @property
    def ok(self) -> bool:
        """Every site asked for is in the store."""
        return len(self.failed) == 0 and self.complete

    @property
    def complete(self) -> bool:
        """The run went through every site (none left for a rerun because of a fault or an interrupt)."""
        return self.storage_error is None and self.stopped is None and not self.interrupted


@dataclass
class RunOptions:
    """How a plate is run: everything of :func:`run_plate` but the plate, the store and the settings.

    Attributes
    ----------
    workers, threads_per_worker : int, optional
        Local cluster size (default: one single-threaded worker per core).
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler (``tls://host:8786``, or
        ``tcp://host:8786``: unencrypted, warned about unless on this machine's loopback).
    scheduler_timeout : float
        Seconds to wait for ``scheduler`` to answer.
    unsafe_lock : bool
        Write a store on storage that cannot create its lock file exclusively (no conditional
        write): allowed only when the caller knows that no other run writes it.
    tls_ca_file, tls_cert, tls_key : str, optional
        For a ``tls://`` scheduler: the CA certificate that signed the scheduler's certificate,
        this client's certificate and its key (PEM files). Not given: dask's configuration
        (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``). Checked when the
        options are made: a missing file, or a ``tls://`` scheduler with neither, is refused.
    sites, wells : iterable of str, optional
        Only these sites (``"D08_f5"``) or wells (``"D08"``).
    save_labels : bool
        Also store the label images.
    progress : bool or {"auto", "bar", "lines", "none"}
        Show progress (sites done / total, rate, ETA, failures): a live bar on a terminal,
        plain lines on stderr every 30 s otherwise (a batch job's log); True = "auto".
    verify : bool
        Check the completed sites' checksums first and write damaged ones again.
    on_site_done : callable, optional
        Called on the client with each site's summary dict as it finishes.
    process : callable, optional
        Replaces :func:`cpfeatures.pipeline.process_site` (same signature) to run a
        custom per-site analysis through the same store, resume and error handling.
    window : int, optional
        Sites in flight at once (default: three per worker thread).
    log_file : str, optional
        Also append the progress lines to this file.
    plate : str, optional
        The plate to run from a LoadData CSV that lists several (one store per plate).
    illum : path-like or dict, optional
        Precomputed illumination functions (CellProfiler ``.npy``): a folder of
        ``*Illum<Channel>.npy``, a LoadData CSV with ``FileName_Illum<Channel>``
        columns, or a dict role -> file. The run then skips its own
        illumination phase. A LoadData CSV's own ``FileName_Illum`` columns
        are used without this.
    hooks : tuple of SiteHook
        Per-site products written beside the features before each site commits, e.g.
        :class:`cpfeatures.crops.CropSettings` (single-cell crops to ``crops.path``, default
        ``<out>.crops.zarr`` beside the store). The run imports none of them.
    storage_options : dict, optional
        fsspec options of a remote store (``s3://``).
    """

    workers: int | None = None
    threads_per_worker: int | None = None
    scheduler: str | None = None
    scheduler_timeout: float = 30.0
    tls_ca_file: "str | os.PathLike | None" = None
    tls_cert: "str | os.PathLike | None" = None
    tls_key: "str | os.PathLike | None" = None
    unsafe_lock: bool = False
    sites: Iterable[str] | None = None
    wells: Iterable[str] | None = None
    save_labels: bool = False
    progress: "bool | str" = True
    storage_options: dict | None = None
    verify: bool = False
    on_site_done: Callable[[dict], None] | None = None
    process: Callable | None = None
    window: int | None = None
    log_file: str | None = None
    plate: str | None = None
    illum: "str | os.PathLike | dict | None" = None
    hooks: tuple = ()

    def __post_init__(self):  # TLS files and settings are refused before any work, not when the cluster is reached
        scheduler_security(self.scheduler, self.tls_ca_file, self.tls_cert, self.tls_key)


def run_plate(plate_path, out, config: dict | str | None = None, options: RunOptions | None = None, *,
              crops=None, **kwargs) -> RunSummary:
    """Run a whole plate (or a subset) into a Zarr store; resumable.

    Parameters
    ----------
    plate_path : path-like
        Plate folder, its ``Images/`` folder, or its index file.
    out : str or path-like
        Store path or fsspec URL. An existing store of the same plate and
        settings is resumed: completed sites are skipped.
    config : dict or path, optional
        Settings (see ``cpfeatures config --default``); defaults = CPJUMP1.
    options : RunOptions, optional
        How to run it (cluster, subset, labels, progress, ...).
    crops : CropSettings, optional
        Also write each site's single-cell crops (:mod:`cpfeatures.crops`): one more hook.
    **kwargs
        Any :class:`RunOptions` attribute, instead of (or on top of) ``options``:
        ``run_plate(plate, out, workers=2, wells=["D08"])``.

    Returns
    -------
    RunSummary

    Raises
    ------
    CpfeaturesError
        Bad input found before any work (plate, config, unknown wells or sites, a store
        of another plate or settings, a store another run is writing).
    """
    t_start = time.perf_counter()
    opts = dataclasses.replace(options or RunOptions(), **kwargs)
    if crops is not None:
        opts.hooks = (*opts.hooks, crops)
    cfg = config if isinstance(config, dict) else load_config(config)
    plate = read_plate(plate_path, config=cfg, strict=False, plate=opts.plate)
    roles = [r for r in cfg.get("run", {}).get("channels", plate.roles) if r in plate.roles] or plate.roles
    _check_roles(plate, roles, cfg)
    wanted = _select_sites(plate, opts.wells, opts.sites)
    given_illum = None  # precomputed functions are read and checked before any work
    if cfg.get("illum", {}).get("enabled", True) and (opts.illum is not None or plate.illum_files):
        given_illum = read_illum_files(opts.illum if opts.illum is not None else plate.illum_files, roles,
                                       plate.image_shape, plate=plate.plate_id)
    store = Store(out, mode="a", storage_options=opts.storage_options)
    lock = StoreLock(store.url, opts.storage_options, unsafe=opts.unsafe_lock)
    with lock, open_progress(opts.progress, opts.log_file) as bar:
        summary = RunSummary(plate.plate_id, store.url, len(wanted))
        try:
            _run(plate, plate_path, store, cfg, roles, wanted, summary, bar, lock, opts, given_illum)
        except StoreWriteError as exc:
            summary.storage_error = str(exc)
        except KeyboardInterrupt:
            summary.interrupted = True
    try:
        errors = store.errors()
    except Exception:  # an unreadable error table must not hide the summary
        errors = pd.DataFrame(columns=["site", "message"])
    wanted_keys = {site_key(*s) for s in wanted}
    summary.failed = errors[errors["site"].isin(wanted_keys)].reset_index(drop=True)
    with contextlib.suppress(Exception):  # the totals are a courtesy: never hide the summary
        committed = store.completed_sites(check=False)
        summary.store_sites = len(committed)
        summary.store_cells = sum(int(store.site_attrs(k).get("counts", {}).get("Cells", 0)) for k in committed)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _run(plate, plate_path, store: Store, cfg: dict, roles: list[str], wanted: list[Site], summary: RunSummary,
         bar, lock, opts: RunOptions, given_illum: dict | None) -> None:
    plate_path = os.fspath(plate_path)
    store.initialize(plate.plate_id, dump_config(cfg),
                     plate_path=plate_path if "://" in plate_path else os.path.abspath(plate_path),
                     roles=roles, versions=run_versions())
    if opts.verify:
        task = bar.add("verifying", len(store.completed_sites()))
        report = store.verify(progress=lambda n: bar.advance(task, n))
        damaged = report[report["status"] == "damaged"]
        for key in damaged["site"]:
            if key == "illum":
                store.drop_illum()  # recomputed below
            else:
                store.uncommit(key)
        summary.damaged = [k for k in damaged["site"] if k != "illum"]
    if given_illum is None and cfg.get("illum", {}).get("enabled", True):
        summary.illum_redone = _stale_illum(store, plate)
    done_before = set(store.completed_sites())
    hooks = tuple(hook.prepare(store, plate.plate_id, roles, done_before, [site_key(*s) for s in wanted])
                  for hook in opts.hooks)
    summary.skipped = [site_key(*s) for s in wanted if site_key(*s) in done_before]
    todo = [s for s in wanted if site_key(*s) not in done_before]
    illum = store.read_illum()
    use_illum = cfg.get("illum", {}).get("enabled", True)
    if given_illum is not None:
        _use_given_illum(store, illum, given_illum)
        illum = given_illum
    need_illum = use_illum and (illum is None or set(illum) != set(roles))
    retries = int(cfg.get("run", {}).get("worker_retries", RUN_DEFAULTS["worker_retries"]))
    with cluster_client(opts.scheduler, opts.workers, opts.threads_per_worker, worker_retries=retries,
                        timeout=opts.scheduler_timeout, tls_ca_file=opts.tls_ca_file, tls_cert=opts.tls_cert,
                        tls_key=opts.tls_key) as client:
        phases: dict[str, float] = {}
        if opts.scheduler is None and (todo or need_illum):
            t0 = time.perf_counter()
            compile_in_workers(client, cfg, roles, bar)
            phases["compile"] = time.perf_counter() - t0
        if need_illum:
            t0 = time.perf_counter()
            # The illumination function is a plate-level quantity: always over all sites of the plate.
            all_paths, _ = plate.site_paths(plate.sites, roles)
            task = bar.add("illumination", len(plate.sites))
            result = compute_illumination(plate, plate.sites, roles, cfg, client=client, paths=all_paths,
                                          progress=lambda n: bar.advance(task, n), window=opts.window)
            record_excluded(store, result)
            store.write_illum(result.functions, excluded=result.excluded[["role", "file"]].to_dict("records"))
            summary.illum_seconds = time.perf_counter() - t0
            summary.illum_excluded = result.excluded
            phases["illumination"] = summary.illum_seconds
        illum_version = store.illum_version() if use_illum else ""
        t0 = time.perf_counter()
        try:
            _sites_phase(client, plate, store, cfg, roles, todo, summary, bar, lock, opts, hooks, illum_version)
        finally:  # also for an interrupted run: the report shows what this run spent, compilation apart
            phases["sites"] = time.perf_counter() - t0
            phases["sites_done"] = len(summary.done)
            if summary.done or "illumination" in phases:  # a resume with nothing to do keeps the clock of
                with contextlib.suppress(StoreWriteError):  # the run that measured (the report shows it)
                    store.record_info(phase_seconds=phases)
    if not summary.storage_error:  # consolidated metadata for other tools (xarray); cpfeatures never reads it
        store.consolidate()


def run_versions() -> dict[str, str]:
    """The versions that decide a run's numbers, recorded in its store (``info["versions"]``).

    cpfeatures itself is recorded as ``cpfeatures_version``; these are the libraries
    under it and the Python that ran the client.
    """
    import platform
    from importlib import metadata

    out = {}
    for dist in ("numpy", "scipy", "scikit-image", "numba", "pandas", "zarr", "dask", "distributed", "tifffile"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    out["python"] = platform.python_version()
    return out


def _stale_illum(store: Store, plate) -> list[str]:
    """Images left out of the stored illumination functions that can be read now (a file fixed
    since): the functions and every site corrected with them are dropped, to be computed again.

    A store never mixes sites corrected with functions that lack an image and sites corrected
    with functions that have it; returns the files found readable again.
    """
    excluded = store.illum_excluded()
    if not excluded or store.read_illum() is None:
        return []
    fixed = []
    for item in excluded:
        path = item.get("file")
        if not path:
            continue
        try:
            read_image(path, plate.image_shape, plate.dtype)
        except CpfeaturesError:
            continue  # still unreadable: the functions stay as they are
        fixed.append(path)
    if fixed:
        done = store.completed_sites()
        warnings.warn(f"{len(fixed)} image(s) left out of the illumination functions can be read now "
                      f"({fixed[0]}{', ...' if len(fixed) > 1 else ''}): the functions are computed again, and the "
                      f"{len(done)} site(s) corrected with the old ones are measured again", RuntimeWarning,
                      stacklevel=3)
        store.drop_illum()
        for key in done:
            store.uncommit(key)
    return fixed


def _use_given_illum(store: Store, stored: dict | None, given: dict) -> None:
    """Store precomputed illumination functions, unless the store already has exactly these.

    A store whose sites were corrected with other functions is refused: its rows
    would mix two corrections.
    """
    if stored is not None and set(stored) == set(given) and \
            all(checksum(np.asarray(stored[r], np.float32)) == checksum(given[r]) for r in given):
        return
    if stored is not None and store.completed_sites():
        raise CpfeaturesError("the store's sites were corrected with other illumination functions than those "
                              "given now (--illum or the CSV's FileName_Illum columns): use a new store",
                              store.url)
    store.write_illum(given, source="precomputed")


class _AsRecorded(Exception):
    """An error a worker saw and reported as text, to be recorded as it was seen."""

    def __init__(self, row):
        super().__init__(row["message"])
        self.path = row["file"]
        self.kind = row["error"]


def _sites_phase(client, plate, store: Store, cfg: dict, roles: list[str], todo: list[Site], summary: RunSummary,
                 bar, lock, opts: RunOptions, hooks: tuple, illum_version: str) -> None:
    paths, problems = plate.site_paths(todo, roles)
    task = bar.add("sites", summary.n_sites, completed=len(summary.skipped))
    failures = 0
    for key, exc in problems.items():
        site = parse_site_key(key)
        store.record_error(site.well, site.field, exc)
        failures += 1
        bar.advance(task, 1, failures=failures)
    runnable = [s for s in todo if site_key(*s) in paths]
    metadata = _site_metadata(plate, runnable)
    args = [(SiteTask(store.url, plate.plate_id, s.well, s.field, paths[site_key(*s)], roles, plate.image_shape,
                      str(plate.dtype), cfg, opts.save_labels, opts.process, illum_version,
                      metadata.get(site_key(*s)), hooks),) for s in runnable]
    window = TaskWindow(client, run_site, args, opts.window, f"site-{plate.plate_id}")
    try:
        for i, res in window:
            s = runnable[i]
            if isinstance(res, BaseException):  # the worker died on this site every time it was tried
                record = store.record_error(s.well, s.field, _Died(res), phase="worker")
                res = {"site": record["site"], "ok": False, "n_objects": 0, "error": record["message"]}
            if res.get("storage_error"):
                summary.storage_error = summary.storage_error or res["storage_error"]
                window.stop()  # the store takes no more: finish what is in flight, a rerun resumes
            elif res["ok"]:
                summary.done.append(res["site"])
                summary.n_objects += res["n_objects"]
            else:
                failures += 1
            bar.advance(task, 1, failures=failures)
            if opts.on_site_done:
                opts.on_site_done(res)
            if lock.lost:
                window.stop()
                summary.storage_error = "another run took over this store's lock; this run stopped"
    except WorkersLostError as exc:  # the plate stops here: the sites in flight are recorded, a rerun resumes
        for i in exc.unfinished:
            s = runnable[i]
            store.record_error(s.well, s.field, _Died(exc, str(exc)), phase="worker")
        summary.stopped = str(exc)
    except BaseException:  # Ctrl-C or a fault of the client: abandon what is in flight (uncommitted)
        window.cancel()
        raise


class _Died(Exception):
    """A site whose worker process died every time it was tried."""

    def __init__(self, exc: BaseException, message: str | None = None):
        super().__init__(message or worker_death_message(exc))
        self.path = None


def _site_metadata(plate, sites: list[Site]) -> dict[str, dict[str, str]]:
    """A LoadData CSV's own ``Metadata_*`` columns per site (key -> column -> value); empty otherwise."""
    columns = [c for c in plate.images.columns if c.startswith("Metadata_")]
    if not columns:
        return {}
    first = plate.images.drop_duplicates(["well", "field"])
    wanted = {site_key(*s) for s in sites}
    keys = [site_key(w, f) for w, f in zip(first["well"], first["field"])]
    values = first[columns].to_dict("records")
    return {k: v for k, v in zip(keys, values) if k in wanted}


def _select_sites(plate, wells: Iterable[str] | None, sites: Iterable[str] | None) -> list[Site]:
    """The plate's sites, or the subset asked for; an unknown well or site is an error."""
    wanted = plate.sites
    if wells:
        wells = [w.strip() for w in wells]
        known = set(plate.wells)
        unknown = [w for w in wells if w not in known]
        if unknown:
            raise InputError(f"--wells: {', '.join(unknown)} not on this plate (wells: {_sample(plate.wells)})",
                             plate.root)
        chosen = set(wells)
        wanted = [s for s in wanted if s.well in chosen]
    if sites:
        keys = {site_key(*s): s for s in plate.sites}
        sites = [s.strip() for s in sites]
        unknown = [k for k in sites if k not in keys]
        if unknown:
            raise InputError(f"--sites: {', '.join(unknown)} not on this plate (sites are WELL_fFIELD: "
                             f"{_sample(list(keys))})", plate.root)
        chosen = set(sites)
        wanted = [s for s in wanted if site_key(*s) in chosen]
    return wanted


def _check_roles(plate, roles: list[str], cfg: dict) -> None:
    """Refuse, before any work, a plate whose channels lack the images segmentation needs."""
    seg = cfg.get("segment", {})
    needed = list(dict.fromkeys([seg.get("nuclei_image", "DNA"), seg.get("cells_image", "RNA")]))
    missing = [r for r in needed if r not in roles]
    if not missing:
        return
    have = ", ".join(roles)
    if plate.index_path is None:
        raise InputError(f"segmentation needs channel(s) {', '.join(missing)} but this plate has no index, so its "
                         f"channels are only numbered ({have}): map the numbers to roles with [channel_ids] in a "
                         "--config file (`cpfeatures config --default` lists the CPJUMP1 numbering)", plate.root)
    raise InputError(f"segmentation needs channel(s) {', '.join(missing)}; this plate's channels are {have}: map "
                     "their names to roles with [channels] in a --config file", plate.index_path)


def _sample(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
