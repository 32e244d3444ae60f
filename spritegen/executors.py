"""Where independent pieces of work run: in this process, in a local process pool, or on Ray.

``spritegen build`` renders a dataset's shards and ``bench sweep`` trains many models; both are
maps of a picklable function over independent items. Keeping the choice of machine behind one
small interface (``map_ordered``) lets the same build run on a laptop or a Ray cluster and give the
same bytes, because results always come back in item order whatever finished first.

This module imports neither torch nor ``benchmark``; Ray is imported only when a Ray executor is
made (it is the optional extra ``spritegen[ray]``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from spritegen.errors import SpecError

T = TypeVar("T")
R = TypeVar("R")

EXECUTOR_KINDS = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and yields the results in the order of ``items``."""

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """A pool of ``workers`` spawned processes; ``workers=1`` runs inline in this process.

    Spawn (not fork) so that workers start clean: no inherited threads, OpenGL contexts or
    torch state. At most ``window`` items are in flight, so results of a long map are not all held
    in memory at once.
    """

    def __init__(self, workers: int | None = None, window: int | None = None) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 1:
            raise SpecError(f"workers: must be a positive integer, got {workers}")
        self.workers = workers
        self.window = window or 2 * workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.workers == 1:
            for item in items:
                yield fn(item)
            return
        pool = self._get_pool()
        pending: deque[Future] = deque()
        for item in items:
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
            init_kwargs["address"] = address
        init_kwargs.setdefault("log_to_driver", False)
        ray.init(**init_kwargs)
    return ray


def _apply(fn: Callable[[T], R], item: T) -> R:
    """Ray task body: any picklable callable (builtins and bound methods included) on one item."""
    return fn(item)


class RayExecutor:
    """Runs each item as a Ray task with ``num_cpus`` (and ``num_gpus``) reserved.

    Connects to ``address`` (``"auto"`` for the cluster this machine belongs to, or
    ``"ray://host:10001"``); without one, starts a local Ray instance. ``fn`` must be importable on
    the workers (the package installed there). Results return through Ray's object store in item
    order; at most ``window`` tasks are submitted ahead of the one being collected.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        window: int | None = None,
        **init_kwargs: Any,
    ) -> None:
        self.ray = ensure_ray(address, **init_kwargs)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        total = int(self.ray.cluster_resources().get("CPU", 1))
        self.window = window or max(2, 2 * total)

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        remote = self.ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus)(_apply)
        fn_ref = self.ray.put(fn)  # shipped once, not with every item
        pending: deque = deque()
        for item in items:
            pending.append(remote.remote(fn_ref, item))
            if len(pending) >= self.window:
                yield self.ray.get(pending.popleft())
        while pending:
            yield self.ray.get(pending.popleft())

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
    raise SpecError(f"executor: must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}")
