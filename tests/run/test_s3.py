"""A plate run from and to object storage (run.py, store.py, io/_fs.py) against a real S3 API over HTTP
(moto's server on 127.0.0.1): the bundled plate uploaded to a bucket, `cpfeatures run s3://... -o s3://...`
SIGKILLed mid-run, resumed on a dask scheduler whose workers read the images themselves, and the
tables compared with the local run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cpfeatures.io import fs as _fs
from cpfeatures.run import run_plate
from cpfeatures.store import Store, read_table

CLI = [sys.executable, "-m", "cpfeatures.cli"]
TABLES = ("image", "nuclei", "cells", "cytoplasm")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


def _completed(url: str) -> list[str]:
    try:
        return Store(url).completed_sites()
    except Exception:  # not initialized yet
        return []


def test_run_from_and_to_s3_killed_resumed_on_a_cluster_equals_local(s3_server, bundled_plate_dir, bundled_run,
                                                                     monkeypatch):
    from distributed import LocalCluster

    s3_server.bucket("screen")
    plate = s3_server.upload(bundled_plate_dir, "s3://screen/images/example")
    out = "s3://screen/runs/example.zarr"
    cmd = CLI + ["run", plate, "-o", out, "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _completed(out):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]  # killed mid-run, not after it
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _completed(out)
    assert 1 <= len(done) < 4, done
    assert s3_server.fs.exists("screen/runs/example.zarr/lock/zarr.json")  # the dead run's lock is left behind

    # resume through a scheduler: the client reads the index and one TIFF header, never an image
    client_reads = []
    real_read = _fs.read_bytes
    monkeypatch.setattr(_fs, "read_bytes", lambda p, *a, **k: client_reads.append(str(p)) or real_read(p, *a, **k))
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster:
        summary = run_plate(plate, out, scheduler=cluster.scheduler_address, progress=False)
    assert summary.ok, summary.failed
    assert sorted(summary.skipped) == done and len(summary.done) == 4 - len(done)
    assert not [p for p in client_reads if p.lower().endswith((".tif", ".tiff"))], client_reads
    assert not s3_server.fs.exists("screen/runs/example.zarr/lock/zarr.json")
    assert Store(out).verify().query("status != 'ok'").empty
    for table in TABLES:
        pd.testing.assert_frame_equal(_sorted(read_table(out, table)), _sorted(read_table(bundled_run, table)),
                                      check_dtype=False)
    assert Store(out).info["plate_path"] == plate


def test_export_reads_an_s3_store(s3_server, bundled_run, tmp_path):
    """The store's readers take the URL too: export of a store copied to the bucket equals the local one's,
    verify finds a chunk deleted from the bucket."""
    s3_server.bucket("copies")
    url = s3_server.upload(bundled_run, "s3://copies/example.zarr")
    result = subprocess.run(CLI + ["export", url, "-o", str(tmp_path / "remote")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    subprocess.run(CLI + ["export", str(bundled_run), "-o", str(tmp_path / "local")], check=True, capture_output=True,
                   timeout=300)
    for name in ("Image", "Cells", "SingleCells"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "remote" / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "local" / f"{name}.parquet"))
    s3_server.fs.rm_file(next(k for k in s3_server.fs.find("copies/example.zarr/sites/G21_f5/Cells")
                              if not k.endswith("zarr.json")))
    result = subprocess.run(CLI + ["verify", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "damaged G21_f5: Cells" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["run", "s3://screen/images/none", "-o", "OUT"], 2, "s3://screen/images/none: plate path does not exist"),
    (["inspect", "s3://nobucket-here/plate"], 2, "s3://nobucket-here/plate: plate path does not exist"),
    (["run", "s3://screen/images/bad", "-o", "s3://nobucket-here/out.zarr"], 3,
     "s3://nobucket-here/out.zarr: cannot write the store (its bucket or parent folder does not exist)"),
    (["inspect", "s3://screen/images/bad", "ANON"], 2,
     "s3://screen/images/bad/Images/Index.idx.xml: cannot read index file (Forbidden; no AWS credentials were "
     "found, so the request was anonymous)"),
])
def test_bad_s3_input_or_output_is_one_line(s3_server, bundled_plate_dir, tmp_path, args, code, message):
    if not s3_server.fs.exists("screen/images/bad/Images/Index.idx.xml"):
        s3_server.bucket("screen") if not s3_server.fs.exists("screen") else None
        s3_server.upload(bundled_plate_dir, "s3://screen/images/bad")
    env = dict(os.environ)
    if "ANON" in args:
        args = [a for a in args if a != "ANON"]
        env.pop("AWS_ACCESS_KEY_ID"), env.pop("AWS_SECRET_ACCESS_KEY")
    args = [str(tmp_path / "o.zarr") if a == "OUT" else a for a in args]
    result = subprocess.run(CLI + args + (["--sites", "D08_f5"] if args[0] == "run" else []), capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == code and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_load_data_with_an_unreachable_image_costs_its_site(s3_server, bundled_plate_dir, tmp_path):
    """Images of a LoadData CSV that cannot be read (a bucket that does not exist, a private object read
    without credentials): the plate starts, those sites are recorded as failed naming the URL, the
    other sites complete."""
    from cpfeatures.io import read_plate

    plate = read_plate(bundled_plate_dir)
    rows = []
    for (well, fieldno), images in plate.images.groupby(["well", "field"]):
        row = {"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_Site": str(fieldno)}
        for role, path in zip(images["role"], images["path"]):
            row[f"URL_Orig{role}"] = Path(path).as_uri()
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.loc[frame["Metadata_Well"] == "D14", "URL_OrigDNA"] = "s3://no-such-bucket-here/plate/dna.tiff"
    if not s3_server.fs.exists("private-screen"):
        s3_server.bucket("private-screen")
    s3_server.fs.pipe_file("private-screen/plate/rna.tiff", Path(plate.site_images("G21", 5).query(
        "role == 'RNA'")["path"].iloc[0]).read_bytes())
    frame.loc[frame["Metadata_Well"] == "G21", "URL_OrigRNA"] = "s3://private-screen/plate/rna.tiff"
    csv = tmp_path / "load_data.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out.zarr"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = subprocess.run(CLI + ["run", str(csv), "-o", str(out), "--workers", "1", "--no-progress"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "2 sites done" in result.stdout and "2 failed" in result.stdout, result.stdout + result.stderr
    errors = Store(out).errors().set_index("site")
    assert sorted(errors.index) == ["D14_f5", "G21_f5"]
    assert errors.loc["D14_f5", "file"] == "s3://no-such-bucket-here/plate/dna.tiff"
    assert errors.loc["G21_f5", "file"] == "s3://private-screen/plate/rna.tiff"
    assert "anonymous" in errors.loc["G21_f5", "message"]
