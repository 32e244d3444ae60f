"""A Ray task that never returns keeps its runs' progress, as a local worker does: each run sends
its folder to the driver at every checkpoint, and when the task's worker dies or the sweep is
interrupted the driver leaves the latest one in the sweep folder, so that the next start resumes
each run from that checkpoint (to the numbers of an uninterrupted sweep) instead of from scratch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from ensemble_helpers import DIE_MARKER_ENV, dies_plugin_site, dies_spec
from sweep_helpers import ROOT, InProcessPool, start_sweep, subprocess_env
from train_fixtures import make_tiny_dataset

from benchmark.sweep import load_sweep, run_sweep, runner
from benchmark.sweep.execute import pack, run_state

TESTS = Path(__file__).resolve().parent


def _step(run: Path) -> int:
    return int(torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"])


def _untimed(value: Any) -> Any:
    """A metrics record without its wall-clock timings (``*_s``, ``times``, ``timings``)."""
    if isinstance(value, dict):
        return {
            k: _untimed(v)
            for k, v in value.items()
            if not k.endswith("_s") and k not in ("times", "timings")
        }
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _numbers(run: Path) -> list[dict]:
    """metrics.jsonl without wall-clock timings."""
    return [_untimed(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "model.pt", weights_only=True)["model"]


@pytest.mark.ray
def test_a_ray_task_whose_worker_dies_leaves_its_runs_resumable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker of an ensemble's task is killed mid-epoch: each member's folder comes back as
    of its last checkpoint (step 8), with the ensemble's output and why the task ended as its
    log, and the next start resumes both from there to the metrics and weights of a sweep that
    was never interrupted (before, nothing came back and they started over)."""
    ray = pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are limited
    try:
        data = make_tiny_dataset(temp / "k1.h5", n=64, factors=1, eval_preset="tiny", image_size=32)
        site = dies_plugin_site(temp)
        monkeypatch.syspath_prepend(str(site))
        spec = temp / "dies.yaml"
        spec.write_text(dies_spec(data, [1, 4], "stored"))
        marker = temp / "die-once"
        marker.touch()
        ray.init(
            num_cpus=2,
            _temp_dir=str(temp / "r"),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={
                "env_vars": {
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), str(site)]),
                    DIE_MARKER_ENV: str(marker),
                }
            },
        )
        try:
            sweep = temp / "killed"
            first = run_sweep(load_sweep(spec), out=sweep, executor="ray", progress=False)
            assert not marker.exists(), "the worker was not killed"
            runs = sweep / "runs"
            ids = sorted(o.id for o in first.failed)
            assert len(ids) == 2 and not first.finished
            left = {}
            for run_id in ids:
                run = runs / run_id
                log = (runs / f"{run_id}.log").read_text()
                left[run_id] = {
                    "step": _step(run),
                    "epochs": len(_numbers(run)),
                    "summary": (run / "summary.json").exists(),
                    "state": run_state(run).text,
                    "log": log.splitlines()[-1],
                    "output": "epoch 2/4 (step 8/16), 2 models" in log,
                }
            note = (
                "note: its folder as of its checkpoint at step 8 is kept; "
                "the next start resumes it from there"
            )
            want = {
                "step": 8,
                "epochs": 2,
                "summary": False,
                "state": "resumes at epoch 3 of 4",
                "log": note,
                "output": True,
            }
            assert left == {run_id: want for run_id in ids}
            failures = json.loads((sweep / "failures.json").read_text())
            assert [f["id"] for f in failures] == ids
            assert all(f["error"].startswith("WorkerCrashedError") for f in failures), failures

            whole = _restart_and_reference(spec, sweep, temp / "whole", ids)
        finally:
            ray.shutdown()
        _assert_resumed_at_epoch_3(sweep, whole, ids)
        assert sorted(p.name for p in runs.iterdir()) == ids
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _restart_and_reference(spec, sweep: Path, whole: Path, ids: list[str]) -> Path:
    """Start the interrupted sweep again, and the same sweep uninterrupted in ``whole``."""
    again = run_sweep(load_sweep(spec), out=sweep, executor="ray", progress=False)
    assert sorted(o.id for o in again.finished) == ids, [o.error for o in again.failed]
    reference = run_sweep(load_sweep(spec), out=whole, executor="ray", progress=False)
    assert sorted(o.id for o in reference.finished) == ids
    return whole


