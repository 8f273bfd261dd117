"""Percent Replicating and Percent Matching (Way et al. 2022; Chandrasekaran et al. 2024).

Percent Replicating: for each perturbation, the median Pearson correlation
between its replicate profiles (every pair once) is compared with the 95th
percentile of a null: the same statistic for random sets of as many profiles,
each from a different perturbation. The score is the percentage of
perturbations above the null.

Percent Matching: for each pair of perturbation groups that share an annotation
(e.g. a compound and a CRISPR guide with the same target gene), the median
correlation between the replicates of one and those of the other is compared
with the 95th percentile of the same statistic for random pairs of groups that
share no annotation. The score is the percentage of matching pairs above it.

Sampling is seeded (``numpy.random.default_rng(seed)``) and exposed in the
results (``null_members``), so a null can be recomputed and checked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import warnings

from ..errors import DegenerateResultWarning, InputError
from ._frames import feature_array, infer_features, load_profiles, select_rows
from ._similarity import pearson_rows

__all__ = ["percent_replicating", "percent_matching", "ReplicatingResult", "MatchingResult"]


def _as_list(columns) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def _groups(profiles: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group id per profile (-1 when a key is missing) and the table of group keys."""
    for col in by:
        if col not in profiles.columns:
            raise InputError(f"metadata column {col!r} not in the profiles")
    keyed = profiles[by].reset_index(drop=True)
    ids = keyed.groupby(by, sort=True, dropna=True).ngroup().to_numpy()
    ids = np.where(np.isnan(ids.astype(float)), -1, ids).astype(np.int64)
    keys = keyed.groupby(by, sort=True, dropna=True).size().reset_index()[by]  # same order as ngroup
    return ids, keys


#: Bytes of profiles gathered at once for the null's correlations (memory stays bounded).
_BLOCK_BYTES = 64 * 2 ** 20


