"""`bench sweep` (local pool) under faults: a full disk, run folders edited by hand between
starts, parts of one sweep folder started one after another or at once.

Each test runs the real command on a real (tiny) dataset; a full disk is a real small tmpfs
(root only: skipped elsewhere). After the fault, the next start must finish the sweep with the
numbers of an uninterrupted one, and no half-written or stray file may be left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from sweep_helpers import local_ray, subprocess_env
from train_fixtures import make_tiny_dataset

from benchmark.sweep import load_sweep
from benchmark.sweep.cli import sweep_command
from benchmark.sweep.spec import copy_text


def _spec(tmp: Path, betas: list[int], name: str = "faults") -> Path:
    """A sweep of one tiny betavae run per beta on a 64-image data file (no dataset to build):
    2 steps of one epoch, no scoring; a few seconds a run."""
    data = tmp / "d.h5"
    if not data.exists():
        make_tiny_dataset(data, n=64, seed=3)
    spec = tmp / f"{name}.yaml"
    spec.write_text(
        f"name: {name}\nset: {{model: betavae, data: {data}, latent_dim: 2, epochs: 1, "
        "batch_size: 32, score_preset: none, final_preset: none}\n"
        f"grid: {{beta: {betas}}}\nreport: {{x: beta}}\n"
    )
    return spec


def _bench_sweep(spec: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`bench sweep SPEC --out OUT --quiet --workers 1 EXTRA...` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "sweep", str(spec), "--out", str(out)]
        + ["--quiet", "--workers", "1", *extra],
        env=subprocess_env(spec.parent),
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _numbers(run: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """A finished run's metrics.jsonl without timings, and its final weights."""
    rows = [
        {k: v for k, v in json.loads(line).items() if not k.endswith("_s")}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    return rows, torch.load(run / "checkpoints" / "model.pt", weights_only=True)["model"]


def _same_runs(a: Path, b: Path) -> None:
    """Every run of sweep ``a`` finished in ``b`` too, with equal numbers and weights."""
    runs = sorted(p.name for p in (a / "runs").iterdir() if p.is_dir())
    assert runs == sorted(p.name for p in (b / "runs").iterdir() if p.is_dir())
    for name in runs:
        assert json.loads((b / "runs" / name / "summary.json").read_text())["status"] == "finished"
        rows_a, weights_a = _numbers(a / "runs" / name)
        rows_b, weights_b = _numbers(b / "runs" / name)
        assert rows_a == rows_b, name
        assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), name


def _leftovers(sweep: Path) -> list[str]:
    """Files no finished sweep should hold: partial writes, run folders' locks, an ensemble's
    log (``sweep.lock``, the lock of the sweep's records, stays)."""
    return sorted(
        str(p.relative_to(sweep))
        for p in sweep.rglob("*")
        if p.name.endswith((".partial", ".lock", ".ensemble.log", ".unpacking"))
        and p != sweep / "sweep.lock"
    )


