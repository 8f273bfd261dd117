"""AnnData export (``cpfeatures export --format anndata``, ``profile -o profiles.h5ad``).

anndata cannot be installed next to pandas 3 and zarr 3 (its releases that read Zarr 3 pin
pandas < 3, the older ones refuse zarr-python 3), so the files are read here by an
independent reader of the on-disk specification (anndata docs, "On-disk format"), written
from the spec and not from the writer; ``test_anndata_and_pycytominer_read_it`` runs anndata
and pycytominer themselves when ``CPFEATURES_ANNDATA_PYTHON`` names an interpreter that has
them (see docs/store.md), and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

from cpfeatures.store._anndata import export_anndata, parse_features
from cpfeatures.store import Store

SPEC = {"anndata": "0.1.0", "array": "0.2.0", "dataframe": "0.2.0", "categorical": "0.2.0",
        "string-array": "0.2.0", "dict": "0.1.0"}


def _open(path):
    return h5py.File(path, "r") if str(path).endswith(".h5ad") else zarr.open_group(str(path), mode="r")


def _attrs(node) -> dict:
    return dict(node.attrs)


def _values(node) -> np.ndarray:
    values = node[...] if isinstance(node, h5py.Dataset) else node[:]
    return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object) \
        if values.dtype.kind in "OSUT" else values


def _element(node):
    """A dataframe column per the spec: an array, or a categorical group (codes -> categories, -1 missing)."""
    kind = _attrs(node)["encoding-type"]
    assert _attrs(node)["encoding-version"] == SPEC[kind], kind
    if kind == "categorical":
        codes = _values(node["codes"])
        categories = _values(node["categories"])
        assert codes.dtype.kind == "i" and codes.max(initial=-1) < len(categories)
        return pd.Series(pd.Categorical.from_codes(codes, categories=list(categories)))
    return pd.Series(_values(node))


def read_h5ad_or_zarr(path) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(obs, X, var) of an AnnData file, checking the spec's encoding metadata on the way."""
    root = _open(path)
    assert _attrs(root)["encoding-type"] == "anndata" and _attrs(root)["encoding-version"] == "0.1.0"
    for name in ("layers", "obsm", "obsp", "varm", "varp", "uns"):
        assert _attrs(root[name]) == {"encoding-type": "dict", "encoding-version": "0.1.0"}
    frames = {}
    for axis in ("obs", "var"):
        group = root[axis]
        meta = _attrs(group)
        assert meta["encoding-type"] == "dataframe" and meta["encoding-version"] == "0.2.0"
        order = [str(c) for c in meta["column-order"]]
        frame = pd.DataFrame({c: _element(group[c]) for c in order}, columns=order)
        frame.index = pd.Index(_element(group[meta["_index"]]).astype(str))
        frames[axis] = frame
    x_attrs = _attrs(root["X"])
    assert x_attrs == {"encoding-type": "array", "encoding-version": "0.2.0"}
    x = root["X"][...] if isinstance(root["X"], h5py.Dataset) else root["X"][:]
    assert x.shape == (len(frames["obs"]), len(frames["var"]))
    return frames["obs"], x, frames["var"]


@pytest.fixture(scope="module")
def cells(bundled_run, tmp_path_factory):
    from cpfeatures.profile import aggregate, write_profiles

    root = tmp_path_factory.mktemp("anndata")
    export_anndata(bundled_run, root / "cells.h5ad")
    export_anndata(bundled_run, root / "cells.zarr", obs_names="id")
    write_profiles(aggregate(bundled_run), root / "profiles.h5ad")
    return root


