"""`cpfeatures config --from-cppipe` on files that are not pipelines cpfeatures can read: an unknown or malformed
format version, a JSON pipeline whose names hold newlines, a device, a pipe or a huge file. Each is one line on
stderr naming the file and the problem, exit 2, never a traceback, and never a TOML that does not parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cpfeatures.config import default_config, load_config
from cpfeatures.cppipe import PipelineError, import_cppipe, read_pipeline

CLI = [sys.executable, "-m", "cpfeatures.cli"]
#: the most a pipeline file may hold (cpfeatures.cppipe._parse.MAX_PIPELINE_BYTES)
MAX_PIPELINE_BYTES = 16 * 2**20
HEADER = "CellProfiler Pipeline: http://www.cellprofiler.org\n"
TEXTURE = ("MeasureTexture:[module_num:1|svn_version:'Unknown'|variable_revision_number:7|enabled:True]\n"
           "    Enter how many gray levels to measure the texture at:256\n")


@pytest.fixture(scope="module")
def cpjump1(shared_dir) -> tuple[Path, Path]:
    folder = shared_dir / "reference" / "cpjump1_pipelines"
    return folder / "CPJUMP1_analysis.cppipe", folder / "CPJUMP1_illum.cppipe"


def _limit_memory():  # a command that read without bound would fail here, not take the machine's memory
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def _config(*args, out: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["config", "--from-cppipe", *map(str, args)] + (["-o", str(out)] if out else []),
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory)


def _one_error_line(done: subprocess.CompletedProcess, path, *words: str) -> str:
    """The command exited 2 with one line on stderr, ``error: <path>: ...`` holding ``words``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _json_pipeline(path: Path, modules, **top) -> Path:
    """A JSON pipeline as CellProfiler 4.1+ saves one (modules -> attributes + settings of name/text/value)."""
    doc = {"date_revision": 428, "module_count": len(modules), "version": 6, **top, "modules": [
        {"attributes": {"module_num": m.number, "module_path": f"cellprofiler.modules.{m.name.lower()}.{m.name}",
                        "variable_revision_number": m.revision, "enabled": m.enabled, "notes": []},
         "settings": [{"name": "cellprofiler_core.setting.Setting", "text": t, "value": v} for t, v in m.settings]}
        for m in modules]}
    path.write_text(json.dumps(doc))
    return path


# -- 1. the format version --------------------------------------------------------------------------

@pytest.mark.parametrize("header, words", [
    ("Version:99\nDateRevision:9900\n", ["Version:99 is not one cpfeatures reads", "CellProfiler 4.2.8 writes "
                                                                                  "Version:5"]),
    ("Version:6\n", ["Version:6 is not one cpfeatures reads"]),
    ("Version:0\n", ["Version:0 is not one cpfeatures reads"]),
    ("Version:abc\n", ["Version:'abc' is not a pipeline format number"]),
    ("Version:5.0\n", ["Version:'5.0' is not a pipeline format number"]),
    ("Version:\n", ["Version:'' is not a pipeline format number"]),
    ("Version:5\nModuleCount:two\n", ["ModuleCount:'two' is not a number"]),
])
def test_unknown_or_malformed_version_is_refused_by_name(tmp_path, header, words):
    path = tmp_path / "future.cppipe"
    path.write_text(HEADER + header + "\n" + TEXTURE)
    with pytest.raises(PipelineError, match=words[0].replace("(", r"\(")):
        read_pipeline(path)
    _one_error_line(_config(path), path, *words)


@pytest.mark.parametrize("version", [1, 3, 4, 5])
def test_the_versions_cellprofiler_wrote_are_read(tmp_path, version):
    """Version:1-4 (CellProfiler 2-3, settings escaped as \\xNN) and 5 (CellProfiler 4; every bundled public
    pipeline and CPJUMP1's) are read; a header without Version: is read as CellProfiler reads it (its own, 5)."""
    path = tmp_path / "p.cppipe"
    path.write_text(HEADER + f"Version:{version}\nModuleCount:1\n\n" + TEXTURE)
    assert read_pipeline(path)[0].get("Enter how many gray levels") == "256"
    path.write_text(HEADER + "DateRevision:413\n\n" + TEXTURE)
    assert read_pipeline(path)[0].name == "MeasureTexture"
    for bundled in (Path(__file__).parent / "data").glob("*.cppipe"):
        assert "\nVersion:5\n" in bundled.read_text()[:200]


@pytest.mark.parametrize("version, ok", [(6, True), ("6", True), ("v6", True), (7, False), ("v5", False),
                                         ([6], False)])
