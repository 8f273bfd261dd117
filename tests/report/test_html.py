"""build_report: the HTML from a real run of the bundled plate and from synthetic stores with failures.

Every report is read back with the standard library's HTML parser (elements closed in
order, no external asset, no script), and every image is decoded as a PNG.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cpfeatures.cli import main
from cpfeatures.errors import CpfeaturesError, InputError
from cpfeatures.io import read_plate
from cpfeatures.profile import percent_replicating
from cpfeatures.report import SECTIONS, build_report
from cpfeatures.cli.report import report as report_command
from cpfeatures.store import StoreError, read_table

IDS = [sid for sid, _ in SECTIONS]


def names(images) -> list[str]:
    return [name for name, _, _ in images]


@pytest.fixture(scope="module")
def bundled_report(bundled_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert build_report(bundled_run, out) == out
    return out


def test_bundled_run_report(bundled_report, bundled_run, bundled_plate_dir, report_reader, png_reader):
    r = report_reader(bundled_report)
    assert list(r.sections) == IDS
    plate = read_plate(bundled_plate_dir)
    sites = [f"{s.well}_f{s.field}" for s in plate.sites]
    # run summary: what the store holds
    summary = r.text("summary")
    assert "CPJUMP1_EXAMPLE" in summary and "4 done, 0 failed, 0 not run (4 in the plate)" in summary
    assert "No site failed." in summary and 'nuclei_image = "DNA"' in summary  # the run's TOML settings
    assert str(bundled_plate_dir) in summary
    # heatmaps: SVG plate maps; every well's tooltip names its perturbation (the bundled plate map) and value
    assert names(r.images("heatmaps")) == []
    maps = r.maps("heatmaps")
    assert list(maps) == ["cells-per-well", "failures-per-well", "feature-median"]
    assert all(len(m) == 384 for m in maps.values())
    platemap = pd.read_csv(bundled_plate_dir / "platemap.csv").set_index("Metadata_Well")
    image = read_table(bundled_run, "image").set_index("Metadata_Well")
    for well, row in platemap.iterrows():
        _, value, tip = maps["cells-per-well"][well]
        role = {"negcon": "negative control", "poscon": "positive control"}[row["pert_type"]]
        assert tip == f"{well} {row['pert_iname']} ({role}): {image.at[well, 'Count_Cells']:.0f} cells"
        assert maps["failures-per-well"][well][1] == "0"
    assert maps["cells-per-well"]["A01"][1:] == ["", "A01: no data"]
    # no image-quality columns in a CPJUMP1 run, and the report says so
    assert "No image-quality measurements" in r.text("quality") and r.maps("quality") == {}
    assert "Cells_Intensity_MeanIntensity_DNA" in r.text("heatmaps")
    assert names(r.images("illumination")) == ["illumination"]
    # overlays: every site (4 < the default 6), thumbnail + full resolution each
    overlays = r.images("overlays")
    assert names(overlays) == [f"overlay-{kind}-{s}" for s in sorted(sites) for kind in ("thumb", "full")]
    for name, _, png in overlays:
        rgb = png_reader(png)
        if "-full-" in name:
            assert rgb.shape == (*plate.image_shape, 3)
        else:
            assert max(rgb.shape[:2]) <= 320
    # the overlays re-segment each site with the run's settings: same nuclei as the run counted
    counts = read_table(bundled_run, "image").set_index("Metadata_Well")["Count_Nuclei"]
    found = re.findall(r"([A-P]\d\d)_f5 \(([^,]+), [a-z ]+\): (\d+) nuclei", r.text("overlays"))
    assert len(found) == 4
    for well, label, n in found:  # the caption names the well's perturbation too
        assert int(n) == counts[well] and label == platemap.at[well, "pert_iname"]
    assert names(r.images("distributions")) == ["distributions-Nuclei", "distributions-Cells",
                                                 "distributions-Cytoplasm"]
    assert r.images("scores") == [] and "No scores yet" in r.text("scores")
    # wells: one card per well, each with its site's thumbnail (the overlay's); the DMSO well has twice the
    # cells of the others but 4 wells are too few for robust z-scores and none is below half the median
    assert names(r.images("wells")) == ["count-distributions"] + [f"well-thumb-{s}" for s in sorted(sites)]
    assert "No well flagged among 4." in r.text("wells")
    assert r.source.count('class="choice well-card"') == 4
    # controls: one DMSO well, so no Z' (the report says why); position trends drawn
    controls = r.text("controls")
    assert "1 negative and 3 positive control wells" in controls
    assert "needs 2 or more wells of each kind (1 negative, 3 positive with a value)" in controls
    assert names(r.images("controls")) == ["position-trends"] and list(r.maps("controls")) == ["controls-map"]
    assert len(r.images()) == 1 + 4 + 1 + 1 + 8 + 3


@pytest.fixture(scope="module")
def bundled_scores(bundled_run, bundled_plate_dir, tmp_path_factory):
    """Profiles and scores of the bundled run, made by the real profile and score commands."""
    root = tmp_path_factory.mktemp("scores")
    runner = CliRunner()
    profiles = root / "profiles.parquet"
    res = runner.invoke(main, ["profile", str(bundled_run), "-o", str(profiles), "--platemap",
                               str(bundled_plate_dir / "platemap.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["score", str(profiles), "--replicates-by", "Metadata_pert_iname", "--n-samples", "200",
                               "--null-size", "200", "-o", str(root / "scores")])
    assert res.exit_code == 0, res.output
    return profiles, root / "scores"


def test_report_command_with_sites_feature_and_scores(bundled_run, bundled_scores, tmp_path, report_reader):
    profiles, scores = bundled_scores
    out = tmp_path / "sub" / "report.html"
    res = CliRunner().invoke(report_command, [str(bundled_run), "-o", str(out), "--sites", "D08_f5,g21",
                                              "--feature", "Nuclei_AreaShape_Area", "--scores", str(scores),
                                              "--profiles", str(profiles)])
    assert res.exit_code == 0, res.output
    assert "report written to" in res.output
    r = report_reader(out)
    assert list(r.sections) == IDS
    assert names(r.images("overlays")) == ["overlay-thumb-D08_f5", "overlay-full-D08_f5",
                                           "overlay-thumb-G21_f5", "overlay-full-G21_f5"]
    assert "Nuclei_AreaShape_Area: well median" in r.text("heatmaps")  # the chosen feature's map
    assert names(r.images("scores")) == ["score-percent-replicating", "score-map", "profile-correlation"]
    rep = pd.read_csv(scores / "percent_replicating.csv")
    maps = pd.read_csv(scores / "map.csv")
    text = r.text("scores")
    assert f"Percent Replicating {100 * rep['above_null'].mean():.1f}%" in text
    assert f"mAP (mean) {maps['mean_average_precision'].mean():.3f}" in text
    assert "The null distribution is not stored with this table" in text
    assert "FK-866" in text  # the per-group table


def test_synthetic_store_with_failures_and_escaping(synthetic_store, tmp_path, report_reader, nasty):
    store = synthetic_store(plate_path=str(tmp_path / "gone"))
    out = build_report(store, tmp_path / "report.html")
    r = report_reader(out)
    assert list(r.sections) == IDS
    # every piece of text from the store is escaped: the plate id, the settings and the error messages
    assert nasty not in r.source and html.escape(nasty) in r.source
    assert r.source.lower().count("<script") == 1 and "<script>alert" not in r.source  # only the report's own
    summary = r.text("summary")
    assert "6 done, 2 failed" in summary and f"SYNTH {nasty}" in summary
    for site in ("C10_f2", "H12_f1"):
        assert site in summary and f"/plate/{site}.tiff" in summary
    assert summary.count(f"truncated TIFF {nasty}") >= 2
    # image-quality columns exist: focus, blur and saturation maps of every channel measured
    assert list(r.maps("heatmaps")) == ["cells-per-well", "failures-per-well", "feature-median"]
    assert list(r.maps("quality")) == ["quality-FocusScore-DNA", "quality-PowerLogLogSlope-DNA",
                                       "quality-PercentMaximal-DNA", "quality-FocusScore-RNA"]
    assert "ImageQuality_FocusScore_DNA" in r.source and "ImageQuality_FocusScore_RNA" in r.source
    assert names(r.images("illumination")) == ["illumination"]
    assert r.images("overlays") == [] and "gone" in r.text("overlays") and "not found" in r.text("overlays")
    assert len(r.images("distributions")) == 3
    # the default key features: preferred names first, then measured features (not locations)
    assert "Cells_AreaShape_Area" in r.source and "Location_Center_X" not in r.source
    assert len(r.images()) == 1 + 1 + 1 + 3


def test_store_where_every_site_failed(synthetic_store, tmp_path, report_reader):
    store = synthetic_store(wells=("B03",), fields=(1, 2), failed=(("B03", 1), ("B03", 2)), illum=False)
    r = report_reader(build_report(store, tmp_path / "r.html"))
    assert "0 done, 2 failed" in r.text("summary")
    assert list(r.maps("heatmaps")) == ["cells-per-well", "failures-per-well"]
    assert "No illumination functions" in r.text("illumination")
    assert "No completed site" in r.text("overlays") or "not available" in r.text("overlays")
    assert "No object measurements" in r.text("distributions")


def _profiles(seed: int = 0) -> pd.DataFrame:
    """12 perturbations x 4 replicates; perturbations 2i and 2i+1 share a target (and a signature)."""
    rng = np.random.default_rng(seed)
    signatures = rng.normal(size=(6, 40))
    rows, meta = [], []
    for p in range(12):
        for _ in range(4):
            rows.append(signatures[p // 2] * (1.5 if p < 8 else 0.0) + rng.normal(size=40))
            well = f"{'ABCDEFGH'[len(meta) // 12]}{len(meta) % 12 + 1:02d}"
            meta.append({"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_pert_iname": f"cpd<{p}>",
                         "Metadata_target": f"T{p // 2}"})
    return pd.concat([pd.DataFrame(meta), pd.DataFrame(np.array(rows), columns=[f"Cells_F{i}" for i in range(40)])],
                     axis=1)


def test_scores_from_score_command_and_result_objects(synthetic_store, tmp_path, report_reader):
    profiles = _profiles()
    path = tmp_path / "profiles.parquet"
    profiles.to_parquet(path)
    res = CliRunner().invoke(main, ["score", str(path), "--replicates-by", "Metadata_pert_iname", "--match-by",
                                    "Metadata_target", "--n-samples", "300", "--null-size", "300",
                                    "-o", str(tmp_path / "scores")])
    assert res.exit_code == 0, res.output
    rep = percent_replicating(profiles, "Metadata_pert_iname", n_samples=300)
    out = build_report(synthetic_store(), tmp_path / "report.html", scores=[tmp_path / "scores", rep],
                       profiles=path)
    r = report_reader(out)
    assert names(r.images("scores")) == ["score-percent-replicating", "score-percent-matching", "score-map",
                                         "score-percent-replicating-2", "profile-correlation"]
    text = r.text("scores")
    # the report's numbers are the score step's
    assert f"Percent Replicating (2) {rep.percent_replicating:.1f}%" in text
    csv_rep = pd.read_csv(tmp_path / "scores" / "percent_replicating.csv")
    assert f"Percent Replicating {100 * csv_rep['above_null'].mean():.1f}%" in text
    matching = pd.read_csv(tmp_path / "scores" / "percent_matching.csv")
    assert f"Percent Matching {100 * matching['above_null'].mean():.1f}%" in text
    # CSV tables carry no null distribution (two notes); the result object does (no note for it)
    assert text.count("The null distribution is not stored with this table") == 2
    assert html.escape("cpd<3>") in r.source and "cpd<3>" not in r.source


def test_input_errors(bundled_run, synthetic_store, tmp_path):
    with pytest.raises(StoreError, match="no cpfeatures store"):
        build_report(tmp_path / "missing.zarr", tmp_path / "r.html")
    store = synthetic_store()
    with pytest.raises(InputError, match="in none of the store's tables"):
        build_report(store, tmp_path / "r.html", feature="Cells_AreaShape_Nope")
    with pytest.raises(InputError, match="not a site"):
        build_report(store, tmp_path / "r.html", sites="B03-f1")
    with pytest.raises(InputError, match="in neither the store nor the plate"):
        build_report(bundled_run, tmp_path / "r.html", sites="D08_f9")
    with pytest.raises(CpfeaturesError, match="not found"):
        build_report(store, tmp_path / "r.html", scores=tmp_path / "nope.csv")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, message", [
    (["missing.zarr"], "no cpfeatures store"),
    (["STORE", "--feature", "Cells_Nope"], "Cells_Nope"),
    (["STORE", "--sites", "D08,D08_x5"], "not a site"),
])
def test_report_command_errors_are_one_line(synthetic_store, tmp_path, args, message):
    store = synthetic_store()
    args = [str(store) if a == "STORE" else str(tmp_path / a) if a.endswith(".zarr") else a for a in args]
    res = CliRunner().invoke(report_command, [*args, "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    assert "Traceback" not in res.output


def test_failed_site_is_drawn_from_the_plate_index(synthetic_store, bundled_plate_dir, tmp_path, report_reader,
                                                   png_reader):
    # A run of the bundled plate whose D14 site failed: drawing it needs the plate's index (the store has no
    # file names for it), and the summary counts the plate's sites from that index.
    store = synthetic_store(wells=("D08", "D14", "G21", "L09"), fields=(5,), failed=(("D14", 5),), illum=False,
                            plate_path=str(bundled_plate_dir))
    r = report_reader(build_report(store, tmp_path / "r.html", sites="D14_f5,L09"))
    assert "3 done, 1 failed, 0 not run (4 in the plate)" in r.text("summary")
    assert names(r.images("overlays")) == ["overlay-thumb-D14_f5", "overlay-full-D14_f5",
                                           "overlay-thumb-L09_f5", "overlay-full-L09_f5"]
    overlays = r.text("overlays")
    assert "D14_f5 (failed site) (DMSO, negative control):" in overlays and "labels segmented" in overlays
    full = png_reader(r.images("overlays")[1][2])
    assert full.shape == (*read_plate(bundled_plate_dir).image_shape, 3)
