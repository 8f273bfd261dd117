"""Texture against CellProfiler 4.2.8's exported Haralick values and mahotas (its engine)."""

from __future__ import annotations

import mahotas
import numpy as np
import pytest

from cpfeatures.measure import Objects
from cpfeatures.measure._texture import FEATURES, quantize, texture, texture_image


@pytest.mark.parametrize("well", ["D08", "N14"])
@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_equals_cellprofiler_export(cp_ref, well, compartment):
    objects = Objects(cp_ref.labels(well)[compartment])
    table = cp_ref.objects_table(compartment, well)
    rows = table["ObjectNumber"].to_numpy() - 1
    for role, scale in (("DNA", 3), ("AGP", 5), ("Brightfield", 10)):
        ours = texture(objects, cp_ref.corrected(well, role), scales=[scale])
        for d in range(4):
            for name in FEATURES:
                ref = table[f"Texture_{name}_{role}_{scale}_{d:02d}_256"].to_numpy()
                got = ours[f"Texture_{name}_{scale}_{d:02d}_256"][rows]
                np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9, err_msg=f"{name} {role} {scale} {d}")


def test_image_texture_equals_cellprofiler(cp_ref):
    image_row = cp_ref.table("Image").set_index("Metadata_Well").loc["G21"]
    ours = texture_image(cp_ref.corrected("G21", "ER"), scales=[5])
    for key, value in ours.items():
        _, name, rest = key.split("_", 2)
        assert value == pytest.approx(image_row[f"Texture_{name}_ER_{rest}"], rel=1e-6, abs=1e-9), key


def test_against_mahotas_on_bounding_boxes(cp_ref):
    """The per-object definition: mahotas.haralick on the masked bounding box, ignore_zeros."""
    labels = cp_ref.labels("M02")["Nuclei"]
    q = quantize(cp_ref.corrected("M02", "RNA"))
    ours = texture(labels, cp_ref.corrected("M02", "RNA"), scales=[3])
    for lab in range(1, labels.max() + 1, 7):
        ys, xs = np.nonzero(labels == lab)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        crop = np.where(labels[box] == lab, q[box], 0)
        ref = mahotas.features.haralick(crop, distance=3, ignore_zeros=True)
        for d in range(4):
            got = [ours[f"Texture_{n}_3_{d:02d}_256"][lab - 1] for n in FEATURES]
            np.testing.assert_allclose(got, ref[d], rtol=1e-9, atol=1e-12)


def test_edge_cases():
    labels = np.zeros((30, 30), np.int32)
    labels[0, 0] = 1           # one pixel: no pair -> CellProfiler stores 0
    labels[5:15, 5:15] = 3     # gap at 2
    image = np.random.default_rng(0).random((30, 30))
    for dtype in (np.float32, np.float64):
        out = texture(labels, image.astype(dtype), scales=[3])
        assert all(len(v) == 3 for v in out.values())
        assert out["Texture_Contrast_3_00_256"][0] == 0
        assert np.isnan(out["Texture_Contrast_3_00_256"][1])
        assert out["Texture_Contrast_3_00_256"][2] > 0
    # a constant object: mahotas gives Correlation 1, zero contrast
    const = texture(labels, np.full((30, 30), 0.5), scales=[1])
    assert const["Texture_Correlation_1_00_256"][2] == 1 and const["Texture_Contrast_1_00_256"][2] == 0
    assert all(len(v) == 0 for v in texture(np.zeros((5, 5), int), np.zeros((5, 5))).values())
    # an object quantized entirely to 0 is ignored like background -> 0 features
    dark = texture(labels, np.zeros((30, 30)), scales=[1])
    assert dark["Texture_Entropy_1_00_256"][2] == 0


def test_quantize_is_skimage_img_as_ubyte(cp_ref):
    # CellProfiler quantizes with skimage.util.img_as_ubyte: x * 255 in float32, rounded half to even
    import skimage.util

    halves = ((np.arange(511) + 0.5) / 510).astype(np.float32)  # every k + 0.5 boundary
    for image in (cp_ref.corrected("M02", "DNA"), cp_ref.corrected("G21", "Brightfield"), halves,
                  np.array([0.0, 1.0, 1e-9, 1 - 1e-7], np.float32)):
        np.testing.assert_array_equal(quantize(image), skimage.util.img_as_ubyte(np.clip(image, 0, 1)))


