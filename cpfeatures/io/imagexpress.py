"""Molecular Devices ImageXpress (MetaXpress) plate folders.

MetaXpress writes one single-plane TIFF per site and wavelength,
``<plate>_<well>[_s<site>][_w<wave>][_thumb]<GUID>.tif`` (the 36-character GUID
glued to the last number, or absent), into the plate folder or its
``TimePoint_<t>/`` folders; Z series add ``ZStep_<z>/`` folders beside the
projection. ``<plate>.HTD``, a text file of ``"Key", value`` lines, names the
wavelengths (``WaveName<w>``); the pixel size is in each TIFF's MetaSeries XML
(``spatial-calibration-x``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from ..errors import PlateError

__all__ = ["IMAGEXPRESS_PATTERN", "find_htd", "parse_htd", "scan_imagexpress", "metaseries_pixel_size"]

_GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
#: the GUID is matched as exactly 36 characters, so ``_w2607EE13F-...`` is wave 2, not wave 2607
IMAGEXPRESS_PATTERN = re.compile(
    rf"^(?P<plate>.+?)_(?P<well>[A-Z]{{1,2}}\d{{2,3}})(?:_s(?P<site>\d+))?(?:_w(?P<wave>\d+))?"
    rf"(?P<thumb>_thumb)?(?:_?\[?(?P<guid>{_GUID})\]?)?\.tiff?$",
    re.IGNORECASE,
)
_TIMEPOINT = re.compile(r"^TimePoint_(\d+)$", re.IGNORECASE)
_ZSTEP = re.compile(r"^ZStep_(\d+)$", re.IGNORECASE)


def find_htd(folder: Path) -> Path | None:
    """The plate's ``.HTD`` file in ``folder`` (None if there is none).

    Raises
    ------
    PlateError
        Several ``.HTD`` files: which plate is meant is ambiguous.
    """
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".htd")
    if len(found) > 1:
        raise PlateError(f"{len(found)} .HTD files ({', '.join(p.name for p in found)}): pass the one to read",
                         folder)
    return found[0] if found else None


def parse_htd(path: Path) -> dict[str, list[str]]:
    """The ``"Key", value, ...`` lines of an HTD file: key -> list of values (quotes stripped).

    Raises
    ------
    PlateError
        Not an HTD file (no ``"HTSInfoFile"`` first line).
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # descriptions typed on the instrument PC are often Latin-1
        text = raw.decode("latin-1")
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('"'):
            continue
        end = line.find('"', 1)
        key, rest = line[1:end], line[end + 1:].lstrip(", ")
        entries[key] = [v.strip().strip('"') for v in rest.split(",")] if rest else []
    if "HTSInfoFile" not in entries:
        raise PlateError('not an ImageXpress HTD file (no "HTSInfoFile" line)', path)
    return entries


def _wave_names(htd: dict[str, list[str]]) -> dict[int, str]:
    n = int((htd.get("NWavelengths") or ["1"])[0])
    names = {}
    for w in range(1, n + 1):
        name = (htd.get(f"WaveName{w}") or [None])[0]
        collected = (htd.get(f"WaveCollect{w}") or ["1"])[0]
        if name and collected != "0":
            names[w] = name
    return names


def scan_imagexpress(folder: Path, htd: dict | None) -> tuple[str, pd.DataFrame, dict]:
    """Plate name, image table and plate attributes of an ImageXpress folder.

    The site's projection (the file in the plate or ``TimePoint_`` folder) is
    used; a wavelength imaged only in one ``ZStep_`` folder (a single plane) is
    taken from there. Thumbnails are skipped.

    Raises
    ------
    PlateError
        No ImageXpress images, files of several plates, a TIFF whose name does
        not parse, or a site/wavelength with several Z planes and no projection.
    """
    found = []  # (path relative to folder, timepoint, zstep or None, match)
    unparsed = []
    for base, timepoint in [(folder, 0)] + [(p, int(m.group(1)) - 1) for p in sorted(folder.iterdir())
                                            if p.is_dir() and (m := _TIMEPOINT.match(p.name))]:
        dirs = [(base, None)] + [(p, int(m.group(1))) for p in sorted(base.iterdir())
                                 if p.is_dir() and (m := _ZSTEP.match(p.name))]
        for where, z in dirs:
            for p in sorted(where.iterdir()):
                if not p.is_file() or p.suffix.lower() not in (".tif", ".tiff"):
                    continue
                m = IMAGEXPRESS_PATTERN.match(p.name)
                if m is None:
                    unparsed.append(p)
                elif not m.group("thumb"):
                    found.append((str(p.relative_to(folder)), timepoint, z, m))
    if not found:
        raise PlateError("no ImageXpress images (<plate>_<well>_s<site>_w<wave>.tif) found", folder)
    if unparsed:
        raise PlateError("file name does not follow the ImageXpress pattern <plate>_<well>_s<site>_w<wave>.tif",
                         unparsed[0])
    plates = sorted({m.group("plate") for *_, m in found})
    if len(plates) > 1:
        raise PlateError(f"images of {len(plates)} plates in one folder ({', '.join(plates[:5])})", folder)
    names = _wave_names(htd) if htd else {}
    rows = []
    for url, timepoint, z, m in found:
        well = m.group("well").upper()
        wave = int(m.group("wave") or 1)
        rows.append({"url": url, "row": _row(well), "col": int(well.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
                     "field": int(m.group("site") or 1), "timepoint": timepoint, "zstep": z,
                     "channel_id": wave, "channel_name": names.get(wave)})
    images = pd.DataFrame(rows)
    key = ["row", "col", "field", "timepoint", "channel_id"]
    projected = images[images["zstep"].isna()]
    planes = images[images["zstep"].notna()]
    # a wavelength without a projection is taken from its only Z plane; several planes are ambiguous
    lone = planes[~planes.set_index(key).index.isin(projected.set_index(key).index)]
    counts = lone.groupby(key).size()
    if (counts > 1).any():
        first = lone.set_index(key).loc[counts[counts > 1].index[0]].iloc[0]
        raise PlateError(f"{int(counts.max())} Z planes and no projection for a site and wavelength "
                         f"(e.g. {first['url']}): cpfeatures measures one plane per site", folder)
    images = pd.concat([projected, lone]).drop(columns="zstep").reset_index(drop=True)
    images["plane"] = 1
    attrs = {"instrument": "ImageXpress"}
    if htd:
        for k in ("Description", "UniquePlateIdentifier"):
            if htd.get(k):
                attrs[k] = ", ".join(htd[k])
    return plates[0], images, attrs


def _row(well: str) -> int:
    row = 0
    for ch in well.rstrip("0123456789"):
        row = row * 26 + ord(ch) - 64
    return row


def metaseries_pixel_size(path: str) -> float | None:
    """µm per pixel from a MetaSeries TIFF's ImageDescription XML (``spatial-calibration-x``), or None."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            description = tif.pages[0].description
    except Exception:
        return None
    if "<MetaData" not in (description or ""):
        return None
    try:
        root = ET.fromstring(description)
    except ET.ParseError:
        return None
    props = {p.get("id"): p.get("value") for p in root.iter("prop")}
    if props.get("spatial-calibration-state", "on") != "on" or props.get("spatial-calibration-units", "um") != "um":
        return None
    try:
        return float(props["spatial-calibration-x"])
    except (KeyError, TypeError, ValueError):
        return None
