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


# -- bad input anywhere: one line naming the file and the problem, nothing already written lost -----

def _snapshot(folder) -> dict:
    from pathlib import Path

    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(folder).rglob("*") if p.is_file()}


def _bad_inputs(tmp_path, plate, store):
    """(name, command args, text the one error line must hold); each sets up its own bad input."""
    import shutil

    import zarr

    from cpfeatures.store import Store

    cases = []
    truncated = tmp_path / "truncated_index"
    shutil.copytree(plate, truncated)
    index = truncated / "Images" / "Index.idx.xml"
    index.write_bytes(index.read_bytes()[:3000])
    cases.append(("truncated index", ["run", truncated, "-o", tmp_path / "a.zarr"], str(index)))
    cases.append(("truncated index (inspect)", ["inspect", truncated], str(index)))
    bad_tiff = tmp_path / "bad_tiff"
    shutil.copytree(plate, bad_tiff)
    tiff = bad_tiff / "Images" / "r04c08f05p01-ch3sk1fk1fl1.tiff"
    tiff.write_bytes(b"II*\x00garbage")
    cases.append(("corrupt TIFF (inspect)", ["inspect", bad_tiff], str(tiff)))
    for name, text, want in (("invalid TOML", "[measure\n", "invalid TOML"),
                             ("unknown setting", "[measure.texture]\nscale = 5\n", "setting 'scale' (did you mean 'scales'?)"),
                             ("wrong type", "[illum]\ndownsample = 'big'\n", "must be int or float")):
        cfg = tmp_path / f"{name.replace(' ', '_')}.toml"
        cfg.write_text(text)
        cases.append((f"config: {name}", ["run", plate, "-o", tmp_path / "b.zarr", "--config", cfg], want))
    cases.append(("config: missing", ["run", plate, "-o", tmp_path / "c.zarr", "--config", tmp_path / "no.toml"],
                  "config file not found"))
    cases.append(("platemap: missing", ["profile", store, "-o", tmp_path / "p.csv", "--platemap",
                                        tmp_path / "no_map.csv"], "no_map.csv"))
    nowell = tmp_path / "nowell.csv"
    nowell.write_text("a,b\n1,2\n")
    cases.append(("platemap: no well column", ["profile", store, "-o", tmp_path / "p.csv", "--platemap", nowell],
                  "nowell.csv"))
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\xff\xfe" * 100)
    cases.append(("platemap: not a table", ["profile", store, "-o", tmp_path / "p.csv", "--platemap", garbage],
                  "garbage.csv"))
    other = tmp_path / "other_plate.zarr"
    Store(other, mode="a").initialize("ANOTHER_PLATE", "")
    cases.append(("store of another plate", ["run", plate, "-o", other], "holds plate 'ANOTHER_PLATE'"))
    settings = tmp_path / "other_settings.toml"
    settings.write_text("[measure.texture]\nscales = [3]\n")
    cases.append(("store of other settings", ["run", plate, "-o", store, "--config", settings],
                  "different settings"))
    newer = tmp_path / "newer.zarr"
    zarr.open_group(newer, mode="w").attrs["cpfeatures"] = {"layout_version": 99, "plate_id": "X"}
    for command in (["run", plate, "-o", newer], ["export", newer, "-o", tmp_path / "e"], ["verify", newer]):
        cases.append((f"newer layout ({command[0]})", command, "newer than this cpfeatures"))
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(foreign, mode="w").create_array("x", shape=(3,), dtype="f8")
    cases.append(("zarr of another program (run)", ["run", plate, "-o", foreign], "another program"))
    for command in ("export", "verify", "profile", "report"):
        args = [command, foreign] + ({"export": ["-o", tmp_path / "e"], "profile": ["-o", tmp_path / "p.csv"],
                                      "report": ["-o", tmp_path / "r.html"]}.get(command, []))
        cases.append((f"zarr of another program ({command})", args, "not a cpfeatures store"))
    folder = tmp_path / "my_results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    cases.append(("folder of other files", ["run", plate, "-o", folder], "not a cpfeatures store"))
    v2 = tmp_path / "v2.zarr"
    v2.mkdir()
    (v2 / ".zgroup").write_text('{"zarr_format": 2}')
    cases.append(("zarr v2 store", ["run", plate, "-o", v2], "Zarr v2"))
    return cases


def test_bad_input_anywhere_is_one_line_and_loses_nothing(bundled_plate_dir, bundled_run, tmp_path):
    import shutil

    store = tmp_path / "done.zarr"
    shutil.copytree(bundled_run, store)
    cases = _bad_inputs(tmp_path, bundled_plate_dir, store)
    before = {p: _snapshot(p) for p in tmp_path.iterdir() if p.is_dir()}
    failures = []
    for name, args, want in cases:
        result = run(*args)
        lines = result.stderr.strip().splitlines()
        ok = (result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:") and want in lines[0]
              and isinstance(result.exception, SystemExit))
        if not ok:
            failures.append(f"{name}: exit {result.exit_code}, stderr {result.stderr!r}, "
                            f"exception {result.exception!r}")
    assert not failures, "\n".join(failures)
    after = {p: _snapshot(p) for p in before}
    assert after == before  # no store, plate or folder was written to


