"""Where independent pieces of work run: in this process, in a local process pool, or on Ray.

``spritegen build`` renders a dataset's shards and ``bench sweep`` trains many models; both are
maps of a picklable function over independent items, and this is the one module that runs them.
Keeping the choice of machine behind one small interface lets the same build run on a laptop or a
Ray cluster and give the same bytes: ``map_ordered`` returns results in item order whatever
finished first (builds). ``map_completed`` yields each item with its result as soon as it is done,
an exception as a result, so one failing run never stops the others (sweeps).

This module imports neither torch nor ``benchmark``; Ray is imported only when a Ray executor is
made (it is the optional extra ``spritegen[ray]``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from spritegen.errors import BuildError, SpecError, first_line, quote

T = TypeVar("T")
R = TypeVar("R")

EXECUTOR_KINDS = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn`` over ``items``: results in item order, or as they complete."""

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def map_completed(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | Exception]]: ...

    def close(self) -> None: ...


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker end when the process that started it ends, however it ends.

    A SIGKILLed parent runs no cleanup, so its workers would live on rendering for nobody. On
    Linux the kernel sends SIGKILL to the worker when the parent dies (``PR_SET_PDEATHSIG``);
    elsewhere, or as a second line, a daemon thread polls ``os.getppid()``.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def worker_init(parent_pid: int) -> None:
    """Pool worker start: die with the parent, and leave Ctrl-C to the parent.

    A terminal's Ctrl-C reaches every process of the foreground group; only the parent should act
    on it (stop, report one line, exit 130), not print a KeyboardInterrupt traceback per worker.
    SIGINT stays blocked from spawn (see ``sigint_blocked``) until it is ignored here. Any
    process pool of the project can use it:
    ``ProcessPoolExecutor(..., initializer=worker_init, initargs=(os.getpid(),))``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(parent_pid)


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while worker processes may be spawned.

    A spawned child inherits the blocked mask, so a Ctrl-C arriving while it still imports stays
    pending until its initializer ignores it; here the signal is delivered when unblocked.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start_worker(
    parent_pid: int,
    ignore_sigint: bool,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Every pool worker: die with the parent (and leave Ctrl-C to it, unless the caller wants
    its workers interrupted too), then the caller's own initializer."""
    if ignore_sigint:
        worker_init(parent_pid)
    else:
        _die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


