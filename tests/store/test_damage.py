"""A damaged store is never read as if whole: every reader checks what it reads.

Damage is made the way disks and copies make it, on copies of a real run's store (the bundled
plate): a chunk file deleted (Zarr would read its fill value), bytes flipped in a chunk, a
truncated ``zarr.json``, a missing column list. Every reader (tables, single cells, labels,
the lazy view, the illumination functions) refuses the damaged site by name, or leaves it out
with a warning when asked to (``skip_damaged``); ``verify`` lists it and a run with
``verify=True`` writes it again.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from cpfeatures.store import DamagedStoreError, Store, open_plate, read_table


def _chunks(group: Path) -> list[Path]:
    return sorted(p for p in group.rglob("*") if p.is_file() and p.name != "zarr.json")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def copy(bundled_run, tmp_path) -> Path:
    out = tmp_path / "damaged.zarr"
    shutil.copytree(bundled_run, out)
    return out


def test_a_deleted_chunk_is_refused_by_name_or_left_out(copy):
    _chunks(copy / "sites" / "L09_f5" / "Cells")[0].unlink()  # zarr would read zeros without a word
    with pytest.raises(DamagedStoreError, match=r"site L09_f5 is damaged \(Cells: .*checksum"):
        read_table(copy, "cells")
    with pytest.raises(DamagedStoreError, match="site L09_f5"):
        Store(copy).single_cells()
    with pytest.raises(DamagedStoreError, match="site L09_f5"):
        Store(copy).site_table("L09_f5", "cells")
    st = Store(copy, skip_damaged=True)
    with pytest.warns(RuntimeWarning, match="site L09_f5 is damaged .* left out"):
        cells = st.read_table("cells")
    assert "L09_f5" not in set(cells["Metadata_Well"] + "_f" + cells["Metadata_Site"].astype(str))
    assert st.skipped_damaged == ["L09_f5"]
    whole = read_table(copy, "nuclei", sites=["D08_f5"])  # the other sites read as before
    assert len(whole) > 0


def test_flipped_bytes_in_a_table_chunk_are_refused(copy):
    _flip(_chunks(copy / "sites" / "D14_f5" / "Nuclei")[0])
    with pytest.raises(DamagedStoreError, match=r"site D14_f5 is damaged \(Nuclei: "):
        read_table(copy, "nuclei")


def _synthetic_store(path: Path, codec: str) -> Store:
    """A store of one site (a Nuclei table and a label image) written with ``codec``."""
    import pandas as pd

    from cpfeatures.pipeline import SiteTables

    st = Store(path, mode="a")
    st.initialize("P", f'[store]\ncodec = "{codec}"\n')
    rng = np.random.default_rng(0)
    nuclei = pd.DataFrame(rng.normal(size=(20, 5)), columns=[f"Nuclei_F{i}" for i in range(5)])
    nuclei.insert(0, "ObjectNumber", np.arange(1, 21))
    labels = np.zeros((64, 64), np.int32)
    labels[10:20, 10:20] = 1
    st.write_site("P", "A01", 1, SiteTables({"Nuclei": nuclei}, {}, labels={"Nuclei": labels}))
    return st


def test_flipped_bits_without_compression_are_found_by_the_checksum(tmp_path):
    """A codec without checksums of its own (none): the site's recorded CRC-32 still finds one bit."""
    _synthetic_store(tmp_path / "plain.zarr", "none")
    assert len(read_table(tmp_path / "plain.zarr", "nuclei")) == 20
    chunk = _chunks(tmp_path / "plain.zarr" / "sites" / "A01_f1" / "Nuclei")[0]
    data = bytearray(chunk.read_bytes())
    data[-3] ^= 0x01  # one bit of the last value: a number that looks like any other
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError, match=r"site A01_f1 is damaged \(Nuclei: content differs from its"):
        read_table(tmp_path / "plain.zarr", "nuclei")


