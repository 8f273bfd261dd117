"""Per-object measurement families with CellProfiler's names and definitions."""

from .objects import Objects, as_objects

__all__ = ["Objects", "as_objects"]
