"""The first run on a machine: compile the numba kernels once, in parallel, before the sites start.

Every kernel is compiled on first use and cached on disk (``cache=True``). On a
fresh install every local worker would compile all of them at the same time
(about 60 CPU-s each, the same work twice on two workers) while the progress
bar stands still. Instead the kernels are split into balanced parts, by the
measured compile cost of each stage, and each worker compiles one part on a
small synthetic site; afterwards every worker loads the other parts from numba's
cache. With two workers the first run compiles for about half the time, only
what the configuration measures.
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["kernels_cached", "compile_kernels", "plan_parts", "COMPILE_SECONDS"]

#: Seconds to compile each stage's kernels from an empty cache on the reference 2-core machine
#: (numba 0.68; ``benchmarks/bench_compile.py`` prints them). Only their ratios matter: they
#: balance the parts.
COMPILE_SECONDS = {"segment": 6.5, "sizeshape": 19.8, "texture": 13.0, "granularity": 15.0, "radial": 9.9,
                   "neighbors": 7.1, "intensity": 4.6, "colocalization": 3.6, "imagequality": 1.1}


def _representatives() -> list:
    """One heavy kernel of each stage: if these are cached, the first run's compilation happened."""
    from .. import illum, measure, segment

    return [*illum.kernel_probes(), *measure.kernel_probes(), *segment.kernel_probes()]


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


def _stages(config: dict) -> list[str]:
    """The stages a run with ``config`` compiles: segmentation and each measured family."""
    from ..measure import FAMILIES, IMAGE_FAMILIES

    measure = config.get("measure", {})
    families = measure.get("families", "all")
    families = list(FAMILIES) if families == "all" else [families] if isinstance(families, str) else list(families)
    image = [f for f in measure.get("image_families", []) or [] if f in IMAGE_FAMILIES]
    return ["segment", *dict.fromkeys([*families, *image])]


def plan_parts(config: dict, n: int) -> list[list[str]]:
    """The stages split into ``n`` parts of about equal compile time (longest first, to the lightest part)."""
    parts: list[list[str]] = [[] for _ in range(max(1, n))]
    load = [0.0] * len(parts)
    for stage in sorted(_stages(config), key=lambda s: -COMPILE_SECONDS.get(s, 1.0)):
        i = int(np.argmin(load))
        parts[i].append(stage)
        load[i] += COMPILE_SECONDS.get(stage, 1.0)
    return [p for p in parts if p]


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


def _synthetic_labels(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Nuclei, Cells and Cytoplasm label images of the synthetic site's four cells."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    centres = [(0.25 * h, 0.25 * w), (0.3 * h, 0.7 * w), (0.7 * h, 0.4 * w), (0.75 * h, 0.8 * w)]
    nuclei = np.zeros(shape, np.int32)
    cells = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, 1):
        d = np.hypot(yy - cy, xx - cx)
        cells[d < 0.12 * h] = i
        nuclei[d < 0.07 * h] = i
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": np.where(nuclei > 0, 0, cells).astype(np.int32)}


def compile_kernels(config: dict | None = None, roles=None, stages: list[str] | None = None) -> None:
    """Compile (and write to numba's cache) the kernels of ``stages`` in this process.

    Parameters
    ----------
    config : dict, optional
        The run's settings (default: the defaults).
    roles : list of str, optional
        The plate's channel roles.
    stages : list of str, optional
        ``"segment"`` (illumination and segmentation) and family names; default: every
        stage the configuration runs.
    """
    from ..config import load_config
    from ..illum import apply, calculate
    from ..pipeline import process_site, site_tables

    cfg = config or load_config()
    roles = list(roles or ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"])
    stages = list(stages) if stages is not None else _stages(cfg)
    shape = (128, 128)
    site = _synthetic_raw(shape, roles)
    if stages == _stages(cfg):  # everything: the plain per-site path
        function = calculate([_synthetic_raw((1080, 1080), roles[:1])[roles[0]]], cfg.get("illum", {}))
        process_site(site, {r: function[:128, :128] for r in roles}, cfg)
        return
    if "segment" in stages:  # the illumination reduction at its real size, then one site's segmentation
        full = _synthetic_raw((1080, 1080), roles[:1])[roles[0]]
        calculate([full], cfg.get("illum", {}))
        process_site(site, None, _only(cfg, []))
    families = [s for s in stages if s != "segment"]
    if families:
        images = {r: apply(site[r]) for r in roles}
        site_tables(_synthetic_labels(shape), images, _only(cfg, families))


def _only(cfg: dict, families: list[str]) -> dict:
    """``cfg`` measuring only ``families`` (objects and image table)."""
    out = copy.deepcopy(cfg)
    measure = out.setdefault("measure", {})
    measure["families"] = [f for f in families if f != "imagequality"]
    measure["image_families"] = [f for f in measure.get("image_families", []) or [] if f in families]
    return out
