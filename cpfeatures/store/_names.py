"""Column names of exported tables: CytoTable's ``cellprofiler_csv`` conventions, or the store's own.

CytoTable (the converter the field runs on CellProfiler output before pycytominer) renames a
CellProfiler table's columns by one rule, with ``Image`` as the metadata table and ``Cells``,
``Nuclei``, ``Cytoplasm`` as compartments:

- an *identifying* column (an id: ``ImageNumber``, ``ObjectNumber``, ``Parent_Nuclei``, ...) gets
  ``Metadata_`` in front, and the table's name too unless it is an image or object number or
  already starts with ``Metadata_`` (``Parent_Nuclei`` in Cells -> ``Metadata_Cells_Parent_Nuclei``);
- any other column gets the table's name in front unless it already starts with it
  (``Count_Cells`` in Image -> ``Image_Count_Cells``, ``ImageQuality_...`` stays).

The identifying columns are CytoTable's preset ones plus the id columns pycytominer would
otherwise take for features: ``Number_Object_Number`` (a copy of the object number) and
``Children_<Objects>_Count``, named as CytoTable names them when they are passed as its
``identifying_columns`` (checked against CytoTable itself in ``tests/store/test_export_cytotable.py``).
The store's names (``--names cpfeatures``) are CellProfiler's with the compartment prefix and
``Metadata_Plate / Well / Site / ObjectNumber`` added, as exported before.
"""

from __future__ import annotations

import re

__all__ = ["NAMINGS", "IDENTIFYING", "cytotable_name", "export_name", "is_identifying"]

NAMINGS = ("cytotable", "cpfeatures")
#: CytoTable's ``cellprofiler_csv`` preset identifying columns (CytoTable 1.2.6).
PRESET_IDENTIFYING = ("ImageNumber", "ObjectNumber", "Metadata_Well", "Metadata_Plate", "Parent_Cells",
                      "Parent_Nuclei")
#: Also treated as ids here: not measurements of the cell, but pycytominer infers them as features.
EXTRA_IDENTIFYING = ("Number_Object_Number",)
_CHILDREN = re.compile(r"^Children_[A-Za-z0-9]+_Count$")
_PARENT = re.compile(r"^Parent_[A-Za-z0-9]+$")
IDENTIFYING = PRESET_IDENTIFYING + EXTRA_IDENTIFYING
_METADATA_TABLES = ("Image",)


def is_identifying(column: str) -> bool:
    """Whether a CellProfiler column (without its compartment prefix) is an id rather than a measurement."""
    return column in IDENTIFYING or bool(_CHILDREN.match(column) or _PARENT.match(column))


def cytotable_name(table: str, column: str) -> str:
    """The name CytoTable gives ``column`` of CellProfiler's ``table`` (``"Cells"``, ``"Image"``, ...).

    Parameters
    ----------
    table : str
        ``"Image"``, ``"Nuclei"``, ``"Cells"`` or ``"Cytoplasm"``.
    column : str
        The column as CellProfiler's ExportToSpreadsheet writes it (no compartment prefix:
        ``"AreaShape_Area"``, ``"Parent_Nuclei"``).

    Returns
    -------
    str

    Examples
    --------
    >>> cytotable_name("Cells", "Parent_Nuclei"), cytotable_name("Image", "Count_Cells")
    ('Metadata_Cells_Parent_Nuclei', 'Image_Count_Cells')
    >>> cytotable_name("Nuclei", "ObjectNumber"), cytotable_name("Image", "Metadata_Well")
    ('Metadata_ObjectNumber', 'Metadata_Well')
    """
    ident = is_identifying(column)
    if not ident:
        return column if column.startswith(table) else f"{table}_{column}"
    if column.startswith("Metadata_"):
        return column
    if column.startswith(table) or any(t in column for t in _METADATA_TABLES) or \
            "ObjectNumber" in column or "TableNumber" in column:
        return f"Metadata_{column}"
    return f"Metadata_{table}_{column}"


def export_name(table: str, column: str, naming: str = "cytotable") -> str:
    """An exported column's name from the store's name of it.

    The store's object-table columns carry their compartment (``Cells_Parent_Nuclei``), its Image
    columns do not (``Count_Cells``); ``Metadata_`` columns added by the readers
    (``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site``, ``Metadata_ObjectNumber``) and
    ``Metadata_ImageNumber`` are kept, except the Image table's ``Metadata_Site``, a column of
    CellProfiler's Image table that CytoTable prefixes (``Image_Metadata_Site``).

    Parameters
    ----------
    table : str
        The table the column comes from (``"Image"`` or a compartment).
    column : str
        The store's name.
    naming : {"cytotable", "cpfeatures"}

    Returns
    -------
    str

    Examples
    --------
    >>> export_name("Cytoplasm", "Cytoplasm_Parent_Cells")
    'Metadata_Cytoplasm_Parent_Cells'
    >>> export_name("Cytoplasm", "Cytoplasm_Parent_Cells", naming="cpfeatures")
    'Cytoplasm_Parent_Cells'
    """
    if naming == "cpfeatures":
        return column
    if column.startswith("Metadata_"):
        if table == "Image" and column == "Metadata_Site":
            return cytotable_name(table, column)
        return column
    if table != "Image" and column.startswith(f"{table}_"):
        return cytotable_name(table, column[len(table) + 1:])
    return cytotable_name(table, column)