class LocalExecutor:
    """A pool of ``workers`` spawned processes; ``map_ordered`` with ``workers=1`` runs inline.

    Spawn (not fork) so that workers start clean: no inherited threads, OpenGL contexts or
    torch state. At most ``window`` items are in flight in ``map_ordered``, so results of a long
    map are not all held in memory at once. Workers die with this process (even after SIGKILL) and
    by default ignore Ctrl-C, which this process handles; ``initializer(*initargs)`` then runs in
    each worker (a sweep pins its worker to a GPU there).
    """

    def __init__(
        self,
        workers: int | None = None,
        window: int | None = None,
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        ignore_sigint: bool = True,
    ) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 1:
            raise SpecError(f"workers: must be a positive integer, got {workers}")
        self.workers = workers
        self.window = window or 2 * workers
        self.initializer, self.initargs = initializer, initargs
        self.ignore_sigint = ignore_sigint
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(), self.ignore_sigint, self.initializer, self.initargs),
            )
        return self._pool

    def map_completed(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | Exception]]:
        """``(item, fn(item))`` as each item finishes; an exception ``fn`` raised (or a worker
        that died: ``BrokenProcessPool``) comes back as the result. Always in worker processes,
        even with one worker, so each item runs isolated from this process."""
        pool = self._get_pool()
        with sigint_blocked():  # submit may spawn a worker
            futures = {pool.submit(fn, item): item for item in items}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    yield futures[fut], fut.result()
                except Exception as exc:
                    yield futures[fut], exc

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.workers == 1:
            for item in items:
                yield fn(item)
            return
        pool = self._get_pool()
        pending: deque[Future] = deque()
        for item in items:
            with sigint_blocked():  # submit may spawn a worker
                pending.append(pool.submit(fn, item))
            if len(pending) >= self.window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_ray() -> Any:
    """Import Ray, or explain in one line how to get it."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SpecError(
            "executor: 'ray' needs the optional Ray extra; install it with pip install "
            "'spritegen[ray]'"
        ) from exc
    return ray


def ensure_ray(address: str | None = None, **init_kwargs: Any) -> Any:
    """Connect to Ray once per process: to ``address`` if given, else start a local instance.

    If Ray is already initialised (e.g. a test started it with its own temp dir) it is reused.
    """
    ray = import_ray()
    if not ray.is_initialized():
        if address:
            check_reachable(address)
            init_kwargs["address"] = address
        init_kwargs.setdefault("log_to_driver", False)
        try:
            ray.init(**init_kwargs)
        except ConnectionError as exc:  # Ray found no cluster where it was sent
            if not address:
                raise
            raise BuildError(
                f"--address {quote(address)}: Ray found no cluster there ({first_line(exc)}); "
                f"{START_A_CLUSTER}"
            ) from exc
    return ray


#: Seconds to wait for a Ray cluster's port to accept a connection before giving up.
CONNECT_TIMEOUT_S = 10.0


#: What every "no cluster there" line advises.
START_A_CLUSTER = "start one with 'ray start --head' on that machine, or check the address and port"


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address that no cluster answers at, before ``ray.init`` is given it.

    ``ray.init`` retries an unreachable GCS address for many minutes, printing a warning now
    and then, so a typo in ``--address`` looked like a hang. ``local`` is left to Ray (it starts
    an instance). ``auto`` is looked up as Ray looks it up (``RAY_ADDRESS``, then the cluster
    this machine started or runs) and what it names is checked like any address: with no
    cluster, ``ray.init`` ended ``--address auto`` (the README's example) in a traceback, after a
    sweep had written its folder.
    """
    if address == "local":
        return
    shown = quote(address)
    if address == "auto":
        found = _auto_address()
        if found in (None, "auto", "local"):  # not looked up here: left to ray.init
            return
        assert found is not None
        shown, address = f"{shown} ({quote(found)})", found
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(
            f"--address {shown}: expected 'auto', HOST:PORT (the head node's GCS, "
            "port 6379 by default) or ray://HOST:PORT (Ray Client, port 10001 by default)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BuildError(
            f"--address {shown}: no Ray cluster answers there ({reason}); {START_A_CLUSTER}"
        ) from exc


def _auto_address() -> str | None:
    """The address Ray's ``auto`` stands for, found as ``ray.init`` finds it but without
    connecting; a BuildError when there is none; None when this Ray version's lookup (a private
    function) is not there, leaving ``auto`` to ``ray.init``."""
    import_ray()
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # pragma: no cover - depends on the Ray version
        return None
    try:
        return str(get_ray_address_from_environment("auto", None))
    except ConnectionError as exc:
        raise BuildError(
            "--address 'auto': Ray finds no running cluster on this machine (RAY_ADDRESS is not "
            "set and no cluster was started here); start one with 'ray start --head', or give "
            "the head node's HOST:PORT"
        ) from exc


def _apply(fn: Callable[[T], R], item: T) -> R:
    """Ray task body: any picklable callable (builtins and bound methods included) on one item."""
    return fn(item)


