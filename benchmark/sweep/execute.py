"""Running one point of a sweep: the single place where a sweep calls `bench run`.

A local run trains in place, into ``runs/<id>``; it counts as finished once its ``summary.json``
says ``"status": "finished"``, which bench run writes last. A sweep killed mid-run leaves the
folder with its checkpoint, and the next start resumes the run from there (bench run resumes an
unfinished folder with the same config). Errors are caught here and returned as data, so one
failing run never stops the others.

What a run leaves for the sweep is its folder ``runs/<id>`` and, when it did not finish, its
output ``runs/<id>.log`` (with the traceback, or a stopped ensemble member's error). A run that
stopped (its loss diverged, its model's code failed: ``STOPPED_LABELS``) keeps its folder: config,
metrics, the summary saying why, the last good checkpoint. On Ray a run trains in a scratch folder
of its node, and those same entries come back as tar bytes whatever the outcome, so that the
driver leaves in the sweep folder what a local run would have (``unpack_outcome``); an unfinished
folder the sweep holds goes to the node with the task (``with_folders``), so that the run resumes
from its last checkpoint there as it would locally. A run on Ray also sends its folder to the
driver at every checkpoint (``Courier``), so that a task that never returns (its worker lost, the
sweep interrupted) leaves its runs' folders as of their last checkpoint (``unpack_delivery``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmark.files import (
    PARTIAL,
    SWEEP_LOG,
    RunFolderBusy,
    read_regular_bytes,
    run_folder_lock,
    write_text_atomic,
)
from benchmark.params import BY_KEY
from spritegen import atomic
from spritegen.errors import SpritegenError, quote_some

SUMMARY = "summary.json"
UNPACK_SUFFIX = ".unpacking"
LOG_NAME = SWEEP_LOG
#: The suffix of an ensemble's output while it trains: ``runs/<first member>.ensemble.log``.
ENSEMBLE_LOG = ".ensemble.log"
#: How an ensemble member's stopped run is labelled in failures.json, by its summary's status:
#: the exception a single run would have raised (benchmark.train).
STOPPED_LABELS = {"diverged": "TrainingDiverged", "failed": "ModelFailed"}


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to train one point; picklable, no open files."""

    id: str
    config: dict[str, Any]  # bench run config without "out"; "data" is an absolute path
    runs_dir: str
    #: the unfinished folder ``runs_dir/<id>`` as a tar, for a node that does not see it (Ray):
    #: trained in a scratch folder, the run resumes from it as it would in place
    folder: bytes | None = field(default=None, repr=False)


@dataclass
class Outcome:
    """What came back from one run: its summary, or the error that stopped it."""

    id: str
    ok: bool
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    #: when it was trained in a scratch folder (on Ray): the run folder and its ``<id>.log``,
    #: whichever the run left there, as a tar
    packed: bytes | None = None
    #: another process trains the point (it holds the run folder's lock): left to it
    busy: bool = False


