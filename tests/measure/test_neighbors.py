"""Neighbors against CellProfiler 4.2.8's exported Neighbors_ columns, cp-measure and brute force.

The discarded-inclusive label images CellProfiler's MeasureObjectNeighbors reads
(``small_removed_segmented``) are not exported, so the tests segment the sites
with :func:`cpfeatures.segment.segment_site` (pixel-identical to CellProfiler's
labels, checked here) and take them from its details: ``CellsUnedited`` for
Cells, ``NucleiSmallRemoved`` for Nuclei.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from cpfeatures.errors import InputError
from cpfeatures.measure import Objects
from cpfeatures.measure._neighbors import FEATURES, measure_family, neighbors


def _plain_neighbors(labels, **kwargs):
    """:func:`neighbors` with its keys' ``Neighbors_`` prefix and scale suffix dropped."""
    return {key.split("_")[1]: values for key, values in neighbors(labels, **kwargs).items()}

WELLS = ["F10", "M02"]  # 95 and 181 cells; M02 is the densest shared site
CPJUMP1 = {"Cells": ([5, "adjacent"], "CellsUnedited"), "Nuclei": ([1], "NucleiSmallRemoved")}
NUMBERS = ("FirstClosestObjectNumber", "SecondClosestObjectNumber", "NumberOfNeighbors")


@pytest.fixture(scope="module")
def sites(cp_ref):
    from cpfeatures.segment import segment_site

    out = {}
    for well in WELLS:
        images = {r: cp_ref.raw(well, r) for r in ("DNA", "RNA")}
        illum = {r: cp_ref.illum(r) for r in ("DNA", "RNA")}
        out[well] = segment_site(images, illum=illum, return_details=True)
    return out


@pytest.mark.parametrize("well", WELLS)
@pytest.mark.parametrize("compartment", ["Cells", "Nuclei"])
def test_equals_cellprofiler_export(sites, cp_ref, well, compartment):
    labels, details = sites[well]
    np.testing.assert_array_equal(labels[compartment], cp_ref.labels(well)[compartment])
    measurements, discarded = CPJUMP1[compartment]
    table = cp_ref.objects_table(compartment, well)
    rows = table["ObjectNumber"].to_numpy() - 1
    ours = measure_family(Objects(labels[compartment]), {},
                          {"measurements": measurements, "discarded": details[discarded]})
    reference = [c for c in table.columns if c.startswith("Neighbors_")]
    assert sorted(ours) == sorted(reference)
    for col in reference:
        if col.split("_")[1] in NUMBERS:
            np.testing.assert_array_equal(ours[col][rows], table[col].to_numpy(), err_msg=col)
        else:
            np.testing.assert_allclose(ours[col][rows], table[col], rtol=1e-9, atol=1e-12, err_msg=col)


def test_discarded_objects_matter(sites, cp_ref):
    """Border-touching cells count as neighbours; for Nuclei CellProfiler's image is taken after
    border removal, so the unedited nuclei (before it) do not reproduce the export."""
    labels, details = sites["M02"]
    cells = cp_ref.objects_table("Cells", "M02")["Neighbors_NumberOfNeighbors_5"].to_numpy()
    assert (_plain_neighbors(labels["Cells"], distance=5)["NumberOfNeighbors"] != cells).any()
    nuclei = cp_ref.objects_table("Nuclei", "M02")["Neighbors_FirstClosestDistance_1"].to_numpy()
    wrong = _plain_neighbors(labels["Nuclei"], distance=1,
                             discarded=details["NucleiUnedited"])["FirstClosestDistance"]
    assert not np.allclose(wrong, nuclei)