@pytest.mark.parametrize("name", ["cells.h5ad", "cells.zarr"])
def test_one_row_per_cell_equal_to_the_stores_single_cells(bundled_run, cells, name):
    obs, x, var = read_h5ad_or_zarr(cells / name)
    want = Store(bundled_run).single_cells()
    ids = (want["Metadata_Plate"] + "_" + want["Metadata_Well"] + "_" + want["Metadata_Site"].astype(str) + "_"
           + want["Metadata_ObjectNumber"].astype(str))
    assert obs.index.tolist() == (ids.tolist() if name.endswith("zarr") else [str(i) for i in range(len(want))])
    assert obs["Metadata_ObjectID"].tolist() == ids.tolist()
    for c in ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber"):
        assert obs[c].astype(want[c].dtype).tolist() == want[c].tolist(), c
    assert obs["Metadata_ImageNumber"].tolist() == want["Metadata_Well"].rank(method="dense").astype(int).tolist()
    # the ids and parent links are obs, not features
    assert "Cells_Parent_Nuclei" not in var.index
    np.testing.assert_array_equal(obs["Metadata_Cells_Parent_Nuclei"], want["Cells_Parent_Nuclei"])
    features = [c for c in want.columns if not c.startswith("Metadata_") and f"Metadata_{c}" not in obs]
    assert sorted(var.index) == sorted(features)
    np.testing.assert_array_equal(x, want[list(var.index)].to_numpy(dtype=float))  # NaN where NaN
    assert obs.filter(like="Image_FileName_OrigDNA").iloc[:, 0].str.endswith("-ch5sk1fk1fl1.tiff").all()


def test_var_says_compartment_family_measurement_channel(cells, bundled_run):
    _, _, var = read_h5ad_or_zarr(cells / "cells.h5ad")
    roles = set(Store(bundled_run).info["roles"])
    parts = pd.Series(var.index).str.split("_")
    assert var["compartment"].tolist() == parts.str[0].tolist()
    assert var["family"].tolist() == parts.str[1].tolist()
    assert set(var["channel"].dropna()) == roles
    intensity = var[var["family"] == "Intensity"]
    assert (intensity["channel"].astype(str) == pd.Series(intensity.index, index=intensity.index).str.split("_").str[-1]).all()
    pair = var.loc["Cells_Correlation_Correlation_DNA_ER"]
    assert (pair["measurement"], pair["channel"], pair["channel_2"]) == ("Correlation", "DNA", "ER")
    texture = var.loc["Nuclei_Texture_Contrast_Mito_10_03_256"]
    assert (texture["measurement"], texture["channel"], texture["parameter"]) == ("Contrast", "Mito", "10_03_256")
    granularity = var.loc["Cells_Granularity_12_RNA"]
    assert pd.isna(granularity["measurement"]) and granularity["parameter"] == "12"
    shape = var.loc["Cells_AreaShape_Zernike_5_3"]
    assert pd.isna(shape["channel"]) and (shape["measurement"], shape["parameter"]) == ("Zernike", "5_3")
    assert parse_features(["Cells_Intensity_MeanIntensity_DNA"]).loc[:, "channel"].tolist() == ["DNA"]


def test_profiles_as_anndata(bundled_run, tmp_path):
    from click.testing import CliRunner

    from cpfeatures.cli import main
    from cpfeatures.profile import aggregate, write_profiles

    result = CliRunner().invoke(main, ["profile", str(bundled_run), "-o", str(tmp_path / "p.h5ad"),
                                       "--normalize", "none", "--no-feature-select"])
    assert result.exit_code == 0, result.output
    obs, x, var = read_h5ad_or_zarr(tmp_path / "p.h5ad")
    wells = aggregate(bundled_run)
    assert obs.index.tolist() == [str(i) for i in range(len(wells))]
    assert obs["Metadata_Well"].astype(str).tolist() == wells["Metadata_Well"].tolist()
    assert obs["Metadata_Object_Count"].tolist() == wells["Metadata_Object_Count"].tolist()
    np.testing.assert_allclose(x, wells[list(var.index)].to_numpy(float), rtol=0, atol=0)
    # annotations with gaps: strings with missing values become categoricals with code -1
    frame = wells.assign(Metadata_pert=["a", None, "b", "a"])
    write_profiles(frame, tmp_path / "q.zarr")
    obs, _, _ = read_h5ad_or_zarr(tmp_path / "q.zarr")
    assert obs["Metadata_pert"].isna().tolist() == [False, True, False, False]
    assert obs["Metadata_pert"].dropna().astype(str).tolist() == ["a", "b", "a"]
    # every verb reads them back (load_profiles): the same table
    from cpfeatures.errors import InputError
    from cpfeatures.profile import load_profiles

    for name in ("p.h5ad", "q.zarr"):
        back = load_profiles(tmp_path / name)
        want = wells if name == "p.h5ad" else frame
        meta = [c for c in want.columns if c.startswith("Metadata_")]
        assert back.columns.tolist() == meta + [c for c in want.columns if c not in meta]  # obs, then X
        want = want[back.columns]
        pd.testing.assert_frame_equal(back.astype(object).where(back.notna(), None),
                                      want.astype(object).where(want.notna(), None), check_dtype=False)
    (tmp_path / "bad.h5ad").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="bad.h5ad: cannot read AnnData"):
        load_profiles(tmp_path / "bad.h5ad")