def is_finished(run_dir: Path) -> bool:
    """A run is finished when its folder holds a summary with status "finished"."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return False
    try:
        record = json.loads(read_regular_bytes(path))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("status", "finished") == "finished"


def is_resumable(run_dir: Path) -> bool:
    """Whether bench run can resume the folder: it holds the run's config.json. A folder without
    it at a run's place is replaced by a fresh run when it holds what a run killed before it
    wrote its config leaves, and left alone otherwise (``foreign_files``)."""
    return (run_dir / "config.json").is_file()


def foreign_files(run_dir: Path) -> list[str]:
    """What a folder without config.json at a run's place holds that a start must not delete:
    every file but a ``.partial`` one, and every symlink (paths relative to ``run_dir``).

    A run killed before it wrote its config.json leaves an empty ``checkpoints/`` (maybe a
    ``.partial`` file): such a folder is replaced by a fresh run. Anything else there (your own
    files, a checkpoint whose config.json was deleted) used to be deleted with it, silently."""
    found = []
    for root, dirs, files in os.walk(run_dir):
        here = Path(root)
        links = [d for d in dirs if (here / d).is_symlink()]
        for name in links + [f for f in files if not f.endswith(PARTIAL)]:
            found.append((here / name).relative_to(run_dir).as_posix())
    return sorted(found)


def in_the_way(run_dir: Path, foreign: list[str]) -> str:
    """Why a start leaves the point of ``run_dir`` untrained (``foreign_files``), and what to do."""
    return (
        f"{run_dir} holds {quote_some(foreign, most=1)} but no config.json, so it is no run folder "
        "this sweep can resume, and its files are not the sweep's to delete; move or delete the "
        "folder, then start the sweep again"
    )


def not_a_run_folder(run_id: str, folder: Path, preamble: str = "") -> Outcome | None:
    """The failed outcome of a point whose ``folder`` holds files but no config.json
    (``foreign_files``), with its ``<id>.log`` beside the folder written; None when the folder is
    the sweep's to train in (absent, resumable, or what a run killed early left)."""
    if not folder.exists() or is_resumable(folder):
        return None
    foreign = foreign_files(folder)
    if not foreign:
        return None
    error = f"NotARunFolder: {in_the_way(folder, foreign)}"
    write_log(folder.parent / f"{run_id}.log", preamble + error + "\n")
    return Outcome(run_id, False, 0.0, error=error)


def without_foreign_folders(
    task: RunTask | EnsembleTask,
) -> tuple[RunTask | EnsembleTask | None, list[Outcome]]:
    """``task`` less the points whose folder in the sweep is no run folder (``not_a_run_folder``),
    and the failed outcome of each of those.

    A node that does not see the sweep folder trains such a point afresh, and its folder then
    replaced the one holding your files when it came back (``unpack_outcome``): a local start
    refuses the point under its folder lock (``_train_held``); Ray's driver refuses it before
    sending the task. The other members of an ensemble train on together, as they would alone."""
    members = task.members if isinstance(task, EnsembleTask) else (task,)
    refused, kept = [], []
    for m in members:
        outcome = not_a_run_folder(m.id, Path(m.runs_dir) / m.id)
        if outcome is None:
            kept.append(m)
        else:
            refused.append(outcome)
    if not refused:
        return task, []
    if not kept:
        return None, refused
    return (EnsembleTask(tuple(kept)) if len(kept) > 1 else kept[0]), refused


def stopped_label(status: Any) -> str:
    """The label failures.json gives a run stopped with this summary status (``STOPPED_LABELS``)."""
    return STOPPED_LABELS.get(status, "TrainingStopped")


@dataclass(frozen=True)
class RunState:
    """What the next start of a sweep does with a point, read from its run folder: ``kind`` is
    finished, stopped, resume, fail or new; ``text`` says it for a person."""

    kind: str
    text: str


def run_state(run_dir: Path) -> RunState:
    """The point's state, decided as a start decides it (``is_finished``, then
    ``is_resumable``, then bench run's reading of the folder), without loading anything but the
    folder's small JSON files. Both executors resume an unfinished folder: the local pool in
    place, Ray on the node its task is sent to with the folder (``with_folders``)."""
    if is_finished(run_dir):
        return RunState("finished", "finished")
    if not run_dir.exists():
        return RunState("new", "new")
    if not is_resumable(run_dir):
        if foreign_files(run_dir):
            return RunState("fail", "fails: its folder holds files but no config.json (move it)")
        return RunState("new", "new")
    stopped = ""
    if (run_dir / SUMMARY).exists():  # not finished: a stopped run's summary, or unreadable
        try:
            status = json.loads(read_regular_bytes(run_dir / SUMMARY))["status"]
        except (OSError, ValueError, KeyError, TypeError):
            # bench run refuses to resume such a folder: every start fails
            return RunState("fail", f"fails: its {SUMMARY} is unreadable (delete the folder)")
        stopped = f"stopped: {stopped_label(str(status))}"
    resume = _resume_text(run_dir)
    return RunState("stopped", f"{stopped}, {resume}") if stopped else RunState("resume", resume)