def _user_folder(folder: Path) -> Path:
    """``folder`` made as a user's files at a run's place: a checkpoint but no config.json."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"my checkpoint")
    (folder / "notes.txt").write_text("mine\n")
    return folder


def _contents(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount(options)``: a real tmpfs mounted with those options (``size=4k``,
    ``nr_inodes=N``), remounted on each call; unmounted at the end. Needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = False

    def mount(options: str) -> Path:
        nonlocal mounted
        args = ["-o", options if not mounted else f"remount,{options}"]
        done = subprocess.run(
            ["mount", "-t", "tmpfs", *args, "tmpfs", str(disk)], capture_output=True
        )
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted = True
        return disk

    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


# --- a full disk ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_at_the_sweeps_own_records_is_one_line_and_resumes(
    tmp_path: Path, small_disk: Callable[..., Path]
) -> None:
    """A disk with room for spec.yaml but not sweep.json: the write of sweep.json was an OSError
    traceback. Now one line naming the file and the disk, exit 1, no partial file; with space
    freed, the same command trains the sweep to the numbers of one never interrupted."""
    spec = _spec(tmp_path, [1])
    sweep = small_disk("size=4k") / "sweep"
    full = _bench_sweep(spec, sweep)
    assert full.returncode == 1, full.stderr
    assert full.stderr.splitlines() == [
        f"bench: error: no space left on the disk holding {sweep} while writing sweep.json "
        f"(0.0 MiB, 0.0 MiB free); free some disk space and run the same command again to resume"
    ]
    assert _leftovers(sweep) == [] and not (sweep / "sweep.json").exists()

    small_disk("size=64m")
    again = _bench_sweep(spec, sweep)
    assert again.returncode == 0, again.stderr
    reference = _bench_sweep(spec, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    _same_runs(tmp_path / "reference", sweep)
    assert _leftovers(sweep) == []


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_at_the_first_run_that_finds_it(
    tmp_path: Path, small_disk: Callable[..., Path]
) -> None:
    """A disk with room for the sweep's records but not for a checkpoint: every run trained up
    to its first checkpoint and failed there, one after another (3 failed, no error line). Now
    the first run that finds the disk full stops the sweep: no other run is started, one line
    on stderr, exit 1; with space freed, the same command trains every run to the numbers of a
    sweep never interrupted."""
    spec = _spec(tmp_path, [1, 4, 8])
    sweep = small_disk("size=3m") / "sweep"
    full = _bench_sweep(spec, sweep, "--ensemble", "off")
    assert full.returncode == 1, full.stderr
    [line] = full.stderr.splitlines()
    assert line.startswith(f"bench: error: no space left on the disk holding {sweep}/runs/")
    assert line.endswith("free some disk space and run the same command again to resume")
    failed = json.loads((sweep / "failures.json").read_text())
    assert len(failed) == 1 and failed[0]["error"].startswith("DiskFull: "), failed
    assert "0 trained, 0 already finished, 1 failed" in full.stdout

    small_disk("size=64m")
    again = _bench_sweep(spec, sweep, "--ensemble", "off")
    assert again.returncode == 0, again.stderr
    assert "3 trained" in again.stdout
    reference = _bench_sweep(spec, tmp_path / "reference", "--ensemble", "off")
    assert reference.returncode == 0, reference.stderr
    _same_runs(tmp_path / "reference", sweep)
    assert _leftovers(sweep) == []


def test_a_sweep_folder_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    """`--out` where no folder can be made (under /proc) was an OSError traceback."""
    spec = _spec(tmp_path, [1])
    res = CliRunner().invoke(sweep_command, [str(spec), "--out", "/proc/sweep", "--quiet"])
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [
        "bench: error: --out '/proc/sweep': cannot create the sweep folder "
        "(No such file or directory); choose a writable folder"
    ]
    assert load_sweep(spec).points  # the spec itself is fine


def _entries(folder: Path) -> int:
    """Files and folders in ``folder``, itself included."""
    return 1 + sum(1 for _ in folder.rglob("*"))


@pytest.mark.slow
def test_a_disk_full_as_an_ensemble_ends_leaves_its_finished_runs_finished(
    tmp_path: Path, small_disk: Callable[..., Path]
) -> None:
    """A disk (here: a tmpfs out of inodes) that fills just as an ensemble's members have
    finished, when the sweep copies the ensemble's output into each member's sweep.log: the
    plain write raised, failing the whole task, so both finished runs were reported failed with
    `OSError: [Errno 28]`, exit 1, and `<first>.ensemble.log` was left. Now the log is written
    whole or not at all and never fails a finished run; nothing stray is left, and the next
    start has nothing to train."""
    spec = _spec(tmp_path, [1, 4])
    reference = _bench_sweep(spec, tmp_path / "reference", "--ensemble", "2")
    assert reference.returncode == 0, reference.stderr
    # at the moment the logs are written the disk holds what the finished sweep holds, less
    # failures.json and the two sweep.log, plus the two run folders' locks and the ensemble's
    # log: as many entries as the finished sweep (and the disk's root): not one more fits
    used = 1 + _entries(tmp_path / "reference")
    sweep = small_disk(f"size=64m,nr_inodes={used}") / "sweep"
    first = _bench_sweep(spec, sweep, "--ensemble", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 runs: 2 trained, 0 already finished, 0 failed" in first.stdout
    assert not list(sweep.glob("runs/*/sweep.log"))  # the disk had no room for them
    assert _leftovers(sweep) == []
    small_disk("nr_inodes=10000")
    again = _bench_sweep(spec, sweep, "--ensemble", "2")
    assert again.returncode == 0 and "0 trained, 2 already finished" in again.stdout, again.stdout
    _same_runs(tmp_path / "reference", sweep)


# --- run folders edited by hand between starts ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["off", "2"])
def test_a_folder_without_config_json_holding_files_is_not_deleted(
    tmp_path: Path, ensemble: str
) -> None:
    """A point's folder holding files but no config.json (your notes; a run whose config.json
    was deleted by hand) was deleted with everything in it and trained afresh, silently. Now its
    point fails with one line naming a file and what to do, the folder is untouched and the
    other point trains; once the folder is moved away, the next start trains the point."""
    spec = _spec(tmp_path, [1, 4])
    kept, other = (p.id for p in load_sweep(spec).points)
    sweep = tmp_path / "sweep"
    folder = _user_folder(sweep / "runs" / kept)
    before = _contents(folder)
    dry = _bench_sweep(spec, sweep, "--dry-run")
    assert "fails: its folder holds files but no config.json (move it)" in dry.stdout, dry.stdout

    first = _bench_sweep(spec, sweep, "--ensemble", ensemble)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1 trained, 0 already finished, 1 failed" in first.stdout
    assert (
        f"  {kept}: NotARunFolder: {folder.resolve()} holds 'checkpoints/last.pt' and 1 more but "
        "no config.json, so it is no run folder this sweep can resume, and its files are not the "
        "sweep's to delete; move or delete the folder, then start the sweep again"
    ) in first.stdout
    assert _contents(folder) == before
    assert [f["id"] for f in json.loads((sweep / "failures.json").read_text())] == [kept]
    assert (sweep / "runs" / other / "summary.json").is_file()

    shutil.move(folder, tmp_path / "moved")
    again = _bench_sweep(spec, sweep, "--ensemble", ensemble)
    assert again.returncode == 0 and "1 trained, 1 already finished" in again.stdout, again.stdout
    reference = _bench_sweep(spec, tmp_path / "reference", "--ensemble", ensemble)
    _same_runs(tmp_path / "reference", sweep)
    assert reference.returncode == 0 and _leftovers(sweep) == []


@pytest.mark.ray
@pytest.mark.slow
def test_on_ray_a_folder_without_config_json_holding_files_is_not_replaced(
    tmp_path: Path,
) -> None:
    """On Ray the point was trained afresh on its node (nothing resumable to send), and the
    folder that came back replaced the one holding your files. Now the driver refuses the point
    before sending it, with the local start's line and log; the other member of its ensemble
    trains alone, and once the folder is moved away the next start trains the point."""
    pytest.importorskip("ray")
    import tempfile

    from benchmark.sweep import run_sweep

    spec = _spec(tmp_path, [1, 4])
    kept, other = (p.id for p in load_sweep(spec).points)
    sweep = tmp_path / "sweep"
    folder = _user_folder(sweep / "runs" / kept)
    before = _contents(folder)
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        with local_ray(temp):
            first = run_sweep(
                load_sweep(spec), out=sweep, executor="ray", ensemble="2", progress=False
            )
            assert [o.id for o in first.finished] == [other]
            assert [o.error for o in first.failed] == [
                f"NotARunFolder: {folder.resolve()} holds 'checkpoints/last.pt' and 1 more but "
                "no config.json, so it is no run folder this sweep can resume, and its files are "
                "not the sweep's to delete; move or delete the folder, then start the sweep again"
            ]
            assert _contents(folder) == before
            assert (sweep / "runs" / f"{kept}.log").read_text() == first.failed[0].error + "\n"
            shutil.move(folder, tmp_path / "moved")
            again = run_sweep(load_sweep(spec), out=sweep, executor="ray", progress=False)
            assert [o.id for o in again.finished] == [kept] and not again.failed
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert not (sweep / "runs" / f"{kept}.log").exists() and _leftovers(sweep) == []


# --- parts of one sweep folder --------------------------------------------------------------------


def _garbled_copy(good: Path, broken: Path) -> Path:
    """A copy of ``good`` whose first training chunk is corrupt: a run on it fails when its
    training images are read (after planning, which only reads the header)."""
    import h5py

    shutil.copy(good, broken)
    with h5py.File(broken, "r+") as f:
        dset = f["images"]
        mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
        middle = len(stored) // 2
        garbled = stored[:middle] + b"\xff" * 16 + stored[middle + 16 :]
        dset.id.write_direct_chunk((0, 0, 0, 0), garbled, filter_mask=mask)
    return broken


@pytest.mark.slow
def test_parts_of_a_sweep_keep_each_others_failures(tmp_path: Path) -> None:
    """`--only` parts of one sweep folder started one after the other: each part overwrote
    failures.json with its own failures, so a part that ended without failing erased another
    part's. Now each start merges its failures with the file's (under sweep.lock), an entry going
    only when its run is tried again or finished; sweep.json is written once, not again by each
    start that finds it unchanged."""
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=3)
    broken = _garbled_copy(data, tmp_path / "broken.h5")
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "name: mixed\nset: {model: betavae, latent_dim: 2, epochs: 1, batch_size: 32, "
        "score_preset: none, final_preset: none}\n"
        f"zip: {{data: ['{broken}', '{data}']}}\nreport: {{x: data}}\n"
    )
    bad, good = (p.id for p in load_sweep(spec).points)
    sweep = tmp_path / "sweep"

    first = _bench_sweep(spec, sweep, "--only", "*broken*")
    assert first.returncode == 1, first.stdout + first.stderr
    failures = json.loads((sweep / "failures.json").read_text())
    assert [f["id"] for f in failures] == [bad] and "corrupt" in failures[0]["error"]
    manifest = (sweep / "sweep.json").stat()

    second = _bench_sweep(spec, sweep, "--only", "*_d_*")
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads((sweep / "failures.json").read_text()) == failures
    assert (sweep / "sweep.json").stat().st_ino == manifest.st_ino  # not rewritten

    # a start that tries the failed run again replaces its entry; one that finds it finished
    # (here: its folder replaced by a finished run's, by hand) drops it
    third = _bench_sweep(spec, sweep)
    assert third.returncode == 1 and "1 failed" in third.stdout, third.stdout
    assert [f["id"] for f in json.loads((sweep / "failures.json").read_text())] == [bad]
    shutil.copytree(sweep / "runs" / good, sweep / "runs" / bad, dirs_exist_ok=True)
    fourth = _bench_sweep(spec, sweep, "--only", "*_d_*")
    assert fourth.returncode == 0, fourth.stdout
    assert json.loads((sweep / "failures.json").read_text()) == []
    assert _leftovers(sweep) == []


#: What a run whose worker died fails with (benchmark.sweep.executors.WORKER_DIED).
WORKER_DIED = "worker process died (out of memory or killed?)"


@pytest.mark.slow
def test_an_ensemble_whose_worker_died_leaves_no_ensemble_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ensemble's worker SIGKILLed in its third epoch: its output stayed in
    `runs/<first>.ensemble.log` until a later start happened to overwrite it (never, if the
    points were grouped otherwise), and the members' logs held only the error. Now each
    member's log holds the ensemble's output and the error, and the ensemble's log is gone; a
    start also deletes an ensemble log that a killed start left. The next start resumes both
    runs to the numbers of an uninterrupted sweep."""
    from ensemble_helpers import DIE_MARKER_ENV, dies_plugin_site, dies_spec

    from benchmark.sweep import run_sweep

    data = make_tiny_dataset(tmp_path / "k1.h5", n=64, factors=1)
    # registers `dies` as an installed plugin would, for the workers too
    monkeypatch.syspath_prepend(str(dies_plugin_site(tmp_path)))
    marker = tmp_path / "die-once"
    marker.touch()
    monkeypatch.setenv(DIE_MARKER_ENV, str(marker))
    spec = tmp_path / "dies.yaml"
    spec.write_text(dies_spec(data, [1, 4], "none"))
    sweep = tmp_path / "sweep"
    ids = [p.id for p in load_sweep(spec).points]

    first = run_sweep(load_sweep(spec), out=sweep, workers=1, ensemble=2, progress=False)
    assert not marker.exists(), "no worker was killed"
    assert sorted((o.id, o.error) for o in first.failed) == [(i, WORKER_DIED) for i in ids]
    assert not list(sweep.glob("runs/*.ensemble.log"))
    for i in ids:
        log = (sweep / "runs" / f"{i}.log").read_text()
        assert "epoch 2/4 (step 8/16), 2 models" in log and log.endswith(WORKER_DIED + "\n")

    stale = sweep / "runs" / f"{ids[1]}.ensemble.log"  # as a start killed whole leaves it
    stale.write_text("epoch 1/4 (step 4/16), 2 models: ...\n")
    second = run_sweep(load_sweep(spec), out=sweep, workers=1, ensemble="off", progress=False)
    assert sorted(o.id for o in second.finished) == ids and not second.failed
    assert _leftovers(sweep) == []
    reference = run_sweep(load_sweep(spec), out=tmp_path / "ref", workers=1, progress=False)
    assert reference.ok
    _same_runs(tmp_path / "ref", sweep)


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["off", "3"])
def test_a_run_folder_edited_by_hand_is_refused_with_what_to_do_in_a_sweep(
    tmp_path: Path, ensemble: str
) -> None:
    """Unfinished run folders (summary.json deleted) edited by hand: config.json naming another
    beta, a truncated checkpoint, config.json not JSON. Each point was refused start after start
    with bench run's advice, `--force` or another `--out`, which bench sweep does not have. Now
    the line says to delete the folder; nothing is trained with the wrong config or over the
    edited files, and once the folders are deleted the next start trains the points again to
    the numbers they had."""
    spec = _spec(tmp_path, [1, 4, 8])
    sweep = tmp_path / "sweep"
    assert _bench_sweep(spec, sweep, "--ensemble", ensemble).returncode == 0
    ids = [p.id for p in load_sweep(spec).points]
    shutil.copytree(sweep, tmp_path / "reference")
    runs = sweep / "runs"
    for i in ids:
        (runs / i / "summary.json").unlink()
    config = runs / ids[0] / "config.json"
    config.write_text(config.read_text().replace('"beta": 1.0', '"beta": 2.0'))
    last = runs / ids[1] / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    (runs / ids[2] / "config.json").write_text('{"model": ')
    edited = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file() and p.suffix != ".log"}

    res = _bench_sweep(spec, sweep, "--ensemble", ensemble)
    assert res.returncode == 1 and "0 trained, 0 already finished, 3 failed" in res.stdout
    lines = [line for line in res.stdout.splitlines() if line.startswith("  ")]
    why = [
        f"RunExists: {(runs / ids[0]).resolve()} holds a different run (differs in hparams, "
        "model_hparams): hparams.beta 2.0 recorded, 1.0 now; model_hparams.beta 2.0 recorded, "
        "1.0 now",
        f"CheckpointError: checkpoint {last.resolve()} is unreadable: it is truncated or not a "
        "torch checkpoint",
        f"UnreadableRunFolder: --out {(runs / ids[2]).resolve()} is not a readable run folder: "
        "config.json is not valid JSON",
    ]
    for run_id, line, because in zip(ids, lines, why):
        assert line.startswith(
            f"  {run_id}: {because}; to train this point again from the start, delete "
            f"{(runs / run_id).resolve()} and start the sweep again  (log: "
        ), line
    assert "--force" not in res.stdout
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file() and p.suffix != ".log"} == (
        edited
    )

    for i in ids:
        shutil.rmtree(runs / i)
    again = _bench_sweep(spec, sweep, "--ensemble", ensemble)
    assert again.returncode == 0 and "3 trained" in again.stdout, again.stdout
    _same_runs(tmp_path / "reference", sweep)
    assert _leftovers(sweep) == []


