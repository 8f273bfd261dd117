"""ImageXpress (MetaXpress) plate folders (io/imagexpress.py).

The bundled plate's real CPJUMP1 images written out as MetaXpress names them, with an HTD
naming the wavelengths as the Harmony index names its channels: the plate read from that
folder lists the same images, and a run of it gives the same tables as the Harmony run.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cpfeatures.errors import PlateError
from cpfeatures.io import PlateWarning, read_plate
from cpfeatures.io.imagexpress import IMAGEXPRESS_PATTERN, parse_htd
from cpfeatures.run import run_plate
from cpfeatures.store import read_table

PLATE = "CPJUMP1_EXAMPLE"


def _metaseries(pixel_um: float, name: str) -> str:
    return ("<MetaData><prop id=\"Description\" type=\"string\" value=\"Plate Name: x\"/><PlaneInfo>"
            "<prop id=\"spatial-calibration-state\" type=\"bool\" value=\"on\"/>"
            f"<prop id=\"spatial-calibration-x\" type=\"float\" value=\"{pixel_um}\"/>"
            f"<prop id=\"spatial-calibration-y\" type=\"float\" value=\"{pixel_um}\"/>"
            "<prop id=\"spatial-calibration-units\" type=\"string\" value=\"um\"/>"
            f"<prop id=\"_IllumSetting_\" type=\"string\" value=\"{name}\"/></PlaneInfo></MetaData>")


def write_imagexpress(harmony, folder: Path, *, htd: bool = True, guid: bool = True,
                      timepoint_folder: bool = False) -> Path:
    """The Harmony plate's images as a MetaXpress export: one TIFF per site and wavelength (+ thumbnails)."""
    folder.mkdir(parents=True)
    where = folder / "TimePoint_1" if timepoint_folder else folder
    where.mkdir(exist_ok=True)
    waves = harmony.channels.sort_values("channel_id")
    rng = np.random.default_rng(7)
    for _, row in harmony.images.iterrows():
        suffix = str(uuid.UUID(bytes=rng.bytes(16))).upper() if guid else ""
        stem = f"{PLATE}_{row['well']}_s{int(row['field'])}_w{int(row['channel_id'])}"
        description = _metaseries(0.598, row["channel_name"])
        tifffile.imwrite(where / f"{stem}{suffix}.tif", tifffile.imread(row["path"]), description=description)
        tifffile.imwrite(where / f"{stem}_thumb{suffix}.tif", np.zeros((8, 8), np.uint16))
    if htd:
        lines = ['"HTSInfoFile", Version 1.0', '"Description", "CPJUMP1 crops"', '"TimePoints", 1',
                 '"XWells", 24', '"YWells", 16', '"Sites", TRUE', f'"NWavelengths", {len(waves)}']
        for _, w in waves.iterrows():
            lines += [f'"WaveName{int(w.channel_id)}", "{w.channel_name}"', f'"WaveCollect{int(w.channel_id)}", 1']
        lines.append('"EndFile"')
        (folder / f"{PLATE}.HTD").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return folder


def test_folder_lists_the_same_images_as_the_harmony_index(harmony, tmp_path):
    folder = write_imagexpress(harmony, tmp_path / "ix")
    plate = read_plate(folder)
    assert plate.plate_id == PLATE and (plate.plate_rows, plate.plate_columns) == (16, 24)
    assert plate.sites == harmony.sites
    assert plate.roles == harmony.roles  # the HTD's wave names map through [channels] as Harmony's do
    assert plate.pixel_size_um == pytest.approx(0.598)
    key = ["well", "field", "role"]
    ours = plate.images.set_index(key)["path"].sort_index()
    theirs = harmony.images.set_index(key)["path"].sort_index()
    assert (ours.index == theirs.index).all()
    assert not any("_thumb" in p for p in ours)
    for a, b in list(zip(ours, theirs))[:3]:
        np.testing.assert_array_equal(tifffile.imread(a), tifffile.imread(b))
    assert read_plate(folder / f"{PLATE}.HTD").sites == harmony.sites  # the HTD itself opens the plate


