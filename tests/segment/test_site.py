"""segment_site against CellProfiler 4.2.8's own label images of the CPJUMP1 sites."""

from __future__ import annotations

import numpy as np
import pytest

from cpfeatures.errors import InputError
from cpfeatures.segment import segment_site


def matched_iou(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """For each reference object, the IoU of the object of ours overlapping it most."""
    n_ref, n_our = int(ref.max()), int(ours.max())
    both = (ours > 0) & (ref > 0)
    inter = np.zeros((n_ref + 1, n_our + 1))
    np.add.at(inter, (ref[both], ours[both]), 1)
    a_ref = np.bincount(ref.ravel(), minlength=n_ref + 1)
    a_our = np.bincount(ours.ravel(), minlength=n_our + 1)
    union = a_ref[:, None] + a_our[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)[1:, 1:]
    return iou.max(axis=1) if iou.size else np.zeros(n_ref)


@pytest.fixture(scope="module")
def segmented(cp_ref):
    out = {}
    for well in ("D08", "M02", "N14"):  # few and many cells
        images = {r: cp_ref.raw(well, r) for r in ("DNA", "RNA")}
        illum = {r: cp_ref.illum(r) for r in ("DNA", "RNA")}
        out[well] = segment_site(images, illum=illum, return_details=True)
    return out


@pytest.mark.parametrize("well", ["D08", "M02", "N14"])
def test_matches_cellprofiler_labels(segmented, cp_ref, well):
    labels, details = segmented[well]
    ref = cp_ref.labels(well)
    n_ours, n_ref = labels["Nuclei"].max(), ref["Nuclei"].max()
    assert abs(n_ours - n_ref) <= 0.05 * n_ref
    assert np.median(matched_iou(labels["Nuclei"], ref["Nuclei"])) >= 0.90
    assert np.median(matched_iou(labels["Cells"], ref["Cells"])) >= 0.85
    # In practice the label images are the same pixel for pixel.
    for name in ("Nuclei", "Cells", "Cytoplasm"):
        assert (labels[name] == ref[name]).mean() > 0.999, name


@pytest.mark.parametrize("well", ["D08", "M02", "N14"])
def test_thresholds_match_image_table(segmented, cp_ref, well):
    _, details = segmented[well]
    image = cp_ref.table("Image").set_index("Metadata_Well").loc[well]
    for col in ("Threshold_FinalThreshold_Nuclei", "Threshold_OrigThreshold_Nuclei",
                "Threshold_FinalThreshold_Cells", "Threshold_OrigThreshold_Cells",
                "Threshold_WeightedVariance_Nuclei", "Threshold_WeightedVariance_Cells"):
        assert details[col] == pytest.approx(image[col], rel=1e-4), col
    for col in ("Threshold_SumOfEntropies_Nuclei", "Threshold_SumOfEntropies_Cells"):
        assert details[col] == pytest.approx(image[col], rel=1e-3), col
    assert details["Count_Nuclei"] == image["Count_Nuclei"]
    assert details["Count_Cells"] == image["Count_Cells"]


def test_object_numbers_link_compartments(segmented):
    labels, details = segmented["M02"]
    nuclei, cells, cyto = labels["Nuclei"], labels["Cells"], labels["Cytoplasm"]
    assert nuclei.dtype == np.int32 and cells.dtype == np.int32
    assert set(np.unique(nuclei)) == set(range(nuclei.max() + 1))  # consecutive 1..N
    inside = nuclei > 0
    assert (cells[inside] == nuclei[inside]).all()  # every nucleus lies in the cell with its number
    assert ((cyto == 0) | (cyto == cells)).all()
    assert details["NucleiUnedited"].max() >= nuclei.max()


def test_blank_and_saturated_images_give_no_objects():
    zeros = np.zeros((128, 128), np.uint16)
    labels = segment_site({"DNA": zeros, "RNA": zeros})
    assert all(v.max() == 0 for v in labels.values())
    full = np.full((128, 128), 65535, np.uint16)
    labels = segment_site({"DNA": full, "RNA": full})
    assert labels["Nuclei"].max() == 0  # one object touching every border is discarded


def test_bad_input():
    good = np.zeros((64, 64), np.uint16)
    with pytest.raises(InputError, match="NaN"):
        segment_site({"DNA": np.full((64, 64), np.nan), "RNA": good})
    with pytest.raises(InputError, match="negative"):
        segment_site({"DNA": -np.ones((64, 64)), "RNA": good})
    with pytest.raises(InputError, match="RNA"):
        segment_site({"DNA": good})
    with pytest.raises(InputError, match="illumination function shape"):
        segment_site({"DNA": good, "RNA": good}, illum={"DNA": np.ones((32, 32))})