def test_saved_labels_are_checked(tmp_path):
    st = _synthetic_store(tmp_path / "labels.zarr", "none")
    assert st.site_labels("A01_f1")["Nuclei"].sum() == 100
    chunk = _chunks(tmp_path / "labels.zarr" / "sites" / "A01_f1" / "labels" / "Nuclei")[0]
    chunk.unlink()
    with pytest.raises(DamagedStoreError, match=r"site A01_f1 is damaged \(labels/Nuclei: "):
        Store(tmp_path / "labels.zarr").site_labels("A01_f1")


def test_damaged_illumination_functions_are_refused(copy):
    _flip(_chunks(copy / "illum" / "DNA")[0])
    with pytest.raises(DamagedStoreError, match=r"the illumination functions are damaged \(DNA: "):
        Store(copy).read_illum()
    report = Store(copy).verify()
    assert list(report.loc[report["status"] == "damaged", "site"]) == ["illum"]


def test_a_truncated_site_metadata_is_named_not_skipped(copy):
    meta = copy / "sites" / "D08_f5" / "zarr.json"
    meta.write_text(meta.read_text()[:200])
    with pytest.raises(DamagedStoreError, match="site D08_f5 is damaged .*metadata is unreadable"):
        read_table(copy, "image")
    st = Store(copy, skip_damaged=True)
    with pytest.warns(RuntimeWarning, match="D08_f5"):
        assert "D08_f5" not in st.completed_sites()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verify reports it, it does not warn or raise
        report = Store(copy).verify()
    assert report.set_index("site").loc["D08_f5", "problem"] == "its metadata is unreadable"
    writer = Store(copy, mode="a")  # a run: not complete, so written again
    assert "D08_f5" not in writer.completed_sites()
    writer.uncommit("D08_f5")
    assert not (copy / "sites" / "D08_f5").exists()


def test_a_missing_column_list_is_named(copy):
    digest = Store(copy).site_attrs("G21_f5")["columns"]["Cells"]
    shutil.rmtree(copy / "columns" / digest)
    with pytest.raises(DamagedStoreError, match=f"column list columns/{digest}"):
        read_table(copy, "cells")


def test_the_lazy_view_refuses_a_damaged_site(copy):
    _chunks(copy / "sites" / "G21_f5" / "Cytoplasm")[0].unlink()
    view = open_plate(copy, "cytoplasm")
    with pytest.raises(DamagedStoreError, match="site G21_f5"):
        view["features"].values  # noqa: B018  (the read happens here)


def test_zarr_alone_would_have_read_zeros(copy):
    """What the checks guard against: plain zarr reads a deleted chunk as the fill value, silently."""
    _chunks(copy / "sites" / "L09_f5" / "Cells")[0].unlink()
    values = zarr.open_group(str(copy), mode="r", use_consolidated=False)["sites"]["L09_f5"]["Cells"][:]
    assert np.all(values == 0)


def test_the_commands_refuse_a_damaged_store_with_exit_1_or_skip_it(copy, tmp_path):
    import subprocess
    import sys

    cli = [sys.executable, "-m", "cpfeatures.cli"]
    _chunks(copy / "sites" / "L09_f5" / "Cells")[0].unlink()
    for args in (["export", str(copy), "-o", str(tmp_path / "t")],
                 ["export", str(copy), "--format", "anndata", "-o", str(tmp_path / "c.h5ad")],
                 ["profile", str(copy), "-o", str(tmp_path / "p.parquet")],
                 ["report", str(copy), "-o", str(tmp_path / "r.html"), "--overlays", "0"]):
        done = subprocess.run(cli + args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "site L09_f5 is damaged" in done.stderr
        done = subprocess.run(cli + args + ["--skip-damaged"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stderr)
        assert "warning: " in done.stderr and "site L09_f5 is damaged" in done.stderr and "left out" in done.stderr
    cells = pd.read_parquet(tmp_path / "t" / "Cells.parquet")
    assert set(cells["Metadata_Well"]) == {"D08", "D14", "G21"}  # L09 left out, not rows of zeros
