"""The store from other tools: dimension names, consolidated metadata, codecs, the lazy plate view.

Oracles: plain ``zarr`` + ``pandas`` reading of the documented layout (and pandas' own merge for
the single-cell join), xarray's zarr backend, and the eager readers that ``tests/store/test_store.py``
checks against the written frames.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from cpfeatures.errors import ConfigError
from cpfeatures.store import CODECS, SiteTables, Store, StoreError, open_plate, read_table

TABLES = ("Image", "Nuclei", "Cells", "Cytoplasm")


def _site(n: int, seed: int, n_features: int = 4, extra: dict | None = None) -> SiteTables:
    rng = np.random.default_rng(seed)
    tables = {"Image": pd.DataFrame({"Count_Cells": [n], "Count_Nuclei": [n]})}
    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        m = (extra or {}).get(comp, n)
        frame = pd.DataFrame(rng.normal(size=(m, n_features)), columns=[f"{comp}_F{i}" for i in range(n_features)])
        frame.insert(0, "ObjectNumber", np.arange(1, m + 1))
        tables[comp] = frame
    return SiteTables(tables, {"FileName_OrigDNA": f"dna{seed}.tiff"})


def _plain_single_cells(url) -> pd.DataFrame:
    """The oracle: every committed site read with plain zarr, compartments joined with pandas' merge."""
    root = zarr.open_group(str(url), mode="r", use_consolidated=False)
    frames = []
    keys = [k for k, g in root["sites"].groups() if g.attrs.get("complete")]
    for key in sorted(keys, key=lambda k: (k.rsplit("_f", 1)[0], int(k.rsplit("_f", 1)[1]))):
        group = root["sites"][key]
        parts = [pd.DataFrame(group[t][:], columns=root["columns"][group.attrs["columns"][t]].attrs["columns"])
                 for t in ("Cells", "Cytoplasm", "Nuclei")]
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.merge(part, on="ObjectNumber", how="outer")
        merged = merged.sort_values("ObjectNumber", kind="stable").rename(
            columns={"ObjectNumber": "Metadata_ObjectNumber"})
        merged.insert(0, "Metadata_Site", group.attrs["site"])
        merged.insert(0, "Metadata_Well", group.attrs["well"])
        merged.insert(0, "Metadata_Plate", group.attrs["plate"])
        frames.append(merged)
    out = pd.concat(frames, ignore_index=True)
    out["Metadata_ObjectNumber"] = out["Metadata_ObjectNumber"].astype(np.int64)
    return out


def _as_frame(ds: xr.Dataset) -> pd.DataFrame:
    meta = pd.DataFrame({c: ds[c].values for c in ("Metadata_Plate", "Metadata_Well", "Metadata_Site",
                                                   "Metadata_ObjectNumber")})
    return pd.concat([meta, pd.DataFrame(ds["features"].values, columns=list(ds["feature"].values))], axis=1)


