"""`cpfeatures crops STORE PLATE` (crops/_command.py) on the bundled run: crops of every single cell,
pixels equal to the corrected images sliced with plain numpy, masks equal to the run's own labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cpfeatures.cli import main
from cpfeatures.crops import KEYS, CropSettings, CropStore, crops_from_store, read_index
from cpfeatures.errors import CpfeaturesError
from cpfeatures.store import Store

from .conftest import oracle_stack, oracle_uint16, padded_box


@pytest.fixture(scope="module")
def from_store(bundled_run, bundled_plate_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("crops_cmd") / "c.zarr"
    summary = crops_from_store(bundled_run, bundled_plate_dir, out, settings=CropSettings(masks=True), workers=0)
    return out, summary


def test_every_single_cell_has_its_crop_and_the_pixels_are_the_corrected_images(from_store, bundled_run,
                                                                                 bundled_plate_dir):
    out, summary = from_store
    assert not summary.failed and len(summary.done) == 4
    store = Store(bundled_run)
    cells = store.single_cells()
    index = read_index(out)
    joined = cells.merge(index, on=KEYS, how="outer", validate="one_to_one", indicator=True)
    assert (joined["_merge"] == "both").all() and len(index) == len(cells) == summary.n_crops == 66
    np.testing.assert_array_equal(joined["Crop_Center_X"], joined["Nuclei_Location_Center_X"])
    crops = CropStore(out)
    illum = store.read_illum()
    for key, rows in index.groupby("Crop_Site"):
        images = crops.read_site(key, ("images",))["images"]
        stack = oracle_stack(bundled_plate_dir, key.split("_")[0], crops.info["channels"], illum)
        for row in rows.itertuples():
            side = row.Crop_Box_MaxX - row.Crop_Box_MinX
            np.testing.assert_array_equal(images[row.Crop_Row],
                                          oracle_uint16(padded_box(stack, row.Crop_Box_MinX, row.Crop_Box_MinY, side)))


def test_segmenting_again_gives_the_runs_masks(from_store, crops_run):
    # crops_run saved D08_f5's labels and cropped them in the run; the command segmented D08_f5 again
    again = CropStore(from_store[0]).read_site("D08_f5", ("images", "masks", "index"))
    in_run = CropStore(crops_run[1]).read_site("D08_f5", ("images", "masks", "index"))
    for name in ("images", "masks", "index"):
        np.testing.assert_array_equal(again[name], in_run[name])


def test_resumes_and_refuses_other_settings_or_plates(from_store, bundled_run, bundled_plate_dir, tmp_path):
    out, _ = from_store
    again = crops_from_store(bundled_run, bundled_plate_dir, out, settings=CropSettings(masks=True), workers=0)
    assert again.skipped == ["D08_f5", "D14_f5", "G21_f5", "L09_f5"] and not again.done
    with pytest.raises(CpfeaturesError, match="other settings"):
        crops_from_store(bundled_run, bundled_plate_dir, out, settings=CropSettings(size=64), workers=0)
    other = tmp_path / "other.zarr"
    st = Store(other, mode="a")
    st.initialize("ANOTHER_PLATE", "")
    with pytest.raises(CpfeaturesError, match="not the store's plate"):
        crops_from_store(other, bundled_plate_dir, tmp_path / "x.zarr", workers=0)


def test_a_site_whose_labels_are_not_reproduced_fails_alone(bundled_run, bundled_plate_dir, tmp_path):
    import shutil

    store = tmp_path / "s.zarr"
    shutil.copytree(bundled_run, store)
    # another nucleus threshold recorded as the run's settings: segmenting again finds other cells
    root = json.loads((store / "zarr.json").read_text())
    config = root["attributes"]["cpfeatures"]["config"]
    root["attributes"]["cpfeatures"]["config"] = config.replace("threshold_correction = 1.25",
                                                                "threshold_correction = 2.5")
    assert root["attributes"]["cpfeatures"]["config"] != config
    (store / "zarr.json").write_text(json.dumps(root))
    summary = crops_from_store(store, bundled_plate_dir, tmp_path / "c.zarr", workers=0, sites=["D14_f5"])
    assert list(summary.failed) == ["D14_f5"] and "does not reproduce the store's cells" in summary.failed["D14_f5"]
    assert CropStore(tmp_path / "c.zarr").completed_sites() == []


def test_cli_crops_bbox_skip(bundled_run, bundled_plate_dir, tmp_path):
    out = tmp_path / "b.zarr"
    result = CliRunner().invoke(main, ["crops", str(bundled_run), str(bundled_plate_dir), "-o", str(out),
                                       "--crop-size", "96", "--crop-mode", "bbox", "--crop-border", "skip",
                                       "--crop-channels", "DNA,Brightfield", "--workers", "0", "--sites", "G21_f5",
                                       "--progress", "none", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["done"] == 1 and report["failed"] == 0
    crops = CropStore(out)
    assert crops.info["channels"] == ["DNA", "Brightfield"] and crops.info["mode"] == "bbox"
    index = read_index(out)
    assert report["crops_written"] == len(index) > 0 and not index["Crop_Clipped"].any()
    assert (index["Crop_Box_MinX"] >= 0).all() and (index["Crop_Box_MaxY"] <= 540).all()
    assert crops.read_site("G21_f5")["images"].shape == (len(index), 2, 96, 96)
    bad = CliRunner().invoke(main, ["crops", str(bundled_run), str(bundled_plate_dir), "-o", str(tmp_path / "n"),
                                    "--crop-channels", "DNA,Nope", "--workers", "0"])
    assert bad.exit_code != 0 and "Nope" in bad.output and "Traceback" not in bad.output
