"""Reading crops: the index table, batches (:func:`iter_crops`) and a map-style dataset (numpy only)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ._extract import SCALE
from ._write import CropStore, index_frame

__all__ = ["read_index", "iter_crops", "CropDataset", "open_crops"]

_DTYPES = ("uint16", "float32")
#: Sites read at once by :func:`iter_crops` without shuffling.
READ_AHEAD = 4


def open_crops(path: "str | os.PathLike | CropStore") -> CropStore:
    """A :class:`CropStore` for reading (or the store itself)."""
    return path if isinstance(path, CropStore) else CropStore(path)


def read_index(path: "str | os.PathLike | CropStore", sites: Sequence[str] | None = None) -> pd.DataFrame:
    """Every crop's index row, in store order (site by site, then ``Crop_Row``).

    Columns: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site``,
    ``Metadata_ObjectNumber`` (the single-cell tables' join keys), ``Crop_Site``
    (``D08_f5``), ``Crop_Row`` (position in the site's arrays), ``Crop_Center_X/Y`` (the
    nucleus centre, image pixels), ``Crop_Box_MinX/MinY/MaxX/MaxY`` (the square box cut,
    half-open, image pixels; beyond the image where ``Crop_Clipped``), ``Crop_Clipped``
    (part of the box lies outside the image and was zero-padded).

    Examples
    --------
    >>> index = read_index("example.crops.zarr")  # doctest: +SKIP
    >>> cells = Store("example.zarr").single_cells().merge(index, on=KEYS)  # doctest: +SKIP
    """
    store = open_crops(path)
    keys = store.completed_sites() if sites is None else list(sites)
    columns = store.info.get("index_columns")
    frames = [index_frame(store.site_attrs(k), store.read_site(k, ("index",))["index"], columns) for k in keys]
    if not frames:
        return index_frame({"plate": "", "well": "", "site": 0}, np.zeros((0, len(columns))), columns)
    return pd.concat(frames, ignore_index=True)


def _channel_positions(store: CropStore, channels: Sequence[str] | None) -> list[int] | None:
    have = list(store.info.get("channels", []))
    if channels is None:
        return None
    unknown = [c for c in channels if c not in have]
    if unknown:
        raise InputError(f"{store.url}: channel(s) {', '.join(unknown)} not in the crops (channels: "
                         f"{', '.join(have)})")
    return [have.index(c) for c in channels]


def _convert(images: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint16":
        return images
    return images.astype(np.float32) / np.float32(SCALE)


def _check_dtype(dtype: str) -> str:
    if dtype not in _DTYPES:
        raise InputError(f"dtype {dtype!r}: use one of {', '.join(_DTYPES)}")
    return dtype


def iter_crops(path: "str | os.PathLike | CropStore", batch_size: int = 256, channels: Sequence[str] | None = None,
               shuffle: bool = False, seed: int | None = None, sites: Sequence[str] | None = None,
               masks: bool = False, dtype: str = "uint16", shuffle_sites: int = 8,
               drop_last: bool = False) -> Iterator[tuple]:
    """Crops in batches, reading one site's chunk at a time (numpy only).

    Parameters
    ----------
    path : path-like or CropStore
        A crops store.
    batch_size : int
        Crops per batch (the last one may be smaller unless ``drop_last``). Memory is a batch
        plus the sites read at once (4, or ``shuffle_sites``).
    channels : list of str, optional
        Channels to return, in this order (default: all, in the store's order).
    shuffle : bool
        Visit sites in a random order and mix the crops of ``shuffle_sites`` sites at a time.
    seed : int, optional
        Seed of the shuffle (same seed, same order).
    sites : list of str, optional
        Only these sites.
    masks : bool
        Also yield the masks (the store must have them).
    dtype : {"uint16", "float32"}
        ``uint16`` as stored, or ``float32`` intensities (``uint16 / 65535``, the corrected image).
    shuffle_sites : int
        With ``shuffle``: sites whose crops are mixed together (memory is this many sites).
    drop_last : bool
        Leave out a last, smaller batch.

    Yields
    ------
    (crops, index) or (crops, masks, index)
        ``crops`` ``(b, channels, size, size)``; ``masks`` ``(b, 2, size, size)`` uint8 (Nuclei,
        Cells); ``index`` the batch's rows of :func:`read_index`.

    Examples
    --------
    >>> for crops, index in iter_crops("example.crops.zarr", batch_size=32):  # doctest: +SKIP
    ...     model(crops)
    """
    store = open_crops(path)
    _check_dtype(dtype)
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size}: must be at least 1")
    pick = _channel_positions(store, channels)
    if masks and not store.info.get("masks"):
        raise InputError(f"{store.url}: these crops were written without masks")
    keys = store.completed_sites() if sites is None else list(sites)
    rng = np.random.default_rng(seed)
    if shuffle:
        keys = [keys[i] for i in rng.permutation(len(keys))]
    # sites read together: the shuffle's mixing group, or a few read ahead (their reads overlap)
    group = max(1, int(shuffle_sites)) if shuffle else READ_AHEAD
    columns = store.info.get("index_columns")
    names = ("images", "index", "masks") if masks else ("images", "index")
    pending: list[tuple] = []  # (images, masks, index frame) not yet yielded
    held = 0
    for start in range(0, len(keys), group):
        parts = []
        chunk = keys[start:start + group]
        for key, arrays in zip(chunk, store.read_sites(chunk, names)):
            images = arrays["images"] if pick is None else arrays["images"][:, pick]
            parts.append((images, arrays.get("masks"), index_frame(store.site_attrs(key), arrays["index"], columns)))
        if shuffle and parts:
            images = np.concatenate([p[0] for p in parts])
            mks = np.concatenate([p[1] for p in parts]) if masks else None
            frame = pd.concat([p[2] for p in parts], ignore_index=True)
            order = rng.permutation(len(images))
            parts = [(images[order], None if mks is None else mks[order], frame.iloc[order].reset_index(drop=True))]
        pending.extend(parts)
        held += sum(len(p[0]) for p in parts)
        while held >= batch_size:
            batch, pending, held = _take(pending, batch_size, held)
            yield _out(batch, masks, dtype)
    if held and not drop_last:
        batch, pending, held = _take(pending, held, held)
        yield _out(batch, masks, dtype)


def _take(pending: list[tuple], n: int, held: int) -> tuple[tuple, list[tuple], int]:
    """The first ``n`` crops of the pending parts, and what is left."""
    out_images, out_masks, out_frames, taken = [], [], [], 0
    rest = []
    for images, mks, frame in pending:
        if taken >= n:
            rest.append((images, mks, frame))
            continue
        k = min(n - taken, len(images))
        out_images.append(images[:k])
        out_masks.append(None if mks is None else mks[:k])
        out_frames.append(frame.iloc[:k])
        if k < len(images):
            rest.append((images[k:], None if mks is None else mks[k:], frame.iloc[k:]))
        taken += k
    masks = None if out_masks[0] is None else np.concatenate(out_masks)
    return (np.concatenate(out_images), masks, pd.concat(out_frames, ignore_index=True)), rest, held - taken


def _out(batch: tuple, masks: bool, dtype: str) -> tuple:
    images, mks, frame = batch
    images = _convert(images, dtype)
    return (images, mks, frame) if masks else (images, frame)


class CropDataset:
    """A map-style dataset of crops: ``len(ds)`` and ``ds[i]``, usable by ``torch.utils.data.DataLoader``.

    It needs neither torch nor anything but numpy: items are dicts of numpy arrays and ints,
    which the DataLoader's default collate turns into tensors. Item ``i`` is row ``i`` of
    :attr:`index` (:func:`read_index`). Reading item ``i`` reads its site's chunk; the last
    ``cache_sites`` sites read are kept, so visiting the cells site by site
    (:meth:`site_order`) reads each site once per epoch.

    Parameters
    ----------
    path : path-like
        A crops store.
    channels : list of str, optional
        Channels, in this order (default: all).
    masks : bool
        Items also carry ``"masks"``.
    dtype : {"float32", "uint16"}
        ``float32``: corrected intensities (``uint16 / 65535``).
    transform : callable, optional
        Applied to each item's image array.
    cache_sites : int
        Sites kept in memory.

    Examples
    --------
    >>> ds = CropDataset("example.crops.zarr", channels=["DNA", "RNA"])  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=ds.site_order(seed=0))  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, channels: Sequence[str] | None = None, masks: bool = False,
                 dtype: str = "float32", transform=None, cache_sites: int = 4):
        store = open_crops(path)
        self.url = store.url
        self.dtype = _check_dtype(dtype)
        self.channels = list(channels) if channels is not None else list(store.info.get("channels", []))
        self._pick = _channel_positions(store, channels)
        if masks and not store.info.get("masks"):
            raise InputError(f"{store.url}: these crops were written without masks")
        self.masks = masks
        self.transform = transform
        self.cache_sites = max(1, int(cache_sites))
        self.index = read_index(store)
        self._sites = self.index["Crop_Site"].to_numpy()
        self._rows = self.index["Crop_Row"].to_numpy()
        self._store: CropStore | None = store
        self._pid = os.getpid()
        self._cache: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self):  # DataLoader workers get a copy without the open store or the cache
        state = dict(self.__dict__)
        state["_store"], state["_cache"] = None, OrderedDict()
        return state

    def _site(self, key: str) -> dict[str, np.ndarray]:
        if self._store is None or self._pid != os.getpid():  # a fresh handle in each worker process
            self._store, self._pid, self._cache = CropStore(self.url), os.getpid(), OrderedDict()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        arrays = self._store.read_site(key, ("images", "masks") if self.masks else ("images",))
        if self._pick is not None:
            arrays["images"] = arrays["images"][:, self._pick]
        self._cache[key] = arrays
        while len(self._cache) > self.cache_sites:
            self._cache.popitem(last=False)
        return arrays

    def __getitem__(self, i: int) -> dict:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"crop {i} out of range ({n} crops)")
        i = int(i) % n
        arrays = self._site(self._sites[i])
        image = _convert(arrays["images"][self._rows[i]], self.dtype)
        if self.transform is not None:
            image = self.transform(image)
        item = {"image": image, "index": i}
        if self.masks:
            item["masks"] = arrays["masks"][self._rows[i]]
        return item

    def site_order(self, seed: int | None = None) -> list[int]:
        """Every item once, sites in a random order and cells shuffled within each site.

        Pass it as a DataLoader's ``sampler``: each site is read once per epoch.
        """
        rng = np.random.default_rng(seed)
        order: list[int] = []
        starts = np.flatnonzero(np.r_[True, self._sites[1:] != self._sites[:-1]])
        ends = np.r_[starts[1:], len(self._sites)]
        for s in rng.permutation(len(starts)):
            order.extend((starts[s] + rng.permutation(ends[s] - starts[s])).tolist())
        return order