def _resume_text(run_dir: Path) -> str:
    """Where bench run resumes the folder, as cheaply as the folder says it: after the epochs its
    metrics.jsonl records (rewritten after each epoch's checkpoint; none without a checkpoint),
    of the epochs its config.json's schedule trains. The checkpoint itself is not opened."""
    from benchmark.train import StepPlan, TrainConfig

    done = 0
    if (run_dir / "checkpoints" / "last.pt").is_file():
        with contextlib.suppress(OSError):
            lines = read_regular_bytes(run_dir / "metrics.jsonl").splitlines()
            done = sum(1 for line in lines if line.strip())
    total = None
    with contextlib.suppress(Exception):  # a config.json without a readable schedule
        config = json.loads(read_regular_bytes(run_dir / "config.json"))
        schedule = TrainConfig(
            epochs=int(config["epochs"]),
            max_steps=config.get("max_steps"),
            batch_size=int(config["batch_size"]),
        )
        total = StepPlan.for_config(int(config["num_images"]), schedule).num_epochs
    if total is None:
        return f"resumes at epoch {done + 1}"
    if done >= total:
        return f"resumes at its final scores ({total} of {total} epochs trained)"
    return f"resumes at epoch {done + 1} of {total}"


def run_config(params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Translate a sweep point (flat, as written in the spec) into ``benchmark.run.run``'s config:
    run parameters under their RunConfig names, anything else nested under "hparams"."""
    config: dict[str, Any] = {"progress": False}
    hparams: dict[str, Any] = {}
    for key, value in params.items():
        if key in BY_KEY:
            config[BY_KEY[key].name] = value
        else:
            hparams[key] = value
    if hparams:
        config["hparams"] = hparams
    config["out"] = str(out)
    return config


def execute_point(params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train one run with ``benchmark.run.run`` into folder ``out``; return its summary.

    Kept to one call so that the sweep machinery never depends on how training works. An
    unfinished run already in ``out`` (a sweep killed mid-run) resumes from its checkpoint.
    """
    from benchmark.run import run

    return run(run_config(params, out))


def _busy(task: RunTask, exc: RunFolderBusy, start: float) -> Outcome:
    """The outcome of a point that another process trains now (a second `bench sweep` of the
    folder, another ``--only`` part): failed here, its folder and log left to that process."""
    return Outcome(
        task.id,
        False,
        time.perf_counter() - start,
        error=f"{type(exc).__name__}: {exc}",
        busy=True,
    )


def _train_into(task: RunTask, folder: Path, preamble: str = "") -> Outcome:
    """Train one point into ``folder``; its output goes to ``<id>.log`` (``preamble`` first),
    which becomes the folder's sweep.log when it finishes.

    The run folder's lock (bench run's own, re-entered by it) is taken before the folder or the
    log is touched: a point that another process trains is left alone (its log used to be
    truncated and its new folder deleted, and its finished run kept this start's traceback as
    its sweep.log)."""
    start = time.perf_counter()
    try:
        with run_folder_lock(folder):
            return _train_held(task, folder, preamble, start)
    except RunFolderBusy as exc:
        return _busy(task, exc, start)


def _train_held(task: RunTask, folder: Path, preamble: str, start: float) -> Outcome:
    """``_train_into`` once the run folder's lock is held."""
    log = folder.parent / f"{task.id}.log"
    if is_finished(folder):
        # another start finished it since this one sorted its points: taken as it is, as an
        # ensemble takes a finished member (it used to fail as RunExists "holds a finished run;
        # use --force", leaving a log beside a finished run)
        log.unlink(missing_ok=True)
        summary = json.loads(read_regular_bytes(folder / SUMMARY))
        return Outcome(task.id, True, time.perf_counter() - start, summary=summary)
    refused = not_a_run_folder(task.id, folder, preamble)
    if refused is not None:  # not the sweep's to delete
        refused.seconds = time.perf_counter() - start
        return refused
    if folder.exists() and not is_resumable(folder):
        shutil.rmtree(folder)  # what a run killed before its config.json left: start afresh
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            fh.write(preamble)
            summary = execute_point(task.config, folder)
        if not (folder / SUMMARY).exists():
            # bench run always writes summary.json; keep the promise of is_finished regardless.
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                folder / SUMMARY,
                json.dumps({"status": "finished", **summary}, indent=2, default=str),
            )
        shutil.move(str(log), folder / LOG_NAME)
        return Outcome(task.id, True, time.perf_counter() - start, summary=summary)
    except Exception as exc:
        tb = traceback.format_exc()
        with contextlib.suppress(OSError), open(log, "a") as fh:
            fh.write(tb)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if _refuses_folder(exc) and not is_finished(folder):
            msg = sweep_advice(msg, folder)
        return Outcome(
            task.id,
            False,
            time.perf_counter() - start,
            error=f"{type(exc).__name__}: {msg}",
            traceback=tb,
        )


