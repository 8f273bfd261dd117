"""The crops store (crops/_write.py): atomic sites, resumable, refuses other settings and foreign folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from cpfeatures.crops import CropError, CropSettings, CropStore, read_index
from cpfeatures.crops._write import default_path


def _site(n: int, seed: int, channels: int = 5, size: int = 8):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 65535, size=(n, channels, size, size), dtype=np.uint16)
    index = np.zeros((n, 8))
    index[:, 0] = np.arange(1, n + 1)
    index[:, 1:3] = rng.uniform(0, 100, size=(n, 2))
    return images, index


def test_written_site_reads_back_and_an_incomplete_one_is_invisible_then_rewritten(tmp_path):
    st = CropStore(tmp_path / "c.zarr", mode="a")
    st.initialize("P1", CropSettings(size=8))
    images, index = _site(3, 0)
    st.write_site("P1", "A01", 1, images, index)
    # a worker killed mid-write: arrays there, no "complete"
    group = zarr.open_group(st.url, mode="a").require_group("sites").create_group("A01_f2")
    group.create_array("images", data=images[:1])
    assert st.completed_sites() == ["A01_f1"]
    back = st.read_site("A01_f1", ("images", "index"))
    np.testing.assert_array_equal(back["images"], images)
    np.testing.assert_array_equal(back["index"], index)
    st.write_site("P1", "A01", 2, images[:2], index[:2])
    assert st.completed_sites() == ["A01_f1", "A01_f2"]
    assert CropStore(st.url).read_site("A01_f2")["images"].shape == (2, 5, 8, 8)
    frame = read_index(st.url)
    assert list(frame["Crop_Site"]) == ["A01_f1"] * 3 + ["A01_f2"] * 2
    assert list(frame["Metadata_ObjectNumber"]) == [1, 2, 3, 1, 2] and list(frame["Crop_Row"]) == [0, 1, 2, 0, 1]
    # the site's recorded checksum is that of what was written
    meta = json.loads((tmp_path / "c.zarr" / "sites" / "A01_f1" / "zarr.json").read_text())["attributes"]
    from cpfeatures.store import checksum

    assert meta["arrays"]["images"]["crc32"] == checksum(images) and meta["complete"] is True


def test_one_chunk_per_site_and_empty_sites(tmp_path):
    st = CropStore(tmp_path / "c.zarr", mode="a")
    st.initialize("P1", CropSettings(size=8))
    st.write_site("P1", "A01", 1, *_site(7, 1))
    st.write_site("P1", "A02", 1, *_site(0, 2))
    arr = zarr.open_array(tmp_path / "c.zarr" / "sites" / "A01_f1" / "images", mode="r")
    assert arr.chunks == arr.shape == (7, 5, 8, 8)
    chunk_files = [p for p in (tmp_path / "c.zarr" / "sites" / "A01_f1" / "images").rglob("*") if p.is_file()
                   and p.name != "zarr.json"]
    assert len(chunk_files) == 1
    assert st.read_site("A02_f1")["images"].shape == (0, 5, 8, 8)
    assert len(read_index(st.url)) == 7


def test_other_settings_plates_and_foreign_folders_are_refused(tmp_path):
    st = CropStore(tmp_path / "c.zarr", mode="a")
    st.initialize("P1", CropSettings())
    st.initialize("P1", CropSettings())  # the same: resumes
    for other, word in ((CropSettings(mode="bbox"), "mode"), (CropSettings(border="skip"), "border"),
                        (CropSettings(masks=True), "masks"), (CropSettings(channels=("DNA",)), "channels")):
        with pytest.raises(CropError, match=word):
            CropStore(st.url, mode="a").initialize("P1", other)
    with pytest.raises(CropError, match="plate_id"):
        st.initialize("P2", CropSettings())
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(foreign, mode="w").create_array("x", data=np.zeros(3))
    with pytest.raises(CropError, match="another program"):
        CropStore(foreign, mode="a")
    with pytest.raises(CropError, match="not a cpfeatures crops store"):
        CropStore(foreign)
    with pytest.raises(CropError):
        CropStore(tmp_path / "missing.zarr")


def test_default_path_beside_the_store():
    assert default_path("/data/run.zarr") == "/data/run.crops.zarr"
    assert default_path("s3://bucket/run.zarr/") == "s3://bucket/run.crops.zarr"
    assert default_path("/data/run") == "/data/run.crops.zarr"
