"""cpfeatures: fast, restartable image-based profiling of Cell Painting plates.

A map of the package, from the images up (each subpackage's docstring says more; the
manual is ``docs/``)::

    errors       CpfeaturesError and its kinds: every bad input is one of them, naming the file
    config       settings: the defaults (CPJUMP1's pipelines) as TOML, load_config, validation
    io/          plates (Harmony, ImageXpress, Yokogawa, LoadData CSVs; local or fsspec URLs), Site,
                 site_key / parse_site_key, TIFF reading
    illum        illumination functions: downsample, mean, median filter, rescale; apply
    segment/     thresholds; nuclei (primary), cells (secondary), cytoplasm (tertiary)
    measure/     one pure function per CellProfiler measurement family, a settings table, kernels apart
    pipeline     one site: correct -> segment -> measure -> SiteTables (no dask, no store)
    cppipe/      a CellProfiler .cppipe translated to settings; what cannot be is refused by name
    store/       the single-cell Zarr store: Store, readers, open_plate, export (Parquet, CSV,
                 AnnData), the writer's lock; the only code that knows the on-disk layout
    run/         the plate run on dask: run_plate, RunOptions, the site task, illumination phase,
                 batches of plates, warm-up, progress
    crops/       single-cell crops: a per-site hook of the run, a crops store, readers for training
    profile/     one verb per module: aggregate, annotate, normalize, feature_select, spherize,
                 consensus, profile_plates; scores (Percent Replicating / Matching, mAP)
    report/      QC pictures and the HTML report of a run
    cli/         the ``cpfeatures`` command: each command parses and calls one function above

Entry points: ``cpfeatures`` (the shell), :func:`cpfeatures.run.run_plate`,
:func:`cpfeatures.pipeline.process_site`, :func:`cpfeatures.store.read_table`,
:func:`cpfeatures.profile.profile_plates`.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import CpfeaturesError

try:
    __version__ = version("cpfeatures")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["CpfeaturesError", "__version__"]
