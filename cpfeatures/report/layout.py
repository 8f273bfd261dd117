"""Plate geometry for heatmaps: well names <-> (row, column), plate dimensions, well matrices."""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import well_name

__all__ = ["parse_well", "plate_dimensions", "plate_matrix", "row_labels", "STANDARD_PLATES", "DEFAULT_PLATE"]

#: (rows, columns) of the standard SBS plate formats, smallest first.
STANDARD_PLATES = ((8, 12), (16, 24), (32, 48))
#: Cell Painting plates are 384-well unless something says otherwise.
DEFAULT_PLATE = (16, 24)

_WELL = re.compile(r"^\s*([A-Za-z]+)\s*0*(\d+)\s*$")


def parse_well(well: str) -> tuple[int, int]:
    """1-based (row, column) of a well name: ``"D08"`` -> (4, 8); ``"AB3"`` -> (28, 3).

    Raises
    ------
    InputError
        The name is not letters followed by a number.
    """
    m = _WELL.match(str(well))
    if m is None:
        raise InputError(f"not a well name: {well!r} (expected e.g. D08)")
    row = 0
    for ch in m.group(1).upper():
        row = row * 26 + (ord(ch) - 64)
    return row, int(m.group(2))


def plate_dimensions(wells: Iterable[str] = (), plate=None, info: dict | None = None) -> tuple[int, int]:
    """Rows and columns of the plate layout to draw.

    The plate's own dimensions win (``Plate.plate_rows``/``plate_columns`` from
    the Harmony index, or ``plate_rows``/``plate_columns`` recorded in the
    store's info); otherwise the smallest standard plate (96, 384, 1536) that
    holds the highest row and column seen; otherwise 384 (16 x 24).

    Parameters
    ----------
    wells : iterable of str
        Wells known to exist (completed or failed sites, plate wells).
    plate : Plate, optional
    info : dict, optional
        The store's ``info``.

    Returns
    -------
    tuple of int
        ``(rows, columns)``.
    """
    for source in (plate, info):
        if source is None:
            continue
        get = source.get if isinstance(source, dict) else (lambda k, s=source: getattr(s, k, None))
        r, c = get("plate_rows"), get("plate_columns")
        if r and c:
            rows, cols = int(r), int(c)
            break
    else:
        rows = cols = 0
    # Never draw a layout that cannot hold a well we have data for.
    coords = [parse_well(w) for w in wells]
    max_r = max((r for r, _ in coords), default=0)
    max_c = max((c for _, c in coords), default=0)
    if rows and cols and max_r <= rows and max_c <= cols:
        return rows, cols
    if max_r == 0:
        return DEFAULT_PLATE
    for r, c in STANDARD_PLATES:
        if max_r <= r and max_c <= c:
            return r, c
    return max_r, max_c


def row_labels(rows: int) -> list[str]:
    """Row letters of a plate: A, B, ..., Z, AA, AB, ..."""
    return [well_name(r, 1)[:-2] for r in range(1, rows + 1)]


def plate_matrix(values: pd.Series, shape: tuple[int, int]) -> np.ndarray:
    """A per-well series as a (rows, columns) float matrix; NaN where a well has no value.

    Parameters
    ----------
    values : pandas.Series
        Indexed by well name.
    shape : tuple of int
        ``(rows, columns)``, e.g. from :func:`plate_dimensions`.

    Returns
    -------
    ndarray of float64
    """
    out = np.full(shape, np.nan)
    if len(values) == 0:
        return out
    coords = np.array([parse_well(w) for w in values.index], dtype=np.int64).reshape(-1, 2) - 1
    inside = (coords[:, 0] < shape[0]) & (coords[:, 1] < shape[1])
    out[coords[inside, 0], coords[inside, 1]] = pd.to_numeric(values, errors="coerce").to_numpy(float)[inside]
    return out
