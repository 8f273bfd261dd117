"""Per-object measurement families with CellProfiler's names and definitions.

Each family is a pure function of a label image (or prepared :class:`Objects`)
and a float image in [0, 1], returning ``{feature: per-object values}``;
:func:`measure_objects` runs families over many images into one table.
"""

from .core import FAMILIES, available_families, measure_image, measure_objects
from .intensity import intensity
from .objects import Objects, as_objects

__all__ = ["Objects", "as_objects", "intensity", "measure_objects", "measure_image", "FAMILIES",
           "available_families"]
