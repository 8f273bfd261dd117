"""cpfeatures: fast, restartable image-based profiling of Cell Painting plates.

Subpackages
-----------
io        Opera Phenix plate readers and TIFF loading.
illum     Illumination correction (plate-level function, per-image apply).
segment   Thresholds and nuclei / cells / cytoplasm segmentation.
measure   Per-object feature families (CellProfiler names and definitions).
profile   Aggregate, annotate, normalize, feature-select and score.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import CpfeaturesError

try:
    __version__ = version("cpfeatures")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["CpfeaturesError", "__version__"]
