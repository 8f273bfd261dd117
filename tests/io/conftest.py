"""Fixtures of the plate-reader tests."""

from __future__ import annotations

import pytest

from cpfeatures.io import read_plate


@pytest.fixture
def harmony(bundled_plate_dir):
    """The bundled plate read from its Harmony index: the layout the other readers must reproduce."""
    return read_plate(bundled_plate_dir)