@pytest.mark.slow
def test_a_point_another_start_finished_meanwhile_is_taken_as_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two starts of one folder at once: a point the other start finished after this one had
    sorted its points failed here as `RunExists: ... holds a finished run; use --force to run it
    again`, exit 1, and left `runs/<id>.log` beside the finished run. Now it is taken as
    finished, as an ensemble takes a finished member."""
    from sweep_helpers import InProcessPool

    from benchmark.sweep import run_sweep, runner
    from benchmark.sweep.execute import run_task

    class OtherStartFirst(InProcessPool):
        """Each point is trained by "another start" (its own run_task) just before this
        start's worker takes it."""

        def run(self, tasks: list) -> Iterator:
            for task in tasks:
                assert run_task(task).ok
                yield run_task(task)

    spec = _spec(tmp_path, [1])
    monkeypatch.setattr(runner, "make_run_pool", lambda *a, **k: OtherStartFirst())
    result = run_sweep(load_sweep(spec), out=tmp_path / "sweep", progress=False)
    assert result.ok, [o.error for o in result.failed]
    assert [o.summary["status"] for o in result.finished] == ["finished"]
    assert not list((tmp_path / "sweep" / "runs").glob("*.log"))


# probe of 2026-12-01


def _refusal(folder: Path, *held: str) -> str:
    """The line refusing ``--out folder`` that holds ``held`` and no sweep.json."""
    return (
        f"bench: error: --out '{folder}' is not a folder bench sweep made: it holds no sweep.json, "
        f"and {', '.join(repr(h) for h in held)}, which a start does not write (before its "
        "sweep.json only spec.yaml, sweep.lock and runs/ for the sweep's runs); choose an empty "
        "or new folder, or this sweep's own folder"
    )


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_users_own_folder_is_refused_and_left_as_it_was(tmp_path: Path, dry_run: bool) -> None:
    """`--out` a folder of the user's own: the sweep trained into it, exit 0, their
    failures.json became `[]`, and spec.yaml, sweep.json, sweep.lock and runs/ were added beside
    their notes. A folder holding a file at a dataset's place that is not HDF5 was refused only
    after those four had been written. Now each is one line naming the folder and what it holds,
    exit 2 (`--dry-run` too), and nothing in the folder changes."""
    mode = ["--dry-run"] if dry_run else ["--quiet"]
    spec = _spec(tmp_path, [1])
    mine = tmp_path / "u3"
    mine.mkdir()
    (mine / "failures.json").write_text('{"my": "notes"}\n')
    (mine / "notes.txt").write_text("hi\n")
    before = _contents(mine)
    res = CliRunner().invoke(sweep_command, [str(spec), "--out", str(mine), *mode])
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [_refusal(mine, "failures.json", "notes.txt")]
    assert _contents(mine) == before and sorted(p.name for p in mine.iterdir()) == [
        "failures.json",
        "notes.txt",
    ]

    tiny = Path(__file__).parents[1] / "specs" / "sweep-tiny.yaml"
    theirs = tmp_path / "u2"
    (theirs / "datasets").mkdir(parents=True)
    (theirs / "datasets" / "k2.h5").write_text("mine\n")
    res = CliRunner().invoke(sweep_command, [str(tiny), "--out", str(theirs), *mode])
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [_refusal(theirs, "datasets/")]
    assert [p.relative_to(theirs).as_posix() for p in sorted(theirs.rglob("*"))] == [
        "datasets",
        "datasets/k2.h5",
    ]


