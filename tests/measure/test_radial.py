"""Radial distribution against CellProfiler 4.2.8's exported RadialDistribution_ columns,
cp-measure, centrosome and numpy 1.23's argsort."""

from __future__ import annotations


import numpy as np
import pytest
import scipy.ndimage
from centrosome.cpmorphology import centers_of_labels, color_labels, distance_to_edge
from centrosome.propagate import propagate as centrosome_propagate
from cp_measure.core.measureobjectintensitydistribution import get_radial_distribution, get_radial_zernikes

from cpfeatures.errors import InputError
from cpfeatures.measure import Objects
from cpfeatures.measure import _radial as R
from cpfeatures.measure._radial import measure_family, radial

ROLES = ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"]


def tied_objects(labels: np.ndarray) -> np.ndarray:
    """Per label 1..max: more than one pixel is farthest from the edge (centrosome's distance)."""
    d = distance_to_edge(labels)
    n = int(labels.max())
    peak = np.zeros(n + 1)
    np.maximum.at(peak, labels.ravel(), d.ravel())
    at_peak = (d.ravel() == peak[labels.ravel()]) & (labels.ravel() > 0)
    return np.bincount(labels.ravel()[at_peak], minlength=n + 1)[1:] > 1


@pytest.mark.parametrize("well", ["D08", "N14"])
@pytest.mark.parametrize("compartment", ["Nuclei", "Cells", "Cytoplasm"])
def test_equals_cellprofiler_export(cp_ref, well, compartment):
    objects = Objects(cp_ref.labels(well)[compartment])
    table = cp_ref.objects_table(compartment, well)
    rows = table["ObjectNumber"].to_numpy() - 1
    ours = measure_family(objects, {r: cp_ref.corrected(well, r) for r in ROLES},
                          {"bins": 4, "max_radius": 100, "scaled": True})
    reference = [c for c in table.columns if c.startswith("RadialDistribution_")]
    assert len(reference) == 96 and sorted(ours) == sorted(reference)
    r = np.array([np.corrcoef(ours[c][rows], table[c])[0, 1] for c in reference])
    assert np.mean(r >= 0.99) >= 0.99
    for col in reference:
        # equal to the export's printed precision: same centres (CellProfiler's ties), same
        # rings and wedges, intensities summed in float32 in CellProfiler's order
        np.testing.assert_allclose(ours[col][rows], table[col], rtol=2e-7, atol=1e-12, err_msg=col)
    # the geometry was prepared once for the 8 images
    assert sum(1 for k in objects._cache if k[0] == "radial_centres") == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # cp-measure's 0/0 for empty wedges
def test_against_cp_measure_and_ties(cp_ref):
    """cp-measure takes the first farthest pixel as the centre; CellProfiler takes the last one of
    scipy's unstable sort. Objects with one farthest pixel agree with cp-measure; with ties, we
    agree with CellProfiler's export where cp-measure does not."""
    well = "D08"
    labels = cp_ref.labels(well)["Cells"]
    table = cp_ref.objects_table("Cells", well)
    tied = tied_objects(labels)
    assert 0 < tied.sum() < tied.size
    cp_wrong = np.zeros(tied.size, bool)
    for role in ("DNA", "Mito"):
        image = cp_ref.corrected(well, role)
        ours = radial(labels, image)
        peer = get_radial_distribution(labels, image, scaled=True, bin_count=4, maximum_radius=100)
        for key, values in peer.items():
            values = np.asarray(values, float)
            feature, suffix = key.split("_")[1:]
            np.testing.assert_allclose(ours[key][~tied], values[~tied], rtol=1e-6, atol=1e-12, err_msg=key)
            exported = table[f"RadialDistribution_{feature}_{role}_{suffix}"].to_numpy()
            np.testing.assert_allclose(ours[key], exported, rtol=2e-7, atol=1e-12, err_msg=key)
            cp_wrong |= ~np.isclose(values, exported, rtol=1e-5, atol=1e-9)
    assert cp_wrong[tied].any() and not cp_wrong[~tied].any()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unscaled_bins_against_cp_measure(cp_ref):
    labels = cp_ref.labels("G21")["Nuclei"]
    image = cp_ref.corrected("G21", "DNA")
    ours = radial(labels, image, bins=3, max_radius=12, scaled=False)
    peer = get_radial_distribution(labels, image, scaled=False, bin_count=3, maximum_radius=12)
    assert sorted(ours) == sorted(peer)  # 1of3..3of3 and Overflow
    assert np.any(np.asarray(peer["RadialDistribution_FracAtD_Overflow"]) > 0)
    tied = tied_objects(labels)
    for key, values in peer.items():
        np.testing.assert_allclose(ours[key][~tied], np.asarray(values, float)[~tied], rtol=1e-6, atol=1e-12,
                                   err_msg=key)


