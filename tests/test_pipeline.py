"""process_site: one site's tables, with the settings of the config."""

from __future__ import annotations

import numpy as np

from cpfeatures.config import load_config
from cpfeatures.io import read_plate
from cpfeatures.pipeline import process_site


def test_settings_reach_the_families(bundled_plate_dir):
    images = read_plate(bundled_plate_dir).load_site("D14", 5, roles=["DNA", "RNA"])
    cfg = load_config(overrides={"measure": {"families": ["texture", "granularity"],
                                             "texture": {"scales": [2]},
                                             "granularity": {"spectrum_length": 4}}})
    tables = process_site(images, config=cfg).tables
    cells = tables["Cells"]
    assert "Cells_Texture_Contrast_DNA_2_00_256" in cells
    assert not any("_3_00_256" in c for c in cells.columns)
    assert "Cells_Granularity_4_RNA" in cells and "Cells_Granularity_5_RNA" not in cells
    assert "Granularity_4_DNA" in tables["Image"] and "Texture_Contrast_RNA_2_03_256" in tables["Image"]
    # object i of each compartment is the same cell
    n = tables["Image"].loc[0, "Count_Nuclei"]
    assert len(cells) == len(tables["Nuclei"]) == n
    np.testing.assert_array_equal(tables["Cytoplasm"]["Cytoplasm_Parent_Nuclei"], tables["Cytoplasm"]["ObjectNumber"])
