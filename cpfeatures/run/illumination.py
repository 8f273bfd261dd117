"""The illumination phase: per-channel functions as one streaming, ordered reduction over a plate's sites.

Runs on the client, spreading the downsampling of each site over the cluster's workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..config import load_config
from ..errors import CpfeaturesError
from ..illum import DEFAULTS as ILLUM_DEFAULTS
from ..io import Site, read_image, site_key
from ._cluster import TaskWindow, worker_death_message

__all__ = ["compute_illumination", "IlluminationResult", "record_excluded", "ILLUM_LOSS_WARNING"]

#: Share of a channel's images that may be unreadable before the run warns about its illumination function.
ILLUM_LOSS_WARNING = 0.05


def _downsample_site(paths: dict[str, str], shape, dtype, factor: float) -> dict:
    """One site's contribution to the illumination functions: ``{"small": {role: image}, "bad": [...]}``.

    An image that cannot be read is left out (``bad`` says which and why), never raised.
    """
    from ..illum import downsample
    from .malloc import keep_freed_memory

    keep_freed_memory()
    small, bad = {}, []
    for role, path in paths.items():
        try:
            small[role] = downsample(read_image(path, shape, dtype), factor=factor)
        except Exception as exc:  # unreadable, truncated, empty, wrong size or type
            bad.append({"role": role, "file": getattr(exc, "path", None) or path, "error": type(exc).__name__,
                        "message": " ".join(str(exc).split())})
    return {"small": small, "bad": bad}



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
    from ..illum import finalize

    sites = plate.sites if sites is None else sites
    roles = plate.roles if roles is None else roles
    config = load_config() if config is None else config
    settings = config.get("illum", {})
    factor = float(settings.get("downsample", ILLUM_DEFAULTS["downsample"]))
    paths = paths if paths is not None else plate.site_paths(sites, roles)[0]
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
        for i, result in TaskWindow(client, _downsample_site, args, window, "illum"):
            if isinstance(result, BaseException):  # the worker died on this site every time it was tried
                message = worker_death_message(result)
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


def record_excluded(store, result: IlluminationResult) -> None:
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
