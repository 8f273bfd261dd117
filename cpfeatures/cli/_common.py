"""What the ``cpfeatures`` commands share: their common options, the end of a command, warnings as lines."""

from __future__ import annotations

import json
import sys

import click

from ._friendly import friendly

__all__ = ["friendly", "_show_warnings", "_PLATE", "_JSON", "_LOG", "_SKIP_DAMAGED", "_VERBOSE", "_crop_options",
           "_crop_settings", "_finish", "_split", "quiet_cluster"]


def _show_warnings(message, category, filename, lineno, file=None, line=None):
    """A library warning as one line on stderr (``warnings.showwarning`` while a command runs)."""
    click.echo(f"warning: {message}", err=True)


_PLATE = click.option("--plate", "plate_name", default=None,
                      help="The plate to read from a LoadData CSV that lists several (Metadata_Plate).")

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")

_SKIP_DAMAGED = click.option("--skip-damaged", is_flag=True,
                             help="Leave damaged sites of the store out (a warning names each) instead of stopping "
                                  "at the first with exit 1; `cpfeatures verify` lists them.")

_VERBOSE = click.option("--verbose", is_flag=True,
                        help="Also show dask's own log lines (worker restarts, connections closed at shutdown); "
                             "without it, only cpfeatures' lines.")


def quiet_cluster(verbose: bool) -> None:
    """Without ``--verbose``, a run's stderr holds cpfeatures' lines only.

    dask.distributed logs every worker restart, closed connection and slow shutdown, in this
    process and in each worker process, and multiprocessing's resource tracker reports the
    semaphores of killed workers: what happened to a site is already in cpfeatures' own lines
    and the store's error table. The settings go through the environment, which the worker
    processes inherit.
    """
    import logging
    import os

    if verbose:
        return
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in os.environ.get("PYTHONWARNINGS", ""):  # said once, however often a command runs in-process
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


_LOG = click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                    help="Append the progress lines and the final summary to this file.")


def _crop_options(fn):
    """The crop settings shared by `run --save-crops` and `crops`."""
    options = [
        click.option("--crop-size", type=click.IntRange(min=2), default=128, show_default=True,
                     help="Crop side in pixels."),
        click.option("--crop-mode", type=click.Choice(["centre", "center", "bbox"]), default="centre",
                     show_default=True, help="centre: pixels around the nucleus centre; bbox: the cell's bounding "
                                             "box squared and resized to --crop-size (aspect ratio kept)."),
        click.option("--crop-border", type=click.Choice(["pad", "skip"]), default="pad", show_default=True,
                     help="Cells whose crop leaves the image: zero-padded, or left out."),
        click.option("--crop-masks", is_flag=True, help="Also crop each cell's Nuclei and Cells masks."),
        click.option("--crop-channels", default=None,
                     help="Comma-separated channels to crop, in order (default DNA,ER,RNA,AGP,Mito; add "
                          "Brightfield for example)."),
    ]
    if fn.__name__ == "run":
        options.append(click.option("--crops-output", default=None,
                                    help="With --save-crops: the crops store (default <out>.crops.zarr)."))
    for option in reversed(options):
        fn = option(fn)
    return fn


def _crop_settings(size, mode, border, masks, channels, path):
    """The crop options as the library's :class:`~cpfeatures.crops.CropSettings`."""
    from ..crops import FLUORESCENT, CropSettings

    return CropSettings(size=size, mode=mode, border=border, masks=masks,
                        channels=_split(channels) or FLUORESCENT, path=path)


def _finish(result: dict, lines: list[str], as_json: bool, log_file: str | None, errors: list[str] = ()) -> None:
    """End a command: its summary as text lines (or one JSON object) on stdout, problems on stderr,
    the same appended to ``log_file``, and ``result["exit_code"]`` as the exit status."""
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)
    for line in errors:
        click.echo(line, err=True)
    if log_file:
        with open(log_file, "a", encoding="utf-8") as fh:
            for line in (json.dumps(result, default=str),) if as_json else (*lines, *errors):
                fh.write(line + "\n")
    if result.get("exit_code"):
        sys.exit(result["exit_code"])


def _split(value):
    """A comma-separated option as a list (None when not given or empty)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None
