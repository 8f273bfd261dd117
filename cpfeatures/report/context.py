"""What the report's sections are written from: one :class:`ReportContext`, built once by :func:`build_context`.

Building it is the report's whole cost: one pass over the store's sites (their
Image rows, a chosen object feature and a sample's key features), drawing the
overlays and the per-well thumbnails meanwhile, reading the scores and the plate
map. The sections then format what it holds (the run summary only asks the
store one more thing: when its illumination functions were written).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..io import parse_site_key, site_key
from ..store import open_store
from . import data as rd
from . import qc
from .layout import plate_dimensions
from .plates import resolve_plate
from .scores import read_frame, score_tables, score_warnings
from .sites import card_thumbs, choose_sites, draw_overlays, draw_thumbs, parse_sites
from .wellmap import well_annotations, well_tips

if TYPE_CHECKING:
    from ..io import Plate
    from ..store import Store
    from .data import SiteData
    from .plates import RecordedPlate
    from .scores import ScoreTable

__all__ = ["ReportContext", "build_context"]


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Everything the report's sections show, read from the store, the plate and the scores once.

    Sections read it and none changes it (frozen). Site keys are ``"D08_f5"``
    (:func:`cpfeatures.io.site_key`); wells are named ``"D08"``.

    Attributes
    ----------
    store : Store
        The run's store, open for reading.
    info : dict
        The store's run metadata (:attr:`Store.info <cpfeatures.store.Store.info>`):
        plate id, roles, creation time, recorded settings and versions.
    config : dict
        The settings the run used (:meth:`cpfeatures.store.Store.config`).
    keys : list of str
        The completed sites, in the store's order.
    errors : DataFrame
        One row per failed site (:meth:`cpfeatures.store.Store.errors`): ``site``,
        ``well``, ``field``, ``error``, ``message``, ...
    failed_keys : set of str
        The failed sites' keys.
    illum : dict of str to ndarray, or None
        The run's illumination function per channel; None when it wrote none.
    data : SiteData
        What the pass over the sites read: the Image row of every completed site,
        and the object columns read for some of them.
    image_columns : list of str
        The Image table's columns.
    key_features : dict of str to list of str
        A few key features per compartment (:func:`~cpfeatures.report.data.key_features`),
        read for the sampled sites and the sites of the card wells.
    sample : list of str
        The sites sampled evenly over the plate for the feature distributions.
    feature : str or None
        The feature mapped per well (its well median); None when the store has none.
    feature_table : str or None
        The table holding ``feature``: ``"Image"`` or an object table.
    feature_sites : tuple of int
        ``(sites whose rows give the feature's well median, completed sites)``.
    plate : Plate, RecordedPlate or None
        Where the sites' images are read from; None when the plate is not available.
    plate_note : str
        Where the plate is, or why it is not available.
    shape : tuple of int
        ``(rows, columns)`` of the plate layout drawn.
    annotations : DataFrame or None
        What is in each well, indexed by well (:func:`~cpfeatures.report.wellmap.well_annotations`):
        ``perturbation``, ``control`` and the plate map's ``Metadata_`` columns.
    annotation_source : str
        Where ``annotations`` came from (or why there are none), as the report says it.
    tips : ndarray of str
        The tooltip head of every well of the layout (shape ``shape``).
    wells : DataFrame
        One row per well with data or failures (:func:`~cpfeatures.report.qc.well_table`).
    flags : DataFrame
        The wells to look at and why (:func:`~cpfeatures.report.qc.flag_wells`).
    overlay_sites : list of (str, int)
        The ``(well, field)`` sites drawn in the overlays section.
    overlays : list of (str, tuple or CpfeaturesError)
        Their drawings (:func:`~cpfeatures.report.sites.draw_overlays`).
    card_wells : list of str
        The wells whose cards show thumbnails: the flagged wells first, then the overlay wells.
    well_thumbs : dict of str to list
        Well -> ``[(site, PNG bytes or error)]`` for those cards.
    scores : list of ScoreTable
        The score tables given (Percent Replicating / Matching, mAP).
    score_warnings : list of str
        What the scoring warned about (few features, a constant null, one reference profile...).
    profiles : DataFrame or None
        The well profiles given.
    plate_profiles : DataFrame or None
        Those of this plate (all, when they name no plate); None without a well column.
    profile_pc : Series or None
        The profiles' first principal component, median per well.
    """

    store: Store
    info: dict
    config: dict
    keys: list[str]
    errors: pd.DataFrame
    failed_keys: set[str]
    illum: dict[str, np.ndarray] | None
    data: SiteData
    image_columns: list[str]
    key_features: dict[str, list[str]]
    sample: list[str]
    feature: str | None
    feature_table: str | None
    feature_sites: tuple[int, int]
    plate: Plate | RecordedPlate | None
    plate_note: str
    shape: tuple[int, int]
    annotations: pd.DataFrame | None
    annotation_source: str
    tips: np.ndarray
    wells: pd.DataFrame
    flags: pd.DataFrame
    overlay_sites: list[tuple[str, int]]
    overlays: list[tuple[str, object]]
    card_wells: list[str]
    well_thumbs: dict[str, list[tuple[str, object]]]
    scores: list[ScoreTable]
    score_warnings: list[str]
    profiles: pd.DataFrame | None
    plate_profiles: pd.DataFrame | None
    profile_pc: pd.Series | None


