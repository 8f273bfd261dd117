"""What ``cpfeatures run --save-crops`` adds to a plate run (called from :mod:`cpfeatures.run`)."""

from __future__ import annotations

import warnings

from ..errors import CpfeaturesError
from ..store import site_key
from ._write import CropSettings, CropStore, default_path

__all__ = ["prepare_run", "write_run_site"]


def prepare_run(crops: "CropSettings | bool | dict", store, plate_id: str, roles: list[str],
                done_before: set[str], wanted: list[str]) -> CropSettings:
    """Settings with the crops path resolved; the crops store initialised (client side, before any task).

    Sites the feature store already holds without crops are named in a warning: a resumed
    run skips them, ``cpfeatures crops`` writes their crops.
    """
    settings = crops if isinstance(crops, CropSettings) else CropSettings(**(crops if isinstance(crops, dict) else {}))
    if settings.path is None:
        settings.path = default_path(store.url)
    missing = [r for r in settings.channels if r not in roles]
    if missing:
        raise CpfeaturesError(f"--save-crops: channel(s) {', '.join(missing)} are not run (channels: "
                              f"{', '.join(roles)})")
    crop_store = CropStore(settings.path, mode="a")
    crop_store.initialize(plate_id, settings, source=store.url)
    have = set(crop_store.completed_sites())
    lacking = [k for k in wanted if k in done_before and k not in have]
    if lacking:
        warnings.warn(f"{len(lacking)} site(s) already in the store have no crops (e.g. {lacking[0]}); this run "
                      f"skips them: `cpfeatures crops {store.url} PLATE -o {settings.path}` writes them",
                      RuntimeWarning, stacklevel=3)
    return settings


def write_run_site(settings: CropSettings, plate_id: str, well: str, fieldno: int, images: dict, illum, result):
    """Write one site's crops from the run's own images, correction and labels (before the site commits).

    The corrected images are recomputed with the run's function (:func:`cpfeatures.pipeline.
    correct_images`, the same numbers the site was measured on); the labels are the result's.
    """
    from ..pipeline import correct_images
    from ._site import site_crops

    corrected = correct_images({r: images[r] for r in settings.channels if r in images}, illum)
    tables = result.tables
    if "Cells" not in tables or "Nuclei" not in tables:
        raise CpfeaturesError(f"site {site_key(well, fieldno)}: crops need the Nuclei and Cells tables")
    crops, masks, index = site_crops(corrected, result.labels, tables["Nuclei"], tables["Cells"], settings)
    CropStore(settings.path, mode="a").write_site(plate_id, well, fieldno, crops, index, masks)
