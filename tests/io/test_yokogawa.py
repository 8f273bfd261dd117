"""Yokogawa CellVoyager measurement folders (io/yokogawa.py).

The bundled plate's real CPJUMP1 images written as a CV8000 measurement: mlf/mrf/mes in the
``bts`` namespace (BOM on the mrf and mes as the instrument writes them), file names
``<plate>_<well>_T0001F005L01A01Z01C05.tif``, channel Targets named as the Harmony index names
the channels. The plate read from that folder lists the same images and a run of it gives the
same tables as the Harmony run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cpfeatures.errors import PlateError
from cpfeatures.io import PlateWarning, read_plate
from cpfeatures.run import run_plate
from cpfeatures.store import read_table

NS = 'xmlns:bts="http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"'
PLATE = "CPJUMP1_EXAMPLE_CV"


def write_cellvoyager(harmony, folder: Path, *, errors: bool = True, mes: bool = True, extra_plane: bool = False,
                      pixel_um: float = 0.598) -> Path:
    """The Harmony plate as a CellVoyager measurement folder."""
    folder.mkdir(parents=True)
    records = []
    for _, im in harmony.images.iterrows():
        r, c, f, ch = int(im["row"]), int(im["col"]), int(im["field"]), int(im["channel_id"])
        planes = (1, 2) if extra_plane and (im["well"], ch) == ("D08", 5) else (1,)
        for z in planes:
            name = f"{PLATE}_{im['well']}_T0001F{f:03d}L01A01Z{z:02d}C{ch:02d}.tif"
            tifffile.imwrite(folder / name, tifffile.imread(im["path"]))
            records.append(f'<bts:MeasurementRecord bts:Type="IMG" bts:Time="2026-12-02T10:00:00.000+01:00" '
                           f'bts:Column="{c}" bts:Row="{r}" bts:TimePoint="1" bts:FieldIndex="{f}" '
                           f'bts:ZIndex="{z}" bts:TimelineIndex="1" bts:ActionIndex="1" bts:Action="3D" '
                           f'bts:X="-567.1" bts:Y="402.9" bts:Z="{3.0 * (z - 1)}" bts:Ch="{ch}">{name}'
                           '</bts:MeasurementRecord>')
    if errors:  # a field whose autofocus failed: a record, no images
        records.append('<bts:MeasurementRecord bts:Type="ERR" bts:Time="2026-12-02T10:01:00.000+01:00" '
                       'bts:Column="8" bts:Row="4" bts:TimePoint="1" bts:FieldIndex="6" bts:TimelineIndex="1" '
                       'bts:X="0.0" bts:Y="0.0">AF Error at D08 No. 6 (CPJUMP1)</bts:MeasurementRecord>')
    (folder / "MeasurementData.mlf").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementData bts:Version="1.0" {NS}>\n'
        + "\n".join(records) + "\n</bts:MeasurementData>\n")
    h, w = harmony.image_shape
    channels = "".join(
        f'<bts:MeasurementChannel bts:Ch="{int(c)}" bts:HorizontalPixelDimension="{pixel_um}" '
        f'bts:VerticalPixelDimension="{pixel_um}" bts:CameraNumber="1" bts:InputBitDepth="16" '
        f'bts:HorizontalPixels="{w}" bts:VerticalPixels="{h}" bts:ShadingCorrectionSource="" />'
        for c in range(1, 9))
    (folder / "MeasurementDetail.mrf").write_bytes(b"\xef\xbb\xbf" + (
        f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementDetail bts:Version="1.0" bts:Title="{PLATE}" '
        f'bts:MeasurementSettingFileName="cp.mes" bts:ColumnCount="24" bts:RowCount="16" '
        f'bts:TargetSystem="CV8000" bts:ReleaseNumber="R2.06.03" bts:Status="0" {NS}>'
        f'<bts:MeasurementSamplePlate bts:Name="{PLATE}" bts:WellPlateFileName="{PLATE}.wpi" />{channels}'
        "</bts:MeasurementDetail>").encode())
    if mes:
        targets = "".join(f'<bts:Channel bts:Ch="{int(r.channel_id)}" bts:Target="{r.channel_name}" '
                          f'bts:ExposureTime="100" bts:Binning="1" />'
                          for r in harmony.channels.itertuples())
        (folder / "cp.mes").write_bytes(b"\xef\xbb\xbf" + (
            f'<?xml version="1.0" encoding="utf-8"?>\n<bts:MeasurementSetting bts:Version="1.0" {NS}>'
            f"<bts:ChannelList>{targets}</bts:ChannelList></bts:MeasurementSetting>").encode())
    tifffile.imwrite(folder / "SC_BP445-45_20x_M01_CH01.tif", np.ones((8, 8), np.uint16))  # shading image
    return folder


def test_folder_lists_the_same_images_as_the_harmony_index(harmony, tmp_path):
    folder = write_cellvoyager(harmony, tmp_path / "cv")
    with pytest.warns(PlateWarning, match=r"1 acquisition error record.*AF Error at D08 No. 6"):
        plate = read_plate(folder)
    assert plate.plate_id == PLATE and (plate.plate_rows, plate.plate_columns) == (16, 24)
    assert plate.sites == harmony.sites  # the failed field has no site
    assert plate.roles == harmony.roles  # the .mes Targets map through [channels]
    assert plate.pixel_size_um == pytest.approx(0.598)
    assert plate.extra_files == []  # the shading image is the instrument's, not a stray TIFF
    assert plate.attrs["TargetSystem"] == "CV8000" and plate.attrs["acquisition_errors"] == 1
    key = ["well", "field", "role"]
    ours = plate.images.set_index(key)["path"].sort_index()
    theirs = harmony.images.set_index(key)["path"].sort_index()
    assert (ours.index == theirs.index).all()
    for a, b in list(zip(ours, theirs))[:3]:
        np.testing.assert_array_equal(tifffile.imread(a), tifffile.imread(b))
    with pytest.warns(PlateWarning):
        assert read_plate(folder / "MeasurementData.mlf").sites == harmony.sites  # the mlf itself opens it


def test_run_equals_the_harmony_run(harmony, bundled_run, tmp_path):
    folder = write_cellvoyager(harmony, tmp_path / "cv", errors=False)
    out = tmp_path / "cv.zarr"
    summary = run_plate(folder, out, workers=1, progress=False)
    assert summary.ok and len(summary.done) == 4
    keys = ["Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber"]
    for table in ("nuclei", "cells", "cytoplasm"):
        a = read_table(out, table).sort_values(keys).reset_index(drop=True)
        b = read_table(bundled_run, table).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a.drop(columns="Metadata_Plate"), b[a.columns].drop(columns="Metadata_Plate"),
                                      check_dtype=False)


def test_without_mes_channels_are_numbers_and_z_stacks_cost_their_site(harmony, tmp_path):
    folder = write_cellvoyager(harmony, tmp_path / "cv", errors=False, mes=False, extra_plane=True)
    plate = read_plate(folder)
    assert plate.roles == [f"ch{i}" for i in range(1, 9)]
    assert plate.planes == [1, 2]

    paths, problems = plate.site_paths(plate.sites, plate.roles)  # how a run sorts sites before any work
    assert sorted(problems) == ["D08_f5"] and "2 planes" in str(problems["D08_f5"])
    assert sorted(paths) == ["D14_f5", "G21_f5", "L09_f5"]
    mapped = read_plate(folder, config={"channels": {}, "channel_ids": {5: "DNA", 3: "RNA"}})
    assert {"DNA", "RNA"} <= set(mapped.roles)


def test_wrong_image_size_and_bad_index_are_refused_naming_the_file(harmony, tmp_path):
    folder = write_cellvoyager(harmony, tmp_path / "cv", errors=False, pixel_um=0.5)
    mrf = folder / "MeasurementDetail.mrf"
    mrf.write_bytes(mrf.read_bytes().replace(b'bts:HorizontalPixels="540"', b'bts:HorizontalPixels="1080"'))
    with pytest.raises(Exception, match="index says 540x1080"):
        read_plate(folder)
    mlf = folder / "MeasurementData.mlf"
    mlf.write_bytes(mlf.read_bytes()[:-200])  # truncated while the instrument was writing
    with pytest.raises(PlateError, match="malformed or truncated XML") as err:
        read_plate(folder)
    assert "MeasurementData.mlf" in str(err.value)


def test_a_listed_image_that_is_missing_costs_its_site(harmony, tmp_path):
    from cpfeatures.errors import ImageError

    folder = write_cellvoyager(harmony, tmp_path / "cv", errors=False)
    gone = folder / f"{PLATE}_G21_T0001F005L01A01Z01C03.tif"
    gone.unlink()
    with pytest.raises(PlateError, match=f"1 image file.* missing: {gone.name}") as err:
        read_plate(folder)
    assert "MeasurementData.mlf" in str(err.value)
    plate = read_plate(folder, strict=False)  # as a run reads it: the site fails, the others run
    assert plate.missing_files == [gone.name]
    with pytest.raises(ImageError) as err:
        plate.load_site("G21", 5)
    assert gone.name in str(err.value)
    assert set(plate.load_site("D08", 5)) == set(harmony.roles)
