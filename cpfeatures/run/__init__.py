"""The plate run: a plate's images to a store, on this machine or a dask cluster, resumable.

>>> from cpfeatures.run import run_plate                            # doctest: +SKIP
>>> summary = run_plate("data/example_plate", "example.zarr", workers=2)  # doctest: +SKIP

Modules: :mod:`~cpfeatures.run.plate` (the orchestration of one plate),
:mod:`~cpfeatures.run.site` (one site on a worker), :mod:`~cpfeatures.run.illumination`
(the illumination phase), :mod:`~cpfeatures.run.batch` (several plates on one cluster),
:mod:`~cpfeatures.run.warmup` (compiling the kernels before the sites),
:mod:`~cpfeatures.run.progress` and :mod:`~cpfeatures.run.malloc`; the dask client and the
task window are private to the package (``_cluster``) and offered here to the other
per-site products (crops).
"""

from ._cluster import TaskWindow, cluster_client, worker_death_message
from .batch import BatchSummary, batch_plates, run_plates
from .illumination import IlluminationResult, compute_illumination
from .plate import RunOptions, RunSummary, run_plate, run_versions
from .progress import Labelled, progress
from .site import SiteHook, SiteTask, cached_illum, run_site
from .warmup import compile_kernels, kernels_cached

__all__ = ["run_plate", "RunOptions", "RunSummary", "run_site", "SiteTask", "SiteHook", "cached_illum",
           "compute_illumination", "IlluminationResult", "run_plates", "batch_plates", "BatchSummary",
           "run_versions", "compile_kernels", "kernels_cached", "progress", "Labelled", "TaskWindow",
           "cluster_client", "worker_death_message"]