def _assert_resumed_at_epoch_3(sweep: Path, whole: Path, ids: list[str]) -> None:
    """Each run resumed at its third epoch (the second start's output begins there) and ended
    with the uninterrupted sweep's numbers and weights."""
    for run_id in ids:
        resumed, uninterrupted = sweep / "runs" / run_id, whole / "runs" / run_id
        output = (resumed / "sweep.log").read_text()
        assert "epoch 3/4" in output and "epoch 2/4" not in output, output
        assert _numbers(resumed) == _numbers(uninterrupted), run_id
        a, b = _weights(resumed), _weights(uninterrupted)
        assert all(torch.equal(a[k], b[k]) for k in a), run_id


#: One run long enough to be interrupted mid-run: 15 epochs x 8 steps, a checkpoint every 3 steps.
LONG_SPEC = """
name: long
datasets:
  k1: {factors: 1, n: 128, eval_preset: tiny, image_size: 32}
set:
  model: betavae
  data: k1
  latent_dim: 3
  epochs: 15
  batch_size: 16
  checkpoint_every: 3
  score_preset: none
  final_preset: none
grid: {beta: [4]}
report: {x: beta}
"""


def _ray_log_line(line: str) -> bool:
    """One of Ray's own log lines ("2026-01-01 12:00:00,000 INFO worker.py:1 -- Started ...")."""
    parts = line.split()
    return len(parts) > 3 and parts[0][:2] == "20" and parts[2] in ("INFO", "WARNING")


