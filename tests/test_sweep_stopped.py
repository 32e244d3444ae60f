"""A run that stops (its loss diverged) leaves the same record in the sweep folder on Ray as on
the local pool: its folder (config, metrics, summary saying why, last good checkpoint) and its
log, as an ensemble's member and as a lone run; the next start retries it, from that checkpoint,
on both."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from sweep_helpers import ROOT, InProcessPool
from train_fixtures import make_tiny_dataset

from benchmark.ensemble.runner import ensemble_id
from benchmark.report.records import load_sweep as load_report
from benchmark.sweep import load_sweep, run_sweep, runner
from benchmark.sweep.execute import (
    EnsembleTask,
    Outcome,
    RunTask,
    _train_ensemble_into,
    unpack_outcome,
)

TESTS = Path(__file__).resolve().parent

# Explodes (tests/ensemble_helpers.py): a beta-VAE whose loss is infinite at step explode_at.
# The two points train as an ensemble, one member diverging in its second epoch (2 steps each);
# the next start retries that one alone, resuming from its checkpoint.
SPEC = """name: stops
set:
  model: explodes
  data: {data}
  latent_dim: 2
  epochs: 2
  batch_size: 32
  checkpoint_every: 1
  score_preset: none
  final_preset: none
grid: {{explode_at: [-1, 2]}}
report: {{x: explode_at}}
"""
STOPPED = "the loss became non-finite (inf) at step 3 (epoch 2)"


def _plugin_site(tmp: Path) -> Path:
    """A folder that registers ``explodes`` through an entry point, as an installed plugin
    would: seen by this process (on sys.path) and by Ray's workers (on their PYTHONPATH)."""
    site = tmp / "site"
    info = site / "explodes_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: explodes-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[benchmark.models]\nexplodes = ensemble_helpers:Explodes\n"
    )
    return site


def _record(sweep: Path) -> dict[str, Any]:
    """What a sweep left in its runs/ folder: every path, the JSON records with the sweep's own
    folder named <sweep> (and an ensemble's id checked, then dropped: it hashes that folder),
    the summaries of stopped runs whole, the logs' last line, the checkpoints' step."""
    runs = sweep / "runs"
    out: dict[str, Any] = {}
    for path in sorted(runs.rglob("*")):
        rel = path.relative_to(runs).as_posix()
        if path.is_dir():
            out[rel + "/"] = None
        elif path.name in ("config.json", "summary.json"):
            record = json.loads(path.read_text().replace(str(sweep.resolve()), "<sweep>"))
            if path.name == "summary.json" and record["status"] == "finished":
                record = {"status": "finished", "out": record["out"], "steps": record["steps"]}
            ensemble = record.get("ensemble")
            if ensemble:
                members = [
                    Path(m.replace("<sweep>", str(sweep.resolve()))) for m in ensemble["members"]
                ]
                assert ensemble.pop("id") == ensemble_id(members), path
            record.pop("torch", None)
            out[rel] = record
        elif path.suffix == ".log":
            lines = path.read_text().splitlines()
            out[rel] = lines[-1] if path.name != "sweep.log" and lines else "..."
        elif path.name == "last.pt":
            out[rel] = int(torch.load(path, map_location="cpu", weights_only=True)["step"])
        elif path.name == "metrics.jsonl":
            out[rel] = len(path.read_text().splitlines())
        else:
            out[rel] = "file"
    return out


def _failures(sweep: Path) -> list[tuple[str, str, str]]:
    return sorted(
        (f["id"], f["error"], f["log"]) for f in json.loads((sweep / "failures.json").read_text())
    )


def _missing(sweep: Path) -> list[str]:
    _, experiments = load_report(sweep)
    return sorted(experiments[0].missing)


