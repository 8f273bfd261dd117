"""Mean average precision (mAP) of profile retrieval with permutation p-values, copairs' semantics.

Each profile ranks every other profile by similarity; its average precision
(AP) measures how high its positives (e.g. replicates of the same compound) rank
among its negatives (e.g. DMSO wells). A group's mAP is the mean AP of its
profiles; its p-value compares the mAP with the mean AP of random rankings with
the same numbers of positives and negatives, and the p-values are corrected for
multiple testing (Benjamini-Hochberg).

Pair rules are copairs': ``i`` and ``j`` are a positive pair when they share
every ``pos_sameby`` value and differ in every ``pos_diffby`` value, a negative
pair when they share every ``neg_sameby`` and differ in every ``neg_diffby``
value; a missing value is neither equal nor different. Ties in similarity rank
positives first. The random null of each (positives, total) configuration is
drawn with the same generator calls as copairs (seeded per configuration from
``seed``), so with the same seed the p-values are equal.

Unlike copairs, pairs are never listed: similarities are computed a block of
profiles at a time and ranked in a numba kernel, so memory grows with
``block x profiles`` instead of with the number of pairs (copairs issue #90:
9,216 profiles needed more than 14 GB).

References
----------
Kalinin et al., "A versatile information retrieval framework for evaluating
profile strength and similarity", Nature Communications (2025); copairs 0.5.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pandas as pd

from ..errors import DegenerateResultWarning, InputError
from ._frames import feature_array, infer_features, load_profiles, metadata_columns, select_rows
from ._similarity import prepare, similarity_block

__all__ = ["average_precision", "mean_average_precision", "null_distribution", "fdr_bh", "expected_ap"]

_REFERENCE = "Metadata__reference_index"


# ----------------------------------------------------------------------------- pair rules
def _codes(meta: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Integer codes per column (missing -> -1), shape (n, len(columns))."""
    out = np.empty((len(meta), len(columns)), np.int64)
    for k, col in enumerate(columns):
        if col not in meta.columns:
            raise InputError(f"metadata column {col!r} not in the profiles")
        out[:, k] = pd.factorize(meta[col], use_na_sentinel=True)[0]
    return out


@numba.njit(cache=True, inline="always")
def _matches(ci, cj, same, diff):
    # same: codes equal and present; diff: codes present and unequal; every column must hold
    for k in range(same.shape[1]):
        a = same[ci, k]
        b = same[cj, k]
        if a < 0 or b < 0 or a != b:
            return False
    for k in range(diff.shape[1]):
        a = diff[ci, k]
        b = diff[cj, k]
        if a < 0 or b < 0 or a == b:
            return False
    return True


@numba.njit(cache=True, inline="always")
def _ap_of(pos_key, p, neg_sorted):
    """AP of the first ``p`` positive keys (1 - similarity) among sorted negative keys; NaN without positives."""
    if p == 0:
        return np.nan
    pk = np.sort(pos_key[:p])
    q = len(neg_sorted)
    total = 0.0
    above = 0  # negatives ranked before the current positive (ties: positives first)
    for t in range(p):
        while above < q and neg_sorted[above] < pk[t]:
            above += 1
        total += (t + 1) / (t + 1 + above)
    return total / p


@numba.njit(cache=True)
def _ap_block(sim, start, pos_same, pos_diff, neg_same, neg_diff, ap, n_pos, n_total):
    """AP of rows ``start .. start + len(sim)`` from their similarity rows (float32)."""
    n = sim.shape[1]
    one = np.float32(1.0)
    pos_key = np.empty(n, np.float32)
    neg_key = np.empty(n, np.float32)
    for r in range(sim.shape[0]):
        i = start + r
        p = 0
        q = 0
        for j in range(n):
            if j == i:
                continue
            key = one - sim[r, j]  # copairs ranks by 1 - similarity, in float32
            if _matches(i, j, pos_same, pos_diff):
                pos_key[p] = key
                p += 1
            if _matches(i, j, neg_same, neg_diff):
                neg_key[q] = key
                q += 1
        n_pos[i] = p
        n_total[i] = p + q
        ap[i] = _ap_of(pos_key, p, np.sort(neg_key[:q]))


