"""spherize: whiten profiles (ZCA / PCA, on the covariance or the correlation) against a reference.

Sphering (whitening) decorrelates the features and gives them unit variance in
a reference population, usually the negative-control wells, so batch effects
shared by every well are divided out (Kessy et al. 2016, "Optimal Whitening and
Decorrelation", arXiv:1512.00809). The numbers are pycytominer 1.7.1's
``normalize(method="spherize")``:

- the reference ``X`` (``n`` profiles x ``d`` features) is centered on its mean
  (``center``), and for the ``-cor`` variants also divided by its population
  standard deviation (scikit-learn's StandardScaler; constant features keep a
  scale of 1);
- the singular value decomposition ``X = U S V^T`` gives the eigenvectors ``V``
  of the sample covariance ``X^T X / (n - 1)`` and its eigenvalues ``S^2 / (n - 1)``;
- ``epsilon`` is added to the singular values ``S`` (not to the eigenvalues);
- when ``n <= d`` the covariance has rank ``r < d``: the ``d - r`` directions
  it does not see (``S`` ~ 0) get the smallest nonzero singular value ``S[r-1]``;
- PCA whitening is ``W = V diag(sqrt(n - 1) / (S + epsilon))`` (its outputs are
  the principal components ``PC1 ... PCd``); ZCA rotates back, ``W V^T``, and
  keeps the feature names;
- every profile ``x`` becomes ``(x - mean) / scale @ W`` with the reference's
  mean and scale.

One transform is fitted per value of ``by`` (a plate, or a column naming a
group of plates), on that group's ``samples``, and applied to all its rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import DegenerateResultWarning, InputError
from ._frames import feature_array, infer_features, load_profiles, metadata_columns, select_rows

__all__ = ["spherize", "SPHERIZE_METHODS"]

SPHERIZE_METHODS = ("ZCA", "ZCA-cor", "PCA", "PCA-cor")
_EPS = np.finfo(np.float64).eps


def _method(method) -> str:
    by_lower = {m.lower(): m for m in SPHERIZE_METHODS}
    key = str(method).lower().replace("-corr", "-cor")
    if key not in by_lower:
        raise InputError(f"spherize method must be one of {SPHERIZE_METHODS}, got {method!r}")
    return by_lower[key]


def _standardizer(x: np.ndarray, center: bool, scale: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and scale of the reference ``x`` (F-ordered), and the features left unscaled as constant.

    The mean is the column sum over ``n`` and the variance the corrected two-pass
    formula (Chan, Golub & LeVeque), summed in the same order as scikit-learn's
    StandardScaler, so the centered matrix is bit for bit the one pycytominer
    decomposes. That matters: when ``n <= d`` the singular vectors of the
    near-null directions are set by rounding, and the PCA outputs of profiles
    outside the reference along them follow those bits.
    """
    n, d = x.shape
    if not center:
        return np.zeros(d), np.ones(d), np.zeros(d, dtype=bool)
    mean = np.sum(x, axis=0) / n
    if not scale:
        return mean, np.ones(d), np.zeros(d, dtype=bool)
    dev = x - mean
    correction = np.sum(dev, axis=0)
    var = (np.sum(dev * dev, axis=0) - correction ** 2 / n) / n
    constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
    std = np.sqrt(var)
    std[constant] = 1.0
    return mean, std, constant


def _whitening(x: np.ndarray, method: str, epsilon: float) -> tuple[np.ndarray, int]:
    """The ``d x d`` whitening matrix of the centered (standardized) reference ``x``, and its rank."""
    n, d = x.shape
    if method.startswith("ZCA") and n <= d:
        # Fewer profiles than features: only r = rank directions carry variance and pycytominer
        # gives every other direction the smallest nonzero singular value. ZCA rotates back, so
        # those directions enter only through the projector I - V_r V_r^T, whatever basis spans
        # them: the thin decomposition (n x d instead of d x d; 20x faster for 100 DMSO wells of
        # 550 features) gives the same matrix.
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        rank = _rank(s, n, d)
        scale = np.sqrt(n - 1) / (s[:rank] + epsilon)
        rest = np.sqrt(n - 1) / (s[rank - 1] + epsilon)
        vr = vt[:rank]
        w = (vr.T * (scale - rest)) @ vr
        w[np.diag_indices(d)] += rest
        return w, rank
    _, s, vt = np.linalg.svd(x, full_matrices=True)
    rank = _rank(s, n, d)
    if n <= d:
        # only r directions carry variance: the rest take the smallest nonzero singular value
        s = np.concatenate([s[:rank], np.full(d - rank, s[rank - 1])])
    w = vt.T * (np.sqrt(n - 1) / (s + epsilon))
    if method.startswith("ZCA"):
        w = w @ vt
    return w, rank


def _rank(s: np.ndarray, n: int, d: int) -> int:
    return int(np.count_nonzero(s > s.max(initial=0.0) * max(n, d) * _EPS))  # numpy.linalg.matrix_rank's rule


def _groups(profiles: pd.DataFrame, by, verb: str) -> list[tuple[object, np.ndarray]]:
    """``(value, row positions)`` for each value of ``by`` (one group of every row when None)."""
    if by is None:
        return [(None, np.arange(len(profiles)))]
    if by not in profiles.columns:
        raise InputError(f"{verb} by {by!r}: no such column")
    if profiles[by].isna().any():
        raise InputError(f"{verb} by {by!r}: {int(profiles[by].isna().sum())} profile(s) have no value")
    values = profiles[by].to_numpy()
    return [(v, np.flatnonzero(values == v)) for v in pd.unique(profiles[by])]


