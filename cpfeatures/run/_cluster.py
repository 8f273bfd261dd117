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

__all__ = ["TaskWindow", "WorkersLostError", "cluster_client", "compile_in_workers", "scheduler_security",
           "warn_if_plain", "worker_death_message"]


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


#: address schemes whose connections dask encrypts with its TLS settings
_TLS_SCHEMES = ("tls", "wss")
#: what each TLS option is in dask's own configuration
_TLS_CONFIG = {"tls_ca_file": ("--tls-ca-file", "distributed.comm.tls.ca-file"),
               "tls_cert": ("--tls-cert", "distributed.comm.tls.client.cert"),
               "tls_key": ("--tls-key", "distributed.comm.tls.client.key")}


def _scheme(scheduler: str) -> str:
    from distributed.comm.addressing import parse_address

    try:
        return parse_address(scheduler)[0]
    except (ValueError, TypeError):
        return ""


def scheduler_security(scheduler: str | None, tls_ca_file=None, tls_cert=None, tls_key=None):
    """The ``distributed.security.Security`` to reach ``scheduler`` with (``None``: not a TLS address).

    Given files are used as given (``require_encryption=True``); a file not given comes from dask's
    configuration (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``, e.g. the
    ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE`` variable). Refused (:class:`CpfeaturesError`, one line):
    TLS files for a scheduler that is not ``tls://``, a ``tls://`` scheduler without a CA file or a
    client certificate, a file that does not exist or cannot be loaded.
    """
    given = {"tls_ca_file": tls_ca_file, "tls_cert": tls_cert, "tls_key": tls_key}
    given = {k: os.fspath(v) for k, v in given.items() if v is not None}
    if not scheduler and not given:
        return None
    names = "the option(s) " + ", ".join(_TLS_CONFIG[k][0] for k in given)
    if not scheduler:
        raise CpfeaturesError(f"{names} are for an existing scheduler reached over TLS (--scheduler tls://HOST:PORT); "
                              "the local cluster of a run without --scheduler stays on this machine")
    scheme = _scheme(scheduler)
    if scheme not in _TLS_SCHEMES:
        if given:
            raise CpfeaturesError(f"{names} are for a tls:// scheduler; {scheduler} is not encrypted and would not "
                                  f"use them (write tls://{scheduler.partition('://')[2] or scheduler})")
        return None
    import dask

    files = {}  # option -> (file, where it was set)
    for key, (option, config) in _TLS_CONFIG.items():
        if key in given:
            files[key] = (given[key], option)
        elif dask.config.get(config, None):
            files[key] = (os.fspath(dask.config.get(config)), f"dask configuration {config}")
    missing = [f"{what} ({_TLS_CONFIG[key][0]} or dask's {_TLS_CONFIG[key][1]})"
               for key, what in (("tls_ca_file", "the CA certificate that signed the scheduler's certificate"),
                                 ("tls_cert", "this client's certificate")) if key not in files]
    if missing:
        raise CpfeaturesError(f"the TLS scheduler {scheduler} needs {' and '.join(missing)}; neither an option nor "
                              "dask's configuration (e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE) gives it")
    for path, where in files.values():
        if "\n" not in path and not os.path.isfile(path):  # dask's configuration may hold the PEM text itself
            raise CpfeaturesError(f"no such file ({where})", path)
    return _load_security(scheduler, files)


def _load_security(scheduler: str, files: dict):
    """``Security`` of these files, loaded once here so a bad file is named now, not as "PEM lib" later."""
    import ssl

    from distributed.security import Security

    security = Security(tls_ca_file=files["tls_ca_file"][0], tls_client_cert=files["tls_cert"][0],
                        tls_client_key=files.get("tls_key", (None,))[0], require_encryption=True)
    try:
        security.get_connection_args("client")
    except (ssl.SSLError, OSError, ValueError) as exc:
        ca, where = files["tls_ca_file"]
        try:
            ssl.create_default_context(**({"cadata": ca} if "\n" in ca else {"cafile": ca}))
        except (ssl.SSLError, OSError, ValueError) as ca_exc:
            raise CpfeaturesError(f"not a PEM CA certificate ({where}; {_ssl_reason(ca_exc)})",
                                  None if "\n" in ca else ca) from None
        shown = {k: f"the PEM text of {where}" if "\n" in path else path for k, (path, where) in files.items()}
        cert = shown["tls_cert"]
        key = f"the key {shown['tls_key']}" if "tls_key" in shown else "its key in the same file (no --tls-key)"
        raise CpfeaturesError(f"cannot use the TLS client certificate {cert} with {key} for {scheduler}: not a "
                              f"PEM certificate and its private key, or they do not match ({_ssl_reason(exc)})"
                              ) from None
    return security


