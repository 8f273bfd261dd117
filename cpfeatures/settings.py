"""The one table of settings: every ``[section]`` of a run's TOML, its defaults, types and help.

Each setting is declared once, as a :class:`Setting` in a :class:`Table`; from the tables come the
defaults the functions use (:func:`defaults`), the default settings file (``cpfeatures config
--default``, :func:`toml_table`) and the checks of a user's file (:func:`check`). The tables of
the measurement families (``[measure.texture]``, ...) are declared the same way by
:mod:`cpfeatures.measure` (``measure.SETTINGS``); :mod:`cpfeatures.config` puts the two together.

Defaults reproduce the CPJUMP1 pipelines (``CPJUMP1_illum.cppipe``, ``CPJUMP1_analysis.cppipe``).
This module imports nothing but the standard library and the errors: reading the settings
loads no kernel.

Examples
--------
>>> defaults(table("segment.nuclei"))["diameter_range"]
[10, 75]
>>> print(toml_table(table("illum")))
# Plate-level illumination functions (CPJUMP1_illum.cppipe).
[illum]
enabled = true
downsample = 0.2            # Resize x0.2, bilinear
median_filter_size = 20     # CorrectIlluminationCalculate "Median Filter"
rescale = true              # divide by the robust minimum (2nd percentile)
<BLANKLINE>
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

__all__ = ["Setting", "Table", "TABLES", "table", "defaults", "check", "toml_table", "toml_value", "NUMBER"]

#: The types of a number setting: an int is a valid float (TOML writes ``50`` for ``50.0``).
NUMBER = (int, float)


@dataclass(frozen=True)
class Setting:
    """One setting: its default, the Python types it takes, what it does.

    Attributes
    ----------
    default : object
        The default; None means off unless given (the setting is then shown commented out
        in the settings file, with ``example``).
    types : tuple of type
        The types a value may have (``bool`` is never taken for a number).
    help : str
        One line (or a few) for the settings file's comment.
    toml : bool
        Settable in a file; False: Python objects (arrays) for the functions only.
    choices : tuple of str, optional
        The values it takes (compared lower-case).
    example : object, optional
        Shown, commented out, when the default is None.
    """

    default: Any
    types: tuple
    help: str
    toml: bool = True
    choices: tuple | None = None
    example: Any = None


@dataclass(frozen=True)
class Table:
    """One ``[section]`` of the settings file.

    Attributes
    ----------
    name : str
        Its dotted name (``"segment.nuclei"``).
    settings : dict of str to Setting
        Its settings, in file order.
    comment : str
        Comment lines written above the header (without ``#``).
    note : str
        Comment on the header line.
    entries : dict, optional
        A table whose keys are the user's own (channel names, object sets): its default
        entries; any key is valid there.
    commented : tuple of str
        Entry lines written commented out after the defaults (examples).
    quote_keys : bool
        Write the entries' keys quoted (channel names hold spaces).
    """

    name: str
    settings: dict[str, Setting] = field(default_factory=dict)
    comment: str = ""
    note: str = ""
    entries: dict | None = None
    commented: tuple = ()
    quote_keys: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


def _threshold(smoothing: float, correction: float, bounds: list) -> dict[str, Setting]:
    """The threshold settings an Identify module has (CellProfiler's names, this object set's defaults)."""
    return {"threshold_method": Setting("minimum_cross_entropy", (str,), ""),
            "threshold_smoothing_scale": Setting(smoothing, NUMBER, ""),
            "threshold_correction": Setting(correction, NUMBER, ""),
            "threshold_bounds": Setting(bounds, (list,), "")}


_ROLES = ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"]

#: Every table but the measurement families', in file order.
TABLES: tuple[Table, ...] = (
    Table("channels", comment="Harmony channel name -> stain role. Roles name the feature columns\n"
                              "(Cells_Intensity_MeanIntensity_DNA). Channels not listed keep their own name.",
          entries={"HOECHST 33342": "DNA", "Alexa 488": "ER", "488 long": "RNA", "Alexa 568": "AGP",
                   "Alexa 647": "Mito", "Brightfield": "Brightfield", "Brightfield H": "HighZBF",
                   "Brightfield L": "LowZBF"}, quote_keys=True),
    Table("channel_ids", comment="Channel number -> role, used only when the plate has no index file (names\n"
                                 "then come from file names, which carry channel numbers only). Empty by default:\n"
                                 "uncomment the CPJUMP1 Phenix numbering if your export lost its index.",
          entries={}, commented=('1 = "Mito"', '2 = "AGP"', '3 = "RNA"', '4 = "ER"', '5 = "DNA"', '6 = "HighZBF"',
                                 '7 = "LowZBF"', '8 = "Brightfield"')),
    Table("run", {
        "channels": Setting(None, (list,), "Channels (roles) loaded and measured; all channels of the plate when "
                            "absent.", example=_ROLES),
        "empty_sites": Setting("fail", (str,), "a site where no nucleus is found: \"fail\" (recorded in errors/, "
                               "retried on\nresume) or \"keep\" (stored with Count_Nuclei = 0, e.g. for toxic "
                               "compounds)", choices=("fail", "keep")),
        "worker_retries": Setting(2, (int,), "a site whose worker process dies (killed, out of memory) is tried "
                                  "again on\nanother worker this many times, then recorded as failed (local "
                                  "clusters;\non --scheduler the cluster's distributed.scheduler.allowed-failures "
                                  "applies)"),
    }, comment=""),
    Table("store", {
        # codec and level are checked together by cpfeatures.config (the levels depend on the codec)
        "codec": Setting("zstd", (str,), "array compression: \"zstd\" (zarr's default), \"gzip\" (also read by\n"
                         "DuckDB's zarr extension) or \"none\""),
        "level": Setting(None, (int,), "compression level (default: the codec's own; zstd 1-22, gzip 0-9)",
                         example=3),
    }, comment="The single-cell store (Zarr v3). The codec is recorded in every array's zarr.json; a store is\n"
               "resumed with the codec it was started with."),
    Table("illum", {
        "enabled": Setting(True, (bool,), ""),
        "downsample": Setting(0.2, NUMBER, "Resize x0.2, bilinear"),
        "median_filter_size": Setting(20, NUMBER, "CorrectIlluminationCalculate \"Median Filter\""),
        "rescale": Setting(True, (bool,), "divide by the robust minimum (2nd percentile)"),
    }, comment="Plate-level illumination functions (CPJUMP1_illum.cppipe)."),
    Table("segment", {
        "nuclei_image": Setting("DNA", (str,), ""),
        "cells_image": Setting("RNA", (str,), ""),
        "shrink_nuclei": Setting(True, (bool,), "IdentifyTertiaryObjects \"shrink smaller object\""),
    }, comment="Segmentation (CPJUMP1_analysis.cppipe modules 14-18)."),
    Table("segment.nuclei", {
        "background_block_size": Setting(30, NUMBER, "module 14: \"Background\", block size 30"),
        "background_smoothing": Setting(50.0, NUMBER, "module 14: Gaussian filter, size 50 (0 disables the step)"),
        **_threshold(smoothing=3.0, correction=1.25, bounds=[0.014, 1.0]),
        "diameter_range": Setting([10, 75], (list,), "typical diameter, px; objects outside are discarded"),
        "discard_outside_diameter": Setting(True, (bool,), ""),
        "discard_border": Setting(True, (bool,), ""),
        "maxima_suppression_distance": Setting(8.0, NUMBER, ""),
        "low_resolution_maxima": Setting(True, (bool,), "only used when the minimum diameter exceeds 10 px"),
    }),
    Table("segment.cells", {
        "method": Setting("watershed_image", (str,), "or \"propagation\", \"distance_n\""),
        "distance": Setting(10, NUMBER, "distance_n: expansion in pixels"),
        "regularization": Setting(0.05, NUMBER, "propagation: weight of distance vs intensity"),
        **_threshold(smoothing=0.0, correction=1.0, bounds=[0.005, 0.014]),
        "fill_holes": Setting(True, (bool,), ""),
    }),
    Table("measure", {
        "compartments": Setting(["Nuclei", "Cells", "Cytoplasm"], (list,), ""),
        "families": Setting("all", (str, list), "or a list of: intensity, texture, granularity, colocalization,\n"
                            "sizeshape, radial, neighbors"),
        "images": Setting(None, (list,), "default: all", example=sorted(_ROLES)),
        "image_families": Setting(["texture", "granularity"], (list,), "Image-table features; add \"imagequality\" "
                                  "for\nMeasureImageQuality (focus, saturation...; CPJUMP1 disables it, ~0.7 "
                                  "CPU-s/site)"),
    }, comment="Measurements: families x compartments x images (modules 19-27)."),
)
#: Tables written after the measurement families' (MeasureObjectNeighbors: the user's object sets).
LAST_TABLES: tuple[Table, ...] = (
    Table("measure.neighbors", note="MeasureObjectNeighbors (modules 22-24): per object set, distances in\n"
                                    "pixels or \"adjacent\"; objects discarded at the border count",
          entries={"Nuclei": [1], "Cells": [5, "adjacent"]}),
)


def table(name: str) -> Table:
    """The table ``name`` (``"segment.nuclei"``)."""
    for t in (*TABLES, *LAST_TABLES):
        if t.name == name:
            return t
    raise KeyError(name)


def defaults(tab: Table) -> dict[str, Any]:
    """A table's default values (settings off by default left out), a fresh copy."""
    if tab.entries is not None:
        return copy.deepcopy(tab.entries)
    return {k: copy.deepcopy(s.default) for k, s in tab.settings.items() if s.default is not None}


def _type_names(types: tuple) -> str:
    return " or ".join({list: "list", tuple: "list", int: "int", float: "float", bool: "bool", str: "str",
                        object: "array", dict: "table"}.get(t, t.__name__) for t in dict.fromkeys(types))


def check(where: str, settings: dict[str, Setting], key: str, value, subtables: tuple = ()) -> None:
    """Check one value of a table against its setting.

    Raises
    ------
    InputError
        ``key`` is not a setting of ``where`` (with the valid ones and the closest name), the
        value is of the wrong type, or not among the setting's choices.
    """
    setting = settings.get(key)
    if setting is None or not setting.toml:
        valid = sorted({k for k, s in settings.items() if s.toml} | set(subtables))
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown setting {key!r} in {where}{hint}; valid: {', '.join(valid) or 'none'}")
    wrong_bool = isinstance(value, bool) and bool not in setting.types
    if wrong_bool or not isinstance(value, setting.types):
        raise InputError(f"setting {key!r} in {where} must be {_type_names(setting.types)}, got {value!r}")
    if setting.choices and str(value).lower() not in setting.choices:
        raise InputError(f"setting {key!r} in {where} must be one of {', '.join(setting.choices)}, got {value!r}")


def toml_value(value) -> str:
    """A value as TOML writes it (``True`` -> ``true``, a tuple -> a list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _key(name: str) -> str:
    return name if name.replace("_", "").isalnum() else f'"{name}"'


def commented_line(text: str, comment: str, width: int = 26) -> str:
    """``text`` with ``comment`` beside it (continuation lines aligned under it); above it when
    ``text`` is wider than the column."""
    if not comment:
        return text
    if len(text) > width:
        return "\n".join(f"# {c}" for c in comment.split("\n")) + "\n" + text
    first, *rest = comment.split("\n")
    lines = [f"{text.ljust(width)}  # {first}"]
    lines += [f"{'':{width}}  # {more}" for more in rest]
    return "\n".join(lines)


def toml_table(tab: Table) -> str:
    """A table as the default settings file writes it: comments, header, one line per setting."""
    lines = [f"# {c}" if c else "#" for c in tab.comment.split("\n")] if tab.comment else []
    lines.append(commented_line(f"[{tab.name}]", tab.note))
    if tab.entries is not None:
        lines += [f"{toml_value(str(k)) if tab.quote_keys else _key(str(k))} = {toml_value(v)}"
                  for k, v in tab.entries.items()]
        lines += [f"# {line}" for line in tab.commented]
    for key, s in tab.settings.items():
        if not s.toml:
            continue
        if s.default is None:
            lines.append(commented_line(f"# {key} = {toml_value(s.example)}", s.help))
        else:
            lines.append(commented_line(f"{key} = {toml_value(s.default)}", s.help))
    return "\n".join(lines) + "\n"
