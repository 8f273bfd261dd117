"""The dask side of a run: the client, the bounded task window, the worker plugins, compiling in workers.

Shared by the plate run, the batch run and ``cpfeatures crops``. Nothing else in the
package talks to dask.distributed.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

from ..errors import CpfeaturesError

__all__ = ["TaskWindow", "WorkersLostError", "cluster_client", "compile_in_workers", "worker_death_message"]


class WorkersLostError(CpfeaturesError):
    """A local cluster lost every worker for good: the run stops early, what it finished is kept.

    ``unfinished`` lists the indices of the tasks that were in flight. Not bad input: a rerun
    resumes (the run's exit status is 3, as for a store that cannot be written).
    """

    exit_code = 3

    def __init__(self, message: str, unfinished: list[int] = ()):
        super().__init__(message)
        self.unfinished = list(unfinished)


class TaskWindow:
    """Run ``fn(*args[i])`` for every ``i`` on the cluster, at most ``window`` tasks in flight.

    Iterating yields ``(i, result)`` as tasks finish; a task whose workers all died
    yields the exception instead. A bounded window keeps the scheduler's and the
    client's memory flat on a 3,456-site plate, and :meth:`stop` ends submitting at
    once (storage fault) while the tasks in flight still report.
    """

    def __init__(self, client, fn, args: list, window: int | None, name: str):
        self.client, self.fn, self.args, self.name = client, fn, args, name
        self.window = window or default_window(client)
        self.queue = list(range(len(args)))
        self.futures: dict = {}
        self.no_workers_since: float | None = None  # when the cluster was first seen without workers

    def stop(self) -> None:
        self.queue.clear()

    def cancel(self) -> None:
        self.stop()
        self.client.cancel([fut for _, fut in self.futures.values()], force=True)

    def _submit(self, pending: set) -> None:
        i = self.queue.pop(0)
        fut = self.client.submit(self.fn, *self.args[i], key=f"{self.name}-{i}-{time.time_ns()}", pure=False)
        self.futures[fut.key] = (i, fut)
        pending.add(fut)

    def __iter__(self):
        from distributed import wait

        pending: set = set()
        for _ in range(min(self.window, len(self.queue))):
            self._submit(pending)
        while pending:
            try:
                done, pending = wait(pending, timeout=_WAIT_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished for a while: are there still workers to finish it?
                self._check_workers()
                continue
            self.no_workers_since = None
            for fut in done:
                i, _ = self.futures.pop(fut.key)
                try:
                    result = fut.result()
                except Exception as exc:  # KilledWorker: the task's worker died allowed-failures + 1 times
                    result = exc
                fut.release()
                yield i, result
                if self.queue:
                    self._submit(pending)

    def _check_workers(self) -> None:
        """Fail, rather than wait forever, when a local cluster has lost every worker for good.

        A nanny restarts a worker that was killed, but not one that closed itself (a
        task it could not unpickle, a worker plugin that failed): the tasks would then
        wait for a worker that never comes. A remote cluster's workers may come back
        (adaptive scaling, a batch queue), so there it is only reported, once."""
        try:
            n = len(self.client.scheduler_info().get("workers", {}))
        except Exception:
            return
        if n:
            self.no_workers_since = None
            return
        now = time.monotonic()
        if self.no_workers_since is None:
            self.no_workers_since = now
            if getattr(self.client, "cluster", None) is None:
                warnings.warn(f"no dask worker is connected to the scheduler; {len(self.futures)} "
                              f"{self.name} task(s) are waiting for one", RuntimeWarning, stacklevel=2)
            return
        if getattr(self.client, "cluster", None) is not None and now - self.no_workers_since > _NO_WORKERS_S:
            unfinished = sorted(i for i, _ in self.futures.values())
            self.cancel()
            raise WorkersLostError(
                f"every worker of the local cluster has stopped and none came back for {_NO_WORKERS_S:g} s "
                f"({len(unfinished)} {self.name} task(s) unfinished; finished sites are kept in the store, "
                "run again to resume). The workers' log says why (killed, out of memory, a function it could "
                "not import; `--verbose` shows it)", unfinished=unfinished)


# how often a waiting run looks at its workers, and how long a local cluster may have none
_WAIT_POLL_S = 10.0
_NO_WORKERS_S = 60.0


def default_window(client) -> int:
    try:
        threads = sum(client.nthreads().values())
    except Exception:
        threads = 2
    return max(4, 3 * threads)


def worker_death_message(exc: BaseException) -> str:
    """What a site's error record says when its worker died every time it was tried."""
    text = " ".join(str(exc).split())
    return ("the worker process died while processing this site, every time it was tried (killed, or out of "
            f"memory: raise the worker memory limit or use fewer threads per worker) [{type(exc).__name__}: "
            f"{text[:200]}]")



def _ignore_interrupt_plugin():
    """A worker plugin: Ctrl-C on a terminal reaches every process of the group; the run's client
    handles it (abandons the sites in flight, exits 130), the workers just stop with the cluster."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreInterrupt(WorkerPlugin):
        name = "cpfeatures-ignore-sigint"

        def setup(self, worker=None):
            import signal

            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            except ValueError:  # not the main thread of this worker process
                pass

    return IgnoreInterrupt()


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int | None, threads_per_worker: int | None, memory_limit=None,
            worker_retries: int = 2, timeout: float = 30.0):
    """A dask client: an existing cluster (``scheduler``) or a local one sized to the machine."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise CpfeaturesError(f"cannot reach the dask scheduler at {scheduler} within {timeout:g} s "
                                  f"({type(exc).__name__}): is it running, is the address tcp://HOST:PORT right, "
                                  "and is that port open from here? (--scheduler-timeout to wait longer)") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or max(1, (os.cpu_count() or 1))
    # a site whose worker dies (SIGKILL, out of memory) is tried again on another worker this many times
    with dask.config.set({"distributed.scheduler.allowed-failures": int(worker_retries)}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker or 1, processes=True,
                               # the scheduler's HTTP server on a free loopback port: never "port 8787 is in
                               # use" on a second run, never reachable from other machines
                               dashboard_address="127.0.0.1:0", memory_limit=memory_limit or "auto")
    client = Client(cluster)
    try:
        client.register_plugin(_ignore_interrupt_plugin())
        yield client
    finally:
        client.close()
        cluster.close()



def compile_in_workers(client, cfg: dict, roles: list[str], bar) -> None:
    """On a machine's first run, each local worker compiles its share of the numba kernels.

    The parts are balanced by compile cost (:func:`cpfeatures.run.warmup.plan_parts`); afterwards
    every worker loads the others' kernels from numba's on-disk cache, so the first run
    compiles once, in parallel, instead of all over again in every worker.
    """
    from distributed import as_completed

    from .warmup import compile_kernels, kernels_cached, plan_parts

    if kernels_cached():
        return
    workers = sorted(client.scheduler_info()["workers"])
    parts = plan_parts(cfg, len(workers))
    task = bar.add("compiling", len(parts))
    futures = [client.submit(compile_kernels, cfg, roles, part, workers=[address], allow_other_workers=False,
                             pure=False, key=f"compile-{i}-{time.time_ns()}")
               for i, (part, address) in enumerate(zip(parts, workers))]
    for fut in as_completed(futures):
        try:
            fut.result()
        except Exception as exc:  # never stop a run: the workers then compile what they need themselves
            warnings.warn(f"compiling the kernels ahead of the sites failed ({type(exc).__name__}: {exc}); each "
                          "worker compiles them when it needs them", RuntimeWarning, stacklevel=2)
        bar.advance(task, 1)
