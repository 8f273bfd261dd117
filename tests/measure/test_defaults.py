"""One source of defaults per family (_defaults.py): the functions' signatures, the registry used
by measure_objects, the TOML of `cpfeatures config --default`, and the checks of user settings."""

from __future__ import annotations

import inspect
import tomllib

import numpy as np
import pytest

from cpfeatures import measure
from cpfeatures.config import DEFAULT_CONFIG_TOML, load_config
from cpfeatures.errors import ConfigError, InputError
from cpfeatures.measure._defaults import DEFAULTS, SETTINGS

FUNCTIONS = {"intensity": [measure.intensity], "texture": [measure.texture, measure.texture_image],
             "granularity": [measure.granularity, measure.granularity_image], "sizeshape": [measure.sizeshape],
             "radial": [measure.radial], "colocalization": [measure.colocalization],
             "neighbors": [measure.neighbors], "imagequality": [measure.image_quality]}


#: Settings of a family's table that its single-image function has no use for.
NOT_FUNCTION_SETTINGS = {"imagequality": {"scalings"}}  # the scale of each named image of a site


@pytest.mark.parametrize("family", list(FUNCTIONS))
def test_function_defaults_are_the_registry(family):
    for function in FUNCTIONS[family]:
        params = inspect.signature(function).parameters
        settings = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
        table = {k: v for k, v in DEFAULTS[family].items() if k not in NOT_FUNCTION_SETTINGS.get(family, set())}
        assert settings == table, function.__name__


def test_toml_defaults_are_the_registry():
    cfg = tomllib.loads(DEFAULT_CONFIG_TOML)["measure"]
    for family, table in SETTINGS.items():
        if family in ("intensity", "neighbors"):
            continue
        file_settings = {k: s.default for k, s in table.items() if s.toml and s.default is not None}
        got = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg[family].items()}
        assert got == file_settings, family
    # the CPJUMP1 values (CPJUMP1_analysis.cppipe modules 19-27)
    assert DEFAULTS["granularity"]["subsample"] == 0.5 and DEFAULTS["texture"]["scales"] == (3, 5, 10)
    assert DEFAULTS["colocalization"]["threshold"] == 15.0 and DEFAULTS["radial"]["bins"] == 4


def test_the_run_uses_the_same_defaults(cp_ref):
    """measure_objects with no settings = with the TOML's: one answer, whichever door."""
    labels = cp_ref.labels("M02")["Cells"][300:420, 300:420]
    image = {"DNA": cp_ref.corrected("M02", "DNA")[300:420, 300:420]}
    plain = measure.measure_objects(labels, image, families=["texture", "granularity", "radial"])
    tables = {k: v for k, v in load_config()["measure"].items() if isinstance(v, dict) and k != "neighbors"}
    toml = measure.measure_objects(labels, image, families=["texture", "granularity", "radial"], settings=tables)
    np.testing.assert_array_equal(plain.to_numpy(), toml.to_numpy())
    direct = measure.granularity(labels, image["DNA"])["Granularity_4"]
    np.testing.assert_array_equal(plain["Granularity_4_DNA"], direct[plain["ObjectNumber"] - 1])


TYPOS = [("texture", {"scale": 5}, "did you mean 'scales'"), ("radial", {"bin": 8}, "did you mean 'bins'"),
         ("sizeshape", {"zernik": False}, "did you mean 'zernike'"),
         ("colocalization", {"thresh": 10}, "did you mean 'threshold'"),
         ("granularity", {"radius": 3}, "valid: subsample"), ("intensity", {"gain": 2}, "valid: none"),
         ("imagequality", {"scale": [5]}, "did you mean 'scales'"), ("neighbors", {"distanse": 3}, "did you mean")]


@pytest.mark.parametrize("family, settings, hint", TYPOS)
def test_a_mistyped_setting_is_refused_everywhere(family, settings, hint):
    labels = np.zeros((12, 12), int)
    labels[2:8, 2:8] = 1
    image = np.full((12, 12), 0.5)
    function = FUNCTIONS[family][0]
    args = {"sizeshape": (labels,), "neighbors": (labels,), "colocalization": (labels, image, image),
            "imagequality": (image,)}.get(family, (labels, image))
    with pytest.raises(InputError, match=f"unknown {family} setting {next(iter(settings))!r}.*{hint}"):
        function(*args, **settings)
    if family not in ("imagequality", "neighbors", "intensity"):
        with pytest.raises(InputError, match=hint):
            measure.measure_objects(labels, {"A": image}, families=[family], settings={family: settings})
        with pytest.raises(ConfigError, match=f"\\[measure.{family}\\].*{hint}"):
            load_config(overrides={"measure": {family: settings}})


def test_wrong_types_and_choices_are_refused():
    labels = np.zeros((12, 12), int)
    labels[2:8, 2:8] = 1
    with pytest.raises(InputError, match="'bins' must be int"):
        measure.radial(labels, np.full((12, 12), 0.5), bins="4")
    with pytest.raises(InputError, match="costes_method' must be one of faster, fast, accurate"):
        measure.colocalization(labels, np.ones((12, 12)) * 0.5, np.ones((12, 12)) * 0.2, costes_method="quick")
    with pytest.raises(ConfigError, match="zernike' must be bool"):
        load_config(overrides={"measure": {"sizeshape": {"zernike": "yes"}}})