# -- the first hour of a new user ------------------------------------------------------------------

CLI = [sys.executable, "-m", "cpfeatures.cli"]


@pytest.mark.parametrize("args, want", [
    (["--wells", "Z99"], "--wells: Z99 not on this plate (wells: D08, D14, G21, L09)"),
    (["--sites", "D08_f9"], "--sites: D08_f9 not on this plate (sites are WELL_fFIELD: D08_f5"),
    (["--sites", "D08"], "--sites: D08 not on this plate"),
])
def test_run_refuses_unknown_wells_and_sites_before_any_work(bundled_plate_dir, tmp_path, args, want):
    out = tmp_path / "x.zarr"
    result = run("run", bundled_plate_dir, "-o", out, *args, "--progress", "none")
    assert result.exit_code == 2 and want in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("args, want", [
    (["run", "PLATE", "-o", "OUT", "--workers", "0"], "--workers"),
    (["run", "PLATE", "-o", "OUT", "--threads-per-worker", "0"], "--threads-per-worker"),
    (["profile", "STORE", "-o", "p.xlsx"], ".parquet, .csv"),
])
def test_bad_options_are_refused(bundled_plate_dir, bundled_run, tmp_path, args, want):
    args = [str(bundled_plate_dir) if a == "PLATE" else str(bundled_run) if a == "STORE" else
            str(tmp_path / "o.zarr") if a == "OUT" else a for a in args]
    result = run(*args)
    assert result.exit_code == 2 and want in result.output + result.stderr
    assert not (tmp_path / "o.zarr").exists() and not (tmp_path / "p.xlsx").exists()


def test_plate_without_index_is_refused_up_front(bundled_plate_dir, tmp_path):
    import shutil

    plate = tmp_path / "noindex"
    shutil.copytree(bundled_plate_dir, plate)
    (plate / "Images" / "Index.idx.xml").unlink()
    result = run("run", plate, "-o", tmp_path / "x.zarr", "--progress", "none")
    assert result.exit_code == 2 and "[channel_ids]" in result.stderr and "ch5" in result.stderr
    assert not (tmp_path / "x.zarr").exists()
    cfg = tmp_path / "ids.toml"
    cfg.write_text("[channel_ids]\n1 = 'Mito'\n2 = 'AGP'\n3 = 'RNA'\n4 = 'ER'\n5 = 'DNA'\n6 = 'HighZBF'\n"
                   "7 = 'LowZBF'\n8 = 'Brightfield'\n")
    result = run("run", plate, "-o", tmp_path / "y.zarr", "--config", cfg, "--sites", "D08_f5", "--workers", "1",
                 "--progress", "none")
    assert result.exit_code == 0, result.stderr


