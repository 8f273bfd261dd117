"""The first run on a machine: compile the numba kernels once, before the workers start.

Every kernel is compiled on first use and cached on disk (``cache=True``). On a
fresh install each local worker would compile all of them at the same time
(about 40 CPU-s and a few hundred MB each) while the progress bar stands
still; compiling them once in the client, on a small synthetic site, lets the
workers load them from the cache instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernels_cached", "compile_kernels"]


def _representatives() -> list:
    """One heavy kernel of each stage: if these are cached, the first run's compilation happened."""
    from .illum import _sliding_median
    from .measure._granularity import granular_steps
    from .measure.radial import _geodesic_from_centres
    from .measure.sizeshape import _zernike
    from .measure.texture import _haralick_objects
    from .segment.watershed import _flood

    return [_sliding_median, granular_steps, _geodesic_from_centres, _zernike, _haralick_objects, _flood]


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds compiled code for the current sources (best effort:
    numba's cache index is private API, so any surprise answers False)."""
    try:
        for kernel in _representatives():
            if not kernel._cache._cache_file._load_index():  # empty: never compiled, or stale
                return False
        return True
    except Exception:
        return False


def _synthetic_raw(shape: tuple[int, int], roles, seed: int = 0) -> dict[str, np.ndarray]:
    """uint16 images with a few bright round 'cells' on a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    h, w = shape
    centres = [(0.25 * h, 0.25 * w), (0.3 * h, 0.7 * w), (0.7 * h, 0.4 * w), (0.75 * h, 0.8 * w)]
    out = {}
    for role in roles:
        image = rng.normal(800.0, 30.0, shape)
        for cy, cx in centres:
            d = np.hypot(yy - cy, xx - cx)
            image += np.where(d < 0.07 * h, 6000.0, 0.0) + np.where(d < 0.12 * h, 1500.0, 0.0)
        out[role] = np.clip(image, 0, 65535).astype(np.uint16)
    return out


def compile_kernels(config: dict | None = None, roles=None) -> None:
    """Run the illumination reduction and one small synthetic site through every stage, so each
    kernel a plate run uses is compiled (and written to numba's cache) in this process."""
    from .config import load_config
    from .illum import calculate
    from .pipeline import process_site

    cfg = config or load_config()
    roles = list(roles or ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"])
    full = _synthetic_raw((1080, 1080), roles[:1])[roles[0]]  # the illumination path at its real size
    function = calculate([full], cfg.get("illum", {}))
    site = _synthetic_raw((128, 128), roles)
    process_site(site, {r: function[:128, :128] for r in roles}, cfg)