def _refuses_folder(exc: Exception) -> bool:
    """Whether bench run refused the run folder it was given (another run's config or
    checkpoint in it, an unreadable checkpoint or record), before training."""
    from benchmark.run import RunExists, UnreadableRunFolder
    from benchmark.train import CheckpointError

    return isinstance(exc, (RunExists, UnreadableRunFolder, CheckpointError))


def sweep_advice(message: str, folder: Path) -> str:
    """bench run's refusal of a sweep point's folder with what to do in a sweep: its own advice
    (``--force``, another ``--out``) names options bench sweep does not have, and a start
    refused the folder again and again."""
    head, sep, tail = message.rpartition("; ")
    if sep and ("--force" in tail or "--out" in tail):
        message = head
    return (
        f"{message}; to train this point again from the start, delete {folder} and start the "
        "sweep again"
    )


@dataclass(frozen=True)
class EnsembleTask:
    """Several compatible points trained as one ensemble (benchmark.ensemble) in one worker."""

    members: tuple[RunTask, ...]

    @property
    def id(self) -> str:
        return "+".join(m.id for m in self.members)

    @property
    def runs_dir(self) -> str:
        return self.members[0].runs_dir


@contextlib.contextmanager
def _logging_to(stream: IO[str]) -> Iterator[None]:
    """The benchmark's log lines (an ensemble's one line per epoch) into ``stream`` meanwhile."""
    logger = logging.getLogger("benchmark")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _train_ensemble_into(task: EnsembleTask, folders: list[Path]) -> list[Outcome]:
    """Train the members with ``run_ensemble`` into ``folders``; one Outcome per member.

    Every member's folder lock is taken first (``_train_into``); when another process trains
    one of them, the others train alone and that one is left to it."""
    with contextlib.ExitStack() as held:
        try:
            for folder in folders:
                held.enter_context(run_folder_lock(folder))
        except RunFolderBusy:
            held.close()
            return [_train_into(m, f) for m, f in zip(task.members, folders)]
        return _train_ensemble_held(task, folders)


