"""Yokogawa CellVoyager (CV7000, CV8000) measurement folders.

A measurement folder holds ``MeasurementData.mlf`` (one ``MeasurementRecord`` per
image written, ``Type="IMG"``, or per acquisition error, ``Type="ERR"``: a field
whose autofocus failed has no images), ``MeasurementDetail.mrf`` (per channel
slot: pixel size and image size; it names the measurement setting file) and the
``.mes`` setting (per channel: ``Target``, the name the operator gave it). Every
element and attribute is in the ``bts`` namespace. File names
(``<plate>_<well>_T0001F001L01A01Z01C01.tif``) are only paths: the layout comes
from the record attributes, because a plate name may itself look like a well.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PlateError
from .plate import PlateWarning

__all__ = ["MLF_NAME", "MRF_NAME", "scan_yokogawa"]

MLF_NAME = "MeasurementData.mlf"
MRF_NAME = "MeasurementDetail.mrf"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attrs(element) -> dict[str, str]:
    return {_local(k): v for k, v in element.attrib.items()}


def _parse(path: Path):
    raw = path.read_bytes().lstrip(b"\xef\xbb\xbf")
    raw = raw.rstrip()
    if raw.endswith(b">>"):  # a stray '>' after the root seen in the wild
        raw = raw[:-1]
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise PlateError(f"malformed or truncated XML ({exc})", path) from None


def _int(value: str | None, default: int, what: str, where: Path) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise PlateError(f"{what} {value!r} is not a whole number", where) from None


def scan_yokogawa(folder: Path, warn_stacklevel: int = 3) -> tuple[str, pd.DataFrame, dict, tuple]:
    """Plate name, image table, plate attributes and (rows, columns) of a CellVoyager folder.

    Raises
    ------
    PlateError
        No or malformed ``MeasurementData.mlf`` / ``.mrf`` / ``.mes``, or no image record.
    """
    mlf = folder / MLF_NAME
    root = _parse(mlf)
    rows, errors = [], []
    for rec in root.iter():
        if _local(rec.tag) != "MeasurementRecord":
            continue
        a = _attrs(rec)
        if a.get("Type", "IMG") == "ERR":
            errors.append({"row": a.get("Row"), "col": a.get("Column"), "field": a.get("FieldIndex"),
                           "message": (rec.text or "").strip()})
            continue
        if a.get("Type", "IMG") != "IMG" or not (rec.text or "").strip():
            continue
        rows.append({"url": rec.text.strip(), "row": _int(a.get("Row"), 0, "Row", mlf),
                     "col": _int(a.get("Column"), 0, "Column", mlf),
                     "field": _int(a.get("FieldIndex"), 1, "FieldIndex", mlf),
                     "plane": _int(a.get("ZIndex"), 1, "ZIndex", mlf),
                     "timepoint": _int(a.get("TimePoint"), 1, "TimePoint", mlf) - 1,
                     "channel_id": _int(a.get("Ch"), 1, "Ch", mlf),
                     "position_x_um": float(a["X"]) if a.get("X") else np.nan,
                     "position_y_um": float(a["Y"]) if a.get("Y") else np.nan,
                     "position_z_um": float(a["Z"]) if a.get("Z") else np.nan,
                     "projection": a.get("ZImageProcessing")})
    if not rows:
        raise PlateError("the measurement lists no image (no MeasurementRecord of Type IMG)", mlf)
    images = pd.DataFrame(rows)
    key = ["row", "col", "field", "plane", "timepoint", "channel_id"]
    dupes = images.duplicated(key)
    if dupes.any():  # the instrument wrote a plane twice: the first one is the measurement's, as Bio-Formats reads it
        warnings.warn(f"{mlf}: {int(dupes.sum())} image record(s) repeat a plane already listed "
                      f"(first: {images[dupes].iloc[0]['url']}); the first of each is used", _warning(),
                      stacklevel=warn_stacklevel)
        images = images[~dupes]
    if errors:
        wells = sorted({f"r{e['row']}c{e['col']}f{e['field']}" for e in errors})
        warnings.warn(f"{mlf}: {len(errors)} acquisition error record(s) (e.g. {errors[0]['message']!r}); "
                      f"those fields have no images ({', '.join(wells[:5])}{', ...' if len(wells) > 5 else ''})",
                      _warning(), stacklevel=warn_stacklevel)

    attrs: dict = {"instrument": "Yokogawa CellVoyager", "acquisition_errors": len(errors)}
    plate_id, dims = folder.name, (None, None)
    mrf = folder / MRF_NAME
    names: dict[int, str] = {}
    if mrf.is_file():
        detail = _parse(mrf)
        d = _attrs(detail)
        attrs.update({k: d[k] for k in ("TargetSystem", "ReleaseNumber", "BeginTime", "EndTime", "Title")
                      if d.get(k)})
        dims = (_int(d.get("RowCount"), 0, "RowCount", mrf) or None, _int(d.get("ColumnCount"), 0, "ColumnCount", mrf)
                or None)
        sample = next((e for e in detail.iter() if _local(e.tag) == "MeasurementSamplePlate"), None)
        plate_id = (_attrs(sample).get("Name") if sample is not None else None) or d.get("Title") or plate_id
        geometry = {}
        for ch in (e for e in detail.iter() if _local(e.tag) == "MeasurementChannel"):
            c = _attrs(ch)
            geometry[_int(c.get("Ch"), 0, "Ch", mrf)] = {
                "pixel_size_um": float(c["HorizontalPixelDimension"]) if c.get("HorizontalPixelDimension") else np.nan,
                "size_x": _int(c.get("HorizontalPixels"), 0, "HorizontalPixels", mrf) or np.nan,
                "size_y": _int(c.get("VerticalPixels"), 0, "VerticalPixels", mrf) or np.nan}
        for col in ("pixel_size_um", "size_x", "size_y"):
            images[col] = [geometry.get(c, {}).get(col, np.nan) for c in images["channel_id"]]
        setting = d.get("MeasurementSettingFileName")
        if setting and (folder / setting).is_file():
            names = _channel_names(folder / setting)
    images["channel_name"] = [names.get(c) for c in images["channel_id"]]
    return str(plate_id), images.reset_index(drop=True), attrs, dims


def _channel_names(mes: Path) -> dict[int, str]:
    """Channel slot -> the operator's ``Target`` name from the measurement setting; duplicates made unique."""
    names = {}
    for ch in (e for e in _parse(mes).iter() if _local(e.tag) == "Channel"):
        a = _attrs(ch)
        if a.get("Ch") and a.get("Target"):
            names[int(a["Ch"])] = a["Target"].strip()
    counts = pd.Series(list(names.values())).value_counts()
    return {c: (f"{n}_C{c:02d}" if counts[n] > 1 else n) for c, n in names.items()}


def _warning():
    return PlateWarning
