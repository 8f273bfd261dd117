"""The image contract shared by every family (_objects.as_image): integers are divided by their
type's maximum as CellProfiler loads them, floats must be in [0, 1]; and the per-site memo."""

from __future__ import annotations

import numpy as np
import pytest

from cpfeatures import measure
from cpfeatures.errors import InputError
from cpfeatures.measure._objects import as_image, memo


def _calls(labels, image):
    """Every public function that takes an image, on one image."""
    return {
        "intensity": lambda im: measure.intensity(labels, im),
        "texture": lambda im: measure.texture(labels, im, scales=[3]),
        "texture_image": lambda im: measure.texture_image(im, scales=[3]),
        "granularity": lambda im: measure.granularity(labels, im, spectrum_length=4),
        "granularity_image": lambda im: measure.granularity_image(im, spectrum_length=4),
        "radial": lambda im: measure.radial(labels, im),
        "colocalization": lambda im: measure.colocalization(labels, im, image.astype(np.float32) / 65535),
        "image_quality": lambda im: {k: v for k, v in measure.image_quality(im, scales=[5]).items()
                                     if k != "ImageQuality_Scaling"},
    }


@pytest.fixture(scope="module")
def site():
    rng = np.random.default_rng(7)
    labels = np.zeros((48, 48), np.int32)
    labels[4:20, 4:24], labels[26:44, 10:40] = 1, 2
    raw = rng.integers(500, 40000, (48, 48)).astype(np.uint16)
    return labels, raw


@pytest.mark.parametrize("name", list(_calls(np.zeros((2, 2), int), np.zeros((2, 2))).keys()))
def test_integer_images_mean_what_cellprofiler_loads(site, name):
    """uint16 and uint8 give exactly the float32 image / type maximum (texture used to give all zeros)."""
    labels, raw = site
    call = _calls(labels, raw)[name]
    want = call(raw.astype(np.float32) / np.float32(65535))
    for got in (call(raw),):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=key)
    small = (raw // 257).astype(np.uint8)
    want8 = call(small.astype(np.float32) / np.float32(255))
    got8 = call(small)
    for key in want8:
        np.testing.assert_array_equal(np.asarray(got8[key]), np.asarray(want8[key]), err_msg=key)
    texture = measure.texture(labels, raw, scales=[3])
    assert np.any(np.asarray(texture["Texture_Contrast_3_00_256"]) != 0)  # no longer silently zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floats_are_used_as_they_are(site, dtype):
    labels, raw = site
    image = (raw / 65535).astype(dtype)
    assert as_image(image) is image
    out = measure.intensity(labels, image)
    expected = [image[labels == k].astype(np.float64).mean() for k in (1, 2)]
    np.testing.assert_allclose(out["Intensity_MeanIntensity"], expected, rtol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (np.full((48, 48), 1.5), r"values in \[1.5, 1.5\]; float images must be in \[0, 1\]"),
    (np.full((48, 48), -0.1), "must be in"),
    (np.full((48, 48), np.nan), "NaN or infinite"),
    (np.zeros((48, 48), complex), "must be numeric"),
    (np.zeros((47, 48)), "differs from label shape"),
])
def test_out_of_range_images_are_refused_by_every_family(site, bad, message):
    labels, raw = site
    for name, call in _calls(labels, raw).items():
        if bad.shape != labels.shape and name.endswith("_image") or bad.shape != labels.shape and name == "image_quality":
            continue  # image-only functions have no labels to disagree with
        with pytest.raises(InputError, match=message):
            call(bad)


def test_memo_keeps_the_array_and_checks_identity():
    cache: dict = {}
    a = np.zeros(3)
    calls = []
    assert memo(cache, "k", a, lambda: calls.append(1) or "first") == "first"
    assert memo(cache, "k", a, lambda: calls.append(1) or "again") == "first" and len(calls) == 1
    b = np.zeros(3)  # equal content, another array: recomputed
    assert memo(cache, "k", b, lambda: "second") == "second"
    assert cache["k"][0] is b
    assert memo(None, "k", a, lambda: "no cache") == "no cache"
