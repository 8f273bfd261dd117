"""Single-cell crops for deep learning, cut from the run's own corrected images and labels.

``cpfeatures run PLATE -o run.zarr --save-crops`` (or ``cpfeatures crops run.zarr PLATE``
after a run) writes a crops store: per site, ``images`` uint16 ``(cells, channels, size,
size)`` in one chunk, optional ``masks`` and an ``index`` whose rows join the single-cell
tables on ``Metadata_Plate, Metadata_Well, Metadata_Site, Metadata_ObjectNumber``
(:data:`KEYS`). Read them with :func:`iter_crops` (batches) or :class:`CropDataset`
(map-style, for ``torch.utils.data.DataLoader``); numpy only.

Geometry and scaling: see :mod:`cpfeatures.crops._extract`; layout: :mod:`cpfeatures.crops._write`.
"""

from ._command import CropSummary, crops_from_store
from ._extract import SCALE, crop_boxes, extract_crops, quantise
from ._read import CropDataset, iter_crops, open_crops, read_index
from ._site import site_crops
from ._write import FLUORESCENT, INDEX_COLUMNS, MASKS, CropError, CropSettings, CropStore

#: The columns joining a crop to its single-cell row.
KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber"]

__all__ = ["CropSettings", "CropStore", "CropError", "CropSummary", "CropDataset", "crops_from_store", "iter_crops",
           "read_index", "open_crops", "site_crops", "extract_crops", "crop_boxes", "quantise", "SCALE", "KEYS",
           "FLUORESCENT", "MASKS", "INDEX_COLUMNS"]
