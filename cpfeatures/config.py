"""Run settings: defaults reproduce the CPJUMP1 CellProfiler pipelines, a TOML file overrides them.

The defaults are written out as TOML in :data:`DEFAULT_CONFIG_TOML`, so
``cpfeatures config --default`` prints exactly what a run uses and a user
copies and edits it. :func:`load_config` merges a user file over the defaults
(tables merge key by key; other values replace).
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .measure import SETTINGS as _FAMILY_SETTINGS
from .measure import resolve_settings as _resolve_family
from .measure import toml_section

__all__ = ["DEFAULT_CONFIG_TOML", "default_config", "load_config", "merge", "dump_config", "channel_roles", "ROLES",
           "validate"]

#: The stain roles of Cell Painting (JUMP naming): feature columns use these.
ROLES = ("DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF")

# The [measure.<family>] tables come from the families' own defaults (cpfeatures.measure._defaults).
DEFAULT_CONFIG_TOML = """\
# cpfeatures settings. Defaults reproduce the CPJUMP1 CellProfiler pipelines
# (CPJUMP1_illum.cppipe and CPJUMP1_analysis.cppipe).

# Harmony channel name -> stain role. Roles name the feature columns
# (Cells_Intensity_MeanIntensity_DNA). Channels not listed keep their own name.
[channels]
"HOECHST 33342" = "DNA"
"Alexa 488" = "ER"
"488 long" = "RNA"
"Alexa 568" = "AGP"
"Alexa 647" = "Mito"
"Brightfield" = "Brightfield"
"Brightfield H" = "HighZBF"
"Brightfield L" = "LowZBF"

# Channel number -> role, used only when the plate has no index file (names
# then come from file names, which carry channel numbers only). Empty by default:
# uncomment the CPJUMP1 Phenix numbering if your export lost its index.
[channel_ids]
# 1 = "Mito"
# 2 = "AGP"
# 3 = "RNA"
# 4 = "ER"
# 5 = "DNA"
# 6 = "HighZBF"
# 7 = "LowZBF"
# 8 = "Brightfield"

[run]
# Channels (roles) loaded and measured; all channels of the plate when absent.
# channels = ["DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF"]
empty_sites = "fail"        # a site where no nucleus is found: "fail" (recorded in errors/, retried on
                            # resume) or "keep" (stored with Count_Nuclei = 0, e.g. for toxic compounds)
worker_retries = 2          # a site whose worker process dies (killed, out of memory) is tried again on
                            # another worker this many times, then recorded as failed (local clusters;
                            # on --scheduler the cluster's distributed.scheduler.allowed-failures applies)

# The single-cell store (Zarr v3). The codec is recorded in every array's zarr.json; a store is
# resumed with the codec it was started with.
[store]
codec = "zstd"              # array compression: "zstd" (zarr's default), "gzip" (also read by
                            # DuckDB's zarr extension) or "none"
# level = 3                 # compression level (default: the codec's own; zstd 1-22, gzip 0-9)

# Plate-level illumination functions (CPJUMP1_illum.cppipe).
[illum]
enabled = true
downsample = 0.2            # Resize x0.2, bilinear
median_filter_size = 20     # CorrectIlluminationCalculate "Median Filter"
rescale = true              # divide by the robust minimum (2nd percentile)

# Segmentation (CPJUMP1_analysis.cppipe modules 14-18).
[segment]
nuclei_image = "DNA"
cells_image = "RNA"
shrink_nuclei = true        # IdentifyTertiaryObjects "shrink smaller object"

[segment.nuclei]
background_block_size = 30
background_smoothing = 50.0
threshold_method = "minimum_cross_entropy"
threshold_smoothing_scale = 3.0
threshold_correction = 1.25
threshold_bounds = [0.014, 1.0]
diameter_range = [10, 75]
discard_outside_diameter = true
discard_border = true
maxima_suppression_distance = 8.0
low_resolution_maxima = true

[segment.cells]
method = "watershed_image"  # or "propagation", "distance_n"
distance = 10               # distance_n: expansion in pixels
regularization = 0.05       # propagation: weight of distance vs intensity
threshold_method = "minimum_cross_entropy"
threshold_smoothing_scale = 0.0
threshold_correction = 1.0
threshold_bounds = [0.005, 0.014]
fill_holes = true

# Measurements: families x compartments x images (modules 19-27).
[measure]
compartments = ["Nuclei", "Cells", "Cytoplasm"]
families = "all"            # or a list of: intensity, texture, granularity, colocalization,
                            # sizeshape, radial, neighbors
# images = ["AGP", "Brightfield", "DNA", "ER", "HighZBF", "LowZBF", "Mito", "RNA"]  # default: all
image_families = ["texture", "granularity"]  # Image-table features; add "imagequality" for
                            # MeasureImageQuality (focus, saturation...; CPJUMP1 disables it, ~0.7 CPU-s/site)

""" + "\n".join(toml_section(f) for f in ("texture", "granularity", "colocalization", "sizeshape", "radial",
                                             "imagequality")) + """
