"""`cpfeatures run PLATE PLATE ... -o FOLDER` (batch.py): one cluster, one store per plate, each resumable on its
own; a LoadData CSV of two plates is two plates; a plate that cannot be read is reported and the others run."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from cpfeatures.run import batch_plates, run_plates
from cpfeatures.io import read_plate
from cpfeatures.store import Store, read_table

CLI = [sys.executable, "-m", "cpfeatures.cli"]


def _two_plate_csv(bundled_plate_dir, path):
    """A LoadData CSV listing the bundled plate's D08 and L09 twice, as plates PA and PB."""
    plate = read_plate(bundled_plate_dir)
    rows = []
    for name in ("PA", "PB"):
        for well in ("D08", "L09"):
            files = plate.site_images(well, 5).set_index("role")["path"]
            row = {"Metadata_Plate": name, "Metadata_Well": well, "Metadata_Site": 5}
            for role in ("DNA", "RNA", "ER", "AGP", "Mito"):
                row[f"FileName_Orig{role}"] = files[role].rsplit("/", 1)[-1]
                row[f"PathName_Orig{role}"] = files[role].rsplit("/", 1)[0]
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_batch_of_plates_one_store_each(bundled_plate_dir, tmp_path):
    csv = _two_plate_csv(bundled_plate_dir, tmp_path / "load_data.csv")
    assert batch_plates([csv, "missing_plate"]) == [(str(csv), "PA"), (str(csv), "PB"), ("missing_plate", None)]
    out = tmp_path / "stores"
    done = subprocess.run(CLI + ["run", str(csv), str(tmp_path / "missing_plate"), "-o", str(out), "--sites",
                                 "D08_f5", "--workers", "1", "--no-progress", "--json"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2, done.stderr  # one plate refused; the other two ran
    result = json.loads(done.stdout)
    assert result["plates"] == ["PA", "PB"] and result["done"] == 2 and result["failed"] == 0
    assert len(result["refused"]) == 1 and "missing_plate" in result["refused"][0]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["PA.zarr", "PB.zarr"]
    a, b = read_table(out / "PA.zarr", "cells"), read_table(out / "PB.zarr", "cells")
    assert set(a["Metadata_Plate"]) == {"PA"} and len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns="Metadata_Plate"), b.drop(columns="Metadata_Plate"))
    # each plate resumes on its own: L09 is new on both, D08 is already there
    again = run_plates([csv], out, workers=1, progress=False, sites=["D08_f5", "L09_f5"])
    assert again.ok and [len(r.skipped) for r in again.runs] == [1, 1] and [len(r.done) for r in again.runs] == [1, 1]
    assert Store(out / "PB.zarr").completed_sites() == ["D08_f5", "L09_f5"]


def test_plate_ids_never_write_outside_the_output_folder(bundled_plate_dir, tmp_path):
    """Plate ids come from the data: ``../../x`` or ``/abs/x`` still make stores inside ``-o``."""
    (tmp_path / "work").mkdir()
    csv = _two_plate_csv(bundled_plate_dir, tmp_path / "work" / "load_data.csv")
    frame = pd.read_csv(csv)
    escape = str(tmp_path / "escaped")
    frame["Metadata_Plate"] = frame["Metadata_Plate"].map({"PA": "../../outside", "PB": escape})
    frame.to_csv(csv, index=False)
    out = tmp_path / "work" / "stores"
    batch = run_plates([csv], out, workers=1, progress=False, sites=["D08_f5"])
    assert [r.plate_id for r in batch.runs] == ["../../outside", escape]
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["___.._outside.zarr", escape.replace("/", "_") + ".zarr"])
    assert not (tmp_path / "outside.zarr").exists() and not (tmp_path / "escaped.zarr").exists()
    assert not any(p.suffix == ".zarr" for p in tmp_path.iterdir())
    assert all(Store(out / name).info["plate_id"] in ("../../outside", escape) for name in written)
