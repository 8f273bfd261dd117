"""Shared fixtures: paths to the real data in ``../shared`` and CellProfiler's reference run.

The real CPJUMP1 images and CellProfiler 4.2.8 outputs live beside the
repository in ``shared/`` (override with ``CPFEATURES_SHARED``). Tests that need
them are skipped, with the reason, when that folder is absent.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CPFEATURES_SHARED", REPO.parent / "shared"))
EXAMPLE_PLATE = SHARED / "data" / "cpjump1_example_plate"
CP_REF = SHARED / "reference" / "cellprofiler"
BUNDLED_PLATE = REPO / "data" / "example_plate"

# CPJUMP1 Phenix channel id -> stain role (shared/data/README.md)
CHANNEL_ROLES = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA", 6: "HighZBF", 7: "LowZBF", 8: "Brightfield"}
ROLE_CHANNELS = {v: k for k, v in CHANNEL_ROLES.items()}
REFERENCE_WELLS = ["D08", "D14", "F10", "G21", "L09", "M02", "N14"]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set CPFEATURES_SHARED)")
    return path


class CellProfilerReference:
    """Access to the real images and CellProfiler 4.2.8's outputs for the 7 shared sites."""

    wells = REFERENCE_WELLS
    roles = list(ROLE_CHANNELS)

    def __init__(self, shared: Path):
        self.shared = shared
        self.plate = _need(shared / "data" / "cpjump1_example_plate")
        self.ref = _need(shared / "reference" / "cellprofiler")

    @staticmethod
    def _rc(well: str) -> tuple[int, int]:
        return ord(well[0].upper()) - 64, int(well[1:])

    def raw_path(self, well: str, role: str) -> Path:
        r, c = self._rc(well)
        return self.plate / "Images" / f"r{r:02d}c{c:02d}f05p01-ch{ROLE_CHANNELS[role]}sk1fk1fl1.tiff"

    @lru_cache(maxsize=64)
    def raw(self, well: str, role: str) -> np.ndarray:
        """The stored uint16 image of one channel of one site."""
        import tifffile

        return tifffile.imread(self.raw_path(well, role))

    @lru_cache(maxsize=16)
    def illum(self, role: str) -> np.ndarray:
        """CellProfiler's illumination function for a channel (float32, 1080x1080)."""
        with gzip.open(self.ref / "illum" / f"EXAMPLE_Illum{role}.npy.gz") as fh:
            return np.load(fh)

    @lru_cache(maxsize=64)
    def corrected(self, well: str, role: str) -> np.ndarray:
        """CellProfiler's corrected image: clip(raw / 65535 / illum, 0, 1) computed in float32 as
        CellProfiler does (its pixel data and illumination functions are float32)."""
        img = self.raw(well, role).astype(np.float32) / np.float32(65535)
        return np.clip(img / self.illum(role).astype(np.float32), 0.0, 1.0)

    @lru_cache(maxsize=16)
    def labels(self, well: str) -> dict[str, np.ndarray]:
        """CellProfiler's label images ``Nuclei``, ``Cells``, ``Cytoplasm`` for a site."""
        with np.load(self.ref / "labels" / f"{well}_s5_labels.npz") as z:
            return {k: z[k].astype(np.int32) for k in z.files}

    @lru_cache(maxsize=8)
    def table(self, name: str) -> pd.DataFrame:
        """A CellProfiler export table (Image, Nuclei, Cells, Cytoplasm) with Metadata_Well added."""
        df = pd.read_csv(self.ref / "tables" / f"{name}.csv.gz")
        if name != "Image":
            image = self.table("Image")[["ImageNumber", "Metadata_Well"]]
            df = df.merge(image, on="ImageNumber", how="left")
        return df

    def objects_table(self, name: str, well: str) -> pd.DataFrame:
        """One site's rows of an object table, sorted by ObjectNumber."""
        t = self.table(name)
        return t[t["Metadata_Well"] == well].sort_values("ObjectNumber").reset_index(drop=True)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def example_plate_dir() -> Path:
    """The full 7-site real example plate in ``shared/``."""
    return _need(EXAMPLE_PLATE)


@pytest.fixture(scope="session")
def bundled_plate_dir() -> Path:
    """The small real plate bundled in the repository's ``data/``."""
    return _need(BUNDLED_PLATE)


@pytest.fixture(scope="session")
def bundled_run(bundled_plate_dir, tmp_path_factory) -> Path:
    """A store from running the whole bundled plate once (shared by the run and profile tests)."""
    from cpfeatures.run import run_plate

    out = tmp_path_factory.mktemp("bundled_run") / "example.zarr"
    summary = run_plate(bundled_plate_dir, out, workers=1, progress=False)
    assert summary.ok and len(summary.done) == 4
    return out


