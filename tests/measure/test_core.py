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

    from cpfeatures.measure import Objects
    from cpfeatures.measure import _objects as objects_module

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



def test_registry_holds_callables_and_an_import_error_surfaces(tmp_path):
    """A family whose code cannot be imported fails loudly, never vanishes from "all"."""
    import subprocess
    import sys

    from cpfeatures.measure import FAMILIES, IMAGE_FAMILIES

    assert list(FAMILIES) == ["intensity", "texture", "granularity", "sizeshape", "radial", "colocalization",
                              "neighbors"]
    assert all(callable(f.objects) and callable(f.function) for f in FAMILIES.values())
    assert all(callable(f.image) for f in IMAGE_FAMILIES.values())
    # mahotas-free, numba-free: simulate a broken dependency of one family's module
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def broken(name, *a, **k):\n"
            "    if name.endswith('_granularity_kernels') or name == '_granularity_kernels':\n"
            "        raise ImportError('libfoo.so: cannot open shared object file')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = broken\n"
            "from cpfeatures.measure import measure_objects\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "libfoo.so" in done.stderr


def test_a_cache_reused_for_the_next_site_recomputes():
    """Regression: texture keyed its quantized images by ``id(image)`` without keeping the array, so a
    long-lived cache returned the previous site's values once an id was reused."""
    import gc

    rng = np.random.default_rng(1)
    labels = np.zeros((32, 32), np.int32)
    labels[4:28, 4:28] = 1
    cache: dict = {}
    for site in range(6):
        image = rng.random((32, 32)).astype(np.float32)
        got = measure_objects(labels, {"DNA": image}, families=["texture", "granularity"], cache=cache)
        fresh = measure_objects(labels, {"DNA": image}, families=["texture", "granularity"])
        np.testing.assert_array_equal(got.to_numpy(), fresh.to_numpy(), err_msg=f"site {site}")
        del image, got, fresh
        gc.collect()  # the next site's array may now reuse the freed one's address (its id)


def test_unknown_settings_and_families_are_refused():
    labels = np.zeros((8, 8), int)
    labels[2:6, 2:6] = 1
    with pytest.raises(InputError, match=r"unknown texture setting 'scale' \(did you mean 'scales'\?\)"):
        measure_objects(labels, {"A": np.ones((8, 8)) * 0.5}, families=["texture"], settings={"texture": {"scale": 5}})
    with pytest.raises(InputError, match="settings for unknown family 'txture'"):
        measure_objects(labels, {"A": np.ones((8, 8)) * 0.5}, settings={"txture": {}})
