"""Column-by-column agreement of the whole pipeline with CellProfiler 4.2.8 on the 7 shared sites.

Raw CPJUMP1 images + CellProfiler's illumination functions -> our tables; every
exported column is compared over all objects of all sites (Pearson r, max
relative error). Prints the fraction of columns with r >= 0.99 per feature family
and compartment, and writes the per-column table.

    python tools/fidelity_report.py [--shared ../shared] [--out fidelity.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CellProfilerReference  # noqa: E402

from cpfeatures.pipeline import process_site  # noqa: E402

SKIP = {"ImageNumber", "ObjectNumber", "Metadata_Well"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=Path("fidelity.csv"))
    args = parser.parse_args()
    ref = CellProfilerReference(args.shared)
    illum = {role: ref.illum(role) for role in ref.roles}
    ours = {c: [] for c in ("Nuclei", "Cells", "Cytoplasm")}
    theirs = {c: [] for c in ours}
    for well in ref.wells:
        tables = process_site({role: ref.raw(well, role) for role in ref.roles}, illum=illum).tables
        for comp in ours:
            o = tables[comp].set_index("ObjectNumber")
            t = ref.objects_table(comp, well).set_index("ObjectNumber")
            common = o.index.intersection(t.index)
            ours[comp].append(o.loc[common])
            theirs[comp].append(t.loc[common])
            if len(common) != len(t) or len(common) != len(o):
                print(f"{well} {comp}: {len(o)} ours vs {len(t)} CellProfiler objects")
    rows = []
    for comp in ours:
        o = pd.concat(ours[comp])
        t = pd.concat(theirs[comp])
        for col in t.columns:
            if col in SKIP:
                continue
            name = f"{comp}_{col}"
            if name not in o:
                rows.append({"compartment": comp, "column": col, "family": col.split("_")[0], "r": np.nan,
                             "max_rel": np.nan, "missing": True})
                continue
            a = o[name].to_numpy(float)
            b = t[col].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            rel = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12)
            if ok.sum() > 2 and np.std(a[ok]) > 0 and np.std(b[ok]) > 0:
                r = np.corrcoef(a[ok], b[ok])[0, 1]
            else:
                r = 1.0 if np.allclose(a[ok], b[ok], rtol=1e-6, atol=1e-9) else 0.0
            rows.append({"compartment": comp, "column": col, "family": col.split("_")[0], "r": r,
                         "max_rel": rel.max() if rel.size else 0.0, "missing": False})
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    summary = table.groupby(["family", "compartment"]).agg(
        columns=("r", "size"), missing=("missing", "sum"), r_ge_099=("r", lambda r: float((r >= 0.99).mean())),
        median_max_rel=("max_rel", "median"))
    pd.set_option("display.width", 200)
    print(summary.to_string())
    print(f"all columns: {len(table)}, missing {int(table['missing'].sum())}, "
          f"r >= 0.99: {100 * (table['r'] >= 0.99).mean():.2f}%")


if __name__ == "__main__":
    main()
