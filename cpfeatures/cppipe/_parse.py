"""Read CellProfiler pipeline files: the text ``.cppipe`` format (CellProfiler 2-4) and the JSON one (4.1+)."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field

from ..errors import CpfeaturesError

__all__ = ["Module", "PipelineError", "read_pipeline", "MAX_PIPELINE_BYTES", "printable"]

_HEADER = "CellProfiler Pipeline: http://www.cellprofiler.org"
_NAME = r"[A-Za-z0-9_]+"  # a module's name is its Python class name
_MODULE = re.compile(rf"^(?P<name>{_NAME}):\[(?P<attrs>.*)\]\s*$")
#: the text formats CellProfiler reads (``Version:N`` on the second line): 1 to 4 (CellProfiler 2-3, settings
#: escaped as \xNN) and 5 (CellProfiler 4, 4.2.8 too); a later one is a format nobody here has read
TEXT_VERSIONS = range(1, 6)
#: the JSON format's ``"version"`` (CellProfiler 4.1+ writes 6)
JSON_VERSIONS = ("6", "v6")
#: a pipeline is a few hundred kB; more than this is not one (and is not read into memory)
MAX_PIPELINE_BYTES = 16 * 2**20
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
        Not a pipeline, truncated, or a malformed module line (the line number is named); a format
        version other than text ``Version:1``-``5`` / JSON ``6`` (CellProfiler 4.2.8 writes 5 and 6);
        not a regular file (a device, a pipe), or larger than :data:`MAX_PIPELINE_BYTES` (at most
        that + 1 bytes are read); a JSON module whose name is not a module name (letters, digits, _)
        or whose text is not valid Unicode.

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
    raw = _read_bounded(path)
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


def _read_bounded(path: str) -> bytes:
    """The file's bytes: a regular file of at most :data:`MAX_PIPELINE_BYTES` (never more is read)."""
    try:
        info = os.stat(path)  # before opening: opening a FIFO would wait for a writer
        if not stat.S_ISREG(info.st_mode):
            raise PipelineError(f"not a regular file ({_kind(info.st_mode)}): a pipeline is a .cppipe file", path)
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):  # replaced between the two looks
                raise PipelineError(f"not a regular file ({_kind(info.st_mode)}): a pipeline is a .cppipe file",
                                    path)
            raw = fh.read(MAX_PIPELINE_BYTES + 1)
    except FileNotFoundError:
        raise PipelineError("pipeline file does not exist", path) from None
    except OSError as exc:
        raise PipelineError(f"cannot read the pipeline ({exc.strerror or exc})", path) from None
    if len(raw) > MAX_PIPELINE_BYTES or info.st_size > MAX_PIPELINE_BYTES:
        raise PipelineError(f"the file is {_size(max(info.st_size, len(raw)))}; a CellProfiler pipeline is at most "
                            f"{_size(MAX_PIPELINE_BYTES)} (not read)", path)
    return raw


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a plain file"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def printable(text) -> str:
    """``text`` on one line that any reader takes as text: control characters, line and paragraph
    separators, format characters (bidirectional overrides), other spaces than " " and lone surrogates are escaped
    (``\\n``, ``\\x01``, ``\\u202e``), the rest is kept.

    Examples
    --------
    >>> printable("Evil\\n[run]\\x01")
    'Evil\\\\n[run]\\\\x01'
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _header(lines: list[str], path: str) -> dict[str, str]:
    """The header fields (``Version``, ``DateRevision``, ``ModuleCount``, ...) up to the first blank or module line."""
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line.strip() or _MODULE.match(line):
            break
        if ":" in line and not line.startswith((" ", "\t")):
            key, value = line.split(":", 1)
            fields.setdefault(key.strip(), value.strip())
    version = fields.get("Version")
    if version is None:
        version = str(max(TEXT_VERSIONS))  # as CellProfiler reads a header without one: its own format
    elif not re.fullmatch(r"[0-9]{1,9}", version):
        raise PipelineError(f"the header's Version:{version[:40]!r} is not a pipeline format number "
                            f"(CellProfiler 4.2.8 writes Version:{max(TEXT_VERSIONS)})", path)
    elif int(version) not in TEXT_VERSIONS:
        raise PipelineError(f"pipeline format Version:{int(version)} is not one cpfeatures reads (text pipelines "
                            f"are Version:{min(TEXT_VERSIONS)} to {max(TEXT_VERSIONS)}, CellProfiler 4.2.8 writes "
                            f"Version:{max(TEXT_VERSIONS)}); save the pipeline with CellProfiler 4", path)
    fields["Version"] = str(int(version))
    declared = fields.get("ModuleCount")
    if declared is not None and not re.fullmatch(r"[0-9]{1,9}", declared):
        raise PipelineError(f"the header's ModuleCount:{declared[:40]!r} is not a number", path)
    return fields


def _read_text(text: str, path: str) -> list[Module]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != _HEADER:
        first = lines[0].strip()[:60] if lines else ""
        raise PipelineError(f"not a CellProfiler pipeline: the first line is {first!r}, expected {_HEADER!r}", path)
    header = _header(lines, path)
    escaped = int(header["Version"]) < 5
    modules: list[Module] = []
    declared = header.get("ModuleCount")
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
    if declared is not None and int(declared) != len(modules):
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
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
        raise PipelineError(f"not a CellProfiler JSON pipeline ({type(exc).__name__}: {printable(exc)[:200]})",
                            path) from None
    entries = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise PipelineError("not a CellProfiler JSON pipeline (no \"modules\" list at the top)", path)
    version = data.get("version")
    if version is not None and str(version).strip() not in JSON_VERSIONS:
        raise PipelineError(f"JSON pipeline format version {printable(version)[:40]!r} is not one cpfeatures reads "
                            "(CellProfiler 4.2.8 writes 6)", path)
    modules = []
    for i, entry in enumerate(entries, start=1):
        modules.append(_json_module(entry, i, path))
    if not modules:
        raise PipelineError("the pipeline has no modules", path)
    declared = data.get("module_count")
    if declared is not None and _int(declared, -1) != len(modules):
        raise PipelineError(f"the pipeline says it has {printable(declared)[:20]} modules but {len(modules)} were "
                            "read", path)
    return modules


def _json_module(entry, i: int, path: str) -> Module:
    """The ``i``-th module of a JSON pipeline; anything that is not what CellProfiler writes is refused by name."""
    where = f"module {i} of \"modules\""
    if not isinstance(entry, dict) or not isinstance(entry.get("attributes", {}), dict) \
            or not isinstance(entry.get("settings", []), list):
        raise PipelineError(f"{where}: not an object with \"attributes\" and a \"settings\" list", path)
    attrs = entry.get("attributes", {})
    number = _int(attrs.get("module_num", i), None)
    if number is None or isinstance(attrs.get("module_num"), bool):
        raise PipelineError(f"{where}: module_num {attrs.get('module_num')!r} is not a number", path)
    full = attrs.get("module_name") or attrs.get("module_path")
    name = str(full).rsplit(".", 1)[-1] if isinstance(full, str) else None
    if name is None or not re.fullmatch(_NAME, name):
        raise PipelineError(f"module {number}: its name {full!r} is not a CellProfiler module name "
                            "(a module_path ending in letters, digits or _)", path)
    where = f"module {number} {name}"
    enabled = attrs.get("enabled", True)
    if isinstance(enabled, str) and enabled.strip() in ("True", "False"):
        enabled = enabled.strip() == "True"
    if not isinstance(enabled, bool):
        raise PipelineError(f"{where}: \"enabled\" is {enabled!r}, not true or false", path)
    settings = []
    for k, setting in enumerate(entry.get("settings", []), start=1):
        if not isinstance(setting, dict):
            raise PipelineError(f"{where}: setting {k} is not an object with \"text\" and \"value\"", path)
        pair = []
        for key in ("text", "value"):
            value = setting.get(key, "")
            if not isinstance(value, (str, int, float, bool)):
                raise PipelineError(f"{where}: setting {k}'s {key} is {type(value).__name__}, not text", path)
            value = str(value)
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise PipelineError(f"{where}: setting {k}'s {key} {value[:60]!r} is not valid Unicode "
                                    "(a lone surrogate escape)", path) from None
            pair.append(value)
        settings.append((pair[0], pair[1]))
    return Module(number=number, name=name, enabled=enabled,
                  revision=_int(attrs.get("variable_revision_number"), 0), settings=settings)
