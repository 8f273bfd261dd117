"""Granularity against CellProfiler 4.2.8's exported spectra, cp-measure, and scikit-image/scipy pieces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.morphology

from cpfeatures.errors import InputError
from cpfeatures.measure import Objects
from cpfeatures.measure._granularity_kernels import disk_opening, granular_steps, max_tree, stretch
from cpfeatures.measure._granularity import (_upsampling_matrix, granularity, granularity_image,
                                            granularity_spectrum, measure_family, measure_image_family,
                                            _object_spectrum)

CPJUMP1 = dict(subsample=0.5, background_subsample=0.5, element_size=10, spectrum_length=16)
ROLES = ("DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF")
WELL = "N14"


@pytest.fixture(scope="module")
def spectra(cp_ref):
    return {role: granularity_spectrum(cp_ref.corrected(WELL, role), **CPJUMP1) for role in ROLES}


def test_image_spectrum_equals_cellprofiler(cp_ref, spectra):
    row = cp_ref.table("Image").set_index("Metadata_Well").loc[WELL]
    for role, spec in spectra.items():
        ref = np.array([row[f"Granularity_{k}_{role}"] for k in range(1, 17)])
        np.testing.assert_allclose(spec.image_spectrum, ref, rtol=1e-4, atol=1e-4, err_msg=role)


@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_objects_equal_cellprofiler(cp_ref, spectra, compartment):
    """Every Granularity_ column of the compartment, all 8 images: r >= 0.99 for >= 99% of
    columns (issue 4's goal), and values equal to the export's precision."""
    objects = Objects(cp_ref.labels(WELL)[compartment])
    table = cp_ref.objects_table(compartment, WELL)
    rows = table["ObjectNumber"].to_numpy() - 1
    good, total = 0, 0
    for role, spec in spectra.items():
        ours = _object_spectrum(objects, spec)  # the spectrum computed once for the three compartments
        for k in range(1, 17):
            a, b = ours[rows, k - 1], table[f"Granularity_{k}_{role}"].to_numpy()
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"{compartment} {role} {k}")
            total += 1
            good += (np.std(b) == 0 and np.allclose(a, b)) or np.corrcoef(a, b)[0, 1] >= 0.99
    assert good / total >= 0.99


def test_against_cp_measure(cp_ref):
    from cp_measure.core.measuregranularity import get_granularity

    labels = cp_ref.labels("G21")["Cells"]
    image = cp_ref.corrected("G21", "ER")
    peer = get_granularity(labels, image, subsample_size=0.5, image_sample_size=0.5, element_size=10,
                           granular_spectrum_length=16)
    ours = granularity(labels, image, **CPJUMP1)
    for k in range(1, 17):
        key = f"Granularity_{k}"
        a, b = ours[key], np.asarray(peer[key])
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8, err_msg=key)
        assert np.corrcoef(a, b)[0, 1] >= 0.999
        assert np.median(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)) <= 1e-3


# --- kernels against scikit-image / scipy -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_opening_equals_skimage(dtype):
    img = np.random.default_rng(5).random((61, 47)).astype(dtype)
    for r in (1, 3, 10):
        disk = skimage.morphology.disk(r)
        ref = skimage.morphology.dilation(skimage.morphology.erosion(img, disk), disk)
        np.testing.assert_array_equal(disk_opening(img, r), ref)
    for shape in [(5, 3), (1, 12), (12, 1), (3, 30)]:  # narrower than the footprint
        small = np.random.default_rng(6).random(shape).astype(dtype)
        disk = skimage.morphology.disk(10)
        ref = skimage.morphology.dilation(skimage.morphology.erosion(small, disk), disk)
        np.testing.assert_array_equal(disk_opening(small, 10), ref, err_msg=str(shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reconstructions_equal_skimage(dtype):
    rng = np.random.default_rng(3)
    mask = ndi.uniform_filter(rng.random((70, 53)), 3).astype(dtype)
    mask[10:20, 5:15] = mask[10, 5]  # a plateau: ties inside the max-tree
    order = np.argsort(mask.ravel()).astype(np.int32)
    recs, means = granular_steps(mask, order, max_tree(mask, order), 5)
    cross = skimage.morphology.disk(1)
    ero = mask
    for k in range(5):
        ero = skimage.morphology.erosion(ero, cross)
        ref = skimage.morphology.reconstruction(ero, mask, footprint=cross)
        np.testing.assert_array_equal(recs[:, k].reshape(mask.shape), ref)
        assert means[k] == pytest.approx(ref.astype(np.float64).mean(), rel=1e-12)


def test_stretch_equals_map_coordinates(cp_ref):
    small = cp_ref.corrected(WELL, "Mito")[::4, ::4]  # float32, as CellProfiler's images
    shape = (541, 538)
    i, j = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    i *= float(small.shape[0] - 1) / float(shape[0] - 1)
    j *= float(small.shape[1] - 1) / float(shape[1] - 1)
    np.testing.assert_array_equal(stretch(small, shape), ndi.map_coordinates(small, (i, j), order=1))


def test_upsampling_matrix_equals_upsampled_means():
    rng = np.random.default_rng(8)
    labels = np.zeros((90, 70), np.int32)
    labels[5:30, 5:40] = 1
    labels[40:89, 30:69] = 4  # gap at 2, 3; touches the border
    labels[0, 0] = 2
    small = rng.random((45, 35))
    up = _upsampling_matrix(Objects(labels), small.shape) @ small.ravel()
    i, j = np.mgrid[0:90, 0:70].astype(float)
    big = ndi.map_coordinates(small, (i * 44 / 89, j * 34 / 69), order=1)
    np.testing.assert_allclose(up, ndi.sum(big, labels, [1, 2, 3, 4]), rtol=1e-12)


# --- families, cache, edge cases --------------------------------------------------------------------
def test_family_shares_spectrum_across_compartments(cp_ref, spectra):
    labels = cp_ref.labels(WELL)
    images = {"DNA": cp_ref.corrected(WELL, "DNA")}
    cache: dict = {}
    nuclei = measure_family(Objects(labels["Nuclei"]), images, None, cache)
    cells = measure_family(labels["Cells"], images, None, cache)
    image = measure_image_family(images, None, cache)
    assert len([k for k in cache if k[0] == 'granularity']) == 1  # one spectrum for all
    assert set(nuclei) == {f"Granularity_{k}_DNA" for k in range(1, 17)}
    np.testing.assert_array_equal(cells["Granularity_3_DNA"],
                                  granularity(labels["Cells"], images["DNA"])["Granularity_3"])
    assert image == {f"{k}_DNA": v for k, v in granularity_image(images["DNA"]).items()}
    with pytest.raises(InputError):
        measure_family(labels["Cells"], images, {"radius": 3})


def test_edge_cases():
    labels = np.zeros((80, 80), np.int32)
    labels[0, 0] = 1  # one pixel, on the border
    labels[20:40, 20:40] = 3  # gap at 2
    img = np.random.default_rng(0).random((80, 80)).astype(np.float32)
    out = granularity(labels, img, **CPJUMP1)
    assert all(len(v) == 3 for v in out.values())
    assert np.isnan(out["Granularity_1"][1]) and np.isfinite(out["Granularity_1"][[0, 2]]).all()
    f64 = granularity(labels, img.astype(np.float64), **CPJUMP1)
    np.testing.assert_allclose(f64["Granularity_5"], out["Granularity_5"], rtol=1e-6)
    flat = granularity(labels, np.full((80, 80), 0.3), **CPJUMP1)
    assert np.allclose(flat["Granularity_2"][[0, 2]], 0)
    empty = granularity(np.zeros((80, 80), np.int32), img, **CPJUMP1)
    assert all(len(v) == 0 for v in empty.values())
    assert len(granularity_image(img, **CPJUMP1)) == 16
    with pytest.raises(InputError):
        granularity(labels, img[:70], **CPJUMP1)
    with pytest.raises(InputError):
        granularity_spectrum(img, subsample=0)
    with pytest.raises(InputError):
        granularity_spectrum(np.full((80, 80), np.nan))


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureGranularity (recorded by tools/cellprofiler_cases.py), the
    per-object spectrum and the Image table. Tolerance: 1e-12 relative (object means are a sparse
    upsampling matrix times the small reconstructions, not map_coordinates + ndimage.mean)."""
    cases.assert_equals_cellprofiler(name, "granularity", 1e-12, 0.0)
    cases.assert_equals_cellprofiler(name, "granularity", 1e-12, 0.0, kind="image")
