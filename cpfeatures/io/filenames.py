"""Read plate layout from Opera Phenix / Operetta file names when there is no index.

Harmony names each exported image ``rRRcCCfFFpPP-chNskKfkKflL.tiff``: row,
column, field, plane, channel, timepoint (sk, 1-based), FLIM id. The widths
vary between exports, so every number is matched with ``\\d+``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import PlateError

__all__ = ["FILENAME_PATTERN", "parse_filename", "scan_folder"]

FILENAME_PATTERN = re.compile(
    r"^r(?P<row>\d+)c(?P<col>\d+)f(?P<field>\d+)p(?P<plane>\d+)"
    r"-ch(?P<channel_id>\d+)sk(?P<timepoint>\d+)fk(?P<fk>\d+)fl(?P<flim_id>\d+)\.tiff?$",
    re.IGNORECASE,
)
TIFF_SUFFIXES = (".tif", ".tiff")


def parse_filename(name: str) -> dict[str, int]:
    """Parse one Harmony image file name into row, col, field, plane, channel, timepoint.

    Raises
    ------
    PlateError
        The name does not follow the ``rRRcCCfFFpPP-chNskKfkKflL.tiff`` pattern.
    """
    match = FILENAME_PATTERN.match(Path(name).name)
    if match is None:
        raise PlateError(
            "file name does not follow the Harmony pattern rRRcCCfFFpPP-chNskKfkKflL.tiff", name
        )
    out = {k: int(v) for k, v in match.groupdict().items() if k != "fk"}
    out["timepoint"] -= 1  # sk is 1-based; the HarmonyV5 index TimepointID is 0-based
    return out


def scan_folder(folder: Path) -> pd.DataFrame:
    """Build an image table from the TIFF names in ``folder``.

    Raises
    ------
    PlateError
        The folder holds no TIFF, or a TIFF whose name does not parse.
    """
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
    if not names:
        raise PlateError("no index file and no TIFF images found", folder)
    rows = []
    for name in names:
        try:
            fields = parse_filename(name)
        except PlateError:
            raise PlateError(
                "file name does not follow the Harmony pattern rRRcCCfFFpPP-chNskKfkKflL.tiff "
                "(no Index.idx.xml / Index.xml either, so the plate layout comes from file names)",
                folder / name,
            ) from None
        rows.append({"url": name, **fields, "channel_name": None})
    return pd.DataFrame(rows)
