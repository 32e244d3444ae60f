"""Running a whole sweep: bookkeeping, skipping finished points, progress, failure summary.

The sweep folder is the single record of a study::

    <sweep>/spec.yaml          the spec as given, below a line naming the folder its relative
                               paths resolve from (``spec.copy_text``): running it resumes the sweep
    <sweep>/sweep.json         manifest: every point (id, parameters, K) and each experiment's
                               layout (x, line, seed of each point), read by `bench report`
    <sweep>/datasets/<name>.h5 datasets built once and shared by the runs
    <sweep>/runs/<id>/         one `bench run` folder per point (+ sweep.log): finished, or as
                               the run stopped (diverged, failed: summary.json says why)
    <sweep>/runs/<id>.log      the output of a run that did not finish, with its error
    <sweep>/failures.json      the runs that failed at the last start, with their errors
    <sweep>/.deliveries/       Ray only, while a start runs (or after its driver was killed):
                               its tasks' latest checkpoint deliveries (``deliveries``); a
                               start unpacks what a killed driver left there into runs/

A point's ``<id>`` is the one the folder's ``sweep.json`` already records for it: the id
earlier versions gave it, if that is what the folder holds (``adopt_legacy_ids``, where a plan
meets its folder, for a start and a dry run alike), so `bench report` and every executor see the
ids of the folder's runs.

Finished means ``runs/<id>/summary.json`` says ``"status": "finished"``; anything else is
(re)trained when the sweep is started again. Both executors leave the same entries (on Ray they
come back from the node, ``execute.unpack_outcome``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import fnmatch
import json
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmark.files import (
    PARTIAL,
    DiskFull,
    disk_full_error,
    is_disk_full,
    make_output_folder,
    read_regular_bytes,
    write_text_atomic,
)
from benchmark.sweep.datasets import build_datasets, dataset_path, is_built
from benchmark.sweep.deliveries import DELIVERIES, adopt_kept, describe_adopted, kept_runs
from benchmark.sweep.execute import (
    EnsembleTask,
    Outcome,
    RunTask,
    is_finished,
    remove_stale_ensemble_logs,
    run_config,
    run_state,
    write_log,
)
from benchmark.sweep.executors import check_executor, make_run_pool
from benchmark.sweep.plan import Point, SweepPlan, data_argument
from benchmark.sweep.spec import DatasetEntry, SweepSpec, copy_text
from spritegen.atomic import output_path
from spritegen.errors import SpecError, check_flag, counted, quote, quote_some
from spritegen.executors import check_reachable

MANIFEST = "sweep.json"
FAILURES = "failures.json"
RECORDS_LOCK = "sweep.lock"
MANIFEST_FORMAT = 1


@dataclass
class SweepResult:
    """What one start of a sweep did."""

    sweep_dir: Path
    total: int
    skipped: list[str] = field(default_factory=list)
    finished: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # not finished, outside this part (--only)
    seconds: float = 0.0
    #: why the sweep started no more runs ("" when it tried every one): a run found the disk full
    stopped: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically unless the file holds it already. Replaced, not
    written through: a ``spec.yaml`` linked to the user's own spec stays theirs. A full disk is
    ``DiskFull``, one line naming the file and the disk (``benchmark.files``)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if not path.is_symlink() and path.read_text(encoding="utf-8") == text:
            return
    write_text_atomic(path, text)


@contextlib.contextmanager
def records_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold ``SWEEP/sweep.lock`` (a blocking ``flock``) while this start reads and writes the
    sweep's records (spec.yaml, sweep.json, failures.json): two starts of one folder (``--only``
    parts of it, or the same command twice) take turns for those moments only, never while they
    train. The file stays: removed, a third start could lock a new file while one holds the old.
    The kernel drops the lock of a start that dies."""
    path = sweep_dir / RECORDS_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_failures(
    plan: SweepPlan, sweep_dir: Path, tried: Sequence[str], failed: Sequence[Outcome]
) -> None:
    """Write failures.json: the sweep's unfinished runs that failed at the last start that tried
    them. ``tried`` are the ids this start took to train, ``failed`` its failed outcomes.

    Merged with the file under ``records_lock``: an entry of another start (another ``--only``
    part, a start at the same time) stays unless this start tried that run or it has finished
    since; a run this start left to the process training it (``RunFolderBusy``) keeps that
    process's entry if there is one. Each part used to overwrite the file with its own
    failures alone, so a part that ended last erased the others'."""
    busy = {o.id for o in failed if o.busy}
    retried = set(tried) - busy
    order = {p.id: i for i, p in enumerate(plan.points)}
    with records_lock(sweep_dir):
        entries = {
            e["id"]: e
            for e in _read_failures(sweep_dir / FAILURES)
            if e["id"] in order and e["id"] not in retried
        }
        for o in failed:
            if o.id not in busy or o.id not in entries:
                entries[o.id] = {
                    "id": o.id,
                    "error": o.error,
                    "log": f"runs/{o.id}.log",
                    "traceback": o.traceback,
                }
        kept = [
            entries[i]
            for i in sorted(entries, key=order.__getitem__)
            if not is_finished(sweep_dir / "runs" / i)
        ]
        write_text_atomic(sweep_dir / FAILURES, _json_text(kept))


