"""run_plates: a batch of plates through one dask cluster, one store per plate.

A batch is a list of plate folders, index files and LoadData CSVs; a CSV that lists several
plates counts as each of them (``Metadata_Plate``). Each plate goes to
``<out_dir>/<plate id>.zarr`` and is resumable on its own; the plates share one cluster
(started here, or ``scheduler``), so workers and their compiled kernels are reused from
plate to plate. A plate that is refused (unreadable index, bad CSV) is reported and the
others run.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import CpfeaturesError
from ..settings import defaults, table

#: ``[run]`` defaults, for settings given as a partial dict.
RUN_DEFAULTS = defaults(table("run"))

__all__ = ["run_plates", "batch_plates", "BatchSummary"]


@dataclass
class BatchSummary:
    """What a batch run did: per plate a :class:`~cpfeatures.run.RunSummary` or the reason it was refused.

    Attributes
    ----------
    runs : list of RunSummary
    refused : list of (str, str)
        ``(plate source, message)`` of plates that could not be run.
    seconds : float
    """

    runs: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and all(r.ok for r in self.runs)


def batch_plates(sources) -> list[tuple[str, str | None]]:
    """``(source, plate)`` for every plate of a batch: a multi-plate LoadData CSV gives one entry per plate.

    Examples
    --------
    >>> batch_plates(["data/example_plate"])
    [('data/example_plate', None)]
    """
    from ..io import fs as _fs
    from ..io import load_data_plates

    out = []
    for source in sources:
        source = os.fspath(source)
        if source.lower().endswith(".csv"):
            plates = load_data_plates(source) if (_fs.is_url(source) or os.path.isfile(source)) else []
            out += [(source, p) for p in plates] if len(plates) > 1 else [(source, None)]
        else:
            out.append((source, None))
    return out


def store_name(plate_id: str) -> str:
    """The file name of a plate's store in a batch's output folder: the plate id made safe.

    Plate ids come from the data (a LoadData CSV's ``Metadata_Plate``, a Harmony index's
    ``PlateID``); whatever they hold, the store stays inside the output folder.

    Examples
    --------
    >>> store_name("BR00116991")
    'BR00116991.zarr'
    >>> store_name("../../x"), store_name("/tmp/x"), store_name("a b:c")
    ('___.._x.zarr', '_tmp_x.zarr', 'a_b_c.zarr')
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(plate_id))  # no separator: one name in the folder
    name = re.sub(r"^\.+", lambda m: "_" * len(m.group()), name)  # never "." / ".." nor hidden
    return f"{name or 'plate'}.zarr"


def _plate_id(source: str, plate: str | None, config) -> str:
    if plate is not None:
        return str(plate)
    from ..io import read_plate

    return read_plate(source, config=config, strict=False).plate_id


def run_plates(sources, out_dir, config=None, *, workers: int | None = None, threads_per_worker: int | None = None,
               scheduler: str | None = None, scheduler_timeout: float = 30.0, tls_ca_file=None, tls_cert=None,
               tls_key=None, progress=True,
               on_plate: Callable | None = None, **kwargs) -> BatchSummary:
    """Run several plates into ``out_dir/<plate>.zarr`` through one dask cluster.

    Parameters
    ----------
    sources : list of path-like
        Plate folders, index files, LoadData CSVs (several plates each, possibly), URLs.
    out_dir : path-like or str
        Folder (or fsspec URL prefix) for the stores.
    config : dict or path, optional
        Settings for every plate.
    workers, threads_per_worker, scheduler, scheduler_timeout, tls_ca_file, tls_cert, tls_key
        The cluster, as :func:`cpfeatures.run.run_plate` takes it; started once for all plates.
    progress : bool or str
        One view for the batch (see :func:`cpfeatures.run.run_plate`): a ``plates`` phase and each
        plate's own phases, named ``"<plate> illumination"``, ``"<plate> sites"``.
    on_plate : callable, optional
        Called with each plate's :class:`~cpfeatures.run.RunSummary` (or ``(source, message)``
        when refused) as it ends.
    **kwargs
        Other :func:`~cpfeatures.run.run_plate` arguments (``sites``, ``wells``, ``illum``, ...).

    Returns
    -------
    BatchSummary
    """
    from ..config import load_config
    from ..io import fs as _fs
    from ._cluster import cluster_client
    from .plate import run_plate
    from .progress import Labelled
    from .progress import progress as open_progress

    t0 = time.perf_counter()
    cfg = config if isinstance(config, dict) else load_config(config)
    entries = batch_plates(sources)
    summary = BatchSummary()
    named = []
    for source, plate in entries:
        try:
            named.append((source, plate, _plate_id(source, plate, cfg)))
        except CpfeaturesError as exc:
            summary.refused.append((source, str(exc)))
            if on_plate:
                on_plate((source, str(exc)))
    ids = [store_name(n) for _, _, n in named]  # two ids may make one file name: refused as the same plate
    twice = sorted({n for n in ids if ids.count(n) > 1})
    if twice:
        raise CpfeaturesError(f"plate {twice[0][:-len('.zarr')]!r} is listed twice in the batch (one store per plate)")
    if not _fs.is_url(out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    retries = int(cfg.get("run", {}).get("worker_retries", RUN_DEFAULTS["worker_retries"]))
    log_file = kwargs.pop("log_file", None)
    tls = {"tls_ca_file": tls_ca_file, "tls_cert": tls_cert, "tls_key": tls_key}
    with cluster_client(scheduler, workers, threads_per_worker, worker_retries=retries, timeout=scheduler_timeout,
                        **tls) as client, \
            open_progress(progress, log_file) as view:
        address = client.scheduler.address
        plates_task = view.add("plates", len(named))
        failed_plates = 0
        for source, plate, plate_id in named:
            out = _fs.join(out_dir, store_name(plate_id))
            try:
                result = run_plate(source, out, cfg, scheduler=address, scheduler_timeout=scheduler_timeout,
                                   progress=Labelled(view, plate_id), plate=plate, **tls, **kwargs)
            except CpfeaturesError as exc:
                summary.refused.append((source, str(exc)))
                failed_plates += 1
                view.advance(plates_task, 1, failures=failed_plates)
                if on_plate:
                    on_plate((source, str(exc)))
                continue
            summary.runs.append(result)
            failed_plates += int(not result.ok)
            view.advance(plates_task, 1, failures=failed_plates)
            if on_plate:
                on_plate(result)
            if result.interrupted:
                break
    summary.seconds = time.perf_counter() - t0
    return summary
