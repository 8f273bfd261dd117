"""Harmony index parsing on the real index samples of every variant."""

from __future__ import annotations

import pytest

from cpfeatures.errors import PlateError
from cpfeatures.io import parse_index

SAMPLES = "data/phenix_index_samples"


def test_v5_phenix_2021(shared_dir):
    idx = parse_index(shared_dir / SAMPLES / "pe2loaddata_Version1_Phenix_HarmonyV5_Index.idx.xml")
    assert idx.plate_id == "BR00121482"
    assert len(idx.images) == 6
    ch = idx.images.set_index("channel_id")
    assert ch.loc[5, "channel_name"] == "HOECHST 33342"
    assert ch.loc[1, "excitation_nm"] == 640 and ch.loc[1, "emission_nm"] == 706
    assert ch.loc[1, "pixel_size_um"] == pytest.approx(0.59797608, rel=1e-7)
    assert idx.attrs["instrument"] == "Phenix"
    assert idx.plate_rows == 16 and idx.plate_columns == 24


def test_v5_phenix_2023_with_bom(shared_dir):
    path = shared_dir / SAMPLES / "pe2loaddata_Version5_Phenix_HarmonyV5_Index.idx.xml"
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    idx = parse_index(path)
    assert set(idx.images["channel_name"]) >= {"Digital Phase Contrast", "Brightfield high", "488 650"}


def test_v7_channel_fields_come_from_maps(shared_dir):
    idx = parse_index(shared_dir / SAMPLES / "pe2loaddata_Version7_Phenix_HarmonyV7_Index.xml")
    assert "HarmonyV7" in idx.attrs["harmony_namespace"]
    assert len(idx.images) == 7
    # <Image> in V7 has no ChannelName/resolution: they must come from Maps/Map/Entry.
    assert idx.images["channel_name"].notna().all()
    assert idx.images["size_x"].eq(2160).all()
    assert idx.images["pixel_size_um"].iloc[0] == pytest.approx(0.2966881, rel=1e-6)
    assert idx.images["timepoint"].eq(1).all()  # V7 timepoints are 1-based


def test_operetta_two_fields(shared_dir):
    idx = parse_index(shared_dir / SAMPLES / "operetta-compose_OperettaCLS_HarmonyV5_Index.idx.xml")
    assert idx.attrs["instrument"] == "Sonata"
    assert sorted(idx.images["field"]) == [1, 2]
    assert idx.images["pixel_size_um"].iloc[0] == pytest.approx(1.19595216, rel=1e-6)
    pos = idx.images.sort_values("field")
    assert list(pos["position_x_um"].round(3)) == [-645.814, 645.814]
    assert list(pos["position_y_um"].round(3)) == [645.814, 645.814]


def test_tiff_description_is_not_an_index(shared_dir):
    with pytest.raises(PlateError, match="root element"):
        parse_index(shared_dir / SAMPLES / "cpjump1_BR00117013_r04c14f05p01-ch1_tifftag65500_TiffImageDescription.xml")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not xml at all", "not valid XML"),
        (b'<?xml version="1.0"?>\r\n<EvaluationInputData xmlns="x"><Images><Image>', "truncated"),
        (b'<?xml version="1.0"?><Foo/>', "root element is <Foo>"),
        (b'<?xml version="1.0"?><EvaluationInputData><Images/></EvaluationInputData>', "no images"),
    ],
)
def test_bad_index_one_line_error(tmp_path, content, message):
    path = tmp_path / "Index.idx.xml"
    path.write_bytes(content)
    with pytest.raises(PlateError, match=message) as err:
        parse_index(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text
