"""Regenerate ``cytotable_cellprofiler_csv_columns.json.gz``: CytoTable's column names for real CellProfiler CSVs.

Run OUTSIDE the test environment, in a venv with CytoTable (it pins ``pandas<3`` through anndata)::

    python -m venv /tmp/cytotable-venv && /tmp/cytotable-venv/bin/pip install cytotable==1.2.6 'duckdb<2'
    /tmp/cytotable-venv/bin/python tests/data/make_cytotable_reference.py [SHARED_REFERENCE_DIR]

Input: the ExportToSpreadsheet tables CellProfiler 4.2.8.1 wrote for the CPJUMP1 pipeline
(``shared/reference/cellprofiler/tables/{Image,Nuclei,Cells,Cytoplasm}.csv.gz``; CytoTable reads
plain ``.csv``, so they are unpacked into a temporary folder first). CytoTable runs three times with
``preset="cellprofiler_csv"``: ``join=False`` (one table per compartment, columns renamed),
``join=True`` (the single-cell table), and ``join=False`` with ``identifying_columns`` extended by
``EXTRA_IDS``. The fixture records, per table, CellProfiler's header, CytoTable's renamed header (same
order) and the renamed header with the extra id columns (``cytotable_ids``), and the joined table's
header, so that the tests check cpfeatures' CytoTable naming against CytoTable itself without it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import pathlib
import shutil
import sys
import tempfile

import pyarrow.parquet as pq

TABLES = ("Image", "Nuclei", "Cells", "Cytoplasm")
#: Id columns (not measurements) that the preset leaves to be inferred as features.
EXTRA_IDS = ("Number_Object_Number", "Children_Cells_Count", "Children_Cytoplasm_Count")
HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "cytotable_cellprofiler_csv_columns.json.gz"


def _offline_duckdb() -> None:
    """CytoTable's DuckDB connection without its ``INSTALL sqlite_scanner / httpfs`` lines.

    Those extensions serve SQLite and remote sources; CSV and Parquet are DuckDB's own. Installing them
    downloads from DuckDB's server, which a machine without network cannot reach.
    """
    import duckdb

    import cytotable.constants
    import cytotable.utils

    def reader():
        return duckdb.connect().execute(
            f"PRAGMA threads={cytotable.constants.MAX_THREADS}; PRAGMA preserve_insertion_order=FALSE;")

    cytotable.utils._duckdb_reader = reader


def main(reference: pathlib.Path) -> None:
    import cytotable
    from parsl.config import Config
    from parsl.executors import ThreadPoolExecutor

    _offline_duckdb()

    def threads() -> Config:  # threads, not parsl's default process pool (which needs its launcher on PATH)
        return Config(executors=[ThreadPoolExecutor(max_threads=2)])

    tables = reference / "tables"
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "csv"
        src.mkdir()
        sources = {}
        for name in TABLES:
            packed = tables / f"{name}.csv.gz"
            sources[name] = {"file": f"tables/{name}.csv.gz",
                             "sha256": hashlib.sha256(packed.read_bytes()).hexdigest()}
            with gzip.open(packed, "rb") as fin, open(src / f"{name}.csv", "wb") as fout:
                shutil.copyfileobj(fin, fout)
        split = pathlib.Path(tmp) / "split"
        cytotable.convert(source_path=str(src), dest_path=str(split), dest_datatype="parquet",
                          preset="cellprofiler_csv", join=False, parsl_config=threads())
        # the same with the id columns pycytominer would take for features declared identifying
        # (CytoTable's own ``identifying_columns`` option), as cpfeatures names them
        from cytotable.presets import config

        ids = tuple(config["cellprofiler_csv"]["CONFIG_IDENTIFYING_COLUMNS"]) + EXTRA_IDS
        split_ids = pathlib.Path(tmp) / "split_ids"
        cytotable.convert(source_path=str(src), dest_path=str(split_ids), dest_datatype="parquet",
                          preset="cellprofiler_csv", identifying_columns=ids, join=False, parsl_config=threads())
        joined = pathlib.Path(tmp) / "joined.parquet"
        cytotable.convert(source_path=str(src), dest_path=str(joined), dest_datatype="parquet",
                          preset="cellprofiler_csv", join=True, parsl_config=threads())
        import duckdb

        record = {"cytotable_version": cytotable.__version__, "duckdb_version": duckdb.__version__,
                  "preset": "cellprofiler_csv",
                  "source": "CellProfiler 4.2.8.1 ExportToSpreadsheet, CPJUMP1 pipeline, shared/reference/cellprofiler",
                  "extra_identifying_columns": list(EXTRA_IDS), "inputs": sources, "tables": {}}
        for name in TABLES:
            with open(src / f"{name}.csv", newline="") as fh:
                header = next(csv.reader(fh))
            found = sorted(split.rglob(f"{name.lower()}*.parquet"))
            renamed = pq.read_schema(found[0]).names
            with_ids = pq.read_schema(sorted(split_ids.rglob(f"{name.lower()}*.parquet"))[0]).names
            record["tables"][name] = {"cellprofiler": header, "cytotable": renamed, "cytotable_ids": with_ids,
                                      "rows": sum(pq.ParquetFile(f).metadata.num_rows for f in found)}
        meta = pq.ParquetFile(joined).metadata
        record["joined"] = {"columns": pq.read_schema(joined).names, "rows": meta.num_rows}
    with gzip.open(OUT, "wt") as fh:
        json.dump(record, fh, indent=0)
    print(f"wrote {OUT}: joined {record['joined']['rows']} rows x {len(record['joined']['columns'])} columns")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "reference" / "cellprofiler")
