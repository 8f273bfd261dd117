"""``cpfeatures profile`` (stores -> well profiles) and ``cpfeatures score`` (profiles -> scores).

Each parses its options and calls one function of :mod:`cpfeatures.profile`:
:func:`~cpfeatures.profile.write_plate_profiles` and :func:`~cpfeatures.profile.score_tables`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import InputError
from ._common import _JSON, _LOG, _SKIP_DAMAGED, _finish, _split, friendly

__all__ = ["profile", "score"]


@click.command()
@click.argument("stores", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True, help="Profiles file (.parquet, .csv or .csv.gz).")
@click.option("--platemap", type=click.Path(), default=None,
              help="Plate map (CSV, or tab-separated .txt/.tsv) joined on the well, with Metadata_Plate when "
                   "plates differ; or a JUMP plate-map folder (barcode_platemap.csv + platemap/).")
@click.option("--external-metadata", type=click.Path(), default=None,
              help="Perturbation annotations joined on --external-join-on (e.g. CPJUMP1 compound metadata); with "
                   "a JUMP folder, the folder of <name>_metadata.tsv files (default: ../../external_metadata).")
@click.option("--external-join-on", default=None, help="Column shared by the plate map and --external-metadata.")
@click.option("--operation", type=click.Choice(["median", "mean", "none"]), default="median", show_default=True,
              help="How cells become well profiles; none: the inputs are well profiles already.")
@click.option("--normalize", "method", type=click.Choice(["mad_robustize", "standardize", "robustize", "none"]),
              default="mad_robustize", show_default=True, help="Per-plate normalization.")
@click.option("--samples", default="all", show_default=True,
              help="Rows the normalization is fitted on: 'all' or a query like \"Metadata_control_type == 'negcon'\".")
@click.option("--feature-select/--no-feature-select", default=True, show_default=True,
              help="CPJUMP1's selection: frequency, correlation (--corr-threshold), NaN and blocklist filters.")
@click.option("--select-level", type=click.Choice(["plate", "batch", "all"]), default="batch", show_default=True,
              help="Feature selection per plate (features all plates kept), per Metadata_Batch (all plates when "
                   "absent; the CPJUMP1 recipe), or over everything.")
@click.option("--features-from", type=click.Path(dir_okay=False), default=None,
              help="Keep the features listed in this file (an earlier run's <output>_features.txt) instead of "
                   "selecting.")
@click.option("--corr-threshold", type=float, default=0.9, show_default=True)
@click.option("--spherize", "spherize_method", type=click.Choice(["ZCA", "ZCA-cor", "PCA", "PCA-cor"]), default=None,
              help="After selection, whiten the profiles, fitted on --samples (e.g. the negative controls).")
@click.option("--spherize-by", default=None,
              help="Fit one whitening per value of this column (a group of plates); default all plates together.")
@click.option("--consensus", "consensus_op", type=click.Choice(["median", "mean", "modz"]), default=None,
              help="Also write one consensus profile per --consensus-by group to <output>_consensus.")
@click.option("--consensus-by", default="Metadata_broad_sample", show_default=True,
              help="Comma-separated columns identifying a perturbation for --consensus.")
@click.option("--keep-stages", is_flag=True,
              help="Also write the aggregated, annotated and normalized tables (one store only).")
@_SKIP_DAMAGED
@_LOG
@_JSON
@friendly
def profile(stores, out, platemap, external_metadata, external_join_on, operation, method, samples,
            feature_select, select_level, features_from, corr_threshold, spherize_method, spherize_by, consensus_op,
            consensus_by, keep_stages, skip_damaged, log_file, as_json):
    """Turn runs' single cells into well profiles: aggregate, annotate, normalize, select.

    STORES are run stores (or single-cell tables, or a folder of stores), one plate each.
    Each plate is aggregated, annotated and normalized on its own; feature selection then
    runs over the plates together (--select-level), and the kept features are written to
    <output>_features.txt beside the profiles.

    Warns, naming the plate, when the normalization reference is a single well or features
    have no spread in it (their normalized values are then divided by ~0).
    """
    from ..profile import check_profiles_path, write_plate_profiles

    t0 = time.perf_counter()
    out = check_profiles_path(out)  # refused before the kept list is read
    kept_list = None
    if features_from:
        try:
            kept_list = [ln.strip() for ln in Path(features_from).read_text().splitlines() if ln.strip()]
        except OSError as exc:
            raise click.UsageError(f"--features-from {features_from}: {exc.strerror or exc}") from None
    result_profiles = write_plate_profiles(
        list(stores), out, platemaps=platemap, external_metadata=external_metadata,
        external_join_on=external_join_on, operation=operation, method=method, samples=samples,
        feature_selection=feature_select, select_level=select_level, features_from=kept_list,
        corr_threshold=corr_threshold, spherize=spherize_method, spherize_by=spherize_by, consensus=consensus_op,
        consensus_by=_split(consensus_by), keep_stages=keep_stages, skip_damaged=skip_damaged)
    table = result_profiles.profiles
    kept = len(result_profiles.features)
    result = {"command": "profile", "stores": list(stores), "output": str(out), "files": result_profiles.files,
              "plates": list(map(str, result_profiles.plates["Metadata_Plate"])), "profiles": len(table),
              "features": kept, "seconds": round(time.perf_counter() - t0, 1), "exit_code": 0}
    plates = len(result_profiles.plates)
    features_file = Path(result_profiles.files[1]).name
    _finish(result, [f"{len(table)} profiles of {plates} plate(s), {kept} features -> {out} "
                     f"(kept list: {features_file})"], as_json, log_file)


@click.command()
@click.argument("profiles", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--replicates-by", required=True, help="Column(s) identifying a perturbation, comma-separated.")
@click.option("--match-by", default=None, help="Annotation column for Percent Matching (e.g. Metadata_target).")
@click.option("--rename", "renames", multiple=True, metavar="OLD=NEW",
              help="In each table that has column OLD, it becomes NEW (replacing a NEW there), before the tables "
                   "are joined: e.g. Metadata_target_list=Metadata_gene matches compounds' target lists with genes, "
                   "as the CPJUMP1 notebooks rename Metadata_target. Repeatable.")
@click.option("--tag", "tags", multiple=True, metavar="COLUMN=V1,V2,...",
              help="Set COLUMN in each table to its value, one per table in the order given (e.g. "
                   "Metadata_modality=compound,orf for --across Metadata_modality). Repeatable.")
@click.option("--per", default=None, metavar="COLUMNS",
              help="Score each group of these columns on its own (comma-separated, e.g. Metadata_Perturbation,"
                   "Metadata_Cell_type,Metadata_Time), in the notebooks' nested order; with --null cpjump1 one "
                   "random stream continues across the groups, as in the paper's notebooks.")
@click.option("--plate-metadata", default=None, type=click.Path(dir_okay=False),
              help="A table with one row per plate (JUMP's experiment-metadata.tsv): joined on "
                   "Assay_Plate_Barcode = Metadata_Plate, its columns as Metadata_<name> (for --per). Only its "
                   "plates are scored, ordered as it lists them, as the notebooks concatenate them.")
@click.option("--match-sep", default="|", show_default=True,
              help="Several annotations in one --match-by cell (a target list) are split on this; '' for none.")
@click.option("--across", default=None, help="Percent Matching only between groups differing in this column "
                                             "(with --null cpjump1: the modality column).")
@click.option("--null", "null_kind", type=click.Choice(["numpy", "cpjump1"]), default="numpy", show_default=True,
              help="cpjump1: the CPJUMP1 paper's own null (Python random, seed 9000, np.corrcoef medians).")
@click.option("--tail", type=click.Choice(["right", "left", "both"]), default="right", show_default=True,
              help="Percent Matching above the 95th, below the 5th percentile of its null, or either.")
@click.option("--modalities", default=None, help="With --null cpjump1: the two values of --across, first,second.")
@click.option("--n-replicates", type=int, default=4, show_default=True,
              help="With --null cpjump1: profiles per replicating null sample (the paper's 4).")
@click.option("--reference", default=None,
              help="Query selecting control profiles (e.g. \"Metadata_control_type == 'negcon'\"): mAP ranks "
                   "replicates against them; they are not scored for replicating/matching.")
@click.option("--null-size", type=int, default=10000, show_default=True, help="mAP null rankings.")
@click.option("--n-samples", type=int, default=1000, show_default=True, help="Replicating/matching null samples.")
@click.option("--seed", type=int, default=None, help="Null seed (default 0; 9000 with --null cpjump1).")
@click.option("-o", "--output", "out", default="scores", show_default=True, type=click.Path(file_okay=False),
              help="Folder for percent_replicating.csv, map.csv, with --match-by percent_matching.csv (and "
                   "map_matching.csv with --across), with --per summary.csv.")
@_LOG
@_JSON
@friendly
def score(profiles, replicates_by, match_by, renames, tags, per, plate_metadata, match_sep, across, null_kind, tail,
          modalities, n_replicates, reference, null_size, n_samples, seed, out, log_file, as_json):
    """Percent Replicating, Percent Matching and mAP of profile tables (several: concatenated).

    The same numbers as the Python functions called with the same arguments
    (``reference_query=`` for --reference). Warns when a score rests on a degenerate
    null (NaN samples, too few perturbations). Several tables (plates, modalities) are
    concatenated on the columns they share, so replicates on different plates and
    matches across modalities are scored together; with --per, each group of
    plates is scored on its own.
    """
    from rich.console import Console
    from rich.table import Table

    from ..profile import score_tables

    pairs = []
    for item in renames:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--rename {item!r}: expected OLD=NEW")
        pairs.append((old.strip(), new.strip()))
    tagged = {}
    for item in tags:
        column, sep, values = item.partition("=")
        values = [v.strip() for v in values.split(",")]
        if not sep or not column.strip() or len(values) != len(profiles) or not all(values):
            raise InputError(f"--tag {item!r}: expected COLUMN= and one value per table ({len(profiles)})")
        tagged[column.strip()] = values
    scores = score_tables(list(profiles), _split(replicates_by), rename=pairs, tag=tagged,
                          plate_metadata=plate_metadata, per=_split(per), match_by=match_by, across=across,
                          match_sep=match_sep or None, null=null_kind, tail=tail, modalities=_split(modalities),
                          n_replicates=n_replicates, reference=reference, null_size=null_size, n_samples=n_samples,
                          seed=seed, output=out)
    rows = scores.rows if per else [r[1:] for r in scores.rows]
    columns = (("group",) if per else ()) + ("score", "value", "detail")
    result = {"command": "score", "profiles": list(profiles), "output": str(Path(out)), "files": scores.files,
              "scores": [dict(zip(columns, r)) for r in rows], "exit_code": 0}
    if not as_json:
        table = Table(title=", ".join(map(str, profiles)))
        for name in columns:
            table.add_column(name)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    _finish(result, [f"tables written to {Path(out)}"], as_json, log_file)
