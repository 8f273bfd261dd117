"""Reading plates: Opera Phenix / Operetta (Harmony), ImageXpress, Yokogawa CellVoyager, LoadData CSVs.

>>> from cpfeatures.io import read_plate
>>> plate = read_plate("data/example_plate")          # doctest: +SKIP
>>> images = plate.load_site("D08", 5)                # {"DNA": uint16 array, ...}  # doctest: +SKIP
"""

from .filenames import parse_filename
from .harmony import HarmonyIndex, parse_index
from .loaddata import load_data_plates, read_illum_files, read_load_data
from .plate import Plate, PlateWarning, Site, parse_site_key, site_key, well_name
from .read import read_plate
from .tiff import read_header, read_image

__all__ = ["Plate", "PlateWarning", "Site", "site_key", "parse_site_key", "read_plate", "well_name", "parse_index",
           "HarmonyIndex", "parse_filename", "read_image", "read_header", "read_load_data", "load_data_plates",
           "read_illum_files"]
