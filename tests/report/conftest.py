"""Helpers for the report tests: a strict reading of the HTML, and synthetic stores with failures."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpfeatures.errors import ImageError
from cpfeatures.store import SiteTables, Store

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Section:
    id: str
    images: list = field(default_factory=list)  # (data-figure, class, decoded PNG bytes)
    text: list = field(default_factory=list)
    maps: dict = field(default_factory=dict)  # SVG plate map data-figure -> {well: (value text, tooltip)}


class ReportParser(HTMLParser):
    """Reads the report with the standard library's HTML parser and checks that every element
    is closed in order, that images are inline PNGs, that the only script is inline (no src), and
    collects text, images and SVG plate maps (each well's value and tooltip) per section."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.sections: dict[str, Section] = {}
        self.current: Section | None = None
        self.problems: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self.all_text: list[str] = []
        self.doctype = None
        self.scripts: list[str] = []
        self.map: dict | None = None
        self.rect: list | None = None
        self.in_title = False
        self.in_script = False

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag in ("link", "iframe", "object", "embed", "base", "frame") or (tag == "script" and "src" in a):
            self.external.append(tag)
        if tag == "script":
            self.in_script = True
            self.scripts.append("")
        if tag == "svg" and self.current is not None:
            self.map = self.current.maps.setdefault(a.get("data-figure"), {})
        if tag == "rect" and self.map is not None and a.get("data-well"):
            self.rect = [a["data-well"], a.get("data-value", ""), ""]
            self.map[a["data-well"]] = self.rect
        if tag == "title" and self.rect is not None:
            self.in_title = True
        for key in ("href", "src"):
            value = a.get(key) or ""
            if value and not value.startswith(("data:image/png;base64,", "#")):
                self.external.append(value[:80])
        if tag == "section":
            self.current = self.sections.setdefault(a.get("id"), Section(a.get("id")))
        if tag == "img":
            src = a.get("src", "")
            png = base64.b64decode(src.split(",", 1)[1], validate=True) if src.startswith("data:image/png;base64,") \
                else b""
            if self.current is None:
                self.problems.append(f"image outside a section: {a.get('data-figure')}")
            else:
                self.current.images.append((a.get("data-figure"), a.get("class"), png))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.problems.append(f"end tag for void element {tag}")
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "section":
            self.current = None
        if tag == "svg":
            self.map = None
        if tag == "rect":
            self.rect = None
        if tag == "title":
            self.in_title = False
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            self.scripts[-1] += data
            return
        if self.in_title and self.rect is not None:
            self.rect[2] += data
        self.all_text.append(data)
        if self.current is not None:
            self.current.text.append(data)


@dataclass
class Report:
    path: Path
    source: str
    parser: ReportParser

    @property
    def sections(self) -> dict[str, Section]:
        return self.parser.sections

    def text(self, section: str | None = None) -> str:
        parts = self.parser.all_text if section is None else self.sections[section].text
        return " ".join(" ".join(parts).split())

    def maps(self, section: str | None = None) -> dict:
        """SVG plate maps: data-figure -> {well: [well, value text, tooltip]}."""
        secs = self.sections.values() if section is None else [self.sections[section]]
        return {name: m for s in secs for name, m in s.maps.items()}

    def images(self, section: str | None = None) -> list:
        secs = self.sections.values() if section is None else [self.sections[section]]
        return [img for s in secs for img in s.images]


def read_report(path) -> Report:
    """Parse a report strictly; fail on unbalanced tags, external assets or images that are not PNGs."""
    from PIL import Image

    path = Path(path)
    source = path.read_text(encoding="utf-8")
    parser = ReportParser()
    parser.feed(source)
    parser.close()
    assert parser.doctype and parser.doctype.lower() == "doctype html"
    assert parser.problems == [], parser.problems[:5]
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    assert parser.external == [], f"external references: {parser.external[:5]}"
    # No address anywhere outside the inline images (which are base64: any 4 letters may occur in them),
    # and a script that asks for nothing.
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", source)
    assert not re.search(r"(?i)\b(?:https?|ftp)://|//[a-z0-9.-]+\.[a-z]{2,}/|url\((?!#)", text), \
        re.search(r"(?i)\b(?:https?|ftp)://|url\((?!#)", text)
    for script in parser.scripts:
        assert not re.search(r"fetch\(|XMLHttpRequest|import\(|WebSocket|EventSource|sendBeacon|\.src\s*=", script)
    for name, _, png in (img for s in parser.sections.values() for img in s.images):
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG"
            im.load()  # decodes every pixel: a truncated stream raises here
            assert im.size[0] > 10 and im.size[1] > 10, name
    return Report(path, source, parser)


def png_array(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


# -- synthetic stores --------------------------------------------------------------------------------

NASTY = '<script>alert("x")</script> & <b>'


def _site(n: int, seed: int, quality: bool) -> SiteTables:
    rng = np.random.default_rng(seed)
    image = {"Count_Cells": [n], "Count_Nuclei": [n], "Count_Cytoplasm": [n]}
    if quality:
        image.update({"ImageQuality_FocusScore_DNA": [rng.uniform(0.1, 0.5)],
                      "ImageQuality_PowerLogLogSlope_DNA": [rng.uniform(-2.5, -1.5)],
                      "ImageQuality_PercentMaximal_DNA": [rng.uniform(0, 0.1)],
                      "ImageQuality_FocusScore_RNA": [rng.uniform(0.1, 0.5)]})
    tables = {"Image": pd.DataFrame(image)}
    for comp in ("Nuclei", "Cells", "Cytoplasm"):
        frame = pd.DataFrame({
            f"{comp}_Location_Center_X": rng.uniform(0, 100, n),
            f"{comp}_AreaShape_Area": rng.gamma(5, 100, n),
            f"{comp}_Intensity_MeanIntensity_DNA": rng.lognormal(-3, 0.3, n),
            f"{comp}_Texture_Contrast_RNA_3_00_256": rng.normal(size=n),
        })
        frame.insert(0, "ObjectNumber", np.arange(1, n + 1))
        tables[comp] = frame
    return SiteTables(tables, {"FileName_OrigDNA": f"dna{seed}.tiff"})


def make_store(path: Path, wells=("B03", "B04", "C10", "H12"), fields=(1, 2), failed=(("C10", 2), ("H12", 1)),
               quality: bool = True, illum: bool = True, plate_path: str | None = None) -> Path:
    """A store shaped like a run's: some sites written, others failed with an error recorded.

    The plate id, a failure message and the settings text carry HTML special characters.
    """
    st = Store(path, mode="a")
    extra = {"roles": ["DNA", "RNA", "AGP"]}
    if plate_path is not None:
        extra["plate_path"] = plate_path
    st.initialize(f"SYNTH {NASTY}", f'[run]\nnote = "{NASTY}"\n'.replace('"x"', "'x'"), **extra)
    if illum:
        yy, xx = np.mgrid[0:60, 0:80]
        dome = 1 + np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 800)
        st.write_illum({"DNA": dome, "RNA": dome * 1.5, "AGP": dome[::-1]})
    failed = set(failed)
    seed = 0
    for well in wells:
        for f in fields:
            seed += 1
            if (well, f) in failed:
                st.record_error(well, f, ImageError(f"truncated TIFF {NASTY}", f"/plate/{well}_f{f}.tiff"))
            else:
                st.write_site(f"SYNTH {NASTY}", well, f, _site(20 + 3 * seed, seed, quality))
    return path


def make_counted_store(path: Path, counts: dict, failed=(), plate_id: str = "P1", seed: int = 0) -> Path:
    """A store whose sites have the given cell counts: ``{well: [cells of field 1, field 2, ...]}``.

    ``failed`` lists ``(well, field)`` sites recorded as failed instead (their count is ignored).
    Each site's Cells, Nuclei and Cytoplasm tables have that many rows (see :func:`_site`).
    """
    st = Store(path, mode="a")
    st.initialize(plate_id, "[run]\n", roles=["DNA", "RNA", "AGP"])
    failed = set(failed)
    for i, (well, per_field) in enumerate(counts.items()):
        for f, n in enumerate(per_field, start=1):
            if (well, f) in failed:
                st.record_error(well, f, ImageError("unreadable TIFF", f"/plate/{well}_f{f}.tiff"))
            else:
                st.write_site(plate_id, well, f, _site(int(n), seed + 100 * i + f, quality=False))
    return path


@pytest.fixture
def counted_store(tmp_path):
    """Factory: ``counted_store(counts, failed=(), plate_id="P1") -> path`` (see :func:`make_counted_store`)."""
    counter = iter(range(100))

    def factory(counts, **kwargs):
        return make_counted_store(tmp_path / f"counted{next(counter)}.zarr", counts, **kwargs)

    return factory


@pytest.fixture
def synthetic_store(tmp_path):
    """Factory: ``synthetic_store(**kwargs) -> path`` (see :func:`make_store`)."""
    counter = iter(range(100))

    def factory(**kwargs):
        return make_store(tmp_path / f"synthetic{next(counter)}.zarr", **kwargs)

    return factory


@pytest.fixture(scope="session")
def report_reader():
    """``report_reader(path) -> Report`` (see :func:`read_report`)."""
    return read_report


@pytest.fixture(scope="session")
def png_reader():
    """``png_reader(png_bytes) -> RGB uint8 array``."""
    return png_array


@pytest.fixture(scope="session")
def nasty() -> str:
    """Text with HTML special characters that the synthetic stores carry."""
    return NASTY
