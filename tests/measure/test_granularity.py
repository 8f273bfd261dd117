"""Granularity against CellProfiler 4.2.8's exported spectra and cp-measure."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.morphology

from cpfeatures.measure import Objects
from cpfeatures.measure._morphology import reconstruct_dilation
from cpfeatures.measure.granularity import granularity, granularity_spectrum

CPJUMP1 = dict(subsample=0.5, background_subsample=0.5, element_size=10, spectrum_length=16)


@pytest.fixture(scope="module")
def spectra(cp_ref):
    return {role: granularity_spectrum(cp_ref.corrected("N14", role), **CPJUMP1) for role in ("DNA", "Mito")}


def test_image_spectrum_equals_cellprofiler(cp_ref, spectra):
    row = cp_ref.table("Image").set_index("Metadata_Well").loc["N14"]
    for role, spec in spectra.items():
        ref = np.array([row[f"Granularity_{k}_{role}"] for k in range(1, 17)])
        np.testing.assert_allclose(spec.image_spectrum, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_objects_equal_cellprofiler(cp_ref, spectra, compartment):
    objects = Objects(cp_ref.labels("N14")[compartment])
    table = cp_ref.objects_table(compartment, "N14")
    rows = table["ObjectNumber"].to_numpy() - 1
    for role, spec in spectra.items():
        ours = granularity(objects, None, spectrum=spec)
        for k in range(1, 17):
            np.testing.assert_allclose(ours[f"Granularity_{k}"][rows], table[f"Granularity_{k}_{role}"],
                                       rtol=1e-4, atol=1e-4, err_msg=f"{compartment} {role} {k}")


def test_against_cp_measure(cp_ref):
    from cp_measure.core.measuregranularity import get_granularity

    labels = cp_ref.labels("G21")["Cells"]
    image = cp_ref.corrected("G21", "ER")
    peer = get_granularity(labels, image, subsample_size=0.5, image_sample_size=0.5, element_size=10,
                           granular_spectrum_length=16)
    ours = granularity(labels, image, **CPJUMP1)
    for k in range(1, 17):
        key = f"Granularity_{k}"
        np.testing.assert_allclose(ours[key], peer[key], rtol=1e-6, atol=1e-8, err_msg=key)


def test_reconstruction_equals_skimage():
    rng = np.random.default_rng(3)
    mask = rng.random((120, 90))
    seed = skimage.morphology.erosion(mask, skimage.morphology.disk(2))
    np.testing.assert_array_equal(reconstruct_dilation(seed, mask),
                                  skimage.morphology.reconstruction(seed, mask, footprint=skimage.morphology.disk(1)))


def test_edge_cases():
    labels = np.zeros((80, 80), np.int32)
    labels[0, 0] = 1
    labels[20:40, 20:40] = 3
    out = granularity(labels, np.random.default_rng(0).random((80, 80)).astype(np.float32), **CPJUMP1)
    assert all(len(v) == 3 for v in out.values())
    assert np.isnan(out["Granularity_1"][1]) and np.isfinite(out["Granularity_1"][[0, 2]]).all()
    flat = granularity(labels, np.full((80, 80), 0.3), **CPJUMP1)
    assert np.allclose(flat["Granularity_2"][[0, 2]], 0)
