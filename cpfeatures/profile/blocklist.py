"""The default blocklist: CellProfiler features known to be noisy in Cell Painting profiles.

The community list (Way, 2019, used by pycytominer and the CPJUMP1 recipe) blocks,
in the Nuclei compartment and for the five fluorescent stains: every
``Correlation_Manders`` and ``Correlation_RWC`` pair (both orders) and the three
largest granularity scales (``Granularity_14`` to ``_16``). It is generated here
from that rule rather than stored as a file.

References
----------
G. Way, "Blacklist Features - Cell Profiler", figshare (2019),
https://doi.org/10.6084/m9.figshare.10255811
"""

from __future__ import annotations

from itertools import permutations

__all__ = ["default_blocklist", "STAINS"]

#: The fluorescent Cell Painting stains of CPJUMP1 (brightfield planes are not in the list).
STAINS = ("AGP", "DNA", "ER", "Mito", "RNA")


def default_blocklist(stains=STAINS) -> list[str]:
    """Feature names of the default blocklist (55 for the five CPJUMP1 stains), sorted."""
    names = [f"Nuclei_Correlation_{kind}_{a}_{b}" for kind in ("Manders", "RWC")
             for a, b in permutations(stains, 2)]
    names += [f"Nuclei_Granularity_{scale}_{stain}" for scale in (14, 15, 16) for stain in stains]
    return sorted(names)