def test_json_pipeline_version(cpjump1, tmp_path, version, ok):
    path = _json_pipeline(tmp_path / "a.json", read_pipeline(cpjump1[0]), version=version)
    if ok:
        assert len(read_pipeline(path)) == 33
        return
    with pytest.raises(PipelineError, match="JSON pipeline format version .* is not one cpfeatures reads"):
        read_pipeline(path)


# -- 2. text that goes into the TOML ---------------------------------------------------------------

def test_json_module_name_with_newlines_is_refused(cpjump1, tmp_path):
    """A module_path ending in a name with newlines once became TOML lines of its own: now refused, named."""
    path = _json_pipeline(tmp_path / "bad.cppipe", read_pipeline(cpjump1[0]))
    doc = json.loads(path.read_text())
    doc["modules"][4]["attributes"]["module_path"] = "cellprofiler.modules.x.Evil\n[run]\nchannels = 1"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out.toml"
    for args in ([path], [path, "--allow-unsupported"]):
        line = _one_error_line(_config(*args, out=out), path, "module 5: its name",
                               "is not a CellProfiler module name")
        assert "Evil\\n[run]\\nchannels = 1" in line  # shown escaped, on the one line
        assert not out.exists()


@pytest.mark.parametrize("change", [
    {"module_path": "cellprofiler.modules.x.Measure Texture"},  # a space
    {"module_path": 42},
    {"module_path": None, "module_name": None},
    {"enabled": "maybe"},
    {"module_num": "first"},
])
def test_json_module_attributes_that_are_not_cellprofilers_are_refused(cpjump1, tmp_path, change):
    path = _json_pipeline(tmp_path / "bad.json", read_pipeline(cpjump1[0]))
    doc = json.loads(path.read_text())
    doc["modules"][1]["attributes"].update(change)
    path.write_text(json.dumps(doc))
    with pytest.raises(PipelineError, match=r"module 2\b"):
        read_pipeline(path)


def _json_with(cpjump1, tmp_path, module: int, setting: str, value: str) -> Path:
    modules = read_pipeline(cpjump1[0])
    for m in modules:
        if m.number == module:
            m.settings = [(t, value if t == setting else v) for t, v in m.settings]
    return _json_pipeline(tmp_path / "values.json", modules)


def test_the_written_toml_parses_whatever_the_pipeline_holds(cpjump1, tmp_path):
    """Setting values with newlines, control characters and line separators (JSON, or \\xNN escapes of
    CellProfiler 2-3) reach the TOML's comments and stderr escaped: the file parses, each message is one line."""
    evil = "Adaptive\n[run]\nchannels = 1\x01\u2028\x7f"
    path = _json_with(cpjump1, tmp_path, 16, "Threshold strategy", evil)
    out = tmp_path / "settings.toml"
    done = _config(path, "--allow-unsupported", out=out)
    assert done.returncode == 0, done.stderr
    parsed = tomllib.loads(out.read_text(encoding="utf-8"))
    assert "channels" not in parsed["run"] or parsed["run"]["channels"] != 1
    assert load_config(out) == import_cppipe(path).config
    dropped = [ln for ln in done.stderr.splitlines() if ln.startswith("dropped:")]
    assert dropped == [f'dropped: {path}: module 16 IdentifyPrimaryObjects: "Threshold strategy" = '
                       '"Adaptive\\n[run]\\nchannels = 1\\x01\\u2028\\x7f": only global thresholds are implemented']
    assert '"Adaptive\\n[run]\\nchannels = 1\\x01\\u2028\\x7f"' in out.read_text(encoding="utf-8")
    # a CellProfiler 3 text pipeline: \x0A in a value is a newline once unescaped
    old = tmp_path / "old.cppipe"
    old.write_text(HEADER + "Version:3\nDateRevision:300\nModuleCount:1\n\n"
                   "Smooth:[module_num:1|svn_version:\\'Unknown\\'|variable_revision_number:2|enabled:True]\n"
                   "    Select the input image:DNA\\x0A[run]\\x0Achannels = 2\n    Name the output image:Blurred\n"
                   "    Select smoothing method:Gaussian Filter\n")
    assert read_pipeline(old)[0].get("Select the input image") == "DNA\n[run]\nchannels = 2"
    done = _config(old, "--allow-unsupported", out=out)
    assert done.returncode == 0, done.stderr
    tomllib.loads(out.read_text(encoding="utf-8"))


def test_notes_and_file_names_are_escaped_too(cpjump1, tmp_path):
    """A note names the pipeline's images; the TOML's head names the files: neither can break a line."""
    src = cpjump1[0].read_text()
    weird = tmp_path / "a\nb.cppipe"
    weird.write_text(src.replace("Calculate correlation and slope metrics?:Yes",
                                 "Calculate correlation and slope metrics?:No"))
    result = import_cppipe(weird)
    text = result.to_toml()
    assert tomllib.loads(text) == tomllib.loads(import_cppipe(cpjump1[0]).to_toml())
    assert "a\\nb.cppipe" in text.splitlines()[0]
    assert result.notes and all(note.isprintable() for note in result.notes)


