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
from .settings import LAST_TABLES, TABLES, check, toml_table

__all__ = ["DEFAULT_CONFIG_TOML", "default_config", "load_config", "merge", "dump_config", "channel_roles", "ROLES",
           "validate"]

#: The stain roles of Cell Painting (JUMP naming): feature columns use these.
ROLES = ("DNA", "ER", "RNA", "AGP", "Mito", "Brightfield", "HighZBF", "LowZBF")

#: The measurement families whose tables the settings file shows, in file order.
_FAMILY_TABLES = ("texture", "granularity", "colocalization", "sizeshape", "radial", "imagequality")

#: The default settings file: every table of :mod:`cpfeatures.settings`, then the families' own
#: (:data:`cpfeatures.measure.SETTINGS`), each setting with its help.
DEFAULT_CONFIG_TOML = """\
# cpfeatures settings. Defaults reproduce the CPJUMP1 CellProfiler pipelines
# (CPJUMP1_illum.cppipe and CPJUMP1_analysis.cppipe).

""" + "\n".join(toml_table(t) for t in TABLES) + "\n" + "\n".join(toml_section(f) for f in _FAMILY_TABLES) + "\n" \
    + "\n".join(toml_table(t) for t in LAST_TABLES)


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


#: ``[store] codec`` values, and the levels each takes.
_CODEC_LEVELS = {"zstd": range(-7, 23), "gzip": range(0, 10), "none": range(0)}
_TABLES = {t.path: t for t in (*TABLES, *LAST_TABLES)}


def validate(config: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Check settings against the tables of :mod:`cpfeatures.settings` and the families' own.

    Every key must be a setting (or a table) of its table and every value of the setting's
    types and choices; tables whose keys are the user's own (``[channels]``) take any key.

    Raises
    ------
    ConfigError
        Names the key (as ``[table] key``) and the valid keys, or the expected type.
    """
    def walk(user: dict, where: tuple[str, ...]) -> None:
        name = f"[{'.'.join(where)}]" if where else "top level"
        tab = _TABLES.get(where)
        if tab is not None and tab.entries is not None:
            return  # the user's own keys (channel names, channel numbers, object sets)
        if len(where) == 2 and where[0] == "measure" and where[1] in _FAMILY_SETTINGS:
            _check_family(where[1], user, name)
            return
        subtables = {p[len(where)] for p in _TABLES if len(p) > len(where) and p[:len(where)] == where}
        if where == ("measure",):
            subtables |= set(_FAMILY_SETTINGS)
        for key, value in user.items():
            if key in subtables:
                if not isinstance(value, dict):
                    raise ConfigError(f"setting {key!r} in {name} must be table, got {value!r}", path)
                walk(value, (*where, key))
                continue
            try:
                check(name, tab.settings if tab is not None else {}, key, value, tuple(subtables))
            except InputError as exc:
                raise ConfigError(str(exc), path) from None

    def _check_family(family: str, user: dict, name: str) -> None:
        table = _FAMILY_SETTINGS[family]
        try:  # a family's settings: checked by the family's own table (python-only ones refused)
            _resolve_family(family, {k: v for k, v in user.items() if k in table and table[k].toml})
            unknown = [k for k in user if k not in table or not table[k].toml]
            if unknown:
                _resolve_family(family, {unknown[0]: None})
                raise InputError(f"setting {unknown[0]!r} of {name} is not a file setting")
        except InputError as exc:
            raise ConfigError(f"{name}: {exc}", path) from None

    if not isinstance(config, dict):
        raise ConfigError("settings must be a table", path)
    walk(config, ())
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
