"""The numbers a screener acts on: per-well counts, flagged wells, control separation, position effects.

Everything here is plain pandas / numpy on per-well tables, so each rule can be
checked by hand:

* **Flagged wells** (:func:`flag_wells`): a well is *failed* when a site of it
  failed (the store's error table) or it has no completed site; *low count*
  when its cells per site are below ``low_fraction`` (default 0.5) of the
  plate median, or its robust z-score is below ``-z`` (default 3); a *high
  count outlier* when its robust z-score is above ``z``. The robust z-score is
  ``(x - median) / (1.4826 * MAD)`` over the wells with data, used from
  :data:`MIN_WELLS_Z` wells on (the MAD of a few wells says little); a site
  with no cell is named too.
* **Z'** (:func:`z_prime`): ``1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg|``
  (Zhang et al. 1999), sample standard deviations (``ddof=1``), over one
  value per control well; undefined with fewer than 2 wells of either kind.
* **Position effects** (:func:`position_effects`): the median per row and per
  column, relative to the plate median, and edge wells (outer rows and
  columns) against interior wells: their medians and a two-sided Mann-Whitney
  U test (SciPy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .layout import parse_well, row_labels
from .wellmap import NEGATIVE, POSITIVE

__all__ = ["well_table", "flag_wells", "robust_z", "z_prime", "control_separation", "position_effects",
           "first_component", "LOW_FRACTION", "Z_LIMIT", "MIN_WELLS_Z"]

#: A well with fewer cells per site than this fraction of the plate median is a low-count well.
LOW_FRACTION = 0.5
#: Robust z-score beyond which a well's count is an outlier.
Z_LIMIT = 3.0
#: Wells with data needed before robust z-scores flag wells.
MIN_WELLS_Z = 8


def well_table(image: pd.DataFrame, errors: pd.DataFrame, annotations: pd.DataFrame | None,
               shape: tuple[int, int]) -> pd.DataFrame:
    """One row per well with data, a failure or a plate-map entry.

    Parameters
    ----------
    image : DataFrame
        The Image rows of the completed sites (``Metadata_Well``, ``Metadata_Site``,
        ``Count_Cells`` or ``n_Cells``).
    errors : DataFrame
        The store's error table (``well``, ``site``).
    annotations : DataFrame or None
        :func:`~cpfeatures.report.wellmap.well_annotations`.
    shape : tuple of int
        Plate rows and columns (edge wells are those of the outer rows and columns).

    Returns
    -------
    DataFrame
        Indexed by well, in plate order: ``row``, ``column``, ``edge``,
        ``perturbation``, ``control``, ``sites_done``, ``sites_failed``,
        ``cells``, ``cells_per_site``, ``min_site_cells``.

    Examples
    --------
    >>> image = pd.DataFrame({"Metadata_Well": ["A01", "A01", "B02"], "Count_Cells": [10, 30, 5]})
    >>> well_table(image, pd.DataFrame(columns=["well", "site"]), None, (8, 12))["cells_per_site"].to_dict()
    {'A01': 20.0, 'B02': 5.0}
    """
    column = "Count_Cells" if "Count_Cells" in image else "n_Cells"
    counts = pd.to_numeric(image[column], errors="coerce") if len(image) else pd.Series(dtype=float)
    by_well = counts.groupby(image["Metadata_Well"].astype(str)) if len(image) else None
    wells = set(image["Metadata_Well"].dropna().astype(str)) if len(image) else set()
    wells |= set(errors["well"].dropna().astype(str)) if len(errors) else set()
    if annotations is not None:
        wells |= set(annotations.index.astype(str))
    order = sorted(wells, key=parse_well)
    out = pd.DataFrame(index=pd.Index(order, name="well"))
    coords = np.array([parse_well(w) for w in order], dtype=int).reshape(-1, 2)
    out["row"], out["column"] = coords[:, 0], coords[:, 1]
    rows, cols = shape
    out["edge"] = (out["row"] == 1) | (out["row"] == rows) | (out["column"] == 1) | (out["column"] == cols)
    if annotations is not None:
        out["perturbation"] = annotations["perturbation"].reindex(order).fillna("").to_numpy()
        out["control"] = annotations["control"].reindex(order).fillna("").to_numpy()
    else:
        out["perturbation"], out["control"] = "", ""
    if by_well is not None:
        out["sites_done"] = by_well.size().reindex(order).fillna(0).astype(int)
        out["cells"] = by_well.sum(min_count=1).reindex(order).astype(float)
        out["min_site_cells"] = by_well.min().reindex(order).astype(float)
    else:
        out["sites_done"], out["cells"], out["min_site_cells"] = 0, np.nan, np.nan
    failed = errors.groupby(errors["well"].astype(str)).size() if len(errors) else pd.Series(dtype=int)
    out["sites_failed"] = failed.reindex(order).fillna(0).astype(int).to_numpy()
    out["cells_per_site"] = out["cells"] / out["sites_done"].where(out["sites_done"] > 0)
    # Only wells the run was asked for: a plate-map well that was neither run nor failed is left out.
    ran = (out["sites_done"] > 0) | (out["sites_failed"] > 0)
    return out[ran] if ran.any() else out.iloc[:0]


def robust_z(values: pd.Series) -> pd.Series:
    """``(x - median) / (1.4826 * MAD)``; NaN where ``x`` is, 0 everywhere when the MAD is 0."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    med = v.median()
    mad = 1.4826 * (v - med).abs().median()
    if not np.isfinite(mad) or mad == 0:
        return (v - med) * 0.0
    return (v - med) / mad


