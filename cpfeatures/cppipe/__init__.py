"""Your CellProfiler pipeline as cpfeatures settings.

:func:`import_cppipe` reads an analysis pipeline (and optionally its illumination
pipeline) and returns the equivalent settings, with every module accounted for:
translated, not needed (it loads, saves, displays or exports), skipped (disabled), or
unsupported (it changes the numbers and cpfeatures does not implement it). The CLI is
``cpfeatures config --from-cppipe analysis.cppipe [--illum illum.cppipe]``.
"""

from ._import import PipelineImport, import_cppipe
from ._parse import Module, PipelineError, read_pipeline
from ._translate import Finding

__all__ = ["import_cppipe", "PipelineImport", "read_pipeline", "Module", "Finding", "PipelineError"]
