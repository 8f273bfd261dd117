"""Crop extraction (crops/_extract.py, crops/_site.py) against plain slicing of independently corrected
real images, and skimage's resize for bbox mode."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import resize

from cpfeatures.crops import CropSettings, crop_boxes, extract_crops, site_crops
from cpfeatures.store import Store

from .conftest import oracle_stack, oracle_uint16, padded_box

ROLES = ["DNA", "ER", "RNA", "AGP", "Mito"]


@pytest.fixture(scope="module")
def d08(crops_run, bundled_plate_dir):
    store = Store(crops_run[0])
    illum = store.read_illum()
    return {"stack": oracle_stack(bundled_plate_dir, "D08", ROLES, illum),
            "corrected": dict(zip(ROLES, oracle_stack(bundled_plate_dir, "D08", ROLES, illum))),
            "labels": store.site_labels("D08_f5"), "nuclei": store.site_table("D08_f5", "nuclei"),
            "cells": store.site_table("D08_f5", "cells")}


def test_centre_crops_are_the_corrected_image_sliced_around_the_nucleus_centre(d08):
    size = 64
    crops, masks, index = site_crops(d08["corrected"], d08["labels"], d08["nuclei"], d08["cells"],
                                     CropSettings(size=size, masks=True))
    cells, nuclei = d08["cells"], d08["nuclei"]
    assert len(crops) == len(cells) == 14 and crops.dtype == np.uint16 and crops.shape[1:] == (5, size, size)
    clipped = 0
    for i, obj in enumerate(cells["Metadata_ObjectNumber"]):
        row = nuclei[nuclei["Metadata_ObjectNumber"] == obj].iloc[0]
        x0 = int(np.floor(row["Nuclei_Location_Center_X"] + 0.5)) - size // 2
        y0 = int(np.floor(row["Nuclei_Location_Center_Y"] + 0.5)) - size // 2
        assert index[i, 0] == obj and tuple(index[i, 3:7]) == (x0, y0, x0 + size, y0 + size)
        np.testing.assert_array_equal(crops[i], oracle_uint16(padded_box(d08["stack"], x0, y0, size)))
        np.testing.assert_array_equal(masks[i, 0], padded_box(d08["labels"]["Nuclei"], x0, y0, size) == obj)
        np.testing.assert_array_equal(masks[i, 1], padded_box(d08["labels"]["Cells"], x0, y0, size) == obj)
        outside = x0 < 0 or y0 < 0 or x0 + size > 540 or y0 + size > 540
        assert index[i, 7] == outside
        clipped += outside
    assert 0 < clipped < len(cells)  # both kinds are tested
    # decoded (uint16 / 65535), a crop is the corrected intensity to within half a uint16 step
    x0, y0 = (int(v) for v in index[0, 3:5])
    err = np.abs(crops[0] / 65535.0 - padded_box(d08["stack"], x0, y0, size))
    assert err.max() <= 0.5 / 65535 + 1e-9 and crops[0].max() > 1000


def test_skip_leaves_out_exactly_the_cells_whose_box_leaves_the_image(d08):
    pad = site_crops(d08["corrected"], None, d08["nuclei"], d08["cells"], CropSettings(size=64))
    skip = site_crops(d08["corrected"], None, d08["nuclei"], d08["cells"], CropSettings(size=64, border="skip"))
    inside = ~pad[2][:, 7].astype(bool)
    np.testing.assert_array_equal(skip[2], pad[2][inside])
    np.testing.assert_array_equal(skip[0], pad[0][inside])
    assert 0 < len(skip[0]) < len(pad[0])


def test_bbox_crops_equal_skimage_resize_of_the_squared_cell_box(d08):
    size = 48
    crops, masks, index = site_crops(d08["corrected"], d08["labels"], d08["nuclei"], d08["cells"],
                                     CropSettings(size=size, mode="bbox", masks=True))
    cells = d08["cells"]
    exact = 0
    for i, obj in enumerate(cells["Metadata_ObjectNumber"]):
        c = cells.iloc[i]
        minx, miny = int(c["Cells_AreaShape_BoundingBoxMinimum_X"]), int(c["Cells_AreaShape_BoundingBoxMinimum_Y"])
        w = int(c["Cells_AreaShape_BoundingBoxMaximum_X"]) - minx
        h = int(c["Cells_AreaShape_BoundingBoxMaximum_Y"]) - miny
        side = max(w, h)
        x0, y0 = minx - (side - w) // 2, miny - (side - h) // 2
        assert tuple(index[i, 3:7]) == (x0, y0, x0 + side, y0 + side)
        box = padded_box(d08["stack"], x0, y0, side).astype(np.float64)
        want = oracle_uint16(np.stack([resize(b, (size, size), order=1, mode="edge", anti_aliasing=False,
                                              preserve_range=True) for b in box]))
        # float32 vs skimage's float64 arithmetic: at most one uint16 step, at rounding boundaries
        assert np.abs(crops[i].astype(int) - want).max() <= 1
        exact += np.mean(crops[i] == want)
        mask = padded_box(d08["labels"]["Cells"], x0, y0, side) == obj
        np.testing.assert_array_equal(masks[i, 1], resize(mask, (size, size), order=0, mode="edge",
                                                          anti_aliasing=False, preserve_range=True))
    assert exact / len(cells) > 0.99


def test_boxes_and_edge_cases():
    assert crop_boxes("centre", 5, np.array([2.5, 2.49]), np.array([0.0, 0.0])).tolist() == [[1, -2, 5], [0, -2, 5]]
    assert crop_boxes("bbox", 8, np.zeros(1), np.zeros(1), np.array([[10, 20, 13, 30]])).tolist() == [[7, 20, 10]]
    crops, masks = extract_crops(np.ones((2, 10, 10)), np.zeros((0, 3), np.int64), 4,
                                 np.zeros((10, 10), np.int32), np.zeros(0))
    assert crops.shape == (0, 2, 4, 4) and masks.shape == (0, 1, 4, 4)
    # a box wholly outside the image is all zeros (padding); a corner box keeps the corner's pixels
    image = np.arange(100, dtype=np.float64).reshape(1, 10, 10) / 100
    crops, _ = extract_crops(image, np.array([[-20, -20, 4], [-2, -2, 4]]), 4)
    assert not crops[0].any()
    np.testing.assert_array_equal(crops[1, 0, 2:, 2:], oracle_uint16(image[0, :2, :2]))
    assert not crops[1, 0, :2].any() and not crops[1, 0, :, :2].any()


def test_bad_settings_are_refused():
    from cpfeatures.errors import CpfeaturesError

    for bad in ({"mode": "middle"}, {"border": "wrap"}, {"size": 1}, {"channels": ()}):
        with pytest.raises(CpfeaturesError):
            CropSettings(**bad)
    with pytest.raises(CpfeaturesError, match="images must be stacked"):
        extract_crops(np.zeros((10, 10)), np.zeros((1, 3), np.int64), 4)
