"""normalize: per-plate feature scaling against all wells or a reference population.

The methods are pycytominer's: ``standardize`` (scikit-learn's StandardScaler:
mean and population standard deviation), ``robustize`` (RobustScaler: median and
interquartile range), ``mad_robustize`` (median and 1.4826 x the median
absolute deviation, plus a tiny epsilon; CPJUMP1's choice, fitted on the DMSO
wells) and ``spherize`` (ZCA / PCA whitening, see :mod:`.spherize`). Statistics
ignore NaN (except spherize's, whose reference must be complete). Each plate is
fitted on its own rows (CPJUMP1 normalizes plate by plate), which equals calling
pycytominer once per plate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import warnings

from ..errors import DegenerateResultWarning, InputError
from ._frames import feature_array, infer_features, load_profiles, metadata_columns, select_positions
from .spherize import spherize

__all__ = ["normalize", "METHODS"]

METHODS = ("standardize", "robustize", "mad_robustize", "spherize")
_MAD_SCALE = 1.4826  # consistency constant for a normal distribution (pycytominer's)


def _scale_or_one(scale: np.ndarray) -> np.ndarray:
    # scikit-learn leaves constant features unscaled instead of dividing by ~0
    scale = scale.copy()
    scale[~(scale >= 10 * np.finfo(scale.dtype).eps)] = 1.0
    return scale


def _fit(x: np.ndarray, method: str, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    # numpy's nan-aware medians go column by column (about 10x slower): use them only when needed
    complete = bool(np.isfinite(x).all())
    median = np.median if complete else np.nanmedian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as pycytominer
        if method == "standardize":
            center = np.nanmean(x, axis=0)
            return center, _scale_or_one(np.nanstd(x, axis=0))
        center = median(x, axis=0)
        if method == "robustize":
            q1, q3 = (np.percentile if complete else np.nanpercentile)(x, [25, 75], axis=0)
            return center, _scale_or_one(q3 - q1)
        mad = median(np.abs(x - center), axis=0) * _MAD_SCALE
        return center, mad + epsilon


def normalize(profiles, method: str = "mad_robustize", samples: str = "all", features="infer",
              by: str | None = "Metadata_Plate", image_features: bool = False,
              mad_robustize_epsilon: float = 1e-18, spherize_method: str = "ZCA-cor",
              spherize_center: bool = True, spherize_epsilon: float = 1e-6) -> pd.DataFrame:
    """Normalize features per plate.

    Parameters
    ----------
    profiles : DataFrame or path
    method : {"mad_robustize", "standardize", "robustize", "spherize"}
    samples : str
        ``"all"`` or a pandas query selecting the rows the statistics are fitted
        on, e.g. ``"Metadata_control_type == 'negcon'"``; every row is transformed.
    features : "infer" or list of str
    by : str or None
        Fit separately within each value of this column (default per plate);
        None, or a column absent from the table, fits all rows together.
    image_features : bool
    mad_robustize_epsilon : float
        Added to the MAD so constant features do not divide by zero.
    spherize_method : {"ZCA-cor", "ZCA", "PCA-cor", "PCA"}
        With ``method="spherize"``: the whitening (pycytominer's default
        ``ZCA-cor``); the PCA variants output columns ``PC1`` ... ``PCd``.
    spherize_center : bool
        With ``method="spherize"``: center on the reference mean first.
    spherize_epsilon : float
        With ``method="spherize"``: added to the reference's singular values.

    Returns
    -------
    pandas.DataFrame
        The metadata columns, then the normalized features (float64), same rows.

    Warns
    -----
    DegenerateResultWarning
        A plate's reference has fewer than 2 profiles, or features have zero spread
        in it: those values are divided by (nearly) nothing, as pycytominer does, and
        can be huge. The warning names the plate, the samples and the features. With
        ``method="spherize"``: a rank-deficient reference (fewer profiles than
        features) or, for the ``-cor`` variants, zero-variance features (a
        reference of fewer than 2 profiles, or with NaN, is an InputError there).

    Raises
    ------
    InputError
        An unknown method, an empty table, a feature value that is not a number (naming the
        column; ``"None"`` and ``"nan"`` are read as missing, as pycytominer reads them), or a
        ``samples`` query that fails or matches no profile of a plate (naming the plate).

    See Also
    --------
    spherize : the whitening behind ``method="spherize"`` (one transform per ``by`` group).
    """
    profiles = load_profiles(profiles)
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"normalize method must be one of {METHODS}, got {method!r}")
    if method == "spherize":
        return spherize(profiles, method=spherize_method, center=spherize_center, epsilon=spherize_epsilon,
                        samples=samples, features=features, image_features=image_features,
                        by=by if by is not None and by in profiles.columns else None)
    feats = infer_features(profiles, features, image_features)
    meta = metadata_columns(profiles)
    out = normalized_array(feature_array(profiles, feats), profiles, feats, method, samples, by,
                           mad_robustize_epsilon)
    result = pd.concat([profiles[meta].reset_index(drop=True),
                        pd.DataFrame(out, columns=feats)], axis=1)
    result.index = profiles.index
    return result


def normalized_array(x: np.ndarray, profiles: pd.DataFrame, feats: list[str], method: str, samples: str = "all",
                     by: str | None = "Metadata_Plate", epsilon: float = 1e-18) -> np.ndarray:
    """The array form of :func:`normalize` (not spherize): ``x`` (rows of ``profiles``, columns ``feats``) normalized.

    For callers that hold the matrix already (:func:`~cpfeatures.profile.profile_plates`): no
    frame of the result is built, and the result has ``x``'s memory order.
    """
    method = str(method).lower()
    if method not in METHODS or method == "spherize":
        raise InputError(f"normalize method must be one of {METHODS[:-1]} here, got {method!r}")
    grouped = by is not None and by in profiles.columns
    if grouped and profiles[by].isna().any():
        raise InputError(f"normalize by {by!r}: {int(profiles[by].isna().sum())} profile(s) have no value")
    if len(profiles) == 0:
        raise InputError("no profiles to normalize (an empty table)", profiles.attrs.get("source"))
    values = pd.unique(profiles[by]) if grouped else []
    groups = [None] if len(values) <= 1 else [np.flatnonzero((profiles[by] == v).to_numpy()) for v in values]
    out = np.empty_like(x)
    for i, rows in enumerate(groups):
        # one group (a plate) is the whole table: no copy of its rows
        part, xr = (profiles, x) if rows is None else (profiles.iloc[rows], x[rows])
        where = group_label(by, values[i]) if grouped else None
        fit = select_positions(part, samples, where)
        center, scale = _fit(xr if fit is None else xr[fit], method, epsilon)
        _warn_degenerate(where, samples, len(xr) if fit is None else len(fit), feats, scale, method, epsilon)
        if rows is None:
            np.subtract(x, center, out=out)
            out /= scale
        else:
            out[rows] = (xr - center) / scale
    return out


def group_label(by: str, value) -> str:
    """How messages name a group of profiles: ``plate BR00117012``, ``Metadata_Batch B1``."""
    return f"plate {value}" if by == "Metadata_Plate" else f"{by} {value}"


def _warn_degenerate(where: str | None, samples: str, n_fit: int, feats: list[str], scale: np.ndarray,
                     method: str, epsilon: float) -> None:
    """Say when a plate's normalization divides by (nearly) nothing."""
    where = where or "profiles"
    reference = "all profiles" if samples == "all" else f"samples {samples!r}"
    if n_fit < 2:
        warnings.warn(f"{where}: the normalization reference ({reference}) is {n_fit} profile: every feature has "
                      "zero spread in it, so normalized values are divided by ~0; use more control wells or "
                      "samples='all'", DegenerateResultWarning, stacklevel=4)
        return
    if method != "mad_robustize":
        return  # scikit-learn's rule: constant features are left unscaled, not blown up
    flat = np.isfinite(scale) & (scale <= epsilon)
    if flat.any():
        names = [f for f, z in zip(feats, flat) if z]
        warnings.warn(f"{where}: {len(names)} of {len(feats)} features have zero spread (MAD 0) in the "
                      f"normalization reference ({reference}, {n_fit} profiles), so their normalized values are "
                      f"divided by {epsilon:g}: e.g. {', '.join(names[:3])}", DegenerateResultWarning, stacklevel=4)