def flag_wells(wells: pd.DataFrame, low_fraction: float = LOW_FRACTION, z: float = Z_LIMIT) -> pd.DataFrame:
    """Wells to look at, with the reasons (see the module's rules).

    Parameters
    ----------
    wells : DataFrame
        :func:`well_table`.
    low_fraction : float
        Cells per site below this fraction of the plate median: low count.
    z : float
        Robust z-score limit for low and high count outliers.

    Returns
    -------
    DataFrame
        One row per flagged well (failed first, then by robust z): ``well``,
        ``perturbation``, ``control``, ``sites_done``, ``sites_failed``,
        ``cells_per_site``, ``robust_z``, ``fraction_of_median``, ``reasons``.

    Examples
    --------
    >>> w = pd.DataFrame({"perturbation": "", "control": "", "sites_done": [1, 1, 1, 1, 0],
    ...                   "sites_failed": [0, 0, 0, 0, 1], "cells_per_site": [100, 110, 90, 20, np.nan],
    ...                   "min_site_cells": [100, 110, 90, 20, np.nan]}, index=list("ABCDE"))
    >>> flag_wells(w)["reasons"].tolist()   # 4 wells with data: too few for robust z-scores
    ['1 failed site; no completed site', 'low count: 20 cells per site, 0.2 of the plate median (95)']
    """
    cps = pd.to_numeric(wells["cells_per_site"], errors="coerce")
    med = float(cps.median()) if cps.notna().any() else np.nan
    rz = robust_z(cps) if cps.notna().sum() >= MIN_WELLS_Z else cps * np.nan
    frac = cps / med if np.isfinite(med) and med > 0 else cps * np.nan
    rows = []
    for well in wells.index:
        w = wells.loc[well]
        reasons = []
        if w["sites_failed"] > 0:
            reasons.append(f"{int(w['sites_failed'])} failed site{'s' if w['sites_failed'] > 1 else ''}")
        if w["sites_done"] == 0:
            reasons.append("no completed site")
        x, zx, f = cps[well], rz[well], frac[well]
        if np.isfinite(x):
            low = []
            if np.isfinite(f) and f < low_fraction:
                low.append(f"{f:.1f} of the plate median ({med:.0f})")
            if np.isfinite(zx) and zx < -z:
                low.append(f"robust z {zx:.1f}")
            if low:
                reasons.append(f"low count: {x:.0f} cells per site, " + ", ".join(low))
            elif np.isfinite(zx) and zx > z:
                reasons.append(f"high count: {x:.0f} cells per site, robust z {zx:.1f}")
            if w.get("min_site_cells") == 0 and w["sites_done"] > 1:
                reasons.append("a site with no cell")
        if reasons:
            rows.append({"well": well, "perturbation": w["perturbation"], "control": w["control"],
                         "sites_done": int(w["sites_done"]), "sites_failed": int(w["sites_failed"]),
                         "cells_per_site": x, "robust_z": zx, "fraction_of_median": f,
                         "reasons": "; ".join(reasons)})
    out = pd.DataFrame(rows, columns=["well", "perturbation", "control", "sites_done", "sites_failed",
                                      "cells_per_site", "robust_z", "fraction_of_median", "reasons"])
    if len(out):
        # failed wells first, then the furthest from the median (robust z, else the fraction of the median)
        far = out["robust_z"].abs().fillna(np.log(out["fraction_of_median"].astype(float)).abs()).fillna(0.0)
        key = np.where((out["sites_failed"] > 0) | (out["sites_done"] == 0), -np.inf, -far)
        out = out.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    return out


def z_prime(positive, negative) -> float:
    """Z' factor of two sets of values: ``1 - 3 (sd_p + sd_n) / |mean_p - mean_n|``.

    Sample standard deviations (``ddof=1``); NaN with fewer than 2 finite values
    on either side or equal means.

    Examples
    --------
    >>> round(z_prime([10, 12, 11], [1, 2, 3]), 3)   # 1 - 3 (1 + 1) / 9
    0.333
    """
    p = np.asarray(positive, dtype=float)
    n = np.asarray(negative, dtype=float)
    p, n = p[np.isfinite(p)], n[np.isfinite(n)]
    if p.size < 2 or n.size < 2:
        return float("nan")
    gap = abs(p.mean() - n.mean())
    if gap == 0:
        return float("nan")
    return float(1 - 3 * (p.std(ddof=1) + n.std(ddof=1)) / gap)


