"""Single-cell exports carry the plate map: every row knows what is in its well."""

from __future__ import annotations

import subprocess
import sys

import h5py
import pandas as pd

CLI = [sys.executable, "-m", "cpfeatures.cli"]


def test_tables_and_anndata_carry_the_plate_maps_columns(bundled_run, bundled_plate_dir, tmp_path):
    platemap = pd.read_csv(bundled_plate_dir / "platemap.csv", dtype=str)
    well_column = next(c for c in platemap.columns if c.lower() in ("well_position", "metadata_well", "well"))
    partial = tmp_path / "platemap.csv"
    platemap[platemap[well_column] != "L09"].to_csv(partial, index=False)  # one well not in the map
    done = subprocess.run(CLI + ["export", str(bundled_run), "-o", str(tmp_path / "t"), "--platemap", str(partial)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = platemap.set_index(well_column)["pert_iname"]
    for name in ("SingleCells", "Cells", "Image"):
        table = pd.read_parquet(tmp_path / "t" / f"{name}.parquet")
        seen = table.groupby("Metadata_Well")["Metadata_pert_iname"].agg(lambda s: set(s.dropna()))
        for well, names in seen.items():
            assert names == (set() if well == "L09" else {expected[well]}), (name, well)
        assert table.loc[table["Metadata_Well"] == "L09", "Metadata_pert_iname"].isna().all()
    done = subprocess.run(CLI + ["export", str(bundled_run), "--format", "anndata", "-o", str(tmp_path / "c.h5ad"),
                                 "--platemap", str(partial)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with h5py.File(tmp_path / "c.h5ad") as f:
        obs = f["obs"]
        cats = [c.decode() if isinstance(c, bytes) else c for c in obs["Metadata_pert_iname"]["categories"][:]]
        codes = obs["Metadata_pert_iname"]["codes"][:]
        wells_cat = [c.decode() if isinstance(c, bytes) else c for c in obs["Metadata_Well"]["categories"][:]]
        wells = [wells_cat[i] for i in obs["Metadata_Well"]["codes"][:]]
    for well, code in zip(wells, codes):
        assert (code == -1) if well == "L09" else cats[code] == expected[well]


def test_a_plate_map_without_wells_is_refused_before_any_site(bundled_run, tmp_path):
    bad = tmp_path / "map.csv"
    bad.write_text("compound,dose\nx,1\n")
    done = subprocess.run(CLI + ["export", str(bundled_run), "-o", str(tmp_path / "t"), "--platemap", str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "map.csv" in done.stderr and "well column" in done.stderr, done.stderr
    assert not (tmp_path / "t").exists()
