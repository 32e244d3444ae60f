"""`bench sweep --dry-run` on a half-finished sweep: the folder it would use, and what the next
start would do with each run (finished, stopped, resumed, new) and with each dataset.

The sweep is real and made by ``run_sweep``: eight tiny points, of which one finished, one
diverged in its second epoch (a NaN loss, stopped by the training loop itself), one was
interrupted after its first epoch (as Ctrl-C interrupts it) and five never started; only dataset
k1 is built. It trains in this process (an in-process pool instead of spawned workers), unscored,
in a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from sweep_helpers import InProcessPool, tiny_spec

import benchmark.run
from benchmark.sweep import load_sweep, run_sweep
from benchmark.sweep.cli import sweep_command
from benchmark.sweep.runner import dry_run

#: The tiny points train 128 images in batches of 64: two steps per epoch, two epochs.
STEPS_PER_EPOCH = 2


def _stopping(diverge: str, interrupt: str) -> Any:
    """``benchmark.run.train`` where run ``diverge``'s loss turns NaN in its second epoch (the
    loop stops it: TrainingDiverged, summary "diverged", the first epoch's checkpoint kept) and
    run ``interrupt`` gets a KeyboardInterrupt once its first epoch is recorded."""
    real = benchmark.run.train

    def train(model: Any, images: Any, cfg: Any, **kwargs: Any) -> Any:
        run_id = Path(kwargs["checkpoint"]).parent.parent.name
        if run_id == diverge:
            loss = model.loss

            def nan_loss(x: Any, step: int, generator: Any) -> Any:
                terms = loss(x, step=step, generator=generator)
                if step >= STEPS_PER_EPOCH:
                    terms["loss"] = terms["loss"] * float("nan")
                return terms

            model.loss = nan_loss
        if run_id == interrupt:
            record = kwargs["on_epoch"]

            def on_epoch(history: list[dict]) -> None:
                record(history)
                raise KeyboardInterrupt

            kwargs["on_epoch"] = on_epoch
        return real(model, images, cfg, **kwargs)

    return train


@pytest.fixture(scope="module")
def half_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The spec, its sweep folder, and the ids of its finished, stopped, interrupted runs."""
    tmp = tmp_path_factory.mktemp("half")
    spec = tmp / "half.yaml"
    # unscored: the states do not depend on the scores, and scoring is most of a tiny run's time
    spec.write_text(tiny_spec("half", [0, 1]).replace("score_preset: stored", "score_preset: none"))
    plan = load_sweep(spec)
    ids = {p.id: p for p in plan.points}
    k1 = [i for i in ids if ids[i].dataset == "k1"]
    done, stopped, interrupted = k1[:3]
    sweep = tmp / "sweep"
    args: dict[str, Any] = dict(out=sweep, build_workers=1, progress=False, ensemble="off")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("benchmark.sweep.runner.make_run_pool", lambda *a, **k: InProcessPool())
        mp.setattr(benchmark.run, "train", _stopping(stopped, interrupted))
        first = run_sweep(plan, only=[done, stopped], **args)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(plan, only=[interrupted], **args)
    assert [o.id for o in first.finished] == [done]
    assert [(o.id, o.error.split(":")[0]) for o in first.failed] == [(stopped, "TrainingDiverged")]
    return {
        "spec": spec,
        "sweep": sweep,
        "plan": plan,
        "finished": done,
        "stopped": stopped,
        "interrupted": interrupted,
        "new": [i for i in ids if i not in (done, stopped, interrupted)],
        "k1_new": k1[3],
    }


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``folder`` with its content's hash (files) and mtime."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
    }


def _states(lines: list[str]) -> dict[str, str]:
    """Run id -> the state its dry-run line shows (the text between the id and the parameters)."""
    return {
        line.split()[0]: line.split("  model=")[0][len(line.split()[0]) :].strip()
        for line in lines
        if "  model=" in line
    }


