"""The screening numbers of the report (flagged wells, Z', position effects, mAP of controls), checked
against plain numpy on the exported tables, SciPy and copairs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from copairs.map import average_precision as copairs_ap
from copairs.map import mean_average_precision as copairs_map

from cpfeatures.errors import InputError
from cpfeatures.report import build_report
from cpfeatures.cli.report import report as report_command
from cpfeatures.report.qc import first_component
from cpfeatures.report.controls import control_map_scores
from cpfeatures.report.wellmap import NEGATIVE, POSITIVE, well_annotations
from cpfeatures.store import read_table

ROWS = "ABCDEFGHIJKLMNOP"


def _plate(seed: int = 0):
    """A 384-well layout: DMSO in columns 23-24 rows B-E, a positive control in rows J-M, compounds in
    columns 1 (edge: thinner) and 12, one failed site, one empty-ish well and one crowded well."""
    rng = np.random.default_rng(seed)
    counts, meta = {}, []
    for r in ROWS[1:5]:
        for c in (23, 24):
            counts[f"{r}{c:02d}"] = [rng.normal(200, 12)]
            meta.append((f"{r}{c:02d}", "DMSO", "negcon"))
    for r in ROWS[9:13]:
        for c in (23, 24):
            counts[f"{r}{c:02d}"] = [rng.normal(90, 10)]
            meta.append((f"{r}{c:02d}", "staurosporine", "poscon_cp"))
    for r in ROWS:
        for c in (1, 12):
            counts[f"{r}{c:02d}"] = [rng.normal(110 if c == 1 or r in "AP" else 160, 8)]
            meta.append((f"{r}{c:02d}", f"cpd-{r}{c}", ""))
    counts["F12"] = [20.0]          # low count
    counts["G12"] = [400.0]         # crowded
    counts["H12"] = [150.0, 150.0]  # field 2 fails
    platemap = pd.DataFrame(meta, columns=["Metadata_Well", "pert_iname", "control_type"])
    return {w: [max(1, int(round(v))) for v in vs] for w, vs in counts.items()}, platemap


@pytest.fixture
def shared_metadata(shared_dir):
    path = shared_dir / "data" / "cpjump1_metadata" / "metadata"
    if not path.is_dir():
        pytest.skip(f"no CPJUMP1 metadata at {path}")
    return path


def _section(source: str, sid: str) -> str:
    return source.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def _table_row(html_text: str, first_cell: str) -> list[str]:
    """The cells of the first table row starting with ``first_cell`` (tags stripped)."""
    for row in re.findall(r"<tr>(.*?)</tr>", html_text):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def test_flags_z_prime_and_position_effects(counted_store, tmp_path, report_reader):
    counts, platemap = _plate()
    store = counted_store(counts, failed=[("H12", 2)])
    platemap.to_csv(tmp_path / "map.csv", index=False)
    r = report_reader(build_report(store, tmp_path / "r.html", platemap=tmp_path / "map.csv"))

    # oracle: the exported Image table, plain numpy
    image = read_table(store, "image")
    per_well = image.groupby("Metadata_Well")["Count_Cells"].mean()
    x = per_well.to_numpy(float)
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    z = (x - med) / mad
    expected = {"H12"} | set(per_well.index[(x < 0.5 * med) | (np.abs(z) > 3)])
    assert {"F12", "G12"} <= expected
    flagged = re.findall(r'<td><a href="#well=([A-P]\d\d)">', r.source)
    assert set(flagged) == expected and flagged[0] == "H12"  # failed wells first
    wells_text = r.text("wells")
    assert "1 failed site" in wells_text and f"{len(expected)} of {len(per_well)} wells flagged" in wells_text

    # Z' of the cells per site, DMSO against the positive control
    roles = platemap.set_index("Metadata_Well")["control_type"]
    neg = per_well[roles.reindex(per_well.index) == "negcon"].to_numpy(float)
    pos = per_well[roles.reindex(per_well.index) == "poscon_cp"].to_numpy(float)
    zp = 1 - 3 * (np.std(pos, ddof=1) + np.std(neg, ddof=1)) / abs(pos.mean() - neg.mean())
    row = _table_row(_section(r.source, "controls"), "cells per site")  # the Z' table comes first
    assert row[1:3] == ["8", "8"] and float(row[7]) == pytest.approx(zp, abs=5e-5)
    assert "8 negative and 8 positive control wells" in r.text("controls")

    # position effects: edge wells (outer rows and columns of the 16 x 24 plate) against interior wells
    from scipy.stats import mannwhitneyu

    coords = per_well.index.str.extract(r"([A-P])(\d+)")
    edge = (coords[0].isin(["A", "P"]) | coords[1].astype(int).isin([1, 24])).to_numpy()
    tables = re.findall(r"<table>.*?</table>", _section(r.source, "controls"))
    pos_table = next(t for t in tables if "edge_wells" in t)
    cells = _table_row(pos_table, "cells per site")
    assert cells[1:3] == [str(edge.sum()), str((~edge).sum())]
    assert float(cells[3]) == pytest.approx(np.median(x[edge]), abs=1e-3)
    assert float(cells[4]) == pytest.approx(np.median(x[~edge]), abs=1e-3)
    p = mannwhitneyu(x[edge], x[~edge], alternative="two-sided").pvalue
    assert float(cells[6]) == pytest.approx(p, rel=1e-3)
    # the furthest row from the plate median: A or P (edge rows, thinner), or F / G (the low and crowded wells)
    assert re.match(r"[APFG] \([-+]\d+%\)", cells[7])


def test_control_map_equals_copairs():
    # 6 DMSO wells, 2 positive controls in 4 wells each, 8 compounds: profiles with a signal per control
    rng = np.random.default_rng(4)
    rows, meta = [], []
    signal = {"pc1": rng.normal(size=30), "pc2": rng.normal(size=30)}
    for i in range(6):
        meta.append((f"A{i + 1:02d}", "DMSO", NEGATIVE))
        rows.append(rng.normal(size=30))
    for name in ("pc1", "pc2"):
        for i in range(4):
            meta.append((f"{'B' if name == 'pc1' else 'C'}{i + 1:02d}", name, POSITIVE))
            rows.append(signal[name] * (1.0 if name == "pc1" else 0.3) + rng.normal(size=30))
    for i in range(8):
        meta.append((f"D{i + 1:02d}", f"cpd{i}", ""))
        rows.append(rng.normal(size=30))
    meta = pd.DataFrame(meta, columns=["Metadata_Well", "perturbation", "control"])
    profiles = pd.concat([meta[["Metadata_Well"]], pd.DataFrame(np.array(rows), columns=[f"F{i}" for i in range(30)])],
                         axis=1)
    wells = meta.set_index("Metadata_Well")
    ours, _ = control_map_scores(profiles, wells, null_size=500, seed=7)

    # copairs' phenotypic-activity recipe on the control wells, DMSO as the reference
    keep = meta["control"].isin([NEGATIVE, POSITIVE]).to_numpy()
    m = meta[keep].reset_index(drop=True).rename(columns={"perturbation": "Metadata_p"})
    m["Metadata_ref"] = np.where(m["control"] == NEGATIVE, np.arange(len(m)), -1)
    feats = profiles.loc[keep, [f"F{i}" for i in range(30)]].to_numpy()
    cols = ["Metadata_p", "Metadata_ref"]
    ap = copairs_ap(m, feats, cols, [], [], cols, progress_bar=False)
    ref = copairs_map(ap, ["Metadata_p"], null_size=500, threshold=0.05, seed=7, progress_bar=False)
    ref = ref.set_index("Metadata_p").sort_index()
    ours = ours.set_index("positive control").sort_index()
    assert list(ours.index) == ["pc1", "pc2"] == list(ref.index)
    np.testing.assert_allclose(ours["mean_average_precision"], ref["mean_average_precision"], atol=1e-12)
    np.testing.assert_allclose(ours["p_value"], ref["p_value"], atol=1e-12)
    assert ours.at["pc1", "mean_average_precision"] > ours.at["pc2", "mean_average_precision"]


def test_first_component_is_numpy_pca():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(20, 5)) @ rng.normal(size=(5, 5)), columns=list("abcde"))
    pc = first_component(frame, list("abcde")).to_numpy()
    x = (frame - frame.mean()) / frame.std(ddof=0)
    w, v = np.linalg.eigh(np.cov(x.to_numpy().T, ddof=0))
    ref = x.to_numpy() @ v[:, -1]
    assert abs(abs(np.corrcoef(pc, ref)[0, 1]) - 1) < 1e-10 and np.allclose(np.abs(pc), np.abs(ref))


def test_jump_platemaps_and_queries(shared_metadata):
    folder = shared_metadata / "platemaps" / "2020_11_04_CPJUMP1"
    text = (folder / "platemap" / "JUMP-Target-1_compound_platemap.txt").read_text().splitlines()
    raw = [line.split("\t") for line in text[1:]]
    dmso = {w for w, sample, *_ in raw if not sample}
    ann, source = well_annotations(folder, plate_id="BR00117010")  # a compound plate of the batch
    assert set(ann.index[ann["control"] == NEGATIVE]) == dmso and len(dmso) == 64
    assert ann.at["D08", "perturbation"] == "FK-866" and ann.at["D08", "control"] == POSITIVE
    assert "JUMP-Target-1" not in source or source.startswith("plate map")
    # a query replaces the plate map's control types
    ann, _ = well_annotations(folder, plate_id="BR00117010", poscon="Metadata_pert_iname == 'FK-866'")
    assert set(ann.index[ann["control"] == POSITIVE]) == {w for w in ann.index if ann.at[w, "perturbation"] == "FK-866"}
    with pytest.raises(InputError, match="plate CPJUMP1_EXAMPLE is not in barcode_platemap.csv"):
        well_annotations(folder, plate_id="CPJUMP1_EXAMPLE")


def test_report_command_platemap_errors(synthetic_store, tmp_path):
    bad = tmp_path / "map.csv"
    bad.write_text("Metadata_Well,pert_iname\nnot-a-well,x\n")
    res = CliRunner().invoke(report_command, [str(synthetic_store()), "-o", str(tmp_path / "r.html"),
                                              "--platemap", str(bad)])
    assert res.exit_code == 2 and "map.csv" in res.stderr and "not-a-well" in res.stderr
    assert not (tmp_path / "r.html").exists()
