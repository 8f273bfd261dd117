"""One site on a worker: load, process, hand the per-site products to their hooks, commit to the store.

:func:`run_site` is what every site task of a plate run calls; a :class:`SiteTask` is
everything it needs, and it never raises for a bad site (the error is recorded instead).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..errors import CpfeaturesError
from ..settings import defaults, table
from ..io import read_image, site_key
from ..store import Store, StoreWriteError

__all__ = ["SiteTask", "SiteHook", "run_site", "cached_illum"]

#: ``[run]`` defaults, for settings given as a partial dict.
RUN_DEFAULTS = defaults(table("run"))


class SiteHook(Protocol):
    """A per-site product written beside the features (single-cell crops, ...), handed to the run.

    The run imports no product: it calls :meth:`prepare` once on the client before any
    site task, then the hook it returned on the workers, for each site, before the
    site commits (a committed site always has its products).
    """

    #: The hook needs the site's final label images (the run keeps them for it).
    needs_labels: bool

    def prepare(self, store: Store, plate_id: str, roles: list[str], done_before: set[str],
                wanted: list[str]) -> "SiteHook":
        """Check and initialise the product's output; return the (picklable) hook the workers call."""

    def write_site(self, plate_id: str, well: str, fieldno: int, images: dict[str, np.ndarray],
                   illum: dict[str, np.ndarray] | None, result) -> None:
        """Write one site's product from its raw images, illumination functions and result."""


@dataclass
class SiteTask:
    """Everything one site task needs (it travels to a worker).

    Attributes
    ----------
    url, plate_id : str
        The store and the plate.
    well, field : str, int
        The site.
    paths : dict of str to str
        Role -> image file.
    roles : list of str
        The channels the run measures.
    shape, dtype : tuple, str
        The plate's image size and pixel type (every image is checked against them).
    config : dict
        The run's settings.
    save_labels : bool
        Keep the label images in the store.
    process : callable, optional
        Replaces :func:`cpfeatures.pipeline.process_site`.
    illum_version : str
        :meth:`Store.illum_version` (workers cache the functions per store and version).
    metadata : dict, optional
        A LoadData CSV's own ``Metadata_*`` values for the site's Image row.
    hooks : tuple of SiteHook
        Per-site products written before the site commits.
    """

    url: str
    plate_id: str
    well: str
    field: int
    paths: dict[str, str]
    roles: list[str]
    shape: tuple[int, int]
    dtype: str
    config: dict
    save_labels: bool = False
    process: Callable | None = None
    illum_version: str = ""
    metadata: dict | None = None
    hooks: tuple = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return site_key(self.well, self.field)


@functools.lru_cache(maxsize=4)
def cached_illum(url: str, version: str) -> dict[str, np.ndarray] | None:
    """Illumination functions read once per worker process (``version`` tells stores at one URL apart)."""
    return Store(url).read_illum()



def run_site(task: SiteTask) -> dict:
    """Load, process and write one site; record the error instead of raising.

    The site's Image row also gets ``task.metadata``; ``task.hooks`` write their products
    before the site commits.

    Returns a small summary: ``{"site", "ok", "n_objects", "seconds", "error"}``,
    plus ``"storage_error"`` when the store could not be written (the site is
    then uncommitted and not recorded as failed: a rerun writes it).
    """
    from ..pipeline import process_site
    from .malloc import keep_freed_memory

    keep_freed_memory()  # dask workers return freed memory at once: ~1 CPU-s/site of page faults
    process = task.process or process_site
    url, config, paths, roles = task.url, task.config, task.paths, task.roles
    well, fieldno = task.well, task.field
    t0 = time.perf_counter()
    key = task.key
    try:
        store = Store(url, mode="a")
    except StoreWriteError as exc:
        return _storage_failure(key, t0, exc)
    try:
        missing = [r for r in roles if r not in paths]
        if missing:
            raise CpfeaturesError(f"site {key} has no image for channel(s) {', '.join(missing)}")
        images = {role: read_image(paths[role], task.shape, task.dtype) for role in roles}
        illum = cached_illum(url, task.illum_version)
        image_metadata = {f"FileName_Orig{r}": os.path.basename(p) for r, p in paths.items()}
        image_metadata.update(task.metadata or {})
        keep_labels = task.save_labels or any(hook.needs_labels for hook in task.hooks)
        result = process(images, illum=illum, config=config, save_labels=keep_labels, image_metadata=image_metadata)
        n = int(len(result.tables.get("Cells", [])))
        if n == 0 and len(result.tables.get("Nuclei", [])) == 0 and \
                config.get("run", {}).get("empty_sites", RUN_DEFAULTS["empty_sites"]) != "keep":
            dna = paths.get("DNA", next(iter(paths.values())))
            raise CpfeaturesError("no nucleus segmented in this site (empty well, out of focus or wrong exposure?); "
                                  "set [run] empty_sites = \"keep\" to store empty sites", dna)
        for hook in task.hooks:
            hook.write_site(task.plate_id, well, fieldno, images, illum, result)
        if task.hooks and not task.save_labels:  # kept for the hooks only
            result.labels = None
        store.write_site(task.plate_id, well, fieldno, result)
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
