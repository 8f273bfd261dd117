"""Plates on object storage (io/_fs.py, plate.py, loaddata.py): the real bundled plate uploaded to a
real S3 API (moto's server on 127.0.0.1) reads as the local plate does; public buckets anonymously;
transient errors retried with backoff, then failing like any bad file; bad URLs named."""

from __future__ import annotations

import io

import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from cpfeatures.errors import ImageError, PlateError
from cpfeatures.io import fs as _fs
from cpfeatures.io import read_header, read_illum_files, read_image, read_load_data, read_plate


@pytest.fixture(scope="module")
def s3_plate(s3_server, bundled_plate_dir):
    """The bundled plate in a private bucket and in a public one."""
    s3_server.bucket("plates")
    s3_server.bucket("gallery", public=True)
    s3_server.upload(bundled_plate_dir, "s3://gallery/example", public=True)
    return s3_server.upload(bundled_plate_dir, "s3://plates/example")


def test_harmony_folder_on_s3_reads_as_the_local_plate(s3_plate, harmony):
    plate = read_plate(s3_plate)
    assert plate.plate_id == harmony.plate_id and plate.sites == harmony.sites and plate.roles == harmony.roles
    assert plate.image_shape == harmony.image_shape and plate.dtype == harmony.dtype
    assert plate.root == f"{s3_plate}/Images" and plate.missing_files == [] and plate.extra_files == []
    assert plate.images["path"].str.startswith("s3://plates/example/Images/").all()
    pd.testing.assert_frame_equal(plate.images.drop(columns="path"), harmony.images.drop(columns="path"))
    remote, local = plate.load_site("G21", 5), harmony.load_site("G21", 5)
    assert set(remote) == set(local)
    for role in local:
        np.testing.assert_array_equal(remote[role], local[role])
    # the index file itself, and the Images/ prefix, are plates too
    assert read_plate(f"{s3_plate}/Images/Index.idx.xml").sites == harmony.sites
    assert read_plate(f"{s3_plate}/Images/").sites == harmony.sites


def test_object_missing_from_the_bucket_is_named(s3_server, s3_plate, harmony):
    s3_server.upload(harmony.root.parent, "s3://plates/holey")
    gone = "r07c21f05p01-ch5sk1fk1fl1.tiff"
    s3_server.fs.rm_file(f"plates/holey/Images/{gone}")
    with pytest.raises(PlateError, match=f"1 image file\\(s\\) listed in the index are missing: {gone}"):
        read_plate("s3://plates/holey")
    plate = read_plate("s3://plates/holey", strict=False)
    assert plate.missing_files == [gone]
    with pytest.raises(ImageError, match="image file is missing") as err:
        plate.load_site("G21", 5)
    assert str(err.value).startswith(f"s3://plates/holey/Images/{gone}")


