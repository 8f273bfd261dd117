"""The sites the report draws: which ones (asked for, else one per well group), and their pictures.

The overlays section draws a few sites in full (their images segmented, or the
store's labels outlined); the per-well cards show thumbnails of every site of a
few wells. Both are drawn once, while the tables are read, and kept as PNG bytes
(or the error that stopped a drawing, shown in its place).
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import CpfeaturesError, InputError
from ..io import parse_site_key, site_key, well_name
from . import figures as rf
from .data import sample_keys
from .layout import parse_well
from .overlay import composite_roles, site_overlay, thumbnail
from .wellmap import GROUP_COLUMNS

__all__ = ["parse_sites", "choose_sites", "draw_overlays", "draw_thumbs", "card_thumbs"]

_SITE = re.compile(r"^\s*([A-Za-z]+\s*\d+)\s*(?:_f(\d+))?\s*$")


def parse_sites(sites) -> list[tuple[str, int | None]]:
    """``"D08_f5,L09"`` or a list of such -> ``[("D08", 5), ("L09", None)]``.

    A bare well means "the first field of that well" (chosen later).

    Raises
    ------
    InputError
        An entry is not a well (``D08``) or a site (``D08_f5``).
    """
    if sites is None:
        return []
    if isinstance(sites, str):
        sites = sites.split(",")
    out = []
    for entry in sites:
        if isinstance(entry, tuple) and len(entry) == 2:
            entry = site_key(*entry)
        text = str(entry).strip()
        if not text:
            continue
        m = _SITE.match(text)
        if m is None:
            raise InputError(f"not a site: {text!r} (expected a site like D08_f5 or a well like D08)")
        r, c = parse_well(m.group(1))
        out.append((well_name(r, c), None if m.group(2) is None else int(m.group(2))))
    return list(dict.fromkeys(out))


def _well_order(well: str) -> tuple[int, int]:
    try:
        return parse_well(well)
    except InputError:
        return (10**6, 0)


def choose_sites(keys: list[str], errors: pd.DataFrame, wanted, n: int, plate=None,
                 groups: pd.DataFrame | None = None) -> list[tuple[str, int]]:
    """The sites to draw as overlays.

    ``wanted`` (from :func:`parse_sites`) wins; a bare well takes its first
    completed field, else its first failed one, else the plate's first field.
    Otherwise one site per well group (the values of the first of
    :data:`~cpfeatures.report.wellmap.GROUP_COLUMNS` in ``groups``, a profile
    table), topped up with wells spread evenly over the plate, ``n`` in all.

    Raises
    ------
    InputError
        A wanted site is neither in the store nor in the plate.
    """
    done: dict[str, list[int]] = {}
    for key in keys:
        site = parse_site_key(key)
        done.setdefault(site.well, []).append(site.field)
    failed: dict[str, list[int]] = {}
    for row in errors.itertuples():
        failed.setdefault(str(row.well), []).append(int(row.field))
    in_plate = {(s.well, int(s.field)) for s in plate.sites} if plate is not None else None
    if wanted:
        out = []
        for well, f in wanted:
            if f is None:
                fields = sorted(done.get(well, [])) or sorted(failed.get(well, [])) or \
                    sorted(fi for w, fi in (in_plate or ()) if w == well)
                if not fields:
                    raise InputError(f"well {well} has no site in the store or the plate")
                f = fields[0]
            known = f in done.get(well, []) or f in failed.get(well, []) or (in_plate and (well, f) in in_plate)
            if not known:
                raise InputError(f"site {site_key(well, f)} is in neither the store nor the plate")
            out.append((well, f))
        return out
    wells = sorted(done, key=_well_order)
    if not wells or n <= 0:
        return []
    chosen: list[str] = []
    if groups is not None and "Metadata_Well" in groups:
        column = next((c for c in GROUP_COLUMNS if c in groups and groups[c].notna().any()), None)
        if column is not None:
            for _, frame in groups.dropna(subset=[column]).groupby(column, sort=True):
                for well in sorted(frame["Metadata_Well"].astype(str), key=_well_order):
                    if well in done and well not in chosen:
                        chosen.append(well)
                        break
                if len(chosen) >= n:
                    break
    rest = [w for w in wells if w not in chosen]
    chosen += sample_keys(rest, n - len(chosen)) if len(chosen) < n else []
    chosen = sorted(chosen, key=_well_order)
    return [(w, sorted(done[w])[0]) for w in chosen]


def draw_overlays(plate, chosen: list[tuple[str, int]], store, illum, config: dict, thumb_size: int
                  ) -> list[tuple[str, object]]:
    """The overlays section's drawings, in the order of ``chosen``.

    Returns
    -------
    list of (str, tuple or CpfeaturesError)
        ``(site, (thumbnail PNG, full PNG, details))``, details as
        :func:`~cpfeatures.report.overlay.site_overlay` gives them plus the
        image ``shape``; or ``(site, error)`` for a site that could not be drawn.
        Empty without a plate.
    """
    out = []
    if plate is None:
        return out
    for well, f in chosen:
        key = site_key(well, f)
        try:
            full, thumb, details = site_overlay(plate, well, f, store=store, thumb_size=thumb_size, illum=illum,
                                                config=config)
        except CpfeaturesError as exc:
            out.append((key, exc))
            continue
        details["shape"] = full.shape[:2]
        out.append((key, (rf.array_png(thumb), rf.array_png(full), details)))
    return out


def draw_thumbs(plate, keys: list[str], store, illum, size: int = 180) -> dict[str, object]:
    """``{site: thumbnail PNG or the CpfeaturesError that stopped it}``: composites of the per-well cards.

    No segmentation: the store's labels are outlined when the run kept them (--save-labels), else the
    channels alone are drawn (the overlays section shows outlines).
    """
    out: dict[str, object] = {}
    if plate is None:
        return out
    roles = list(composite_roles(list(plate.roles)).values())
    for key in keys:
        well, f = parse_site_key(key)
        try:
            images = plate.load_site(well, f, roles=roles)
            try:
                labels = store.site_labels(key) or None
            except KeyError:
                labels = None
            _, thumb, _ = thumbnail(images, labels, illum, size=size)
            out[key] = rf.array_png(thumb)
        except CpfeaturesError as exc:
            out[key] = exc
    return out


def card_thumbs(card_keys: list[str], overlays: list, thumbs: dict) -> dict[str, list]:
    """Well -> [(site, PNG or error)] for the per-well cards: the overlay's thumbnail when there is one."""
    drawn = {key: value[0] if isinstance(value, tuple) else value for key, value in overlays}
    out: dict[str, list] = {}
    for key in card_keys:
        value = drawn.get(key, thumbs.get(key))
        if value is not None:
            out.setdefault(parse_site_key(key).well, []).append((key, value))
    return out