def _train_ensemble_held(task: EnsembleTask, folders: list[Path]) -> list[Outcome]:
    """``_train_ensemble_into`` once every member's folder lock is held."""
    from benchmark.ensemble import run_ensemble

    start = time.perf_counter()
    for folder in folders:
        if folder.exists() and not is_resumable(folder) and not foreign_files(folder):
            shutil.rmtree(folder)  # else run_ensemble refuses it, and each point trains alone
        folder.parent.mkdir(parents=True, exist_ok=True)
    log = folders[0].parent / f"{task.members[0].id}{ENSEMBLE_LOG}"
    try:
        with (
            open(log, "w") as fh,
            contextlib.redirect_stdout(fh),
            contextlib.redirect_stderr(fh),
            _logging_to(fh),
        ):
            summaries = run_ensemble(
                [run_config(m.config, f) for m, f in zip(task.members, folders)]
            )
    except Exception as exc:
        tb = traceback.format_exc()
        text = read_log(log)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.unlink(missing_ok=True)
        if len(task.members) > 1:
            # the ensemble as a whole failed, and which point's input or model broke it is not
            # known (a model that fails its dry forward pass with its hyperparameters, say): each
            # point trains alone, as with --ensemble off, so that a bad one fails alone
            note = (
                f"note: the ensemble of {len(task.members)} points stopped "
                f"({type(exc).__name__}: {msg}); each trains alone\n"
            )
            return [_train_into(m, f, text + tb + note) for m, f in zip(task.members, folders)]
        # its one point failed: it gets the ensemble's output and the traceback as its log, as a
        # run of its own would, and the ensemble's log (of a training no longer going) is dropped
        seconds = time.perf_counter() - start
        for folder in folders:
            write_log(folder.parent / f"{folder.name}.log", text + tb)
        return [
            Outcome(m.id, False, seconds, error=f"{type(exc).__name__}: {msg}", traceback=tb)
            for m in task.members
        ]
    seconds = time.perf_counter() - start
    outcomes = []
    text = read_log(log)
    for m, folder, summary in zip(task.members, folders, summaries):
        if folder.exists():
            write_log(folder / LOG_NAME, text)
        if summary.get("status") == "finished":
            # a finished run has no failure log: not even one an earlier start left
            (folder.parent / f"{folder.name}.log").unlink(missing_ok=True)
            outcomes.append(Outcome(m.id, True, seconds, summary=summary))
        else:
            status = summary.get("status", "diverged")
            error = f"{stopped_label(status)}: {summary.get('error', status)}"
            write_log(folder.parent / f"{folder.name}.log", text + error + "\n")
            outcomes.append(Outcome(m.id, False, seconds, error=error, traceback=error))
    log.unlink(missing_ok=True)
    return outcomes


def write_log(path: Path, text: str) -> None:
    """Write a run's log (``sweep.log``, ``<id>.log``) whole or not at all, never failing the
    outcome it records: a log repeats what the run's folder and failures.json say. Written plainly,
    a full disk just after an ensemble's members had finished truncated the log and failed the
    whole task: its finished runs were reported failed (``OSError: [Errno 28] ...``) and its
    ``.ensemble.log`` was left behind."""
    with contextlib.suppress(OSError):
        atomic.write_text_atomic(path, text, fsync=False)


def remove_stale_ensemble_logs(runs_dir: Path, run_ids: list[str]) -> None:
    """Delete the ``<id>.ensemble.log`` of each of ``run_ids`` that no ensemble writes now: the
    output of an ensemble whose start was killed, left for good when the next start grouped the
    points otherwise. An ensemble holds its first member's run folder lock while its log
    exists, so a log whose lock is free is stale; one held (another start trains that ensemble
    now) is left to it. A log is only output: the next start trains its runs again."""
    for run_id in run_ids:
        log = runs_dir / f"{run_id}{ENSEMBLE_LOG}"
        if not log.exists():
            continue
        with contextlib.suppress(SpritegenError, OSError), run_folder_lock(runs_dir / run_id):
            log.unlink(missing_ok=True)


