"""MaskImage and MeasureImageIntensity against two oracles: CellProfiler 4.2.8's own module tests
(``tests/modules/test_measureimageintensity.py`` and ``test_maskimage.py`` at tag v4.2.8, rewritten)
and CellProfiler 4.2.8's Image table on the 7 real shared sites (``reference/cellprofiler_jump_v3``)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from skimage.morphology import ball

from cpfeatures.errors import InputError
from cpfeatures.measure import IMAGE_INTENSITY_FEATURES, image_intensity, mask_image


def _names(*percentiles):
    return [f"Intensity_{f}" for f in IMAGE_INTENSITY_FEATURES] + [f"Intensity_Percentile_{p}" for p in percentiles]


# ---- CellProfiler's test_measureimageintensity.py (module with percentiles "10, 50, 90") ----

def test_volume_zeros():  # test_volume_zeros
    got = image_intensity(np.zeros((10, 10, 10)), percentiles=(10, 50, 90))
    expected = dict.fromkeys(_names(10, 50, 90), 0.0)
    expected.update(Intensity_TotalArea=1000.0, Intensity_PercentMaximal=100.0)
    assert got == expected


def test_volume():  # test_volume (ball(3) set with convert=False: its 0/1 values as they are)
    got = image_intensity(ball(3).astype(np.float64), percentiles=(10, 50, 90))
    assert got == {
        "Intensity_TotalIntensity": 123.0, "Intensity_MeanIntensity": 0.358600583090379,
        "Intensity_MedianIntensity": 0.0, "Intensity_StdIntensity": 0.47958962134059907,
        "Intensity_MADIntensity": 0.0, "Intensity_MaxIntensity": 1.0, "Intensity_MinIntensity": 0.0,
        "Intensity_TotalArea": 343.0, "Intensity_PercentMaximal": 35.8600583090379,
        "Intensity_UpperQuartileIntensity": 1.0, "Intensity_LowerQuartileIntensity": 0.0,
        "Intensity_Percentile_10": 0.0, "Intensity_Percentile_50": 0.0, "Intensity_Percentile_90": 1.0,
    }


_ONES_123 = {
    "Intensity_TotalIntensity": 123.0, "Intensity_MeanIntensity": 1.0, "Intensity_MedianIntensity": 1.0,
    "Intensity_StdIntensity": 0.0, "Intensity_MADIntensity": 0.0, "Intensity_MaxIntensity": 1.0,
    "Intensity_MinIntensity": 1.0, "Intensity_TotalArea": 123.0, "Intensity_PercentMaximal": 100.0,
    "Intensity_UpperQuartileIntensity": 1.0, "Intensity_LowerQuartileIntensity": 1.0,
    "Intensity_Percentile_10": 1.0, "Intensity_Percentile_50": 1.0, "Intensity_Percentile_90": 1.0,
}


def test_volume_and_mask():  # test_volume_and_mask
    mask = ball(3, dtype=bool)
    assert image_intensity(np.ones(mask.shape), mask=mask, percentiles=(10, 50, 90)) == _ONES_123


def test_volume_and_objects():  # test_volume_and_objects
    objects = ball(3, dtype=np.uint8)
    assert image_intensity(np.ones(objects.shape), labels=objects, percentiles=(10, 50, 90)) == _ONES_123


def test_volume_and_objects_and_mask():  # test_volume_and_objects_and_mask
    mask = ball(3, dtype=bool)
    labels = np.ones(mask.shape, np.uint8)
    got = image_intensity(np.ones(mask.shape), mask=mask, labels=labels, percentiles=(10, 50, 90))
    assert got == _ONES_123


def test_zeros():  # test_zeros: a completely masked image
    got = image_intensity(np.zeros((10, 10)), mask=np.zeros((10, 10), bool))
    assert got["Intensity_TotalArea"] == 0
    assert list(got) == _names()  # every column CellProfiler declares, nothing else


def _pixels(top, scale=0.99):
    np.random.seed(0)
    pixels = np.random.uniform(size=(10, 10)).astype(np.float32) * scale
    if top is not None:
        pixels[top] = 1
    return pixels


def test_image():  # test_image
    pixels = _pixels((slice(0, 2), slice(0, 2)))
    got = image_intensity(pixels)
    assert got["Intensity_TotalArea"] == 100
    assert got["Intensity_TotalIntensity"] == np.sum(pixels)
    assert got["Intensity_MeanIntensity"] == np.sum(pixels) / 100.0
    assert got["Intensity_MinIntensity"] == np.min(pixels)
    assert got["Intensity_MaxIntensity"] == np.max(pixels)
    assert got["Intensity_PercentMaximal"] == 4.0


def test_image_and_mask():  # test_image_and_mask
    pixels = _pixels((slice(1, 3), slice(1, 3)))
    mask = np.zeros((10, 10), bool)
    mask[1:9, 1:9] = True
    got = image_intensity(pixels, mask=mask)
    assert got["Intensity_TotalArea"] == 64
    assert got["Intensity_TotalIntensity"] == np.sum(pixels[1:9, 1:9])
    assert got["Intensity_MeanIntensity"] == np.sum(pixels[1:9, 1:9]) / 64.0
    assert got["Intensity_PercentMaximal"] == 400.0 / 64.0


def test_image_and_objects():  # test_image_and_objects
    pixels = _pixels((slice(1, 3), slice(1, 3)))
    labels = np.zeros((10, 10), int)
    labels[1:9, 1:5] = 1
    labels[1:9, 5:9] = 2
    got = image_intensity(pixels, labels=labels)
    assert got["Intensity_TotalArea"] == 64
    assert got["Intensity_TotalIntensity"] == np.sum(pixels[1:9, 1:9])
    assert got["Intensity_MeanIntensity"] == np.sum(pixels[1:9, 1:9]) / 64.0
    np.testing.assert_almost_equal(got["Intensity_PercentMaximal"], 400.0 / 64.0)
    assert list(got) == _names()


def test_image_and_objects_and_mask():  # test_image_and_objects_and_mask
    pixels = _pixels(None, scale=1.0)
    mask = np.zeros((10, 10), bool)
    mask[1:9, :9] = True
    labels = np.zeros((10, 10), int)
    labels[1:9, 1:5] = 1
    labels[1:9, 5:] = 2
    got = image_intensity(pixels, mask=mask, labels=labels)
    assert got["Intensity_TotalArea"] == 64
    assert got["Intensity_TotalIntensity"] == np.sum(pixels[1:9, 1:9])
    assert got["Intensity_MeanIntensity"] == np.sum(pixels[1:9, 1:9]) / 64.0


# ---- CellProfiler's test_maskimage.py ----

def _mask_inputs():
    labels = np.zeros((10, 15), int)
    labels[2:5, 3:8] = 1
    labels[5:8, 10:14] = 2
    np.random.seed(0)
    return labels, np.random.uniform(size=(10, 15)).astype(np.float32)


@pytest.mark.parametrize("invert", [False, True])
def test_mask_with_objects(invert):  # test_mask_with_objects, test_mask_invert
    labels, pixel_data = _mask_inputs()
    kept = labels == 0 if invert else labels > 0
    masked, mask = mask_image(pixel_data, labels, invert=invert)
    assert np.all(masked[kept] == pixel_data[kept])
    assert np.all(masked[~kept] == 0)
    assert np.all(mask == kept)
    assert masked.dtype == pixel_data.dtype


def test_double_mask():  # test_double_mask
    labels, pixel_data = _mask_inputs()
    mask = np.random.uniform(size=(10, 15)) > 0.5
    expected_mask = mask & (labels > 0)
    masked, got = mask_image(pixel_data, labels, mask=mask)
    assert np.all(masked[expected_mask] == pixel_data[expected_mask])
    assert np.all(masked[~expected_mask] == 0)
    assert np.all(got == expected_mask)


@pytest.mark.parametrize("gray", [False, True])
def test_image_mask(gray):  # test_binary_mask, test_gray_mask
    np.random.seed(0)
    pixel_data = np.random.uniform(size=(10, 15)).astype(np.float32)
    masking_image = np.random.uniform(size=(10, 15))
    expected = masking_image > 0.5
    masked, got = mask_image(pixel_data, masking_image=masking_image if gray else expected)
    assert np.all(masked[expected] == pixel_data[expected])
    assert np.all(masked[~expected] == 0)
    assert np.all(got == expected)


def test_color_mask():  # test_color_mask
    np.random.seed(0)
    pixel_data = np.random.uniform(size=(10, 15, 3)).astype(np.float32)
    masking_image = np.random.uniform(size=(10, 15))
    expected = masking_image > 0.5
    masked, got = mask_image(pixel_data, masking_image=masking_image)
    assert np.all(masked[expected, :] == pixel_data[expected, :])
    assert np.all(masked[~expected, :] == 0)
    assert np.all(got == expected)


# ---- behaviour CellProfiler's source defines but its tests do not assert ----

def test_nonfinite_pixels_are_ignored_and_median_interpolates():
    got = image_intensity(np.array([[np.nan, 0.0, 0.25], [np.inf, 0.5, 1.0]]))
    assert got["Intensity_TotalArea"] == 4
    assert got["Intensity_MedianIntensity"] == 0.375
    assert got["Intensity_LowerQuartileIntensity"] == 0.1875  # numpy.percentile, linear
    assert got["Intensity_StdIntensity"] == pytest.approx(np.std([0.0, 0.25, 0.5, 1.0]))  # population


def test_numpy1_buffered_sum():
    x = np.random.default_rng(1).uniform(size=(1080, 1080)).astype(np.float32)
    buffers = [np.add.reduce(x.ravel()[i:i + 8192]) for i in range(0, x.size, 8192)]
    expected = np.float32(0)
    for b in buffers:
        expected = np.float32(expected + b)
    assert image_intensity(x)["Intensity_TotalIntensity"] == expected


def test_bad_inputs():
    with pytest.raises(InputError):
        mask_image(np.zeros((3, 3)))
    with pytest.raises(InputError):
        mask_image(np.zeros((3, 3)), np.zeros((3, 4), int))
    with pytest.raises(InputError):
        image_intensity(np.zeros((3, 3)), mask=np.ones((2, 2), bool))
    with pytest.raises(InputError):
        image_intensity(np.zeros((3, 3)), percentiles=(101,))


# ---- CellProfiler 4.2.8 on the 7 real shared sites (JUMP v3 / Cell Painting protocol pipeline) ----

#: MeasureImageIntensity image name -> (CPJUMP1 role of its raw image and illumination function,
#: CellProfiler's name for its MaskImage output, doubled underscores kept)
JUMP_IMAGES = {
    "AGP": ("AGP", "AGP__BackgroundOnly"), "BFHigh": ("HighZBF", "BFHigh__BackgroundOnly"),
    "BFLow": ("LowZBF", "BFLow_BackgroundOnly"), "Brightfield": ("Brightfield", "Brightfield_BackgroundOnly"),
    "DNA": ("DNA", "DNA_BackgroundOnly"), "ER": ("ER", "ER__BackgroundOnly"),
    "Mito": ("Mito", "Mito_BackgroundOnly"), "RNA": ("RNA", "RNA_BackgroundOnly"),
}
#: CellProfiler keeps these as float32 and exports the float32's shortest digits: compared as float32
FLOAT32_STATS = ("TotalIntensity", "MedianIntensity", "StdIntensity", "MADIntensity", "MinIntensity", "MaxIntensity")


@pytest.fixture(scope="module")
def jump_v3(shared_dir):
    import pandas as pd

    ref = shared_dir / "reference" / "cellprofiler_jump_v3"
    if not ref.exists():
        pytest.skip(f"reference not found at {ref}")
    return ref, pd.read_csv(ref / "tables" / "Image.csv.gz")


def _corrected(cp_ref, well, role):
    from cpfeatures.illum import apply

    with gzip.open(cp_ref.ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
        function = np.load(fh)
    return apply(cp_ref.raw(well, role), function)


def test_whole_image_matches_cellprofiler(cp_ref, jump_v3):
    """Every Intensity_<Stat>_<Image> column, all 7 sites, 8 images: exact (float32 columns
    compared as float32, the precision CellProfiler computed and exported them in)."""
    _, table = jump_v3
    off = []
    for _, row in table.iterrows():
        for name, (role, _) in JUMP_IMAGES.items():
            got = image_intensity(_corrected(cp_ref, row["Metadata_Well"], role))
            for stat in IMAGE_INTENSITY_FEATURES:
                ours, theirs = got[f"Intensity_{stat}"], row[f"Intensity_{stat}_{name}"]
                same = np.float32(ours) == np.float32(theirs) if stat in FLOAT32_STATS else ours == theirs
                if not same:
                    off.append((row["Metadata_Well"], name, stat, ours, theirs))
    assert off == []


def test_background_only_is_consistent_with_cellprofiler(cp_ref, jump_v3):
    """The ``_BackgroundOnly`` columns. CellProfiler masked with CellsIncludingEdges, which the
    reference does not keep; the kept Cells are those minus the cells whose nucleus touches
    the border, so CellProfiler's background is a subset of ``Cells == 0``: checked as
    such (area, total, min, max bound it), and the all-pixels path is the one tested above."""
    import tifffile

    ref, table = jump_v3
    for _, row in table.iterrows():
        well = row["Metadata_Well"]
        cells = tifffile.imread(ref / "labels" / f"{well}_s5_Cells_labels.tiff")
        for name, (role, background) in JUMP_IMAGES.items():
            got = image_intensity(*mask_image(_corrected(cp_ref, well, role), cells, invert=True))
            col = {stat: row[f"Intensity_{stat}_{background}"] for stat in IMAGE_INTENSITY_FEATURES}
            assert 0 < col["TotalArea"] <= got["Intensity_TotalArea"]
            assert col["TotalIntensity"] <= np.float32(got["Intensity_TotalIntensity"]) * (1 + 1e-6)
            assert np.float32(col["MinIntensity"]) >= np.float32(got["Intensity_MinIntensity"])
            assert np.float32(col["MaxIntensity"]) <= np.float32(got["Intensity_MaxIntensity"])
