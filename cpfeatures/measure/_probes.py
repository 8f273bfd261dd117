"""The numba kernels whose on-disk cache says whether the measurements were compiled on this machine."""

from __future__ import annotations

__all__ = ["kernel_probes"]


def kernel_probes() -> list:
    """One heavy numba kernel of each costly family (granularity, radial, size/shape, texture).

    A first run compiles every kernel it needs and numba caches them on disk; if these
    are cached, the warm-up of :mod:`cpfeatures.run.warmup` has nothing left to do.
    """
    from ._granularity_kernels import granular_steps
    from ._radial import _geodesic_from_centres
    from ._texture import _haralick_objects
    from ._zernike import shape_zernike

    return [granular_steps, _geodesic_from_centres, shape_zernike, _haralick_objects]
