"""The crops Zarr store: one group per site, committed atomically like the single-cell store.

Layout (Zarr v3)::

    CROPS.zarr/
      zarr.json              attributes["cpfeatures_crops"]: layout_version, plate_id, source
                             (the feature store), size, mode, border, channels, masks, dtype,
                             scale, index_columns, cpfeatures_version, created
      sites/<Well>_f<Field>/
        images               uint16 (n, channels, size, size), one chunk (zstd)
        masks                uint8 (n, len(masks), size, size), one chunk (with masks)
        index                float64 (n, len(index_columns)), one chunk
        attributes: plate, well, site, count, arrays {name: shape, dtype, crc32},
                    "complete": true  <- written last

A site's arrays are written first and ``complete`` last; readers see only complete sites,
and a site group left incomplete (a killed worker) is deleted and written again.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import zarr

from .. import __version__
from ..errors import CpfeaturesError
from ..io import site_key
from ..store import commit_site, completed_attrs, site_fetcher, site_order
from ..store import write_failure as _write_failure
from ._extract import BORDERS, FLUORESCENT, INDEX_COLUMNS, MASKS, MODES, SCALE
from ._site import site_crops

__all__ = ["CropSettings", "CropStore", "CropError", "INDEX_COLUMNS", "FLUORESCENT", "MASKS"]

LAYOUT_VERSION = 1
_ATTR = "cpfeatures_crops"


class CropError(CpfeaturesError):
    """A crops store is missing, of other settings, or cannot be read."""


@dataclass
class CropSettings:
    """How crops are cut (see :mod:`cpfeatures.crops` for the geometry).

    Attributes
    ----------
    size : int
        Crop side in pixels (128, JUMP's embedder; 224 for ImageNet-sized models).
    mode : {"centre", "bbox"}
        ``centre``: ``size`` pixels around the nucleus centre, copied; ``bbox``: the cell's
        bounding box squared and resized to ``size``.
    border : {"pad", "skip"}
        Cells whose box leaves the image: zero-padded (``Clipped`` = 1 in the index) or left out.
    channels : tuple of str
        Channels (roles) cropped, in this order; default the five fluorescent ones.
    masks : bool
        Also crop the Nuclei and Cells masks of each cell.
    path : str, optional
        Where the crops store goes (``run`` default: beside the feature store,
        ``<store>.crops.zarr``).
    """

    size: int = 128
    mode: str = "centre"
    border: str = "pad"
    channels: tuple = FLUORESCENT
    masks: bool = False
    path: str | None = None

    def __post_init__(self):
        from ..errors import InputError

        self.size = int(self.size)
        if self.size < 2:
            raise InputError(f"crop size {self.size}: must be at least 2 pixels")
        if self.mode == "center":
            self.mode = "centre"
        if self.mode not in MODES:
            raise InputError(f"crop mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.border not in BORDERS:
            raise InputError(f"crop border {self.border!r}: use one of {', '.join(BORDERS)}")
        self.channels = tuple(self.channels)
        if not self.channels:
            raise InputError("no channel to crop")

    # -- the run's per-site hook (cpfeatures.run.SiteHook): `run --save-crops` --------------------------
    @property
    def needs_labels(self) -> bool:
        """Masks are cut from the site's final label images."""
        return bool(self.masks)

    def prepare(self, store, plate_id: str, roles: list[str], done_before: set[str],
                wanted: list[str]) -> "CropSettings":
        """Before a run's sites: these settings with the crops path resolved, the crops store initialised."""
        return prepare_run(self, store, plate_id, roles, done_before, wanted)

    def write_site(self, plate_id: str, well: str, fieldno: int, images: dict, illum, result) -> None:
        """On the worker, before the site commits: write its crops (see :func:`write_run_site`)."""
        write_run_site(self, plate_id, well, fieldno, images, illum, result)

    def describe(self) -> dict:
        """The settings a store records (and a resumed run must repeat)."""
        d = asdict(self)
        d.pop("path")
        d["channels"] = list(self.channels)
        d["masks"] = list(MASKS) if self.masks else []
        return d


def default_path(store_url: str) -> str:
    """``run.zarr`` -> ``run.crops.zarr`` (beside the feature store; URLs too)."""
    base = store_url.rstrip("/")
    stem = base[:-len(".zarr")] if base.endswith(".zarr") else base
    return stem + ".crops.zarr"


class CropStore:
    """A crops store (see the module docstring).

    Parameters
    ----------
    url : str or path-like
        Local path or fsspec URL.
    mode : {"r", "a"}
        Read, or read/write (created if absent).
    """

    def __init__(self, url: str | os.PathLike, mode: str = "r"):
        url = os.fspath(url)
        self.url = url if "://" in url else os.path.abspath(url)
        try:
            self.root = zarr.open_group(self.url, mode="r" if mode == "r" else "a")
        except OSError as exc:
            if mode == "r":
                raise CropError("no crops store here", self.url) from None
            raise _write_failure(self.url, "the crops store", exc) from None
        except Exception as exc:  # zarr raises several types for "not a group"
            raise CropError(f"not a crops store ({type(exc).__name__}: {exc})", self.url) from None
        if mode == "r" and _ATTR not in self.root.attrs:
            raise CropError("not a cpfeatures crops store (no 'cpfeatures_crops' attribute)", self.url)
        if mode != "r" and _ATTR not in self.root.attrs and any(True for _ in self.root.keys()):
            raise CropError("this Zarr group was written by another program; choose a new crops path", self.url)
        self._attrs: dict[str, dict] = {}

    @property
    def info(self) -> dict:
        """The root attributes (plate, settings, index columns, ...)."""
        return dict(self.root.attrs.get(_ATTR, {}))

    def initialize(self, plate_id: str, settings: CropSettings, source: str | None = None) -> None:
        """Record the plate and settings; a store of another plate or settings is refused."""
        want = {"layout_version": LAYOUT_VERSION, "plate_id": plate_id, **settings.describe(),
                "dtype": "uint16", "scale": SCALE, "index_columns": INDEX_COLUMNS}
        meta = self.info
        if meta:
            if meta.get("layout_version", 0) > LAYOUT_VERSION:
                raise CropError(f"crops layout {meta['layout_version']} is newer than this cpfeatures understands",
                                self.url)
            differ = [k for k, v in want.items() if meta.get(k) != v]
            if differ:
                raise CropError(f"crops store was written with other settings ({', '.join(differ)}: "
                                f"{', '.join(repr(meta.get(k)) for k in differ)}); use a new crops path", self.url)
            return
        try:
            self.root.attrs[_ATTR] = {**want, "source": source, "cpfeatures_version": __version__,
                                      "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self.root.require_group("sites")
        except OSError as exc:
            raise _write_failure(self.url, "the crops store's metadata", exc) from None

    def completed_sites(self) -> list[str]:
        """Keys of the completely written sites, in plate order."""
        self._attrs = completed_attrs(self.root)
        return sorted(self._attrs, key=site_order)

    def site_attrs(self, key: str) -> dict:
        """A site's attributes (plate, well, site, count, arrays, complete)."""
        if key not in self._attrs:
            self._attrs[key] = self.root["sites"][key].attrs.asdict()
        return self._attrs[key]

    def write_site(self, plate_id: str, well: str, fieldno: int, images: np.ndarray, index: np.ndarray,
                   masks: np.ndarray | None = None) -> None:
        """Write one site atomically: arrays first, then ``complete``.

        Raises
        ------
        StoreWriteError
            A write failed; the site is left uncommitted.
        """
        from zarr.codecs import ZstdCodec

        key = site_key(well, fieldno)
        arrays = {"images": np.ascontiguousarray(images, np.uint16), "index": np.asarray(index, np.float64)}
        if masks is not None:
            arrays["masks"] = np.ascontiguousarray(masks, np.uint8)
        try:
            # one chunk per site: neighbouring cells' crops overlap, and one zstd frame over the
            # whole site stores the shared pixels about once (~half the bytes of per-cell chunks)
            commit_site(self.root, key, arrays,
                        {"plate": plate_id, "well": well, "site": int(fieldno), "count": int(len(index))},
                        [ZstdCodec(level=3)], chunks=lambda name, data: (max(data.shape[0], 1),) + data.shape[1:])
        except OSError as exc:
            raise _write_failure(self.url, f"the crops of site {key}", exc) from None
        self._attrs.pop(key, None)

    def read_site(self, key: str, names=("images", "index")) -> dict[str, np.ndarray]:
        """A completed site's arrays by name."""
        group = self.root["sites"][key]
        return {n: group[n][:] for n in names if n in group}

    def read_sites(self, keys: list[str], names=("images", "index")) -> list[dict[str, np.ndarray]]:
        """Several completed sites' arrays, read concurrently (their file reads and decoding overlap)."""
        fetch = site_fetcher(self.root)  # the same layout as the feature store's sites: sites/<key>/<array>
        if fetch is None or len(keys) < 2:  # pragma: no cover - a zarr without the asynchronous API
            return [self.read_site(k, names) for k in keys]
        return [arrays for _, arrays, _ in fetch(list(keys), [list(names)] * len(keys), False)]

    def site_index(self, key: str, index: np.ndarray | None = None) -> pd.DataFrame:
        """A site's index rows as a DataFrame (see :func:`cpfeatures.crops.read_index`)."""
        attrs = self.site_attrs(key)
        values = self.read_site(key, ("index",))["index"] if index is None else index
        return index_frame(attrs, values, self.info.get("index_columns", INDEX_COLUMNS))


def index_frame(attrs: dict, values: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Index rows with the single-cell tables' join keys first."""
    n = len(values)
    frame = pd.DataFrame({
        "Metadata_Plate": [attrs["plate"]] * n, "Metadata_Well": [attrs["well"]] * n,
        "Metadata_Site": np.full(n, int(attrs["site"]), np.int64),
        "Metadata_ObjectNumber": values[:, columns.index("ObjectNumber")].astype(np.int64),
        "Crop_Site": [site_key(attrs["well"], attrs["site"])] * n, "Crop_Row": np.arange(n, dtype=np.int64),
    })
    for i, name in enumerate(columns):
        if name == "ObjectNumber":
            continue
        col = values[:, i]
        frame[f"Crop_{name}"] = col.astype(np.int64) if name.startswith("Box_") else \
            col.astype(bool) if name == "Clipped" else col
    return frame


# -- what `cpfeatures run --save-crops` adds to a plate run (through the hook above) ---------------

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

    corrected = correct_images({r: images[r] for r in settings.channels if r in images}, illum)
    tables = result.tables
    if "Cells" not in tables or "Nuclei" not in tables:
        raise CpfeaturesError(f"site {site_key(well, fieldno)}: crops need the Nuclei and Cells tables")
    crops, masks, index = site_crops(corrected, result.labels, tables["Nuclei"], tables["Cells"], settings)
    CropStore(settings.path, mode="a").write_site(plate_id, well, fieldno, crops, index, masks)
