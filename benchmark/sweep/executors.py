"""Where a sweep's runs train: the project's executors (``spritegen.executors``: a local pool of
spawned processes, or Ray tasks), adapted to runs.

Both yield ``Outcome`` objects as runs finish (not in submission order), so the progress display
and the bookkeeping advance as soon as any run is done. What is sweep-specific lives here: one
worker per GPU (pinned in its initializer), torch threads shared fairly, failures as Outcomes, and
run folders trained on Ray nodes (finished or stopped) unpacked into the sweep folder.

Ctrl-C stops every local run within about one optimiser step. Workers ignore the terminal's
SIGINT while they start (as a build's do, ``spritegen.executors.worker_init``); then each installs
its own SIGINT handler, which interrupts the run in progress exactly as Ctrl-C interrupts `bench
run` (a ``KeyboardInterrupt``; the run folder keeps its last checkpoint and resumes from it). The
parent does not rely on the terminal reaching its workers: on an interrupt it sets a shared
``stop`` event, which a thread of each worker turns into that SIGINT, and a task a worker takes
after the event is refused unstarted, so no new run begins.

A worker that dies (the kernel's OOM killer, a SIGKILL, a crash) breaks Python's process pool,
which then fails every task in flight or queued and ends the other workers with SIGTERM. The
local pool finds out which run's worker died (each worker notes the task it trains on a shared
board, which the pool's SIGTERM wipes), fails that run alone, and trains the others in a fresh
pool: a run the pool ended resumes from its last checkpoint, a queued one starts.

On Ray the tasks are asked to stop too (a KeyboardInterrupt in each, ``ray.cancel`` without
force), and each run keeps the last checkpoint that reached the driver (``RayRunPool``).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from benchmark.metrics.setcache import BUDGET_ENV
from benchmark.sweep.deliveries import (
    DELIVERIES,
    Held,
    adopt_kept,
    deliveries_dir,
    place,
    remove_kept,
    write_kept,
)
from benchmark.sweep.execute import (
    ENSEMBLE_LOG,
    EnsembleTask,
    Outcome,
    RunTask,
    read_log,
    run_any,
    run_any_packed,
    unpack_delivery,
    unpack_outcome,
    with_folders,
    without_foreign_folders,
    write_log,
)
from spritegen.errors import SpecError, SpritegenWarning
from spritegen.executors import LocalExecutor, RayExecutor

SWEEP_EXECUTORS = ("local", "ray")
Task = RunTask | EnsembleTask
#: Variables of the driver's environment that change how a run behaves, set in every Ray task.
FORWARDED_ENV = (BUDGET_ENV,)


def forwarded_environment() -> dict[str, str]:
    """The ``FORWARDED_ENV`` variables the driver has set, for its Ray tasks."""
    return {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}


def count_gpus() -> int:
    """CUDA devices visible to this process (torch is the bench extra's, always installed)."""
    import torch

    return torch.cuda.device_count()


class _WorkerState:
    """What a sweep worker knows about stopping: the parent's event, and its own run."""

    stop: Any = None  # the parent's multiprocessing Event: set on Ctrl-C
    running = False  # a run is training in this process now
    interrupted = False  # this process has interrupted a run: it takes no more
    board: Any = None  # the parent's RawArray: per worker slot, 1 + the task it trains, or 0
    slot = 0  # this worker's place on the board


def _interrupt_run(signum: int, frame: Any) -> None:
    """SIGINT in a worker: stop the run in progress as Ctrl-C stops `bench run`. Once only, and
    never between runs, where a KeyboardInterrupt would kill the pool's worker loop instead."""
    if _WorkerState.running and not _WorkerState.interrupted:
        _WorkerState.interrupted = True
        raise KeyboardInterrupt


def _relay_stop(stop: Any) -> None:
    """Turn the parent's stop event into a SIGINT for this worker's main thread."""
    stop.wait()
    os.kill(os.getpid(), signal.SIGINT)


def _ended_by_pool(signum: int, frame: Any) -> None:
    """SIGTERM in a worker: the pool ends its workers so, once one of them died. Take this
    worker's task off the board first, so the parent knows it did not die of that task; its
    run folder keeps its last checkpoint, as after any kill."""
    if _WorkerState.board is not None:
        _WorkerState.board[_WorkerState.slot] = 0
    os._exit(128 + signum)


def _init_worker(slots: Any, threads: int, gpu: bool, stop: Any = None, board: Any = None) -> None:
    """Pin a worker to one GPU (or share the CPU cores fairly) before torch is imported, and
    make it stop its run when the parent sets ``stop`` (or the terminal's Ctrl-C reaches it).
    With a ``board``, it notes there which task it trains (``run_numbered``)."""
    slot = slots.get()
    if board is not None:
        _WorkerState.board, _WorkerState.slot = board, slot
        signal.signal(signal.SIGTERM, _ended_by_pool)
    if gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    os.environ["TQDM_DISABLE"] = "1"  # one progress display: the sweep's
    if stop is not None:
        _WorkerState.stop = stop
        signal.signal(signal.SIGINT, _interrupt_run)
        threading.Thread(target=_relay_stop, args=(stop,), name="sweep-stop", daemon=True).start()


def run_unless_stopped(task: Task) -> list[Outcome]:
    """``run_any`` in a local worker, unless the sweep was interrupted: a task taken from the
    queue after Ctrl-C is refused (KeyboardInterrupt) before it writes anything."""
    stop = _WorkerState.stop
    if _WorkerState.interrupted or (stop is not None and stop.is_set()):
        raise KeyboardInterrupt
    _WorkerState.running = True
    try:
        return run_any(task)
    finally:
        _WorkerState.running = False


def run_numbered(item: tuple[int, Task]) -> list[Outcome]:
    """``run_unless_stopped`` of the task numbered ``item[0]``, noted on the parent's board
    meanwhile: should this worker die while it trains, the parent knows whose run killed it."""
    number, task = item
    board = _WorkerState.board
    if board is not None:
        board[_WorkerState.slot] = number + 1
    try:
        return run_unless_stopped(task)
    finally:
        if board is not None:
            board[_WorkerState.slot] = 0


def _failed(task: Task, error: str) -> Iterator[Outcome]:
    """A failed Outcome for the task's point, or for each point of an ensemble."""
    for m in task.members if isinstance(task, EnsembleTask) else (task,):
        yield Outcome(m.id, False, 0.0, error=error)


#: Why a run whose worker process died failed (the kernel's OOM killer sends SIGKILL).
WORKER_DIED = "worker process died (out of memory or killed?)"


def _why(exc: Exception) -> str:
    if isinstance(exc, BrokenProcessPool):
        return WORKER_DIED
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class LocalRunPool:
    """Spawned worker processes: one per GPU when there are GPUs, else ``workers`` of them.

    Without GPUs each worker gets ``cores // workers`` torch threads so the runs do not fight
    for the cores.
    """

    def __init__(self, workers: int | None = None, gpus: int | None = None) -> None:
        self.gpus = count_gpus() if gpus is None else gpus
        if workers is not None and workers < 1:
            raise SpecError(f"--workers: must be a positive integer, got {workers}")
        if self.gpus > 0:
            self.workers = self.gpus if workers is None else min(workers, self.gpus)
        else:
            self.workers = workers or 1
        self.threads = max(1, (os.cpu_count() or 1) // self.workers)

    def describe(self) -> str:
        if self.gpus:
            return f"local pool, {self.workers} worker(s), one GPU each"
        return f"local pool, {self.workers} worker(s), {self.threads} thread(s) each"

    def run(self, tasks: Sequence[Task]) -> Generator[Outcome, None, None]:
        """Each task's outcomes, as they finish. A worker that dies fails its own task alone:
        the tasks the broken pool dropped (ended with its other workers, or not started) are
        trained in a fresh pool, each run resuming from its folder (``_run_pool``)."""
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        todo = list(tasks)
        while todo:
            dropped: list[int] = []
            yield from self._run_pool(context, stop, todo, dropped)
            todo = [todo[i] for i in dropped]

    def _run_pool(
        self, context: Any, stop: Any, tasks: list[Task], dropped: list[int]
    ) -> Generator[Outcome, None, None]:
        """The outcomes of ``tasks`` trained in one pool of workers; when a worker died, the
        task it trained fails with ``WORKER_DIED`` and the numbers of the tasks the broken pool
        dropped unfinished go into ``dropped``. If no task can be blamed (a worker died between
        tasks), every one the pool dropped fails, so that a pool breaking over and over ends."""
        slots = context.Queue()
        for i in range(self.workers):
            slots.put(i)
        # per worker slot: 1 + the number of the task it trains, 0 when idle or ended by the pool
        board = context.RawArray("q", self.workers)
        broken: list[int] = []
        with LocalExecutor(
            self.workers,
            initializer=_init_worker,
            initargs=(slots, self.threads, self.gpus > 0, stop, board),
        ) as executor:
            try:
                for (i, task), result in executor.map_completed(run_numbered, enumerate(tasks)):
                    if isinstance(result, BrokenProcessPool):
                        broken.append(i)
                    elif isinstance(result, Exception):
                        yield from _failed(task, _why(result))
                    else:
                        yield from result
            except BaseException:
                # Ctrl-C (or the caller gave up): stop every run before the pool is shut down,
                # which waits for them; each leaves its folder resumable
                stop.set()
                raise
        # shut down: every worker has ended, and those the pool ended took their task off
        died = {board[s] - 1 for s in range(self.workers)} & set(broken)
        for i in broken:
            if i in died or not died:
                _note_in_log(tasks[i], WORKER_DIED)
                yield from _failed(tasks[i], WORKER_DIED)
            else:
                dropped.append(i)


def _note_in_log(task: Task, error: str) -> None:
    """Append why the run failed to each of its points' ``<id>.log``: a worker that died wrote
    no traceback there. An ensemble's output so far (``<first>.ensemble.log``, which its dead
    worker could not copy nor remove) becomes each member's log, followed by the error: the log
    failures.json names for it (the ensemble's own log used to stay, named after one member,
    until a later start happened to overwrite it)."""
    if isinstance(task, EnsembleTask):
        ensemble_log = Path(task.runs_dir) / f"{task.members[0].id}{ENSEMBLE_LOG}"
        text = read_log(ensemble_log)
        for m in task.members:
            write_log(Path(m.runs_dir) / f"{m.id}.log", f"{text}{error}\n")
        ensemble_log.unlink(missing_ok=True)
        return
    log = Path(task.runs_dir) / f"{task.id}.log"
    write_log(log, f"{read_log(log)}{error}\n")


class Mailbox:
    """The driver's Ray actor that keeps, per run id, the latest folder its task sent
    (``benchmark.sweep.execute.Courier``: the run folder and log as ``pack`` packs them, at the
    optimiser step of its checkpoint). A later delivery replaces an earlier one unless it is at
    an earlier step.

    With ``keep`` (the sweep folder's ``.deliveries``) it also writes each task's latest
    deliveries there (``deliveries.write_kept``: one fsynced file per task, an ensemble's runs
    together) before a delivery counts as made, so that a driver killed with its actor leaves
    them for the next start (``deliveries.adopt_kept``). Only where ``place`` (the driver's
    ``deliveries.place`` of the sweep folder) is this actor's own: the folder it would write is
    the driver's. Writing never fails a delivery: on an error (a full disk) the mailbox keeps
    them in memory only, as before, and says why in ``disk_error``."""

    def __init__(self, keep: str | None = None, where: tuple[str, int, int] | None = None) -> None:
        #: task key (its first run's id) -> run id -> (step, packed)
        self.latest: dict[str, Held] = {}
        self.key_of: dict[str, str] = {}
        self.keep: Path | None = None
        self.disk_error = ""
        if keep is not None and where is not None:
            with contextlib.suppress(OSError):
                if place(Path(keep).parent) == tuple(where):
                    self.keep = Path(keep)

    def put(self, key: str, sent: Held) -> None:
        """The runs of one task (``key``: its first run's id), each at its checkpoint's step."""
        held = self.latest.setdefault(key, {})
        changed = False
        for run_id, (step, packed) in sent.items():
            if run_id not in held or step >= held[run_id][0]:
                held[run_id] = (step, packed)
                self.key_of[run_id] = key
                changed = True
        if changed:
            self._write(key)

    def _write(self, key: str) -> None:
        if self.keep is None:
            return
        try:
            if self.latest.get(key):
                write_kept(self.keep, key, self.latest[key])
            else:
                remove_kept(self.keep, key)
        except Exception as exc:  # kept in memory all the same
            self.disk_error = f"{type(exc).__name__}: {exc}"

    def take(self, run_ids: list[str]) -> Held:
        """The latest delivery of each of ``run_ids`` that sent one, forgotten here (its file is
        removed by ``drop``, once the driver has unpacked it)."""
        out: Held = {}
        for i in run_ids:
            held = self.latest.get(self.key_of.get(i, ""), {})
            if i in held:
                out[i] = held.pop(i)
        return out

    def drop(self, run_ids: list[str]) -> None:
        """Forget ``run_ids``, on disk too: their folders are in the sweep folder now."""
        for key in {self.key_of.pop(i) for i in run_ids if i in self.key_of}:
            held = self.latest.get(key, {})
            for i in run_ids:
                held.pop(i, None)
            if not held:
                self.latest.pop(key, None)
            self._write(key)

    def close(self) -> str:
        """Write nothing more (the driver settles what is on disk now); why writing failed."""
        self.keep = None
        return self.disk_error


#: Seconds the driver gives the tasks it asks to stop on Ctrl-C to send their last state.
STOP_WAIT_S = 20.0
#: Seconds to wait for the mailbox to hand over what the runs that did not return sent.
TAKE_TIMEOUT_S = 120.0


def _ids(task: Task) -> list[str]:
    return [m.id for m in task.members] if isinstance(task, EnsembleTask) else [task.id]


class RayRunPool:
    """Each run is a Ray task reserving ``cpus_per_run`` CPUs and one GPU when the cluster has any.

    The task trains in a scratch folder of its node and sends the run folder back (with its log
    when it did not finish), which is unpacked into the sweep folder here: the driver's sweep
    folder gathers every result whether or not the nodes share a file system, and holds what a
    local pool would leave there, a stopped run's folder included; such an unfinished folder
    goes to the node with the next start's task, where the run resumes from its last checkpoint
    as it would locally. Dataset files must be readable at the same path on the nodes (a shared
    file system, see docs/sweeps.md). The benchmark's own settings in the driver's environment
    (``FORWARDED_ENV``) travel with each task, since a node's workers do not inherit them.

    A task that never returns keeps its progress too: each run sends its folder to the driver's
    ``Mailbox`` at every checkpoint, and when the task is lost (its worker or node died) or the
    sweep is interrupted, the latest one is unpacked into the sweep folder as a stopped run's
    (never over a finished folder or a later checkpoint, ``unpack_delivery``), so that the next
    start resumes the run from that checkpoint, as a local run resumes. Ctrl-C asks the running
    tasks to stop (a KeyboardInterrupt in each, as a local worker gets) and waits up to
    ``STOP_WAIT_S`` for them to send their last state.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_run: float = 1,
        gpus_per_run: float | None = None,
        **init_kwargs: Any,
    ) -> None:
        probe = RayExecutor(address, **init_kwargs)  # connects (or starts) Ray once
        resources = probe.ray.cluster_resources()
        self.cluster_gpus = int(resources.get("GPU", 0))
        self.cluster_cpus = int(resources.get("CPU", 0))
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = (
            (1 if self.cluster_gpus else 0) if gpus_per_run is None else gpus_per_run
        )
        self.executor = RayExecutor(
            address,
            num_cpus=cpus_per_run,
            num_gpus=self.gpus_per_run,
            env_vars=forwarded_environment(),
        )

    def describe(self) -> str:
        return (
            f"Ray cluster with {self.cluster_cpus} CPU(s), {self.cluster_gpus} GPU(s); "
            f"{self.cpus_per_run:g} CPU(s) and {self.gpus_per_run:g} GPU(s) per run"
        )

    def _mailbox(self, sweep_dir: Path) -> Any:
        """A ``Mailbox`` actor on the driver's node (it lives as long as the driver does), which
        keeps the deliveries in ``sweep_dir`` too where it can (``Mailbox``)."""
        ray = self.executor.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        actor = ray.remote(num_cpus=0, max_restarts=0, scheduling_strategy=here)(Mailbox)
        return actor.remote(str(deliveries_dir(sweep_dir)), place(sweep_dir))

    def run(self, tasks: Sequence[Task]) -> Generator[Outcome, None, None]:
        # a point whose folder holds files but no config.json fails here, before its task is
        # sent: what comes back from the node would replace the folder (a local start refuses
        # it under the folder's lock)
        sendable: list[Task] = []
        for task in tasks:
            rest, refused = without_foreign_folders(task)
            yield from refused
            if rest is not None:
                sendable.append(rest)
        tasks = sendable
        if not tasks:
            return
        sweep_dir = Path(tasks[0].runs_dir).parent
        mailbox = self._mailbox(sweep_dir)
        # an unfinished folder the sweep holds goes with its task: the run resumes from it
        shipped = [with_folders(task) for task in tasks]

        def stopped(task: Task, result: list[Outcome] | Exception) -> None:
            """A task that the sweep's Ctrl-C stopped: what it returned (it ended meanwhile),
            else the folders its runs last sent, as a local run leaves them when interrupted."""
            if isinstance(result, Exception):
                self._keep(task, mailbox)
                return
            for outcome in result:
                unpack_outcome(outcome, Path(task.runs_dir))
            mailbox.drop.remote(_ids(task))

        results = self.executor.map_completed(
            functools.partial(run_any_packed, mailbox=mailbox),
            shipped,
            on_stop=stopped,
            stop_wait_s=STOP_WAIT_S,
        )
        try:
            with contextlib.closing(results):
                for task, result in results:
                    runs_dir = Path(task.runs_dir)
                    if isinstance(result, Exception):
                        # the task itself failed (its worker died, ...): what came back is the
                        # error, and the folders its runs sent at their checkpoints
                        kept = self._keep(task, mailbox)
                        for outcome in _failed(task, _why(result)):
                            log = runs_dir / f"{outcome.id}.log"
                            if outcome.id in kept:
                                text = f"{read_log(log)}{outcome.error}\n{kept[outcome.id]}\n"
                            else:  # a log of an earlier start would mislead
                                text = outcome.error + "\n"
                            write_log(log, text)
                            yield outcome
                        continue
                    for outcome in result:
                        # finished, stopped or failed: the folder and log it left, as a local
                        # run leaves them
                        unpack_outcome(outcome, runs_dir)
                    # only now: a driver killed before this point finds them kept on disk
                    mailbox.drop.remote(_ids(task))
                    yield from result
        finally:
            self._close(mailbox, sweep_dir, [i for task in tasks for i in _ids(task)])

    def _close(self, mailbox: Any, sweep_dir: Path, run_ids: list[str]) -> None:
        """End the mailbox, once it has dealt with every ``drop`` sent to it (its calls run in
        order), and settle what it left on disk: a delivery it still keeps (a drop that did not
        arrive, a task stopped while a Ctrl-C was cut short) is unpacked as a next start would
        (``adopt_kept``), so that a start that ends leaves no ``.deliveries`` behind."""
        ray = self.executor.ray
        disk_error = ""
        with contextlib.suppress(Exception):
            disk_error = ray.get(mailbox.close.remote(), timeout=TAKE_TIMEOUT_S)
        if disk_error:  # the runs' progress was kept in the driver's memory only
            warnings.warn(
                f"the Ray runs' checkpoint deliveries could not be kept in {DELIVERIES}/ "
                f"({disk_error}); a killed driver would have lost them",
                SpritegenWarning,
                stacklevel=2,
            )
        with contextlib.suppress(Exception):
            ray.kill(mailbox)
        with contextlib.suppress(Exception):  # else the next start settles them
            adopt_kept(sweep_dir, run_ids)

    def _keep(self, task: Task, mailbox: Any) -> dict[str, str]:
        """Unpack the latest folder each run of ``task`` sent (``unpack_delivery``); for each run
        whose folder was so kept, a line saying where it resumes. The mailbox then forgets them,
        on disk too (not before: a driver killed meanwhile leaves them for the next start)."""
        ray = self.executor.ray
        try:
            sent = ray.get(mailbox.take.remote(_ids(task)), timeout=TAKE_TIMEOUT_S)
        except Exception:  # the mailbox is gone: nothing was kept
            return {}
        kept = {}
        for run_id, (step, packed) in sent.items():
            if unpack_delivery(run_id, step, packed, Path(task.runs_dir)):
                kept[run_id] = (
                    f"note: its folder as of its checkpoint at step {step} is kept; "
                    "the next start resumes it from there"
                )
        mailbox.drop.remote(_ids(task))
        return kept


def make_run_pool(
    kind: str, workers: int | None = None, address: str | None = None, **kwargs: Any
) -> LocalRunPool | RayRunPool:
    """The pool named by ``bench sweep --executor``."""
    check_executor(kind, address)
    if kind == "local":
        return LocalRunPool(workers=workers, **kwargs)
    return RayRunPool(address=address, **kwargs)


def check_executor(kind: str, address: str | None = None) -> None:
    """Refuse an executor name, or an address given to the local one, before a sweep writes or
    builds anything (the pool is made only once the datasets are built)."""
    if kind not in SWEEP_EXECUTORS:
        raise SpecError(f"--executor: must be one of {', '.join(SWEEP_EXECUTORS)}, got {kind!r}")
    if kind == "local" and address:
        raise SpecError("--address: only used with --executor ray")
