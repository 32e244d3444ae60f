"""What a sweep leaves of a run that did not finish: its folder and its ``<id>.log``."""

from __future__ import annotations

from pathlib import Path

from benchmark.sweep.execute import EnsembleTask, RunTask, _train_ensemble_into


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