def test_a_dry_run_names_the_folder_and_what_the_next_start_does_with_each_run(
    half_sweep: dict[str, Any],
) -> None:
    """Each state is what a start does: the stopped run is labelled as failures.json labels it,
    and both unfinished runs resume at the epoch after their checkpoint's; nothing is written."""
    h, sweep = half_sweep, half_sweep["sweep"]
    before = _snapshot(sweep)
    res = CliRunner().invoke(sweep_command, [str(h["spec"]), "--out", str(sweep), "--dry-run"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == f"sweep folder: {sweep} (exists)"
    assert _states(lines) == {
        h["finished"]: "finished",
        h["stopped"]: "stopped: TrainingDiverged, resumes at epoch 2 of 2",
        h["interrupted"]: "resumes at epoch 2 of 2",
        **{i: "new" for i in h["new"]},
    }
    assert lines[-1] == (
        "8 runs (half: 8); 2 datasets (k2 to build first); "
        "1 finished, 1 stopped (to try again), 1 to resume, 5 new"
    )
    assert _snapshot(sweep) == before
    for run in (h["stopped"], h["interrupted"]):  # the epoch bench run resumes at
        ck = torch.load(sweep / "runs" / run / "checkpoints" / "last.pt", weights_only=True)
        assert (ck["epoch"] + 1, ck["batch_in_epoch"]) == (2, 0)


def test_the_sweep_folders_spec_names_its_folder_and_the_original_the_default(
    half_sweep: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out, the folder a start would use: the sweep folder for its own spec.yaml, and
    results/<name> of the current folder for the original (not there: every run new, every
    dataset built first, and the dry run creates nothing)."""
    h, sweep = half_sweep, half_sweep["sweep"]
    monkeypatch.chdir(tmp_path)
    before = _snapshot(sweep)
    own = dry_run(load_sweep(sweep / "spec.yaml"))
    assert own[0] == f"sweep folder: {sweep} (exists)"
    assert _states(own)[h["interrupted"]] == "resumes at epoch 2 of 2"
    fresh = dry_run(h["plan"])
    assert fresh[0] == (
        f"sweep folder: {tmp_path / 'results' / 'half'} (not there yet; the sweep creates it)"
    )
    assert set(_states(fresh).values()) == {"new"}
    assert fresh[-1] == "8 runs (half: 8); 2 datasets (all to build first); 8 new"
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(sweep) == before


def test_a_dry_run_of_a_part_counts_and_groups_only_what_that_part_trains(
    half_sweep: dict[str, Any],
) -> None:
    """With --only, the part's runs and their states; its dataset is built already, and the
    ensembles are those of the three runs left to train, not of the finished one."""
    h = half_sweep
    lines = dry_run(h["plan"], out=h["sweep"], only=["*_k1_*"])
    states = _states(lines)
    assert sorted(states) == sorted([h["finished"], h["stopped"], h["interrupted"], h["k1_new"]])
    assert lines[-2].startswith("ensembles: compatible sets of sizes [3], 0 runs alone")
    assert lines[-1] == (
        "8 runs (half: 8); 2 datasets; this part: 4 runs, 1 dataset, 4 left for other parts "
        "(--only); 1 finished, 1 stopped (to try again), 1 to resume, 1 new"
    )


def test_on_ray_the_states_are_the_local_pools(half_sweep: dict[str, Any]) -> None:
    """A Ray task is sent with its point's unfinished folder and resumes it on its node, as the
    local pool resumes it in place: the dry run says the same for both executors."""
    h = half_sweep
    lines = {}
    for executor in ("local", "ray"):
        args = [str(h["spec"]), "--out", str(h["sweep"]), "--dry-run", "--executor", executor]
        res = CliRunner().invoke(sweep_command, args)
        assert res.exit_code == 0, res.output
        lines[executor] = res.output.strip().splitlines()
    assert lines["ray"] == lines["local"]
    states = _states(lines["ray"])
    assert states[h["stopped"]] == "stopped: TrainingDiverged, resumes at epoch 2 of 2"


def test_run_states_follow_what_a_start_does_with_the_folder(
    half_sweep: dict[str, Any], tmp_path: Path
) -> None:
    """Copies of the sweep's run folders, changed as crashes and people leave them: a folder
    without config.json holding only what a run killed before writing it leaves is replaced
    (new), one holding more is left alone and fails (its files are not the sweep's to delete);
    without its checkpoint, training starts at epoch 1;
    a finished run's folder without its summary resumes at the final scores; a summary bench
    run cannot read makes every start fail; a model failure is labelled ModelFailed."""
    from benchmark.sweep.execute import RunState, run_state

    h = half_sweep
    runs = tmp_path / "runs"
    shutil.copytree(h["sweep"] / "runs", runs)
    no_config = runs / h["new"][0]
    shutil.copytree(runs / h["interrupted"], no_config)
    (no_config / "config.json").unlink()
    assert run_state(no_config) == RunState(
        "fail", "fails: its folder holds files but no config.json (move it)"
    )
    shutil.rmtree(no_config)
    (no_config / "checkpoints").mkdir(parents=True)  # killed before writing its config.json
    (no_config / "config.json.partial").write_text("{")
    assert run_state(no_config) == RunState("new", "new")
    (runs / h["interrupted"] / "checkpoints" / "last.pt").unlink()
    assert run_state(runs / h["interrupted"]).text == "resumes at epoch 1 of 2"
    (runs / h["finished"] / "summary.json").unlink()
    assert run_state(runs / h["finished"]) == RunState(
        "resume", "resumes at its final scores (2 of 2 epochs trained)"
    )
    summary = runs / h["stopped"] / "summary.json"
    summary.write_text(json.dumps({"status": "failed", "error": "model 'x' failed"}))
    assert run_state(summary.parent).text == "stopped: ModelFailed, resumes at epoch 2 of 2"
    summary.write_text("{")
    assert run_state(summary.parent).kind == "fail"
    summary.write_text("[]")  # JSON, but no record: is_finished raised AttributeError
    assert run_state(summary.parent).kind == "fail"