[measure.neighbors]         # MeasureObjectNeighbors (modules 22-24): per object set, distances in
Nuclei = [1]                # pixels or "adjacent"; objects discarded at the border count
Cells = [5, "adjacent"]
"""


def default_config() -> dict[str, Any]:
    """The default settings as a nested dict (a fresh copy each call)."""
    return tomllib.loads(DEFAULT_CONFIG_TOML)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (tables merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
                strict: bool = True) -> dict[str, Any]:
    """Defaults, merged with a TOML file and then with ``overrides``.

    ``strict`` checks every key and type against the defaults (:func:`validate`); a store's
    recorded settings are read with ``strict=False`` (they may come from another version).

    Raises
    ------
    ConfigError
        The file is missing or is not valid TOML, or a section has the wrong type.
    """
    config = default_config()
    if path is not None:
        path = Path(path)
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise ConfigError("config file not found", path) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML ({exc})", path) from None
        config = merge(config, user)
    if overrides:
        config = merge(config, overrides)
    if strict:
        validate(config, path)
    return config


#: Tables whose keys are the user's own (channel names, channel numbers, object sets).
_OPEN_TABLES = {("channels",), ("channel_ids",), ("measure", "neighbors")}
#: Settings absent from the defaults (commented out there), with the types they take.
_OPTIONAL = {("run", "channels"): (list,), ("measure", "images"): (list,), ("measure", "families"): (str, list),
             ("store", "level"): (int,)}
#: ``[store] codec`` values, and the levels each takes.
_CODEC_LEVELS = {"zstd": range(-7, 23), "gzip": range(0, 10), "none": range(0)}


def _types(value) -> tuple[type, ...]:
    if isinstance(value, bool):
        return (bool,)
    if isinstance(value, (int, float)):
        return (int, float)
    return (type(value),)


def validate(config: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Check settings against the defaults: every key known, every value of the default's type.

    Raises
    ------
    ConfigError
        Names the key (as ``[table] key``) and the valid keys, or the expected type.
    """
    def walk(user: dict, default: dict, where: tuple[str, ...]) -> None:
        table = f"[{'.'.join(where)}]" if where else "top level"
        if where in _OPEN_TABLES:
            return
        if len(where) == 2 and where[0] == "measure" and where[1] in _FAMILY_SETTINGS:
            try:  # a family's settings: checked by the family's own table (python-only ones refused)
                _resolve_family(where[1], {k: v for k, v in user.items()
                                           if k in _FAMILY_SETTINGS[where[1]] and _FAMILY_SETTINGS[where[1]][k].toml})
                unknown = [k for k in user if k not in _FAMILY_SETTINGS[where[1]] or
                           not _FAMILY_SETTINGS[where[1]][k].toml]
                if unknown:
                    _resolve_family(where[1], {unknown[0]: None})
                    raise InputError(f"setting {unknown[0]!r} of {table} is not a file setting")
            except InputError as exc:
                raise ConfigError(f"{table}: {exc}", path) from None
            return
        for key, value in user.items():
            here = (*where, key)
            optional = _OPTIONAL.get(here)
            if key not in default and optional is None:
                valid = sorted(set(default) | {k[-1] for k in _OPTIONAL if k[:-1] == where})
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown setting {key!r} in {table}{hint}; valid: {', '.join(valid)}", path)
            expected = optional or _types(default[key])
            if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
                names = " or ".join("table" if t is dict else t.__name__ for t in expected)
                raise ConfigError(f"setting {key!r} in {table} must be {names}, got {value!r}", path)
            if isinstance(value, dict):
                walk(value, default.get(key, {}), here)

    if not isinstance(config, dict):
        raise ConfigError("settings must be a table", path)
    walk(config, default_config(), ())
    _check_store(config.get("store", {}), path)


def _check_store(table: dict, path) -> None:
    """``[store] codec`` is one the store writes, ``level`` one that codec takes."""
    codec = table.get("codec", "zstd")
    if codec not in _CODEC_LEVELS:
        close = difflib.get_close_matches(str(codec), list(_CODEC_LEVELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown codec {codec!r} in [store]{hint}; codecs: {', '.join(_CODEC_LEVELS)}", path)
    level = table.get("level")
    if level is not None and level not in _CODEC_LEVELS[codec]:
        levels = _CODEC_LEVELS[codec]
        raise ConfigError(f"[store] level {level} does not apply to codec {codec!r}" if not levels else
                          f"[store] level {level} is out of range for {codec} ({levels[0]} to {levels[-1]})",
                          path)


def channel_roles(config: dict[str, Any] | None = None) -> tuple[dict[str, str], dict[int, str]]:
    """The name -> role and channel-number -> role maps of a config."""
    config = default_config() if config is None else config
    by_name = {str(k): str(v) for k, v in config.get("channels", {}).items()}
    try:
        by_id = {int(k): str(v) for k, v in config.get("channel_ids", {}).items()}
    except ValueError:
        raise ConfigError("[channel_ids] keys must be channel numbers") from None
    return by_name, by_id


def dump_config(config: dict[str, Any]) -> str:
    """Settings as TOML text (recorded in the store so a run is reproducible)."""
    import tomli_w

    return tomli_w.dumps(config)
