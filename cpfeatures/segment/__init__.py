"""Segmentation as CPJUMP1's CellProfiler pipeline does it: nuclei, cells, cytoplasm.

>>> from cpfeatures.segment import segment_site
>>> labels = segment_site({"DNA": dna_uint16, "RNA": rna_uint16}, illum=illum_by_role)  # doctest: +SKIP
>>> labels["Nuclei"], labels["Cells"], labels["Cytoplasm"]                             # doctest: +SKIP
"""

from . import threshold
from .cells import CELLS_DEFAULTS, identify_cells
from .cytoplasm import identify_cytoplasm
from .nuclei import NUCLEI_DEFAULTS, declump_shape, identify_nuclei, subtract_background
from .site import DEFAULT_SETTINGS, segment_site

__all__ = ["segment_site", "identify_nuclei", "identify_cells", "identify_cytoplasm", "declump_shape",
           "subtract_background", "threshold", "DEFAULT_SETTINGS", "NUCLEI_DEFAULTS", "CELLS_DEFAULTS",
           "kernel_probes"]


def kernel_probes() -> list:
    """The numba kernel whose on-disk cache says whether segmentation was compiled on this machine."""
    from .watershed import _flood

    return [_flood]