def _read_failures(path: Path) -> list[dict[str, Any]]:
    """The entries of a failures.json (one of each run); none from a missing or damaged file."""
    try:
        entries = json.loads(read_regular_bytes(path))
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def manifest(plan: SweepPlan) -> dict[str, Any]:
    """The JSON record of the plan: what the sweep contains, for resuming and for the report."""
    spec, points, layout = plan.spec, plan.points, plan.layout
    return {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "description": spec.description,
        "spec_source": str(spec.origin) if spec.origin else None,
        "datasets": {
            name: {
                "path": f"datasets/{name}.h5",
                "factors": e.factors,
                "digest": e.digest,
                "overrides": e.overrides,
                "spec_file": str(e.spec_path) if e.spec_path else None,
            }
            for name, e in spec.datasets.items()
        },
        "points": [
            {
                "id": p.id,
                "params": p.params,
                "dataset": p.dataset,
                "factors": p.factors,
                "experiments": p.experiments,
            }
            for p in points
        ],
        "experiments": [
            {
                "name": exp.name,
                "description": exp.description,
                "x": exp.report.x,
                "lines": list(exp.report.lines),
                "metrics": list(exp.report.metrics),
                "points": [
                    {"id": ep.id, "x": ep.x, "line": list(ep.line), "seed": ep.seed}
                    for ep in layout[exp.name]
                ],
            }
            for exp in spec.experiments
        ],
    }


def _task(point: Point, spec: SweepSpec, sweep_dir: Path) -> RunTask:
    config = dict(point.params)
    if point.dataset is not None:
        config["data"] = str(dataset_path(sweep_dir, point.dataset).resolve())
    elif "data" in config:
        config["data"] = data_argument(config["data"], spec.base_dir) or config["data"]
    return RunTask(id=point.id, config=config, runs_dir=str((sweep_dir / "runs").resolve()))


def _score_text(summary: dict[str, Any]) -> str:
    parts = []
    for key in ("kim_mnih", "higgins"):
        v = (summary.get("final_scores") or {}).get(key, summary.get(key))
        if isinstance(v, (int, float)):
            parts.append(f"{key}={v:z.3f}")
    return " ".join(parts)


