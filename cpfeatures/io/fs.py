"""Files wherever they live: local paths, or fsspec URLs (``s3://``, ``gs://``, ``https://``, ...).

Local paths take the plain ``os`` route (no fsspec in the hot path of a local run).
A URL goes through fsspec, with two things added for object storage:

- **Anonymous access when there are no credentials.** ``s3://`` without AWS
  credentials in the usual places (environment, ``~/.aws``, instance role) reads
  anonymously, as public buckets such as the Cell Painting Gallery need; with
  credentials the request is signed. ``FSSPEC_S3_ANON=true`` /
  ``FSSPEC_S3_ENDPOINT_URL=...`` (fsspec's own environment configuration) and
  ``AWS_ENDPOINT_URL`` are honoured, and workers inherit them.
- **Bounded retries with backoff.** A read that fails for a reason other than
  "not there" or "not allowed" is tried :data:`ATTEMPTS` times, waiting
  :data:`BACKOFF_S` x 2^k seconds between tries; then it fails like any bad file
  and costs its site only.

Filesystem objects are made once per process and protocol, so a worker reuses
its connections from site to site.
"""

from __future__ import annotations

import io
import os
import posixpath
import random
import threading
import time
from contextlib import contextmanager
from typing import Iterable, Iterator

__all__ = ["is_url", "join", "parent", "basename", "exists", "isfile", "isdir", "listdir", "read_bytes",
           "open_binary", "present", "protocol_problem", "storage_options",
           "store_options", "check_writable", "ATTEMPTS", "BACKOFF_S", "TIMEOUT_S"]

#: Tries of one read on object storage before it counts as failed.
ATTEMPTS = 4
#: First wait between tries, in seconds; doubled after each failure (plus up to 25 % jitter).
BACKOFF_S = 0.5
#: Deadline of one try, in seconds: a server that stops answering fails the try, never hangs the run.
TIMEOUT_S = 60.0

# errors that no retry can mend
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError)
_FS_CACHE: dict = {}
_FS_LOCK = threading.Lock()


def is_url(path) -> bool:
    """True for an fsspec URL other than ``file://`` (``s3://bucket/key``, ``https://...``)."""
    text = os.fspath(path) if not isinstance(path, str) else path
    return "://" in text and not text.startswith("file://")


def _local(path) -> str:
    text = os.fspath(path)
    return text[len("file://"):] if text.startswith("file://") else text


def join(base, *parts: str) -> str:
    """``base/part/...`` for a URL (always ``/``) or a local path."""
    if is_url(base):
        out = str(base).rstrip("/")
        for part in parts:
            out = f"{out}/{str(part).strip('/')}"
        return out
    return os.path.join(_local(base), *parts)


def parent(path) -> str:
    """The folder holding ``path`` (a URL keeps its scheme and bucket)."""
    if is_url(path):
        scheme, rest = str(path).rstrip("/").split("://", 1)
        head = posixpath.dirname(rest)
        return f"{scheme}://{head}" if head else f"{scheme}://{rest}"
    return os.path.dirname(os.path.abspath(_local(path)))


def basename(path) -> str:
    return posixpath.basename(str(path).rstrip("/")) if is_url(path) else os.path.basename(_local(path))


def protocol_problem(url: str) -> str | None:
    """Why fsspec cannot open ``url``'s protocol (unknown, or its package missing), or None."""
    import fsspec

    protocol = str(url).split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        return f"unknown protocol {protocol!r} (fsspec reads s3, gs, az, https, ... )"
    except ImportError as exc:
        return f"reading {protocol}:// needs a package that is not installed ({exc})"
    return None


def storage_options(url: str, given: dict | None = None) -> dict:
    """fsspec options for ``url``: ``given``, plus ``anon=True`` for ``s3://`` when no credentials are found.

    Parameters
    ----------
    url : str
    given : dict, optional
        Options the caller chose; they always win.

    Returns
    -------
    dict
    """
    options = dict(given or {})
    protocol = str(url).split("://", 1)[0] if is_url(url) else "file"
    if protocol in ("s3", "s3a") and "anon" not in options:
        import fsspec.config

        if "anon" not in fsspec.config.conf.get("s3", {}) and not _aws_credentials():
            options["anon"] = True
    return options


def store_options(url: str, given: dict | None = None) -> dict:
    """fsspec options for a store being written: :func:`storage_options` without listing caches.

    s3fs and gcsfs cache folder listings per process; a store's ``sites/`` listing changes
    while workers write, and a cached one would hide their sites from the client.
    """
    options = storage_options(url, given)
    protocol = str(url).split("://", 1)[0]
    if protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs", "adl") and "use_listings_cache" not in options:
        options["use_listings_cache"] = False
    return options


def _aws_credentials() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    try:
        import botocore.session

        return botocore.session.get_session().get_credentials() is not None
    except Exception:  # no botocore, or a broken profile: let s3fs say what is wrong
        return True