# -- a real run, from other tools ------------------------------------------------------------------
def test_xarray_opens_a_finished_run(bundled_run):
    url = str(bundled_run)
    doc = json.loads((Path(url) / "zarr.json").read_text())
    nodes = doc["consolidated_metadata"]["metadata"]  # the run consolidated at its end
    assert "lock" not in nodes and {f"sites/{k}" for k in Store(url).completed_sites()} <= set(nodes)
    root = zarr.open_group(url, mode="r", use_consolidated=False)
    site = root["sites/D08_f5"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no consolidated metadata" fallback, no dtype warnings
        flat = xr.open_zarr(url, group="sites/D08_f5")
        tree = xr.open_datatree(url, engine="zarr")
    assert set(tree["sites"].children) == set(Store(url).completed_sites())
    node = tree["sites/D08_f5"]
    for table in TABLES:
        names = root["columns"][site.attrs["columns"][table]].attrs["columns"]
        plain = site[table][:]
        np.testing.assert_array_equal(flat[table].values, plain)
        assert flat[table].dims == ((f"{table}_object" if table != "Image" else "Image_row"), f"{table}_feature")
        # the column names are a coordinate every site inherits from the root
        assert list(node[table][f"{table}_feature"].values) == names
    area = node["Cells"].sel(Cells_feature="Cells_AreaShape_Area").values
    names = root["columns"][site.attrs["columns"]["Cells"]].attrs["columns"]
    np.testing.assert_array_equal(area, site["Cells"][:][:, names.index("Cells_AreaShape_Area")])
    assert tree["illum/DNA"].dims == ("y", "x")


def test_open_plate_equals_plain_zarr_and_the_eager_readers(bundled_run):
    url = str(bundled_run)
    st = Store(url)
    ds = open_plate(url)
    assert ds["features"].dims == ("cell", "feature") and ds.attrs["sites"] == st.completed_sites()
    assert ds["features"].data.numblocks == (len(st.completed_sites()), 1)  # a chunk per site
    got = _as_frame(ds.compute())
    oracle = _plain_single_cells(url)
    assert list(got.columns) == list(oracle.columns)
    pd.testing.assert_frame_equal(got, oracle, check_dtype=False)
    pd.testing.assert_frame_equal(got, st.single_cells(), check_dtype=False)
    frame = open_plate(url, as_frame=True)
    assert frame.npartitions == len(st.completed_sites())
    pd.testing.assert_frame_equal(frame.compute(), st.single_cells())
    for table in ("image", "nuclei"):
        pd.testing.assert_frame_equal(open_plate(url, table, as_frame=True).compute(), read_table(url, table))
    image = open_plate(url, "image")
    count = image["features"].sel(feature="Count_Cells").values
    np.testing.assert_array_equal(count, read_table(url, "image")["Count_Cells"].to_numpy())
    assert list(image["FileName_OrigDNA"].values) == list(read_table(url, "image")["FileName_OrigDNA"])


class _Recording(zarr.storage.WrapperStore):
    """A zarr store that notes every key read."""

    reads: list[str] = []

    async def get(self, key, prototype, byte_range=None):
        type(self).reads.append(key)
        return await super().get(key, prototype, byte_range)


def test_open_plate_reads_nothing_until_computed_then_one_site(tmp_path, monkeypatch):
    import cpfeatures.store._view as view

    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "")
    for i, well in enumerate(["B02", "B03", "C04"]):
        st.write_site("P", well, 1, _site(3 + i, i))
    reads = _Recording.reads = []
    monkeypatch.setattr(view, "_zarr_store", lambda url, options: _Recording(zarr.storage.LocalStore(url)))
    ds = open_plate(st.url)
    assert reads == []
    second = ds.isel(cell=slice(3, 7)).compute()  # the 4 cells of B03
    chunks = sorted(k for k in reads if "/c/" in k)
    assert chunks == [f"sites/B03_f1/{t}/c/0/0" for t in ("Cells", "Cytoplasm", "Nuclei")]
    pd.testing.assert_frame_equal(_as_frame(second), st.single_cells(["B03_f1"]), check_dtype=False)
    reads.clear()
    frame = open_plate(st.url, "cells", as_frame=True)
    assert reads == []
    part = frame.partitions[2].compute()
    assert sorted(k for k in reads if "/c/" in k) == ["sites/C04_f1/Cells/c/0/0"]
    pd.testing.assert_frame_equal(part.reset_index(drop=True), read_table(st.url, "cells", sites=["C04_f1"]))


