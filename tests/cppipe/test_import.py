"""`cpfeatures config --from-cppipe` (cpfeatures/cppipe): the real CPJUMP1 pipelines give exactly the defaults;
settings that change the numbers and are not implemented are refused one line each (module number, name,
setting, value); disabled modules are skipped; save/display modules are listed as not needed; a bad file is
one line naming the file and the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cpfeatures.config import default_config, load_config
from cpfeatures.cppipe import PipelineError, import_cppipe, read_pipeline

CLI = [sys.executable, "-m", "cpfeatures.cli"]


@pytest.fixture(scope="module")
def cpjump1(shared_dir) -> tuple[Path, Path]:
    folder = shared_dir / "reference" / "cpjump1_pipelines"
    return folder / "CPJUMP1_analysis.cppipe", folder / "CPJUMP1_illum.cppipe"


def _edit(path: Path, out: Path, module: int, replacements: dict[str, str] | None = None,
          enable: bool | None = None) -> Path:
    """A copy of a pipeline with settings of one module changed (text: new value) or the module (dis)abled."""
    lines, current = [], None
    for line in path.read_text().splitlines():
        if not line.startswith(" ") and "[module_num:" in line:
            current = int(line.split("module_num:")[1].split("|")[0])
            if current == module and enable is not None:
                line = line.replace(f"enabled:{not enable}", f"enabled:{enable}")
        elif current == module and replacements:
            text = line.strip().split(":", 1)[0]
            if text in replacements:
                line = f"    {text}:{replacements[text]}"
        lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    return out


def test_cpjump1_pipelines_give_exactly_the_defaults(cpjump1, tmp_path):
    result = import_cppipe(*cpjump1)
    assert result.ok, [f.line() for f in result.unsupported]
    assert result.config == default_config()
    (tmp_path / "settings.toml").write_text(result.to_toml())
    assert load_config(tmp_path / "settings.toml") == default_config()  # the TOML says the same
    assert result.notes == []
    # the analysis pipeline alone: its LoadData CSV brings the illumination functions; the rest is the same
    alone = import_cppipe(cpjump1[0])
    assert alone.ok and alone.config == default_config()


def test_every_module_is_accounted_for(cpjump1):
    result = import_cppipe(cpjump1[0])
    modules = read_pipeline(cpjump1[0])
    listed = sorted(f.module for f in result.translated + result.not_needed + result.disabled + result.unsupported)
    assert listed == sorted(m.number for m in modules)
    assert {f.module for f in result.disabled} == {11, 12, 13, 33}  # MeasureImageQuality x2, FlagImage, CreateBatch
    assert {f.name for f in result.not_needed} == {"LoadData", "OverlayOutlines", "SaveImages", "ExportToSpreadsheet"}
    assert {f.module for f in result.translated} == set(range(2, 11)) | set(range(14, 28))


def test_cli_writes_the_settings_a_run_reads(cpjump1, tmp_path):
    out = tmp_path / "settings.toml"
    done = subprocess.run(CLI + ["config", "--from-cppipe", str(cpjump1[0]), "--illum", str(cpjump1[1]),
                                 "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "0 unsupported" in done.stderr and "5 disabled" in done.stderr  # 4 in the analysis, 1 in illum
    assert load_config(out) == default_config()
    assert "not needed: module 30 SaveImages" in out.read_text()


@pytest.mark.parametrize("module, change, line", [
    (16, {"Threshold strategy": "Adaptive"},
     'module 16 IdentifyPrimaryObjects: "Threshold strategy" = "Adaptive": only global thresholds'),
    (16, {"Thresholding method": "Robust Background"},
     'module 16 IdentifyPrimaryObjects: "Thresholding method" = "Robust Background"'),
    (16, {"Fill holes in identified objects?": "After both thresholding and declumping"},
     'module 16 IdentifyPrimaryObjects: "Fill holes in identified objects?" = "After both thresholding and '
     'declumping"'),
    (17, {"Select the method to identify the secondary objects": "Distance - B"},
     'module 17 IdentifySecondaryObjects: "Select the method to identify the secondary objects" = "Distance - B"'),
    (19, {"Select where to measure correlation": "Both"},
     'module 19 MeasureColocalization: "Select where to measure correlation" = "Both"'),
    (26, {"Calculate the advanced features?": "Yes"},
     'module 26 MeasureObjectSizeShape: "Calculate the advanced features?" = "Yes"'),
    (2, {"Select how the illumination function is applied": "Subtract"},
     'module 2 CorrectIlluminationApply: "Select how the illumination function is applied" = "Subtract"'),
    (1, {"Rescale intensities?": "No"}, 'module 1 LoadData: "Rescale intensities?" = "No"'),
])
def test_a_setting_that_changes_the_numbers_is_refused(cpjump1, tmp_path, module, change, line):
    pipeline = _edit(cpjump1[0], tmp_path / "changed.cppipe", module, change)
    result = import_cppipe(pipeline)
    assert [f.line() for f in result.unsupported if f.module == module][0].startswith(line)
    if module != 16:  # the command line once per module is enough (each call is a new interpreter)
        return
    out = tmp_path / "settings.toml"
    done = subprocess.run(CLI + ["config", "--from-cppipe", str(pipeline), "-o", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and not out.exists()
    assert f"unsupported: {pipeline}: {line}" in done.stderr and "nothing written" in done.stderr
    done = subprocess.run(CLI + ["config", "--from-cppipe", str(pipeline), "--allow-unsupported", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert f"DROPPED (changes the numbers, not implemented): {line}" in text
    load_config(out)  # still valid settings


def test_enabled_modules_and_changed_settings_are_translated(cpjump1, tmp_path):
    """Module 11 (MeasureImageQuality) enabled, other scales, bounds, sizes: the TOML follows the pipeline."""
    p = _edit(cpjump1[0], tmp_path / "a.cppipe", 11, enable=True)
    p = _edit(p, tmp_path / "b.cppipe", 27, {"Enter how many gray levels to measure the texture at": "64"})
    p = _edit(p, tmp_path / "c.cppipe", 16, {"Typical diameter of objects, in pixel units (Min,Max)": "8,60",
                                             "Threshold correction factor": "1.1",
                                             "Thresholding method": "Otsu",
                                             "Two-class or three-class thresholding?": "Two classes",
                                             "Discard objects touching the border of the image?": "No"})
    p = _edit(p, tmp_path / "d.cppipe", 17, {"Select the method to identify the secondary objects": "Propagation",
                                             "Regularization factor": "0.01"})
    p = _edit(p, tmp_path / "e.cppipe", 23, enable=False)  # no Nuclei neighbours
    result = import_cppipe(p)
    assert result.ok, [f.line() for f in result.unsupported]
    cfg = result.config
    assert cfg["measure"]["image_families"] == ["texture", "granularity", "imagequality"]
    assert cfg["measure"]["imagequality"]["scales"] == [5, 10, 20, 50]
    assert cfg["measure"]["texture"]["gray_levels"] == 64
    nuclei = cfg["segment"]["nuclei"]
    assert nuclei["diameter_range"] == [8, 60] and nuclei["threshold_correction"] == 1.1
    assert nuclei["threshold_method"] == "otsu" and nuclei["discard_border"] is False
    assert cfg["segment"]["cells"]["method"] == "propagation" and cfg["segment"]["cells"]["regularization"] == 0.01
    assert cfg["measure"]["neighbors"] == {"Nuclei": [], "Cells": [5, "adjacent"]}
    (tmp_path / "s.toml").write_text(result.to_toml())
    assert load_config(tmp_path / "s.toml") == cfg


def test_automatic_maxima_suppression_follows_cellprofiler(cpjump1, tmp_path):
    """CellProfiler: 7 px on the image resized by 10 / min diameter when that is > 10 (low resolution), else
    min diameter / 1.5."""
    auto = {"Automatically calculate minimum allowed distance between local maxima?": "Yes"}
    low = import_cppipe(_edit(cpjump1[0], tmp_path / "a.cppipe", 16, {
        **auto, "Typical diameter of objects, in pixel units (Min,Max)": "20,80"})).config["segment"]["nuclei"]
    assert low["maxima_suppression_distance"] * 10 / 20 + 0.5 == pytest.approx(7)
    plain = import_cppipe(_edit(cpjump1[0], tmp_path / "b.cppipe", 16, auto)).config["segment"]["nuclei"]
    assert plain["maxima_suppression_distance"] == pytest.approx(10 / 1.5)


@pytest.mark.parametrize("content, message", [
    ("# not a pipeline\n", "not a CellProfiler pipeline: the first line is '# not a pipeline'"),
    ("CellProfiler Pipeline: http://www.cellprofiler.org\nVersion:5\nModuleCount:2\n\n"
     "MeasureTexture:[module_num:1|enabled:True]\n    Hidden:3\n", "says it has 2 modules but 1 were read"),
    ("CellProfiler Pipeline: http://www.cellprofiler.org\nVersion:5\n\nMeasureTexture:[module_num:1|enabled:True]\n"
     "    no colon here\n", "line 5: setting without ':' in module 1 MeasureTexture"),
    ("CellProfiler Pipeline: http://www.cellprofiler.org\nVersion:5\n\n", "the pipeline has no modules"),
])
def test_bad_pipeline_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "bad.cppipe"
    path.write_text(content)
    with pytest.raises(PipelineError, match=message):
        import_cppipe(path)
    done = subprocess.run(CLI + ["config", "--from-cppipe", str(path)], capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0]


def test_illumination_pipeline_settings(cpjump1, tmp_path):
    text = cpjump1[1].read_text().replace("Resizing factor:0.2", "Resizing factor:0.25") \
        .replace("Resizing factor:5", "Resizing factor:4") \
        .replace("Smoothing filter size:20", "Smoothing filter size:30")
    (tmp_path / "illum.cppipe").write_text(text)
    result = import_cppipe(cpjump1[0], tmp_path / "illum.cppipe")
    assert result.ok and result.config["illum"] == {"enabled": True, "downsample": 0.25, "median_filter_size": 30,
                                                    "rescale": True}
    (tmp_path / "bad.cppipe").write_text(cpjump1[1].read_text().replace("Resizing factor:5", "Resizing factor:4"))
    bad = import_cppipe(cpjump1[0], tmp_path / "bad.cppipe")
    assert 'module 4 Resize (illumination): "Resizing factor" = "4"' in [f.line() for f in bad.unsupported][0]


def test_json_pipeline_reads_as_its_text(cpjump1, tmp_path):
    """CellProfiler 4.1+ can save a pipeline as JSON (modules -> attributes + settings of name/text/value)."""
    import json

    modules = read_pipeline(cpjump1[0])
    doc = {"date_revision": 413, "module_count": len(modules), "version": "v6", "modules": [
        {"attributes": {"module_num": m.number, "module_path": f"cellprofiler.modules.{m.name.lower()}.{m.name}",
                        "variable_revision_number": m.revision, "enabled": m.enabled, "notes": []},
         "settings": [{"name": "cellprofiler_core.setting.Setting", "text": t, "value": v} for t, v in m.settings]}
        for m in modules]}
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(doc))
    assert [(m.number, m.name, m.enabled, m.settings) for m in read_pipeline(path)] == \
        [(m.number, m.name, m.enabled, m.settings) for m in modules]
    assert import_cppipe(path).config == default_config()


def test_cellprofiler_3_text_escapes(tmp_path):
    r"""Pipelines of CellProfiler 2-3 (Version:3) escape characters as \xNN in settings."""
    path = tmp_path / "old.cppipe"
    path.write_text("CellProfiler Pipeline: http://www.cellprofiler.org\nVersion:3\nDateRevision:300\n"
                    "ModuleCount:1\n\n"
                    "MeasureTexture:[module_num:1|svn_version:\\'Unknown\\'|variable_revision_number:5|"
                    "notes:\\x5B\\x5D|enabled:True]\n"
                    "    Hidden:1\n    Select an image to measure:Orig\\x44NA\n"
                    "    Select objects to measure:Nuclei\n    Texture scale to measure:3\n")
    module = read_pipeline(path)[0]
    assert module.name == "MeasureTexture" and module.get("Select an image to measure") == "OrigDNA"