@numba.njit(cache=True, inline="always")
def _share_label(row_ptr, row_labels, i, j):
    # both label lists are sorted: a merge finds a common label
    a, b = row_ptr[i], row_ptr[j]
    a_end, b_end = row_ptr[i + 1], row_ptr[j + 1]
    while a < a_end and b < b_end:
        if row_labels[a] == row_labels[b]:
            return True
        if row_labels[a] < row_labels[b]:
            a += 1
        else:
            b += 1
    return False


@numba.njit(cache=True)
def _ap_block_multilabel(sim, start, pos_same, pos_diff, neg_same, neg_diff, row_ptr, row_labels, label_ptr,
                         label_rows, ap, n_pos, n_total):
    """AP of every (row, label) entry of rows ``start .. start + len(sim)``; entries are ``row_ptr`` slots.

    Positives of (i, a): the other rows labelled ``a`` that satisfy the positive rules;
    negatives of i (the same for all its labels): rows sharing no label with i that
    satisfy the negative rules. A row without labels is neither.
    """
    n = sim.shape[1]
    one = np.float32(1.0)
    pos_key = np.empty(n, np.float32)
    neg_key = np.empty(n, np.float32)
    for r in range(sim.shape[0]):
        i = start + r
        if row_ptr[i + 1] == row_ptr[i]:
            continue
        q = 0
        for j in range(n):
            if j != i and row_ptr[j + 1] > row_ptr[j] and not _share_label(row_ptr, row_labels, i, j) \
                    and _matches(i, j, neg_same, neg_diff):
                neg_key[q] = one - sim[r, j]
                q += 1
        nk = np.sort(neg_key[:q])
        for e in range(row_ptr[i], row_ptr[i + 1]):
            label = row_labels[e]
            p = 0
            for m in range(label_ptr[label], label_ptr[label + 1]):
                j = label_rows[m]
                if j != i and _matches(i, j, pos_same, pos_diff):
                    pos_key[p] = one - sim[r, j]
                    p += 1
            n_pos[e] = p
            n_total[e] = p + q
            ap[e] = _ap_of(pos_key, p, nk)


def _label_index(values: pd.Series, sep: str):
    """Sorted label ids per row (CSR ``row_ptr``, ``row_labels``), rows per label (CSR), and the label names.

    Missing and empty cells have no labels.
    """
    lists = values.astype("string").str.split(sep)
    exploded = lists.explode().str.strip()
    exploded = exploded[exploded.notna() & (exploded != "")]
    rows = exploded.index.to_numpy(np.int64)
    ids, names = pd.factorize(exploded.to_numpy(object), sort=True)
    pairs = np.unique(np.stack([rows, ids.astype(np.int64)], axis=1), axis=0)  # sorted by row, then label
    row_ptr = np.zeros(len(values) + 1, np.int64)
    np.add.at(row_ptr, pairs[:, 0] + 1, 1)
    row_ptr = np.cumsum(row_ptr)
    by_label = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]
    label_ptr = np.zeros(len(names) + 1, np.int64)
    np.add.at(label_ptr, by_label[:, 1] + 1, 1)
    label_ptr = np.cumsum(label_ptr)
    return row_ptr, pairs[:, 1].copy(), label_ptr, by_label[:, 0].copy(), np.asarray(names, dtype=object)


