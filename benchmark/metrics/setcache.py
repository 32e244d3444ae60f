"""Stored evaluation sets kept inflated in memory for the life of the process.

A run scores its model on the same stored sets after every epoch, and a sweep's ensembles score
theirs on the same file one after another. Inflating a set's gzip chunks again each time costs
about 4–7 µs per image on the 2-core CPU (0.6–0.9 s of a 13-second ``quick`` evaluation of the
thesis encoder) and would be most of an evaluation on a GPU, where encoding is cheap. So a set is
read once, whole, by ``benchmark.datasets.verified.read_verified_rows`` (chunks inflated in a
thread pool and checked against the build's checksums), and kept.

The key is the file's identity on disk (device, inode, size, modification time) and the dataset's
name, so a rebuilt or edited file is read afresh; a set kept with more rows than asked for
serves the request (the ``quick`` sizes are the first rows of the ``full`` ones). Sets are kept
while they fit in a budget: a quarter of the memory available when the cache is first used, or
``BENCH_EVAL_CACHE_MB`` megabytes (0 turns the cache off). A set that does not fit beside those
already kept is streamed chunk by chunk as before (the ``quick`` sets of per-epoch scoring stay;
the larger ``full`` sets of the final score are kept only while room is left). Readers get copies,
so a representation function that writes into its input cannot change what the next one sees.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Hashable

import numpy as np

from spritegen.errors import SpecError
from spritegen.memory import available_memory

#: Environment variable: the cache's budget in megabytes (0: no cache).
BUDGET_ENV = "BENCH_EVAL_CACHE_MB"
#: Share of the available memory the cache may hold when the budget is not set.
MEMORY_SHARE = 0.25


def file_identity(path: str | os.PathLike) -> Hashable | None:
    """What tells one version of a file from another; None when it cannot be told (no such
    file on disk, e.g. an in-memory HDF5 file), which keeps its sets out of the cache."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def budget_from_environment() -> int | None:
    """``BENCH_EVAL_CACHE_MB`` in bytes, or None when it is not set."""
    value = os.environ.get(BUDGET_ENV, "").strip()
    if not value:
        return None
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not (megabytes >= 0 and math.isfinite(megabytes)):
        raise SpecError(
            f"{BUDGET_ENV}={value!r}: must be a number of megabytes, 0 or more "
            "(0 turns the cache of evaluation sets off)"
        )
    return int(megabytes * 2**20)


class SetCache:
    """Arrays of one file at a time, within ``budget`` bytes (None: see ``budget``).

    A set is admitted only if it fits beside what is held; sets of the same file are never evicted
    for one another (a ``full`` evaluation whose sets do not all fit would otherwise evict and
    reread every set at every call), and a set of another file first drops every other file's
    sets (a sweep process moves on to the next dataset)."""

    def __init__(self, budget: int | None = None) -> None:
        self._budget = budget
        self._share: int | None = None  # MEMORY_SHARE of the memory available at first use
        self._sets: dict[tuple[Hashable, Hashable], np.ndarray] = {}
        self._held = 0
        self._lock = threading.Lock()
        self.reads = 0  # sets read whole from their files (tests and benchmarks look at these)
        self.hits = 0

    @property
    def budget(self) -> int:
        """The budget given, else ``BENCH_EVAL_CACHE_MB`` (read at every use, so a process can
        change it), else MEMORY_SHARE of the memory available when first asked."""
        if self._budget is not None:
            return self._budget
        from_env = budget_from_environment()
        if from_env is not None:
            return from_env
        if self._share is None:
            self._share = int(available_memory() * MEMORY_SHARE)
        return self._share

    @property
    def held_bytes(self) -> int:
        return self._held

    def get(
        self,
        file: Hashable,
        name: Hashable,
        rows: int,
        nbytes: int,
        load: Callable[[], np.ndarray],
    ) -> np.ndarray | None:
        """At least the first ``rows`` rows (``nbytes`` bytes) of set ``name`` of ``file``: kept,
        or loaded by ``load()`` and kept; None when they do not fit (the caller streams them).
        A set kept with more rows serves fewer (a ``quick`` evaluation after a ``full`` one);
        one kept with fewer is replaced. Not a copy: callers hand out copies of slices."""
        budget = self.budget
        key = (file, name)
        with self._lock:
            if self._held > budget:  # the budget was lowered (0: the cache turned off)
                self._sets.clear()
                self._held = 0
            kept = self._sets.get(key)
            if kept is not None and len(kept) >= rows:
                self.hits += 1
                return kept
            for other in [k for k in self._sets if k[0] != file]:
                self._held -= self._sets.pop(other).nbytes
            smaller = 0 if kept is None else kept.nbytes  # freed once the larger one is read
            if nbytes <= 0 or self._held - smaller + nbytes > budget:
                return None
            self._held += nbytes  # reserved before reading, so the budget bounds the peak too
        try:
            array = load()
        except BaseException:
            with self._lock:
                self._held -= nbytes
            raise
        with self._lock:
            self.reads += 1
            replaced = self._sets.pop(key, None)
            self._held += array.nbytes - nbytes - (0 if replaced is None else replaced.nbytes)
            self._sets[key] = array
        return array

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()
            self._held = 0


#: The process's cache of stored evaluation sets (``benchmark.metrics.sources.StoredSource``).
EVAL_SETS = SetCache()
