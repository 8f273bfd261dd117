"""`run --save-crops` (crops/_hooks.py and its calls in run.py) on a real site: the crops are the run's
corrected images sliced at the documented boxes, the masks its saved labels, the index joins its tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cpfeatures.crops import KEYS, CropError, CropSettings, CropStore, read_index
from cpfeatures.store import Store

from .conftest import oracle_stack, oracle_uint16, padded_box


def test_run_writes_crops_equal_to_the_corrected_images_and_labels(crops_run, bundled_plate_dir):
    store_path, crops_path = crops_run
    store, crops = Store(store_path), CropStore(crops_path)
    assert crops.completed_sites() == ["D08_f5"]
    assert crops.info["source"] == store.url and crops.info["plate_id"] == store.info["plate_id"]
    arrays = crops.read_site("D08_f5", ("images", "masks", "index"))
    index = read_index(crops_path)
    stack = oracle_stack(bundled_plate_dir, "D08", crops.info["channels"], store.read_illum())
    labels = store.site_labels("D08_f5")
    for i, row in index.iterrows():
        x0, y0, side = row["Crop_Box_MinX"], row["Crop_Box_MinY"], row["Crop_Box_MaxX"] - row["Crop_Box_MinX"]
        np.testing.assert_array_equal(arrays["images"][i], oracle_uint16(padded_box(stack, x0, y0, side)))
        for m, name in enumerate(("Nuclei", "Cells")):
            np.testing.assert_array_equal(arrays["masks"][i, m],
                                          padded_box(labels[name], x0, y0, side) == row["Metadata_ObjectNumber"])
    # one crop per single cell of the site, joined on the single-cell tables' own keys, centres exact
    cells = store.single_cells(["D08_f5"])
    joined = cells.merge(index, on=KEYS, how="outer", validate="one_to_one", indicator=True)
    assert (joined["_merge"] == "both").all() and len(joined) == len(cells) == 14
    np.testing.assert_array_equal(joined["Crop_Center_X"], joined["Nuclei_Location_Center_X"])
    np.testing.assert_array_equal(joined["Crop_Center_Y"], joined["Nuclei_Location_Center_Y"])


def test_resumed_run_with_other_crop_settings_is_refused_and_done_sites_without_crops_are_named(
        crops_run, tmp_path):
    from cpfeatures.crops._write import prepare_run

    store = Store(crops_run[0])
    done = set(store.completed_sites())
    with pytest.raises(CropError, match="other settings.*size"):
        prepare_run(CropSettings(size=64, masks=True, path=str(crops_run[1])), store, "CPJUMP1_EXAMPLE",
                    store.info["roles"], done, sorted(done))
    with pytest.warns(RuntimeWarning, match="3 site\\(s\\) already in the store have no crops.*cpfeatures crops"):
        prepare_run({"masks": True}, store, "CPJUMP1_EXAMPLE", store.info["roles"], done, sorted(done))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = prepare_run({"masks": True}, store, "CPJUMP1_EXAMPLE", store.info["roles"], done, ["D08_f5"])
    assert settings.path == str(crops_run[1])
    with pytest.raises(Exception, match="Brightfield2"):
        prepare_run(CropSettings(channels=("DNA", "Brightfield2"), path=str(tmp_path / "c.zarr")), store,
                    "CPJUMP1_EXAMPLE", store.info["roles"], done, [])


def _run_site_args(store_path, plate_dir, key, crops):
    from cpfeatures.config import load_config
    from cpfeatures.io import read_plate
    from cpfeatures.run import SiteTask

    plate = read_plate(plate_dir)
    site = next(s for s in plate.sites if f"{s.well}_f{s.field}" == key)
    paths, _ = plate.site_paths([site], plate.roles)
    return SiteTask(str(store_path), plate.plate_id, site.well, site.field, paths[key], plate.roles,
                    plate.image_shape, str(plate.dtype), load_config(), save_labels=False, hooks=(crops,))


def test_site_task_writes_masks_without_keeping_labels_and_commits_crops_before_the_site(bundled_run,
                                                                                         bundled_plate_dir, tmp_path):
    import os
    import shutil

    from cpfeatures.run import run_site

    out = tmp_path / "s.zarr"
    shutil.copytree(bundled_run, out)
    Store(out, mode="a").uncommit("L09_f5")
    settings = CropSettings(masks=True, path=str(tmp_path / "s.crops.zarr"))
    CropStore(settings.path, mode="a").initialize("CPJUMP1_EXAMPLE", settings)
    task = _run_site_args(out, bundled_plate_dir, "L09_f5", settings)
    result = run_site(task)
    assert result["ok"], result
    assert not Store(out).site_labels("L09_f5")  # labels were needed for the masks only
    arrays = CropStore(settings.path).read_site("L09_f5", ("images", "masks", "index"))
    assert arrays["masks"].shape == (result["n_objects"], 2, 128, 128) and arrays["masks"][:, 1].any(axis=(1, 2)).all()
    # the crops cannot be written: the site stays uncommitted in the feature store and a rerun writes it
    Store(out, mode="a").uncommit("L09_f5")
    sites = os.path.join(settings.path, "sites")
    shutil.rmtree(sites)
    open(sites, "w").close()  # a file where the sites folder should be
    result = run_site(task)
    assert result.get("storage_error") and "L09_f5" not in Store(out).completed_sites()