def test_geometry_matches_centrosome(cp_ref):
    """Distance to the edge and geodesic distance from the centre, pixel for pixel, against
    centrosome run the way CellProfiler runs it (one propagate per colour of color_labels)."""
    labels = cp_ref.labels("G21")["Cytoplasm"]  # ring-shaped objects: geodesics bend round the nucleus
    objects = Objects(labels)
    d_edge = np.sqrt(R._squared_distance_to_edge(labels).astype(float))
    np.testing.assert_array_equal(d_edge, distance_to_edge(labels))
    cen = R._self_centres(objects)
    seeds = np.zeros(labels.shape, int)
    seeds[cen.ci, cen.cj] = labels[cen.ci, cen.cj]
    colors = color_labels(labels)
    d_ref = np.zeros(labels.shape)
    l_ref = np.zeros(labels.shape, int)
    for color in range(1, colors.max() + 1):
        mask = colors == color
        lab, dist = centrosome_propagate(np.zeros(labels.shape), seeds, mask, 1)
        d_ref[mask], l_ref[mask] = dist[mask], lab[mask]
    good = l_ref > 0
    flat = np.flatnonzero(good)
    np.testing.assert_array_equal(cen.flat, flat)
    np.testing.assert_array_equal(cen.d_from, d_ref.ravel()[flat])
    np.testing.assert_array_equal(cen.label, l_ref.ravel()[flat])


def _cellprofiler_other_centres(labels, centers, choice):
    """CellProfiler 4.2.8's "Centers/Edges of other objects" geometry with centrosome."""
    d_to_edge = distance_to_edge(labels)
    counts = scipy.ndimage.sum(np.ones(centers.shape), centers, np.arange(1, centers.max() + 1))
    good = counts > 0
    i, j = (centers_of_labels(centers) + 0.5).astype(int)
    ig, jg, lg = i[good], j[good], np.arange(1, len(i) + 1)[good]
    if choice == "centers":
        centers = np.zeros(centers.shape, int)
        centers[ig, jg] = lg
    cl, d_from = centrosome_propagate(np.zeros(centers.shape), centers, labels != 0, 1)
    cl[labels == 0] = 0
    missing = (labels != 0) & (cl == 0)
    missing_labels = np.unique(labels[missing])
    if len(missing_labels):
        mi, mj = centers_of_labels(labels)[:, missing_labels - 1]
        di, dj = mi[:, None] - ig[None, :], mj[:, None] - jg[None, :]
        best = np.zeros(labels.max() + 1, int)
        best[missing_labels] = lg[np.argsort(di * di + dj * dj)[:, 0]]
        cl[missing] = best[labels[missing]]
        ii, jj = np.nonzero(missing)
        di, dj = ii - i[cl[missing] - 1], jj - j[cl[missing] - 1]
        d_from[missing] = np.sqrt(di * di + dj * dj)
    good_mask = cl > 0
    if choice == "edges":
        good_mask &= centers == 0
    return d_to_edge, d_from, cl, good_mask, i, j