def run_sweep(
    plan: SweepPlan,
    out: Path | str | None = None,
    executor: str = "local",
    address: str | None = None,
    workers: int | None = None,
    build_workers: int | None = None,
    progress: bool = True,
    ensemble: str | int = "auto",
    only: Sequence[str] = (),
    **pool_kwargs: Any,
) -> SweepResult:
    """Build the sweep's datasets, then train every point of ``plan`` not finished yet.

    Failures are collected, not raised: every other run still trains. ``out`` defaults to
    ``results/<name>``. ``ensemble`` ("auto", "off" or N) trains compatible points together
    (benchmark.ensemble; docs/sweeps.md). ``only`` (shell patterns of run ids) trains one part of
    the sweep: the other points are left for another start or another machine.
    """
    from benchmark.ensemble.grouping import parse_ensemble

    size = parse_ensemble(ensemble)
    progress = check_flag("progress", progress)  # before the sweep folder is written
    start = time.perf_counter()
    check_executor(executor, address)  # before anything is written
    plan, sweep_dir = _sweep_dir(plan, out, only)
    spec, points = plan.spec, plan.points
    if executor == "ray" and address:
        check_reachable(address)  # ray.init would retry an unreachable address for minutes
    # a damaged dataset file is refused before the folder's records are written (it was refused
    # only once spec.yaml, sweep.json and runs/ were there, a grown spec's records rewritten)
    for entry in _needed_datasets(spec, _sort_points(points, sweep_dir, only)[2]):
        is_built(dataset_path(sweep_dir, entry.name))
    make_output_folder(sweep_dir / "runs", sweep_dir, "sweep")
    with records_lock(sweep_dir):
        # again: another start of the folder (another part, or a grown spec) may have written
        # its records since; equal records are left as they are, never rewritten in turn
        check_sweep_dir(sweep_dir, plan)
        _write_if_changed(sweep_dir / "spec.yaml", copy_text(spec))
        _write_if_changed(sweep_dir / MANIFEST, _json_text(manifest(plan)))
    # what a Ray start whose driver was killed kept of its runs, before their states are read
    adopted = adopt_kept(sweep_dir, [p.id for p in points if not only or _matches(p.id, only)])

    result = SweepResult(sweep_dir=sweep_dir, total=len(points))
    result.skipped, result.left, pending = _sort_points(points, sweep_dir, only)
    # an ensemble's output that a killed start left (this part's points only)
    left = set(result.left)
    remove_stale_ensemble_logs(sweep_dir / "runs", [p.id for p in points if p.id not in left])
    say = tqdm.write if progress else (lambda *_: None)
    if adopted:
        say(describe_adopted(adopted))
    say(
        f"sweep {spec.name}: {counted(len(points), 'run')}, "
        f"{len(result.skipped)} already finished, "
        f"{len(pending)} to train"
        + (f", {len(result.left)} left for other parts" if only else "")
        + f" -> {sweep_dir}"
    )
    if not pending:
        result.seconds = time.perf_counter() - start
        write_failures(plan, sweep_dir, [], [])
        return result

    needed = _needed_datasets(spec, pending)
    if needed:
        say(f"datasets: {', '.join(e.name for e in needed)}")
        render_on = None
        if executor == "ray":  # render the shards on the cluster too
            from spritegen.executors import RayExecutor

            render_on = RayExecutor(address=address).map_ordered
        build_datasets(
            needed, sweep_dir, workers=build_workers, executor=render_on, progress=progress
        )

    pool = make_run_pool(executor, workers=workers, address=address, **pool_kwargs)
    say(f"executor: {pool.describe()}")
    tasks = _grouped([_task(p, spec, sweep_dir) for p in pending], size, pool, say)
    bar = tqdm(
        total=len(pending), unit="run", desc=spec.name, disable=not progress, dynamic_ncols=True
    )
    try:
        # closed here, not when collected: a pool stops its runs (and a second Ctrl-C then
        # reaches this frame) before the sweep's records are written
        with contextlib.closing(pool.run(tasks)) as outcomes:
            for outcome in outcomes:
                if outcome.ok:
                    result.finished.append(outcome)
                    say(
                        f"  done   {outcome.id} ({outcome.seconds:.1f} s) "
                        f"{_score_text(outcome.summary)}"
                    )
                else:
                    result.failed.append(outcome)
                    log = sweep_dir / "runs" / f"{outcome.id}.log"
                    # trained on another node: keep at least the traceback (not for a run that
                    # another process has finished meanwhile: a finished run has no log)
                    if not log.exists() and not is_finished(sweep_dir / "runs" / outcome.id):
                        write_log(log, outcome.traceback or outcome.error)
                    say(f"  FAILED {outcome.id}: {outcome.error}")
                bar.update(1)
                bar.set_postfix(done=len(result.finished), failed=len(result.failed))
                if executor == "local" and (full := _disk_full_message(outcome)):
                    # every run after it would train to its first checkpoint and fail there
                    # too: leaving the loop closes the pool, which stops the runs in flight as
                    # Ctrl-C does (each keeps its last checkpoint) and starts no other
                    result.stopped = full
                    break
    finally:
        bar.close()
        write_failures(plan, sweep_dir, [p.id for p in pending], result.failed)
    result.seconds = time.perf_counter() - start
    return result


