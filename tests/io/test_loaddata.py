"""CellProfiler LoadData CSVs as plates (io/loaddata.py), with CellProfiler's own illumination functions.

The oracle for layout is the Harmony index of the same images; for the run, CellProfiler 4.2.8's
export of the same sites (the fidelity test's tolerances), its illumination functions used as given.
"""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpfeatures.errors import ImageError, PlateError
from cpfeatures.io import read_illum_files, read_load_data, read_plate
from cpfeatures.run import run_plate
from cpfeatures.store import Store, read_table

ROLES = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA", 6: "HighZBF", 7: "LowZBF", 8: "Brightfield"}
CLI = [sys.executable, "-m", "cpfeatures.cli"]


def _rc(well: str) -> tuple[int, int]:
    return ord(well[0]) - 64, int(well[1:])


def write_load_data(csv: Path, images: Path, wells, plate="BR00116991", field=5, illum: Path | None = None,
                    extra: dict | None = None) -> Path:
    """A LoadData CSV as the JUMP Gallery writes them: one row per site, FileName_/PathName_Orig<Ch>."""
    rows = []
    for well in wells:
        r, c = _rc(well)
        row = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": str(field), **(extra or {})}
        for ch, role in ROLES.items():
            row[f"FileName_Orig{role}"] = f"r{r:02d}c{c:02d}f{field:02d}p01-ch{ch}sk1fk1fl1.tiff"
            row[f"PathName_Orig{role}"] = str(images)
            if illum is not None:
                row[f"FileName_Illum{role}"] = f"{plate}_Illum{role}.npy"
                row[f"PathName_Illum{role}"] = str(illum)
        rows.append(row)
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="module")
def cp_illum_dir(cp_ref, tmp_path_factory):
    """CellProfiler 4.2.8's illumination functions of the example plate, as the Gallery ships them (.npy)."""
    folder = tmp_path_factory.mktemp("illum")
    for role in ROLES.values():
        with gzip.open(cp_ref.ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
            np.save(folder / f"BR00116991_Illum{role}.npy", np.load(fh))
    return folder


# -- reading ------------------------------------------------------------------------------------

def test_csv_lists_the_same_images_as_the_harmony_index(bundled_plate_dir, tmp_path):
    harmony = read_plate(bundled_plate_dir)
    wells = harmony.wells
    csv = write_load_data(tmp_path / "load_data.csv", harmony.root, wells, extra={"Metadata_Source": "source_4"})
    plate = read_load_data(csv)
    assert plate.plate_id == "BR00116991"
    assert plate.sites == harmony.sites
    assert sorted(plate.roles) == sorted(harmony.roles)
    assert plate.image_shape == harmony.image_shape and plate.dtype == harmony.dtype
    key = ["well", "field", "role"]
    a = plate.images.set_index(key)["path"].sort_index()
    b = harmony.images.set_index(key)["path"].sort_index()
    pd.testing.assert_series_equal(a, b, check_names=False)
    assert set(plate.images["Metadata_Source"]) == {"source_4"}
    assert plate.illum_files == {}
    # read_plate takes the CSV too, and the CLI inspects it
    assert read_plate(csv).sites == harmony.sites
    # the bundled plate's own load_data.csv (relative PathName_) lists exactly the index's images
    bundled = read_plate(bundled_plate_dir / "load_data.csv")
    pd.testing.assert_series_equal(bundled.images.set_index(key)["path"].sort_index(), b, check_names=False)
    result = subprocess.run(CLI + ["inspect", str(csv), "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"BR00116991"' in result.stdout


def test_relative_paths_urls_and_well_spellings(bundled_plate_dir, tmp_path):
    images = read_plate(bundled_plate_dir).root
    link = tmp_path / "imgs"
    link.symlink_to(images)
    rows = [{"Metadata_Plate": "P", "Metadata_Well": "r04c08", "Metadata_Field": "5",
             "URL_OrigDNA": (link / "r04c08f05p01-ch5sk1fk1fl1.tiff").as_uri(),
             "FileName_OrigRNA": "r04c08f05p01-ch3sk1fk1fl1.tiff", "PathName_OrigRNA": "imgs"},
            {"Metadata_Plate": "P", "Metadata_Well": "d14", "Metadata_Field": "5",
             "URL_OrigDNA": "imgs/r04c14f05p01-ch5sk1fk1fl1.tiff",
             "FileName_OrigRNA": "r04c14f05p01-ch3sk1fk1fl1.tiff", "PathName_OrigRNA": "imgs"}]
    csv = tmp_path / "load_data.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    plate = read_load_data(csv)
    assert [str(s) for s in plate.sites] == ["D08_f5", "D14_f5"]
    loaded = plate.load_site("D14", 5)
    import tifffile

    np.testing.assert_array_equal(loaded["DNA"], tifffile.imread(images / "r04c14f05p01-ch5sk1fk1fl1.tiff"))


def test_several_plates_need_a_choice(bundled_plate_dir, tmp_path):
    images = read_plate(bundled_plate_dir).root
    a = pd.read_csv(write_load_data(tmp_path / "a.csv", images, ["D08", "D14"], plate="PLATE_A"))
    b = pd.read_csv(write_load_data(tmp_path / "b.csv", images, ["G21"], plate="PLATE_B"))
    csv = tmp_path / "batch.csv"
    pd.concat([a, b]).to_csv(csv, index=False)
    with pytest.raises(PlateError, match=r"lists 2 plates \(PLATE_A, PLATE_B\): choose one with --plate") as err:
        read_load_data(csv)
    assert str(csv) in str(err.value)
    assert [str(s) for s in read_load_data(csv, plate="PLATE_B").sites] == ["G21_f5"]
    with pytest.raises(PlateError, match="plate 'PLATE_C' is not in the CSV"):
        read_load_data(csv, plate="PLATE_C")
    # inspect shows one plate: it asks which (`run` takes such a CSV as a batch: tests/run/test_batch.py)
    result = subprocess.run(CLI + ["inspect", str(csv)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "choose one with --plate" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["Metadata_Well"]), "missing Metadata_Well"),
    (lambda f: f.assign(Metadata_Well="Z"), "'Z' is not a well name"),
    (lambda f: f.assign(Metadata_Site="five"), "Metadata_Site must be a whole number"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "listed twice"),
    (lambda f: f[[c for c in f.columns if not c.startswith(("FileName", "PathName"))]], "no image columns"),
    (lambda f: f.assign(FileName_OrigDNA="gone.tiff"), "missing: .*gone.tiff"),
    (lambda f: f.drop(columns=["PathName_OrigDNA", "FileName_OrigDNA"]).assign(URL_OrigDNA="nosuch://bucket/a.tif"),
     "image URL 'nosuch://bucket/a.tif': unknown protocol 'nosuch'"),
    # a channel whose file names are missing is refused, never dropped (the run would lose DNA)
    (lambda f: f.drop(columns=["FileName_OrigDNA"]), "PathName_OrigDNA has no FileName_OrigDNA .* DNA images"),
])
def test_bad_csv_is_refused_naming_the_file(bundled_plate_dir, tmp_path, change, message):
    csv = write_load_data(tmp_path / "load_data.csv", read_plate(bundled_plate_dir).root, ["D08", "D14"])
    change(pd.read_csv(csv, dtype=str)).to_csv(csv, index=False)
    with pytest.raises(PlateError, match=message) as err:
        read_load_data(csv)
    assert str(csv) in str(err.value)


def test_illumination_files_are_checked(bundled_plate_dir, cp_illum_dir, tmp_path):
    roles = list(ROLES.values())
    got = read_illum_files(cp_illum_dir, roles, (1080, 1080))
    assert got["DNA"].dtype == np.float32 and got["DNA"].shape == (1080, 1080)
    with pytest.raises(PlateError, match="no illumination function for channel.*Extra"):
        read_illum_files(cp_illum_dir, roles + ["Extra"], (1080, 1080))
    with pytest.raises(ImageError, match="illumination function is 1080x1080, the plate's images are 540x540"):
        read_illum_files(cp_illum_dir, ["DNA"], (540, 540))
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "P_IllumDNA.npy", np.zeros((1080, 1080), np.float32))
    (bad / "P_IllumRNA.npy").write_bytes(b"not numpy")
    with pytest.raises(ImageError, match="non-positive") as err:
        read_illum_files(bad, ["DNA"], (1080, 1080))
    assert "P_IllumDNA.npy" in str(err.value)
    with pytest.raises(ImageError, match="not a readable .npy") as err:
        read_illum_files(bad, ["RNA"], (1080, 1080))
    # a LoadData CSV's FileName_Illum columns name the same files (--illum CSV)
    csv = write_load_data(tmp_path / "l.csv", read_plate(bundled_plate_dir).root, ["D08", "D14"], illum=cp_illum_dir)
    from_csv = read_illum_files(csv, roles, (1080, 1080), plate="BR00116991")
    assert all(np.array_equal(from_csv[r], got[r]) for r in roles)
    with pytest.raises(PlateError, match="no illumination function"):
        read_illum_files(csv, roles, (1080, 1080), plate="ANOTHER_PLATE")
    # one function per channel and plate: a CSV that names two for one plate is refused
    frame = pd.read_csv(csv, dtype=str)
    frame.loc[1, "FileName_IllumDNA"] = "other.npy"
    frame.to_csv(csv, index=False)
    with pytest.raises(PlateError, match="IllumDNA: 2 different illumination functions"):
        read_load_data(csv)


