"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot):
no global state, no GUI backend, safe to call from any thread.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["png_bytes", "array_png", "illum_figure", "histograms_figure", "trends_figure",
           "replicate_figure", "map_figure", "correlation_figure"]


def _figure(width: float, height: float, layout: str | None = "constrained"):
    """A figure (no pyplot). ``layout=None`` for figures placed by hand: constrained
    layout measures every text artist and doubles the drawing time of the
    figures the report draws most (histogram grids, illumination)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


#: zlib level of the PNGs: 3 writes about 2.5x faster than the default 6 for ~15% more bytes.
PNG_COMPRESSION = 3


def png_bytes(fig, dpi: int = 100) -> bytes:
    """Encode a matplotlib figure as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": PNG_COMPRESSION})
    return buf.getvalue()


def array_png(image: np.ndarray) -> bytes:
    """Encode an image array pixel for pixel (no resampling) as PNG.

    ``uint8`` gray (H, W) or RGB (H, W, 3) arrays are written as they are, with
    Pillow (matplotlib's own PNG writer); other arrays go through
    :func:`matplotlib.image.imsave` (colour-mapped / scaled to 8 bits).
    """
    image = np.ascontiguousarray(image)
    buf = io.BytesIO()
    if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        from PIL import Image

        Image.fromarray(image).save(buf, format="PNG", compress_level=PNG_COMPRESSION)
    else:
        from matplotlib.image import imsave

        imsave(buf, image, format="png")
    return buf.getvalue()


def illum_figure(functions: dict[str, np.ndarray], order: list[str] | None = None):
    """Illumination functions, one panel per channel, each with its own colour bar.

    Large functions are shown decimated (they are smooth by construction: a
    median filter of a x0.2 downsampled mean, upsampled back).
    """
    roles = [r for r in (order or []) if r in functions] + sorted(r for r in functions if r not in (order or []))
    n = len(roles)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig = _figure(3.0 * ncols, 2.7 * nrows, layout=None)
    fig.subplots_adjust(left=0.01, right=0.97, bottom=0.02, top=1 - 0.3 / (2.7 * nrows), wspace=0.25, hspace=0.2)
    for i, role in enumerate(roles):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        f = np.asarray(functions[role], dtype=np.float32)
        step = max(1, int(np.ceil(max(f.shape) / 270)))
        im = ax.imshow(f[::step, ::step], cmap="magma", interpolation="nearest",
                       extent=(0, f.shape[1], f.shape[0], 0))
        ax.set_title(f"{role}  (min {np.nanmin(f):.3g}, max {np.nanmax(f):.3g})", fontsize=8)
        ax.set_xticks([])  # pixel coordinates add nothing (the shape is in the caption) and cost time
        ax.set_yticks([])
        bar = fig.colorbar(im, ax=ax, shrink=0.85, pad=0.03)
        bar.ax.tick_params(labelsize=6)
    return fig