def _sort_points(
    points: Sequence[Point], sweep_dir: Path, only: Sequence[str]
) -> tuple[list[str], list[str], list[Point]]:
    """(ids of the finished points, ids left for other parts, the points to train): how a start
    sorts the sweep's points. A finished point counts as finished whatever part is trained."""
    skipped, left, pending = [], [], []
    for p in points:
        if is_finished(sweep_dir / "runs" / p.id):
            skipped.append(p.id)
        elif only and not _matches(p.id, only):
            left.append(p.id)
        else:
            pending.append(p)
    return skipped, left, pending


def _needed_datasets(spec: SweepSpec, pending: Sequence[Point]) -> list[DatasetEntry]:
    """The sweep datasets the points to train use, in the order the points first use them: the
    ones a start builds (``build_datasets`` skips those already built)."""
    return [spec.datasets[n] for n in dict.fromkeys(p.dataset for p in pending if p.dataset)]


#: How the closing line of a dry run counts the runs of each ``RunState.kind``, in this order.
STATE_COUNTS = {
    "finished": "finished",
    "stopped": "stopped (to try again)",
    "resume": "to resume",
    "fail": "to fail",
    "new": "new",
}


def dry_run(
    plan: SweepPlan,
    out: Path | str | None = None,
    ensemble: str | int = "auto",
    only: Sequence[str] = (),
    executor: str = "local",
    address: str | None = None,
) -> list[str]:
    """What ``run_sweep`` with the same arguments would do, as lines to print, having checked the
    same options: the sweep folder it would use and whether it exists; each run of the part
    ``only`` selects (id, state in that folder, parameters); the ensembles the runs to train would
    form; the counts, per state, and the datasets that would be built first.

    Each state is read from the run folder as a start reads it (``run_state``), the datasets as a
    start checks them (``is_built``): a few small files opened, nothing built, trained, loaded
    or written."""
    from benchmark.ensemble.grouping import parse_ensemble, plan_groups

    size = parse_ensemble(ensemble)
    check_executor(executor, address)
    plan, sweep_dir = _sweep_dir(plan, out, only)
    exists = "exists" if sweep_dir.is_dir() else "not there yet; the sweep creates it"
    lines = [f"sweep folder: {sweep_dir.absolute()} ({exists})"]
    selected = [p for p in plan.points if not only or _matches(p.id, only)]
    states = [run_state(sweep_dir / "runs" / p.id) for p in selected]
    id_width = max(len(p.id) for p in selected)
    state_width = max(len(s.text) for s in states)
    lines += [
        f"{p.id:<{id_width}}  {s.text:<{state_width}}  "
        + " ".join(f"{k}={v}" for k, v in p.params.items())
        for p, s in zip(selected, states)
    ]
    _, _, pending = _sort_points(plan.points, sweep_dir, only)
    tasks = [_task(p, plan.spec, sweep_dir) for p in pending]
    if size != "off" and len(tasks) > 1:
        _, configs = _configs(tasks)
        # what fits in memory is measured when the sweep starts (its datasets exist then)
        sets = plan_groups(configs, size, len(configs) + (size if isinstance(size, int) else 0))
        sizes = [len(g) for g in sets if len(g) > 1]
        alone = len(tasks) - sum(sizes)
        if size == "auto":
            lines.append(
                f"ensembles: compatible sets of sizes {sizes}, {counted(alone, 'run')} alone "
                "(auto cuts each set to what fits in memory, and for the workers, when the "
                "sweep starts)"
            )
        else:
            lines.append(
                f"ensembles: {len(sizes)} of sizes {sizes}; {counted(alone, 'run')} alone"
                if sizes
                else f"ensembles: none; {counted(alone, 'run')} alone"
            )
    per_exp = ", ".join(f"{name}: {len(eps)}" for name, eps in plan.layout.items())
    unbuilt = [
        e.name
        for e in _needed_datasets(plan.spec, pending)
        if not is_built(dataset_path(sweep_dir, e.name))
    ]
    datasets = {p.dataset for p in selected if p.dataset}
    kinds = [s.kind for s in states]
    kept = kept_runs(sweep_dir, [p.id for p in selected])
    if kept:
        lines.append(
            f"{counted(len(kept), 'run')} with a folder kept by a Ray start whose driver stopped "
            f"({DELIVERIES}/): unpacked when the sweep starts, unless runs/ holds the run "
            "finished or as far along (their states above do not count it yet)"
        )
    lines.append(
        f"{counted(len(plan.points), 'run')} ({per_exp}); "
        f"{counted(len(plan.spec.datasets), 'dataset')}"
        + (f" ({_names(unbuilt, plan.spec.datasets)} to build first)" if unbuilt else "")
        + (
            f"; this part: {counted(len(selected), 'run')}, {counted(len(datasets), 'dataset')}, "
            f"{len(plan.points) - len(selected)} left for other parts (--only)"
            if only
            else ""
        )
        + "; "
        + ", ".join(f"{kinds.count(k)} {word}" for k, word in STATE_COUNTS.items() if k in kinds)
    )
    return lines


