"""Cells methods: propagation equals centrosome's (CellProfiler's) propagate; distance-N."""

from __future__ import annotations

import centrosome.cpmorphology
import centrosome.propagate
import numpy as np
import pytest
import scipy.ndimage as ndi

from cpfeatures.errors import ConfigError
from cpfeatures.illum import apply as apply_illum
from cpfeatures.segment import identify_cells, identify_nuclei
from cpfeatures.segment.propagate import propagate


@pytest.fixture(scope="module")
def site(cp_ref):
    rna = apply_illum(cp_ref.raw("N14", "RNA"), cp_ref.illum("RNA"))
    dna = apply_illum(cp_ref.raw("N14", "DNA"), cp_ref.illum("DNA"))
    nuclei, details = identify_nuclei(dna)
    return rna, nuclei, details


def test_propagate_equals_centrosome(site):
    rna, nuclei, _ = site
    mask = rna >= 0.0125
    ours, dist = propagate(rna, nuclei, mask, 0.05)
    ref, ref_dist = centrosome.propagate.propagate(rna, nuclei, mask, 0.05)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(dist, ref_dist)


def test_propagation_method_follows_cellprofiler(site):
    rna, nuclei, details = site
    cells, det = identify_cells(rna, nuclei, details["unedited"], {"method": "propagation"})
    # CellProfiler: propagate from the seeds within the threshold mask, fill holes, keep nuclei ids
    seeds = details["unedited"].copy()
    from cpfeatures.segment.morphology import touching_border
    seeds[(~touching_border(seeds)[seeds]) & (nuclei == 0)] = 0
    mask = rna >= det["Threshold_FinalThreshold_Cells"]
    grown, _ = centrosome.propagate.propagate(rna, seeds, mask, 0.05)
    grown = centrosome.cpmorphology.fill_labeled_holes(grown, mask=grown == 0)
    lookup = np.asarray(ndi.maximum(nuclei, grown, index=np.arange(grown.max() + 1)), int)
    lookup[0] = 0
    np.testing.assert_array_equal(cells, lookup[grown])
    assert set(np.unique(cells)) == set(np.unique(nuclei))


def test_distance_n(site):
    rna, nuclei, details = site
    cells, _ = identify_cells(rna, nuclei, None, {"method": "distance_n", "distance": 4})
    inside = nuclei > 0
    assert (cells[inside] == nuclei[inside]).all()
    grown = ndi.distance_transform_edt(nuclei == 0) <= 4
    assert ((cells > 0) == grown).all()


def test_unknown_method(site):
    rna, nuclei, _ = site
    with pytest.raises(ConfigError, match="propagation"):
        identify_cells(rna, nuclei, None, {"method": "magic"})