def control_separation(readouts: dict[str, pd.Series], wells: pd.DataFrame) -> pd.DataFrame:
    """Z' of positive against negative control wells for each per-well readout.

    Parameters
    ----------
    readouts : dict of str to Series
        Readout name -> one value per well (indexed by well).
    wells : DataFrame
        :func:`well_table` (its ``control`` column).

    Returns
    -------
    DataFrame
        ``readout``, ``negative_wells``, ``positive_wells``, ``negative_mean``,
        ``negative_sd``, ``positive_mean``, ``positive_sd``, ``z_prime``, ``note``.
    """
    neg = wells.index[wells["control"] == NEGATIVE]
    pos = wells.index[wells["control"] == POSITIVE]
    rows = []
    for name, values in readouts.items():
        v = pd.to_numeric(values, errors="coerce")
        n, p = v.reindex(neg).dropna(), v.reindex(pos).dropna()
        zp = z_prime(p, n)
        if len(n) < 2 or len(p) < 2:
            why = f"needs 2 or more wells of each kind ({len(n)} negative, {len(p)} positive with a value)"
        elif not np.isfinite(zp):
            why = "equal means"
        elif zp >= 0.5:
            why = "excellent separation (Z' >= 0.5)"
        elif zp > 0:
            why = "marginal separation (0 < Z' < 0.5)"
        else:
            why = "controls overlap (Z' <= 0)"
        rows.append({"readout": name, "negative_wells": len(n), "positive_wells": len(p),
                     "negative_mean": n.mean() if len(n) else np.nan,
                     "negative_sd": n.std(ddof=1) if len(n) > 1 else np.nan,
                     "positive_mean": p.mean() if len(p) else np.nan,
                     "positive_sd": p.std(ddof=1) if len(p) > 1 else np.nan, "z_prime": zp, "note": why})
    return pd.DataFrame(rows, columns=["readout", "negative_wells", "positive_wells", "negative_mean", "negative_sd",
                                       "positive_mean", "positive_sd", "z_prime", "note"])


def position_effects(readouts: dict[str, pd.Series], wells: pd.DataFrame,
                     shape: tuple[int, int]) -> tuple[pd.DataFrame, dict[str, tuple[pd.Series, pd.Series]]]:
    """Row / column trends and edge against interior wells, per readout.

    Returns
    -------
    edge : DataFrame
        ``readout``, ``edge_wells``, ``interior_wells``, ``edge_median``,
        ``interior_median``, ``edge_over_interior``, ``mann_whitney_p``, the
        largest row and column deviations from the plate median (as a fraction of it).
    profiles : dict
        Readout -> (median per row, median per column), each over the plate's
        rows / columns (NaN where no well has a value), relative to the plate median.
    """
    from scipy.stats import mannwhitneyu

    rows_n, cols_n = shape
    out, trends = [], {}
    for name, values in readouts.items():
        v = pd.to_numeric(values, errors="coerce").reindex(wells.index)
        ok = v.notna()
        med = float(v[ok].median()) if ok.any() else np.nan
        scale = abs(med) if np.isfinite(med) and med != 0 else np.nan
        by_row = v.groupby(wells["row"]).median().reindex(range(1, rows_n + 1))
        by_col = v.groupby(wells["column"]).median().reindex(range(1, cols_n + 1))
        by_row.index = row_labels(rows_n)
        trends[name] = ((by_row - med) / scale, (by_col - med) / scale)
        edge, inner = v[ok & wells["edge"]], v[ok & ~wells["edge"]]
        p = float(mannwhitneyu(edge, inner, alternative="two-sided").pvalue) if len(edge) and len(inner) \
            else np.nan
        rel_r, rel_c = trends[name]
        out.append({"readout": name, "edge_wells": int(len(edge)), "interior_wells": int(len(inner)),
                    "edge_median": edge.median() if len(edge) else np.nan,
                    "interior_median": inner.median() if len(inner) else np.nan,
                    "edge_over_interior": (edge.median() / inner.median()) if len(edge) and len(inner)
                    and inner.median() != 0 else np.nan,
                    "mann_whitney_p": p, "worst_row": _worst(rel_r), "worst_column": _worst(rel_c)})
    return pd.DataFrame(out), trends


def _worst(relative: pd.Series) -> str:
    """The row (column) furthest from the plate median, with its signed deviation: ``"P (-35%)"``."""
    if not relative.notna().any():
        return ""
    key = relative.abs().idxmax()
    return f"{key} ({relative[key]:+.0%})"


def first_component(profiles: pd.DataFrame, features: list[str]) -> pd.Series:
    """Scores of the profiles on their first principal component (features standardized first).

    The sign is fixed so that the component's largest loading is positive
    (an SVD's sign is arbitrary). Returns a Series aligned with ``profiles``.
    """
    x = profiles[features].to_numpy(dtype=float)
    keep = np.isfinite(x).all(axis=0) & (x.std(axis=0) > 0)
    x = x[:, keep]
    if x.shape[0] < 2 or x.shape[1] < 1:
        return pd.Series(np.nan, index=profiles.index)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    v = vt[0] * np.sign(vt[0][np.argmax(np.abs(vt[0]))])
    return pd.Series(x @ v, index=profiles.index)