def _grow(url, n_wells: int, n_fields: int, n_cells: int, n_features: int) -> Store:
    """A synthetic store (as tests/store/test_export.py grows them): every site n_cells x 3 x n_features."""
    from cpfeatures.store import SiteTables

    st = Store(url, mode="a")
    st.initialize("PLATE1", "")
    for w in range(n_wells):
        for f in range(1, n_fields + 1):
            rng = np.random.default_rng(w * 100 + f)
            tables = {"Image": pd.DataFrame({"Count_Cells": [n_cells]})}
            for comp in ("Nuclei", "Cells", "Cytoplasm"):
                frame = pd.DataFrame(rng.normal(size=(n_cells, n_features)),
                                     columns=[f"{comp}_F{i}" for i in range(n_features)])
                frame.insert(0, "ObjectNumber", np.arange(1, n_cells + 1))
                tables[comp] = frame
            st.write_site("PLATE1", f"{chr(65 + w // 24)}{w % 24 + 1:02d}", f,
                          SiteTables(tables, {"FileName_OrigDNA": f"DNA_{w}_{f}.tiff"}))
    return st


def test_memory_is_one_chunk_not_the_plate(tmp_path, monkeypatch):
    """Rows are written as they come: 24 more sites (4.6 MB more X) raise the peak of what Python holds by far
    less than the data (what HDF5 buffers is its own chunk cache; the benchmark shows the process's RSS on a
    3,456-site store)."""
    import tracemalloc

    import cpfeatures.store._anndata as ad
    import cpfeatures.store._store as store

    monkeypatch.setattr(ad, "CHUNK_BYTES", 2**18)
    monkeypatch.setattr(store, "READ_BATCH", 4)
    urls = {n: _grow(tmp_path / f"s{n}.zarr", n_wells=n // 4, n_fields=4, n_cells=40, n_features=200).url
            for n in (12, 36)}
    export_anndata(urls[12], tmp_path / "warm.h5ad")
    peaks = []
    for n, url in urls.items():
        tracemalloc.start()
        try:
            export_anndata(url, tmp_path / f"o{n}.h5ad")
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        finally:
            tracemalloc.stop()
        obs, x, _ = read_h5ad_or_zarr(tmp_path / f"o{n}.h5ad")
        assert x.shape == (n * 40, 600) and obs["Metadata_ObjectID"].is_unique
    data_mb = 24 * 3 * 40 * 200 * 8 / 1e6
    assert peaks[1] - peaks[0] < 0.25 * data_mb, (peaks, data_mb)


def test_bad_output_paths(bundled_run, tmp_path):
    from click.testing import CliRunner

    from cpfeatures.cli import main
    from cpfeatures.errors import InputError

    result = CliRunner().invoke(main, ["export", str(bundled_run), "--format", "anndata", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--format anndata writes .h5ad or .zarr" in result.output
    with pytest.raises(InputError, match="not an AnnData Zarr folder"):
        export_anndata(bundled_run, bundled_run)  # a store is never replaced
    assert Store(bundled_run).completed_sites()
    (tmp_path / "dir.h5ad").mkdir()
    with pytest.raises(InputError, match="is a folder; an .h5ad file is written here"):
        export_anndata(bundled_run, tmp_path / "dir.h5ad")


def test_no_partial_file_left_behind(bundled_run, tmp_path, monkeypatch):
    import cpfeatures.store._export as ex

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
        yield

    monkeypatch.setattr(ex, "site_rows", broken)
    for name in ("cells.h5ad", "cells.zarr"):
        with pytest.raises(RuntimeError):
            export_anndata(bundled_run, tmp_path / "out" / name)
    assert list((tmp_path / "out").iterdir()) == []


def _text(values) -> list:
    return [None if pd.isna(v) else str(v) for v in values]


ORACLE = r"""
import json, sys
import anndata, numpy as np
import pandas as pd
from pycytominer.cyto_utils.load import load_profiles
text = lambda s: [None if pd.isna(v) else str(v) for v in s]
out = {}
for path in sys.argv[1:]:
    a = anndata.read_h5ad(path) if path.endswith(".h5ad") else anndata.read_zarr(path)
    try:
        frame = load_profiles(path)
        shape = list(frame.shape)
    except ValueError as exc:  # pycytominer casts obs names to int
        shape = str(exc)
    out[path] = {"shape": list(a.shape), "obs_names": a.obs_names.tolist(), "var_names": a.var_names.tolist(),
                 "obs": {c: text(a.obs[c]) for c in a.obs.columns},
                 "x_sum": float(np.nansum(a.X)), "x_nan": int(np.isnan(a.X).sum()),
                 "var": {c: text(a.var[c]) for c in a.var.columns}, "pycytominer": shape}
try:  # scanpy, where installed: reads the file and runs a PCA on the features without NaN
    import scanpy as sc
    a = sc.read_h5ad(sys.argv[1])
    a = a[:, ~np.isnan(a.X).any(axis=0) & (np.nanstd(a.X, axis=0) > 0)].copy()
    sc.pp.scale(a)
    sc.pp.pca(a, n_comps=3)
    out["scanpy_pca"] = list(a.obsm["X_pca"].shape)
except ImportError:
    pass
print(json.dumps(out))
"""


@pytest.mark.skipif(not os.environ.get("CPFEATURES_ANNDATA_PYTHON"),
                    reason="set CPFEATURES_ANNDATA_PYTHON to a python with anndata>=0.12 and pycytominer")
def test_anndata_and_pycytominer_read_it(cells):
    paths = [str(cells / "cells.h5ad"), str(cells / "cells.zarr"), str(cells / "profiles.h5ad")]
    done = subprocess.run([os.environ["CPFEATURES_ANNDATA_PYTHON"], "-c", ORACLE, *paths], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    for path in paths:
        obs, x, var = read_h5ad_or_zarr(path)
        got = seen[path]
        assert got["shape"] == list(x.shape) and got["var_names"] == var.index.tolist()
        assert got["obs_names"] == obs.index.tolist()
        assert got["obs"] == {c: _text(obs[c]) for c in obs.columns}
        assert got["var"] == {c: _text(var[c]) for c in var.columns}
        assert got["x_nan"] == int(np.isnan(x).sum()) and np.isclose(got["x_sum"], np.nansum(x))
    # pycytominer's load_profiles reads the row-numbered file (obs and X side by side), not the id-named one
    for path in (paths[0], paths[2]):
        obs, x, _ = read_h5ad_or_zarr(path)
        assert seen[path]["pycytominer"] == [x.shape[0], x.shape[1] + obs.shape[1]]
    assert "invalid literal for int()" in seen[paths[1]]["pycytominer"]
    if "scanpy_pca" in seen:
        assert seen["scanpy_pca"] == [len(read_h5ad_or_zarr(paths[0])[0]), 3]