def test_against_cp_measure_and_brute_force(cp_ref):
    from cp_measure.multimask.measureobjectneighbors import D_ADJACENT, D_WITHIN, measureobjectneighbors

    labels = cp_ref.labels("F10")["Cells"]
    n = int(labels.max())
    for method, kwargs, suffix in ((D_WITHIN, {"distance": 5}, "5"),
                                   (D_ADJACENT, {"adjacent": True}, "Adjacent")):
        ours = _plain_neighbors(labels, **kwargs)
        with np.errstate(all="ignore"):
            peer = measureobjectneighbors(labels, labels, method, 5)
        peer = {k: np.asarray(peer[f"Neighbors_{k}_{suffix}"]) for k in FEATURES}
        for key in ("NumberOfNeighbors", "PercentTouching", "FirstClosestDistance", "SecondClosestDistance",
                    "AngleBetweenNeighbors"):
            np.testing.assert_allclose(ours[key], peer[key], rtol=1e-12, err_msg=key)
        # cp-measure's known defect: its "first closest" is the object itself, its "second" our first
        np.testing.assert_array_equal(peer["FirstClosestObjectNumber"], np.arange(1, n + 1))
        np.testing.assert_array_equal(peer["SecondClosestObjectNumber"], ours["FirstClosestObjectNumber"])

    # brute force: centres of mass, all pairwise distances
    centres = np.array(ndi.center_of_mass(np.ones(labels.shape), labels, np.arange(1, n + 1)))
    dist = cdist(centres, centres)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")
    ours = _plain_neighbors(labels, distance=5)
    np.testing.assert_array_equal(ours["FirstClosestObjectNumber"], order[:, 0] + 1)
    np.testing.assert_array_equal(ours["SecondClosestObjectNumber"], order[:, 1] + 1)
    rows = np.arange(n)
    np.testing.assert_allclose(ours["FirstClosestDistance"], dist[rows, order[:, 0]], rtol=1e-12)
    np.testing.assert_allclose(ours["SecondClosestDistance"], dist[rows, order[:, 1]], rtol=1e-12)
    v1, v2 = centres[order[:, 0]] - centres, centres[order[:, 1]] - centres
    cos = np.sum(v1 * v2, axis=1) / np.linalg.norm(v1, axis=1) / np.linalg.norm(v2, axis=1)
    np.testing.assert_allclose(ours["AngleBetweenNeighbors"], np.degrees(np.arccos(np.clip(cos, -1, 1))),
                               atol=1e-6)

    # brute force: neighbours = labels with pixels within Euclidean distance 5. Pixels with a
    # 4-neighbour of another value suffice (a closest pair of pixels always has that form).
    edge = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        diff = np.diff(labels, axis=axis) != 0
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        edge[tuple(lo)] |= diff
        edge[tuple(hi)] |= diff
    edge &= labels > 0
    points = np.argwhere(edge)
    pairs = cKDTree(points).query_pairs(5.0, output_type="ndarray")
    a, b = labels[tuple(points[pairs[:, 0]].T)], labels[tuple(points[pairs[:, 1]].T)]
    pair_set = np.unique(np.sort(np.stack([a[a != b], b[a != b]], axis=1), axis=1), axis=0)
    expected = np.bincount(pair_set.ravel(), minlength=n + 1)[1:]
    np.testing.assert_array_equal(ours["NumberOfNeighbors"], expected)


def _squares():
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 2:6] = 1     # 4x4
    labels[2:6, 6:10] = 2    # shares an edge with 1
    labels[2:6, 12:16] = 3   # 2 background columns from 2: 3 px between pixel centres
    return labels


def test_hand_computed():
    labels = _squares()
    adj = _plain_neighbors(labels, adjacent=True)
    np.testing.assert_array_equal(adj["NumberOfNeighbors"], [1, 1, 0])
    # 12 outline pixels per 4x4 square; the 4 of the shared column touch
    np.testing.assert_allclose(adj["PercentTouching"], [100 / 3, 100 / 3, 0])
    np.testing.assert_array_equal(_plain_neighbors(labels, distance=2)["NumberOfNeighbors"], [1, 1, 0])
    within3 = _plain_neighbors(labels, distance=3)
    np.testing.assert_array_equal(within3["NumberOfNeighbors"], [1, 2, 1])
    # distance 3: a pixel of 3 lies within 3.5 of the 4 right-column pixels of 2 (they are outline)
    assert within3["PercentTouching"][2] == pytest.approx(100 * 4 / 12)
    # centres (3.5, 3.5), (3.5, 7.5), (3.5, 13.5): collinear
    np.testing.assert_array_equal(adj["FirstClosestObjectNumber"], [2, 1, 2])
    np.testing.assert_array_equal(adj["SecondClosestObjectNumber"], [3, 3, 1])
    np.testing.assert_allclose(adj["FirstClosestDistance"], [4, 4, 6])
    np.testing.assert_allclose(adj["SecondClosestDistance"], [10, 6, 10])
    np.testing.assert_allclose(adj["AngleBetweenNeighbors"], [0, 180, 0], atol=1e-6)