def spherize(profiles, method: str = "ZCA-cor", center: bool = True, epsilon: float = 1e-6,
             samples: str = "all", features="infer", by: str | None = None,
             image_features: bool = False) -> pd.DataFrame:
    """Sphere (whiten) profiles against a reference population, as pycytominer.

    Parameters
    ----------
    profiles : DataFrame or path
    method : {"ZCA-cor", "ZCA", "PCA-cor", "PCA"}
        ``ZCA`` whitens and rotates back onto the features (their names are
        kept); ``PCA`` whitens onto the principal components (columns ``PC1`` ...
        ``PCd``); ``-cor`` first standardizes each feature, whitening the
        correlation instead of the covariance. Case-insensitive.
    center : bool
        Subtract the reference mean first; ``-cor`` requires it.
    epsilon : float
        Added to the reference's singular values before inverting them.
    samples : str
        ``"all"`` or a pandas query selecting the reference rows the transform
        is fitted on, e.g. ``"Metadata_broad_sample == 'DMSO'"``; every row is transformed.
    features : "infer" or list of str
    by : str or None
        Fit one transform per value of this column (a plate, or a group of
        plates) on that group's ``samples``; None fits all rows together.
    image_features : bool

    Returns
    -------
    pandas.DataFrame
        The metadata columns, then the sphered features (float64), same rows and index.

    Raises
    ------
    InputError
        An unknown method, ``-cor`` without centering, a ``by`` column missing or
        with empty values, a reference of fewer than 2 profiles, or NaN / infinite
        values in a reference (the decomposition cannot skip them; NaN in other
        rows makes their outputs NaN).

    Warns
    -----
    DegenerateResultWarning
        A reference's covariance is rank-deficient: fewer profiles than features
        (``n <= d`` centered, ``n < d`` not), or linearly dependent features; and,
        for the ``-cor`` variants, features with zero variance in the reference
        (left unscaled, where pycytominer raises). The message names the group,
        the reference and the features.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 3)) @ np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.1]])
    >>> df = pd.DataFrame(x, columns=["Cells_a", "Cells_b", "Nuclei_c"]).assign(Metadata_Plate="P1")
    >>> out = spherize(df, method="ZCA", by="Metadata_Plate")
    >>> list(out.columns)
    ['Metadata_Plate', 'Cells_a', 'Cells_b', 'Nuclei_c']
    >>> np.round(np.cov(out[["Cells_a", "Cells_b", "Nuclei_c"]].to_numpy(), rowvar=False), 4) + 0.0
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    >>> list(spherize(df, method="PCA").columns)
    ['Metadata_Plate', 'PC1', 'PC2', 'PC3']
    """
    profiles = load_profiles(profiles)
    method = _method(method)
    center = bool(center)
    if method.endswith("-cor") and not center:
        raise InputError(f"spherize method {method!r} whitens the correlation, which is centered: use center=True")
    epsilon = float(epsilon)
    feats = infer_features(profiles, features, image_features)
    meta = metadata_columns(profiles)
    x = feature_array(profiles, feats)
    out = np.empty_like(x)
    reference = "all profiles" if samples == "all" else f"samples {samples!r}"
    for value, rows in _groups(profiles, by, "spherize"):
        where = "profiles" if by is None else f"{by} {value}"
        part = profiles.iloc[rows]
        fit_rows = select_rows(part, samples, None if by is None else where)
        ref = feature_array(fit_rows, feats, order="F")  # F order: column sums in scikit-learn's order
        n, d = ref.shape
        if n < 2:
            raise InputError(f"{where}: the spherize reference ({reference}) is {n} profile; it needs at least 2")
        bad = ~np.isfinite(ref).all(axis=0)
        if bad.any():
            names = [f for f, b in zip(feats, bad) if b]
            raise InputError(f"{where}: {len(names)} feature(s) have NaN or infinite values in the spherize "
                             f"reference ({reference}), e.g. {', '.join(names[:3])}; drop or impute them first")
        mean, scale, constant = _standardizer(ref, center, method.endswith("-cor"))
        if constant.any():
            names = [f for f, c in zip(feats, constant) if c]
            warnings.warn(f"{where}: {len(names)} of {d} features have zero variance in the spherize reference "
                          f"({reference}, {n} profiles) and are left unscaled (pycytominer refuses them): "
                          f"e.g. {', '.join(names[:3])}", DegenerateResultWarning, stacklevel=2)
        w, rank = _whitening((ref - mean) / scale, method, epsilon)
        if rank < d:
            if n - center < d:
                why = (f"has {n} profiles for {d} features, so its covariance has rank {rank}: the {d - rank} "
                       f"directions it does not see are scaled by its smallest nonzero singular value "
                       "(pycytominer's rule); use more reference profiles or fewer features")
            else:
                why = (f"has linearly dependent features (covariance rank {rank} < {d}): the outputs along the "
                       f"{d - rank} null directions are divided by ~epsilon ({epsilon:g}); drop redundant features")
            warnings.warn(f"{where}: the spherize reference ({reference}) {why}", DegenerateResultWarning,
                          stacklevel=2)
        out[rows] = ((x[rows] - mean) / scale) @ w
    names = [f"PC{i}" for i in range(1, len(feats) + 1)] if method.startswith("PCA") else feats
    result = pd.concat([profiles[meta].reset_index(drop=True), pd.DataFrame(out, columns=names)], axis=1)
    result.index = profiles.index
    return result