def test_open_plate_odd_sites(tmp_path):
    """Sites of other columns, an empty site, a site whose compartments number different objects."""
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "")
    st.write_site("P", "A01", 1, _site(3, 1))
    st.write_site("P", "A01", 2, _site(0, 2))
    st.write_site("P", "A02", 1, _site(2, 3, n_features=6))
    st.write_site("P", "B01", 1, _site(2, 4, extra={"Nuclei": 4}))  # objects 3, 4: nuclei only
    ds = open_plate(st.url)
    assert ds["features"].data.chunks[0] == (3, 0, 2, 4)
    pd.testing.assert_frame_equal(_as_frame(ds.compute()), st.single_cells(), check_dtype=False)
    pd.testing.assert_frame_equal(_as_frame(ds.compute()), _plain_single_cells(st.url)[st.single_cells().columns],
                                  check_dtype=False)
    # (the eager readers' text columns turn to object when a site is empty; the values are the same)
    pd.testing.assert_frame_equal(open_plate(st.url, as_frame=True).compute(), st.single_cells(), check_dtype=False)
    pd.testing.assert_frame_equal(open_plate(st.url, "cytoplasm", as_frame=True).compute(),
                                  read_table(st.url, "cytoplasm"), check_dtype=False)
    empty = Store(tmp_path / "e.zarr", mode="a")
    empty.initialize("P", "")
    assert open_plate(empty.url).sizes["cell"] == 0 and len(open_plate(empty.url, as_frame=True).compute()) == 0
    with pytest.raises(StoreError, match="unknown table"):
        open_plate(st.url, "organelles")


# -- consolidated metadata: for others, never trusted here -----------------------------------------
def test_consolidated_metadata_never_hides_new_sites(tmp_path):
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "")
    st.write_site("P", "A01", 1, _site(3, 1))
    st.consolidate()
    Store(st.url, mode="a").write_site("P", "A02", 1, _site(2, 2))  # a worker of a later run
    stale = zarr.open_group(st.url, mode="r")  # zarr trusts the consolidated copy by default...
    assert sorted(stale["sites"].group_keys()) == ["A01_f1"]
    assert Store(st.url).completed_sites() == ["A01_f1", "A02_f1"]  # ...cpfeatures does not
    assert len(read_table(st.url, "cells")) == 5 and open_plate(st.url).sizes["cell"] == 5
    st2 = Store(st.url, mode="a")
    st2.initialize("P", "")  # a resume starts: the consolidated copy goes
    assert "consolidated_metadata" not in json.loads((Path(st.url) / "zarr.json").read_text())
    st2.consolidate()  # and comes back at its end, with every site
    assert sorted(zarr.open_group(st.url, mode="r")["sites"].group_keys()) == ["A01_f1", "A02_f1"]


def test_sites_of_different_columns_get_no_root_coordinate(tmp_path):
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "")
    st.write_site("P", "A01", 1, _site(3, 1))
    st.consolidate()
    assert list(zarr.open_group(st.url, mode="r")["Cells_feature"][:])[:2] == ["ObjectNumber", "Cells_F0"]
    st.write_site("P", "A02", 1, _site(2, 2, n_features=6))
    st.consolidate()
    root = zarr.open_group(st.url, mode="r")
    assert "Cells_feature" not in root and "Image_feature" in root  # Image's columns still agree
    tree = xr.open_datatree(st.url, engine="zarr")  # sites of two widths: no coordinate to disagree with
    assert tree["sites/A02_f1"]["Cells"].shape == (2, 7)


def test_old_stores_without_dimension_names_still_read(tmp_path):
    st = Store(tmp_path / "s.zarr", mode="a")
    st.initialize("P", "[x]\na = 1\n")
    st.write_site("P", "A01", 1, _site(3, 1))
    want = read_table(st.url, "cells")
    for path in Path(st.url).rglob("zarr.json"):  # what cpfeatures wrote before dimension names
        doc = json.loads(path.read_text())
        if doc.get("node_type") == "array":
            doc.pop("dimension_names", None)
            path.write_text(json.dumps(doc))
    pd.testing.assert_frame_equal(read_table(st.url, "cells"), want)
    pd.testing.assert_frame_equal(open_plate(st.url, "cells", as_frame=True).compute(), want)
    assert Store(st.url).verify().empty