def test_loaddata_csv_on_s3_with_s3_image_and_illum_urls(s3_server, s3_plate, harmony, tmp_path):
    """The Gallery's shape: a CSV whose PathName_ columns are s3:// prefixes, with illumination .npy on S3."""
    rows = []
    rng = np.random.default_rng(3)
    functions = {role: rng.uniform(0.5, 2.0, harmony.image_shape).astype(np.float32) for role in ("DNA", "Mito")}
    for role, values in functions.items():
        buf = io.BytesIO()
        np.save(buf, values)
        s3_server.fs.pipe_file(f"plates/illum/EXAMPLE_Illum{role}.npy", buf.getvalue())
    for site in harmony.sites:
        files = harmony.site_images(site.well, site.field).set_index("role")["url"]
        row = {"Metadata_Plate": "EXAMPLE", "Metadata_Well": site.well, "Metadata_Site": site.field,
               "Metadata_Batch": "b1"}
        for role in ("DNA", "Mito"):
            row[f"FileName_Orig{role}"] = files[role]
            row[f"PathName_Orig{role}"] = f"{s3_plate}/Images/"
            row[f"FileName_Illum{role}"] = f"EXAMPLE_Illum{role}.npy"
            row[f"PathName_Illum{role}"] = "s3://plates/illum"
        rows.append(row)
    s3_server.fs.pipe_file("plates/csv/load_data_with_illum.csv", pd.DataFrame(rows).to_csv(index=False).encode())
    plate = read_load_data("s3://plates/csv/load_data_with_illum.csv")
    assert plate.sites == harmony.sites and sorted(plate.roles) == ["DNA", "Mito"]
    assert plate.illum_files == {r: f"s3://plates/illum/EXAMPLE_Illum{r}.npy" for r in ("DNA", "Mito")}
    np.testing.assert_array_equal(plate.load_site("D14", 5, ["DNA"])["DNA"], harmony.load_site("D14", 5, ["DNA"])["DNA"])
    loaded = read_illum_files(plate.illum_files, ["DNA", "Mito"], plate.image_shape)
    for role in functions:
        np.testing.assert_array_equal(loaded[role], functions[role])
    # the folder of functions, as `run --illum s3://...` gives it
    loaded = read_illum_files("s3://plates/illum/", ["DNA"], plate.image_shape, plate="EXAMPLE")
    np.testing.assert_array_equal(loaded["DNA"], functions["DNA"])
    # read_plate dispatches a .csv URL to the LoadData reader
    assert read_plate("s3://plates/csv/load_data_with_illum.csv").sites == harmony.sites


