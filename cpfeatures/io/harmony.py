"""Parse Harmony index files (``Index.idx.xml``, HarmonyV5/V6; ``Index.xml``, HarmonyV7).

Elements are matched by local name, so any Harmony namespace works. Harmony 7
moved the per-channel acquisition fields (channel name, resolution,
wavelengths, exposure) out of ``<Image>`` into ``<Maps><Map><Entry
ChannelID="n">``; both layouts give the same image table here.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import PlateError
from . import fs as _fs

__all__ = ["HarmonyIndex", "parse_index", "INDEX_NAMES"]

#: File names of Harmony index files, in the order they are looked for.
INDEX_NAMES = ("Index.idx.xml", "Index.xml", "index.idx.xml", "index.xml", "Index.ref.xml")

# Image table columns: (column, Harmony field, type, scale). Lengths in metres
# become micrometres; time offsets stay in seconds.
_IMAGE_FIELDS = [
    ("row", "Row", int, None),
    ("col", "Col", int, None),
    ("field", "FieldID", int, None),
    ("plane", "PlaneID", int, None),
    ("timepoint", "TimepointID", int, None),
    ("channel_id", "ChannelID", int, None),
    ("flim_id", "FlimID", int, None),
    ("channel_name", "ChannelName", str, None),
    ("channel_type", "ChannelType", str, None),
    ("acquisition_type", "AcquisitionType", str, None),
    ("pixel_size_um", "ImageResolutionX", float, 1e6),
    ("pixel_size_y_um", "ImageResolutionY", float, 1e6),
    ("size_x", "ImageSizeX", int, None),
    ("size_y", "ImageSizeY", int, None),
    ("binning", "BinningX", int, None),
    ("max_intensity", "MaxIntensity", int, None),
    ("position_x_um", "PositionX", float, 1e6),
    ("position_y_um", "PositionY", float, 1e6),
    ("position_z_um", "PositionZ", float, 1e6),
    ("abs_position_z_um", "AbsPositionZ", float, 1e6),
    ("time_offset_s", "MeasurementTimeOffset", float, None),
    ("abs_time", "AbsTime", str, None),
    ("excitation_nm", "MainExcitationWavelength", float, None),
    ("emission_nm", "MainEmissionWavelength", float, None),
    ("objective_magnification", "ObjectiveMagnification", float, None),
    ("objective_na", "ObjectiveNA", float, None),
    ("exposure_s", "ExposureTime", float, None),
]
_FIELD_NAMES = {harmony for _, harmony, _, _ in _IMAGE_FIELDS}


@dataclass
class HarmonyIndex:
    """What a Harmony index says about a plate.

    Attributes
    ----------
    path : Path
        The index file.
    plate_id : str
        ``Plates/Plate/PlateID`` (falls back to ``Name``, then the folder name).
    plate_rows, plate_columns : int or None
        Plate dimensions (e.g. 16 x 24 for a 384-well plate).
    images : pandas.DataFrame
        One row per image: ``url`` (relative to the index's folder) plus the
        columns of ``_IMAGE_FIELDS``; missing fields are NaN/None.
    attrs : dict
        Plate-level fields: instrument, user, measurement id and start time,
        plate type, Harmony version (namespace).
    """

    path: Path
    plate_id: str
    plate_rows: int | None
    plate_columns: int | None
    images: pd.DataFrame
    attrs: dict


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element) -> dict[str, ET.Element]:
    return {_local(c.tag): c for c in elem}


def _find_all(root: ET.Element, *path: str) -> list[ET.Element]:
    """Elements at a path of local names below root (namespace-agnostic)."""
    level = [root]
    for name in path:
        level = [c for e in level for c in e if _local(c.tag) == name]
    return level


def _text(elem: ET.Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    text = elem.text.strip()
    return text or None


def _convert(value: str | None, kind, scale, path: Path, field: str):
    if value is None:
        return None
    try:
        if kind is str:
            return value
        if kind is int:
            return int(float(value))
        out = float(value)
        return out * scale if scale else out
    except ValueError:
        raise PlateError(f"index field {field}={value!r} is not a number", path) from None


def parse_index(path: str | os.PathLike) -> HarmonyIndex:
    """Read a Harmony ``Index.idx.xml`` / ``Index.xml``.

    Parameters
    ----------
    path : path-like or str
        The index file, or its fsspec URL.

    Returns
    -------
    HarmonyIndex

    Raises
    ------
    PlateError
        The file is missing, not XML, truncated, not a Harmony index, or has no
        images.
    """
    remote = _fs.is_url(path)
    path = str(path) if remote else Path(path)
    # Streamed: each <Image> is read into a small dict and dropped from the tree, so a
    # 27,648-image index costs tens of MB, not the ~0.5 GB of a whole ElementTree.
    # ElementTree honours the XML declaration and a UTF-8 BOM; CRLF is just whitespace.
    images_raw: list[dict[str, str | None]] = []
    channel_maps: dict[str, dict[str, str | None]] = {}
    stack: list[str] = []
    root = None
    try:
        source = _fs.open_binary(path) if remote else open(path, "rb")
        with source as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if root is None:
                        root = elem
                        if _local(root.tag) != "EvaluationInputData":
                            raise PlateError(f"not a Harmony index: root element is <{_local(root.tag)}>, expected "
                                             "<EvaluationInputData>", path)
                    stack.append(_local(elem.tag))
                    continue
                stack.pop()
                name = _local(elem.tag)
                if name == "Image" and stack[-1:] == ["Images"]:
                    images_raw.append({_local(c.tag): _text(c) for c in elem})
                    elem.clear()
                elif name == "Entry" and stack[-2:] == ["Maps", "Map"]:
                    # Harmony 7: per-channel fields live in Maps/Map/Entry[@ChannelID]; merge all maps.
                    cid = elem.get("ChannelID")
                    if cid is not None:
                        fields = channel_maps.setdefault(cid.strip(), {})
                        for child in elem:
                            if _local(child.tag) in _FIELD_NAMES and len(child) == 0:
                                fields.setdefault(_local(child.tag), _text(child))
                    elem.clear()
                elif name == "Well" and stack[-1:] == ["Wells"]:
                    elem.clear()
    except FileNotFoundError:
        raise PlateError("cannot read index file (No such file or directory)", path) from None
    except OSError as exc:
        raise PlateError(f"cannot read index file ({exc.strerror or exc})", path) from None
    except ET.ParseError as exc:
        what = "is truncated" if "no element found" in str(exc) or "unclosed" in str(exc) else "is not valid XML"
        raise PlateError(f"index file {what} ({exc})", path) from None
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    top = _children(root)
    plate = next(iter(_find_all(root, "Plates", "Plate")), None)
    pfields = _children(plate) if plate is not None else {}
    plate_id = _text(pfields.get("PlateID")) or _text(pfields.get("Name")) or _fs.basename(_fs.parent(_fs.parent(path)))

    def _int(name):
        value = _text(pfields.get(name))
        return int(value) if value and value.isdigit() else None

    attrs = {
        "harmony_namespace": namespace,
        "index_version": root.get("Version"),
        "instrument": _text(top.get("InstrumentType")),
        "user": _text(top.get("User")),
        "measurement_id": _text(pfields.get("MeasurementID")),
        "measurement_start": _text(pfields.get("MeasurementStartTime")),
        "plate_name": _text(pfields.get("Name")),
        "plate_type": _text(pfields.get("PlateTypeName")),
    }

    names = ["url", "image_id", *(column for column, _, _, _ in _IMAGE_FIELDS)]
    columns: dict[str, list] = {name: [] for name in names}  # columns, not row dicts: a third of the memory
    images_raw.reverse()
    while images_raw:
        fields = images_raw.pop()
        if fields.get("State") not in (None, "Ok"):
            continue  # Harmony marks failed acquisitions; they have no file
        cid = fields.get("ChannelID")
        for name, value in channel_maps.get(cid, {}).items():
            if fields.get(name) is None:
                fields[name] = value
        url = fields.get("URL")
        if not url:
            raise PlateError(f"image {fields.get('id')!r} has no URL", path)
        columns["url"].append(url.replace("\\", "/"))
        columns["image_id"].append(fields.get("id"))
        for column, harmony, kind, scale in _IMAGE_FIELDS:
            columns[column].append(_convert(fields.get(harmony), kind, scale, path, harmony))
    if not columns["url"]:
        raise PlateError("index lists no images", path)
    for required in ("row", "col", "field", "channel_id"):
        missing = [u for u, v in zip(columns["url"], columns[required]) if v is None]
        if missing:
            raise PlateError(f"{len(missing)} images lack {required} (first: {missing[0]})", path)
    images = pd.DataFrame(columns)
    return HarmonyIndex(
        path=path,
        plate_id=plate_id,
        plate_rows=_int("PlateRows"),
        plate_columns=_int("PlateColumns"),
        images=images,
        attrs=attrs,
    )
