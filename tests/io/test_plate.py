"""read_plate / Plate on the real example plate, synthetic exports, and bad input."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import tifffile

from cpfeatures.config import load_config
from cpfeatures.errors import ConfigError, CpfeaturesError, ImageError, PlateError
from cpfeatures.io import PlateWarning, Site, parse_filename, read_plate, well_name

# The CPJUMP1 channel table of shared/data/README.md: (id, Harmony name, role)
README_ROLES = {1: ("Alexa 647", "Mito"), 2: ("Alexa 568", "AGP"), 3: ("488 long", "RNA"), 4: ("Alexa 488", "ER"),
                5: ("HOECHST 33342", "DNA"), 6: ("Brightfield H", "HighZBF"), 7: ("Brightfield L", "LowZBF"),
                8: ("Brightfield", "Brightfield")}


def test_real_example_plate(example_plate_dir):
    plate = read_plate(example_plate_dir)
    assert plate.plate_id == "CPJUMP1_EXAMPLE"
    assert plate.wells == ["D08", "D14", "F10", "G21", "L09", "M02", "N14"]
    assert plate.fields == [5] and plate.planes == [1]
    assert len(plate.channels) == 8 and len(plate.images) == 56
    got = {int(r.channel_id): (r.channel_name, r.role) for r in plate.channels.itertuples()}
    assert got == README_ROLES
    assert plate.pixel_size_um == pytest.approx(0.598, abs=5e-4)
    assert plate.image_shape == (1080, 1080) and plate.dtype == np.uint16
    assert plate.sites[0] == Site("D08", 5)
    assert plate.missing_files == [] and plate.extra_files == []


def test_describe_is_the_inspect_summary(bundled_plate_dir):
    """Plate.describe(): plain, JSON-ready values; the same dict `cpfeatures inspect --json` prints."""
    import json

    from click.testing import CliRunner

    from cpfeatures.cli import main

    plate = read_plate(bundled_plate_dir)
    summary = plate.describe()
    assert list(summary) == ["plate_id", "index", "image_folder", "wells", "fields", "planes", "timepoints",
                             "channels", "pixel_size_um", "image_shape", "dtype", "n_sites", "n_images",
                             "missing_files", "extra_files", "instrument", "plate_type"]
    assert summary["plate_id"] == "CPJUMP1_EXAMPLE" and summary["wells"] == ["D08", "D14", "G21", "L09"]
    assert summary["fields"] == [5] and summary["planes"] == [1] and summary["n_sites"] == 4
    assert summary["image_shape"] == [540, 540] and summary["dtype"] == "uint16" and summary["n_images"] == 32
    assert summary["index"].endswith("Index.idx.xml") and summary["missing_files"] == []
    dna = next(c for c in summary["channels"] if c["role"] == "DNA")
    assert dna == {"id": 5, "name": "HOECHST 33342", "role": "DNA", "excitation_nm": dna["excitation_nm"],
                   "emission_nm": dna["emission_nm"]}
    assert all(isinstance(c["excitation_nm"], (int, float, type(None))) for c in summary["channels"])
    assert json.loads(json.dumps(summary)) == summary  # plain Python values only
    printed = CliRunner().invoke(main, ["inspect", str(bundled_plate_dir), "--json", "--quick"])
    printed_summary = json.loads(printed.output)
    assert printed.exit_code == 0 and printed_summary.pop("checked") == "none"  # what inspect read (--quick: no file)
    assert printed_summary == summary


def test_describe_counts_missing_files(make_plate):
    root = make_plate()
    (root / "Images" / "r04c08f01p01-ch1sk1fk1fl1.tiff").unlink()
    summary = read_plate(root, strict=False).describe()
    assert summary["missing_files"] == ["r04c08f01p01-ch1sk1fk1fl1.tiff"]
    assert summary["n_images"] == len(read_plate(root, strict=False).images)


def test_load_site_matches_tifffile(example_plate_dir):
    plate = read_plate(example_plate_dir / "Images" / "Index.idx.xml")  # the index file itself is accepted
    site = plate.load_site("D08", 5, roles=["DNA", "RNA"])
    assert list(site) == ["DNA", "RNA"]
    expected = tifffile.imread(example_plate_dir / "Images" / "r04c08f05p01-ch5sk1fk1fl1.tiff")
    assert site["DNA"].dtype == np.uint16
    np.testing.assert_array_equal(site["DNA"], expected)


def test_images_folder_accepted(bundled_plate_dir):
    a = read_plate(bundled_plate_dir)
    b = read_plate(bundled_plate_dir / "Images")
    assert a.plate_id == b.plate_id and len(a.images) == len(b.images) == 32
    assert a.image_shape == (540, 540)


def test_image_table_columns(bundled_plate_dir):
    images = read_plate(bundled_plate_dir).images
    for col in ["row", "col", "well", "field", "plane", "timepoint", "channel_id", "channel_name", "role", "path",
                "pixel_size_um", "position_x_um", "position_y_um", "position_z_um", "excitation_nm", "emission_nm",
                "exposure_s"]:
        assert col in images, col
    dna = images[(images.well == "D08") & (images.role == "DNA")].iloc[0]
    assert dna.position_x_um == pytest.approx(-968.721) and dna.position_z_um == pytest.approx(-2.0)


@pytest.mark.parametrize("version", [5, 7])
def test_synthetic_index_versions(make_plate, version):
    root = make_plate(version=version, fields=(1, 2, 3))
    plate = read_plate(root)
    assert plate.plate_id == "SYNTH_PLATE"
    assert plate.wells == ["D08", "D14"] and plate.fields == [1, 2, 3]
    assert plate.roles == ["Mito", "AGP", "RNA", "ER", "DNA", "HighZBF", "LowZBF", "Brightfield"]
    assert len(plate.sites) == 6
    site = plate.load_site("D14", 3)
    assert set(site) == set(plate.roles) and site["DNA"].shape == (64, 48)


def test_config_overrides_roles_and_unknown_channels_load(make_plate, tmp_path):
    channels = [(1, "Alexa 488", 488, 522, "Fluorescence"), (2, "Mystery Dye", 561, 599, "Fluorescence")]
    root = make_plate(channels=channels)
    plate = read_plate(root)
    assert plate.roles == ["ER", "Mystery Dye"]  # unknown channel keeps its name and loads
    assert "Mystery Dye" in plate.load_site("D08", 1)
    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text('[channels]\n"Mystery Dye" = "AGP"\n"Alexa 488" = "RNA"\n')
    plate = read_plate(root, config=load_config(cfg_file))
    assert plate.roles == ["RNA", "AGP"]


def test_two_channels_same_role_is_config_error(make_plate, tmp_path):
    root = make_plate(channels=[(1, "A", 1, 1, "Fluorescence"), (2, "B", 1, 1, "Fluorescence")])
    with pytest.raises(ConfigError, match="same role"):
        read_plate(root, config=load_config(overrides={"channels": {"A": "DNA", "B": "DNA"}}))


def test_filename_fallback_warns(make_plate):
    root = make_plate()
    (root / "Images" / "Index.idx.xml").unlink()
    with pytest.warns(PlateWarning, match="channel names are unknown"):
        plate = read_plate(root)
    assert plate.wells == ["D08", "D14"] and plate.fields == [1, 2]
    assert plate.roles[0] == "ch1" and plate.pixel_size_um is None
    cfg = load_config(overrides={"channel_ids": {"5": "DNA"}})
    with pytest.warns(PlateWarning):
        assert "DNA" in read_plate(root, config=cfg).roles


def test_parse_filename():
    assert parse_filename("r04c08f05p01-ch5sk1fk1fl1.tiff") == {
        "row": 4, "col": 8, "field": 5, "plane": 1, "channel_id": 5, "timepoint": 0, "flim_id": 1}
    assert parse_filename("r4c108f123p2-ch12sk3fk1fl1.tif")["field"] == 123
    assert well_name(4, 8) == "D08" and well_name(16, 24) == "P24" and well_name(27, 1) == "AA01"


# -- bad input: each a one-line cpfeatures error naming the file ---------------------------------

def _one_line(exc: CpfeaturesError, path) -> None:
    text = str(exc)
    assert "\n" not in text
    assert str(path) in text


def test_missing_files_listed_in_one_message(make_plate):
    root = make_plate()
    gone = ["r04c08f01p01-ch1sk1fk1fl1.tiff", "r04c14f02p01-ch5sk1fk1fl1.tiff"]
    for name in gone:
        (root / "Images" / name).unlink()
    with pytest.raises(PlateError, match="2 image file") as err:
        read_plate(root)
    assert all(name in str(err.value) for name in gone)
    _one_line(err.value, root / "Images" / "Index.idx.xml")
    plate = read_plate(root, strict=False)  # a plate run keeps going and fails those sites only
    assert plate.missing_files == sorted(gone)
    with pytest.raises(ImageError, match="missing"):
        plate.load_site("D08", 1)
    assert set(plate.load_site("D08", 2)) == set(plate.roles)


def test_extra_files_reported(make_plate):
    root = make_plate()
    shutil.copy(root / "Images" / "r04c08f01p01-ch1sk1fk1fl1.tiff", root / "Images" / "r09c09f01p01-ch1sk1fk1fl1.tiff")
    assert read_plate(root).extra_files == ["r09c09f01p01-ch1sk1fk1fl1.tiff"]


def test_truncated_tiff(make_plate):
    root = make_plate(shape=(256, 256))
    bad = root / "Images" / "r04c14f01p01-ch3sk1fk1fl1.tiff"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    plate = read_plate(root)
    with pytest.raises(ImageError, match="truncated or corrupt") as err:
        plate.load_site("D14", 1)
    _one_line(err.value, bad)


def test_not_a_tiff(make_plate):
    root = make_plate()
    bad = root / "Images" / "r04c08f02p01-ch2sk1fk1fl1.tiff"
    bad.write_text("hello, I am a text file")
    plate = read_plate(root)
    with pytest.raises(ImageError) as err:
        plate.load_site("D08", 2)
    _one_line(err.value, bad)
    with pytest.raises(ImageError):
        plate.verify()


def test_different_shape_in_one_plate(make_plate):
    root = make_plate()
    odd = root / "Images" / "r04c14f02p01-ch8sk1fk1fl1.tiff"
    tifffile.imwrite(odd, np.zeros((32, 32), np.uint16), compression="lzw")
    plate = read_plate(root)
    with pytest.raises(ImageError, match="32x32") as err:
        plate.verify()
    _one_line(err.value, odd)
    with pytest.raises(ImageError, match="32x32"):
        plate.load_site("D14", 2)


def test_different_dtype_in_one_plate(make_plate):
    root = make_plate()
    odd = root / "Images" / "r04c08f01p01-ch4sk1fk1fl1.tiff"
    tifffile.imwrite(odd, np.zeros((64, 48), np.uint8))
    plate = read_plate(root)
    with pytest.raises(ImageError, match="uint8") as err:
        plate.load_site("D08", 1)
    _one_line(err.value, odd)


def test_index_lists_different_sizes(make_plate):
    root = make_plate()
    index = root / "Images" / "Index.idx.xml"
    text = index.read_text(encoding="utf-8")
    index.write_text(text.replace("<ImageSizeX>48</ImageSizeX>", "<ImageSizeX>96</ImageSizeX>", 1), encoding="utf-8")
    with pytest.raises(PlateError, match="different sizes"):
        read_plate(root)


def test_empty_folder(tmp_path):
    (tmp_path / "Images").mkdir()
    with pytest.raises(PlateError, match="no Harmony index") as err:
        read_plate(tmp_path)
    _one_line(err.value, tmp_path)


def test_unparseable_name_in_fallback(make_plate):
    root = make_plate()
    (root / "Images" / "Index.idx.xml").unlink()
    weird = root / "Images" / "snapshot_001.tif"
    shutil.copy(root / "Images" / "r04c08f01p01-ch1sk1fk1fl1.tiff", weird)
    with pytest.raises(PlateError, match="does not follow the Harmony pattern") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_plate(root)
    _one_line(err.value, weird)


def test_missing_site_and_role(bundled_plate_dir):
    plate = read_plate(bundled_plate_dir)
    with pytest.raises(PlateError, match="no images for well A01"):
        plate.load_site("A01", 1)
    with pytest.raises(PlateError, match="no image for channel"):
        plate.load_site("D08", 5, roles=["GFP"])
