"""Four public Cell Painting pipelines nobody here wrote (tests/cppipe/data/SOURCE.md): imported, their
unsupported settings named as the pipeline text has them, their translated values equal to the pipeline text,
and the settings (with --allow-unsupported) run on the bundled real plate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpfeatures.cppipe import import_cppipe
from cpfeatures.run import run_plate
from cpfeatures.store import read_table

DATA = Path(__file__).parent / "data"

#: pipeline -> (illumination pipeline or None, the bundled plate's Harmony channel name -> the pipeline's image name)
PIPELINES = {
    "cimini2023": ("cimini2023_illum", {"Brightfield H": "Brightfield_H", "Brightfield L": "Brightfield_L"}),
    "wayscience_pyroptosis": (None, {"Alexa 568": "PM", "Brightfield": "Gasdermin"}),
    "wayscience_nf1": (None, {"HOECHST 33342": "DAPI", "Alexa 488": "GFP", "Alexa 568": "RFP", "Alexa 647": "CY5"}),
    "wayscience_cfret": (None, {"HOECHST 33342": "Hoechst", "488 long": "PM", "Alexa 647": "Mitochondria",
                                "Alexa 568": "Actin"}),
}


def _raw(name: str) -> dict[int, tuple[str, bool, list[tuple[str, str]]]]:
    """module number -> (module name, enabled, settings) straight from the file's text (not the parser)."""
    modules, current = {}, None
    for line in (DATA / f"{name}_analysis.cppipe").read_text().splitlines():
        m = re.match(r"^(\w+):\[module_num:(\d+)\|.*enabled:(True|False)", line)
        if m:
            current = int(m.group(2))
            modules[current] = (m.group(1), m.group(3) == "True", [])
        elif current is not None and line.startswith("    ") and ":" in line:
            text, value = line.strip().split(":", 1)
            modules[current][2].append((text, value))
    return modules


def _first(settings, text):
    return next(v for t, v in settings if t == text)


def _import(name):
    illum = PIPELINES[name][0]
    return import_cppipe(DATA / f"{name}_analysis.cppipe", DATA / f"{illum}.cppipe" if illum else None)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_module_accounted_for_and_refusals_as_the_text_says(name):
    raw = _raw(name)
    result = _import(name)
    seen = {f.module for f in result.translated + result.not_needed + result.disabled + result.unsupported
            if "(illumination)" not in f.name}
    assert seen == set(raw)
    assert {f.module for f in result.disabled if "(illumination)" not in f.name} == \
        {n for n, (_, enabled, _) in raw.items() if not enabled}
    # each refusal names a setting and value the module really has
    for f in result.unsupported:
        if f.setting is None or "(illumination)" in f.name:
            continue
        module, _, settings = raw[f.module]
        assert module == f.name
        assert any(t.startswith(f.setting) and f.value in v for t, v in settings), f.line()
    # what the text says is not implemented is refused
    expected = set()
    for number, (module, enabled, settings) in raw.items():
        values = dict(settings)
        if not enabled:
            continue
        if module == "IdentifyPrimaryObjects" and values["Fill holes in identified objects?"] != "Never":
            expected.add((number, "Fill holes in identified objects?"))
        if module == "MeasureColocalization" and values["Select where to measure correlation"] != "Within objects":
            expected.add((number, "Select where to measure correlation"))
        if module in ("MeasureImageIntensity", "MaskImage", "FilterObjects"):
            expected.add((number, None))
    assert expected <= {(f.module, f.setting) for f in result.unsupported}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_translated_values_are_the_pipelines(name):
    raw = _raw(name)
    cfg = _import(name).config
    primary = next(s for m, e, s in raw.values() if m == "IdentifyPrimaryObjects" and e)
    nuclei = cfg["segment"]["nuclei"]
    low, high = (int(float(v)) for v in _first(primary, "Typical diameter of objects, in pixel units (Min,Max)")
                 .split(","))
    assert nuclei["diameter_range"] == [low, high]
    assert nuclei["threshold_correction"] == float(_first(primary, "Threshold correction factor"))
    assert nuclei["threshold_smoothing_scale"] == float(_first(primary, "Threshold smoothing scale"))
    assert nuclei["discard_border"] == (_first(primary, "Discard objects touching the border of the image?") == "Yes")
    secondary = next(s for m, e, s in raw.values() if m == "IdentifySecondaryObjects" and e)
    method = _first(secondary, "Select the method to identify the secondary objects")
    assert cfg["segment"]["cells"]["method"] == {"Propagation": "propagation",
                                                 "Watershed - Image": "watershed_image"}[method]
    assert cfg["segment"]["cells"]["threshold_correction"] == float(_first(secondary, "Threshold correction factor"))
    texture = next(s for m, e, s in raw.values() if m == "MeasureTexture" and e)
    assert cfg["measure"]["texture"]["scales"] == [int(v) for t, v in texture if t == "Texture scale to measure"]
    granularity = next(s for m, e, s in raw.values() if m == "MeasureGranularity" and e)
    assert cfg["measure"]["granularity"]["spectrum_length"] == int(_first(granularity, "Range of the granular "
                                                                                       "spectrum"))


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
def test_imported_settings_run_on_the_bundled_plate(name, bundled_plate_dir, cluster, tmp_path):
    result = _import(name)
    cfg = result.config
    cfg["channels"].update(PIPELINES[name][1])
    cfg["run"]["empty_sites"] = "keep"  # their diameter ranges are for other magnifications
    summary = run_plate(bundled_plate_dir, tmp_path / "run.zarr", cfg, sites=["D08_f5"], scheduler=cluster,
                        progress=False)
    assert summary.ok, summary.failed
    image = read_table(tmp_path / "run.zarr", "image")
    cells = read_table(tmp_path / "run.zarr", "cells")
    assert len(image) == 1
    roles = cfg["run"].get("channels")
    if "texture" in cfg["measure"]["image_families"]:  # Texture_Contrast_<image>_<scale>_<angle>_<gray levels>
        found = [re.match(r"Texture_Contrast_.+_(\d+)_\d\d_(\d+)$", c) for c in image]
        assert {int(m.group(1)) for m in found if m} == set(cfg["measure"]["texture"]["scales"])
        assert {int(m.group(2)) for m in found if m} == {cfg["measure"]["texture"]["gray_levels"]}
    prefix = "Cells_Intensity_MeanIntensity_"
    measured = {c[len(prefix):] for c in cells if c.startswith(prefix)}
    assert measured == set(cfg["measure"].get("images") or roles)
    assert int(image["Count_Nuclei"].iloc[0]) == len(read_table(tmp_path / "run.zarr", "nuclei")) > 0


def test_readme_table_says_what_the_import_does():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {"Cell Painting protocol v3": "cimini2023", "WayScience pyroptosis": "wayscience_pyroptosis",
            "WayScience NF1": "wayscience_nf1", "WayScience CFReT": "wayscience_cfret"}
    for line in readme.splitlines():
        name = next((v for k, v in rows.items() if line.startswith(f"| {k}")), None)
        if name is None:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        result = _import(name)

        def count(items, cell):
            analysis = sum("(illumination)" not in f.name for f in items)
            illum = len(items) - analysis
            return cell.split(":")[0] == (f"{analysis} + {illum}" if illum else str(analysis))

        assert count(result.translated, cells[1]) and count(result.not_needed, cells[2]), line
        assert count(result.disabled, cells[3]) and count(result.unsupported, cells[4]), line
        rows.pop(next(k for k, v in rows.items() if v == name))
    assert not rows, f"README rows missing: {rows}"
