"""Segmentation overlays: one site drawn at full resolution, outlines where the labels' borders are."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cpfeatures.errors import CpfeaturesError
from cpfeatures.io import read_plate
from cpfeatures.report import overlay
from cpfeatures.cli.report import overlay as overlay_command
from cpfeatures.report.overlay import OUTLINE_COLORS

CYAN = np.array([round(255 * c) for c in OUTLINE_COLORS["Nuclei"]])
YELLOW = np.array([round(255 * c) for c in OUTLINE_COLORS["Cells"]])


def _ring(shape, r0, r1, c0, c1) -> np.ndarray:
    """The one-pixel border of the rectangle rows r0..r1, columns c0..c1 (inclusive), drawn by hand."""
    ring = np.zeros(shape, bool)
    ring[r0, c0:c1 + 1] = ring[r1, c0:c1 + 1] = True
    ring[r0:r1 + 1, c0] = ring[r0:r1 + 1, c1] = True
    return ring


def test_overlay_command_writes_the_site_at_full_size(bundled_plate_dir, bundled_run, tmp_path, png_reader):
    out = tmp_path / "D08.png"
    res = CliRunner().invoke(overlay_command, [str(bundled_plate_dir), "--well", "D08", "--field", "5", "-o", str(out),
                                               "--store", str(bundled_run)])
    assert res.exit_code == 0, res.output
    rgb = png_reader(out.read_bytes())
    assert rgb.shape == (*read_plate(bundled_plate_dir).image_shape, 3)
    assert (rgb == CYAN).all(axis=2).sum() > 200 and (rgb == YELLOW).all(axis=2).sum() > 500
    # the composite itself is not black: the channels are there between the outlines
    assert rgb.mean() > 5


def test_outlines_follow_the_given_labels(bundled_plate_dir, tmp_path, png_reader):
    shape = read_plate(bundled_plate_dir).image_shape
    nuclei = np.zeros(shape, np.int32)
    nuclei[100:200, 120:260] = 1
    cells = np.zeros(shape, np.int32)
    cells[60:260, 80:330] = 1
    out = overlay(bundled_plate_dir, "d8", 5, tmp_path / "x" / "site.png", labels={"Nuclei": nuclei, "Cells": cells})
    rgb = png_reader(out.read_bytes())
    np.testing.assert_array_equal((rgb == CYAN).all(axis=2), _ring(shape, 100, 199, 120, 259))
    np.testing.assert_array_equal((rgb == YELLOW).all(axis=2), _ring(shape, 60, 259, 80, 329))


@pytest.mark.parametrize("args, message", [
    (["--well", "Z99", "--field", "5"], "well Z99 is not in the plate"),
    (["--well", "D08", "--field", "9"], "has no field 9"),
    (["--well", "D-8", "--field", "5"], "not a well name"),
])
def test_overlay_command_errors(bundled_plate_dir, tmp_path, args, message):
    res = CliRunner().invoke(overlay_command, [str(bundled_plate_dir), *args, "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    assert not (tmp_path / "o.png").exists()


def test_overlay_errors(bundled_plate_dir, tmp_path):
    with pytest.raises(CpfeaturesError):
        overlay(tmp_path / "no_plate", "D08", 5, tmp_path / "o.png")
    with pytest.raises(CpfeaturesError, match="no cpfeatures store"):
        overlay(bundled_plate_dir, "D08", 5, tmp_path / "o.png", store=tmp_path / "missing.zarr")
    wrong = {"Nuclei": np.zeros((10, 10), np.int32)}
    with pytest.raises(CpfeaturesError, match="label image"):
        overlay(bundled_plate_dir, "D08", 5, tmp_path / "o.png", labels=wrong)
