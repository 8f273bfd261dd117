"""The settings of every measurement family: one source for the functions, the registry, the
TOML defaults (``cpfeatures config --default``) and the checks of a user's settings.

Defaults are those of the CPJUMP1 pipeline (``CPJUMP1_analysis.cppipe`` modules 19-27). A
setting whose default is None is off unless given (e.g. radial intensity Zernikes); settings
marked ``toml=False`` take Python objects (arrays) and exist only for the functions.

This module imports nothing heavy: the configuration reads it without loading the kernels.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import InputError
from ..settings import NUMBER, Setting, Table, toml_table

__all__ = ["Setting", "SETTINGS", "DEFAULTS", "MODULES", "resolve", "resolve_settings", "checked", "toml_section"]


_NUM = NUMBER

#: family -> setting -> Setting.
SETTINGS: dict[str, dict[str, Setting]] = {
    "intensity": {},
    "texture": {
        "scales": Setting((3, 5, 10), (list, tuple), "pixel distances of the co-occurring pairs"),
        "gray_levels": Setting(256, (int,), "gray levels of the quantized image"),
    },
    "granularity": {
        "subsample": Setting(0.5, _NUM, "image resize factor before the spectrum"),
        "background_subsample": Setting(0.5, _NUM, "further resize for the background opening"),
        "element_size": Setting(10, (int,), "radius of the background-removing disk, pixels"),
        "spectrum_length": Setting(16, (int,), "number of erosion steps (Granularity_1..N)"),
    },
    "colocalization": {
        "threshold": Setting(15.0, _NUM, "% of each image's maximum within the object"),
        "costes": Setting(False, (bool,), "Costes' automatic thresholds (CPJUMP1: off; ~2 CPU-s/site when on)"),
        "costes_method": Setting("faster", (str,), "CellProfiler's Costes method",
                                 choices=("faster", "fast", "accurate")),
        "costes_scale": Setting(65535, _NUM, "the images' acquisition maximum (16-bit: 65535)"),
        "costes_scope": Setting("image", (str,), "thresholds from the whole images (CellProfiler) or per object "
                                "(cp-measure)", choices=("image", "object")),
    },
    "sizeshape": {
        "zernike": Setting(True, (bool,), "Zernike shape moments"),
        "zernike_degree": Setting(9, (int,), "largest n of the Zernike moments (30 moments for 9)"),
    },
    "radial": {
        "bins": Setting(4, (int,), "scaled bins from each object's centre to its edge"),
        "scaled": Setting(True, (bool,), "bins scaled to each object (False: rings of max_radius / bins pixels)"),
        "max_radius": Setting(100, _NUM, "pixels; used only when scaled = false"),
        "center_choice": Setting("centers", (str,), "with centers: their centroids, or their edges",
                                 choices=("centers", "edges")),
        "zernike": Setting(None, (int,), "intensity Zernike moments up to this degree (CPJUMP1: off)", example=9),
        "zernike_phase": Setting(False, (bool,), "also the Zernike phases"),
        "centers": Setting(None, (object,), "labels of another object set giving the centres", toml=False),
    },
    "neighbors": {
        "distance": Setting(None, _NUM, "neighbours within this many pixels", toml=False),
        "adjacent": Setting(False, (bool,), "neighbours share an edge", toml=False),
        "discarded": Setting(None, (object,), "labels including objects discarded at the border", toml=False),
    },
    "imagequality": {
        "scales": Setting((5, 10, 20, 50), (list, tuple), "spatial scales of LocalFocusScore and Correlation"),
        "blur": Setting(True, (bool,), "focus, local focus, correlation, power log-log slope"),
        "saturation": Setting(True, (bool,), "percent maximal / minimal"),
        "intensity": Setting(True, (bool,), "total, mean, median, std, MAD, min, max intensity"),
        "scaling": Setting(True, (bool,), "ImageQuality_Scaling (NaN: not a loaded image)"),
        "scalings": Setting(None, (dict,), "image name -> the scale it was divided by (65535 for 16-bit)",
                            toml=False),
    },
}

#: family -> setting -> default value.
DEFAULTS: dict[str, dict[str, Any]] = {f: {k: s.default for k, s in table.items()} for f, table in SETTINGS.items()}

#: The CellProfiler module (and CPJUMP1 module number) of each family, for the TOML comments.
MODULES = {"texture": "MeasureTexture (module 27)", "granularity": "MeasureGranularity (module 20)",
           "colocalization": "MeasureColocalization (module 19)", "sizeshape": "MeasureObjectSizeShape (module 26)",
           "radial": "MeasureObjectIntensityDistribution (module 25)",
           "imagequality": "MeasureImageQuality (module 11; CPJUMP1 disables it)"}


def _type_names(types: tuple) -> str:
    return " or ".join({list: "list", tuple: "list", int: "int", float: "float", bool: "bool", str: "str",
                        object: "array"}.get(t, t.__name__) for t in dict.fromkeys(types))


def resolve(family: str, settings: dict | None) -> dict[str, Any]:
    """A family's settings: the defaults, overridden by ``settings``, checked.

    Raises
    ------
    InputError
        An unknown family or setting (with the valid ones and the closest name), a value
        of the wrong type, or a value not among a setting's choices.
    """
    if family not in SETTINGS:
        raise InputError(f"unknown measurement family {family!r}; valid: {', '.join(SETTINGS)}")
    table = SETTINGS[family]
    given = dict(settings or {})
    out = dict(DEFAULTS[family])
    for key, value in given.items():
        if key not in table:
            close = difflib.get_close_matches(str(key), list(table), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = ", ".join(table) or "none"
            raise InputError(f"unknown {family} setting {key!r}{hint}; valid: {valid}")
        setting = table[key]
        if value is not None or setting.default is not None:
            wrong_bool = isinstance(value, bool) and bool not in setting.types and object not in setting.types
            if wrong_bool or not isinstance(value, setting.types):
                raise InputError(f"{family} setting {key!r} must be {_type_names(setting.types)}, got {value!r}")
            if setting.choices and str(value).lower() not in setting.choices:
                raise InputError(f"{family} setting {key!r} must be one of {', '.join(setting.choices)}, "
                                 f"got {value!r}")
        out[key] = value
    return out


def toml_section(family: str) -> str:
    """The ``[measure.<family>]`` table of the default settings file, with a comment per setting."""
    return toml_table(Table(f"measure.{family}", SETTINGS[family], note=MODULES[family]))


def checked(family: str):
    """Decorate a family's public function: its keyword settings are checked as :func:`resolve`
    checks them (an unknown or mistyped one is an :class:`InputError` naming the valid ones,
    where Python would only say "unexpected keyword argument")."""
    import functools
    import inspect

    def wrap(function):
        params = set(inspect.signature(function).parameters)
        table = SETTINGS[family]

        @functools.wraps(function)
        def inner(*args, **kwargs):
            unknown = [k for k in kwargs if k not in params]
            if unknown:
                resolve(family, {unknown[0]: None})  # raises, naming the valid settings
            resolve(family, {k: v for k, v in kwargs.items() if k in table})
            return function(*args, **kwargs)

        return inner

    return wrap


#: The public name of :func:`resolve` (a family's settings checked and completed with its defaults).
resolve_settings = resolve