def _blobs(seed, shape=(64, 80), count=9):
    """Random labels: rings, C shapes, pieces split in two, objects on every border, a label gap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.int32)
    for lab in range(1, count + 1):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        r = rng.integers(4, 14)
        dist = np.hypot(yy - cy, xx - cx)
        blob = dist < r
        if lab % 3 == 0:
            blob &= dist > r / 2           # a ring: two runs per row
        if lab % 4 == 0:
            blob &= np.abs(xx - cx) > 1    # split in two pieces
        labels[blob] = lab
    labels[labels == 5] = 0                # a gap in the ids
    labels[0, :7] = count + 1              # along the top border, ending the image rows
    labels[-1, -7:] = count + 1            # the same object again at the bottom-right corner
    return labels


def test_row_runs_cover_each_object_exactly():
    from cpfeatures.measure._texture import _row_runs

    for seed in range(4):
        labels = _blobs(seed)
        n = int(labels.max())
        ry, rx0, rx1, run_offsets = _row_runs(labels, n)
        for k in range(n):
            painted = np.zeros(labels.shape, bool)
            runs = range(run_offsets[k], run_offsets[k + 1])
            for i in runs:
                assert rx0[i] < rx1[i] and not painted[ry[i], rx0[i]:rx1[i]].any()
                painted[ry[i], rx0[i]:rx1[i]] = True
            np.testing.assert_array_equal(painted, labels == k + 1)
            # runs are maximal (the pixels either side belong to another label) and in raster order
            for i in runs:
                assert rx0[i] == 0 or labels[ry[i], rx0[i] - 1] != k + 1
                assert rx1[i] == labels.shape[1] or labels[ry[i], rx1[i]] != k + 1
            starts = [(ry[i], rx0[i]) for i in runs]
            assert starts == sorted(starts)


@pytest.mark.parametrize("seed", range(3))
def test_against_mahotas_on_synthetic_shapes(seed):
    """Rings, split objects, border objects and pixels quantized to 0 inside objects, at 3 scales."""
    labels = _blobs(seed)
    rng = np.random.default_rng(seed + 10)
    image = rng.random(labels.shape) * 0.3
    image[rng.random(labels.shape) < 0.03] = 0.0  # some object pixels quantize to 0: ignored
    q = quantize(image)
    for scale in (1, 2, 5):
        ours = texture(labels, image, scales=[scale])
        for lab in np.unique(labels[labels > 0]):
            ys, xs = np.nonzero(labels == lab)
            box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            crop = np.where(labels[box] == lab, q[box], 0)
            try:
                ref = mahotas.features.haralick(crop, distance=scale, ignore_zeros=True)
            except ValueError:  # a direction without pairs: CellProfiler stores 0
                ref = np.zeros((4, 13))
            for d in range(4):
                got = [ours[f"Texture_{n}_{scale}_{d:02d}_256"][lab - 1] for n in FEATURES]
                np.testing.assert_allclose(got, np.nan_to_num(ref[d]), rtol=1e-9, atol=1e-12,
                                           err_msg=f"label {lab} scale {scale} direction {d}")


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureTexture on the case (recorded by tools/cellprofiler_cases.py),
    objects and Image table, 3 scales x 4 directions x 13 features. Tolerance: 1e-9 relative, 1e-12
    absolute (the Haralick sums run in another order; Correlation cancels for flat objects). One
    gray level, saturated and zero images included: InfoMeas1 is 0 there, as CellProfiler writes it."""
    cases.assert_equals_cellprofiler(name, "texture", 1e-9, 1e-12)
    cases.assert_equals_cellprofiler(name, "texture", 1e-9, 1e-12, kind="image")


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_mahotas(name):
    """Oracle: mahotas 1.4 (CellProfiler's engine) run as CellProfiler runs it: the object's bounding
    box with other pixels 0, ``ignore_zeros``, 0 when a direction has no pair. Tolerance: 1e-9
    relative, 1e-12 absolute, and the sign of every zero (entropies of one-cell matrices are -0.0)."""
    c = cases.case(name)
    labels, image = c["labels"], c["image"]
    q = quantize(image)
    ours = texture(labels, image, scales=[3, 10])
    for lab in np.unique(labels[labels > 0]):
        ys, xs = np.nonzero(labels == lab)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        crop = np.where(labels[box] == lab, q[box], 0)
        for scale in (3, 10):
            try:
                ref = np.nan_to_num(mahotas.features.haralick(crop, distance=scale, ignore_zeros=True))
            except ValueError:  # a direction without pairs: CellProfiler stores 0
                ref = np.zeros((4, 13))
            got = np.array([[ours[f"Texture_{n}_{scale}_{d:02d}_256"][lab - 1] for n in FEATURES] for d in range(4)])
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=f"{name} label {lab} scale {scale}")
            zero = ref == 0
            assert (np.signbit(got[zero]) == np.signbit(ref[zero])).all(), f"{name} label {lab}: sign of zero"