def test_discarded_with_other_ids():
    kept = _squares()
    # discarded-inclusive image: kept 1, 2, 3 are ids 4, 1, 2 there; id 3 was discarded (border)
    disc = np.zeros_like(kept)
    disc[kept == 1], disc[kept == 2], disc[kept == 3] = 4, 1, 2
    disc[2:6, 16:20] = 3
    out = _plain_neighbors(kept, adjacent=True, discarded=disc)
    np.testing.assert_array_equal(out["NumberOfNeighbors"], [1, 1, 1])  # 3 touches the discarded one
    assert out["PercentTouching"][2] > 0
    np.testing.assert_array_equal(out["FirstClosestObjectNumber"], [2, 1, 2])  # kept numbering
    # the closest centre to kept 3 (x 13.5) is the discarded object's (17.5), then kept 2's (7.5)
    assert out["FirstClosestDistance"][2] == pytest.approx(4.0)
    assert out["SecondClosestDistance"][2] == pytest.approx(6.0)
    assert out["AngleBetweenNeighbors"][2] == pytest.approx(180.0)


def test_small_and_absent():
    labels = np.zeros((10, 10), np.int32)
    labels[1:4, 1:4] = 1
    labels[6:9, 6:9] = 3  # label 2 absent
    out = _plain_neighbors(labels, distance=5)
    assert out["NumberOfNeighbors"][1] == 0 and out["FirstClosestObjectNumber"][1] == 0
    assert np.isnan(out["FirstClosestDistance"][1])
    assert out["FirstClosestObjectNumber"][0] == 3 and out["SecondClosestObjectNumber"][0] == 2  # absent last
    assert out["FirstClosestDistance"][0] == pytest.approx(np.hypot(5, 5))
    one = np.zeros((10, 10), np.int32)
    one[2:5, 2:5] = 1
    single = _plain_neighbors(one, distance=5)
    assert all(single[k][0] == 0 for k in FEATURES)  # CellProfiler: nothing measured for one object
    empty = _plain_neighbors(np.zeros((5, 5), np.int32), distance=5)
    assert all(v.shape == (0,) for v in empty.values())


def test_measure_family_names_and_errors():
    labels = _squares()
    out = measure_family(Objects(labels), {}, {"measurements": [5.0, "Adjacent"], "discarded": None})
    expected = [f"Neighbors_{f}_{s}" for s in ("5", "Adjacent") for f in FEATURES]
    assert sorted(out) == sorted(expected)
    assert measure_family(Objects(labels), {}, {"measurements": []}) == {}
    with pytest.raises(InputError):
        measure_family(Objects(labels), {}, {"measurements": ["expand"]})
    with pytest.raises(InputError):
        _plain_neighbors(labels)
    with pytest.raises(InputError):
        _plain_neighbors(labels, distance=5, adjacent=True)
    with pytest.raises(InputError):
        _plain_neighbors(labels, distance=-1)
    with pytest.raises(InputError):
        _plain_neighbors(labels, distance=5, discarded=np.zeros((3, 3), np.int32))
    with pytest.raises(InputError):
        _plain_neighbors(labels, distance=5, discarded=labels.astype(float))


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureObjectNeighbors within 5 and 1 pixels and adjacent (recorded
    by tools/cellprofiler_cases.py): single pixels, lines, touching and border objects, one object.
    Tolerance: 1e-12 relative on AngleBetweenNeighbors (an arccos), none elsewhere."""
    cases.assert_equals_cellprofiler(name, "neighbors", 0.0, 0.0, skip=("AngleBetweenNeighbors",))
    cases.assert_equals_cellprofiler(name, "neighbors", 1e-12, 0.0)