@pytest.mark.ray
def test_ctrl_c_of_a_ray_sweep_leaves_its_run_resumable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGINT to `bench sweep --executor ray` once its run (training in a scratch folder of the
    node) is past its second checkpoint: the run is asked to stop, its folder comes back as of
    its last checkpoint, with its output, and the sweep exits 130 with its one line; the next
    start resumes the run (before, the sweep folder held nothing of it)."""
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        spec = temp / "long.yaml"
        spec.write_text(LONG_SPEC)
        sweep, scratch = temp / "sweep", temp / "scratch"
        scratch.mkdir()
        env = subprocess_env(temp)
        env["TMPDIR"] = str(scratch)  # where the Ray task's scratch folder is made
        env["RAY_TMPDIR"] = str(temp / "r")
        proc = start_sweep(spec, sweep, temp, env, "--executor", "ray")
        try:
            deadline = time.monotonic() + 600
            seen = 0
            while seen < 6:  # the second checkpoint (step 6) is written: the first was sent
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the run never wrote its second checkpoint"
                for ck in scratch.glob("sweep-run-*/*/checkpoints/last.pt"):
                    try:
                        seen = max(seen, int(torch.load(ck, weights_only=True)["step"]))
                    except Exception:  # gone, or not complete yet
                        pass
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            stderr = proc.communicate(timeout=300)[1]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 130, stderr
        ours = [line for line in stderr.strip().splitlines() if not _ray_log_line(line)]
        assert ours == ["bench: interrupted; run the same command again to resume"], stderr
        [run] = [p for p in (sweep / "runs").iterdir() if p.is_dir()]
        step = _step(run)
        assert 6 <= step < 15 * 8, step
        assert not (run / "summary.json").exists()
        assert run_state(run).kind == "resume"
        assert json.loads((run / "config.json").read_text())["out"] == str(run.resolve())
        assert (sweep / "runs" / f"{run.name}.log").exists()  # its output so far, as locally
        # the task stopped as asked (a KeyboardInterrupt), cleaning its scratch folder up: it
        # was not killed
        assert not list(scratch.glob("sweep-*"))

        monkeypatch.setattr(runner, "make_run_pool", lambda *a, **k: InProcessPool())
        again = run_sweep(load_sweep(spec), out=sweep, progress=False)
        assert [o.id for o in again.finished] == [run.name], [o.error for o in again.failed]
        assert _step(run) == 15 * 8
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_a_delivered_folder_never_replaces_a_better_one(tmp_path: Path) -> None:
    """The driver's side, without Ray: a run's folder as its task last sent it replaces the
    sweep's (no folder, or a checkpoint at an earlier step), but never a finished folder nor a
    checkpoint at the same or a later step."""
    from benchmark.sweep.execute import unpack_delivery

    scratch, runs = tmp_path / "scratch", tmp_path / "runs"

    def folder_at(root: Path, step: int, status: str | None = None) -> None:
        _folder_at(root, "a", step, status)

    folder_at(scratch, 8)
    sent = pack(scratch, "a")
    assert unpack_delivery("a", 8, sent, runs)  # no folder yet
    assert _step(runs / "a") == 8
    assert json.loads((runs / "a" / "config.json").read_text())["out"] == str(
        (runs / "a").resolve()
    )
    for step, status, placed in [(12, None, False), (8, None, False), (4, None, True)]:
        folder_at(runs, step, status)
        assert unpack_delivery("a", 8, sent, runs) is placed, (step, status)
        assert _step(runs / "a") == (8 if placed else step)
    folder_at(runs, 4, "finished")
    assert not unpack_delivery("a", 8, sent, runs)
    assert json.loads((runs / "a" / "summary.json").read_text())["status"] == "finished"
    folder_at(runs, 4, "diverged")  # a stopped run's folder: the later checkpoint replaces it
    assert unpack_delivery("a", 8, sent, runs)
    assert not (runs / "a" / "summary.json").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["a"]


def test_unpack_never_replaces_files_put_at_a_runs_place_while_it_trained(tmp_path: Path) -> None:
    """Ray's driver refuses a point whose folder holds your files before sending it; files put
    there while its task ran were replaced by the folder that came back (set aside, then
    deleted). They are kept now, and the point fails with the line a local start gives."""
    from benchmark.sweep.execute import Outcome, unpack_delivery, unpack_outcome

    scratch, runs = tmp_path / "scratch", tmp_path / "sweep" / "runs"
    _folder_at(scratch, "a", 8)
    (scratch / "a.log").write_text("output\n")
    sent = pack(scratch, "a")
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "notes.txt").write_text("mine\n")

    assert not unpack_delivery("a", 8, sent, runs)  # a checkpoint sent while it trains
    outcome = Outcome("a", True, 1.0, summary={"out": "x"}, packed=sent)
    assert not unpack_outcome(outcome, runs)
    expected = f"NotARunFolder: {runs / 'a'} holds 'notes.txt' but no config.json"
    assert not outcome.ok and outcome.error.startswith(expected)
    assert outcome.summary == {} and outcome.packed is None
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*")) == [
        "a",
        "a.log",
        "a/notes.txt",
    ]
    assert (runs / "a" / "notes.txt").read_text() == "mine\n"
    assert (runs / "a.log").read_text() == outcome.error + "\n"


class _FakeRay:
    """What ``RayExecutor`` asks of Ray when a map is stopped, with tasks "a" (ends when asked to
    stop) and "b" (does not); ``wait`` raises a second Ctrl-C when ``again`` is set."""

    def __init__(self, again: bool) -> None:
        self.again = again
        self.cancelled: list[tuple[str, bool]] = []

    def cancel(self, ref: str, force: bool = False) -> None:
        self.cancelled.append((ref, force))

    def wait(self, refs: list[str], num_returns: int, timeout: float) -> tuple[list, list]:
        if self.again:
            raise KeyboardInterrupt
        return ["a"], ["b"]

    def get(self, ref: str) -> str:
        return f"{ref} stopped"


@pytest.mark.parametrize("again", [False, True])
def test_a_stopped_ray_map_hands_every_task_to_on_stop(again: bool) -> None:
    """Without Ray: Ctrl-C asks each pending task to stop (no force), kills those that did not
    end in time, hands each one's end to ``on_stop``; a second Ctrl-C during the wait cuts it
    short (every task killed, each still handed over) and is raised, not swallowed."""
    from spritegen.executors import RayExecutor

    executor = object.__new__(RayExecutor)
    executor.ray = fake = _FakeRay(again)
    seen: list[tuple[str, Any]] = []
    refs = {"a": "task a", "b": "task b"}

    def on_stop(item: str, result: Any) -> None:
        seen.append((item, result if isinstance(result, str) else type(result).__name__))

    if again:
        with pytest.raises(KeyboardInterrupt):
            executor._stop(["a", "b"], refs, on_stop, 20.0)
        assert seen == [("task a", "TimeoutError"), ("task b", "TimeoutError")]
        assert fake.cancelled == [("a", False), ("b", False), ("a", True), ("b", True)]
    else:
        executor._stop(["a", "b"], refs, on_stop, 20.0)
        assert seen == [("task a", "a stopped"), ("task b", "TimeoutError")]
        assert fake.cancelled == [("a", False), ("b", False), ("b", True)]


# --- kept on the driver's disk too: a killed driver loses nothing that reached its mailbox ---


def _folder_at(root: Path, run_id: str, step: int, status: str | None = None) -> Path:
    """A run folder whose checkpoint is at ``step`` (finished, or stopped, with ``status``)."""
    run = root / run_id
    shutil.rmtree(run, ignore_errors=True)
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"step": step}, run / "checkpoints" / "last.pt")
    (run / "config.json").write_text(json.dumps({"out": str(run)}))
    if status:
        (run / "summary.json").write_text(json.dumps({"status": status}))
    return run


def _sent(tmp: Path, run_id: str, step: int) -> tuple[int, bytes]:
    """What a run's task sends at its checkpoint at ``step``: (step, its packed folder), the
    same bytes each time."""
    if not (tmp / f"scratch{step}" / run_id).exists():
        _folder_at(tmp / f"scratch{step}", run_id, step)
    return step, pack(tmp / f"scratch{step}", run_id)


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under ``root`` with its modification time and bytes: what a dry run must keep."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


def test_the_mailbox_keeps_each_tasks_latest_delivery_on_the_drivers_disk(tmp_path: Path) -> None:
    """Without Ray: the mailbox writes a task's latest delivery (an ensemble's runs in one file)
    into the sweep folder, never replacing it by an earlier step, and removes it once the driver
    has the runs' folders; it writes nothing where the sweep folder is not its own (Ray Client)."""
    from benchmark.sweep.deliveries import decode, deliveries_dir, place
    from benchmark.sweep.executors import Mailbox

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    keep = deliveries_dir(sweep)
    box = Mailbox(str(keep), place(sweep))
    assert not keep.exists()  # nothing until a delivery arrives

    def on_disk() -> dict[str, int]:
        return {i: s for i, (s, _) in decode((keep / "a.tar").read_bytes()).items()}

    box.put("a", {"a": _sent(tmp_path, "a", 8), "b": _sent(tmp_path, "b", 8)})
    assert sorted(p.name for p in keep.iterdir()) == ["a.tar"]
    assert on_disk() == {"a": 8, "b": 8}
    assert decode((keep / "a.tar").read_bytes())["a"] == _sent(tmp_path, "a", 8)
    box.put("a", {"a": _sent(tmp_path, "a", 4), "b": _sent(tmp_path, "b", 4)})  # late: ignored
    assert on_disk() == {"a": 8, "b": 8}
    box.put("a", {"a": _sent(tmp_path, "a", 12), "b": _sent(tmp_path, "b", 12)})
    assert on_disk() == {"a": 12, "b": 12}
    assert box.take(["a", "b"]) == {"a": _sent(tmp_path, "a", 12), "b": _sent(tmp_path, "b", 12)}
    assert on_disk() == {"a": 12, "b": 12}  # until the driver has unpacked them
    box.drop(["a", "b"])
    assert list(keep.iterdir()) == []
    box.put("c", {"c": _sent(tmp_path, "c", 4)})
    assert box.close() == ""
    box.put("c", {"c": _sent(tmp_path, "c", 8)})  # closed: the driver settles the disk now
    assert decode((keep / "c.tar").read_bytes())["c"][0] == 4

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for box in (Mailbox(str(deliveries_dir(elsewhere)), place(sweep)), Mailbox()):
        box.put("a", {"a": _sent(tmp_path, "a", 8)})
        assert box.take(["a"]) == {"a": _sent(tmp_path, "a", 8)}
    assert list(elsewhere.iterdir()) == []
    deliveries_dir(elsewhere).write_text("not a folder")  # writing fails: kept in memory
    box = Mailbox(str(deliveries_dir(elsewhere)), place(elsewhere))
    box.put("a", {"a": _sent(tmp_path, "a", 8)})
    assert box.take(["a"]) == {"a": _sent(tmp_path, "a", 8)}
    assert box.close().startswith("FileExistsError")


