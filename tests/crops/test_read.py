"""Reading crops (crops/_read.py): iter_crops batches and CropDataset, checked against the arrays written."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cpfeatures.crops import CropDataset, CropSettings, CropStore, iter_crops, read_index
from cpfeatures.errors import InputError

SIZES = {"A01_f1": 5, "A01_f2": 0, "A02_f1": 7, "B03_f4": 3}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A small crops store with masks: per site, crop j of channel c is filled with a value unique to it."""
    url = tmp_path_factory.mktemp("crops_read") / "c.zarr"
    st = CropStore(url, mode="a")
    st.initialize("P1", CropSettings(size=4, masks=True, channels=("DNA", "ER", "RNA")))
    truth = {}
    for s, (key, n) in enumerate(SIZES.items()):
        well, fieldno = key.split("_f")
        values = (1000 * s + 10 * np.arange(n)[:, None] + np.arange(3)[None, :]).astype(np.uint16)
        images = np.broadcast_to(values[:, :, None, None], (n, 3, 4, 4)).copy()
        masks = np.zeros((n, 2, 4, 4), np.uint8)
        masks[:, 1, :2] = 1
        index = np.zeros((n, 8))
        index[:, 0] = np.arange(1, n + 1) * 2  # object numbers need not be the rows
        st.write_site("P1", well, int(fieldno), images, index, masks)
        truth[key] = images
    return url, truth


def _all(truth):
    return np.concatenate([truth[k] for k in SIZES])


def test_batches_in_store_order_cover_every_crop_once(written):
    url, truth = written
    batches = list(iter_crops(url, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 4, 3]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), _all(truth))
    index = read_index(url)
    got = np.concatenate([b[1][["Crop_Site", "Crop_Row", "Metadata_ObjectNumber"]].to_numpy() for b in batches])
    np.testing.assert_array_equal(got, index[["Crop_Site", "Crop_Row", "Metadata_ObjectNumber"]].to_numpy())
    assert [len(b[0]) for b in iter_crops(url, batch_size=4, drop_last=True)] == [4, 4, 4]


def test_shuffle_is_a_seeded_permutation_and_rows_stay_with_their_crops(written):
    url, truth = written
    index = read_index(url)

    def run(seed):
        parts = list(iter_crops(url, batch_size=5, shuffle=True, seed=seed, shuffle_sites=2))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1]["Crop_Site"] + ":" +
                                                                      p[1]["Crop_Row"].astype(str) for p in parts])
    crops, ids = run(1)
    assert sorted(ids) == sorted(index["Crop_Site"] + ":" + index["Crop_Row"].astype(str))
    for crop, ident in zip(crops, ids):  # each crop is still the one its index row names
        key, row = ident.split(":")
        np.testing.assert_array_equal(crop, truth[key][int(row)])
    again, ids_again = run(1)
    np.testing.assert_array_equal(again, crops)
    assert list(ids_again) == list(ids)
    assert list(run(2)[1]) != list(ids) and list(ids) != list(index["Crop_Site"] + ":" + index["Crop_Row"].astype(str))


def test_channels_dtype_masks_and_sites(written):
    url, truth = written
    crops, masks, frame = next(iter_crops(url, batch_size=100, channels=["RNA", "DNA"], masks=True,
                                          dtype="float32", sites=["A02_f1"]))
    assert crops.dtype == np.float32 and crops.shape == (7, 2, 4, 4) and len(frame) == 7
    np.testing.assert_array_equal(crops, truth["A02_f1"][:, [2, 0]].astype(np.float32) / np.float32(65535))
    assert masks.shape == (7, 2, 4, 4) and masks[:, 1, :2].all() and not masks[:, 0].any()
    with pytest.raises(InputError, match="Mito"):
        next(iter_crops(url, channels=["Mito"]))
    with pytest.raises(InputError, match="dtype"):
        next(iter_crops(url, dtype="float16"))


def test_dataset_items_equal_the_written_crops_and_work_through_a_loader_protocol(written):
    url, truth = written
    ds = CropDataset(url, channels=["ER"], masks=True)
    assert len(ds) == sum(SIZES.values()) == len(ds.index)
    everything = _all(truth)
    for i in (0, 4, 5, 11, 14, -1):
        item = ds[i]
        np.testing.assert_array_equal(item["image"], everything[i, [1]].astype(np.float32) / 65535)
        assert item["masks"].shape == (2, 4, 4)
    with pytest.raises(IndexError):
        ds[len(ds)]
    # what torch's DataLoader does with a map-style dataset: a sampler's indices, items collated by stacking,
    # the dataset pickled to worker processes (without its open store or its cache)
    order = ds.site_order(seed=3)
    assert sorted(order) == list(range(len(ds)))
    sites = ds.index["Crop_Site"].to_numpy()[order]
    assert sum(sites[1:] != sites[:-1]) == 2  # each of the three non-empty sites visited in one run
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._cache == {} and copy._store is None
    batch = np.stack([copy[i]["image"] for i in order[:6]])
    np.testing.assert_array_equal(batch, everything[order[:6]][:, [1]].astype(np.float32) / 65535)
    uint = CropDataset(url, dtype="uint16", transform=lambda a: a[:, :2, :2])
    assert uint[3]["image"].dtype == np.uint16 and uint[3]["image"].shape == (3, 2, 2)
    assert len(uint._cache) <= uint.cache_sites