@pytest.fixture(scope="session")
def cp_ref() -> CellProfilerReference:
    return CellProfilerReference(SHARED)


# --------------------------------------------------------------------------------------
# Synthetic plates shaped like real Harmony exports
# --------------------------------------------------------------------------------------
_V5_NS = "http://www.perkinelmer.com/PEHH/HarmonyV5"
_V7_NS = "43B2A954-E3C3-47E1-B392-6635266B0DD3/HarmonyV7"
# (channel id, Harmony name, excitation, emission, channel type) as in CPJUMP1's Phenix export
CPJUMP1_CHANNELS = [
    (1, "Alexa 647", 640, 706, "Fluorescence"),
    (2, "Alexa 568", 561, 599, "Fluorescence"),
    (3, "488 long", 488, 599, "Fluorescence"),
    (4, "Alexa 488", 488, 522, "Fluorescence"),
    (5, "HOECHST 33342", 405, 456, "Fluorescence"),
    (6, "Brightfield H", 740, 0, "Brightfield"),
    (7, "Brightfield L", 740, 0, "Brightfield"),
    (8, "Brightfield", 740, 0, "Brightfield"),
]


def write_synthetic_plate(
    root: Path,
    wells=((4, 8), (4, 14)),
    fields=(1, 2),
    channels=CPJUMP1_CHANNELS,
    shape=(64, 48),
    version: int = 5,
    bom: bool = False,
    seed: int = 0,
    images_fn=None,
) -> Path:
    """Write a small Harmony export: LZW uint16 TIFFs + an index like the real ones.

    ``version=5`` writes ``Images/Index.idx.xml`` (HarmonyV5, channel fields in
    each ``<Image>``, TimepointID 0-based); ``version=7`` writes
    ``Images/Index.xml`` (HarmonyV7, channel fields in ``Maps/Map/Entry``, BOM).
    ``images_fn(row, col, field, channel_id) -> uint16 array`` overrides the
    random pixels. Returns the plate folder.
    """
    import tifffile

    rng = np.random.default_rng(seed)
    images_dir = root / "Images"
    images_dir.mkdir(parents=True, exist_ok=True)
    px = 5.979760809567617e-07
    ns = _V5_NS if version < 7 else _V7_NS
    tp = 0 if version < 7 else 1
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             f'<EvaluationInputData Version="{1 if version < 7 else 2}" xmlns="{ns}">',
             "  <User>Automation</User>", "  <InstrumentType>Phenix</InstrumentType>", "  <Plates>", "    <Plate>",
             "      <PlateID>SYNTH_PLATE</PlateID>", "      <Name>SYNTH_PLATE</Name>",
             "      <PlateTypeName>384 PerkinElmer CellCarrier Ultra</PlateTypeName>",
             "      <PlateRows>16</PlateRows>", "      <PlateColumns>24</PlateColumns>"]
    lines += [f'      <Well id="{r:02d}{c:02d}" />' for r, c in wells]
    lines += ["    </Plate>", "  </Plates>", "  <Wells>"]
    for r, c in wells:
        lines += ["    <Well>", f"      <id>{r:02d}{c:02d}</id>", f"      <Row>{r}</Row>", f"      <Col>{c}</Col>"]
        lines += [f'      <Image id="{r:02d}{c:02d}K1F{f}P1R{ch[0]}" />' for f in fields for ch in channels]
        lines += ["    </Well>"]
    lines += ["  </Wells>", "  <Maps>", "    <Map>"]
    lines += [f'      <Entry ChannelID="{ch[0]}"><FlatfieldProfile>{{"Type": "Identity"}}</FlatfieldProfile></Entry>'
              for ch in channels]
    lines += ["    </Map>"]

    def channel_fields(ch):
        cid, name, ex, em, ctype = ch
        return [f"<ChannelName>{name}</ChannelName>", "<ImageType>Signal</ImageType>",
                "<AcquisitionType>NonConfocal</AcquisitionType>", f"<ChannelType>{ctype}</ChannelType>",
                f'<ImageResolutionX Unit="m">{px!r}</ImageResolutionX>',
                f'<ImageResolutionY Unit="m">{px!r}</ImageResolutionY>',
                f"<ImageSizeX>{shape[1]}</ImageSizeX>", f"<ImageSizeY>{shape[0]}</ImageSizeY>",
                "<BinningX>2</BinningX>", "<BinningY>2</BinningY>", "<MaxIntensity>65535</MaxIntensity>",
                f'<MainExcitationWavelength Unit="nm">{ex}</MainExcitationWavelength>',
                f'<MainEmissionWavelength Unit="nm">{em}</MainEmissionWavelength>',
                '<ObjectiveMagnification Unit="">20</ObjectiveMagnification>',
                '<ObjectiveNA Unit="">1</ObjectiveNA>', '<ExposureTime Unit="s">0.01</ExposureTime>']

    if version >= 7:
        lines += ["    <Map>"]
        for ch in channels:
            lines += [f'      <Entry ChannelID="{ch[0]}">'] + ["        " + f for f in channel_fields(ch)] + [
                "      </Entry>"]
        lines += ["    </Map>"]
    lines += ["  </Maps>", "  <Images>"]
    for r, c in wells:
        for f in fields:
            for ch in channels:
                cid = ch[0]
                name = f"r{r:02d}c{c:02d}f{f:02d}p01-ch{cid}sk1fk1fl1.tiff"
                lines += ['    <Image Version="1">', f"      <id>{r:02d}{c:02d}K1F{f}P1R{cid}</id>",
                          "      <State>Ok</State>", f"      <URL>{name}</URL>", f"      <Row>{r}</Row>",
                          f"      <Col>{c}</Col>", f"      <FieldID>{f}</FieldID>", "      <PlaneID>1</PlaneID>",
                          f"      <TimepointID>{tp}</TimepointID>", f"      <ChannelID>{cid}</ChannelID>",
                          "      <FlimID>1</FlimID>"]
                if version < 7:
                    lines += ["      " + x for x in channel_fields(ch)]
                lines += ['      <PositionX Unit="m">-0.000968721</PositionX>',
                          '      <PositionY Unit="m">-0.000322907</PositionY>',
                          '      <PositionZ Unit="m">-4E-06</PositionZ>',
                          "      <AbsTime>2020-11-08T15:25:39.643-05:00</AbsTime>", "    </Image>"]
                if images_fn is not None:
                    pixels = np.asarray(images_fn(r, c, f, cid), dtype=np.uint16)
                else:
                    pixels = rng.integers(300, 4000, size=shape, dtype=np.uint16)
                tifffile.imwrite(images_dir / name, pixels, compression="lzw", photometric="minisblack")
    lines += ["  </Images>", "</EvaluationInputData>"]
    text = "\r\n".join(lines) + "\r\n"
    index_name = "Index.idx.xml" if version < 7 else "Index.xml"
    data = text.encode("utf-8")
    if bom or version >= 7:
        data = b"\xef\xbb\xbf" + data
    (images_dir / index_name).write_bytes(data)
    return root


