"""Cytoplasm: CPJUMP1 module 18 (IdentifyTertiaryObjects)."""

from __future__ import annotations

import numpy as np

from .morphology import outline

__all__ = ["identify_cytoplasm"]


def identify_cytoplasm(cells: np.ndarray, nuclei: np.ndarray, shrink: bool = True) -> np.ndarray:
    """Cells minus nuclei; with ``shrink`` the nuclei lose their outline pixel first.

    Cytoplasm ``i`` is part of cell ``i`` (and nucleus ``i``). A cell whose
    nucleus fills it entirely has no cytoplasm pixels (an absent label).
    """
    keep = nuclei == 0
    if shrink:
        keep |= outline(nuclei) != 0
    return np.where(keep, cells, 0).astype(np.int32)