def _names(names: Collection[str], of: Collection[str]) -> str:
    """``names`` as a list, or "all" when they are all of ``of`` (and more than one)."""
    return "all" if len(of) > 1 and set(names) == set(of) else ", ".join(names)


def _check_only(points: Sequence[Any], only: Sequence[str]) -> None:
    for pattern in only:
        if not any(_matches(p.id, [pattern]) for p in points):
            raise SpecError(
                f"--only {quote(pattern)} matches none of the sweep's {len(points)} run ids "
                f"(they look like {points[0].id}); use shell patterns such as "
                f"'*_k3_*' or '*_beta4_*'"
            )


def _sweep_dir(
    plan: SweepPlan, out: Path | str | None, only: Sequence[str] = ()
) -> tuple[SweepPlan, Path]:
    """(the plan as this folder knows its points, the sweep folder): where a plan meets the
    folder, for a start and a dry run alike. The points take the ids the folder's manifest
    records for them (``adopt_legacy_ids``), the ``--only`` patterns are checked against those
    ids, and the folder is checked to be one this sweep may write into (``check_sweep_dir``).
    What the start writes (``sweep.json``, the run folders) and what `bench report` reads then
    follow the same ids."""
    sweep_dir = output_path("--out", out) if out is not None else default_sweep_dir(plan.spec)
    plan = adopt_legacy_ids(plan, sweep_dir)
    _check_only(plan.points, only)
    check_sweep_dir(sweep_dir, plan)
    return plan, sweep_dir


def _recorded_ids(sweep_dir: Path) -> set[str]:
    """The run ids the folder's ``sweep.json`` records; none for a folder without a readable
    manifest (``check_sweep_dir`` says what is wrong with it)."""
    try:
        old = json.loads(read_regular_bytes(sweep_dir / MANIFEST))
    except (OSError, ValueError):
        return set()
    points = old.get("points") if isinstance(old, dict) else None
    if not isinstance(points, list):
        return set()
    return {p["id"] for p in points if isinstance(p, dict) and isinstance(p.get("id"), str)}


def adopt_legacy_ids(plan: SweepPlan, sweep_dir: Path) -> SweepPlan:
    """``plan`` with each point whose id the folder's manifest does not record, but one of whose
    legacy ids (``Point.legacy_ids``: the ids earlier versions gave it) it does, keeping that
    legacy id: its run folder, summary and report entries are found as before, and nothing is
    trained again. The plan itself for a new folder, or where every id is recorded or new.

    Legacy ids are computed from the project where it lies now: a folder made by an earlier
    version and then moved cannot be recognised for points whose ``data`` is a file (their
    legacy id hashed the file's old absolute path)."""
    recorded = _recorded_ids(sweep_dir)
    renamed: dict[str, str] = {}
    for p in plan.points:
        if p.id not in recorded:
            old = next((i for i in p.legacy_ids if i in recorded), None)
            if old is not None:
                renamed[p.id] = old
    if not renamed:
        return plan
    points = [
        dataclasses.replace(
            p, id=renamed[p.id], legacy_ids=[p.id, *(i for i in p.legacy_ids if i != renamed[p.id])]
        )
        if p.id in renamed
        else p
        for p in plan.points
    ]
    layout = {
        name: [dataclasses.replace(ep, id=renamed.get(ep.id, ep.id)) for ep in eps]
        for name, eps in plan.layout.items()
    }
    return SweepPlan(plan.spec, points, layout)


