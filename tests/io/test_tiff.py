"""Image files as a plate holds them (io/tiff.py): one plane per file, or a clear refusal."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from cpfeatures.errors import ImageError
from cpfeatures.io import read_header, read_image, read_plate


def _stack(path, planes: int = 3, shape=(20, 20)) -> None:
    with tifffile.TiffWriter(path) as writer:
        for i in range(planes):
            writer.write(np.full(shape, i, np.uint16))


def test_a_stack_is_refused_not_read_as_its_first_plane(tmp_path):
    _stack(tmp_path / "z.tiff")
    with pytest.raises(ImageError, match=r"z.tiff: the TIFF holds 3 planes \(a Z stack or a time series\?\)"):
        read_image(tmp_path / "z.tiff")
    assert read_header(tmp_path / "z.tiff") == ((3, 20, 20), np.dtype("uint16"))


def test_a_single_plane_reads_as_before(tmp_path):
    tifffile.imwrite(tmp_path / "one.tiff", np.arange(400, dtype=np.uint16).reshape(20, 20))
    np.testing.assert_array_equal(read_image(tmp_path / "one.tiff", (20, 20), "uint16"),
                                  np.arange(400, dtype=np.uint16).reshape(20, 20))


def test_one_stack_costs_its_site(bundled_plate_dir, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    (dna,) = sorted((plate / "Images").glob("r04c14f05p01-ch5*.tiff"))
    _stack(dna, 3, tifffile.imread(dna).shape)  # D14's DNA image becomes a 3-plane stack
    p = read_plate(plate, strict=False)
    with pytest.raises(ImageError, match="holds 3 planes"):
        p.load_site("D14", 5)  # never measured as its first plane
    assert set(p.load_site("D08", 5)) == set(p.roles)  # the other sites read as before


def test_a_plate_of_stacks_is_refused(bundled_plate_dir, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    for image in (plate / "Images").glob("*.tiff"):
        _stack(image, 2, tifffile.imread(image).shape)
    with pytest.raises(ImageError, match=r"single-plane 2-D images, got shape \(2, 540, 540\)"):
        read_plate(plate)


def test_inspect_says_what_it_read_and_deep_decodes_the_pixels(bundled_plate_dir, tmp_path):
    """A truncated pixel block passes a header check: plain inspect says pixels were not read, --deep finds it."""
    import subprocess
    import sys

    plate = tmp_path / "plate"
    shutil.copytree(bundled_plate_dir, plate)
    (dna,) = sorted((plate / "Images").glob("r04c14f05p01-ch5*.tiff"))
    data = dna.read_bytes()
    dna.write_bytes(data[:len(data) - 20000])  # the header is whole, the pixel data is not
    cli = [sys.executable, "-m", "cpfeatures.cli", "inspect", str(plate)]
    plain = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "pixels not read (--deep decodes every image)" in plain.stdout
    deep = subprocess.run(cli + ["--deep"], capture_output=True, text=True, timeout=120)
    assert deep.returncode == 2 and "Traceback" not in deep.stderr
    assert deep.stderr.strip() == f"error: {dna}: truncated or corrupt TIFF" + deep.stderr.strip().split(
        "truncated or corrupt TIFF", 1)[1]
    dna.write_bytes(data)
    whole = subprocess.run(cli + ["--deep", "--json"], capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0 and '"checked": "pixels"' in whole.stdout