class RayExecutor:
    """Runs each item as a Ray task with ``num_cpus`` (and ``num_gpus``) reserved.

    Connects to ``address`` (``"auto"`` for the cluster this machine belongs to, or
    ``"ray://host:10001"``); without one, starts a local Ray instance. ``fn`` must be importable on
    the workers (the package installed there). Results return through Ray's object store in item
    order; at most ``window`` tasks are submitted ahead of the one being collected. ``env_vars``
    are set in every task's process: on a cluster the workers do not inherit the driver's
    environment.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        window: int | None = None,
        env_vars: dict[str, str] | None = None,
        **init_kwargs: Any,
    ) -> None:
        self.ray = ensure_ray(address, **init_kwargs)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        # Ray merges a task's env_vars into the job's, so this adds to what ray.init was given.
        self.task_options: dict[str, Any] = (
            {"runtime_env": {"env_vars": dict(env_vars)}} if env_vars else {}
        )
        total = int(self.ray.cluster_resources().get("CPU", 1))
        self.window = window or max(2, 2 * total)

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        remote = self.ray.remote(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, **self.task_options
        )(_apply)
        fn_ref = self.ray.put(fn)  # shipped once, not with every item
        pending: deque = deque()
        try:
            for item in items:
                pending.append(remote.remote(fn_ref, item))
                if len(pending) >= self.window:
                    yield self.ray.get(pending.popleft())
            while pending:
                yield self.ray.get(pending.popleft())
        finally:
            self._cancel(pending)

    def map_completed(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        on_stop: Callable[[T, R | Exception], None] | None = None,
        stop_wait_s: float = 0.0,
    ) -> Generator[tuple[T, R | Exception], None, None]:
        """``(item, fn(item))`` as each task finishes; a task's exception comes back as its
        result. Tasks are not retried: a failed run is reported, not run twice.

        When the map ends early (Ctrl-C, a caller that stops reading) the tasks not collected are
        killed, unless ``on_stop`` is given: then each is asked to stop (``ray.cancel`` without
        force raises KeyboardInterrupt in it, as Ctrl-C would), they get up to ``stop_wait_s``
        seconds in all to end, those still running are killed, and ``on_stop(item, result)`` is
        called for each: what it returned, the exception it ended with, or a ``TimeoutError`` for
        one killed. A second Ctrl-C cuts the wait short and is raised once ``on_stop`` is done.
        """
        remote = self.ray.remote(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0, **self.task_options
        )(_apply)
        fn_ref = self.ray.put(fn)
        refs = {remote.remote(fn_ref, item): item for item in items}
        pending = list(refs)
        try:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield refs[ref], self.ray.get(ref)
                    except Exception as exc:
                        yield refs[ref], exc
        finally:
            if on_stop is None:
                self._cancel(pending)
            elif pending:
                self._stop(pending, refs, on_stop, stop_wait_s)

    def _stop(
        self,
        pending: list[Any],
        refs: dict[Any, T],
        on_stop: Callable[[T, R | Exception], None],
        wait_s: float,
    ) -> None:
        """Ask the ``pending`` tasks to stop, wait up to ``wait_s`` for them, kill the rest, and
        hand each one's end to ``on_stop`` (see ``map_completed``)."""
        for ref in pending:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=False)
        again: BaseException | None = None
        ended: set[Any] = set()
        try:
            ended = set(self.ray.wait(pending, num_returns=len(pending), timeout=wait_s)[0])
        except KeyboardInterrupt as exc:  # a second Ctrl-C: wait no longer
            again = exc
        finally:
            self._cancel([ref for ref in pending if ref not in ended])
        for ref in pending:
            result: Any
            if ref in ended:
                try:
                    result = self.ray.get(ref)
                except Exception as exc:
                    result = exc
            else:
                result = TimeoutError("killed before it stopped")
            with contextlib.suppress(Exception):
                on_stop(refs[ref], result)
        if again is not None:
            raise again

    def _cancel(self, refs: Iterable[Any]) -> None:
        """Stop the tasks not collected when a map ends early (Ctrl-C, an error, a caller that
        stopped reading): they would otherwise go on using the cluster for results nobody
        reads. Their workers are killed (``force``); nothing of theirs is kept."""
        for ref in refs:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        """Leave Ray running: the caller that started it decides when to shut it down."""

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(
    kind: str = "local", workers: int | None = None, address: str | None = None, **kwargs: Any
) -> LocalExecutor | RayExecutor:
    """The executor named by a ``--executor`` flag (``local`` or ``ray``)."""
    if kind == "local":
        return LocalExecutor(workers=workers, **kwargs)
    if kind == "ray":
        return RayExecutor(address=address, **kwargs)
    raise SpecError(f"executor: must be one of {', '.join(EXECUTOR_KINDS)}, got {quote(kind)}")
