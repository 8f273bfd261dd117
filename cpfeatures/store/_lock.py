"""One writer per store: a lock file that a crashed run does not leave behind for good.

A run holds ``<store>/lock/zarr.json`` while it writes (a Zarr group whose attribute
``cpfeatures_lock`` says who holds it, so Zarr tools see a normal group). It is
created exclusively, refreshed every ``heartbeat`` seconds, and removed at the end.
A lock left by a run that died is *stale* and is taken over:

- held on this machine (same host name, boot id and process-id namespace): stale when its
  process is gone (or the process id now belongs to a process started at another time);
- held on another machine, or in another container of this one (another process-id namespace:
  its process ids mean nothing here): stale when its heartbeat is older than ``stale_after``
  *and* does not move while this run watches it for a few of its heartbeats, so that a clock
  that differs between machines never makes a live run look dead.

Storage that cannot create a file exclusively (no conditional write) cannot make a safe lock:
two runs could both think they hold it. Such a store is refused unless the caller says that no
other run writes it (``unsafe=True``, ``cpfeatures run --unsafe-lock``).

The heartbeat also checks that the lock is still ours; if another run took it over
(it thought ours stale), :attr:`StoreLock.lost` becomes True and the run stops.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid

from ._layout import StoreError

__all__ = ["StoreLock", "StoreLockedError", "LOCK_PATH"]

#: Where the lock lives inside a store.
LOCK_PATH = "lock/zarr.json"


class StoreLockedError(StoreError):
    """Another run is writing this store."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    """This process's process-id namespace (``pid:[4026531836]``), or "" where unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of stat, counted after the command name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class StoreLock:
    """Exclusive right to write a store, for one run.

    Parameters
    ----------
    url : str
        The store's path or fsspec URL.
    storage_options : dict, optional
        For fsspec.
    heartbeat : float
        Seconds between refreshes of the lock.
    stale_after : float
        A lock held on another machine whose heartbeat is older than this is stale.
    unsafe : bool
        Allow storage that cannot create the lock file exclusively (the caller knows that no other
        run writes the store).
    """

    def __init__(self, url: str, storage_options: dict | None = None, heartbeat: float = 30.0,
                 stale_after: float = 120.0, unsafe: bool = False):
        import fsspec

        self.url = url
        from ..io.fs import store_options as default_options

        self.fs, root = fsspec.core.url_to_fs(url, **default_options(url, storage_options))
        self.path = f"{root.rstrip('/')}/{LOCK_PATH}"
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.heartbeat, self.stale_after = float(heartbeat), float(stale_after)
        self.unsafe = bool(unsafe)
        self.token = uuid.uuid4().hex
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the lock's content -----------------------------------------------------------
    def _info(self) -> dict:
        pid = os.getpid()
        return {"token": self.token, "host": socket.gethostname(), "boot_id": _boot_id(), "pid": pid,
                "pid_ns": _pid_namespace(), "pid_start": _process_start(pid),
                "started": getattr(self, "_started", time.time()), "heartbeat": time.time(),
                "interval": self.heartbeat}

    def _encode(self, info: dict) -> bytes:
        return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"cpfeatures_lock": info}},
                          indent=1).encode()

    def read(self) -> dict | None:
        """The current holder's record, ``{}`` if the lock file is unreadable, None if there is none."""
        try:
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)["attributes"]["cpfeatures_lock"]
        except (ValueError, KeyError, TypeError):
            return {}

    def stale_reason(self, info: dict) -> str | None:
        """Why a holder's lock is stale, or None if that run may still be writing."""
        if not info:
            return "its lock file is unreadable"
        same_namespace = info.get("pid_ns", _pid_namespace()) == _pid_namespace()  # older records: as before
        if info.get("host") == socket.gethostname() and info.get("boot_id", "") == _boot_id() and same_namespace:
            pid = int(info.get("pid", -1))
            if not _alive(pid):
                return f"its process {pid} is gone"
            start = _process_start(pid)
            if info.get("pid_start") and start and start != info["pid_start"]:
                return f"process id {pid} now belongs to another process"
            return None
        age = time.time() - float(info.get("heartbeat", 0))
        if age <= self.stale_after:
            return None
        # old by this machine's clock: watch the record itself, which the clocks cannot fool
        interval = min(float(info.get("interval") or self.heartbeat), self.stale_after)
        deadline = time.monotonic() + 1.5 * interval + 0.5
        while time.monotonic() < deadline:
            time.sleep(min(0.5, interval / 4))
            now = self.read()
            if now is None:
                return "its lock was released"
            if now.get("token") != info.get("token") or now.get("heartbeat") != info.get("heartbeat"):
                return None  # its heartbeat moves: alive, whatever the clocks say
        return f"no heartbeat for {age:.0f} s (and none while watched for {1.5 * interval + 0.5:.0f} s)"

    def describe(self, info: dict) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("started", 0))))
        age = time.time() - float(info.get("heartbeat", 0))
        return (f"process {info.get('pid')} on {info.get('host')}, running since {started}, "
                f"last heartbeat {age:.0f} s ago")

    # -- acquire / release ----------------------------------------------------------------
    def _create(self) -> bool:
        """Create the lock file if absent; True if this call created it."""
        data = self._encode(self._info())
        parent = self.path.rsplit("/", 1)[0]
        if self.local:
            os.makedirs(parent, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        try:
            with self.fs.open(self.path, "xb") as fh:  # conditional put where the backend has it
                fh.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):
            if not self.unsafe:  # check-then-write: two runs could both take the lock
                protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
                raise StoreLockedError(f"this storage ({protocol}) cannot create the lock file exclusively, so two "
                                       "runs could both write the store; if no other run writes it, run again "
                                       "with --unsafe-lock (unsafe_lock=True)", self.url) from None
            if self.fs.exists(self.path):
                return False
            self.fs.pipe_file(self.path, data)
            return True

    def acquire(self) -> "StoreLock":
        """Take the lock, taking over a stale one.

        Raises
        ------
        StoreLockedError
            Another live run holds it.
        """
        self._started = time.time()
        for _ in range(3):
            if self._create() and self._ours():
                break
            info = self.read()
            if info is None:
                continue  # released between our attempt and the read
            reason = self.stale_reason(info)
            if reason is None:
                raise StoreLockedError(
                    f"another run is writing this store ({self.describe(info)}); wait for it to finish. "
                    f"A run that died on another machine releases the lock {self.stale_after:.0f} s after its "
                    f"last heartbeat", self.url)
            try:  # a dead run's lock: take it over
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass
        else:
            raise StoreLockedError("could not take the store's lock (other runs are starting at the same time)",
                                   self.url)
        self._thread = threading.Thread(target=self._beat, name="cpfeatures-store-lock", daemon=True)
        self._thread.start()
        return self

    def _ours(self) -> bool:
        info = self.read()
        return bool(info) and info.get("token") == self.token

    def _write(self) -> None:
        data = self._encode(self._info())
        if self.local:
            tmp = f"{self.path}.{self.token}.partial"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        else:
            self.fs.pipe_file(self.path, data)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                if not self._ours():
                    self.lost = True
                    return
                self._write()
            except Exception:  # a passing storage fault: try again at the next beat
                continue

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self._ours():
                self.fs.rm_file(self.path)
                if self.local:
                    try:
                        os.rmdir(self.path.rsplit("/", 1)[0])
                    except OSError:
                        pass
        except Exception:  # the store is gone or unwritable: a stale lock is detected by the next run
            pass

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
