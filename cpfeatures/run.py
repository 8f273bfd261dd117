"""The plate run: illumination reduction, then one dask task per site writing to the store.

Nothing outside this module imports dask. Each task is a plain function call
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

A second run on a store being written is refused (:mod:`cpfeatures._lock`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .config import dump_config, load_config
from .errors import CpfeaturesError, ImageError, InputError
from .io import Site, read_plate
from .io.tiff import read_image
from ._progress import progress as _progress
from .store import Store, StoreWriteError, site_key

__all__ = ["run_plate", "run_site", "compute_illumination", "RunSummary", "IlluminationResult"]

#: Share of a channel's images that may be unreadable before the run warns about its illumination function.
ILLUM_LOSS_WARNING = 0.05


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

    @property
    def ok(self) -> bool:
        """Every site asked for is in the store."""
        return len(self.failed) == 0 and self.complete

    @property
    def complete(self) -> bool:
        """The run went through every site (none left for a rerun because of a fault or an interrupt)."""
        return self.storage_error is None and not self.interrupted


# -- per-site work (runs on workers) ------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _store_illum(url: str, version: str) -> dict[str, np.ndarray] | None:
    """Illumination functions read once per worker process (``version`` tells stores at one URL apart)."""
    return Store(url).read_illum()


def run_site(url: str, plate_id: str, well: str, fieldno: int, paths: dict[str, str], roles: list[str],
             shape: tuple[int, int], dtype: str, config: dict, save_labels: bool = False,
             process: Callable | None = None, illum_version: str = "", metadata: dict | None = None,
             crops=None) -> dict:
    """Load, process and write one site; record the error instead of raising.

    ``metadata`` (a LoadData CSV's own ``Metadata_*`` columns) goes into the site's Image row.
    ``crops`` (:class:`cpfeatures.crops.CropSettings`) also writes the site's single-cell crops,
    before the site commits (a committed site always has its crops).

    Returns a small summary: ``{"site", "ok", "n_objects", "seconds", "error"}``,
    plus ``"storage_error"`` when the store could not be written (the site is
    then uncommitted and not recorded as failed: a rerun writes it).
    """
    from ._malloc import keep_freed_memory
    from .pipeline import process_site

    keep_freed_memory()  # dask workers return freed memory at once: ~1 CPU-s/site of page faults
    process = process or process_site
    t0 = time.perf_counter()
    key = site_key(well, fieldno)
    try:
        store = Store(url, mode="a")
    except StoreWriteError as exc:
        return _storage_failure(key, t0, exc)
    try:
        missing = [r for r in roles if r not in paths]
        if missing:
            raise CpfeaturesError(f"site {key} has no image for channel(s) {', '.join(missing)}")
        images = {role: read_image(paths[role], shape, dtype) for role in roles}
        illum = _store_illum(url, illum_version)
        image_metadata = {f"FileName_Orig{r}": os.path.basename(p) for r, p in paths.items()}
        image_metadata.update(metadata or {})
        keep_labels = save_labels or bool(crops is not None and crops.masks)  # masks need the final labels
        result = process(images, illum=illum, config=config, save_labels=keep_labels, image_metadata=image_metadata)
        n = int(len(result.tables.get("Cells", [])))
        if n == 0 and len(result.tables.get("Nuclei", [])) == 0 and \
                config.get("run", {}).get("empty_sites", "fail") != "keep":
            dna = paths.get("DNA", next(iter(paths.values())))
            raise CpfeaturesError("no nucleus segmented in this site (empty well, out of focus or wrong exposure?); "
                                  "set [run] empty_sites = \"keep\" to store empty sites", dna)
        if crops is not None:
            from .crops._hooks import write_run_site

            write_run_site(crops, plate_id, well, fieldno, images, illum, result)
            if not save_labels:
                result.labels = None
        store.write_site(plate_id, well, fieldno, result)
        return {"site": key, "ok": True, "n_objects": n, "seconds": time.perf_counter() - t0, "error": None}
    except StoreWriteError as exc:
        return _storage_failure(key, t0, exc)
    except Exception as exc:  # a bad site must never stop the plate
        try:
            record = store.record_error(well, fieldno, exc)
        except StoreWriteError as exc2:
            return _storage_failure(key, t0, exc2)
        return {"site": key, "ok": False, "n_objects": 0, "seconds": time.perf_counter() - t0,
                "error": f"{record['error']}: {record['message']}"}


def _storage_failure(key: str, t0: float, exc: StoreWriteError) -> dict:
    return {"site": key, "ok": False, "n_objects": 0, "seconds": time.perf_counter() - t0, "error": str(exc),
            "storage_error": str(exc)}


def _downsample_site(paths: dict[str, str], shape, dtype, factor: float) -> dict:
    """One site's contribution to the illumination functions: ``{"small": {role: image}, "bad": [...]}``.

    An image that cannot be read is left out (``bad`` says which and why), never raised.
    """
    from ._malloc import keep_freed_memory
    from .illum import downsample

    keep_freed_memory()
    small, bad = {}, []
    for role, path in paths.items():
        try:
            small[role] = downsample(read_image(path, shape, dtype), factor=factor)
        except Exception as exc:  # unreadable, truncated, empty, wrong size or type
            bad.append({"role": role, "file": getattr(exc, "path", None) or path, "error": type(exc).__name__,
                        "message": " ".join(str(exc).split())})
    return {"small": small, "bad": bad}


# -- the illumination phase (client side) ----------------------------------------------------------

@dataclass
class IlluminationResult:
    """The plate's illumination functions and the images left out of them.

    Attributes
    ----------
    functions : dict of str to ndarray
        Role -> float32 illumination function (the plate's image size).
    counts : dict of str to int
        Role -> number of images averaged.
    excluded : DataFrame
        ``site, well, field, role, file, error, message`` of every image left out.
    """

    functions: dict[str, np.ndarray]
    counts: dict[str, int]
    excluded: pd.DataFrame


class _OrderedSum:
    """Per-role sums of downsampled images, added in site order whatever order they arrive in.

    Float addition is not associative: adding in arrival order would make the function
    depend on which worker finished first (or saw a bad file). Results that arrive early
    wait, at most one submission window of them.
    """

    def __init__(self, roles: list[str]):
        self.total = {r: None for r in roles}
        self.count = {r: 0 for r in roles}
        self.waiting: dict[int, dict] = {}
        self.next = 0

    def add(self, index: int, small: dict[str, np.ndarray]) -> None:
        self.waiting[index] = small
        while self.next in self.waiting:
            for role, image in self.waiting.pop(self.next).items():
                if role in self.total:
                    self.total[role] = image.copy() if self.total[role] is None else self.total[role] + image
                    self.count[role] += 1
            self.next += 1


def compute_illumination(plate, sites: list[Site] | None = None, roles: list[str] | None = None,
                         config: dict | None = None, client=None, progress: Callable | None = None,
                         paths: dict | None = None, window: int | None = None) -> IlluminationResult:
    """Per-channel illumination functions as one streaming reduction over the plate's sites.

    Each site contributes its x0.2 downsampled images, summed in site order (so the
    result equals :func:`cpfeatures.illum.calculate` over the same images, whichever
    worker computed what); the mean is median-filtered, rescaled and upsampled once.
    Images that cannot be read are left out of their channel's mean and listed in
    :attr:`IlluminationResult.excluded`. Memory is a few small images per site in
    flight, whatever the plate size.

    Parameters
    ----------
    plate : Plate
    sites, roles : list, optional
        Default: every site and channel of the plate.
    config : dict, optional
        Settings (``[illum]``); default: the defaults (CPJUMP1).
    client : distributed.Client, optional
        Spread the sites over a cluster; default: in this process, one site at a time.

    Returns
    -------
    IlluminationResult

    Raises
    ------
    CpfeaturesError
        A channel has no readable image at all.

    Examples
    --------
    >>> from cpfeatures.io import read_plate
    >>> illum = compute_illumination(read_plate("data/example_plate")).functions  # doctest: +SKIP
    >>> sorted(illum)  # doctest: +SKIP
    ['AGP', 'Brightfield', 'DNA', 'ER', 'HighZBF', 'LowZBF', 'Mito', 'RNA']
    """
    from .illum import finalize

    sites = plate.sites if sites is None else sites
    roles = plate.roles if roles is None else roles
    config = load_config() if config is None else config
    settings = config.get("illum", {})
    factor = float(settings.get("downsample", 0.2))
    paths = paths if paths is not None else _plan(plate, sites, roles)[0]
    todo = [s for s in sites if site_key(*s) in paths]
    args = [({r: p for r, p in paths[site_key(*s)].items() if r in roles}, plate.image_shape, str(plate.dtype),
             factor) for s in todo]
    summed = _OrderedSum(roles)
    excluded = []

    def take(i: int, result: dict) -> None:
        summed.add(i, result["small"])
        s = todo[i]
        excluded.extend({"site": site_key(*s), "well": s.well, "field": s.field, **b} for b in result["bad"])
        if progress:
            progress(1)

    if client is None:
        for i, a in enumerate(args):
            take(i, _downsample_site(*a))
    else:
        for i, result in _Window(client, _downsample_site, args, window, "illum"):
            if isinstance(result, BaseException):  # the worker died on this site every time it was tried
                message = _worker_death_message(result)
                result = {"small": {}, "bad": [{"role": r, "file": None, "error": "KilledWorker", "message": message}
                                               for r in args[i][0]]}
            take(i, result)
    functions = {}
    for role in roles:
        if summed.count[role] == 0:
            raise CpfeaturesError(f"no readable image of channel {role} to compute its illumination function from",
                                  getattr(plate, "root", None))
        functions[role] = finalize(summed.total[role] / summed.count[role], plate.image_shape, settings)
    frame = pd.DataFrame(excluded, columns=["site", "well", "field", "role", "file", "error", "message"])
    return IlluminationResult(functions, dict(summed.count), frame)


class _Window:
    """Run ``fn(*args[i])`` for every ``i`` on the cluster, at most ``window`` tasks in flight.

    Iterating yields ``(i, result)`` as tasks finish; a task whose workers all died
    yields the exception instead. A bounded window keeps the scheduler's and the
    client's memory flat on a 3,456-site plate, and :meth:`stop` ends submitting at
    once (storage fault) while the tasks in flight still report.
    """

    def __init__(self, client, fn, args: list, window: int | None, name: str):
        self.client, self.fn, self.args, self.name = client, fn, args, name
        self.window = window or _default_window(client)
        self.queue = list(range(len(args)))
        self.futures: dict = {}
        self.no_workers_since: float | None = None  # when the cluster was first seen without workers

    def stop(self) -> None:
        self.queue.clear()

    def cancel(self) -> None:
        self.stop()
        self.client.cancel([fut for _, fut in self.futures.values()], force=True)

    def _submit(self, pending: set) -> None:
        i = self.queue.pop(0)
        fut = self.client.submit(self.fn, *self.args[i], key=f"{self.name}-{i}-{time.time_ns()}", pure=False)
        self.futures[fut.key] = (i, fut)
        pending.add(fut)

    def __iter__(self):
        from distributed import wait

        pending: set = set()
        for _ in range(min(self.window, len(self.queue))):
            self._submit(pending)
        while pending:
            try:
                done, pending = wait(pending, timeout=_WAIT_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished for a while: are there still workers to finish it?
                self._check_workers()
                continue
            self.no_workers_since = None
            for fut in done:
                i, _ = self.futures.pop(fut.key)
                try:
                    result = fut.result()
                except Exception as exc:  # KilledWorker: the task's worker died allowed-failures + 1 times
                    result = exc
                fut.release()
                yield i, result
                if self.queue:
                    self._submit(pending)

    def _check_workers(self) -> None:
        """Fail, rather than wait forever, when a local cluster has lost every worker for good.

        A nanny restarts a worker that was killed, but not one that closed itself (a
        task it could not unpickle, a worker plugin that failed): the tasks would then
        wait for a worker that never comes. A remote cluster's workers may come back
        (adaptive scaling, a batch queue), so there it is only reported, once."""
        try:
            n = len(self.client.scheduler_info().get("workers", {}))
        except Exception:
            return
        if n:
            self.no_workers_since = None
            return
        now = time.monotonic()
        if self.no_workers_since is None:
            self.no_workers_since = now
            if getattr(self.client, "cluster", None) is None:
                warnings.warn(f"no dask worker is connected to the scheduler; {len(self.futures)} "
                              f"{self.name} task(s) are waiting for one", RuntimeWarning, stacklevel=2)
            return
        if getattr(self.client, "cluster", None) is not None and now - self.no_workers_since > _NO_WORKERS_S:
            self.cancel()
            raise CpfeaturesError(
                f"every worker of the local cluster has stopped and none came back for {_NO_WORKERS_S:g} s "
                f"({len(self.futures)} {self.name} task(s) unfinished; finished sites are kept in the store, "
                "run again to resume). The worker log above says why, e.g. a function it could not import.")


# how often a waiting run looks at its workers, and how long a local cluster may have none
_WAIT_POLL_S = 10.0
_NO_WORKERS_S = 60.0


def _default_window(client) -> int:
    try:
        threads = sum(client.nthreads().values())
    except Exception:
        threads = 2
    return max(4, 3 * threads)


def _worker_death_message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return ("the worker process died while processing this site, every time it was tried (killed, or out of "
            f"memory: raise the worker memory limit or use fewer threads per worker) [{type(exc).__name__}: "
            f"{text[:200]}]")


# -- planning ---------------------------------------------------------------------------------------

def _plan(plate, sites: list[Site], roles: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, Exception]]:
    """Image paths of every site (key -> role -> path), and the sites that cannot be run, with why."""
    images = plate.images
    wanted = {(s.well, int(s.field)) for s in sites}
    paths, problems = {}, {}
    for (well, fieldno), rows in images.groupby(["well", "field"], sort=False):
        if (well, int(fieldno)) not in wanted:
            continue
        key = site_key(well, fieldno)
        for name in ("plane", "timepoint"):
            values = sorted(rows[name].unique())
            if len(values) > 1:
                problems[key] = CpfeaturesError(
                    f"well {well} field {fieldno} has {len(values)} {name}s {values}; cpfeatures measures one "
                    f"{name} per site", plate.root)
                break
        else:
            paths[key] = {r: p for r, p in zip(rows["role"], rows["path"]) if r in roles}
    return paths, problems


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


# -- the plate run (client side) ---------------------------------------------------------------

def _ignore_interrupt_plugin():
    """A worker plugin: Ctrl-C on a terminal reaches every process of the group; the run's client
    handles it (abandons the sites in flight, exits 130), the workers just stop with the cluster."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreInterrupt(WorkerPlugin):
        name = "cpfeatures-ignore-sigint"

        def setup(self, worker=None):
            import signal

            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            except ValueError:  # not the main thread of this worker process
                pass

    return IgnoreInterrupt()


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None, threads_per_worker: int | None, memory_limit=None,
            worker_retries: int = 2, timeout: float = 30.0):
    """A dask client: an existing cluster (``scheduler``) or a local one sized to the machine."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise CpfeaturesError(f"cannot reach the dask scheduler at {scheduler} within {timeout:g} s "
                                  f"({type(exc).__name__}): is it running, is the address tcp://HOST:PORT right, "
                                  "and is that port open from here? (--scheduler-timeout to wait longer)") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or max(1, (os.cpu_count() or 1))
    # a site whose worker dies (SIGKILL, out of memory) is tried again on another worker this many times
    with dask.config.set({"distributed.scheduler.allowed-failures": int(worker_retries)}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker or 1, processes=True,
                               dashboard_address=None, memory_limit=memory_limit or "auto")
    client = Client(cluster)
    try:
        client.register_plugin(_ignore_interrupt_plugin())
        yield client
    finally:
        client.close()
        cluster.close()


def run_plate(plate_path, out, config: dict | str | None = None, *, workers: int | None = None,
              threads_per_worker: int | None = None, scheduler: str | None = None, scheduler_timeout: float = 30.0,
              sites: Iterable[str] | None = None, wells: Iterable[str] | None = None, save_labels: bool = False,
              progress: bool = True, storage_options: dict | None = None, verify: bool = False,
              on_site_done: Callable[[dict], None] | None = None, process: Callable | None = None,
              window: int | None = None, log_file: str | None = None, plate: str | None = None,
              illum: str | os.PathLike | dict | None = None, crops=None) -> RunSummary:
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
    workers, threads_per_worker : int, optional
        Local cluster size (default: one single-threaded worker per core).
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler (``tcp://host:8786``).
    scheduler_timeout : float
        Seconds to wait for ``scheduler`` to answer.
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
    crops : CropSettings or dict or bool, optional
        Also write each site's single-cell crops (:mod:`cpfeatures.crops`) to
        ``crops.path`` (default ``<out>.crops.zarr`` beside the store).

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
    cfg = config if isinstance(config, dict) else load_config(config)
    plate_name = plate
    plate = read_plate(plate_path, config=cfg, strict=False, plate=plate_name)
    roles = [r for r in cfg.get("run", {}).get("channels", plate.roles) if r in plate.roles] or plate.roles
    _check_roles(plate, roles, cfg)
    wanted = _select_sites(plate, wells, sites)
    given_illum = None  # precomputed functions are read and checked before any work
    if cfg.get("illum", {}).get("enabled", True) and (illum is not None or plate.illum_files):
        from .io import read_illum_files

        given_illum = read_illum_files(illum if illum is not None else plate.illum_files, roles,
                                       plate.image_shape, plate=plate.plate_id)
    store = Store(out, mode="a", storage_options=storage_options)
    from ._lock import StoreLock

    lock = StoreLock(store.url, storage_options)
    with lock, _progress(progress, log_file) as bar:
        summary = RunSummary(plate.plate_id, store.url, len(wanted))
        try:
            _run(plate, plate_path, store, cfg, roles, wanted, summary, bar, lock,
                 dict(workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler,
                      scheduler_timeout=scheduler_timeout,
                      save_labels=save_labels, verify=verify, on_site_done=on_site_done, process=process,
                      window=window, given_illum=given_illum, crops=crops))
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
    summary.seconds = time.perf_counter() - t_start
    return summary


def _run(plate, plate_path, store: Store, cfg: dict, roles: list[str], wanted: list[Site], summary: RunSummary,
         bar, lock, opts: dict) -> None:
    plate_path = os.fspath(plate_path)
    store.initialize(plate.plate_id, dump_config(cfg),
                     plate_path=plate_path if "://" in plate_path else os.path.abspath(plate_path),
                     roles=roles, versions=run_versions())
    if opts["verify"]:
        task = bar.add("verifying", len(store.completed_sites()))
        report = store.verify(progress=lambda n: bar.advance(task, n))
        damaged = report[report["status"] == "damaged"]
        for key in damaged["site"]:
            if key == "illum":
                store.root["illum"].attrs["complete"] = []  # recomputed below
            else:
                store.uncommit(key)
        summary.damaged = [k for k in damaged["site"] if k != "illum"]
    done_before = set(store.completed_sites())
    if opts.get("crops"):
        from .crops._hooks import prepare_run

        opts["crops"] = prepare_run(opts["crops"], store, plate.plate_id, roles, done_before,
                                    [site_key(*s) for s in wanted])
    summary.skipped = [site_key(*s) for s in wanted if site_key(*s) in done_before]
    todo = [s for s in wanted if site_key(*s) not in done_before]
    illum = store.read_illum()
    use_illum = cfg.get("illum", {}).get("enabled", True)
    if opts.get("given_illum") is not None:
        _use_given_illum(store, illum, opts["given_illum"])
        illum = opts["given_illum"]
    need_illum = use_illum and (illum is None or set(illum) != set(roles))
    retries = int(cfg.get("run", {}).get("worker_retries", 2))
    with _client(opts["scheduler"], opts["workers"], opts["threads_per_worker"], worker_retries=retries,
                 timeout=opts["scheduler_timeout"]) as client:
        phases: dict[str, float] = {}
        if opts["scheduler"] is None and (todo or need_illum):
            t0 = time.perf_counter()
            _compile_in_workers(client, cfg, roles, bar)
            phases["compile"] = time.perf_counter() - t0
        if need_illum:
            t0 = time.perf_counter()
            # The illumination function is a plate-level quantity: always over all sites of the plate.
            all_paths, _ = _plan(plate, plate.sites, roles)
            task = bar.add("illumination", len(plate.sites))
            result = compute_illumination(plate, plate.sites, roles, cfg, client=client, paths=all_paths,
                                          progress=lambda n: bar.advance(task, n), window=opts["window"])
            _record_excluded(store, result)
            store.write_illum(result.functions)
            summary.illum_seconds = time.perf_counter() - t0
            summary.illum_excluded = result.excluded
            phases["illumination"] = summary.illum_seconds
        illum_version = ",".join(str(a.get("crc32")) for a in store.root["illum"].attrs.get("arrays", {}).values()) \
            if use_illum else ""
        t0 = time.perf_counter()
        try:
            _sites_phase(client, plate, store, cfg, roles, todo, summary, bar, lock, opts, illum_version)
        finally:  # also for an interrupted run: the report shows what this run spent, compilation apart
            phases["sites"] = time.perf_counter() - t0
            phases["sites_done"] = len(summary.done)
            with contextlib.suppress(StoreWriteError):
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


def _use_given_illum(store: Store, stored: dict | None, given: dict) -> None:
    """Store precomputed illumination functions, unless the store already has exactly these.

    A store whose sites were corrected with other functions is refused: its rows
    would mix two corrections.
    """
    from .store import checksum

    if stored is not None and set(stored) == set(given) and \
            all(checksum(np.asarray(stored[r], np.float32)) == checksum(given[r]) for r in given):
        return
    if stored is not None and store.completed_sites():
        raise CpfeaturesError("the store's sites were corrected with other illumination functions than those "
                              "given now (--illum or the CSV's FileName_Illum columns): use a new store",
                              store.url)
    store.write_illum(given)
    store.root["illum"].attrs["source"] = "precomputed"


def _record_excluded(store: Store, result: IlluminationResult) -> None:
    """Record each site with an image left out of the illumination functions, and warn per channel."""
    excluded = result.excluded
    for _, rows in excluded.groupby("site", sort=False):
        first = rows.iloc[0]  # the first bad image in channel order, as the site's own run meets it
        store.record_error(first["well"], int(first["field"]), _AsRecorded(first), phase="illumination")
    for role, n in excluded.groupby("role").size().items():
        total = n + result.counts.get(role, 0)
        if total and n / total > ILLUM_LOSS_WARNING:
            warnings.warn(f"channel {role}: {n} of {total} images ({100 * n / total:.0f}%) could not be read and "
                          f"were left out of its illumination function", RuntimeWarning, stacklevel=3)


class _AsRecorded(Exception):
    """An error a worker saw and reported as text, to be recorded as it was seen."""

    def __init__(self, row):
        super().__init__(row["message"])
        self.path = row["file"]
        self.kind = row["error"]


def _sites_phase(client, plate, store: Store, cfg: dict, roles: list[str], todo: list[Site], summary: RunSummary,
                 bar, lock, opts: dict, illum_version: str) -> None:
    paths, problems = _plan(plate, todo, roles)
    task = bar.add("sites", summary.n_sites, completed=len(summary.skipped))
    failures = 0
    for key, exc in problems.items():
        well, fieldno = key.rsplit("_f", 1)
        store.record_error(well, int(fieldno), exc)
        failures += 1
        bar.advance(task, 1, failures=failures)
    runnable = [s for s in todo if site_key(*s) in paths]
    metadata = _site_metadata(plate, runnable)
    args = [(store.url, plate.plate_id, s.well, s.field, paths[site_key(*s)], roles, plate.image_shape,
             str(plate.dtype), cfg, opts["save_labels"], opts["process"], illum_version,
             metadata.get(site_key(*s)), opts.get("crops") or None) for s in runnable]
    window = _Window(client, run_site, args, opts["window"], f"site-{plate.plate_id}")
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
            if opts["on_site_done"]:
                opts["on_site_done"](res)
            if lock.lost:
                window.stop()
                summary.storage_error = "another run took over this store's lock; this run stopped"
    except BaseException:  # Ctrl-C or a fault of the client: abandon what is in flight (uncommitted)
        window.cancel()
        raise


class _Died(Exception):
    """A site whose worker process died every time it was tried."""

    def __init__(self, exc: BaseException):
        super().__init__(_worker_death_message(exc))
        self.path = None


def _compile_in_workers(client, cfg: dict, roles: list[str], bar) -> None:
    """On a machine's first run, each local worker compiles its share of the numba kernels.

    The parts are balanced by compile cost (:func:`cpfeatures._warmup.plan_parts`); afterwards
    every worker loads the others' kernels from numba's on-disk cache, so the first run
    compiles once, in parallel, instead of all over again in every worker.
    """
    from distributed import as_completed

    from ._warmup import compile_kernels, kernels_cached, plan_parts

    if kernels_cached():
        return
    workers = sorted(client.scheduler_info()["workers"])
    parts = plan_parts(cfg, len(workers))
    task = bar.add("compiling", len(parts))
    futures = [client.submit(compile_kernels, cfg, roles, part, workers=[address], allow_other_workers=False,
                             pure=False, key=f"compile-{i}-{time.time_ns()}")
               for i, (part, address) in enumerate(zip(parts, workers))]
    for fut in as_completed(futures):
        try:
            fut.result()
        except Exception as exc:  # never stop a run: the workers then compile what they need themselves
            warnings.warn(f"compiling the kernels ahead of the sites failed ({type(exc).__name__}: {exc}); each "
                          "worker compiles them when it needs them", RuntimeWarning, stacklevel=2)
        bar.advance(task, 1)