def build_context(store, plate=None, scores=None, profiles=None, sites=None, feature=None, *, platemap=None,
                  external_metadata=None, negcon: str | None = None, poscon: str | None = None, n_overlays: int = 6,
                  well_cards: int = 8, sample_sites: int = 48, feature_sites: int | None = 3,
                  thumb_size: int = 320) -> ReportContext:
    """Read a run's store (and plate, scores, profiles, plate map) for its report.

    Parameters
    ----------
    store, plate, scores, profiles, sites, feature, platemap, external_metadata, negcon, poscon
        As for :func:`~cpfeatures.report.build_report`.
    n_overlays, well_cards, sample_sites, feature_sites, thumb_size
        As for :func:`~cpfeatures.report.build_report`.

    Returns
    -------
    ReportContext

    Raises
    ------
    StoreError
        ``store`` is not a cpfeatures store.
    InputError
        Unknown ``feature``, malformed or unknown ``sites``, unreadable scores or profiles.
    PlateError
        An explicitly given plate cannot be read.
    """
    st = open_store(store)
    info = st.info
    config = st.config()
    keys = st.completed_sites()
    errors = st.errors()
    columns = rd.object_columns(st, keys)
    image_columns = columns.pop("Image", [])
    if feature is None:
        feature = rd.default_feature(columns)
        table = None if feature is None else rd.feature_table(feature, columns, image_columns)
    else:
        table = rd.feature_table(str(feature), columns, image_columns)
    wanted_sites = parse_sites(sites)
    score_list = score_tables(scores)
    profile_frame = None if profiles is None else read_frame(profiles, "profiles")
    plate_obj, plate_note = resolve_plate(plate, info, config, st, keys, wanted_sites)

    plate_folder = plate if isinstance(plate, (str, os.PathLike)) else info.get("plate_path")
    annotations, annotation_source = well_annotations(platemap, profile_frame, plate_folder, info.get("plate_id"),
                                                      external_metadata, negcon=negcon, poscon=poscon)
    by_well: dict[str, list[str]] = {}  # completed sites per well, in the store's order
    for key in keys:
        by_well.setdefault(parse_site_key(key).well, []).append(key)
    well_names = set(by_well) | set(errors["well"].dropna().astype(str))
    if plate_obj is not None:
        well_names |= set(plate_obj.wells)
    shape = plate_dimensions(sorted(well_names), plate=plate_obj, info=info)

    sample = rd.sample_keys(keys, sample_sites)
    key_feats = rd.key_features(columns)
    in_sample = set(sample)
    always = {table: [feature]} if table not in (None, "Image") else {}
    # An object feature's map reads whole tables: up to `feature_sites` fields per well, spread over the well.
    if feature_sites and always:
        feature_keys = {k for ks in by_well.values()
                        for k in rd.sample_keys(sorted(ks, key=lambda k: parse_site_key(k).field), feature_sites)}
    else:
        feature_keys = set(keys)
    overlay_sites = choose_sites(keys, errors, wanted_sites, n_overlays, plate_obj, profile_frame)
    # The wells given a card with thumbnails: flagged wells (from the counts the sites' metadata records, before
    # any table is read) and the overlay wells; their sites' key features are read in full.
    counted = pd.DataFrame({"Metadata_Well": [parse_site_key(k).well for k in keys],
                            "n_Cells": [st.site_attrs(k).get("counts", {}).get("Cells") for k in keys]})
    pre_flags = qc.flag_wells(qc.well_table(counted, errors, None, shape))
    card_wells = list(dict.fromkeys([w for w in pre_flags["well"] if w in by_well][:well_cards]
                                    + [w for w, _ in overlay_sites]))
    card_keys = [k for w in card_wells for k in by_well.get(w, [])]
    in_cards = set(card_keys)

    def wanted(key):
        if key not in in_sample and key not in in_cards:
            return always if key in feature_keys else {}
        merged = {t: list(v) for t, v in key_feats.items()}
        for t, v in always.items():
            merged.setdefault(t, [])
            merged[t] = list(dict.fromkeys(merged[t] + v))
        return merged

    illum = st.read_illum()
    drawn_keys = {site_key(w, f) for w, f in overlay_sites}
    # Overlays (image reads, segmentation) are drawn while the tables are read: the reading mostly waits
    # on zarr's I/O thread, so the two overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        overlays = pool.submit(draw_overlays, plate_obj, overlay_sites, st, illum, config, thumb_size)
        thumbs = pool.submit(draw_thumbs, plate_obj, [k for k in card_keys if k not in drawn_keys], st, illum)
        data = rd.read_sites(st, keys, wanted)
        overlays.result()  # errors other than bad input surface here, before any HTML is written
        thumbs.result()
    wells = qc.well_table(data.image, errors, annotations, shape)
    plate_profiles, profile_pc = _plate_profiles(profile_frame, info.get("plate_id"))
    return ReportContext(
        store=st, info=info, config=config, keys=keys, errors=errors, failed_keys=set(errors["site"].astype(str)),
        illum=illum, data=data, image_columns=image_columns, key_features=key_feats, sample=sample,
        feature=feature, feature_table=table,
        feature_sites=(len(feature_keys | (in_sample if always else set())), len(keys)),
        plate=plate_obj, plate_note=plate_note, shape=shape, annotations=annotations,
        annotation_source=annotation_source, tips=well_tips(shape, annotations), wells=wells,
        flags=qc.flag_wells(wells), overlay_sites=overlay_sites, overlays=overlays.result(), card_wells=card_wells,
        well_thumbs=card_thumbs(card_keys, overlays.result(), thumbs.result()), scores=score_list, score_warnings=score_warnings(scores) if scores is not None else [],
        profiles=profile_frame, plate_profiles=plate_profiles, profile_pc=profile_pc)


def _plate_profiles(profiles: pd.DataFrame | None, plate_id) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The profiles of this plate (all when they carry no plate) and their first principal component per well."""
    if profiles is None or "Metadata_Well" not in profiles:
        return None, None
    from ..profile import canonical_well

    frame = profiles
    if "Metadata_Plate" in frame and plate_id is not None and str(plate_id) in set(frame["Metadata_Plate"].astype(str)):
        frame = frame[frame["Metadata_Plate"].astype(str) == str(plate_id)]
    features = [c for c in frame.columns if not str(c).startswith("Metadata_")
                and pd.api.types.is_numeric_dtype(frame[c])]
    pc = qc.first_component(frame, features)
    wells = frame["Metadata_Well"].map(lambda w: canonical_well(str(w)))
    return frame.reset_index(drop=True), pc.groupby(wells.to_numpy()).median()