def default_sweep_dir(spec: SweepSpec) -> Path:
    """The sweep folder without ``--out``: ``results/<name>`` in the current folder, but for a
    sweep folder's own ``spec.yaml`` (next to its manifest), that folder: running the copy
    resumes the sweep it belongs to, from any folder, instead of starting a new one."""
    source = spec.source
    if source is not None and source.name == "spec.yaml" and (source.parent / MANIFEST).is_file():
        return source.parent
    return Path("results") / spec.name


def check_sweep_dir(sweep_dir: Path, plan: SweepPlan) -> None:
    """Refuse a folder this sweep did not make, before anything is written into it.

    A sweep folder is reused only by the same sweep: its ``sweep.json`` names the same sweep and
    every run it records is still a point of the plan, by its id or one of its legacy ids (a
    spec grown by new points resumes; one that renamed the sweep or dropped points would orphan
    runs). ``plan`` is the plan as the folder knows it (``adopt_legacy_ids``). A folder without
    ``sweep.json`` is taken only if it is not a `bench run` folder and holds nothing but what
    this sweep writes before its ``sweep.json`` (``_foreign_entries``; its ``spec.yaml`` of this
    text), so a start interrupted there resumes and the user's own folder is never written into
    (its ``failures.json`` was overwritten, and the sweep's records added beside its files).
    """
    if not sweep_dir.is_dir():
        return
    where = f"--out {quote(str(sweep_dir))}"
    for name in ("config.json", "summary.json"):
        if (sweep_dir / name).exists():
            raise SpecError(
                f"{where} is a bench run folder (it holds {name}), not a sweep folder; "
                "give another --out"
            )
    path = sweep_dir / MANIFEST
    if not path.exists():
        spec = sweep_dir / "spec.yaml"
        if spec.exists() and not spec.read_text(errors="replace").endswith(plan.spec.text):
            raise SpecError(
                f"{where} holds a spec.yaml but no {MANIFEST}: not a folder bench sweep made; "
                "give another --out"
            )
        foreign = _foreign_entries(sweep_dir, {p.id for p in plan.points})
        if foreign:
            raise SpecError(
                f"{where} is not a folder bench sweep made: it holds no {MANIFEST}, and "
                f"{quote_some(foreign)}, which a start does not write (before its {MANIFEST} "
                "only spec.yaml, sweep.lock and runs/ for the sweep's runs); choose an empty or "
                "new folder, or this sweep's own folder"
            )
        return
    try:
        old = json.loads(read_regular_bytes(path))
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or not isinstance(old.get("points"), list):
        raise SpecError(
            f"{where}: {path} is not a bench sweep manifest; give another --out "
            "(a sweep folder is reused only by the sweep that made it)"
        )
    if old.get("name") != plan.spec.name:
        raise SpecError(
            f"{where} holds sweep {quote(old.get('name'))}, not {quote(plan.spec.name)}; "
            "give each sweep its own --out"
        )
    # a legacy id of a point that kept another id is a run of that point too (two files of one
    # content, named by their paths before, are one point now): not orphaned by the spec
    ids = {p.id for p in plan.points} | {i for p in plan.points for i in p.legacy_ids}
    gone = [p.get("id") for p in old["points"] if not isinstance(p, dict) or p.get("id") not in ids]
    if gone:
        raise SpecError(
            f"{where} holds {counted(len(gone), 'run')} of sweep {quote(plan.spec.name)} that "
            f"this spec no longer has (such as {quote(gone[0])}); a sweep folder is resumed by "
            "the same spec or one with points added: give another --out"
        )


#: The files a first start writes into the sweep folder before its sweep.json (``run_sweep``),
#: besides ``runs/``.
FIRST_START_FILES = ("spec.yaml", RECORDS_LOCK, f"spec.yaml{PARTIAL}", f"{MANIFEST}{PARTIAL}")


def _foreign_entries(sweep_dir: Path, ids: Collection[str]) -> list[str]:
    """The entries of a folder without sweep.json that this sweep does not write (``runs/X`` for
    one in runs/): the files of ``FIRST_START_FILES``, and in ``runs/`` (and a Ray driver's
    ``.deliveries/``) the places of its runs (``ID``, ``ID.log``, ``ID.lock``, ``ID.tar``, ...),
    whose folders each run checks itself (``NotARunFolder``), are its own."""
    foreign = []
    for entry in sorted(sweep_dir.iterdir()):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.name in ("runs", DELIVERIES) and entry.is_dir():
            foreign += [
                f"{entry.name}/{p.name}"
                for p in sorted(entry.iterdir())
                if not any(p.name == i or p.name.startswith(f"{i}.") for i in ids)
            ]
        elif entry.name not in FIRST_START_FILES or not entry.is_file():
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


