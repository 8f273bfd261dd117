"""A store refused for other settings says which settings differ."""

from __future__ import annotations

import pytest

from cpfeatures.config import dump_config, load_config
from cpfeatures.store import Store, StoreError


def test_a_store_of_other_settings_names_them(tmp_path):
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", dump_config(load_config()))
    other = load_config(overrides={"segment": {"nuclei": {"threshold_correction": 1.5}}, "illum": {"downsample": 0.25}})
    with pytest.raises(StoreError, match=r"different settings \(\[illum\] downsample: 0.2 in the store, 0.25 now; "
                                         r"\[segment.nuclei\] threshold_correction: 1.25 in the store, 1.5 now\)"):
        Store(tmp_path / "s.zarr", mode="a").initialize("P", dump_config(other))
    st.initialize("P", dump_config(load_config()))  # the same settings resume