def test_public_bucket_is_read_anonymously_without_credentials(s3_plate, harmony, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert _fs.storage_options("s3://gallery/example") == {"anon": True}
    plate = read_plate("s3://gallery/example")
    np.testing.assert_array_equal(plate.load_site("D08", 5, ["DNA"])["DNA"], harmony.load_site("D08", 5, ["DNA"])["DNA"])
    with pytest.raises(PlateError, match="s3://plates/example"):  # a private bucket stays private
        read_plate("s3://plates/example")


def test_signed_requests_when_credentials_are_set(s3_plate):
    assert "anon" not in _fs.storage_options("s3://plates/example")
    assert _fs.storage_options("s3://plates/example", {"anon": True}) == {"anon": True}  # the caller decides
    assert _fs.store_options("s3://runs/x.zarr")["use_listings_cache"] is False  # a store's listing changes


@pytest.mark.parametrize("url, message", [
    ("s3://plates/nothing-here", "plate path does not exist"),
    ("nosuch://bucket/plate", "unknown protocol 'nosuch'"),
    ("s3://plates/example/Images/r04c08f05p01-ch1sk1fk1fl1.tiff", "got a single image"),
    ("s3://plates/example/Images/Nope.xml", "index file does not exist"),
    ("s3://plates/csv/none.csv", "LoadData CSV does not exist"),
])
def test_bad_url_is_refused_naming_it(s3_plate, url, message):
    with pytest.raises(PlateError, match=message) as err:
        read_plate(url)
    assert url.rstrip("/") in str(err.value)


def test_yokogawa_or_imagexpress_on_s3_is_refused_with_the_way_out(s3_server, s3_plate):
    s3_server.fs.pipe_file("plates/cv8000/MeasurementData.mlf", b"<bts:MeasurementData/>")
    with pytest.raises(PlateError, match="Yokogawa and ImageXpress plates are read from a local folder or a "
                                         "LoadData CSV") as err:
        read_plate("s3://plates/cv8000")
    assert str(err.value).startswith("s3://plates/cv8000: ")


# -- transient errors -----------------------------------------------------------------------------

class FlakyFileSystem(MemoryFileSystem):
    """An in-memory filesystem whose reads fail ``failures`` times per file (a throttled or flapping store)."""

    protocol = "flaky"
    failures = 2
    calls: dict = {}

    @classmethod
    def _strip_protocol(cls, path):
        return MemoryFileSystem._strip_protocol(str(path).replace("flaky://", "memory://", 1))

    def cat_file(self, path, start=None, end=None, **kwargs):
        n = self.calls[path] = self.calls.get(path, 0) + 1
        if n <= self.failures and path in self.store:
            raise ConnectionResetError(f"connection reset by peer (attempt {n})")
        return super().cat_file(path, start, end, **kwargs)


@pytest.fixture
def flaky(monkeypatch, bundled_plate_dir):
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    monkeypatch.setattr(_fs, "BACKOFF_S", 0.01)
    monkeypatch.setattr(_fs, "_FS_CACHE", {})
    FlakyFileSystem.calls = {}
    fs = FlakyFileSystem()
    src = next((bundled_plate_dir / "Images").glob("r04c08f05p01-ch5*.tiff"))
    fs.pipe_file("/img/dna.tiff", src.read_bytes())
    yield FlakyFileSystem, src
    fs.rm("/img", recursive=True)


def test_transient_errors_are_retried_with_backoff(flaky, monkeypatch):
    cls, src = flaky
    waits = []
    monkeypatch.setattr(_fs.time, "sleep", waits.append)
    cls.failures = 2
    np.testing.assert_array_equal(read_image("flaky:///img/dna.tiff"), read_image(src))
    assert cls.calls["/img/dna.tiff"] == 3
    assert len(waits) == 2 and waits[1] > waits[0] * 1.5  # backoff doubles
    with pytest.raises(ImageError, match="image file is missing"):  # "not there" is not retried
        read_image("flaky:///img/none.tiff")
    assert cls.calls["/img/none.tiff"] == 1 and len(waits) == 2


def test_failure_past_the_retries_costs_the_site_only(flaky, tmp_path):
    """After ATTEMPTS tries the image fails like a bad file: run_site records it in the store's error table."""
    from cpfeatures.run import SiteTask, run_site
    from cpfeatures.store import Store

    cls, _ = flaky
    cls.failures = 10**6
    with pytest.raises(ImageError, match=f"cannot read image \\(reading failed {_fs.ATTEMPTS} times, last: "
                                         "ConnectionResetError"):
        read_image("flaky:///img/dna.tiff")
    assert cls.calls["/img/dna.tiff"] == _fs.ATTEMPTS
    Store(tmp_path / "s.zarr", mode="a").initialize("P", "")
    result = run_site(SiteTask(str(tmp_path / "s.zarr"), "P", "D08", 5, {"DNA": "flaky:///img/dna.tiff"}, ["DNA"],
                               (540, 540), "uint16", {}))
    assert not result["ok"] and f"failed {_fs.ATTEMPTS} times" in result["error"]
    errors = Store(tmp_path / "s.zarr").errors()
    assert list(errors["site"]) == ["D08_f5"] and errors["file"].iloc[0] == "flaky:///img/dna.tiff"


@pytest.fixture
def silent_server():
    """An HTTP 'server' on 127.0.0.1 that accepts connections and never answers (a server that died
    mid-response, a stalled proxy); stopped after the test."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])  # keep the connection open, say nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    sock.close()


def test_a_server_that_stops_answering_fails_the_read_in_bounded_time(silent_server, monkeypatch):
    """Every remote read has a deadline: past the tries the image fails like a bad file, it never hangs."""
    import time

    monkeypatch.setattr(_fs, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(_fs, "ATTEMPTS", 2)
    monkeypatch.setattr(_fs, "BACKOFF_S", 0.01)
    monkeypatch.setattr(_fs, "_FS_CACHE", {})
    t0 = time.monotonic()
    with pytest.raises(ImageError, match=r"cannot read image \(reading failed 2 times, last: .*Timeout"):
        read_image(f"{silent_server}/plate/Images/r04c08f05p01-ch5sk1fk1fl1.tiff")
    assert time.monotonic() - t0 < 30
    t0 = time.monotonic()
    with pytest.raises(Exception, match="Timeout|failed 2 times"):  # a header read (inspect) too
        read_header(f"{silent_server}/plate/Images/r04c08f05p01-ch5sk1fk1fl1.tiff")
    assert time.monotonic() - t0 < 30