def _median_pair_corr(z: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Median over pairs ``a < b`` of ``corr(members[s, a], members[s, b])`` for each row ``s``."""
    n, k = members.shape
    a, b = np.triu_indices(k, 1)
    out = np.empty(n)
    # Each sample's k x k Gram matrix by batched BLAS, a block of samples at a time: gathering the
    # two profiles of every pair (n x k(k-1)/2 x features) would cost k/2 times the memory and
    # einsum's unblocked loop (60 s for 1,536 wells x 1,000 features, k = 24).
    step = max(1, int(_BLOCK_BYTES // (k * z.shape[1] * z.itemsize)))
    for start in range(0, n, step):
        block = z[members[start:start + step]]
        gram = block @ block.transpose(0, 2, 1)
        out[start:start + step] = np.median(gram[:, a, b], axis=1)
    return out


@dataclass
class ReplicatingResult:
    """Outcome of :func:`percent_replicating`.

    Attributes
    ----------
    percent_replicating : float
        Percentage of scored groups whose median replicate correlation exceeds the null threshold.
    null_p95 : float
        The threshold for the most common replicate count.
    per_group : DataFrame
        Group keys, ``n_replicates``, ``median_correlation``, ``null_threshold``, ``above_null``.
    null : dict of int to ndarray
        Null medians per replicate count.
    null_members : dict of int to ndarray
        Row positions (``n_samples x count``) of the profiles of every null sample.
    """

    percent_replicating: float
    null_p95: float
    per_group: pd.DataFrame
    null: dict = field(repr=False)
    null_members: dict = field(repr=False)


def _without_reference(profiles: pd.DataFrame, reference_query: str | None) -> pd.DataFrame:
    """The profiles scored: all but the reference (control) profiles, which are not perturbations."""
    if reference_query is None:
        return profiles
    reference = select_rows(profiles, reference_query)
    rest = profiles.drop(index=reference.index)
    if rest.empty:
        raise InputError(f"reference_query {reference_query!r} selects every profile")
    return rest


def _threshold(null: np.ndarray, percentile: float, what: str) -> float:
    """The null's percentile, ignoring NaN samples (as the CPJUMP1 notebooks' ``np.nanpercentile``)."""
    bad = int(np.isnan(null).sum())
    if bad == null.size:
        raise InputError(f"every sample of the {what} null is NaN: the profiles have no variance (constant or "
                         "identical features after normalization?)")
    if bad:
        warnings.warn(f"{bad} of {null.size} samples of the {what} null are NaN (profiles without variance) and "
                      "were left out of its percentile", DegenerateResultWarning, stacklevel=3)
    finite = null[np.isfinite(null)]
    if finite.size > 1 and np.ptp(finite) < 1e-9:
        warnings.warn(f"the {what} null is constant ({finite[0]:.6g} in every sample): no score can be told from "
                      "chance (too few features or perturbations?)", DegenerateResultWarning, stacklevel=3)
    return float(np.nanpercentile(null, percentile))


def _correlated(profiles: pd.DataFrame, features) -> np.ndarray:
    """Rows of z-scored profiles for Pearson correlations; warns when there are too few features."""
    names = infer_features(profiles, features)
    if len(names) < 3:
        warnings.warn(f"{len(names)} feature(s) only: Pearson correlations of so few values are about +-1 and "
                      "say little (was feature selection too strict?)", DegenerateResultWarning, stacklevel=3)
    return pearson_rows(_finite(feature_array(profiles, names)))


def percent_replicating(profiles, replicate_by, n_samples: int = 1000, seed: int | None = None, features="infer",
                        percentile: float = 95.0, min_replicates: int = 2,
                        reference_query: str | None = None, null: str = "numpy", n_replicates: int = 4,
                        rng: random.Random | None = None) -> ReplicatingResult:
    """Percent Replicating of a set of profiles.

    Parameters
    ----------
    profiles : DataFrame or path
    replicate_by : str or sequence of str
        Columns whose values identify replicates of one perturbation.
    n_samples : int
        Null samples per replicate count (``null="cpjump1"``: in all; the paper draws 10,000).
    seed : int, optional
        Seed of the null (default 0; 9000 with ``null="cpjump1"``, the paper's ``random.seed(9000)``).
    features : "infer" or list of str
    percentile : float
        Null percentile a group must exceed (95 in the papers).
    min_replicates : int
        Groups with fewer profiles are not scored (they still feed the null).
    reference_query : str, optional
        A pandas query selecting control profiles (e.g. ``"Metadata_control_type == 'negcon'"``):
        they are left out, neither scored nor in the null (``cpfeatures score --reference``).
    null : {"numpy", "cpjump1"}
        ``"numpy"``: the seeded, vectorized null below. ``"cpjump1"``: the CPJUMP1 paper's
        own arithmetic (:mod:`cpfeatures.profile._cpjump1`): Python's ``random.choices`` of
        ``n_replicates`` rows of distinct perturbations, ``np.corrcoef`` medians,
        ``np.nanpercentile(null, 95)``, and perturbations with one profile counted as not
        replicating. ``replicate_by`` must then be one column.
    n_replicates : int
        Size of a ``"cpjump1"`` null set (the paper: 4).
    rng : random.Random, optional
        For ``"cpjump1"``: the generator to draw from, to continue one stream over several
        calls as the paper's notebooks do (default ``random.Random(seed)``).

    Returns
    -------
    ReplicatingResult

    Warns
    -----
    DegenerateResultWarning
        NaN null samples (profiles without variance), a null drawn from fewer than 5
        perturbations.

    Notes
    -----
    Null sampling, per distinct replicate count ``k`` in increasing order:
    ``rng.random((n_samples, n_groups))`` is argsorted per row and the first
    ``k`` groups are taken (``k`` distinct perturbations), then one profile of
    each is chosen by ``floor(rng.random((n_samples, k)) * group_size)``.
    """
    profiles = _without_reference(load_profiles(profiles), reference_query).reset_index(drop=True)
    by = _as_list(replicate_by)
    if n_samples < 1:
        raise InputError("n_samples must be >= 1")
    if null == "cpjump1":
        return _replicating_cpjump1(profiles, by, n_samples, 9000 if seed is None else seed, n_replicates, rng,
                                    features)
    if null != "numpy":
        raise InputError(f"null must be 'numpy' or 'cpjump1', got {null!r}")
    seed = 0 if seed is None else seed
    ids, keys = _groups(profiles, by)
    if len(keys) < 5:
        warnings.warn(f"the replicating null is drawn from {len(keys)} perturbation(s) only: its percentile says "
                      "little", DegenerateResultWarning, stacklevel=2)
    z = _correlated(profiles, features)
    valid = ids >= 0
    order = np.flatnonzero(valid)[np.argsort(ids[valid], kind="stable")]
    sizes = np.bincount(ids[valid], minlength=len(keys))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    scored = np.flatnonzero(sizes >= max(min_replicates, 2))
    if scored.size == 0:
        raise InputError(f"no perturbation in {by} has {max(min_replicates, 2)} or more replicates")
    lone = np.flatnonzero(sizes < max(min_replicates, 2))
    if lone.size:
        names = ", ".join("/".join(map(str, keys.iloc[g].tolist())) for g in lone[:3])
        warnings.warn(f"{lone.size} of {len(keys)} perturbation(s) of {by} have fewer than {max(min_replicates, 2)} "
                      f"profiles and are not scored (they still feed the null): e.g. {names}",
                      DegenerateResultWarning, stacklevel=2)
    rng = np.random.default_rng(seed)
    nulls, members_by_k, thresholds = {}, {}, {}
    for k in np.unique(sizes[scored]):
        if k > len(keys):
            raise InputError(f"a null set of {k} profiles needs {k} perturbations; there are {len(keys)}")
        chosen = np.argsort(rng.random((n_samples, len(keys))), axis=1)[:, :k]
        pick = np.floor(rng.random((n_samples, k)) * sizes[chosen]).astype(np.int64)
        members = order[starts[chosen] + pick]
        nulls[int(k)] = _median_pair_corr(z, members)
        members_by_k[int(k)] = members
        thresholds[int(k)] = _threshold(nulls[int(k)], percentile, f"replicating (sets of {k})")
    medians = np.empty(len(scored))
    for k in np.unique(sizes[scored]):  # groups of equal size are scored together
        sel = scored[sizes[scored] == k]
        members = order[starts[sel][:, None] + np.arange(k)]
        medians[np.searchsorted(scored, sel)] = _median_pair_corr(z, members)
    table = keys.iloc[scored].reset_index(drop=True)
    table["n_replicates"] = sizes[scored]
    table["median_correlation"] = medians
    table["null_threshold"] = [thresholds[int(k)] for k in sizes[scored]]
    table["above_null"] = table["median_correlation"] > table["null_threshold"]
    common = int(pd.Series(sizes[scored]).mode().iloc[0])
    return ReplicatingResult(100.0 * float(table["above_null"].mean()), thresholds[common], table, nulls,
                             members_by_k)


def _paper_frame(profiles: pd.DataFrame, features) -> pd.DataFrame:
    """Metadata plus the chosen features, as the notebooks' frames (features = non-``Metadata`` columns)."""
    names = infer_features(profiles, features)
    _finite(feature_array(profiles, names))
    return profiles[[c for c in profiles.columns if c.startswith("Metadata")] + names]


def _replicating_cpjump1(profiles, by, n_samples, seed, n_replicates, rng, features) -> ReplicatingResult:
    from . import _cpjump1

    if len(by) != 1:
        raise InputError(f"null='cpjump1' groups replicates by one column, got {by}")
    frame = _paper_frame(profiles, features)
    rng = random.Random(seed) if rng is None else rng
    keys, values = _cpjump1.replicate_correlations(frame, by[0])
    null, members = _cpjump1.replicating_null(frame, by[0], n_samples, n_replicates, rng)
    if np.isnan(null).all():
        raise InputError("every sample of the replicating null is NaN: the profiles have no variance")
    percent, high, _, above = _cpjump1.percent_score(null, values, "right")
    sizes = frame.groupby(by[0], sort=True).size().to_numpy()
    single = int((sizes == 1).sum())
    if single:
        warnings.warn(f"{single} of {len(sizes)} perturbation(s) of {by[0]} have one profile: the paper's arithmetic "
                      "counts them as not replicating", DegenerateResultWarning, stacklevel=3)
    table = pd.DataFrame({by[0]: keys.to_numpy(), "n_replicates": sizes, "median_correlation": values,
                          "null_threshold": high, "above_null": above})
    return ReplicatingResult(percent, high, table, {n_replicates: null}, {n_replicates: members})


def _finite(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise InputError("profiles contain NaN or infinite feature values; drop or impute them first")
    return x


@dataclass
class MatchingResult:
    """Outcome of :func:`percent_matching`.

    Attributes
    ----------
    percent_matching : float
        Percentage of matching group pairs whose median cross-correlation exceeds the null threshold.
    null_p95 : float
    per_pair : DataFrame
        ``<group_by>_1``, ``<group_by>_2``, ``shared`` (annotations in common),
        ``median_correlation``, ``above_null``.
    null : ndarray
    null_pairs : ndarray
        Group indices (``n_samples x 2``, rows of ``groups``) of the null samples
        (``null="cpjump1"``: the pairs of shared annotations drawn).
    groups : DataFrame
        Group keys and their annotation sets.
    null_p5 : float or None
        The lower threshold, when ``tail`` is ``"left"`` or ``"both"``.
    """

    percent_matching: float
    null_p95: float
    per_pair: pd.DataFrame
    null: np.ndarray = field(repr=False)
    null_pairs: np.ndarray = field(repr=False)
    groups: pd.DataFrame = field(repr=False)
    null_p5: float | None = None


def _annotations(values: pd.Series, sep: str | None) -> list[frozenset]:
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            out.append(frozenset())
        else:
            parts = v.split(sep) if sep else [v]
            out.append(frozenset(p.strip() for p in parts if p.strip()))
    return out


def _cross_median(z: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> float:
    return float(np.median(z[rows_a] @ z[rows_b].T))


def percent_matching(profiles, group_by, match_by: str, across: str | None = None, sep: str | None = "|",
                     n_samples: int = 1000, seed: int | None = None, features="infer",
                     percentile: float = 95.0, reference_query: str | None = None, tail: str = "right",
                     null: str = "numpy", modalities=None, rng: random.Random | None = None) -> MatchingResult:
    """Percent Matching between groups of profiles that share an annotation.

    Parameters
    ----------
    profiles : DataFrame or path
    group_by : str or sequence of str
        Columns identifying a perturbation (its replicates form a group).
    match_by : str
        Annotation column (e.g. ``Metadata_target``); several values in one cell
        are split on ``sep`` (``"KCNA5|KCNH2"``) and groups match when they share one.
    across : str, optional
        Only pairs whose groups differ in this column count (e.g.
        ``Metadata_pert_type`` to match compounds with genes, not compounds with compounds).
    sep : str or None
    n_samples : int
    seed : int
    features : "infer" or list of str
    percentile : float
        The null percentile of the right tail (95); the left tail uses ``100 - percentile``.
    reference_query : str, optional
        Control profiles to leave out (see :func:`percent_replicating`).
    tail : {"right", "left", "both"}
        Count pairs above the upper threshold, below the lower one (anti-correlation,
        as the paper scores ORFs against compounds), or either.
    null : {"numpy", "cpjump1"}
        ``"cpjump1"``: the paper's arithmetic (:mod:`cpfeatures.profile._cpjump1`) between the
        two ``modalities`` of ``across``: every perturbation (``group_by``, one column) of one
        against every one of the other that shares a ``match_by`` value, ``random.choices``
        of two shared values for the null (a ``sep``-joined list is exploded first, one row
        per value, as the notebooks explode ``Metadata_target_list``),
        ``np.nanpercentile`` thresholds (5,000 samples in the paper).
    modalities : (str, str), optional
        ``"cpjump1"``: the values of ``across`` that are modality 1 and 2 (the null draws the
        first annotation for modality 1); default their order of appearance.
    rng : random.Random, optional
        ``"cpjump1"``: continue this generator (default ``random.Random(seed)``, seed 9000).

    Returns
    -------
    MatchingResult

    Notes
    -----
    The null draws group pairs uniformly (``rng.integers`` in batches, keeping
    pairs of distinct groups that share no annotation and satisfy ``across``)
    until ``n_samples`` are collected; its statistic is the same median
    cross-correlation.
    """
    profiles = _without_reference(load_profiles(profiles), reference_query).reset_index(drop=True)
    by = _as_list(group_by)
    if match_by not in profiles.columns:
        raise InputError(f"metadata column {match_by!r} not in the profiles")
    if across is not None and across not in profiles.columns:
        raise InputError(f"metadata column {across!r} not in the profiles")
    if tail not in ("right", "left", "both"):
        raise InputError(f"tail must be 'right', 'left' or 'both', got {tail!r}")
    if null == "cpjump1":
        return _matching_cpjump1(profiles, by, match_by, across, n_samples, 9000 if seed is None else seed, tail,
                                 modalities, rng, features, sep)
    if null != "numpy":
        raise InputError(f"null must be 'numpy' or 'cpjump1', got {null!r}")
    seed = 0 if seed is None else seed
    ids, keys = _groups(profiles, by)
    z = _correlated(profiles, features)
    first = pd.Series(np.arange(len(profiles)))[ids >= 0].groupby(ids[ids >= 0]).first().to_numpy()
    annotations = _annotations(profiles[match_by].iloc[first], sep)
    side = profiles[across].iloc[first].to_numpy() if across else np.zeros(len(keys))
    rows = [np.flatnonzero(ids == g) for g in range(len(keys))]
    # matching pairs: an inverted index annotation -> groups, pairs within each list
    index: dict[str, list[int]] = {}
    for g, ann in enumerate(annotations):
        for a in ann:
            index.setdefault(a, []).append(g)
    pairs = sorted({(g1, g2) for members in index.values() for i, g1 in enumerate(members)
                    for g2 in members[i + 1:] if (across is None or side[g1] != side[g2])})
    if not pairs:
        raise InputError(f"no two groups of {by} share a {match_by} value"
                         + (f" across {across}" if across else ""))
    rng = np.random.default_rng(seed)
    null_pairs = np.empty((0, 2), np.int64)
    attempts = 0
    while len(null_pairs) < n_samples:
        cand = rng.integers(len(keys), size=(2 * n_samples, 2))
        ok = np.array([g1 != g2 and not (annotations[g1] & annotations[g2])
                       and (across is None or side[g1] != side[g2]) for g1, g2 in cand], bool)
        null_pairs = np.concatenate([null_pairs, cand[ok]])[:n_samples]
        attempts += 1
        if attempts > 100:
            raise InputError("cannot draw null pairs: almost every pair of groups shares an annotation")
    null = np.array([_cross_median(z, rows[g1], rows[g2]) for g1, g2 in null_pairs])
    threshold = _threshold(null, percentile, "matching")
    low = _threshold(null, 100.0 - percentile, "matching") if tail in ("left", "both") else None
    table = pd.DataFrame({
        **{f"{c}_1": keys[c].to_numpy()[[p[0] for p in pairs]] for c in by},
        **{f"{c}_2": keys[c].to_numpy()[[p[1] for p in pairs]] for c in by},
        "shared": ["|".join(sorted(annotations[g1] & annotations[g2])) for g1, g2 in pairs],
        "median_correlation": [_cross_median(z, rows[g1], rows[g2]) for g1, g2 in pairs],
    })
    table["above_null"] = table["median_correlation"] > threshold if tail != "left" else False
    if low is not None:
        table["below_null"] = table["median_correlation"] < low
    beyond = table["above_null"] | table["below_null"] if low is not None else table["above_null"]
    groups = keys.assign(annotations=["|".join(sorted(a)) for a in annotations])
    return MatchingResult(100.0 * float(beyond.mean()), threshold, table, null, null_pairs, groups, low)


def _matching_cpjump1(profiles, by, match_by, across, n_samples, seed, tail, modalities, rng,
                      features, sep) -> MatchingResult:
    from . import _cpjump1

    if len(by) != 1 or across is None:
        raise InputError("null='cpjump1' needs one group_by column and the modality column as across")
    frame = _paper_frame(profiles, features)
    if sep and frame[match_by].astype("string").str.contains(sep, regex=False).any():
        # a target list: one row per target, as the CPJUMP1 notebooks explode Metadata_target_list,
        # so a compound is matched under each of its targets
        frame = frame.assign(**{match_by: frame[match_by].astype("string").str.split(sep)}).explode(match_by)
        frame = frame.assign(**{match_by: frame[match_by].str.strip().replace("", pd.NA).astype(object)})
        frame = frame[frame[match_by].notna()].reset_index(drop=True)
    rng = random.Random(seed) if rng is None else rng
    table = _cpjump1.matching_correlations(frame, by[0], match_by, across, modalities)
    if table.empty:
        raise InputError(f"no {by[0]} of one modality shares a {match_by} value with one of the other")
    null, drawn = _cpjump1.matching_null(frame, by[0], match_by, across, n_samples, rng, modalities)
    percent, high, low, _ = _cpjump1.percent_score(null, table["median_correlation"].to_numpy(), tail)
    values = table["median_correlation"].to_numpy()
    table["above_null"] = values > high if high is not None else False
    if low is not None:
        table["below_null"] = values < low
    groups = pd.DataFrame({match_by: np.intersect1d(list(frame[match_by].dropna()), list(table["shared"]))})
    return MatchingResult(percent, high if high is not None else float("nan"), table, null, drawn, groups, low)