@pytest.mark.slow
def test_a_folder_an_interrupted_first_start_left_is_resumed(tmp_path: Path) -> None:
    """A first start writes runs/, sweep.lock and spec.yaml (through spec.yaml.partial), then
    sweep.json (through sweep.json.partial); Ctrl-C at any of those moments leaves a folder
    without sweep.json that is still this sweep's: planned into (`--dry-run`) at each, resumed
    by the next start to the numbers of a sweep never interrupted. With a file of the user's
    beside them it is refused, and that file kept."""
    spec = _spec(tmp_path, [1])
    sweep = tmp_path / "sweep"
    text = copy_text(load_sweep(spec).spec)

    def before_spec_yaml() -> None:  # killed while spec.yaml was being written
        (sweep / "runs").mkdir(parents=True)
        (sweep / "sweep.lock").touch()
        (sweep / "spec.yaml.partial").write_text(text[: len(text) // 2])

    def before_sweep_json() -> None:  # spec.yaml in place, killed while writing sweep.json
        (sweep / "spec.yaml.partial").write_text(text)
        (sweep / "spec.yaml.partial").replace(sweep / "spec.yaml")
        (sweep / "sweep.json.partial").write_text("{")

    for step in (before_spec_yaml, before_sweep_json):  # each entry a start writes, in order
        step()
        dry = _bench_sweep(spec, sweep, "--dry-run")
        assert dry.returncode == 0 and "1 new" in dry.stdout, dry.stdout + dry.stderr
    (sweep / "notes.txt").write_text("mine\n")
    refused = _bench_sweep(spec, sweep)
    assert refused.returncode == 2 and refused.stderr.splitlines() == [_refusal(sweep, "notes.txt")]
    assert not (sweep / "sweep.json").exists()
    assert (sweep / "notes.txt").read_text() == "mine\n"
    (sweep / "notes.txt").unlink()
    again = _bench_sweep(spec, sweep)
    assert again.returncode == 0 and "1 trained" in again.stdout, again.stdout + again.stderr
    reference = _bench_sweep(spec, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    _same_runs(tmp_path / "reference", sweep)
    assert _leftovers(sweep) == []


@pytest.mark.slow
def test_a_damaged_dataset_is_refused_before_the_sweeps_records_change(tmp_path: Path) -> None:
    """A spec grown by a point on a new `datasets:` entry, into a sweep folder holding a file
    that is not HDF5 at that dataset's place: the start rewrote spec.yaml and sweep.json for the
    grown spec and only then refused the file (exit 2). Now the file is refused first, with the
    same line, and nothing in the folder changes; with the file deleted, the grown sweep builds
    its dataset and trains its new point beside the finished one."""
    spec = _spec(tmp_path, [1])
    sweep = tmp_path / "sweep"
    first = _bench_sweep(spec, sweep)
    assert first.returncode == 0, first.stderr
    spec.write_text(
        spec.read_text()
        + "datasets: {kk: {factors: 1, n: 64, eval_preset: none, image_size: 32}}\n"
        + "points: [{data: kk, beta: 2}]\n"
    )
    damaged = sweep / "datasets" / "kk.h5"
    damaged.parent.mkdir()
    damaged.write_text("not a dataset\n")
    before = _contents(sweep)
    for mode in (["--dry-run"], []):
        res = _bench_sweep(spec, sweep, *mode)
        assert res.returncode == 2, res.stdout + res.stderr
        [line] = res.stderr.splitlines()
        assert line.startswith(f"bench: error: {damaged}: not an HDF5 file"), line
        assert line.endswith("; delete it and start the sweep again to rebuild it"), line
        assert _contents(sweep) == before
    damaged.unlink()
    grown = _bench_sweep(spec, sweep)
    assert grown.returncode == 0, grown.stdout + grown.stderr
    assert "1 trained, 1 already finished" in grown.stdout
    assert len(json.loads((sweep / "sweep.json").read_text())["points"]) == 2


@pytest.mark.parametrize("dataset", ["data: {data}", "factors: 1"])
def test_a_report_over_model_without_lines_has_one_line(tmp_path: Path, dataset: str) -> None:
    """`report: {x: model}` over `grid: {model: [vae, betavae], seed: [0, 1]}`, without
    `report.lines`, was refused as `report.lines: 'model' is not allowed; ...` though the spec
    sets no lines: with nothing varied besides x and seed, the default line was named by model,
    the x axis. Now the default lines exclude x, as docs/sweeps.md says: one line, named by the
    data (or factors) every point has."""
    data = tmp_path / "d.h5"
    make_tiny_dataset(data, n=64, seed=3)
    spec = tmp_path / "over-model.yaml"
    spec.write_text(
        f"name: over-model\nset: {{{dataset.format(data=data)}, latent_dim: 2, epochs: 1}}\n"
        "grid: {model: [vae, betavae], seed: [0, 1]}\nreport: {x: model}\n"
    )
    plan = load_sweep(spec)
    [exp] = plan.spec.experiments
    name = dataset.split(":")[0]
    assert exp.report.lines == (name,)
    value = str(data) if name == "data" else 1
    assert sorted((p.x, p.line, p.seed) for p in plan.layout["over-model"]) == [
        (model, (value,), seed) for model in ("betavae", "vae") for seed in (0, 1)
    ]
    res = CliRunner().invoke(sweep_command, [str(spec), "--out", str(tmp_path / "s"), "--dry-run"])
    assert res.exit_code == 0, res.output
