"""The Examples in cpfeatures.measure's docstrings run and print what they say (as
``pytest --doctest-modules cpfeatures/measure`` would)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cpfeatures.measure

MODULES = sorted(m.name for m in pkgutil.iter_modules(cpfeatures.measure.__path__, "cpfeatures.measure."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_every_public_family_function_has_an_example():
    for name in ("intensity", "texture", "texture_image", "granularity", "granularity_image", "sizeshape",
                 "radial", "colocalization", "neighbors", "image_quality", "measure_objects"):
        doc = getattr(cpfeatures.measure, name).__doc__
        assert "Examples\n    --------" in doc and ">>> " in doc, name
        assert "Parameters\n    ----------" in doc and "Returns\n    -------" in doc, name
