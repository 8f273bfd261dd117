"""The plate run end to end on the real bundled plate: store = per-site function, resume after
SIGKILL, a real dask scheduler + worker, and bad sites recorded while the others complete."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpfeatures.config import load_config
from cpfeatures.io import read_plate
from cpfeatures.pipeline import process_site
from cpfeatures.run import run_plate
from cpfeatures.store import Store, read_table

CLI = [sys.executable, "-m", "cpfeatures.cli"]


@pytest.fixture(scope="module")
def reference_run(bundled_run):
    return bundled_run


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


def test_store_equals_per_site_function(reference_run, bundled_plate_dir):
    store = Store(reference_run)
    illum = store.read_illum()
    plate = read_plate(bundled_plate_dir)
    direct = process_site(plate.load_site("G21", 5), illum=illum, config=load_config())
    for table in ("Nuclei", "Cells", "Cytoplasm"):
        stored = read_table(reference_run, table, wells=["G21"])
        want = direct.tables[table].rename(columns={"ObjectNumber": "Metadata_ObjectNumber"})
        np.testing.assert_array_equal(stored["Metadata_ObjectNumber"], want["Metadata_ObjectNumber"])
        for col in want.columns[1:]:
            np.testing.assert_array_equal(stored[col].to_numpy(), want[col].to_numpy(dtype=float), err_msg=col)
    image = read_table(reference_run, "image", wells=["G21"])
    assert image.loc[0, "Count_Nuclei"] == direct.tables["Image"].loc[0, "Count_Nuclei"]
    assert set(illum) == set(plate.roles)
    assert "plate_id" in store.info and "[segment.nuclei]" in store.info["config"]


def test_cli_run_resume_after_sigkill(bundled_plate_dir, reference_run, tmp_path):
    out = tmp_path / "killed.zarr"
    cmd = CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # kill the whole run (client, scheduler, worker) as soon as one site is committed
    while time.time() < deadline:
        if (out / "sites").exists() and Store(out).completed_sites():
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = Store(out).completed_sites()
    assert 1 <= len(done_before) < 4
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before)} already in the store" in result.stdout
    for table in ("image", "nuclei", "cells", "cytoplasm"):
        a, b = _sorted(read_table(out, table)), _sorted(read_table(reference_run, table))
        b = b[a.columns]  # Image rows carry the same columns
        pd.testing.assert_frame_equal(a, b)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_on_existing_dask_cluster(bundled_plate_dir, reference_run, tmp_path):
    port = _free_port()
    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else "dask"
    sched = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard", "--local-directory", str(tmp_path / "w")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = tmp_path / "cluster.zarr"
        cmd = CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--scheduler", f"tcp://127.0.0.1:{port}",
                     "--wells", "D08,L09", "--no-progress"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        cells = _sorted(read_table(out, "cells"))
        assert set(cells["Metadata_Well"]) == {"D08", "L09"}
        ref = _sorted(read_table(reference_run, "cells", wells=["D08", "L09"]))
        pd.testing.assert_frame_equal(cells, ref)
    finally:
        for p in (worker, sched):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_bad_sites_recorded_others_complete(bundled_plate_dir, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    bad = plate / "Images" / "r04c14f05p01-ch2sk1fk1fl1.tiff"  # D14, AGP
    bad.write_bytes(bad.read_bytes()[:5000])
    (plate / "Images" / "r07c21f05p01-ch5sk1fk1fl1.tiff").unlink()  # G21 loses its DNA image
    out = tmp_path / "bad.zarr"
    cfg = load_config(overrides={"illum": {"enabled": False}})  # illumination needs every image
    summary = run_plate(plate, out, cfg, workers=1, progress=False)
    assert sorted(summary.done) == ["D08_f5", "L09_f5"]
    errors = Store(out).errors().set_index("site")
    assert sorted(errors.index) == ["D14_f5", "G21_f5"]
    assert "r04c14f05p01-ch2" in errors.loc["D14_f5", "file"] and "truncated" in errors.loc["D14_f5", "message"]
    assert "r07c21f05p01-ch5" in errors.loc["G21_f5", "file"]
    result = subprocess.run(CLI + ["run", str(plate), "-o", str(out), "--no-progress", "--workers", "1"],
                            capture_output=True, text=True, timeout=300)
    # the store was written without illumination; same config is needed to resume
    assert result.returncode != 0


def test_export_for_pycytominer(reference_run, tmp_path):
    import pycytominer

    result = subprocess.run(CLI + ["export", str(reference_run), "--format", "parquet", "-o", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    cells = pd.read_parquet(tmp_path / "x" / "SingleCells.parquet")
    # "infer", as notebooks call it (CytoTable's names: ids are Metadata_, Image_FileName_* text)
    profiles = pycytominer.aggregate(cells, strata=["Metadata_Plate", "Metadata_Well"], features="infer")
    assert len(profiles) == 4
    want = cells.groupby("Metadata_Well")["Cells_Intensity_MeanIntensity_DNA"].median()
    got = profiles.set_index("Metadata_Well")["Cells_Intensity_MeanIntensity_DNA"]
    np.testing.assert_allclose(got.loc[want.index], want)


def test_empty_sites_fail_unless_kept(make_plate, tmp_path):
    # uniform images: thresholding finds no nucleus anywhere
    plate = make_plate(wells=((2, 3),), fields=(1,), shape=(96, 96),
                       images_fn=lambda row, col, field, ch: np.full((96, 96), 100, np.uint16))
    cfg = load_config(overrides={"illum": {"enabled": False}})
    summary = run_plate(plate, tmp_path / "fail.zarr", cfg, workers=1, progress=False)
    assert not summary.ok and summary.done == []
    errors = Store(tmp_path / "fail.zarr").errors()
    assert errors["message"].str.contains("no nucleus").all() and errors["file"].str.contains("-ch5").all()
    kept = load_config(overrides={"illum": {"enabled": False}, "run": {"empty_sites": "keep"}})
    summary = run_plate(plate, tmp_path / "keep.zarr", kept, workers=1, progress=False)
    assert summary.ok and summary.done == ["B03_f1"]
    assert read_table(tmp_path / "keep.zarr", "image")["Count_Nuclei"].tolist() == [0.0]


def test_a_resume_shows_the_store_and_keeps_the_measuring_runs_clock(bundled_plate_dir, bundled_run, tmp_path):
    """A rerun with nothing left to do says what the store holds, and does not overwrite the recorded
    phase times of the run that measured the sites (the report prints them)."""
    out = tmp_path / "resumed.zarr"
    shutil.copytree(bundled_run, out)
    before = Store(out).info["phase_seconds"]
    cells = len(read_table(out, "cells"))
    done = subprocess.run(CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "0 sites done, 4 already in the store" in done.stdout
    assert f"store: 4 sites, {cells} cells" in done.stdout
    assert Store(out).info["phase_seconds"] == before and before["sites_done"] == 4


def test_a_run_prints_only_its_own_lines(bundled_plate_dir, tmp_path):
    """No dask noise on stderr without --verbose: not the dashboard's "port 8787 is already in use" (the
    port is taken here on purpose), not the nanny's shutdown warnings."""
    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))
        holder.listen(1)
    except OSError:  # something holds it already: the condition the test needs
        pass
    try:
        done = subprocess.run(CLI + ["run", str(bundled_plate_dir), "-o", str(tmp_path / "quiet.zarr"), "--workers",
                                     "2", "--no-progress"], capture_output=True, text=True, timeout=600)
    finally:
        holder.close()
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.startswith("plate CPJUMP1_EXAMPLE: 4 sites done"), done.stderr
