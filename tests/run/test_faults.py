"""A whole plate, whatever happens (run.py): every fault costs one site at most, on copies of the
real bundled plate with real faults: truncated, empty and wrong-size TIFFs in the illumination
phase, worker processes killed mid-site on a real LocalCluster, a full disk (a small tmpfs),
a second run on the same store, and SIGKILLs of the whole run at random moments."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import tifffile

from cpfeatures.config import load_config
from cpfeatures.illum import calculate
from cpfeatures.pipeline import process_site
from cpfeatures.run import run_plate
from cpfeatures.store import Store, read_table

# the worker processes cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLI = [sys.executable, "-m", "cpfeatures.cli"]
TABLES = ("image", "nuclei", "cells", "cytoplasm")
# bundled plate: D08 = r04c08, D14 = r04c14, G21 = r07c21, L09 = r12c09; ch5 = DNA, ch8 = Brightfield
SITE_FILES = {"D08_f5": "r04c08", "D14_f5": "r04c14", "G21_f5": "r07c21", "L09_f5": "r12c09"}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


def assert_same_tables(store, reference, wells=None) -> None:
    """Every table of ``store`` equals the undisturbed ``reference`` run's (optionally for some wells)."""
    for table in TABLES:
        a = _sorted(read_table(store, table))
        b = _sorted(read_table(reference, table, wells=wells))
        assert not a.duplicated([c for c in a.columns if c.startswith("Metadata_")]).any(), table
        pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False)


