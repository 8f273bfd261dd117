"""Outputs that cannot be written, inputs that cannot be named: one line naming the file, never a traceback.

A read-only file system (a tmpfs mounted read-only, as a cluster's shared read-only volume) under
every command that writes a file; a plate folder whose name is not UTF-8.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "cpfeatures.cli"]


@pytest.fixture
def read_only(tmpfs):
    """A file system mounted read-only (as a cluster's shared read-only volume)."""
    return tmpfs("ro", "ro,size=1m")


@pytest.fixture(scope="module")
def profiles(bundled_run, bundled_plate_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles") / "profiles.parquet"
    subprocess.run(CLI + ["profile", str(bundled_run), "-o", str(out), "--platemap",
                          str(bundled_plate_dir / "platemap.csv")], check=True, capture_output=True, timeout=300)
    return out


def test_every_command_writing_to_a_read_only_folder_says_so_in_one_line(bundled_run, bundled_plate_dir, profiles,
                                                                         read_only):
    commands = {
        "export": ["export", str(bundled_run), "-o", str(read_only / "tables")],
        "anndata": ["export", str(bundled_run), "--format", "anndata", "-o", str(read_only / "cells.h5ad")],
        "profile": ["profile", str(bundled_run), "-o", str(read_only / "p.parquet")],
        "score": ["score", str(profiles), "--replicates-by", "Metadata_pert_iname", "-o", str(read_only / "scores")],
        "report": ["report", str(bundled_run), "-o", str(read_only / "r.html"), "--overlays", "0"],
        "overlay": ["overlay", str(bundled_plate_dir), "--well", "D08", "--field", "5", "-o",
                    str(read_only / "D08.png"), "--store", str(bundled_run)],
        "config": ["config", "--default", "-o", str(read_only / "settings.toml")],
    }
    for name, args in commands.items():
        done = subprocess.run(CLI + args, capture_output=True, text=True, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 3, (name, done.stderr)
        assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        assert str(read_only) in lines[0] and "Read-only file system" in lines[0], (name, lines)


def test_a_plate_path_that_is_not_utf8_is_refused_by_name(bundled_plate_dir, tmp_path):
    name = os.fsdecode(b"pl\xffate")
    os.symlink(bundled_plate_dir, tmp_path / name)
    for args in (["inspect", str(tmp_path / name)], ["run", str(tmp_path / name), "-o", str(tmp_path / "o.zarr")]):
        done = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "pl\\xffate: the path is not valid UTF-8" in done.stderr