def histograms_figure(panels: list[tuple[str, np.ndarray]], title: str = "", ncols: int = 4):
    """Histograms, one per (name, values) panel, with the median marked.

    For 200 values or more the x range is the 0.5-99.5 percentile range so a few
    outliers do not squash the distribution; the count outside is written on the panel.
    """
    n = max(1, len(panels))
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    height = 2.3 * nrows + 0.3
    fig = _figure(3.1 * ncols, height, layout=None)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.22 / nrows, top=1 - (0.55 if title else 0.3) / height,
                        wspace=0.22, hspace=0.45)
    for i, (name, values) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        else:
            # A few outliers would squash the distribution: large samples show the 0.5-99.5 percentiles.
            lo, hi = np.percentile(v, [0.5, 99.5]) if v.size >= 200 else (v.min(), v.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            inside = v[(v >= lo) & (v <= hi)]
            ax.hist(inside, bins=50, range=(lo, hi), color="#4c72b0", histtype="stepfilled")
            med = float(np.median(v))
            ax.axvline(med, color="#c44e52", linewidth=1)
            note = f"n={v.size}, median {med:.3g}"
            if v.size - inside.size:
                note += f"\n{v.size - inside.size} outside shown range"
            ax.text(0.98, 0.95, note, ha="right", va="top", fontsize=6, transform=ax.transAxes,
                    bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5})
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def replicate_figure(corr: np.ndarray, null: np.ndarray | None, threshold: float | None, title: str,
                     label: str = "replicate correlation", null_label: str = "null (non-replicates)"):
    """Replicate (or matching) correlations against the null: the Percent Replicating picture.

    Parameters
    ----------
    corr : ndarray
        One correlation per group.
    null : ndarray, optional
        The null distribution (correlations of random non-replicate groups).
    threshold : float, optional
        The null's 95th percentile (drawn as a dashed line).
    """
    fig = _figure(6.0, 3.2)
    ax = fig.add_subplot()
    corr = np.asarray(corr, dtype=float)
    corr = corr[np.isfinite(corr)]
    values = [corr] + ([np.asarray(null, dtype=float)[np.isfinite(null)]] if null is not None else [])
    allv = np.concatenate(values) if values else np.array([0.0])
    if threshold is not None and np.isfinite(threshold):
        allv = np.append(allv, threshold)  # the threshold line is always in view
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (-1.0, 1.0)
    if hi - lo < 1e-6 * max(1.0, abs(hi)):  # (nearly) one value: bins of width ~0 would divide by zero
        lo, hi = lo - 0.1, hi + 0.1
    bins = np.linspace(lo, hi, 41)
    if null is not None and values[-1].size:
        ax.hist(values[-1], bins=bins, density=True, color="#999999", alpha=0.6, label=null_label,
                histtype="stepfilled")
    if corr.size:
        ax.hist(corr, bins=bins, density=True, color="#4c72b0", alpha=0.7, label=label, histtype="stepfilled")
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"null 95th percentile {threshold:.3f}")
    ax.set_xlabel(label, fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def map_figure(map_values: np.ndarray, p_values: np.ndarray | None, title: str, alpha: float = 0.05):
    """mAP: its histogram, and mAP against -log10 corrected p-value (the copairs picture)."""
    fig = _figure(9.0, 3.2)
    m = np.asarray(map_values, dtype=float)
    ax = fig.add_subplot(1, 2, 1)
    ax.hist(m[np.isfinite(m)], bins=np.linspace(0, 1, 41), color="#4c72b0", histtype="stepfilled")
    ax.set_xlabel("mean average precision", fontsize=8)
    ax.set_ylabel("groups", fontsize=8)
    ax.tick_params(labelsize=7)
    ax2 = fig.add_subplot(1, 2, 2)
    if p_values is not None:
        p = np.asarray(p_values, dtype=float)
        logp = -np.log10(np.clip(p, 1e-300, 1))
        sig = p < alpha
        ax2.scatter(m[~sig], logp[~sig], s=10, c="#999999", label=f"p >= {alpha}")
        ax2.scatter(m[sig], logp[sig], s=10, c="#c44e52", label=f"p < {alpha}")
        ax2.axhline(-np.log10(alpha), color="black", linestyle="--", linewidth=0.8)
        ax2.set_ylabel("-log10 corrected p-value", fontsize=8)
        ax2.legend(fontsize=7, frameon=False)
    else:
        ax2.text(0.5, 0.5, "no p-values", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("mean average precision", fontsize=8)
    ax2.set_xlim(0, 1)
    ax2.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def correlation_figure(matrix: np.ndarray, labels: list[str] | None, title: str, groups: list[str] | None = None):
    """Profile-profile Pearson correlation matrix (rows ordered by group when given)."""
    n = matrix.shape[0]
    size = min(9.0, 3.0 + 0.02 * n)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    if labels is not None and n <= 48:
        ax.set_xticks(range(n), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(n), labels, fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if groups is not None and n > 1:
        g = np.asarray(groups, dtype=object)
        edges = np.nonzero(g[1:] != g[:-1])[0] + 0.5
        for e in edges:
            ax.axhline(e, color="black", linewidth=0.4)
            ax.axvline(e, color="black", linewidth=0.4)
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, shrink=0.8)
    bar.set_label("Pearson r", fontsize=8)
    return fig


def trends_figure(trends: dict):
    """Row and column medians relative to the plate median, one row of panels per readout.

    ``trends`` maps a readout to ``(per_row, per_column)`` Series (index: row letters,
    column numbers; values: (median - plate median) / |plate median|).
    """
    n = max(1, len(trends))
    fig = _figure(9.0, 2.0 * n + 0.4, layout=None)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.28 / n, top=1 - 0.35 / (2.0 * n + 0.4), hspace=0.9,
                        wspace=0.18)
    for i, (name, (by_row, by_col)) in enumerate(trends.items()):
        for j, (series, what) in enumerate(((by_row, "row"), (by_col, "column"))):
            ax = fig.add_subplot(n, 2, 2 * i + j + 1)
            y = np.asarray(series, dtype=float) * 100
            x = np.arange(len(y))
            ax.axhline(0, color="#999999", linewidth=0.8)
            ax.plot(x, y, marker="o", markersize=3, linewidth=1, color="#4c72b0")
            step = 1 if len(x) <= 24 else 2
            ax.set_xticks(x[::step], [str(v) for v in list(series.index)[::step]], fontsize=6)
            ax.tick_params(labelsize=6)
            ax.set_ylabel("% vs median", fontsize=7)
            ax.set_title(f"{name}: median per {what}", fontsize=8)
    return fig