def test_lone_surrogates_in_a_json_pipeline_are_refused(cpjump1, tmp_path):
    """JSON can spell text that is no text ("\\ud800"): refused naming the module, never a UnicodeEncodeError."""
    path = _json_with(cpjump1, tmp_path, 27, "Select images to measure", "DNA, x")  # an image name: into the TOML
    path.write_text(path.read_text().replace('"value": "DNA, x"', '"value": "DNA, \\ud800"'))
    _one_error_line(_config(path, out=tmp_path / "out.toml"), path, "module 27 MeasureTexture",
                    "setting 1's value 'DNA, \\ud800' is not valid Unicode")
    assert not (tmp_path / "out.toml").exists()


def test_unreadable_setting_names_the_file(cpjump1, tmp_path):
    """A number that is not one, in the analysis or the illumination pipeline: the file, module and value."""
    analysis = tmp_path / "analysis.cppipe"
    analysis.write_text(cpjump1[0].read_text().replace("Threshold correction factor:1.25",
                                                       "Threshold correction factor:one", 1))
    _one_error_line(_config(analysis), analysis, "module 16 IdentifyPrimaryObjects: a setting cannot be read",
                    "'one'")
    illum = tmp_path / "illum.cppipe"
    illum.write_text(cpjump1[1].read_text().replace("Smoothing filter size:20", "Smoothing filter size:inf", 1))
    _one_error_line(_config(cpjump1[0], "--illum", illum), illum, "(illumination): a setting cannot be read")


# -- 3. what is read, and how much ------------------------------------------------------------------

def test_a_device_is_refused_without_reading_it():
    """/dev/zero once was read until memory ran out (a 255 MB pipeline took 2 GB)."""
    _one_error_line(_config("/dev/zero"), "/dev/zero", "not a regular file (a character device)")


def test_a_pipe_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.cppipe"
    os.mkfifo(fifo)
    _one_error_line(_config(fifo), fifo, "not a regular file (a pipe)")


def test_a_pipeline_larger_than_the_limit_is_refused(tmp_path):
    """A readable pipeline followed by blank lines past the limit: refused by its size, nothing parsed."""
    path = tmp_path / "huge.cppipe"
    with open(path, "w") as fh:
        fh.write(HEADER + "Version:5\nModuleCount:1\n\n" + TEXTURE)
        fh.write(" " * (MAX_PIPELINE_BYTES + 1))
    _one_error_line(_config(path), path, "the file is 16.0 MiB; a CellProfiler pipeline is at most 16.0 MiB")


def test_at_most_the_limit_is_read(tmp_path, monkeypatch):
    """Even when the size the system gives is small (a file still growing): limit + 1 bytes read, then refused."""
    import cpfeatures.cppipe._parse as parse

    path = tmp_path / "growing.cppipe"
    path.write_text(HEADER + "Version:5\n\n" + TEXTURE + "\n" * 5000)
    monkeypatch.setattr(parse, "MAX_PIPELINE_BYTES", 1000)
    sizes = []
    real_open = open

    class Spy:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            sizes.append(n)
            return self.fh.read(n)

        def fileno(self):
            return self.fh.fileno()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(parse, "open", lambda p, mode="r": Spy(real_open(p, mode)), raising=False)
    monkeypatch.setattr(parse.os, "fstat", lambda fd: os.stat_result((0o100644, 0, 0, 1, 0, 0, 10, 0, 0, 0)))
    with pytest.raises(PipelineError, match="at most 1000 bytes"):
        parse.read_pipeline(path)
    assert sizes == [1001]
    monkeypatch.undo()
    assert parse.MAX_PIPELINE_BYTES == MAX_PIPELINE_BYTES


def test_a_pipeline_at_the_limit_is_read(cpjump1, tmp_path):
    path = tmp_path / "padded.cppipe"
    text = cpjump1[0].read_text()
    path.write_text(text + " " * (MAX_PIPELINE_BYTES - len(text.encode())))  # one blank line
    assert path.stat().st_size == MAX_PIPELINE_BYTES
    assert import_cppipe(path).config == default_config()


def test_deeply_nested_json_is_one_line(tmp_path):
    path = tmp_path / "deep.cppipe"
    path.write_text('{"modules": ' + "[" * 200_000)
    _one_error_line(_config(path), path, "not a CellProfiler JSON pipeline")
