"""What a sweep leaves of a run that did not finish: its folder and its ``<id>.log``, on Ray as
on the local pool."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

from benchmark.ensemble.runner import ensemble_id
from benchmark.sweep.execute import (
    EnsembleTask,
    Outcome,
    RunTask,
    _train_ensemble_into,
    unpack_outcome,
)


def test_unpack_leaves_what_the_run_left(tmp_path: Path) -> None:
    """The driver's side, without Ray: a packed run folder and log replace the sweep's (paths
    rewritten), a log the run did not leave is removed, a folder it did not make is kept."""
    from benchmark.sweep.execute import pack

    scratch, runs = tmp_path / "scratch", tmp_path / "sweep" / "runs"
    folder = scratch / "a"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"weights")
    members = [str(scratch / "a"), str(scratch / "b")]
    config = {"out": str(folder), "ensemble": {"id": "ens-x", "members": members}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "summary.json").write_text(json.dumps({"status": "diverged", "error": "nan"}))
    (scratch / "a.log").write_text("output\nTrainingDiverged: nan\n")
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "old.txt").write_text("an earlier start's")

    unpack_outcome(Outcome("a", False, 1.0, error="x", packed=pack(scratch, "a")), runs)
    final = (runs / "a").resolve()
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*")) == [
        "a",
        "a.log",
        "a/checkpoints",
        "a/checkpoints/last.pt",
        "a/config.json",
        "a/summary.json",
    ]
    config = json.loads((runs / "a" / "config.json").read_text())
    assert config["out"] == str(final)
    want = [final, final.parent / "b"]
    assert config["ensemble"] == {"id": ensemble_id(want), "members": [str(m) for m in want]}
    assert json.loads((runs / "a" / "summary.json").read_text())["status"] == "diverged"
    assert (runs / "a.log").read_text() == "output\nTrainingDiverged: nan\n"

    # a run that failed before making its folder: its log only; the folder there is kept
    shutil.rmtree(folder)
    (scratch / "a.log").write_text("SpecError: bad\n")
    unpack_outcome(Outcome("a", False, 1.0, error="x", packed=pack(scratch, "a")), runs)
    assert (runs / "a.log").read_text() == "SpecError: bad\n"
    assert (runs / "a" / "checkpoints" / "last.pt").read_bytes() == b"weights"

    # a finished run: its folder, and no failure log left from before
    (scratch / "a.log").unlink()
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"status": "finished", "out": str(folder)}))
    outcome = Outcome("a", True, 1.0, summary={"out": str(folder)}, packed=pack(scratch, "a"))
    unpack_outcome(outcome, runs)
    assert sorted(p.name for p in runs.iterdir()) == ["a"]
    assert [p.name for p in (runs / "a").iterdir()] == ["summary.json"]
    assert outcome.summary["out"] == str(final) and outcome.packed is None
    with tarfile.open(fileobj=io.BytesIO(pack(scratch, "nothing"))) as tar:
        assert tar.getnames() == []


def test_an_ensemble_that_fails_as_a_whole_leaves_each_point_its_log(tmp_path: Path) -> None:
    """As a lone run leaves ``<id>.log`` with its output and traceback, so does each point of an
    ensemble that fails as a whole; the ensemble's own log is gone with the training."""
    runs = tmp_path / "runs"
    config = {"model": "no_such_model", "data": str(tmp_path / "none.h5"), "epochs": 1}
    task = EnsembleTask(tuple(RunTask(i, config, str(runs)) for i in ("p", "q")))
    outcomes = _train_ensemble_into(task, [runs / "p", runs / "q"])
    assert [(o.id, o.ok) for o in outcomes] == [("p", False), ("q", False)]
    assert sorted(p.name for p in runs.iterdir()) == ["p.log", "q.log"]
    for o in outcomes:
        log = (runs / f"{o.id}.log").read_text()
        assert log.startswith("Traceback") and log.endswith(o.traceback)
        assert o.error.splitlines()[0] in log
