"""Column-by-column agreement of the whole pipeline with CellProfiler 4.2.8, site by site.

Raw CPJUMP1 images + CellProfiler's illumination functions -> our tables for each of
the 7 shared sites on its own; every exported column is compared object by object
with the tolerances the fidelity test states (``tests/test_fidelity.py``). Prints,
per feature family and compartment, how many columns are within tolerance on every
site, the worst absolute and relative error and the lowest Pearson r, and writes the per-site,
per-column table.

    python tools/fidelity_report.py [--shared ../shared] [--out fidelity.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CellProfilerReference  # noqa: E402
from test_fidelity import WELLS, agreement  # noqa: E402

from cpfeatures.pipeline import process_site  # noqa: E402

COMPARTMENTS = ("Nuclei", "Cells", "Cytoplasm")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=Path("fidelity.csv"))
    args = parser.parse_args()
    ref = CellProfilerReference(args.shared)
    illum = {role: ref.illum(role) for role in ref.roles}
    parts = []
    for well in WELLS:
        tables = process_site({role: ref.raw(well, role) for role in ref.roles}, illum=illum).tables
        for comp in COMPARTMENTS:
            ours, theirs = tables[comp], ref.objects_table(comp, well)
            if len(ours) != len(theirs):
                print(f"{well} {comp}: {len(ours)} ours vs {len(theirs)} CellProfiler objects")
            table = agreement(ours, theirs, comp)
            table.insert(0, "compartment", comp)
            table.insert(0, "well", well)
            parts.append(table)
    table = pd.concat(parts, ignore_index=True)
    table["family"] = table["column"].str.split("_").str[0]
    table.to_csv(args.out, index=False)
    per_column = table.groupby(["family", "compartment", "column"]).agg(
        within=("within", "all"), same_nan=("same_nan", "all"), r=("r", "min"), max_abs=("max_abs", "max"), max_rel=("max_rel", "max"))
    summary = per_column.groupby(["family", "compartment"]).agg(
        columns=("within", "size"), within=("within", "sum"), same_nan=("same_nan", "sum"),
        min_r=("r", "min"), max_abs=("max_abs", "max"), max_rel=("max_rel", "max"))
    # max_rel is relative to CellProfiler's value: huge where that value is ~0 (within atol)
    pd.set_option("display.width", 200)
    print(summary.to_string())
    print(f"{len(per_column)} columns x {len(WELLS)} sites: {int(per_column['within'].sum())} within tolerance "
          f"on every site, {int(per_column['same_nan'].sum())} with NaN exactly where CellProfiler has NaN, "
          f"lowest r {per_column['r'].min():.6f}")


if __name__ == "__main__":
    main()