def read_log(path: Path) -> str:
    """A log's text, "" when it is gone or unreadable: a log only repeats what the records say,
    so a missing one never fails the outcome that copies it on."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def run_any(task: RunTask | EnsembleTask) -> list[Outcome]:
    """A point or an ensemble of points, trained into the sweep folder."""
    if isinstance(task, EnsembleTask):
        return _train_ensemble_into(task, [Path(m.runs_dir) / m.id for m in task.members])
    return [run_task(task)]


def run_any_packed(task: RunTask | EnsembleTask, mailbox: Any = None) -> list[Outcome]:
    """``run_any`` in a scratch folder of this node; what each point left there (its folder, its
    ``<id>.log``: ``pack``) returned as tar bytes with its outcome, finished or not. With a
    ``mailbox`` (the driver's Ray actor), each point's folder is also sent there at every
    checkpoint, and once more on Ctrl-C (``Courier``)."""
    if not isinstance(task, EnsembleTask):
        return [run_task_packed(task, mailbox)]
    with tempfile.TemporaryDirectory(prefix="sweep-ensemble-") as tmp:
        folders = [_place(m, Path(tmp)) for m in task.members]
        ensemble_log = Path(tmp) / f"{task.members[0].id}{ENSEMBLE_LOG}"
        with _delivering(mailbox, Path(tmp), [m.id for m in task.members], ensemble_log):
            outcomes = _train_ensemble_into(task, folders)
        for outcome in outcomes:
            outcome.packed = pack(Path(tmp), outcome.id)
        return outcomes


def run_task(task: RunTask) -> Outcome:
    """Train a point straight into the sweep folder (local workers share its file system)."""
    return _train_into(task, Path(task.runs_dir) / task.id)


def run_task_packed(task: RunTask, mailbox: Any = None) -> Outcome:
    """Train a point in a scratch folder of this node and return what it left there as tar bytes.

    Used on Ray, where the node need not see the sweep folder: the driver unpacks the bytes into
    the sweep folder, so results from every node are gathered in one place. A run that stopped or
    failed comes back too (its folder, if it made one, and its log), as a local run leaves them.
    With a ``mailbox``, its folder is sent there at every checkpoint too (``run_any_packed``).
    """
    with tempfile.TemporaryDirectory(prefix="sweep-run-") as tmp:
        with _delivering(mailbox, Path(tmp), [task.id]):
            outcome = _train_into(task, _place(task, Path(tmp)))
        outcome.packed = pack(Path(tmp), task.id)
        return outcome


#: Seconds a run waits for the driver's mailbox to take one delivery before it stops sending.
DELIVERY_TIMEOUT_S = 300.0


class Courier:
    """Sends the folders of the runs a Ray task trains to the driver's mailbox
    (``benchmark.sweep.executors.Mailbox``): at each checkpoint (a listener of
    ``benchmark.train.checkpoint_listener``, so each folder then holds a complete checkpoint and
    the metrics.jsonl of its epochs), and once more when the task is interrupted (``final``). What
    is sent is ``pack``'s tar, the run's log so far included (an ensemble member's: the ensemble's
    log, its only output while it trains), so the driver can leave in the sweep folder what a
    local run would leave there, should the task never return. The members of an ensemble that
    checkpoint together are sent together, in one delivery: the driver keeps them at one step,
    and a next start resumes them as one ensemble.

    A run waits for its mailbox to hold each delivery before it trains on: a delivery cut short
    by a lost worker is never mistaken for one made. A delivery that fails (the mailbox is gone,
    or does not answer within ``DELIVERY_TIMEOUT_S``) is noted in the run's log, and the run
    trains on without sending more; it never fails the run.
    """

    def __init__(
        self, mailbox: Any, scratch: Path, run_ids: list[str], ensemble_log: Path | None = None
    ) -> None:
        self.mailbox, self.scratch, self.run_ids = mailbox, scratch, run_ids
        self.ensemble_log = ensemble_log
        self.broken = False
        self._scratch = scratch.resolve()

    def __call__(self, checkpoints: list[Path], step: int) -> None:
        steps = {}
        for checkpoint in checkpoints:
            folder = checkpoint.resolve().parent.parent  # <scratch>/<id>/checkpoints/last.pt
            if folder.parent == self._scratch and folder.name in self.run_ids:
                steps[folder.name] = step
        if steps:
            self.send(steps)

    def send(self, steps: dict[str, int]) -> None:
        """Each run of ``steps`` with its checkpoint's step, in one delivery."""
        import ray

        if self.broken:
            return
        for stream in (sys.stdout, sys.stderr):  # the run's log, written so far
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            sent = {run_id: (step, self._pack(run_id)) for run_id, step in steps.items()}
            put = self.mailbox.put.remote(self.run_ids[0], sent)
            ray.get(put, timeout=DELIVERY_TIMEOUT_S)
        except Exception as exc:
            self.broken = True
            print(f"note: the run's progress no longer reaches the sweep's driver ({exc!r})")

    def _pack(self, run_id: str) -> bytes:
        own_log = self.scratch / f"{run_id}.log"
        log = own_log if own_log.exists() or self.ensemble_log is None else self.ensemble_log
        return pack(self.scratch, run_id, log=log)

    def final(self) -> None:
        """Each run's folder as an interrupt leaves it, with its whole log: the checkpoint its
        folder holds (at its step), for each run that has one."""
        steps = {}
        for run_id in self.run_ids:
            step = checkpoint_step(self.scratch / run_id)
            if step is not None:
                steps[run_id] = step
        if steps:
            self.send(steps)


@contextlib.contextmanager
def _delivering(
    mailbox: Any, scratch: Path, run_ids: list[str], ensemble_log: Path | None = None
) -> Iterator[None]:
    """Meanwhile, the runs of ``scratch`` send their folders to ``mailbox`` (``Courier``), and
    once more on Ctrl-C (Ray's ``cancel``); nothing without a mailbox (a local run)."""
    if mailbox is None:
        yield
        return
    from benchmark.train import checkpoint_listener

    courier = Courier(mailbox, scratch, run_ids, ensemble_log)
    with checkpoint_listener(courier):
        try:
            yield
        except KeyboardInterrupt:
            courier.final()
            raise


def checkpoint_step(run_dir: Path) -> int | None:
    """The optimiser step of the run folder's ``checkpoints/last.pt``; None without a readable
    one."""
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        return None
    try:
        import torch

        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
    except Exception:
        return None


def pack(runs_dir: Path, run_id: str, log: bool | Path = True) -> bytes:
    """What a run left in ``runs_dir``, as a local run leaves it in the sweep's ``runs/``: its
    folder ``<id>`` and (``log``) its output ``<id>.log``, whichever exist, as an uncompressed
    tar. ``log`` may name another file to pack as ``<id>.log`` (an ensemble member's output)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if (runs_dir / run_id).exists():
            tar.add(runs_dir / run_id, arcname=run_id)
        source = log if isinstance(log, Path) else runs_dir / f"{run_id}.log"
        if log is not False and source.exists():
            tar.add(source, arcname=f"{run_id}.log")
    return buf.getvalue()


def unpack_delivery(run_id: str, step: int, packed: bytes, runs_dir: Path) -> bool:
    """Leave in ``runs_dir`` a run's folder as its Ray task last sent it (``Courier``), as
    ``unpack_outcome`` leaves a stopped run's, unless the sweep folder holds a better state of
    the run: its finished folder, or a checkpoint at ``step`` or later. Whether it did."""
    folder = runs_dir / run_id
    if is_finished(folder):
        return False
    held = checkpoint_step(folder)
    if held is not None and held >= step:
        return False
    return unpack_outcome(Outcome(run_id, False, 0.0, packed=packed), runs_dir)


def with_folders(task: RunTask | EnsembleTask) -> RunTask | EnsembleTask:
    """The task with each point's unfinished folder in the sweep (one a local run would resume:
    it holds a config.json) packed into it, for a node that does not see the sweep folder."""
    if isinstance(task, EnsembleTask):
        return EnsembleTask(tuple(_with_folder(m) for m in task.members))
    return _with_folder(task)


def _with_folder(task: RunTask) -> RunTask:
    folder = Path(task.runs_dir) / task.id
    if not is_resumable(folder):
        return task
    return dataclasses.replace(task, folder=pack(folder.parent, task.id, log=False))


def _place(task: RunTask, scratch: Path) -> Path:
    """Where the point trains in ``scratch``: its folder, unpacked there from the sweep's when
    the task carries one (``with_folders``)."""
    if task.folder is not None:
        with tarfile.open(fileobj=io.BytesIO(task.folder), mode="r") as tar:
            tar.extractall(scratch, filter="data")
    return scratch / task.id


def unpack_outcome(outcome: Outcome, runs_dir: Path) -> bool:
    """Leave in ``runs_dir`` what the run left in its scratch folder (``pack``), as a local run
    would leave it there, finished, stopped or failed alike.

    The folder replaces ``runs_dir/<id>`` atomically (unpacked aside, then renamed), with the
    ``out`` recorded in its config.json and summary.json (and an ensemble's member folders) pointed
    at where it now lies; a run that made no folder leaves the one there untouched (unless it is
    what a run killed before its config.json leaves, which a local run removes too), as a local
    run that fails before training does. A folder holding your files but no config.json is
    never replaced: Ray's driver does not send its point (``without_foreign_folders``), and
    one that came to be while the point trained makes its outcome that refusal (the run that
    came back is dropped, as a local start would not have trained it). Whether it was placed.
    ``<id>.log`` replaces the sweep's, and one that the run did not leave (a finished run moves
    its output into the folder) is removed, so that no log of an earlier start's failure
    outlives a finished run. Outcomes with nothing packed are left alone.
    """
    if outcome.packed is None:
        return False
    refused = not_a_run_folder(outcome.id, runs_dir / outcome.id)
    if refused is not None:  # your files, put there since the task was sent: kept
        outcome.ok, outcome.summary, outcome.packed = False, {}, None
        outcome.error, outcome.traceback = refused.error, ""
        return False
    staging = runs_dir / f"{outcome.id}{UNPACK_SUFFIX}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(outcome.packed), mode="r") as tar:
        tar.extractall(staging, filter="data")
    final = runs_dir / outcome.id
    if (staging / outcome.id).is_dir():
        _point_at(staging / outcome.id, final.resolve())
        if final.exists():  # set aside into the staging folder, removed with it below
            os.replace(final, staging / f"{outcome.id}.replaced")
        os.replace(staging / outcome.id, final)
    elif final.exists() and not is_resumable(final) and not foreign_files(final):
        shutil.rmtree(final)  # what a run killed early left: a local run removes it too
    if "out" in outcome.summary:
        outcome.summary["out"] = str(final.resolve())
    log = runs_dir / f"{outcome.id}.log"
    if (staging / log.name).is_file():
        os.replace(staging / log.name, log)
    else:
        log.unlink(missing_ok=True)
    shutil.rmtree(staging)
    outcome.packed = None
    return True


def _point_at(folder: Path, final: Path) -> None:
    """Rewrite the paths a run folder records (``out``; an ensemble member's fellow members and
    the ensemble's id, a hash of their folders) as they would read had it trained at ``final``."""
    for name in ("config.json", SUMMARY):
        path = folder / name
        if not path.is_file():
            continue
        try:
            record = json.loads(read_regular_bytes(path))
        except ValueError:  # as the run left it: the sweep reads it as unfinished, as locally
            continue
        if not isinstance(record, dict):
            continue
        changed = False
        if "out" in record:
            record["out"] = str(final)
            changed = True
        ensemble = record.get("ensemble")
        if isinstance(ensemble, dict) and isinstance(ensemble.get("members"), list):
            from benchmark.ensemble.runner import ensemble_id

            members = [final.parent / Path(str(m)).name for m in ensemble["members"]]
            ensemble["members"] = [str(m) for m in members]
            ensemble["id"] = ensemble_id(members)
            changed = True
        if changed:
            path.write_text(json.dumps(record, indent=2) + "\n")
