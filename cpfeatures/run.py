"""The plate run: illumination reduction, then one dask task per site writing to the store.

Nothing outside this module imports dask. Each task is a plain function call
(:func:`run_site`) that loads one site, processes it with
:func:`cpfeatures.pipeline.process_site`, and writes it to the store itself,
so results never travel through the scheduler and memory per task is bounded
by one site whatever the plate size.
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
from .errors import CpfeaturesError
from .io import Site, read_plate
from .io.tiff import read_image
from .store import Store, site_key

__all__ = ["run_plate", "run_site", "compute_illumination", "RunSummary"]


@dataclass
class RunSummary:
    """What a plate run did."""

    plate_id: str
    store: str
    n_sites: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    illum_seconds: float = 0.0
    n_objects: int = 0

    @property
    def ok(self) -> bool:
        return len(self.failed) == 0


# -- per-site work (runs on workers) ------------------------------------------------------------

def _site_paths(plate, site: Site, roles: list[str]) -> dict[str, str]:
    rows = plate.site_images(site.well, site.field)
    by_role = dict(zip(rows["role"], rows["path"]))
    return {r: by_role[r] for r in roles if r in by_role}


@functools.lru_cache(maxsize=4)
def _store_illum(url: str) -> dict[str, np.ndarray] | None:
    """Illumination functions read once per worker process."""
    return Store(url).read_illum()


def run_site(url: str, plate_id: str, well: str, fieldno: int, paths: dict[str, str], roles: list[str],
             shape: tuple[int, int], dtype: str, config: dict, save_labels: bool = False,
             process: Callable | None = None) -> dict:
    """Load, process and write one site; record the error instead of raising.

    Returns a small summary: ``{"site", "ok", "n_objects", "seconds", "error"}``.
    """
    from ._malloc import keep_freed_memory
    from .pipeline import process_site

    keep_freed_memory()  # dask workers return freed memory at once: ~1 CPU-s/site of page faults
    process = process or process_site
    t0 = time.perf_counter()
    store = Store(url, mode="a")
    key = site_key(well, fieldno)
    try:
        missing = [r for r in roles if r not in paths]
        if missing:
            raise CpfeaturesError(f"site {key} has no image for channel(s) {', '.join(missing)}")
        images = {role: read_image(paths[role], shape, dtype) for role in roles}
        illum = _store_illum(url)
        result = process(images, illum=illum, config=config, save_labels=save_labels,
                         image_metadata={f"FileName_Orig{r}": os.path.basename(p) for r, p in paths.items()})
        n = int(len(result.tables.get("Cells", [])))
        if n == 0 and len(result.tables.get("Nuclei", [])) == 0 and \
                config.get("run", {}).get("empty_sites", "fail") != "keep":
            dna = paths.get("DNA", next(iter(paths.values())))
            raise CpfeaturesError("no nucleus segmented in this site (empty well, out of focus or wrong exposure?); "
                                  "set [run] empty_sites = \"keep\" to store empty sites", dna)
        store.write_site(plate_id, well, fieldno, result)
        return {"site": key, "ok": True, "n_objects": n, "seconds": time.perf_counter() - t0, "error": None}
    except Exception as exc:  # a bad site must never stop the plate
        record = store.record_error(well, fieldno, exc)
        return {"site": key, "ok": False, "n_objects": 0, "seconds": time.perf_counter() - t0,
                "error": f"{record['error']}: {record['message']}"}


def _downsample_site(paths: dict[str, str], shape, dtype, factor: float) -> dict[str, np.ndarray]:
    from ._malloc import keep_freed_memory
    from .illum import downsample

    keep_freed_memory()
    out = {}
    for role, path in paths.items():
        image = read_image(path, shape, dtype)
        out[role] = downsample(image, factor=factor)
    return out


def _add(a: dict, b: dict) -> dict:
    return {k: a[k] + b[k] for k in a}


# -- the plate run (client side) ---------------------------------------------------------------

def compute_illumination(plate, sites: list[Site], roles: list[str], config: dict, client=None,
                         progress: Callable | None = None) -> dict[str, np.ndarray]:
    """Per-channel illumination functions as one streaming reduction over the plate's sites.

    Each site contributes its x0.2 downsampled images; the sums are combined
    pairwise as they arrive (memory is a few small images, whatever the plate
    size); the mean is median-filtered, rescaled and upsampled once.
    """
    from .illum import finalize

    settings = config.get("illum", {})
    factor = float(settings.get("downsample", 0.2))
    args = [(_site_paths(plate, s, roles), plate.image_shape, str(plate.dtype), factor) for s in sites]
    total, count = None, 0
    if client is None:
        for a in args:
            small = _downsample_site(*a)
            total = small if total is None else _add(total, small)
            count += 1
            if progress:
                progress(1)
    else:
        from distributed import as_completed

        futures = [client.submit(_downsample_site, *a, pure=False) for a in args]
        for fut in as_completed(futures):
            small = fut.result()
            total = small if total is None else _add(total, small)
            count += 1
            fut.release()
            if progress:
                progress(1)
    return {role: finalize(total[role] / count, plate.image_shape, settings) for role in roles}


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None, threads_per_worker: int | None, memory_limit=None):
    """A dask client: an existing cluster (``scheduler``) or a local one sized to the machine."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or max(1, (os.cpu_count() or 1))
    cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker or 1, processes=True,
                           dashboard_address=None, memory_limit=memory_limit or "auto")
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_plate(plate_path, out, config: dict | str | None = None, *, workers: int | None = None,
              threads_per_worker: int | None = None, scheduler: str | None = None,
              sites: Iterable[str] | None = None, wells: Iterable[str] | None = None, save_labels: bool = False,
              progress: bool = True, storage_options: dict | None = None,
              on_site_done: Callable[[dict], None] | None = None, process: Callable | None = None) -> RunSummary:
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
    sites, wells : iterable of str, optional
        Only these sites (``"D08_f5"``) or wells (``"D08"``).
    save_labels : bool
        Also store the label images.
    progress : bool
        Show a live progress bar (sites done / total, rate, ETA, failures).
    on_site_done : callable, optional
        Called on the client with each site's summary dict as it finishes.
    process : callable, optional
        Replaces :func:`cpfeatures.pipeline.process_site` (same signature) to run a
        custom per-site analysis through the same store, resume and error handling.

    Returns
    -------
    RunSummary
    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, dict) else load_config(config)
    plate = read_plate(plate_path, config=cfg, strict=False)
    roles = [r for r in cfg.get("run", {}).get("channels", plate.roles) if r in plate.roles] or plate.roles
    wanted = plate.sites
    if wells:
        wells = set(wells)
        wanted = [s for s in wanted if s.well in wells]
    if sites:
        keys = set(sites)
        wanted = [s for s in wanted if site_key(*s) in keys or str(s) in keys]
    store = Store(out, mode="a", storage_options=storage_options)
    store.initialize(plate.plate_id, dump_config(cfg), plate_path=os.path.abspath(os.fspath(plate_path)),
                     roles=roles)
    done_before = set(store.completed_sites())
    todo = [s for s in wanted if site_key(*s) not in done_before]
    summary = RunSummary(plate.plate_id, store.url, len(wanted),
                         skipped=[site_key(*s) for s in wanted if site_key(*s) in done_before])

    with _progress(progress) as bar, contextlib.ExitStack() as stack:
        illum = store.read_illum()
        use_illum = cfg.get("illum", {}).get("enabled", True)
        need_illum = use_illum and (illum is None or set(illum) != set(roles))
        if scheduler is None and (todo or need_illum):
            _compile_once(cfg, roles, bar)
        client = stack.enter_context(_client(scheduler, workers, threads_per_worker))
        if need_illum:
            t0 = time.perf_counter()
            # The illumination function is a plate-level quantity: always over all sites of the plate.
            task = bar.add("illumination", len(plate.sites))
            illum = compute_illumination(plate, plate.sites, roles, cfg, client=client,
                                         progress=lambda n: bar.advance(task, n))
            store.write_illum(illum)
            summary.illum_seconds = time.perf_counter() - t0
        task = bar.add("sites", len(wanted), completed=len(summary.skipped))
        from distributed import as_completed

        futures = []
        for s in todo:
            paths = _site_paths(plate, s, roles) if _has_site(plate, s) else {}
            futures.append(client.submit(run_site, store.url, plate.plate_id, s.well, s.field, paths, roles,
                                         plate.image_shape, str(plate.dtype), cfg, save_labels, process,
                                         key=f"site-{plate.plate_id}-{site_key(*s)}-{time.time_ns()}",
                                         retries=1, pure=False))
        failures = 0
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # the worker died twice on this site (e.g. out of memory)
                well, fieldno = _site_of_future(fut.key)
                record = store.record_error(well, fieldno, exc)
                res = {"site": record["site"], "ok": False, "n_objects": 0, "error": record["message"]}
            fut.release()
            if res["ok"]:
                summary.done.append(res["site"])
                summary.n_objects += res["n_objects"]
            else:
                failures += 1
            bar.advance(task, 1, failures=failures)
            if on_site_done:
                on_site_done(res)
    errors = store.errors()
    wanted_keys = {site_key(*s) for s in wanted}
    summary.failed = errors[errors["site"].isin(wanted_keys)].reset_index(drop=True)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _compile_once(cfg: dict, roles: list[str], bar) -> None:
    """On a machine's first run, compile the numba kernels here rather than in every local worker."""
    from ._warmup import compile_kernels, kernels_cached

    if kernels_cached():
        return
    task = bar.add("compiling", 1)
    try:
        compile_kernels(cfg, roles)
    except Exception as exc:  # never stop a run: the workers then compile what they need themselves
        warnings.warn(f"compiling the kernels ahead of the workers failed ({exc}); each worker compiles them",
                      RuntimeWarning, stacklevel=2)
    bar.advance(task, 1)