def test_run_equals_the_harmony_run(harmony, bundled_run, tmp_path):
    folder = write_imagexpress(harmony, tmp_path / "ix", timepoint_folder=True)
    out = tmp_path / "ix.zarr"
    summary = run_plate(folder, out, workers=1, progress=False)
    assert summary.ok and len(summary.done) == 4
    for table in ("nuclei", "cells", "cytoplasm"):
        keys = ["Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber"]
        a = read_table(out, table).sort_values(keys).reset_index(drop=True)
        b = read_table(bundled_run, table).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False)
    image = read_table(out, "image")
    assert image["FileName_OrigDNA"].str.match(rf"{PLATE}_[A-P]\d\d_s5_w5[0-9A-F-]{{36}}\.tif").all()


def test_names_without_guid_and_without_htd(harmony, tmp_path):
    folder = write_imagexpress(harmony, tmp_path / "ix", htd=False, guid=False)
    with pytest.warns(PlateWarning, match="no .HTD file"):
        plate = read_plate(folder)
    assert plate.sites == harmony.sites
    assert plate.roles == [f"ch{i}" for i in range(1, 9)]  # no names: wavelength numbers until mapped
    mapped = read_plate(folder, config={"channel_ids": {5: "DNA", 3: "RNA"}, "channels": {}})
    assert {"DNA", "RNA"} <= set(mapped.roles)


def test_file_name_grammar():
    m = IMAGEXPRESS_PATTERN.match("P1_C07_s1_w2607EE13F-AB5E-4E1A-9C1B-0123456789AB.tif")
    assert (m["well"], m["site"], m["wave"]) == ("C07", "1", "2")  # the GUID may start with digits
    m = IMAGEXPRESS_PATTERN.match("Projection-Mix_E07_s1E94C24BD-45E4-450A-9919-257C714278F7.tif")
    assert (m["plate"], m["well"], m["site"], m["wave"]) == ("Projection-Mix", "E07", "1", None)
    assert IMAGEXPRESS_PATTERN.match("My_Plate_2_A01_s3_w1_thumb.TIF")["thumb"]
    assert IMAGEXPRESS_PATTERN.match("My_Plate_2_A01_s3_w1.TIF")["plate"] == "My_Plate_2"


def test_bad_folders_are_refused_naming_the_file(harmony, tmp_path):
    folder = write_imagexpress(harmony, tmp_path / "ix")
    (folder / "notes.tif").write_bytes(b"")
    with pytest.raises(PlateError, match="does not follow the ImageXpress pattern") as err:
        read_plate(folder)
    assert "notes.tif" in str(err.value)
    (folder / "notes.tif").unlink()
    (folder / "Other.HTD").write_text('"HTSInfoFile", Version 1.0\r\n')
    with pytest.raises(PlateError, match="2 .HTD files"):
        read_plate(folder)
    (folder / "Other.HTD").unlink()
    (folder / f"{PLATE}.HTD").write_text("hello\n")
    with pytest.raises(PlateError, match="not an ImageXpress HTD file") as err:
        read_plate(folder)
    assert f"{PLATE}.HTD" in str(err.value)


def test_z_planes_without_projection_are_refused_single_plane_is_used(harmony, tmp_path):
    folder = write_imagexpress(harmony, tmp_path / "ix")
    dna = sorted(folder.glob(f"{PLATE}_D08_s5_w5*.tif"))
    image = [p for p in dna if "_thumb" not in p.name][0]
    (folder / "ZStep_1").mkdir()
    image.rename(folder / "ZStep_1" / image.name)  # DNA of D08 only as one Z plane: taken from there
    plate = read_plate(folder)
    rows = plate.site_images("D08", 5)
    assert rows.set_index("role").loc["DNA", "path"].endswith(f"ZStep_1/{image.name}")
    (folder / "ZStep_2").mkdir()
    tifffile.imwrite(folder / "ZStep_2" / image.name, tifffile.imread(folder / "ZStep_1" / image.name))
    with pytest.raises(PlateError, match="2 Z planes and no projection"):
        read_plate(folder)


def test_htd_is_read_as_latin1_when_not_utf8(tmp_path):
    path = tmp_path / "p.HTD"
    path.write_bytes('"HTSInfoFile", Version 1.0\r\n"Description", "37 °C"\r\n"WaveName1", "DAPI"\r\n'.encode("latin-1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entries = parse_htd(path)
    assert entries["Description"] == ["37 °C"] and entries["WaveName1"] == ["DAPI"]
