"""measure_objects: one table per object set with CellProfiler column names."""

from __future__ import annotations

import numpy as np
import pytest

from cpfeatures.errors import InputError
from cpfeatures.measure import measure_objects
from cpfeatures.measure import Objects, available_families, intensity


def test_columns_and_rows():
    labels = np.zeros((10, 10), int)
    labels[1:3, 1:3] = 1
    labels[5:9, 5:9] = 3
    images = {"DNA": np.random.default_rng(0).random((10, 10)), "RNA": np.full((10, 10), 0.5)}
    frame = measure_objects(labels, images, families=["intensity"])
    assert list(frame["ObjectNumber"]) == [1, 3]  # only ids present
    assert frame.columns[0] == "ObjectNumber"
    assert "Intensity_MeanIntensity_DNA" in frame and "Location_MaxIntensity_X_RNA" in frame
    direct = intensity(labels, images["DNA"])["Intensity_MeanIntensity"][[0, 2]]
    np.testing.assert_array_equal(frame["Intensity_MeanIntensity_DNA"], direct)


def test_prepared_objects_are_reused():
    labels = np.zeros((10, 10), int)
    labels[2:6, 2:6] = 1
    objects = Objects(labels)
    measure_objects(objects, {"A": np.ones((10, 10)) * 0.1, "B": np.ones((10, 10)) * 0.2})
    assert ("intensity", "edge") in objects._cache


def test_unknown_family():
    with pytest.raises(InputError, match="valid"):
        measure_objects(np.zeros((4, 4), int), {}, families=["telepathy"])
    assert "intensity" in available_families()


def test_objects_arrays_have_numpys_own_dtypes(monkeypatch):
    # Arrays made by a kernel loaded from numba's on-disk cache carry an unpickled dtype: equal to
    # numpy's int64 but another instance, which sends numpy's ufunc.at (used for bounding boxes) down
    # a generic path ~20x slower. Objects must hand out numpy's own instances.
    import pickle

    import numpy as np

    from cpfeatures.measure import Objects, objects as objects_module

    unpickled = pickle.loads(pickle.dumps(np.dtype(np.int64)))
    assert unpickled is not np.dtype(np.int64)
    kernel = objects_module._group_by_label

    def as_from_cache(flat, count):
        order, offsets = kernel(flat, count)
        return order.view(unpickled), offsets.view(unpickled)

    monkeypatch.setattr(objects_module, "_group_by_label", as_from_cache)

    labels = np.zeros((20, 30), np.int32)
    labels[2:5, 3:9] = 1
    labels[10:15, 20:28] = 3
    objects = Objects(labels)
    for array in (objects.order, objects.offsets, objects.rows, objects.cols, objects.area):
        assert array.dtype is np.dtype(np.int64)
    assert objects.bbox.tolist() == [[2, 3, 5, 9], [0, 0, 0, 0], [10, 20, 15, 28]]