def _has_site(plate, s: Site) -> bool:
    try:
        plate.site_images(s.well, s.field)
        return True
    except CpfeaturesError:
        return False


def _site_of_future(key: str) -> tuple[str, int]:
    # key = "site-<plate>-<well>_f<field>-<ns>"
    site = key.rsplit("-", 2)[-2]
    well, fieldno = site.rsplit("_f", 1)
    return well, int(fieldno)


class _Bar:
    """Thin wrapper over rich.progress so the run code does not care whether a bar is shown."""

    def __init__(self, progress):
        self.p = progress
        self.failures: dict = {}

    def add(self, name: str, total: int, completed: int = 0):
        if self.p is None:
            return name
        return self.p.add_task(name, total=total, completed=completed, failures=0)

    def advance(self, task, n: int, failures: int | None = None):
        if self.p is None:
            return
        kwargs = {"failures": failures} if failures is not None else {}
        self.p.update(task, advance=n, **kwargs)


@contextlib.contextmanager
def _progress(show: bool):
    if not show:
        yield _Bar(None)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per minute, from rich's moving speed estimate."""

        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text("-- /min" if not speed else f"{speed * 60:.1f}/min")

    columns = [TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("[red]failed {task.fields[failures]}")]
    with Progress(*columns, transient=False) as p:
        yield _Bar(p)
