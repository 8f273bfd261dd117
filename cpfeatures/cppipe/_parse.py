"""Read CellProfiler pipeline files: the text ``.cppipe`` format (CellProfiler 2-4) and the JSON one (4.1+)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from ..errors import CpfeaturesError

__all__ = ["Module", "PipelineError", "read_pipeline"]

_HEADER = "CellProfiler Pipeline: http://www.cellprofiler.org"
_MODULE = re.compile(r"^(?P<name>[A-Za-z0-9_]+):\[(?P<attrs>.*)\]\s*$")
# text pipelines of CellProfiler 2-3 escape some characters as \xNN (\x5B = "[")
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


class PipelineError(CpfeaturesError):
    """A pipeline file that cannot be read, or that asks for what cpfeatures does not do."""


@dataclass
class Module:
    """One module of a pipeline: its number, name, whether it is enabled, and its settings in order.

    Settings are ``(text, value)`` pairs as the file lists them; the same text may
    occur several times (one group per image, say), so look them up with
    :meth:`get` / :meth:`values` by text, or by position.
    """

    number: int
    name: str
    enabled: bool
    revision: int
    settings: list[tuple[str, str]] = field(default_factory=list)

    def get(self, text: str, default: str | None = None, start: int = 0) -> str | None:
        """The value of the first setting at or after position ``start`` whose text starts with ``text``."""
        for t, v in self.settings[start:]:
            if t.startswith(text):
                return v
        return default

    def index(self, text: str, start: int = 0) -> int:
        """Position of the first setting at or after ``start`` whose text starts with ``text`` (-1 if none)."""
        for i in range(start, len(self.settings)):
            if self.settings[i][0].startswith(text):
                return i
        return -1

    def values(self, text: str) -> list[str]:
        """Every value of the settings whose text starts with ``text``."""
        return [v for t, v in self.settings if t.startswith(text)]

    def __str__(self) -> str:
        return f"module {self.number} {self.name}"


def read_pipeline(path: str | os.PathLike) -> list[Module]:
    """Parse a CellProfiler pipeline file.

    Parameters
    ----------
    path : path-like
        A ``.cppipe`` (text, ``CellProfiler Pipeline: http://www.cellprofiler.org``
        then ``Version:N``) or a JSON pipeline (CellProfiler 4.1+). A ``.cpproj``
        project holds its pipeline in an HDF5 file and is refused, naming the way out.

    Returns
    -------
    list of Module

    Raises
    ------
    PipelineError
        Not a pipeline, truncated, or a malformed module line (the line number is named).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.cppipe"
    >>> _ = p.write_text("CellProfiler Pipeline: http://www.cellprofiler.org\\nVersion:5\\nModuleCount:1\\n\\n"
    ...                  "MeasureTexture:[module_num:1|variable_revision_number:7|enabled:True]\\n"
    ...                  "    Enter how many gray levels to measure the texture at:256\\n")
    >>> m = read_pipeline(p)[0]
    >>> m.name, m.number, m.enabled, m.get("Enter how many gray levels")
    ('MeasureTexture', 1, True, '256')
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise PipelineError("pipeline file does not exist", path) from None
    except OSError as exc:
        raise PipelineError(f"cannot read the pipeline ({exc.strerror or exc})", path) from None
    if raw.startswith(b"\x89HDF"):
        raise PipelineError("this is a CellProfiler project (.cpproj, HDF5); open it in CellProfiler and export the "
                            "pipeline (File > Export > Pipeline) as .cppipe", path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if text.lstrip().startswith("{"):
        return _read_json(text, path)
    return _read_text(text, path)


def _read_text(text: str, path: str) -> list[Module]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != _HEADER:
        first = lines[0].strip()[:60] if lines else ""
        raise PipelineError(f"not a CellProfiler pipeline: the first line is {first!r}, expected {_HEADER!r}", path)
    version = next((ln.split(":", 1)[1].strip() for ln in lines[1:8] if ln.startswith("Version:")), None)
    escaped = version is not None and version.isdigit() and int(version) < 5
    modules: list[Module] = []
    declared = next((ln.split(":", 1)[1].strip() for ln in lines[1:8] if ln.startswith("ModuleCount:")), None)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            if not modules:
                continue  # header continuation
            body = line.strip()
            if ":" not in body:
                raise PipelineError(f"line {lineno}: setting without ':' in {modules[-1]}: {body[:60]!r}", path)
            key, value = body.split(":", 1)
            if escaped:
                key, value = _unescape(key), _unescape(value)
            modules[-1].settings.append((key.strip(), value.strip()))
            continue
        m = _MODULE.match(line)
        if m is None:
            if not modules and re.match(r"^[A-Za-z]+:", line):
                continue  # header fields: Version, DateRevision, GitHash, ModuleCount, HasImagePlaneDetails
            raise PipelineError(f"line {lineno}: not a module line or a setting: {line.strip()[:60]!r}", path)
        attrs = _attributes(m["attrs"], escaped)
        try:
            number = int(attrs.get("module_num", len(modules) + 1))
        except ValueError:
            raise PipelineError(f"line {lineno}: module_num {attrs.get('module_num')!r} is not a number", path) \
                from None
        modules.append(Module(number=number, name=m["name"], enabled=attrs.get("enabled", "True") != "False",
                              revision=_int(attrs.get("variable_revision_number"), 0)))
    if not modules:
        raise PipelineError("the pipeline has no modules", path)
    if declared and declared.isdigit() and int(declared) != len(modules):
        raise PipelineError(f"the pipeline says it has {declared} modules but {len(modules)} were read "
                            "(truncated file?)", path)
    return modules


def _attributes(text: str, escaped: bool) -> dict[str, str]:
    out = {}
    for part in text.split("|"):
        if ":" in part:
            key, value = part.split(":", 1)
            out[key.strip()] = _unescape(value) if escaped else value
    return out


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _int(value, default: int) -> int:
    try:
        return int(str(value).strip().strip("'"))
    except (TypeError, ValueError):
        return default


def _read_json(text: str, path: str) -> list[Module]:
    try:
        data = json.loads(text)
        entries = data["modules"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"not a CellProfiler JSON pipeline ({type(exc).__name__}: {exc})", path) from None
    modules = []
    for i, entry in enumerate(entries, start=1):
        attrs = entry.get("attributes", {})
        name = str(attrs.get("module_name") or attrs.get("module_path", f"Module{i}")).rsplit(".", 1)[-1]
        settings = [(str(s.get("text", "")), str(s.get("value", ""))) for s in entry.get("settings", [])]
        modules.append(Module(number=_int(attrs.get("module_num"), i), name=name,
                              enabled=bool(attrs.get("enabled", True)),
                              revision=_int(attrs.get("variable_revision_number"), 0), settings=settings))
    if not modules:
        raise PipelineError("the pipeline has no modules", path)
    return modules