def test_unreachable_scheduler_is_one_line(bundled_plate_dir, tmp_path):
    import socket
    import time

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.run(CLI + ["run", str(bundled_plate_dir), "-o", str(tmp_path / "x.zarr"), "--scheduler",
                                 f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and time.perf_counter() - t0 < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"tcp://127.0.0.1:{port}" in lines[0] and "within 3 s" in lines[0], proc.stderr


def test_progress_lines_without_a_terminal_json_and_log(bundled_plate_dir, bundled_run, tmp_path):
    """(``bundled_run`` first: the kernels are compiled and cached before this run is timed.)"""
    import time

    out, log = tmp_path / "batch.zarr", tmp_path / "run.log"
    proc = subprocess.Popen(CLI + ["run", str(bundled_plate_dir), "-o", str(out), "--workers", "1", "--json",
                                   "--log-file", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # pipes: no TTY
    seen = []
    for line in proc.stderr:
        seen.append((time.monotonic(), line))
    stdout = proc.stdout.read()
    end = time.monotonic()
    assert proc.wait() == 0
    progress = [(t, ln) for t, ln in seen if " sites " in ln]
    assert progress and progress[0][1].split()[2:4] == ["sites", "0/4"]
    assert any("sites 4/4 (100%)" in ln and "/min" in ln for _, ln in progress)
    assert any(" illumination 4/4 (100%)" in ln for _, ln in seen)
    assert end - progress[0][0] > 0.5  # printed while the run went on, not at its end
    summary = json.loads(stdout)
    assert summary["done"] == 4 and summary["exit_code"] == 0 and summary["cells"] > 0
    text = log.read_text()
    assert "sites 4/4 (100%)" in text and '"command": "run"' in text


def test_ctrl_c_exits_130_and_the_run_resumes(bundled_plate_dir, bundled_run, tmp_path):
    """Ctrl-C while a site is in flight. The run waits for states, not for time: one site's DNA image is a
    named pipe nobody writes, so its worker blocks until the run is interrupted (the illumination
    functions are the finished run's, given with --illum, so no phase reads the pipe before the sites)."""
    import os
    import shutil
    import signal
    import time

    import numpy as np
    import pandas as pd

    from cpfeatures.store import Store, read_table

    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    blocked = next((plate / "Images").glob("r07c21f05p01-ch5*.tiff"))  # G21's DNA
    real = blocked.read_bytes()
    blocked.unlink()
    os.mkfifo(blocked)
    illum = tmp_path / "illum"
    illum.mkdir()
    for role, function in Store(bundled_run).read_illum().items():
        np.save(illum / f"CPJUMP1_EXAMPLE_Illum{role}.npy", function)
    out = tmp_path / "interrupted.zarr"
    cmd = CLI + ["run", str(plate), "-o", str(out), "--workers", "1", "--progress", "none", "--illum", str(illum)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (
            (out / "sites").exists() and Store(out).completed_sites(check=False)):
        time.sleep(0.2)  # sites are committed (in plate order: D08 first); G21 waits on its pipe for good
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr and "Traceback" not in stderr
    assert not (out / "lock").exists()
    blocked.unlink()
    blocked.write_bytes(real)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for table in ("cells", "nuclei"):
        a = read_table(out, table).sort_values(["Metadata_Well", "Metadata_ObjectNumber"]).reset_index(drop=True)
        b = read_table(bundled_run, table).sort_values(["Metadata_Well", "Metadata_ObjectNumber"])
        pd.testing.assert_frame_equal(a, b.reset_index(drop=True))


def test_overlay_without_store_draws_the_runs_outlines(bundled_plate_dir, bundled_run):
    from cpfeatures.report.overlay import site_overlay
    from cpfeatures.store import read_table

    image = read_table(bundled_run, "image").set_index("Metadata_Well")
    for well in ("D08", "G21"):
        _, _, details = site_overlay(bundled_plate_dir, well, 5)
        assert details["labels"] == "segmented"
        assert details["counts"]["Cells"] == image.loc[well, "Count_Cells"], well


def test_score_help_says_when_matching_is_written():
    result = run("score", "--help")
    text = " ".join(result.output.split())
    assert "with --match-by percent_matching.csv" in text and "with --per summary.csv" in text


def test_report_prints_no_numpy_warnings(bundled_run, bundled_plate_dir, tmp_path):
    negcon = "Metadata_control_type == 'negcon'"
    subprocess.run(CLI + ["profile", str(bundled_run), "--platemap", str(bundled_plate_dir / "platemap.csv"), "-o",
                          str(tmp_path / "p.parquet"), "--samples", negcon], check=True, capture_output=True)
    subprocess.run(CLI + ["score", str(tmp_path / "p.parquet"), "--replicates-by", "Metadata_pert_iname",
                          "--reference", negcon, "--null-size", "500", "-o", str(tmp_path / "s")], check=True,
                         capture_output=True)
    # the scores of the example plate are degenerate (null correlations all 1): their figures too
    proc = subprocess.run(CLI + ["report", str(bundled_run), "-o", str(tmp_path / "r.html"), "--scores",
                                 str(tmp_path / "s")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "divide" not in proc.stderr and "invalid value" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("args, named", [
    (["inspect", "{tmp}/nonexistent"], "nonexistent"),
    (["inspect", "{plate}", "--config", "{tmp}/missing.toml"], "missing.toml"),
    (["run", "{tmp}/nonexistent", "-o", "{tmp}/x.zarr"], "nonexistent"),
    (["crops", "{tmp}/nonexistent.zarr", "{plate}"], "nonexistent.zarr"),
    (["verify", "{tmp}/nonexistent.zarr"], "nonexistent.zarr"),
    (["export", "{tmp}/nonexistent.zarr", "-o", "{tmp}/e"], "nonexistent.zarr"),
    (["config", "--show", "{tmp}/nonexistent.zarr"], "nonexistent.zarr"),
    (["config", "--from-cppipe", "{tmp}/nonexistent.cppipe"], "nonexistent.cppipe"),
    (["profile", "{tmp}/nonexistent.zarr", "-o", "{tmp}/p.csv"], "nonexistent.zarr"),
    (["profile", "{plate}/platemap.csv", "-o", "{tmp}/p.csv", "--platemap", "{tmp}/missing_map.csv"],
     "missing_map.csv"),
    (["score", "{tmp}/missing.csv", "--replicates-by", "X"], "missing.csv"),
    (["score", "{plate}/platemap.csv", "--replicates-by", "X", "--plate-metadata", "{tmp}/missing.tsv"],
     "missing.tsv"),
    (["report", "{tmp}/nonexistent.zarr", "-o", "{tmp}/r.html"], "nonexistent.zarr"),
    (["overlay", "{tmp}/nonexistent", "--well", "D08", "--field", "5", "-o", "{tmp}/o.png"], "nonexistent"),
])
def test_every_command_given_a_missing_file_says_so_in_one_line(bundled_plate_dir, tmp_path, args, named):
    args = [a.format(tmp=tmp_path, plate=bundled_plate_dir) for a in args]
    result = run(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exit_code, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], result.stderr
    assert "Traceback" not in result.output