def _configs(tasks: Sequence[RunTask]) -> tuple[list[int], list[Any]]:
    """(indices, RunConfigs) of the tasks whose config parses and validates; the others stay
    alone, and their run reports the error."""
    from benchmark.params import RunConfig, validate_config

    valid, configs = [], []
    for i, t in enumerate(tasks):
        try:
            cfg = RunConfig.from_dict(run_config(t.config, Path(t.runs_dir) / t.id))
            validate_config(cfg)
        except Exception:
            continue
        valid.append(i)
        configs.append(cfg)
    return valid, configs


def _grouped(
    tasks: list[RunTask], size: str | int, pool: Any, say: Any
) -> list[RunTask | EnsembleTask]:
    """Compatible points (same dataset, model, schedule, device, presets) as ensembles of at
    most ``size`` (auto: as many as fit in memory, shared between the local workers on a CPU).
    Points whose config does not parse stay alone: their run reports the error."""
    if size == "off" or len(tasks) < 2:
        return list(tasks)
    from benchmark.ensemble.grouping import memory_fit, plan_groups

    valid, configs = _configs(tasks)
    share = getattr(pool, "workers", 1) if not getattr(pool, "gpus", 0) else 1

    def fits(cfg: Any, latent_dim: int) -> int:
        return max(1, memory_fit(cfg, latent_dim) // max(1, share))

    parallel = getattr(pool, "workers", 1)  # one per GPU when there are GPUs
    groups = [[valid[i] for i in g] for g in plan_groups(configs, size, fits, parallel)]
    grouped = {i for g in groups for i in g}
    groups += [[i] for i in range(len(tasks)) if i not in grouped]
    # longest first (epochs x members), so that the last task to start is a short one and no
    # worker idles through a long tail; equal work keeps the spec's order
    epochs = dict(zip(valid, (c.epochs or 0 for c in configs)))
    out: list[RunTask | EnsembleTask] = []
    for g in sorted(groups, key=lambda g: (-sum(epochs.get(i, 0) for i in g), g[0])):
        out.append(tasks[g[0]] if len(g) == 1 else EnsembleTask(tuple(tasks[i] for i in g)))
    sizes = [len(g) for g in groups if len(g) > 1]
    if sizes:
        say(
            f"ensembles: {len(sizes)} of sizes {sizes}; "
            f"{counted(len(out) - len(sizes), 'run')} alone"
        )
    return out


def _matches(run_id: str, patterns: Sequence[str]) -> bool:
    """Whether ``run_id`` is in the part of the sweep that ``--only`` patterns select."""
    return any(fnmatch.fnmatchcase(run_id, pattern) for pattern in patterns)


def _disk_full_message(outcome: Outcome) -> str:
    """The one-line message of a run that failed because the disk was full
    (``benchmark.files.DiskFull``), or "" for any other outcome."""
    prefix = f"{DiskFull.__name__}: "
    return outcome.error.removeprefix(prefix) if outcome.error.startswith(prefix) else ""


def format_summary(result: SweepResult) -> str:
    """The closing lines of `bench sweep`: counts, then one line per failed run."""
    lines = [
        f"{counted(result.total, 'run')}: {len(result.finished)} trained, "
        f"{len(result.skipped)} already finished, "
        f"{len(result.failed)} failed"
        + (f", {len(result.left)} left for other parts (--only)" if result.left else "")
        + f" ({result.seconds:.1f} s)"
    ]
    for o in result.failed:
        lines.append(f"  {o.id}: {o.error}  (log: {result.sweep_dir / 'runs' / (o.id + '.log')})")
    if result.stopped:
        lines.append("the disk is full: the sweep started no more runs and stopped those in flight")
    if result.failed:
        lines.append(
            "start the same command again to retry the failed runs; finished runs are kept"
        )
    return "\n".join(lines)
