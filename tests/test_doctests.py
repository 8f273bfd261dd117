"""Every Examples section in the package's docstrings runs and shows what it says (the installed package)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cpfeatures

MODULES = sorted(m.name for m in pkgutil.walk_packages(cpfeatures.__path__, "cpfeatures."))


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