# -- codecs -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_sites(bundled_run):
    """Two real sites of the bundled run: (attrs, arrays), to write again with other codecs."""
    st = Store(bundled_run)
    keys = st.completed_sites()[:2]
    names = lambda k: list(st.site_attrs(k)["columns"])  # noqa: E731
    return st, [(k, a, arr) for k, a, arr, _ in st.read_sites(keys, names)]


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_stores_the_same_values(tmp_path, real_sites, codec):
    source, sites = real_sites
    config = f'[store]\ncodec = "{codec}"\n'
    st = Store(tmp_path / f"{codec}.zarr", mode="a")
    st.initialize("CPJUMP1_EXAMPLE", config)
    st.write_illum({"DNA": np.linspace(0.5, 2, 36).reshape(6, 6)})
    for key, attrs, arrays in sites:
        tables = {t: pd.DataFrame(arrays[t], columns=source.columns(attrs["columns"][t])) for t in arrays}
        st.write_site(attrs["plate"], attrs["well"], attrs["site"], SiteTables(tables, attrs["image_metadata"]))
    # zstd frames carry their own checksums: a corrupted chunk fails to decode instead of reading as numbers
    want = {"zstd": [{"name": "zstd", "configuration": {"level": 0, "checksum": True}}],
            "gzip": [{"name": "gzip", "configuration": {"level": 5}}], "none": []}[codec]
    for key, attrs, arrays in sites:
        for table, values in arrays.items():
            meta = json.loads((Path(st.url) / "sites" / key / table / "zarr.json").read_text())
            assert meta["codecs"][1:] == want, (codec, meta["codecs"])  # after the "bytes" serializer
            np.testing.assert_array_equal(zarr.open_array(f"{st.url}/sites/{key}/{table}", mode="r")[:], values)
    illum = json.loads((Path(st.url) / "illum" / "DNA" / "zarr.json").read_text())
    assert illum["codecs"][1:] == want and illum["dimension_names"] == ["y", "x"]
    pd.testing.assert_frame_equal(read_table(st.url, "cells"), read_table(source, "cells", sites=[k for k, *_ in sites]))
    assert st.verify().empty and Store(st.url).codec == {"codec": codec, "level": None}
    if codec == "gzip":  # a level, too
        other = Store(tmp_path / "g9.zarr", mode="a")
        other.initialize("P", '[store]\ncodec = "gzip"\nlevel = 9\n')
        other.write_site("P", "A01", 1, _site(3, 1))
        meta = json.loads((Path(other.url) / "sites" / "A01_f1" / "Cells" / "zarr.json").read_text())
        assert meta["codecs"][1:] == [{"name": "gzip", "configuration": {"level": 9}}]


def test_resume_keeps_the_codec_and_old_stores_resume(tmp_path):
    from cpfeatures.config import default_config, dump_config, load_config

    st = Store(tmp_path / "g.zarr", mode="a")
    gzip = load_config(overrides={"store": {"codec": "gzip"}})
    st.initialize("P", dump_config(gzip))
    with pytest.raises(StoreError, match="different settings"):
        Store(st.url, mode="a").initialize("P", dump_config(default_config()))
    # a store from before [store] existed (its settings have no such table) resumes with the defaults
    old = default_config()
    del old["store"]
    before = Store(tmp_path / "old.zarr", mode="a")
    before.initialize("P", dump_config(old))
    Store(before.url, mode="a").initialize("P", dump_config(default_config()))
    assert Store(before.url).codec == {"codec": "zstd", "level": None}
    with pytest.raises(StoreError, match="different settings"):
        Store(before.url, mode="a").initialize("P", dump_config(gzip))


def test_unknown_codec_is_a_config_error(tmp_path):
    from cpfeatures.config import load_config

    path = tmp_path / "settings.toml"
    path.write_text('[store]\ncodec = "blosc"\n')
    with pytest.raises(ConfigError, match=r"settings.toml: unknown codec 'blosc' in \[store\]; codecs: zstd, gzip"):
        load_config(path)
    path.write_text('[store]\ncodec = "gzip"\nlevel = 12\n')
    with pytest.raises(ConfigError, match="level 12 is out of range for gzip"):
        load_config(path)