def test_a_start_unpacks_what_a_killed_driver_kept_under_the_delivery_rules(
    tmp_path: Path,
) -> None:
    """Without Ray: what a killed driver's mailbox left is unpacked as ``unpack_delivery`` would
    (never over a finished folder, never over a checkpoint as far along or further), then
    deleted; an unreadable file is deleted with a warning, not a crash; a file of runs outside
    this start's part (--only) is left for the start that trains them."""
    from benchmark.sweep.deliveries import adopt_kept, deliveries_dir, write_kept
    from spritegen.errors import SpritegenWarning

    sweep = tmp_path / "sweep"
    runs = sweep / "runs"
    runs.mkdir(parents=True)
    keep = deliveries_dir(sweep)
    _folder_at(runs, "fin", 4, "finished")
    _folder_at(runs, "ahead", 12)
    same = _folder_at(runs, "same", 8)
    (same / "mine").touch()
    _folder_at(runs, "behind", 4, "diverged")
    for run_id in ("fin", "ahead", "same"):
        write_kept(keep, run_id, {run_id: _sent(tmp_path, run_id, 8)})
    # an ensemble's members, in one file: one behind, one never unpacked
    write_kept(
        keep, "behind", {"behind": _sent(tmp_path, "behind", 8), "new": _sent(tmp_path, "new", 8)}
    )
    data = write_kept(keep, "bad", {"bad": _sent(tmp_path, "bad", 8)}).read_bytes()
    (keep / "bad.tar").write_bytes(data[: len(data) // 2])  # cut short
    (keep / "behind.tar.partial").write_bytes(b"a write the killed driver did not finish")
    write_kept(keep, "other", {"other": _sent(tmp_path, "other", 8)})

    with pytest.warns(SpritegenWarning, match=r"bad\.tar: a Ray delivery kept .* cannot be read"):
        resumed = adopt_kept(sweep, ["fin", "ahead", "same", "behind", "new", "bad"])
    assert sorted(resumed) == [("behind", 8), ("new", 8)]
    assert json.loads((runs / "fin" / "summary.json").read_text())["status"] == "finished"
    assert {r: _step(runs / r) for r in ("fin", "ahead", "same", "behind", "new")} == {
        "fin": 4,
        "ahead": 12,
        "same": 8,
        "behind": 8,
        "new": 8,
    }
    assert (same / "mine").exists()  # not replaced
    assert not (runs / "behind" / "summary.json").exists()
    assert not (runs / "bad").exists()
    assert sorted(p.name for p in keep.iterdir()) == ["other.tar"]  # another part's
    assert adopt_kept(sweep) == [("other", 8)]
    assert not keep.exists()


#: Two points, one ensemble of 4 epochs x 4 steps (a checkpoint at each epoch's end), on a file.
KEPT_SPEC = """name: kept
set:
  model: betavae
  data: {data}
  latent_dim: 2
  epochs: 4
  batch_size: 16
  score_preset: none
  final_preset: none
grid: {{beta: [1, 4]}}
report: {{x: beta}}
"""


def test_a_start_resumes_an_ensemble_from_what_a_killed_driver_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Ray, on the local executor: a sweep folder holding nothing of its two points but
    the delivery a killed Ray driver kept of their ensemble (at step 8, sent as an ensemble's
    checkpoints are: both members in one call of the checkpoint listeners) says so in a dry run,
    which changes nothing; the next start resumes both from step 8, as one ensemble, to the
    numbers and weights of an uninterrupted sweep, and leaves no kept delivery behind."""
    from benchmark.sweep.deliveries import DELIVERIES, deliveries_dir, write_kept
    from benchmark.train import checkpoint_listener

    data = make_tiny_dataset(tmp_path / "k1.h5", n=64, factors=1, eval_preset="tiny", image_size=32)
    spec = tmp_path / "kept.yaml"
    spec.write_text(KEPT_SPEC.format(data=data))
    monkeypatch.setattr(runner, "make_run_pool", lambda *a, **k: InProcessPool())
    ids = sorted(p.id for p in load_sweep(spec).points)

    calls: list[tuple[list[str], int]] = []
    sent: dict[int, dict[str, tuple[int, bytes]]] = {}

    def courier(checkpoints: list[Path], step: int) -> None:
        """What a Ray task's courier sends: every member's folder at this step, in one call."""
        calls.append((sorted(p.parent.parent.name for p in checkpoints), step))
        sent[step] = {
            p.parent.parent.name: (step, pack(p.parent.parent.parent, p.parent.parent.name))
            for p in checkpoints
        }

    whole = tmp_path / "whole"
    with checkpoint_listener(courier):
        reference = run_sweep(load_sweep(spec), out=whole, progress=False, ensemble=2)
    assert sorted(o.id for o in reference.finished) == ids
    assert calls == [(ids, 4), (ids, 8), (ids, 12), (ids, 16)]

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    write_kept(deliveries_dir(sweep), ids[0], sent[8])
    before = _tree(sweep)
    lines = runner.dry_run(load_sweep(spec), out=sweep, ensemble=2)
    assert any(line.startswith("2 runs with a folder kept by a Ray start") for line in lines), lines
    assert _tree(sweep) == before

    calls.clear()
    with checkpoint_listener(courier):
        again = run_sweep(load_sweep(spec), out=sweep, progress=False, ensemble=2)
    assert sorted(o.id for o in again.finished) == ids, [o.error for o in again.failed]
    assert calls == [(ids, 12), (ids, 16)]  # resumed at step 8, not from scratch
    assert not (sweep / DELIVERIES).exists()
    for run_id in ids:
        resumed, uninterrupted = sweep / "runs" / run_id, whole / "runs" / run_id
        assert _numbers(resumed) == _numbers(uninterrupted), run_id
        a, b = _weights(resumed), _weights(uninterrupted)
        assert all(torch.equal(a[k], b[k]) for k in a), run_id
    assert not (whole / DELIVERIES).exists()  # a local sweep keeps nothing there


@pytest.mark.ray
def test_a_killed_ray_driver_leaves_what_its_runs_delivered(tmp_path: Path) -> None:
    """`bench sweep --executor ray` SIGKILLed (with its tasks, as a lost machine ends them) at
    step 9 of a two-point ensemble, after its checkpoint at step 8 reached the driver: the sweep
    folder keeps that delivery, both members in one file at one step (before, it held nothing of
    them); a dry run counts them, changing nothing; the next start resumes both from step 8 to
    the numbers and weights of an uninterrupted sweep, and no kept delivery is left."""
    ray = pytest.importorskip("ray")
    from benchmark.sweep.deliveries import DELIVERIES, decode

    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are limited
    try:
        data = make_tiny_dataset(temp / "k1.h5", n=64, factors=1, eval_preset="tiny", image_size=32)
        site = dies_plugin_site(temp)
        spec = temp / "dies.yaml"
        spec.write_text(dies_spec(data, [1, 4], "stored"))
        marker = temp / "die-once"
        marker.touch()
        path = os.pathsep.join([str(ROOT), str(TESTS), str(site)])
        env = subprocess_env(temp)
        env.update({"PYTHONPATH": path, DIE_MARKER_ENV: str(marker), "RAY_TMPDIR": str(temp / "d")})
        sweep = temp / "sweep"
        proc = start_sweep(spec, sweep, temp, env, "--executor", "ray")
        try:
            marker.write_text(str(proc.pid))  # the worker kills the driver at step 9
            stderr = proc.communicate(timeout=600)[1]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of its Ray instance
        assert proc.returncode == -signal.SIGKILL, stderr
        assert not marker.exists()
        kept = sorted((sweep / DELIVERIES).iterdir())
        assert len(kept) == 1, kept
        held = decode(kept[0].read_bytes())
        ids = sorted(held)
        assert len(ids) == 2 and {s for s, _ in held.values()} == {8}
        assert not [p for p in (sweep / "runs").iterdir() if p.is_dir()]  # nothing unpacked
        before = _tree(sweep)
        sys.path.insert(0, str(site))
        try:
            lines = runner.dry_run(load_sweep(spec), out=sweep, executor="ray")
        finally:
            sys.path.remove(str(site))
        assert any(line.startswith("2 runs with a folder kept") for line in lines), lines
        assert _tree(sweep) == before

        sys.path.insert(0, str(site))
        ray.init(
            num_cpus=2,
            _temp_dir=str(temp / "r"),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
        try:
            whole = _restart_and_reference(spec, sweep, temp / "whole", ids)
        finally:
            ray.shutdown()
            sys.path.remove(str(site))
        _assert_resumed_at_epoch_3(sweep, whole, ids)
        assert not (sweep / DELIVERIES).exists() and not (whole / DELIVERIES).exists()
        assert sorted(p.name for p in (sweep / "runs").iterdir()) == ids
    finally:
        shutil.rmtree(temp, ignore_errors=True)
