"""write_plate_profiles: plates' single cells -> profile files, as ``cpfeatures profile`` writes them.

:func:`~cpfeatures.profile.profile_plates` (per plate aggregate, annotate, normalize; one
feature selection; optionally whitening and consensus signatures), then its tables as files:
the profiles, the kept feature list beside them (``<stem>_features.txt``), the consensus
signatures (``<stem>_consensus<suffix>``) and, with ``keep_stages``, one store's
aggregated, annotated and normalized tables (``<stem>_<stage><suffix>``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..io.fs import check_writable
from ._frames import check_profiles_path, load_profiles, write_profiles
from .aggregate import aggregate
from .annotate import read_platemap
from .batch import PlateProfiles, _annotate, _plate_maps, profile_plates, read_feature_list
from .normalize import normalize

__all__ = ["write_plate_profiles"]


def write_plate_profiles(sources, output: str | os.PathLike, *, platemaps=None, external_metadata=None,
                         external_join_on: str | None = None, operation: str | None = "median",
                         method: str = "mad_robustize", samples: str = "all", feature_selection: bool = True,
                         select_level: str = "batch", features_from=None, corr_threshold: float = 0.9,
                         spherize: str | None = None, spherize_by: str | None = None, consensus: str | None = None,
                         consensus_by=("Metadata_broad_sample",), keep_stages: bool = False,
                         features="infer", skip_damaged: bool = False) -> PlateProfiles:
    """Profile plates and write the profiles, the kept features and the consensus signatures.

    Parameters
    ----------
    sources : store, table, path, or a list of them (or a folder of stores)
        One plate each, as :func:`~cpfeatures.profile.profile_plates` takes them.
    output : path
        The profiles file: ``.parquet``, ``.csv``, ``.csv.gz`` (any suffix
        :func:`~cpfeatures.profile.write_profiles` writes). The kept features go to
        ``<stem>_features.txt`` beside it, the consensus signatures to
        ``<stem>_consensus<suffix>``.
    platemaps, external_metadata, external_join_on, operation, method, samples, feature_selection
        As :func:`~cpfeatures.profile.profile_plates`. A plate-map file is read (and refused)
        before any cell is.
    select_level, features_from, corr_threshold, spherize, spherize_by, consensus, consensus_by, features
        As :func:`~cpfeatures.profile.profile_plates` (``features_from`` may be the kept-list file).
    keep_stages : bool
        Also write the source's aggregated, annotated (with a plate map) and normalized
        (unless ``method="none"``) tables as ``<stem>_<stage><suffix>``; one source only
        (several are refused).
    skip_damaged : bool
        Leave a store's damaged sites out, with a warning each, instead of refusing it.

    Returns
    -------
    PlateProfiles
        The profiles, kept features, plates and consensus, with ``files``: the profiles, the
        kept list and (with ``consensus``) the consensus file.

    Raises
    ------
    InputError
        An ``output`` suffix that is not a profile table's, and what
        :func:`~cpfeatures.profile.profile_plates` refuses.

    Examples
    --------
    >>> from cpfeatures.profile import write_plate_profiles
    >>> result = write_plate_profiles("example.zarr", "profiles.parquet",
    ...                               platemaps="platemap.csv")     # doctest: +SKIP
    >>> result.files                                                # doctest: +SKIP
    ['profiles.parquet', 'profiles_features.txt']
    """
    out = check_profiles_path(output)
    if isinstance(features_from, (str, os.PathLike)):
        features_from = read_feature_list(features_from)
    if isinstance(platemaps, (str, os.PathLike)) and not Path(platemaps).is_dir():
        read_platemap(platemaps)  # refused before the cells are read
    check_writable(out.parent)  # a read-only or full output folder is found before the cells are read
    items = [sources] if isinstance(sources, (str, os.PathLike, pd.DataFrame)) else list(sources)
    if keep_stages and len(items) > 1:  # an option that would do nothing is refused, not ignored
        raise InputError(f"keep_stages writes the stages of one plate; {len(items)} sources were given (profile "
                         "each store on its own to keep its stages)")
    if keep_stages:
        _write_stages(items[0], out, platemaps, external_metadata, external_join_on, operation, method, samples,
                      skip_damaged)
    result = profile_plates(items, platemaps=platemaps, external_metadata=external_metadata,
                            external_join_on=external_join_on, operation=operation, method=method, samples=samples,
                            select_level=select_level, corr_threshold=corr_threshold, features_from=features_from,
                            feature_selection=feature_selection, features=features, spherize=spherize,
                            spherize_by=spherize_by, consensus=consensus, consensus_by=consensus_by,
                            skip_damaged=skip_damaged)
    write_profiles(result.profiles, out)
    stem = out.name.split(".")[0]
    features_file = out.with_name(f"{stem}_features.txt")
    features_file.write_text("\n".join(result.features) + "\n")
    result.files = [str(out), str(features_file)]
    if result.consensus is not None:
        path = write_profiles(result.consensus, out.with_name(f"{stem}_consensus{''.join(out.suffixes)}"))
        result.files.append(str(path))
    return result


def _write_stages(source, out: Path, platemap, external_metadata, external_join_on, operation, method,
                  samples, skip_damaged: bool = False) -> None:
    """``keep_stages`` for one source: its aggregated, annotated and normalized tables beside ``out``."""
    unaggregated = operation is None or str(operation).lower() == "none"
    table = load_profiles(source) if unaggregated else aggregate(source, operation=operation,
                                                                  skip_damaged=skip_damaged)
    stem = out.name.split(".")[0]
    stages = [] if unaggregated else [("aggregated", table)]
    if platemap is not None:  # as profile_plates annotates: a flat map, a dict plate -> map or a JUMP folder
        maps = _plate_maps(platemap, external_metadata)
        plates = table.groupby("Metadata_Plate", sort=False) if "Metadata_Plate" in table.columns else [("", table)]
        table = pd.concat([_annotate(part.reset_index(drop=True), str(plate), maps, external_join_on)
                           for plate, part in plates], ignore_index=True)
        stages.append(("annotated", table))
    if str(method).lower() != "none":
        stages.append(("normalized", normalize(table, method=method, samples=samples)))
    for name, frame in stages:
        write_profiles(frame, out.with_name(f"{stem}_{name}{''.join(out.suffixes)}"))
