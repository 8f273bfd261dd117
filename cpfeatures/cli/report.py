"""``cpfeatures report`` and ``cpfeatures overlay``.

Registered on the main command group with ``main.add_command(report)`` and
``main.add_command(overlay)`` (``from cpfeatures.cli.report import report, overlay``).
"""

from __future__ import annotations


import click

from ._common import _SKIP_DAMAGED
from ._friendly import friendly

__all__ = ["report", "overlay"]


_friendly = friendly


def _split(values) -> list[str]:
    out = []
    for value in values or ():
        out.extend(v.strip() for v in str(value).split(",") if v.strip())
    return out


@click.command("report")
@click.argument("store")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (self-contained: open it in any browser).")
@click.option("--plate", default=None, type=click.Path(),
              help="Plate folder for the segmentation overlays (default: the one the run read).")
@click.option("--scores", multiple=True,
              help="Folder written by `cpfeatures score`, or score tables (comma-separated or repeated).")
@click.option("--profiles", default=None, type=click.Path(dir_okay=False),
              help="Profiles from `cpfeatures profile`: their correlation matrix; well groups for overlays.")
@click.option("--sites", default=None, help="Sites to draw as overlays, e.g. D08_f5,L09_f5 (a well: its first field).")
@click.option("--feature", default=None, help="Feature mapped as a well-median heatmap (default Cells DNA intensity).")
@click.option("--overlays", "n_overlays", type=click.IntRange(0, 96), default=6, show_default=True,
              help="Sites drawn when --sites is not given.")
@click.option("--feature-sites", type=click.IntRange(0, None), default=3, show_default=True,
              help="Fields per well whose cells give the feature map (0: all; slower on big plates).")
@click.option("--platemap", default=None, type=click.Path(),
              help="What is in each well: a plate map (CSV, or tab-separated .txt) or a JUMP plate-map folder "
                   "(barcode_platemap.csv + platemap/). Default: the profiles' annotations, else platemap.csv in "
                   "the plate folder.")
@click.option("--external-metadata", default=None, type=click.Path(dir_okay=False),
              help="Perturbation metadata joined to the plate map on broad_sample (JUMP external_metadata).")
@click.option("--negcon", default=None,
              help="Query selecting the negative control wells, e.g. \"Metadata_pert_iname == 'DMSO'\" "
                   "(default: the plate map's control types).")
@click.option("--poscon", default=None, help="Query selecting the positive control wells.")
@click.option("--well-cards", type=click.IntRange(0, 384), default=8, show_default=True,
              help="Flagged wells whose sites are drawn as thumbnails in the per-well section.")
@_SKIP_DAMAGED
@_friendly
def report(store, out, plate, scores, profiles, sites, feature, n_overlays, feature_sites, platemap,
           external_metadata, negcon, poscon, well_cards, skip_damaged):
    """Write a QC report of the run in STORE as one HTML file.

    Run summary (failed sites, run time, the run's versions), plate maps with
    each well's perturbation on hover (cells, failures, a feature's well median),
    image quality of every channel, flagged wells and a card per well, control
    separation (Z', mAP of positive controls against the negative controls) and
    position effects, illumination functions, segmentation overlays, feature
    distributions, and Percent Replicating / Matching / mAP when --scores is
    given. One file, no external request. Works on a run with failures or
    without scores.
    """
    from ..report import build_report
    from ..store import open_store

    score_paths = _split(scores) or None
    path = build_report(open_store(store, skip_damaged=skip_damaged), out, plate=plate, scores=score_paths, profiles=profiles, sites=sites,
                        feature=feature, n_overlays=n_overlays, feature_sites=feature_sites or None,
                        platemap=platemap, external_metadata=external_metadata, negcon=negcon, poscon=poscon,
                        well_cards=well_cards)
    size = path.stat().st_size / 1e6
    click.echo(f"report written to {path} ({size:.1f} MB)")


@click.command("overlay")
@click.argument("plate", type=click.Path())
@click.option("--well", required=True, help="Well, e.g. D08.")
@click.option("--field", type=int, required=True, help="Field number, e.g. 5.")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--store", default=None,
              help="The run's store: its labels (--save-labels), illumination functions and settings.")
@_friendly
def overlay(plate, well, field, out, store):
    """Draw one site of PLATE as a composite with nuclei and cell outlines (full resolution PNG).

    AGP red, RNA green, DNA blue; nuclei outlined in cyan, cells in yellow. Labels
    come from the store when the run kept them, else the site is segmented with
    the run's settings and illumination functions. Without --store the plate's
    illumination functions are computed first, over all its sites, as a run does
    (plates of up to 96 sites; bigger ones need --store), so the outlines are the run's.
    """
    from ..report import overlay as draw

    path = draw(plate, well, field, out, store=store)
    click.echo(f"overlay written to {path}")