def _chain(exc: BaseException | None) -> list[BaseException]:
    """An exception and those it came from (``raise ... from``, or raised while handling)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _ssl_reason(exc: BaseException) -> str:
    """An OpenSSL error as its words: ``certificate verify failed: unable to get local issuer certificate``."""
    import re
    import ssl

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message:
            return f"certificate verify failed: {e.verify_message}"
    text = " ".join(" ".join(str(e) for e in chain).split())
    match = re.search(r"\[(?:SSL: |X509: )?[A-Z0-9_]+\] ([^(\[]+)", text)
    if match:
        return match.group(1).strip()
    text = re.sub(r"^in <[^>]*>: ", "", " ".join(str(chain[0]).split()))  # dask's "in <TLS (closed) ...>: "
    return re.sub(r" \(_ssl\.c:\d+\)", "", text) or type(chain[0]).__name__


def _handshake_failure(scheduler: str, exc: BaseException) -> str | None:
    """What went wrong in the TLS handshake with ``scheduler``, in one line (``None``: not a handshake failure)."""
    import ssl

    chain = _chain(exc)
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if not (any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in text or "TLS" in text):
        return None
    reason = _ssl_reason(exc)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "certificate verify failed" in reason:
        why = "its certificate is not signed by the CA given (--tls-ca-file), or has expired"
    elif any(s in reason.lower() for s in ("unknown ca", "certificate required", "bad certificate",
                                           "certificate expired", "certificate unknown")):
        why = "it refused this client's certificate (--tls-cert: not signed by the scheduler's CA, or expired)"
    elif "EOF" in text or "reset" in text.lower():
        why = ("it closed the connection during the handshake: it refused this client's certificate (--tls-cert: "
               "not signed by the scheduler's CA, or expired), or it does not speak TLS")
    else:
        why = "it does not answer as a TLS server (a tcp:// scheduler?)"
    return f"TLS handshake with the dask scheduler at {scheduler} failed: {why} ({reason})"


def _is_loopback(scheduler: str) -> bool | None:
    """Whether ``scheduler``'s host is this machine's loopback (``None``: no host to tell)."""
    import ipaddress

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        if scheme == "inproc":
            return True
        host = parse_host_port(location)[0]
    except (ValueError, TypeError):
        return None
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: not resolved here, reached from other machines as well
        return False


def warn_if_plain(scheduler: str) -> None:
    """One warning for a scheduler reached in plain text from another machine (not loopback, not TLS)."""
    if _scheme(scheduler) in _TLS_SCHEMES or _is_loopback(scheduler) is not False:
        return
    warnings.warn(f"the dask scheduler {scheduler} is not encrypted: anyone who reaches it runs code on its workers "
                  "with this run's credentials (plate, store, cloud keys); use a tls:// scheduler with certificates "
                  "(--tls-ca-file, --tls-cert, --tls-key)", UserWarning, stacklevel=2)


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int | None, threads_per_worker: int | None, memory_limit=None,
                   worker_retries: int = 2, timeout: float = 30.0, tls_ca_file=None, tls_cert=None, tls_key=None):
    """A dask client: an existing cluster (``scheduler``) or a local one sized to the machine.

    A ``tls://`` scheduler is reached with :func:`scheduler_security` (the files given, else dask's
    configuration); a plain one on another machine is warned about (:func:`warn_if_plain`).
    """
    import dask
    from distributed import Client, LocalCluster

    security = scheduler_security(scheduler, tls_ca_file, tls_cert, tls_key)
    if scheduler:
        warn_if_plain(scheduler)
        try:
            client = Client(scheduler, timeout=timeout, **({"security": security} if security else {}))
        except Exception as exc:  # whatever answers there, one line: never a traceback
            failure = _handshake_failure(scheduler, exc) if security else None
            if failure:
                raise CpfeaturesError(failure) from None
            if not isinstance(exc, (OSError, TimeoutError, ValueError)):  # something answered, not a scheduler
                raise CpfeaturesError(f"what answers at {scheduler} is not a dask scheduler ({type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:200]}): is the address right?") from None
            raise CpfeaturesError(f"cannot reach the dask scheduler at {scheduler} within {timeout:g} s "
                                  f"({type(exc).__name__}): is it running, is the address tcp:// or tls://HOST:PORT "
                                  "right, and is that port open from here? (--scheduler-timeout to wait longer)"
                                  ) from None
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
