"""One writer per store (_lock.py): exclusive, refreshed, and never blocking forever after a crash."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from cpfeatures.store._lock import LOCK_PATH, StoreLock, StoreLockedError, _boot_id, _process_start


def _holder(store, **info) -> None:
    """Write a lock as another run would have."""
    record = {"token": "someone-else", "host": socket.gethostname(), "boot_id": _boot_id(), "pid": os.getpid(),
              "pid_start": _process_start(os.getpid()), "started": time.time(), "heartbeat": time.time(), **info}
    path = store / LOCK_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"cpfeatures_lock": record}}))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_exclusive_then_released(tmp_path):
    store = tmp_path / "s.zarr"
    with StoreLock(str(store)) as lock:
        assert lock.read()["pid"] == os.getpid()
        with pytest.raises(StoreLockedError, match=f"process {os.getpid()} on {socket.gethostname()}"):
            StoreLock(str(store)).acquire()
    assert not (store / LOCK_PATH).exists()
    StoreLock(str(store)).acquire().release()  # free again


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    store = tmp_path / "s.zarr"
    _holder(store, pid=_dead_pid())
    with StoreLock(str(store)) as lock:
        assert lock.read()["token"] == lock.token


def test_reused_process_id_is_stale(tmp_path):
    store = tmp_path / "s.zarr"
    _holder(store, pid_start="1")  # our pid, but a process that started at boot
    with StoreLock(str(store)) as lock:
        assert lock.read()["token"] == lock.token


def test_other_host_stale_only_after_its_heartbeat_stops(tmp_path):
    store = tmp_path / "s.zarr"
    _holder(store, host="node-17", boot_id="x", heartbeat=time.time() - 30)
    with pytest.raises(StoreLockedError, match="node-17"):
        StoreLock(str(store), stale_after=120, heartbeat=0.2).acquire()
    _holder(store, host="node-17", boot_id="x", heartbeat=time.time() - 300)
    with StoreLock(str(store), stale_after=120, heartbeat=0.2) as lock:
        assert lock.read()["host"] == socket.gethostname()


def test_unreadable_lock_is_stale(tmp_path):
    store = tmp_path / "s.zarr"
    (store / "lock").mkdir(parents=True)
    (store / LOCK_PATH).write_text("{ trunc")
    StoreLock(str(store)).acquire().release()


def test_heartbeat_refreshes_and_notices_a_takeover(tmp_path):
    store = tmp_path / "s.zarr"
    lock = StoreLock(str(store), heartbeat=0.1).acquire()
    try:
        first = lock.read()["heartbeat"]
        time.sleep(0.5)
        assert lock.read()["heartbeat"] > first
        _holder(store)  # another run decided we were dead and took the lock
        deadline = time.time() + 5
        while not lock.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lock.lost
    finally:
        lock.release()
    assert (store / LOCK_PATH).exists()  # the other run's lock is not ours to remove


def test_a_container_sharing_host_and_boot_id_keeps_its_live_lock(tmp_path):
    """Two containers with one host name and boot id but their own process ids: a process id that is
    dead here says nothing about the other container's run; its fresh heartbeat decides."""
    store = tmp_path / "s.zarr"
    _holder(store, pid=_dead_pid(), pid_ns="pid:[4026532999]")  # another namespace, heartbeat now
    with pytest.raises(StoreLockedError, match="another run is writing"):
        StoreLock(str(store), heartbeat=0.2).acquire()
    _holder(store, pid=_dead_pid(), pid_ns="pid:[4026532999]", heartbeat=time.time() - 300, interval=0.2)
    with StoreLock(str(store), heartbeat=0.2) as lock:  # a silent heartbeat: stale after all
        assert lock.read()["token"] == lock.token


def test_a_clock_behind_never_makes_a_live_run_look_dead(tmp_path):
    """The holder's clock is 300 s behind ours, but its heartbeat keeps moving: it is alive."""
    import threading

    store = tmp_path / "s.zarr"
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            _holder(store, host="node-17", boot_id="x", heartbeat=time.time() - 300, interval=0.1)
            time.sleep(0.1)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        with pytest.raises(StoreLockedError, match="node-17"):
            StoreLock(str(store), stale_after=120, heartbeat=0.1).acquire()
    finally:
        stop.set()
        thread.join()


def test_storage_without_exclusive_create_is_refused_unless_told(monkeypatch):
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class NoExclusive(MemoryFileSystem):
        protocol = "noexcl"
        store: dict = {}
        pseudo_dirs = [""]

        def _open(self, path, mode="rb", **kwargs):
            if "x" in mode:
                raise ValueError("mode x is not supported")
            return super()._open(path, mode, **kwargs)

    fsspec.register_implementation("noexcl", NoExclusive, clobber=True)
    with pytest.raises(StoreLockedError, match=r"\(noexcl\) cannot create the lock file exclusively.*--unsafe-lock"):
        StoreLock("noexcl://s.zarr").acquire()
    lock = StoreLock("noexcl://s.zarr", unsafe=True).acquire()
    assert lock.read()["token"] == lock.token
    lock.release()