def expected_ap(n_pos: np.ndarray, n_total: np.ndarray) -> np.ndarray:
    """Mean AP of a random ranking with ``n_pos`` positives among ``n_total`` (exact formula)."""
    n_pos = np.asarray(n_pos, np.int64)
    n_total = np.asarray(n_total, np.int64)
    top = int(n_total.max()) if n_total.size else 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, top + 1))])
    L = n_total.astype(float)
    M = n_pos.astype(float)
    h = harmonic[n_total]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (1.0 / L) * (((M - 1.0) / (L - 1.0)) * (L - h) + h)
    mu = np.where(n_total == 1, (n_pos == 1).astype(float), mu)
    mu = np.where(n_pos == 0, 0.0, mu)
    return np.where((n_pos == n_total) & (n_total > 1), 1.0, mu)


def average_precision(profiles, pos_sameby, pos_diffby=(), neg_sameby=(), neg_diffby=(), distance: str = "cosine",
                      features="infer", block_size: int = 1024, multilabel: str | None = None,
                      sep: str = "|") -> pd.DataFrame:
    """Average precision of every profile.

    Parameters
    ----------
    profiles : DataFrame or path
    pos_sameby, pos_diffby, neg_sameby, neg_diffby : sequence of str
        Metadata columns defining positive and negative pairs (see the module notes).
    distance : str
        ``"cosine"`` (default), ``"abs_cosine"``, ``"correlation"``, ``"euclidean"``,
        ``"manhattan"`` or ``"chebyshev"``.
    features : "infer" or list of str
    block_size : int
        Profiles whose similarities are held at once.
    multilabel : str, optional
        A column holding several labels per profile, joined by ``sep`` (a compound's
        ``Metadata_target_list``, ``"KCNA5|KCNH2"``), with copairs' multilabel semantics: it must
        be in ``pos_sameby`` and ``neg_diffby``; each profile gets one AP per label, whose
        positives carry that label, and its negatives share none of its labels.
    sep : str

    Returns
    -------
    pandas.DataFrame
        The metadata columns plus ``average_precision`` (NaN without positives),
        ``normalized_average_precision``, ``n_pos_pairs`` and ``n_total_pairs``; with
        ``multilabel``, one row per (profile, label), the column holding the one label.

    Examples
    --------
    A compound of two targets against three genes: gene C (a negative) lies between
    the compound and gene B, so label A ranks its positive first and label B second.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"Metadata_target": ["A|B", "A", "B", "C"],
    ...                       "Metadata_kind": ["cpd", "gene", "gene", "gene"],
    ...                       "Cells_a": [1.0, 1.0, 0.0, 1.0], "Cells_b": [0.0, 0.1, 1.0, -0.2]})
    >>> ap = average_precision(frame, ["Metadata_target"], ["Metadata_kind"], [], ["Metadata_target", "Metadata_kind"],
    ...                        multilabel="Metadata_target")
    >>> ap.loc[ap["Metadata_kind"] == "cpd", ["Metadata_target", "average_precision"]].to_numpy().tolist()
    [['A', 1.0], ['B', 0.5]]
    """
    profiles = load_profiles(profiles)
    lists = [[c] if isinstance(c, str) else list(c) for c in (pos_sameby, pos_diffby, neg_sameby, neg_diffby)]
    if not (lists[0] or lists[1]) or not (lists[2] or lists[3]):
        raise InputError("positive and negative pairs each need at least one sameby or diffby column")
    feats = infer_features(profiles, features)
    x = prepare(feature_array(profiles, feats), distance)
    meta = profiles[metadata_columns(profiles)].reset_index(drop=True).copy()
    n = len(profiles)
    if multilabel is not None:
        if multilabel not in lists[0] or multilabel not in lists[3]:
            raise InputError(f"multilabel column {multilabel!r} must be in pos_sameby and neg_diffby")
        lists[0], lists[3] = ([c for c in cols if c != multilabel] for cols in (lists[0], lists[3]))
        index = _label_index(meta[multilabel].reset_index(drop=True), sep)
        row_ptr, names = index[0], index[4]
        size = int(row_ptr[-1])
    else:
        size = n
    codes = [_codes(profiles, cols) for cols in lists]
    ap = np.full(size, np.nan)
    n_pos = np.zeros(size, np.int64)
    n_total = np.zeros(size, np.int64)
    for start in range(0, n, block_size):
        sim = similarity_block(x, slice(start, start + block_size), distance)
        if multilabel is None:
            _ap_block(sim, start, *codes, ap, n_pos, n_total)
        else:
            _ap_block_multilabel(sim, start, *codes, *index[:4], ap, n_pos, n_total)
    if multilabel is not None:  # one row per (profile, label)
        meta = meta.iloc[np.repeat(np.arange(n), np.diff(row_ptr))].reset_index(drop=True)
        meta[multilabel] = names[index[1]]
    if not n_pos.any():
        raise InputError("no positive pairs: no two profiles share the pos_sameby values "
                         f"{lists[0]} (while differing in {lists[1]})")
    if not (n_total - n_pos).any():
        raise InputError(f"no negative pairs for the rules neg_sameby={lists[2]}, neg_diffby={lists[3]}")
    meta["average_precision"] = ap
    mu = expected_ap(n_pos, n_total)
    with np.errstate(invalid="ignore"):
        meta["normalized_average_precision"] = np.where(
            n_total > 0, np.clip((ap - mu) / np.maximum(1 - mu, 1e-10), -1.0, 1.0), np.nan)
    meta["n_pos_pairs"] = n_pos
    meta["n_total_pairs"] = n_total
    return meta


