"""Every Examples section in the package's docstrings runs and shows what it says (the installed package)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cpfeatures

# a ``__main__`` module runs its program when imported (``python -m``): it holds no examples
MODULES = sorted(m.name for m in pkgutil.walk_packages(cpfeatures.__path__, "cpfeatures.")
                 if not m.name.endswith(".__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