# -- running --------------------------------------------------------------------------------------

def _fidelity():
    spec = importlib.util.spec_from_file_location("_fidelity", Path(__file__).parents[1] / "test_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_load_data_with_illum_run_equals_cellprofiler(cp_ref, cp_illum_dir, tmp_path):
    """load_data_with_illum.csv of two real sites, CellProfiler's functions: the store equals CP's export."""
    csv = write_load_data(tmp_path / "load_data_with_illum.csv", cp_ref.plate / "Images", ["D08", "M02"],
                          illum=cp_illum_dir, extra={"Metadata_Source": "source_4", "Metadata_Batch": "2020_11_04"})
    out = tmp_path / "ld.zarr"
    summary = run_plate(csv, out, workers=1, progress=False)
    assert summary.ok and sorted(summary.done) == ["D08_f5", "M02_f5"]
    assert not summary.illum_seconds  # no illumination phase: the CSV's functions were used
    stored = Store(out).read_illum()
    for role in ROLES.values():
        np.testing.assert_array_equal(stored[role], cp_ref.illum(role).astype(np.float32))
    fidelity = _fidelity()
    image = read_table(out, "image")
    assert list(image["Metadata_Source"]) == ["source_4", "source_4"]
    assert set(image["Metadata_Batch"]) == {"2020_11_04"}
    for compartment in ("Nuclei", "Cells", "Cytoplasm"):
        table = read_table(out, compartment.lower())
        for well in ("D08", "M02"):
            ours = table[table["Metadata_Well"] == well].rename(columns={"Metadata_ObjectNumber": "ObjectNumber"})
            ref = cp_ref.objects_table(compartment, well)
            assert sorted(ours["ObjectNumber"]) == sorted(ref["ObjectNumber"])
            agree = fidelity.agreement(ours, ref, compartment)
            off = agree[~agree["within"]]
            assert off.empty, f"{well} {compartment}: {len(off)} columns off:\n{off.head().to_string()}"
            assert agree["same_nan"].all()
            assert len(agree) > 500


def test_illum_option_on_a_harmony_plate(cp_ref, cp_illum_dir, tmp_path):
    out = tmp_path / "given.zarr"
    cmd = CLI + ["run", str(cp_ref.plate), "-o", str(out), "--illum", str(cp_illum_dir), "--sites", "D08_f5",
                 "--workers", "1", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert Store(out).root["illum"].attrs["source"] == "precomputed"  # not computed by the run
    stored = Store(out).read_illum()
    for role in ROLES.values():
        np.testing.assert_array_equal(stored[role], np.load(cp_illum_dir / f"BR00116991_Illum{role}.npy"))
    # resuming into this store with other functions would mix two corrections: refused, nothing run
    other = tmp_path / "other"
    other.mkdir()
    for role in ROLES.values():
        np.save(other / f"X_Illum{role}.npy", np.load(cp_illum_dir / f"BR00116991_Illum{role}.npy") * 2)
    cmd[cmd.index(str(cp_illum_dir))] = str(other)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "corrected with other illumination functions" in result.stderr and str(out) in result.stderr
    # the same functions again: resumes (nothing left to do)
    cmd[cmd.index(str(other))] = str(cp_illum_dir)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "1 already in the store" in result.stdout, result.stdout + result.stderr


def test_overlay_of_a_load_data_site(cp_ref, cp_illum_dir, tmp_path):
    """overlay reads the CSV's plate and, with FileName_Illum columns, draws with those functions."""
    from cpfeatures.report.overlay import open_plate, plate_illumination

    csv = write_load_data(tmp_path / "ld.csv", cp_ref.plate / "Images", ["D08"], illum=cp_illum_dir)
    plate = open_plate(str(csv))
    functions = plate_illumination(plate, {})
    np.testing.assert_array_equal(functions["RNA"], cp_ref.illum("RNA").astype(np.float32))
    png = tmp_path / "D08.png"
    result = subprocess.run(CLI + ["overlay", str(csv), "--well", "D08", "--field", "5", "-o", str(png)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overlay_with_a_store_picks_its_plate_from_a_multi_plate_csv(bundled_plate_dir, tmp_path):
    from cpfeatures.config import dump_config, load_config

    images = read_plate(bundled_plate_dir).root
    a = pd.read_csv(write_load_data(tmp_path / "a.csv", images, ["D08"], plate="PLATE_A"))
    b = pd.read_csv(write_load_data(tmp_path / "b.csv", images, ["G21"], plate="PLATE_B"))
    csv = tmp_path / "batch.csv"
    pd.concat([a, b]).to_csv(csv, index=False)
    store = Store(tmp_path / "b.zarr", mode="a")
    store.initialize("PLATE_B", dump_config(load_config()))
    png = tmp_path / "G21.png"
    cmd = CLI + ["overlay", str(csv), "--well", "G21", "--field", "5", "--store", store.url, "-o", str(png)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # D08 is PLATE_A's: not on the store's plate
    cmd[cmd.index("G21")] = "D08"
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "D08" in result.stderr


# -- precomputed functions that cannot be used: each named, from its header, before anything is read ------

def _run_with_illum(plate: Path, illum: Path, out: Path) -> subprocess.CompletedProcess:
    def limit_memory():  # a function read without checking its header would fail here, not take the machine
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    return subprocess.run(CLI + ["run", str(plate), "-o", str(out), "--illum", str(illum), "--workers", "1",
                                 "--no-progress"], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_memory)


def _one_error_line(result: subprocess.CompletedProcess, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_gzipped_illumination_functions_are_read(cp_ref, cp_illum_dir, tmp_path):
    """A folder of CellProfiler's functions gzipped (*Illum<Ch>.npy.gz) reads as the same folder gunzipped."""
    import shutil

    folder = tmp_path / "gz"
    folder.mkdir()
    for role in ROLES.values():
        shutil.copy(cp_ref.ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz", folder / f"BR00116991_Illum{role}.npy.gz")
    roles = list(ROLES.values())
    got = read_illum_files(folder, roles, (1080, 1080), plate="BR00116991")
    plain = read_illum_files(cp_illum_dir, roles, (1080, 1080))
    for role in roles:
        assert got[role].dtype == np.float32
        np.testing.assert_array_equal(got[role], plain[role])
    # a gzipped function is checked as a plain one: its header first
    with pytest.raises(ImageError, match="illumination function is 1080x1080, the plate's images are 540x540") \
            as err:
        read_illum_files(folder, ["DNA"], (540, 540))
    assert "BR00116991_IllumDNA.npy.gz" in str(err.value)
    # a damaged .gz is one line naming it
    (folder / "BR00116991_IllumRNA.npy.gz").write_bytes(gzip.compress(b"\x93NUMPY")[:20])
    with pytest.raises(ImageError, match="not a readable .npy array") as err:
        read_illum_files(folder, ["RNA"], (1080, 1080))
    assert "BR00116991_IllumRNA.npy.gz" in str(err.value)


def test_a_folder_without_the_functions_names_every_file_and_why(bundled_plate_dir, tmp_path):
    """'have: none' said nothing of what the folder holds: each file is named with why it was not taken."""
    folder = tmp_path / "illum"
    folder.mkdir()
    ones = np.ones((1080, 1080), np.float32)
    for role in ("DNA", "RNA"):  # named <Channel>_Illum, not <anything>Illum<Channel>
        with gzip.open(folder / f"{role}_Illum.npy.gz", "wb") as fh:
            np.save(fh, ones)
    np.save(folder / "P_IllumDna.npy", ones)
    np.save(folder / "P_IllumNucleus.npy", ones)
    np.savez(folder / "P_IllumER.npz", ones)
    (folder / "README.txt").write_text("functions")
    with pytest.raises(PlateError) as err:
        read_illum_files(folder, ["DNA", "RNA"], (1080, 1080))
    message = str(err.value)
    assert message.startswith(f"{folder}: no illumination function for channel(s) DNA, RNA (have: none); "
                              "the folder holds 6 file(s): ")
    for part in ("DNA_Illum.npy.gz (not named <anything>Illum<Channel>.npy)",
                 "RNA_Illum.npy.gz (not named <anything>Illum<Channel>.npy)",
                 "P_IllumDna.npy (channel 'Dna' is not 'DNA': names are case-sensitive)",
                 "P_IllumNucleus.npy (channel 'Nucleus' is not one this run corrects (DNA, RNA))",
                 "P_IllumER.npz (not a .npy (or .npy.gz) file",
                 "README.txt (not a .npy file)"):
        assert part in message, message
    # found for one channel: named as such
    np.save(folder / "P_IllumRNA.npy", ones)
    with pytest.raises(PlateError, match=r"channel\(s\) DNA \(have: RNA\).*P_IllumRNA.npy \(RNA's\)"):
        read_illum_files(folder, ["DNA", "RNA"], (1080, 1080))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PlateError, match=r"\(have: none\); the folder is empty"):
        read_illum_files(empty, ["DNA"], (1080, 1080))
    # the command line: one line naming the folder and its files, exit 2, nothing run
    out = tmp_path / "out.zarr"
    line = _one_error_line(_run_with_illum(bundled_plate_dir, folder, out), f"error: {folder}: ",
                           "no illumination function for channel(s)", "DNA_Illum.npy.gz (not named")
    assert "RNA" not in line.split("(have:")[0]
    assert not out.exists()


def test_the_npy_header_is_checked_before_the_data_is_read(cp_ref, cp_illum_dir, tmp_path):
    """A header edited to claim 400000x500000 float32 (745 GiB): refused by name from the header, never a
    MemoryError; so are a header too long to be one, pickled objects, other dtypes and truncated data."""
    import shutil
    import struct
    import tracemalloc

    from numpy.lib import format as npy

    folder = tmp_path / "illum"
    shutil.copytree(cp_illum_dir, folder)
    huge = folder / "BR00116991_IllumDNA.npy"
    with open(huge, "wb") as fh:
        npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (400000, 500000)})
        fh.write(b"\0" * 4096)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"illumination function is 400000x500000, the plate's images are "
                                             r"1080x1080 \(from the .npy header: shape \(400000, 500000\), float32, "
                                             r"745.1 GiB; its data was not read\)") as err:
            read_illum_files(folder, ["DNA"], (1080, 1080))
        assert tracemalloc.get_traced_memory()[1] < 2**20  # not even the 4 kB after the header
    finally:
        tracemalloc.stop()
    assert str(huge) in str(err.value)
    line = _one_error_line(_run_with_illum(cp_ref.plate, folder, tmp_path / "out.zarr"), f"error: {huge}: ",
                           "illumination function is 400000x500000", "its data was not read")
    assert "745.1 GiB" in line
    # the same header, gzipped
    huge.unlink()
    gz = folder / "BR00116991_IllumDNA.npy.gz"
    with gzip.open(gz, "wb") as fh:
        npy.write_array_header_2_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (400000, 500000)})
    with pytest.raises(ImageError, match="illumination function is 400000x500000") as err:
        read_illum_files(folder, ["DNA"], (1080, 1080))
    assert str(gz) in str(err.value)
    gz.unlink()
    bad = folder / "BR00116991_IllumDNA.npy"
    cases = [
        # a format 2.0 header claiming to be 4 GB long
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{", "the .npy header claims to be 4294967295 bytes"),
        (b"\x93NUMPY\x03\x00" + struct.pack("<I", 10) + b"{}", ".npy format version 3.0 is not read"),
    ]
    for content, message in cases:
        bad.write_bytes(content)
        with pytest.raises(ImageError, match=message.replace("(", r"\(")):
            read_illum_files(folder, ["DNA"], (1080, 1080))
    for dtype, message in ((object, "dtype object"), ("<c8", "dtype complex64"), ("?", "dtype bool"),
                           ([("a", "<f4")], "dtype")):
        with open(bad, "wb") as fh:
            npy.write_array_header_1_0(fh, {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                                            "shape": (1080, 1080)})
        with pytest.raises(ImageError, match=f"illumination function has {message}.*its data was not read"):
            read_illum_files(folder, ["DNA"], (1080, 1080))
    with open(bad, "wb") as fh:  # the right header, half the data
        npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (1080, 1080)})
        fh.write(np.ones(1080 * 540, np.float32).tobytes())
    with pytest.raises(ImageError, match=r"truncated: the header announces 4665600 bytes of array data"):
        read_illum_files(folder, ["DNA"], (1080, 1080))
    # what np.save writes still reads, Fortran order, big-endian and a (1, h, w) shape included
    function = np.random.default_rng(0).uniform(0.5, 2, (1080, 1080))
    for array in (np.asfortranarray(function.astype(np.float32)), function.astype(">f8")[None],
                  (function * 1000).astype(np.uint16)):
        np.save(bad, array)
        got = read_illum_files(folder, ["DNA"], (1080, 1080))["DNA"]
        np.testing.assert_array_equal(got, np.squeeze(np.load(bad)).astype(np.float32))