@pytest.fixture
def plate_copy(bundled_plate_dir, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    return plate


def _image(plate: Path, site: str, channel: int) -> Path:
    return plate / "Images" / f"{SITE_FILES[site]}f05p01-ch{channel}sk1fk1fl1.tiff"


# -- 1. the illumination phase ------------------------------------------------------------------

def test_bad_images_cost_their_sites_not_the_plate(plate_copy, bundled_run, tmp_path):
    dna = _image(plate_copy, "D14_f5", 5)
    dna.write_bytes(dna.read_bytes()[:6000])                      # truncated DNA image
    _image(plate_copy, "G21_f5", 8).write_bytes(b"")              # zero-byte brightfield
    out = tmp_path / "faults.zarr"
    cmd = CLI + ["run", str(plate_copy), "-o", str(out), "--workers", "2", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "2 sites done" in result.stdout and "2 failed" in result.stdout
    # a channel that loses a quarter of its images is worth a warning
    assert "channel DNA: 1 of 4 images (25%)" in result.stderr
    assert "channel Brightfield: 1 of 4 images (25%)" in result.stderr
    errors = Store(out).errors().set_index("site")
    assert sorted(errors.index) == ["D14_f5", "G21_f5"]
    assert errors.loc["D14_f5", "file"].endswith(dna.name) and "truncated" in errors.loc["D14_f5", "message"]
    assert errors.loc["G21_f5", "file"].endswith(_image(plate_copy, "G21_f5", 8).name)
    # each bad image was left out of its own channel's mean only, summed in site order whichever worker saw it
    illum = Store(out).read_illum()
    plate_sites = ["D08_f5", "D14_f5", "G21_f5", "L09_f5"]
    for role, channel, bad in (("DNA", 5, "D14_f5"), ("Brightfield", 8, "G21_f5"), ("RNA", 3, None)):
        images = [tifffile.imread(_image(plate_copy, s, channel)) for s in plate_sites if s != bad]
        np.testing.assert_array_equal(illum[role], calculate(images, load_config()["illum"]), err_msg=role)
    # the good sites are those of an undisturbed run of the same plate
    assert_same_tables(out, _illum_only_run(plate_copy, illum, tmp_path), wells=["D08", "L09"])


def test_a_fixed_image_fixes_the_plate(plate_copy, bundled_run, tmp_path):
    """An image left out of its channel's illumination function, then restored: the rerun computes the
    functions again with it and measures every site again, so the store equals a clean run's."""
    dna = _image(plate_copy, "D14_f5", 5)
    good = dna.read_bytes()
    dna.write_bytes(good[:6000])  # truncated
    out = tmp_path / "fixed.zarr"
    first = run_plate(plate_copy, out, workers=1, progress=False)
    assert first.done == ["D08_f5", "G21_f5", "L09_f5"] and list(first.failed["site"]) == ["D14_f5"]
    assert Store(out).illum_excluded() == [{"role": "DNA", "file": str(dna)}]
    dna.write_bytes(good)
    with pytest.warns(RuntimeWarning, match=r"1 image\(s\) left out of the illumination functions can be read now "
                                            r".*the 3 site\(s\) corrected with the old ones are measured again"):
        second = run_plate(plate_copy, out, workers=1, progress=False)
    assert second.ok and sorted(second.done) == ["D08_f5", "D14_f5", "G21_f5", "L09_f5"]
    assert second.illum_redone == [str(dna)] and Store(out).illum_excluded() == []
    assert_same_tables(out, bundled_run)


def _illum_only_run(plate: Path, illum, tmp_path: Path) -> Path:
    """The two good sites processed directly with the run's illumination functions."""
    from cpfeatures.io import read_plate

    ref = Store(tmp_path / "direct.zarr", mode="a")
    ref.initialize("CPJUMP1_EXAMPLE", "")
    p = read_plate(plate)
    for well in ("D08", "L09"):
        images = p.load_site(well, 5)
        meta = {f"FileName_Orig{r}": os.path.basename(path) for r, path in
                zip(p.site_images(well, 5)["role"], p.site_images(well, 5)["path"])}
        ref.write_site("CPJUMP1_EXAMPLE", well, 5, process_site(images, illum=illum, image_metadata=meta))
    return ref.url


def test_wrong_size_image_and_resume_equal(plate_copy, tmp_path):
    small = _image(plate_copy, "L09_f5", 3)
    tifffile.imwrite(small, np.full((100, 100), 500, np.uint16), compression="lzw")
    out = tmp_path / "shape.zarr"
    summary = run_plate(plate_copy, out, workers=1, progress=False)
    assert sorted(summary.done) == ["D08_f5", "D14_f5", "G21_f5"]
    assert list(summary.illum_excluded["site"]) == ["L09_f5"]
    assert "100x100" in summary.illum_excluded["message"].iloc[0]
    failed = summary.failed.set_index("site")
    assert "100x100" in failed.loc["L09_f5", "message"] and failed.loc["L09_f5", "phase"] == "site"


# -- 2. worker faults ---------------------------------------------------------------------------

def _kill_worker_on(*, marker: str, tag: str, always: bool = False):
    """process_site, except that the worker process SIGKILLs itself on the site whose DNA file has ``tag``
    (only the first time unless ``always``): a worker killed mid-site, as the OOM killer does.

    A closure, not a ``functools.partial`` of a module-level function: plain pickle would send that by
    reference, and the workers of a non-editable install (as CI installs) cannot import ``tests``."""

    def process(images, **kwargs):
        if tag in kwargs.get("image_metadata", {}).get("FileName_OrigDNA", ""):
            if always or not os.path.exists(marker):
                with open(marker, "a") as fh:
                    fh.write(f"{os.getpid()}\n")
                os.kill(os.getpid(), signal.SIGKILL)
        return process_site(images, **kwargs)

    return process


def test_worker_killed_mid_site_is_retried_elsewhere(bundled_plate_dir, bundled_run, tmp_path):
    marker = tmp_path / "killed"
    out = tmp_path / "retry.zarr"
    process = _kill_worker_on(marker=str(marker), tag="r04c14")
    summary = run_plate(bundled_plate_dir, out, workers=2, progress=False, process=process)
    assert marker.read_text().count("\n") == 1  # one worker really died on D14
    assert summary.ok and sorted(summary.done) == sorted(SITE_FILES)
    assert_same_tables(out, bundled_run)


def test_worker_dying_every_time_is_recorded(bundled_plate_dir, bundled_run, tmp_path):
    marker = tmp_path / "killed"
    out = tmp_path / "dies.zarr"
    cfg = load_config(overrides={"run": {"worker_retries": 1}})
    process = _kill_worker_on(marker=str(marker), tag="r07c21", always=True)
    summary = run_plate(bundled_plate_dir, out, cfg, workers=2, progress=False, process=process)
    assert marker.read_text().count("\n") == 2  # tried twice (one retry), killed both times
    assert sorted(summary.done) == ["D08_f5", "D14_f5", "L09_f5"]
    failed = summary.failed.set_index("site")
    assert list(failed.index) == ["G21_f5"] and failed.loc["G21_f5", "phase"] == "worker"
    assert "worker process died" in failed.loc["G21_f5", "message"]


def _close_worker_for_good(images, **kwargs):
    """A worker that stops itself and its nanny, as one does that cannot unpickle its task: not restarted."""
    from distributed import get_worker

    worker = get_worker()
    worker.loop.add_callback(worker.close, nanny=True)
    time.sleep(60)


def test_workers_gone_for_good_fail_the_run_instead_of_hanging(bundled_plate_dir, tmp_path, monkeypatch):
    import cpfeatures.run._cluster as run_module

    monkeypatch.setattr(run_module, "_WAIT_POLL_S", 0.5)
    monkeypatch.setattr(run_module, "_NO_WORKERS_S", 3.0)
    t0 = time.perf_counter()
    summary = run_plate(bundled_plate_dir, tmp_path / "gone.zarr", workers=1, progress=False,
                        process=_close_worker_for_good)
    assert time.perf_counter() - t0 < 60
    # not "bad input": the sites in flight are recorded as failed by their workers, the rest resumes
    assert "every worker of the local cluster has stopped" in summary.stopped and not summary.complete
    errors = Store(tmp_path / "gone.zarr").errors()
    assert len(errors) >= 1 and set(errors["phase"]) == {"worker"}
    assert errors["message"].str.contains("none came back").all()


# -- 3. storage faults ----------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmpfs):
    """A 6.5 MB tmpfs: the store's metadata, illumination functions and about one site fit."""
    return tmpfs("disk", "size=6656k")


def test_disk_full_leaves_sites_uncommitted_and_resumes(bundled_plate_dir, bundled_run, small_disk):
    out = small_disk / "full.zarr"
    cmd = CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(out) in lines[0] and "No space left on device" in lines[0], result.stderr
    committed = Store(out).completed_sites()
    assert 1 <= len(committed) < 4
    assert Store(out).verify().empty  # what was committed is intact
    assert Store(out).errors().empty  # a storage fault is not a bad site
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{len(committed)} already in the store" in result.stdout
    assert_same_tables(out, bundled_run)


# -- 4. one writer per store ----------------------------------------------------------------------

def test_second_run_on_a_store_is_refused_at_once(bundled_plate_dir, tmp_path):
    from cpfeatures.store._lock import StoreLock

    out = tmp_path / "locked.zarr"
    first = Store(out, mode="a")
    with StoreLock(first.url):  # a run holding the store
        t0 = time.perf_counter()
        result = subprocess.run(CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--no-progress"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert "another run is writing this store" in result.stderr and f"process {os.getpid()}" in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert time.perf_counter() - t0 < 20
    assert "cpfeatures" not in Store(out, mode="a").root.attrs  # nothing was written


def test_lock_of_a_killed_run_does_not_block(bundled_plate_dir, bundled_run, tmp_path):
    out = tmp_path / "stale.zarr"
    cmd = CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "lock" / "zarr.json").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "lock" / "zarr.json").exists()  # the dead run's lock is still there
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert not (out / "lock").exists()
    assert_same_tables(out, bundled_run)


# -- 5. integrity ---------------------------------------------------------------------------------

def test_verify_finds_a_deleted_chunk_and_run_verify_redoes_it(bundled_plate_dir, bundled_run, tmp_path):
    out = tmp_path / "damaged.zarr"
    shutil.copytree(bundled_run, out)
    cmd = CLI + ["verify", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "0 damaged" in result.stdout, result.stdout + result.stderr
    chunks = [p for p in (out / "sites" / "L09_f5" / "Cells").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert chunks
    chunks[0].unlink()  # zarr would read this as zeros without a word
    flipped = next(p for p in (out / "sites" / "D14_f5" / "Nuclei").rglob("*") if p.is_file() and p.name != "zarr.json")
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "damaged L09_f5: Cells" in result.stdout and "damaged D14_f5: Nuclei" in result.stdout
    assert "2 damaged" in result.stdout
    run = subprocess.run(CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--verify", "--workers", "1",
                                "--no-progress"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "2 sites done, 2 already in the store" in run.stdout
    assert "damaged site(s) written again: D14_f5, L09_f5" in run.stderr
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode == 0
    assert_same_tables(out, bundled_run)


# -- 8. SIGKILL at random moments ---------------------------------------------------------------

def test_random_kills_of_the_whole_run_then_resume_equal(bundled_plate_dir, bundled_run, tmp_path):
    out = tmp_path / "campaign.zarr"
    cmd = CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--no-progress"]
    rng = random.Random(20261202)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 12.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert Store(out).verify().empty
    assert_same_tables(out, bundled_run)