def _filesystem(url: str, options: dict | None = None):
    """(fsspec filesystem, path inside it), cached per process, protocol and options."""
    import fsspec

    options = storage_options(url, options)
    protocol = url.split("://", 1)[0]
    key = (protocol, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _FS_LOCK:
        fs = _FS_CACHE.get(key)
        if fs is None:
            fs, _ = fsspec.core.url_to_fs(url, **options)
            _FS_CACHE[key] = fs
    return fs, fs._strip_protocol(url)


def _timed(fs, method: str, *args, **kwargs):
    """``fs.<method>(*args)`` within :data:`TIMEOUT_S` (asynchronous filesystems: s3, gcs, http, ...).

    fsspec runs their calls on its own event loop and, without a deadline, waits for an
    answer forever: a server that died mid-response would hang the worker.
    """
    if getattr(fs, "async_impl", False):
        return getattr(fs, method)(*args, timeout=TIMEOUT_S, **kwargs)
    return getattr(fs, method)(*args, **kwargs)


class _RangeFile(io.RawIOBase):
    """A remote file read on demand, block by block, each read retried and under a deadline (TIFF headers)."""

    def __init__(self, fs, inner: str, url: str, size: int, block: int = 1 << 16):
        self.fs, self.inner, self.url, self.size, self.block = fs, inner, url, size, block
        self.pos = 0
        self.blocks: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def _block(self, i: int) -> bytes:
        if i not in self.blocks:
            start, end = i * self.block, min((i + 1) * self.block, self.size)
            self.blocks[i] = _retry("reading", lambda: _timed(self.fs, "cat_file", self.inner, start=start, end=end),
                                    self.url)
        return self.blocks[i]

    def readinto(self, buffer) -> int:
        end = min(self.pos + len(buffer), self.size)
        out = bytearray()
        while self.pos + len(out) < end:
            at = self.pos + len(out)
            data = self._block(at // self.block)
            out += data[at % self.block:at % self.block + end - at]
        buffer[:len(out)] = out
        self.pos += len(out)
        return len(out)


def _retry(what: str, fn, url: str):
    """``fn()``, tried up to :data:`ATTEMPTS` times on errors that may pass (network, throttling, 5xx)."""
    delay = BACKOFF_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except PermissionError as exc:
            if url.startswith(("s3://", "s3a://")) and not _aws_credentials():
                raise PermissionError(f"{' '.join(str(exc).split()) or 'access denied'}; no AWS credentials were "
                                      "found, so the request was anonymous") from None
            raise
        except _PERMANENT:
            raise
        except Exception as exc:
            if attempt == ATTEMPTS:
                raise OSError(f"{what} failed {ATTEMPTS} times, last: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]}") from exc
            time.sleep(delay * (1 + 0.25 * random.random()))
            delay *= 2


def read_bytes(path, options: dict | None = None) -> bytes:
    """The whole content of a file or object (retried on transient errors for URLs).

    Raises
    ------
    FileNotFoundError
        It does not exist.
    OSError
        It could not be read (for a URL: after :data:`ATTEMPTS` tries).
    """
    if not is_url(path):
        with open(_local(path), "rb") as fh:
            return fh.read()
    fs, inner = _filesystem(str(path), options)
    return _retry("reading", lambda: _timed(fs, "cat_file", inner), str(path))


@contextmanager
def open_binary(path, options: dict | None = None, *, partial: bool = False) -> Iterator[io.IOBase]:
    """A binary file object: the local file, or a URL's content.

    Parameters
    ----------
    path : path-like or str
    options : dict, optional
        fsspec options for a URL.
    partial : bool
        For a URL, read on demand in small blocks instead of fetching it all:
        for headers (a TIFF's first page description is a few kB of a 2 MB file).
    """
    if not is_url(path):
        with open(_local(path), "rb") as fh:
            yield fh
        return
    if not partial:
        yield io.BytesIO(read_bytes(path, options))
        return
    fs, inner = _filesystem(str(path), options)
    info = _retry("looking up", lambda: _timed(fs, "info", inner), str(path))
    with io.BufferedReader(_RangeFile(fs, inner, str(path), int(info["size"])), buffer_size=1 << 16) as fh:
        yield fh


def _info(path, options):
    fs, inner = _filesystem(str(path), options)
    try:
        return _retry("looking up", lambda: _timed(fs, "info", inner), str(path))
    except FileNotFoundError:
        return None


def exists(path, options: dict | None = None) -> bool:
    if not is_url(path):
        return os.path.exists(_local(path))
    return _info(path, options) is not None


def isfile(path, options: dict | None = None) -> bool:
    if not is_url(path):
        return os.path.isfile(_local(path))
    info = _info(path, options)
    return info is not None and info.get("type") == "file"


def isdir(path, options: dict | None = None) -> bool:
    if not is_url(path):
        return os.path.isdir(_local(path))
    fs, inner = _filesystem(str(path), options)
    try:
        return bool(_retry("listing", lambda: _timed(fs, "isdir", inner), str(path)))
    except FileNotFoundError:
        return False


def listdir(path, options: dict | None = None) -> list[str]:
    """Names of the entries directly in a folder (a URL's "folder" is its key prefix)."""
    if not is_url(path):
        return os.listdir(_local(path))
    fs, inner = _filesystem(str(path), options)
    entries = _retry("listing", lambda: _timed(fs, "ls", inner, detail=False), str(path))
    return [posixpath.basename(str(e).rstrip("/")) for e in entries]


def present(paths: Iterable[str], options: dict | None = None) -> set[str]:
    """Which of ``paths`` exist, listing each folder once (27,648 images = a few listings, not 27,648 lookups)."""
    paths = list(dict.fromkeys(paths))
    by_folder: dict[str, list[str]] = {}
    for p in paths:
        by_folder.setdefault(parent(p) if is_url(p) else os.path.dirname(_local(p)), []).append(p)
    out: set[str] = set()
    for folder, members in by_folder.items():
        try:
            names = set(listdir(folder, options))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except Exception:  # a backend without listings (plain https): ask file by file
            out.update(p for p in members if exists(p, options))
            continue
        out.update(p for p in members if basename(p) in names)
    return out


def check_writable(folder) -> None:
    """Make ``folder`` (a local path) and write a file in it, before long work whose result goes there.

    Raises
    ------
    OSError
        The folder cannot be made or written (read-only file system, no permission, disk full):
        the caller learns it before computing, not after. URLs are not probed.
    """
    if is_url(folder):
        return
    import tempfile

    folder = _local(folder)
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".cpfeatures-probe-"):
        pass