def _cellprofiler_rings(labels, image, geometry, bins=4):
    """CellProfiler 4.2.8's per-ring statistics from a prepared geometry (scaled bins)."""
    d_to_edge, d_from, cl, good, i, j = geometry
    n = labels.max()
    ic, jc = np.zeros(labels.shape), np.zeros(labels.shape)
    ic[good], jc[good] = i[cl[good] - 1], j[cl[good] - 1]
    norm = np.zeros(labels.shape)
    norm[good] = d_from[good] / ((d_from + d_to_edge)[good] + 0.001)
    ring = (norm * bins).astype(int)
    lab, rg = labels[good] - 1, ring[good]
    hist = np.zeros((n, bins + 1))
    np.add.at(hist, (lab, rg), image[good])
    count = np.zeros((n, bins + 1))
    np.add.at(count, (lab, rg), 1)
    frac = hist / hist.sum(1, keepdims=True)
    mean_frac = frac / (count / count.sum(1, keepdims=True) + np.finfo(float).eps)
    rows, cols = np.nonzero(good)
    wedge = ((rows > ic[good]).astype(int) + 2 * (cols > jc[good])
             + 4 * (np.abs(rows - ic[good]) > np.abs(cols - jc[good])))
    out = {}
    for b in range(bins):
        sel = rg == b
        vals = np.zeros((n, 8))
        cnt = np.zeros((n, 8))
        np.add.at(vals, (lab[sel], wedge[sel]), image[good][sel])
        np.add.at(cnt, (lab[sel], wedge[sel]), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.ma.masked_array(vals / cnt, cnt == 0)
        cv = np.array(np.std(means, 1) / np.mean(means, 1))
        cv[(cnt > 0).sum(1) == 0] = 0
        out[f"RadialDistribution_FracAtD_{b + 1}of{bins}"] = frac[:, b]
        out[f"RadialDistribution_MeanFrac_{b + 1}of{bins}"] = mean_frac[:, b]
        out[f"RadialDistribution_RadialCV_{b + 1}of{bins}"] = cv
    return out


@pytest.mark.parametrize("compartment", ["Cells", "Cytoplasm"])
@pytest.mark.parametrize("choice", ["centers", "edges"])
def test_other_objects_as_centres(cp_ref, compartment, choice):
    """Nuclei as centres (cytoplasm never contains its nucleus: CellProfiler's fallback to the
    nearest centre and straight-line distances), against CellProfiler's procedure on centrosome."""
    labels = cp_ref.labels("G21")
    image = cp_ref.corrected("G21", "Mito").astype(np.float64)
    ours = radial(labels[compartment], image, centers=labels["Nuclei"], center_choice=choice)
    expected = _cellprofiler_rings(labels[compartment], image,
                                   _cellprofiler_other_centres(labels[compartment], labels["Nuclei"], choice))
    for key, values in expected.items():
        np.testing.assert_allclose(ours[key], values, rtol=1e-9, atol=1e-12, err_msg=key)
    family = measure_family(Objects(labels[compartment]), {"Mito": image},
                            {"centers": labels["Nuclei"], "center_choice": choice})
    np.testing.assert_array_equal(family["RadialDistribution_MeanFrac_Mito_2of4"],
                                  ours["RadialDistribution_MeanFrac_2of4"])


def test_zernikes_against_cp_measure(cp_ref):
    labels = cp_ref.labels("G21")["Nuclei"]
    image = cp_ref.corrected("G21", "DNA")
    ours = {k: v for k, v in radial(labels, image, zernike=9, zernike_phase=True).items() if "Zernike" in k}
    peer = get_radial_zernikes(labels, image, zernike_degree=9)
    assert sorted(ours) == sorted(peer) and len(ours) == 60
    exact = np.ones(labels.max(), bool)
    for key, values in peer.items():
        values = np.asarray(values, float)
        if "Magnitude" in key:
            assert np.corrcoef(ours[key], values)[0, 1] > 0.98, key
            exact &= np.isclose(ours[key], values, rtol=1e-9, atol=1e-12)
    # CellProfiler drops a boundary pixel when rounding puts it a hair outside the enclosing
    # circle; the circles agree, so most objects are equal to rounding
    assert exact.mean() >= 0.5
    out = measure_family(Objects(labels), {"DNA": image}, {"zernike": 3, "zernike_phase": True})
    assert "RadialDistribution_ZernikeMagnitude_DNA_3_1" in out and "RadialDistribution_ZernikePhase_DNA_2_2" in out
    np.testing.assert_array_equal(out["RadialDistribution_ZernikeMagnitude_DNA_2_0"],
                                  ours["RadialDistribution_ZernikeMagnitude_2_0"])


def test_edge_cases():
    labels = np.zeros((40, 40), np.int32)
    labels[2:15, 2:15] = 1
    labels[20:23, 30:35] = 3  # label 2 is absent
    labels[30, 5] = 4  # one pixel
    labels[25:34, 18:27] = 5  # one farthest pixel, so its centre does not depend on the rest
    labels[37:39, 36:39] = 5  # a second piece the centre cannot reach
    rng = np.random.default_rng(0)
    image = rng.random((40, 40))
    out = radial(labels, image)
    frac = np.stack([out[f"RadialDistribution_FracAtD_{b}of4"] for b in range(1, 5)], 1)
    # CellProfiler: an absent object has 0/0 fractions and a RadialCV of 0
    assert np.isnan(frac[1]).all() and out["RadialDistribution_RadialCV_1of4"][1] == 0
    np.testing.assert_allclose(frac[[0, 2, 3, 4]].sum(1), 1.0)
    assert frac[3, 0] == 1.0  # the single pixel is its own centre: ring 1
    # the piece of object 5 its centre cannot reach is left out, as CellProfiler leaves it
    whole = labels.copy()
    whole[37:39, 36:39] = 0
    alone = radial(whole, image)
    for key in out:
        assert out[key][4] == alone[key][4], key
    brighter = radial(labels, np.where((labels == 5) & (whole == 0), 1.0, image))
    assert brighter["RadialDistribution_FracAtD_1of4"][4] == out["RadialDistribution_FracAtD_1of4"][4]
    dark = radial(labels, np.zeros((40, 40)))
    assert np.isnan(dark["RadialDistribution_FracAtD_1of4"][0])
    assert dark["RadialDistribution_RadialCV_1of4"][0] == 0
    three = measure_family(Objects(labels), {"X": image}, {"bins": 3})
    assert sorted(three) == sorted(f"RadialDistribution_{f}_X_{b}of3" for f in ("FracAtD", "MeanFrac", "RadialCV")
                                   for b in (1, 2, 3))
    with pytest.raises(InputError):
        radial(labels, image, bins=0)
    with pytest.raises(InputError):
        radial(labels, image[:10])
    with pytest.raises(InputError):
        radial(labels, image, centers=labels, center_choice="middle")
    with pytest.raises(InputError):
        radial(labels, np.full((40, 40), np.nan))
    with pytest.raises(InputError):
        radial(labels, image, centers=labels[:5])


# --- degenerate and random objects (cases.py) ---------------------------------------------------

import cases  # noqa: E402  (tests/measure/conftest.py puts it on the path)


@pytest.mark.parametrize("name", cases.NAMES)
def test_degenerate_case_equals_cellprofiler(name):
    """Oracle: CellProfiler 4.2.8's MeasureObjectIntensityDistribution, 4 scaled bins (recorded by
    tools/cellprofiler_cases.py). Tolerance: none, bit for bit (FracAtD compared in float32, the
    precision CellProfiler computes it in): tied centres, one-pixel objects, rings cut by holes, and
    an object that is the whole image (CellProfiler's distance transform of a mask without background)."""
    cases.assert_equals_cellprofiler(name, "radial", 0.0, 0.0, skip=("FracAtD",))
    theirs = {k: v.astype(np.float32) for k, v in cases.cellprofiler(name, "radial").items() if "FracAtD" in k}
    ours = {k: np.asarray(v).astype(np.float32) for k, v in cases.ours(name, "radial").items() if "FracAtD" in k}
    present = np.unique(cases.case(name)["labels"][cases.case(name)["labels"] > 0]) - 1
    for key, values in theirs.items():
        np.testing.assert_array_equal(ours[key][present], values[present], err_msg=key)