@pytest.fixture
def make_plate(tmp_path):
    """Factory fixture: ``make_plate(**kwargs) -> Path`` writing a synthetic plate under tmp_path."""
    counter = iter(range(1000))

    def factory(**kwargs):
        return write_synthetic_plate(tmp_path / f"plate{next(counter)}", **kwargs)

    return factory


# --------------------------------------------------------------------------------------
# A real S3 API over HTTP on 127.0.0.1 (moto's server mode), for the object-storage tests
# --------------------------------------------------------------------------------------
class S3Server:
    """A moto S3 server on a free local port, with the AWS environment pointing at it.

    ``fs`` is an s3fs filesystem signed with the server's (fake) credentials;
    :meth:`bucket` makes a bucket (``public=True``: readable anonymously, as the
    Cell Painting Gallery is) and :meth:`upload` copies a local folder into it.
    """

    ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def __init__(self):
        import socket

        from moto.server import ThreadedMotoServer

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self._saved = {k: os.environ.get(k) for k in [*self.ENV, "AWS_ENDPOINT_URL"]}
        os.environ.update(self.ENV, AWS_ENDPOINT_URL=self.endpoint)  # inherited by the runs' worker processes
        import s3fs

        self.fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)

    def bucket(self, name: str, public: bool = False) -> str:
        self.fs.mkdir(name)
        if public:
            self.fs.call_s3("put_bucket_acl", Bucket=name, ACL="public-read")
        return f"s3://{name}"

    def upload(self, local: Path, url: str, public: bool = False) -> str:
        """Copy a local folder to ``url`` (objects public-read if asked); returns ``url``."""
        bucket_key = url[len("s3://"):].rstrip("/")
        for path in sorted(Path(local).rglob("*")):
            if path.is_file():
                key = f"{bucket_key}/{path.relative_to(local).as_posix()}"
                self.fs.pipe_file(key, path.read_bytes(), **({"ACL": "public-read"} if public else {}))
        return url

    def stop(self) -> None:
        self._server.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto server) on 127.0.0.1, stopped after the session's last test."""
    pytest.importorskip("moto.server")
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def tmpfs(tmp_path):
    """Factory: ``tmpfs(name, options)`` mounts a tmpfs (``"size=6656k"``, ``"ro,size=1m"``) under tmp_path,
    unmounted after the test; the test is skipped where mounting is not allowed."""
    import subprocess

    mounts = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], check=False)
