"""Plate heatmaps as inline SVG: one ``<rect>`` per well with its tooltip, zoomable in the page.

Vector heatmaps stay sharp when zoomed, carry each well's name, perturbation
and value (a ``<title>`` per well: the browser's own tooltip, which the report's
script turns into an instant one), and cost far less to write than a
rendered figure. Colours come from matplotlib's colour maps; no script is
needed to read them.
"""

from __future__ import annotations

import numpy as np

from .layout import row_labels
from .markup import esc

__all__ = ["heatmap_svg", "colours"]

_BAD = "#d9d9d9"  # wells without a value


def colours(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """``#rrggbb`` of each value under ``cmap`` scaled to [lo, hi]; grey for NaN."""
    import matplotlib

    v = np.asarray(values, dtype=float)
    t = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(v)
    rgb = (matplotlib.colormaps[cmap](np.nan_to_num(t))[..., :3] * 255 + 0.5).astype(int)
    hexes = np.array([f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.reshape(-1, 3)], dtype=object).reshape(v.shape)
    hexes[~np.isfinite(v)] = _BAD
    return hexes


def _number(v: float, integer: bool) -> str:
    if not np.isfinite(v):
        return ""
    if integer or abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def heatmap_svg(matrix: np.ndarray, name: str, label: str = "", cmap: str = "viridis",
                tips: np.ndarray | None = None, marks: np.ndarray | None = None, integer: bool = False,
                vmin: float | None = None, vmax: float | None = None) -> str:
    """A plate heatmap as an ``<svg>`` element (rows lettered, columns numbered, colour bar).

    Parameters
    ----------
    matrix : ndarray, shape (rows, columns)
        Value per well; NaN for wells without data (grey).
    name : str
        ``data-figure`` of the SVG (tests and the page's script find maps by it).
    label : str
        Colour-bar label (the unit).
    cmap : str
        Matplotlib colour map.
    tips : ndarray of str, optional
        Tooltip line per well (e.g. ``"D08 FK-866"``); the value is appended.
    marks : ndarray of bool, optional
        Wells drawn with a red cross (e.g. a failed site).
    integer : bool
        Counts: values written without decimals.
    vmin, vmax : float, optional
        Colour limits (default: the data's).

    Returns
    -------
    str

    Examples
    --------
    >>> svg = heatmap_svg(np.array([[1.0, np.nan]]), "demo", "cells")
    >>> svg.count("<rect class=\\"w\\"")
    2
    """
    matrix = np.asarray(matrix, dtype=float)
    rows, cols = matrix.shape
    cell = 36 if cols <= 12 else 17 if cols <= 24 else 9
    left, top, gap, bar_w, right = 24, 18, 14, 12, 78
    width, height = left + cols * cell + gap + bar_w + right, top + rows * cell + 6
    finite = matrix[np.isfinite(matrix)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if not hi > lo:
        hi = lo + (abs(lo) * 0.01 or 1.0)
    fills = colours(matrix, cmap, lo, hi)
    letters = row_labels(rows)
    parts = [f'<svg class="plate" data-figure="{esc(name)}" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'data-lo="{lo:.6g}" data-hi="{hi:.6g}">']
    fs = 9 if cell >= 17 else 7
    step_c = 1 if cols <= 24 else 2
    for c in range(0, cols, step_c):
        parts.append(f'<text x="{left + c * cell + cell / 2:.1f}" y="{top - 5}" font-size="{fs}" '
                     f'text-anchor="middle">{c + 1}</text>')
    step_r = 1 if rows <= 16 else 2
    for r in range(0, rows, step_r):
        parts.append(f'<text x="{left - 5}" y="{top + r * cell + cell / 2 + 3.5:.1f}" font-size="{fs}" '
                     f'text-anchor="end">{letters[r]}</text>')
    annotate = rows * cols <= 96
    # Text colour readable on the well's colour (luminance of the fill).
    for r in range(rows):
        for c in range(cols):
            v = matrix[r, c]
            well = f"{letters[r]}{c + 1:02d}"
            tip = str(tips[r, c]) if tips is not None and tips[r, c] else well
            value = _number(v, integer)
            title = f"{tip}: {value} {label}".rstrip() if value else f"{tip}: no data"
            x, y = left + c * cell, top + r * cell
            parts.append(f'<rect class="w" x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                         f'fill="{fills[r, c]}" data-well="{well}" data-value="{value}">'
                         f"<title>{esc(title)}</title></rect>")
            if annotate and value:
                h = fills[r, c]
                lum = 0.299 * int(h[1:3], 16) + 0.587 * int(h[3:5], 16) + 0.114 * int(h[5:7], 16)
                parts.append(f'<text x="{x + (cell - 1) / 2:.1f}" y="{y + cell / 2 + 3:.1f}" font-size="9" '
                             f'text-anchor="middle" pointer-events="none" '
                             f'fill="{"#fff" if lum < 128 else "#000"}">{esc(value)}</text>')
            if marks is not None and marks[r, c]:
                a, b = x + 3, x + cell - 4
                parts.append(f'<path d="M{a} {y + 3}L{b} {y + cell - 4}M{b} {y + 3}L{a} {y + cell - 4}" '
                             f'stroke="#d62728" stroke-width="1.6" pointer-events="none"/>')
    # Colour bar: a vertical gradient with its limits.
    bx, by, bh = left + cols * cell + gap, top, rows * cell - 1
    gid = f"g-{esc(name)}"
    stops = "".join(f'<stop offset="{t:.2f}" stop-color="{colours(np.array([hi - t * (hi - lo)]), cmap, lo, hi)[0]}"/>'
                    for t in np.linspace(0, 1, 11))
    parts.append(f'<defs><linearGradient id="{gid}" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>')
    parts.append(f'<rect x="{bx}" y="{by}" width="{bar_w}" height="{bh}" fill="url(#{gid})" stroke="#999" '
                 f'stroke-width="0.5"/>')
    for t, v in ((0, hi), (0.5, (lo + hi) / 2), (1, lo)):
        parts.append(f'<text x="{bx + bar_w + 4}" y="{by + t * bh + 3.5:.1f}" font-size="9">'
                     f"{esc(_number(v, integer and float(v).is_integer()))}</text>")
    if label:
        parts.append(f'<text x="{bx + bar_w + 40}" y="{by + bh / 2:.1f}" font-size="9" text-anchor="middle" '
                     f'transform="rotate(90 {bx + bar_w + 40} {by + bh / 2:.1f})">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
