"""The ``cpfeatures`` command: each command parses its options and calls one library function."""

from ._main import main

__all__ = ["main"]