# ----------------------------------------------------------------------------- null and p-values
def _random_ap(null_size: int, n_pos: int, total: int, seed, chunk_rows: int = 2048) -> np.ndarray:
    """AP of ``null_size`` random rankings; the generator calls equal copairs' ``random_ap``."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if total < 2 ** 16 else np.uint32
    base = np.arange(total, dtype=dtype)
    precision_num = np.arange(1, n_pos + 1, dtype=np.float32)
    out = np.empty(null_size, np.float32)
    # permuting row blocks in order draws the same numbers as permuting the whole matrix at once
    for s in range(0, null_size, chunk_rows):
        rows = min(chunk_rows, null_size - s)
        block = np.tile(base, (rows, 1))
        rng.permuted(block, axis=1, out=block)
        ranks = np.sort(block[:, :n_pos], axis=1)
        out[s:s + rows] = ((precision_num / (ranks + 1)).sum(axis=1) / n_pos).astype(np.float32)
    return out


def null_distribution(confs: np.ndarray, null_size: int, seed: int) -> np.ndarray:
    """Random-ranking AP per unique ``(n_pos, n_total)`` row of ``confs`` (sorted as ``np.unique``)."""
    seeds = np.random.default_rng(seed).integers(8096, size=len(confs))
    out = np.empty((len(confs), null_size), np.float32)
    for k, (n_pos, total) in enumerate(confs):
        out[k] = _random_ap(null_size, int(n_pos), int(total), seeds[k])
    return out


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values."""
    p = np.asarray(p, float)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    scaled = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def mean_average_precision(profiles, sameby, diffby=None, reference_query: str | None = None,
                           distance: str = "cosine", null_size: int = 10000, seed: int = 0,
                           threshold: float = 0.05, features="infer", pos_diffby=(), neg_sameby=(),
                           block_size: int = 1024, multilabel: str | None = None, sep: str = "|") -> pd.DataFrame:
    """mAP per group of profiles with p-values and FDR-corrected p-values.

    Parameters
    ----------
    profiles : DataFrame or path
    sameby : str or sequence of str
        Profiles sharing these values are positives of each other (e.g.
        ``["Metadata_broad_sample"]``); groups are reported by these columns.
    diffby : str or sequence of str, optional
        Negatives must differ in all of these (default: ``sameby``).
    reference_query : str, optional
        A pandas query selecting reference profiles (e.g.
        ``"Metadata_control_type == 'negcon'"``). Each other profile is then
        ranked against its replicates and the references only (phenotypic
        activity); references get no score of their own. Without it, every
        profile is ranked against all profiles differing in ``diffby``
        (phenotypic consistency).
    distance : str
        See :func:`average_precision`.
    null_size : int
        Random rankings per configuration for the p-values.
    seed : int
    threshold : float
        Significance level for the ``below_p`` / ``below_corrected_p`` columns.
    features : "infer" or list of str
    pos_diffby, neg_sameby : sequence of str
        Further pair rules (copairs' ``pos_diffby``, ``neg_sameby``).
    multilabel : str, optional
        A ``sameby`` column with several labels per profile joined by ``sep`` (see
        :func:`average_precision`); groups are then its single labels.
    sep : str

    Returns
    -------
    pandas.DataFrame
        ``sameby`` columns, ``n_profiles``, ``mean_average_precision``,
        ``mean_normalized_average_precision``, ``p_value``, ``corrected_p_value``,
        ``below_p``, ``below_corrected_p``; one row per group with positives.
    """
    profiles = load_profiles(profiles).reset_index(drop=True)
    sameby = [sameby] if isinstance(sameby, str) else list(sameby)
    diffby = list(sameby) if diffby is None else ([diffby] if isinstance(diffby, str) else list(diffby))
    pos_sameby, neg_diffby = list(sameby), list(diffby)
    if reference_query is not None:
        ref = np.zeros(len(profiles), bool)
        ref[profiles.index.get_indexer(select_rows(profiles, reference_query).index)] = True
        if ref.all():
            raise InputError(f"reference_query {reference_query!r} selects every profile")
        if ref.sum() < 2:
            warnings.warn(f"reference_query {reference_query!r} selects {int(ref.sum())} profile: each replicate "
                          "is ranked against one control, so average precision is 0, 0.5 or 1",
                          DegenerateResultWarning, stacklevel=2)
        # copairs' reference trick: references get unique ids, the others share -1, so positives
        # are non-references only and negatives pair a profile with a reference
        profiles = pd.concat([profiles, pd.Series(np.where(ref, np.arange(len(profiles)), -1), name=_REFERENCE)],
                             axis=1)
        pos_sameby.append(_REFERENCE)
        neg_diffby.append(_REFERENCE)
    scores = average_precision(profiles, pos_sameby, pos_diffby, neg_sameby, neg_diffby, distance=distance,
                               features=features, block_size=block_size, multilabel=multilabel, sep=sep)
    return _map_from_ap(scores, sameby, null_size, seed, threshold)