def _start(spec: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    """Start the sweep; what the start decided and what the folder holds after it."""
    result = run_sweep(load_sweep(spec), out=out, progress=False, **kwargs)
    return {
        "skipped": sorted(result.skipped),
        "finished": sorted(o.id for o in result.finished),
        "failed": sorted((o.id, o.error) for o in result.failed),
        "failures": _failures(out),
        "record": _record(out),
        "missing": _missing(out),
    }


@pytest.mark.ray
def test_a_stopped_run_leaves_the_same_folder_on_ray_as_on_the_local_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are limited
    try:
        data = make_tiny_dataset(temp / "k1.h5", n=64, factors=1, image_size=32)
        site = _plugin_site(temp)
        monkeypatch.syspath_prepend(str(site))
        spec = temp / "stops.yaml"
        spec.write_text(SPEC.format(data=data))

        with monkeypatch.context() as m:
            m.setattr(runner, "make_run_pool", lambda *a, **k: InProcessPool())
            local = [_start(spec, temp / "local") for _ in range(2)]
        ray.init(
            num_cpus=2,
            _temp_dir=str(temp / "r"),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={
                "env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), str(site)])}
            },
        )
        try:
            on_ray = [_start(spec, temp / "ray", executor="ray") for _ in range(2)]
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    first, again = local
    # what the local pool leaves: the stopped member's folder and log
    assert len(first["finished"]) == 1 and len(first["failed"]) == 1
    [(stopped, error)] = first["failed"]
    assert error == (
        f"TrainingDiverged: {STOPPED}; the last good checkpoint is kept. "
        "Lower the learning rate or check the model and its hyperparameters."
    )
    assert first["failures"] == [(stopped, error, f"runs/{stopped}.log")]
    for start in (first, again):
        record = start["record"]
        assert record[f"{stopped}/summary.json"] == {
            "status": "diverged",
            "error": error.removeprefix("TrainingDiverged: "),
        }
        assert record[f"{stopped}/checkpoints/last.pt"] == 2  # the last good checkpoint
        assert record[f"{stopped}/metrics.jsonl"] == 1  # its first epoch
        assert record[f"{stopped}/config.json"]["out"] == f"<sweep>/runs/{stopped}"
        assert STOPPED in record[f"{stopped}.log"]
        assert f"{stopped}/sweep.log" in record  # the ensemble's, kept: resumed in place
        assert start["missing"] == [stopped]
    # the next start retries it (and only it), alone now, and it stops the same way
    assert again["skipped"] == first["finished"] and again["failed"] == first["failed"]
    assert "ensemble" in first["record"][f"{stopped}/config.json"]
    assert "ensemble" not in again["record"][f"{stopped}/config.json"]

    # Ray: the same decisions, records and report, at the first start and the next
    assert on_ray == local


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
    (runs / "a" / "config.json").write_text(json.dumps({"out": "an earlier start's"}))
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
    ensemble that fails as a whole (then alone, each: the ensemble's traceback comes first, the
    point's own last); the ensemble's own log is gone with the training."""
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


def test_a_point_that_breaks_its_ensemble_fails_alone_and_the_others_train(tmp_path: Path) -> None:
    """beta 1e300 passes the sweep's plan but makes its model's dry forward pass non-finite, so
    run_ensemble refused the whole ensemble: the good point failed with it. Now each point of an
    ensemble that fails as a whole trains alone, as with --ensemble off."""
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=2)
    runs = tmp_path / "runs"
    base = {
        "model": "betavae",
        "data": str(data),
        "latent_dim": 2,
        "epochs": 1,
        "batch_size": 32,
        "score_preset": "none",
        "final_preset": "none",
    }
    task = EnsembleTask(
        (
            RunTask("good", {**base, "beta": 4.0}, str(runs)),
            RunTask("huge", {**base, "beta": 1e300}, str(runs)),
        )
    )
    good, huge = _train_ensemble_into(task, [runs / "good", runs / "huge"])
    assert good.ok, good.error
    assert json.loads((runs / "good" / "summary.json").read_text())["status"] == "finished"
    assert not huge.ok and huge.error.startswith("ModelError: ")
    assert "non-finite loss terms on a dry forward pass" in huge.error
    log = (runs / "huge.log").read_text()
    assert "note: the ensemble of 2 points stopped (ModelError: " in log
    assert log.endswith(huge.traceback)
    assert "note: the ensemble of 2 points stopped" in (runs / "good" / "sweep.log").read_text()
    assert sorted(p.name for p in runs.iterdir()) == ["good", "huge.log"]


def test_a_point_another_process_trains_is_left_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `bench sweep` of one folder at once: a point the other start trains (it holds the run
    folder's lock) was reported as failed here only after its log had been truncated (the
    finished run then kept this start's traceback as its sweep.log) and its new folder, not yet
    holding config.json, deleted. Now it is left untouched, and the other point trains (alone:
    its ensemble's partner is busy)."""
    from benchmark.files import lock_path
    from spritegen.atomic import exclusive_lock

    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=3)
    spec = tmp_path / "two.yaml"
    spec.write_text(
        f"name: two\nset: {{model: betavae, data: {data}, latent_dim: 2, epochs: 1, "
        "batch_size: 32, score_preset: none, final_preset: none}\n"
        "grid: {beta: [1, 4]}\nreport: {x: beta}\n"
    )
    busy, free = (p.id for p in load_sweep(spec).points)
    runs = tmp_path / "sweep" / "runs"
    (runs / busy).mkdir(parents=True)  # the other start's run, before its config.json
    (runs / busy / "metrics.jsonl.partial").write_text("{}")
    (runs / f"{busy}.log").write_text("the other start's output\n")
    monkeypatch.setattr(runner, "make_run_pool", lambda *a, **k: InProcessPool())
    with exclusive_lock(lock_path(runs / busy), RuntimeError):
        result = run_sweep(load_sweep(spec), out=tmp_path / "sweep", progress=False)
    assert [o.id for o in result.finished] == [free]
    assert [(o.id, o.error.split(":")[0]) for o in result.failed] == [(busy, "RunFolderBusy")]
    assert "is being written by another bench run" in result.failed[0].error
    assert (runs / f"{busy}.log").read_text() == "the other start's output\n"
    assert sorted(p.name for p in (runs / busy).iterdir()) == ["metrics.jsonl.partial"]
    assert "Traceback" not in (runs / free / "sweep.log").read_text()
