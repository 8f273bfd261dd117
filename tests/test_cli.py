"""The cpfeatures command: inspect, --version, --help, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cpfeatures import __version__
from cpfeatures.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_help_on_every_command():
    assert run("--help").exit_code == 0
    for name in main.commands:
        result = run(name, "--help")
        assert result.exit_code == 0, name
        assert "Usage" in result.output


def test_inspect_real_plate_json(example_plate_dir):
    result = run("inspect", example_plate_dir, "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    assert s["plate_id"] == "CPJUMP1_EXAMPLE"
    assert s["wells"] == ["D08", "D14", "F10", "G21", "L09", "M02", "N14"]
    assert s["fields"] == [5] and s["planes"] == [1] and len(s["channels"]) == 8
    assert {c["name"]: c["role"] for c in s["channels"]}["HOECHST 33342"] == "DNA"
    assert {c["role"]: (c["excitation_nm"], c["emission_nm"]) for c in s["channels"]}["ER"] == (488, 522)
    assert round(s["pixel_size_um"], 3) == 0.598
    assert s["image_shape"] == [1080, 1080] and s["n_images"] == 56 and s["missing_files"] == []


def test_inspect_human_readable(bundled_plate_dir):
    result = run("inspect", bundled_plate_dir)
    assert result.exit_code == 0
    assert "4 wells x 1 fields x 1 planes x 8 channels" in result.output
    assert "HOECHST 33342" in result.output and "0.5980" in result.output


def test_inspect_missing_file_exits_nonzero(make_plate):
    root = make_plate()
    (root / "Images" / "r04c08f01p01-ch1sk1fk1fl1.tiff").unlink()
    result = run("inspect", root, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["missing_files"] == ["r04c08f01p01-ch1sk1fk1fl1.tiff"]
    assert "missing" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"not xml", b"<?xml version='1.0'?><EvaluationInputData><Images><Im"])
def test_inspect_bad_index_one_line(tmp_path, content):
    (tmp_path / "Index.idx.xml").write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "cpfeatures.cli", "inspect", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Index.idx.xml" in lines[0]
    assert "Traceback" not in proc.stderr


def test_config_default_is_valid_toml_with_cpjump1_values():
    import tomllib

    result = run("config", "--default")
    assert result.exit_code == 0
    cfg = tomllib.loads(result.output)
    assert cfg["measure"]["texture"]["scales"] == [3, 5, 10]
    assert cfg["measure"]["granularity"]["subsample"] == 0.5
    assert cfg["segment"]["nuclei"]["threshold_bounds"] == [0.014, 1.0]
    assert cfg["segment"]["cells"]["threshold_bounds"] == [0.005, 0.014]
    assert cfg["illum"]["median_filter_size"] == 20