def _map_from_ap(scores: pd.DataFrame, sameby: list[str], null_size: int, seed: int,
                 threshold: float) -> pd.DataFrame:
    valid = scores[scores["average_precision"].notna() & (scores["n_pos_pairs"] > 0)].reset_index(drop=True)
    confs, rev = np.unique(valid[["n_pos_pairs", "n_total_pairs"]].to_numpy(), axis=0, return_inverse=True)
    rev = np.asarray(rev).ravel()
    null = null_distribution(confs, null_size, seed)
    grouped = valid.groupby(sameby, observed=True, sort=True)
    out = grouped.agg(n_profiles=("average_precision", "size"),
                      mean_average_precision=("average_precision", "mean"),
                      mean_normalized_average_precision=("normalized_average_precision", "mean")).reset_index()
    group_of = grouped.ngroup().to_numpy()  # same numbering as the rows of ``out``
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(len(out) + 1))
    p_values = np.empty(len(out))
    for k in range(len(out)):  # one vector operation per group
        rows = order[bounds[k]:bounds[k + 1]]
        group_null = null[rev[rows]].mean(axis=0)
        p_values[k] = ((group_null > out["mean_average_precision"].iloc[k]).sum() + 1) / (null_size + 1)
    out["p_value"] = p_values
    out["corrected_p_value"] = fdr_bh(p_values)
    out["below_p"] = out["p_value"] < threshold
    out["below_corrected_p"] = out["corrected_p_value"] < threshold
    return out
