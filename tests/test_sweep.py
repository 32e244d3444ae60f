"""`bench sweep` end to end on real tiny datasets and real (very short) training runs.

One tiny sweep (two datasets, two beta, one seed) runs locally, is killed after its first run
and resumed; the same sweep runs on a local Ray instance; a failing point is summarised without
stopping the other runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner
from ensemble_helpers import DIE_MARKER_ENV, dies_plugin_site, dies_spec
from sweep_helpers import local_ray, start_sweep, subprocess_env, tiny_spec
from train_fixtures import make_tiny_dataset

from benchmark.report import write_report
from benchmark.sweep import load_sweep, run_sweep
from benchmark.sweep.cli import sweep_command
from benchmark.sweep.execute import run_state
from spritegen.errors import SpecError
from spritegen.executors import check_reachable


def _finished(sweep: Path) -> list[Path]:
    runs = sweep / "runs"
    if not runs.is_dir():
        return []
    return sorted(
        p
        for p in runs.iterdir()
        if p.is_dir()
        and (p / "summary.json").is_file()
        and json.loads((p / "summary.json").read_text())["status"] == "finished"
    )


def _expected_figures(report: Path, experiment: str) -> list[Path]:
    files = [
        report / "report.md",
        report / "report.csv",
        report / f"{experiment}_traversals.png",
        report / f"{experiment}_traversals.svg",
    ]
    for metric in ("kim_mnih", "higgins"):
        for score in ("final", "best"):
            for kind in ("lines", "spread"):
                files += [
                    report / f"{experiment}_{metric}_{score}_{kind}.{ext}" for ext in ("png", "svg")
                ]
    return files


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The tiny sweep, killed after its first finished run, then started again."""
    tmp = tmp_path_factory.mktemp("local")
    spec = tmp / "tiny.yaml"
    spec.write_text(tiny_spec("tiny", [0]))
    sweep = tmp / "sweep"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmark.cli",
            "sweep",
            str(spec),
            "--out",
            str(sweep),
            "--workers",
            "1",
            "--ensemble",
            "off",  # one run at a time, so that exactly one is finished at the kill
        ],
        cwd=tmp,
        env=subprocess_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while not _finished(sweep) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(
                proc.pid, signal.SIGKILL
            )  # the sweep and its worker: a crash, not a clean stop
        stderr = proc.communicate()[1]
    first = _finished(sweep)
    assert len(first) == 1, (
        f"expected exactly one finished run before the kill; stderr: {stderr[-2000:]}"
    )
    before = {"id": first[0].name, "mtime": (first[0] / "summary.json").stat().st_mtime_ns}
    result = run_sweep(load_sweep(spec), out=sweep, workers=1, progress=False)
    return sweep, {"before": before, "result": result}


@pytest.mark.slow
def test_killed_sweep_resumes_and_runs_only_the_rest(local_sweep: tuple[Path, dict]) -> None:
    sweep, info = local_sweep
    result = info["result"]
    assert result.ok, [o.error for o in result.failed]
    assert result.total == 4
    assert result.skipped == [info["before"]["id"]]
    assert sorted(o.id for o in result.finished) == sorted(
        p["id"]
        for p in json.loads((sweep / "sweep.json").read_text())["points"]
        if p["id"] != info["before"]["id"]
    )
    # the run finished before the kill was not touched
    assert (sweep / "runs" / info["before"]["id"] / "summary.json").stat().st_mtime_ns == info[
        "before"
    ]["mtime"]
    assert len(_finished(sweep)) == 4
    assert sorted(p.name for p in (sweep / "runs").iterdir() if p.is_dir()) == [
        p.name for p in _finished(sweep)
    ]
    # both datasets were built once into the sweep folder and every run trained on its own
    for run in _finished(sweep):
        config = json.loads((run / "config.json").read_text())
        assert Path(config["data"]).parent == (sweep / "datasets").resolve()
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    # a third start has nothing left to do
    again = run_sweep(load_sweep(sweep / "spec.yaml"), out=sweep, workers=1, progress=False)
    assert len(again.skipped) == 4 and not again.finished and not again.failed


@pytest.mark.slow
def test_local_sweep_report_has_every_figure_and_table(local_sweep: tuple[Path, dict]) -> None:
    sweep, _ = local_sweep
    written = write_report(sweep)
    for path in _expected_figures(sweep / "report", "tiny"):
        assert path in written and path.stat().st_size > 0, path


@pytest.mark.slow
def test_failed_run_is_summarised_and_others_still_run(
    local_sweep: tuple[Path, dict], tmp_path: Path
) -> None:
    """A data file that passes planning (a dataset of the right kind) but fails when its training
    images are read: that run fails, the other trains, and the sweep says which."""
    sweep, _ = local_sweep
    good = sorted((sweep / "datasets").glob("*.h5"))[0]
    broken = tmp_path / "broken.h5"
    shutil.copy(good, broken)
    with h5py.File(broken, "r+") as f:  # a corrupt compressed training chunk
        dset = f["images"]
        mask, stored = dset.id.read_direct_chunk((0, 0, 0, 0))
        middle = len(stored) // 2
        garbled = stored[:middle] + b"\xff" * 16 + stored[middle + 16 :]
        dset.id.write_direct_chunk((0, 0, 0, 0), garbled, filter_mask=mask)
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "name: mixed\nset: "
        "{model: betavae, latent_dim: 3, epochs: 1, score_preset: none, final_preset: none}\n"
        f"zip: {{data: ['{broken}', '{good}']}}\nreport: {{x: data}}\n"
    )
    out = tmp_path / "sweep"
    res = CliRunner().invoke(
        sweep_command, [str(spec), "--out", str(out), "--workers", "1", "--quiet"]
    )
    assert res.exit_code == 1, res.output
    assert "1 trained, 0 already finished, 1 failed" in res.output
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 1 and "broken" in failures[0]["id"]
    assert failures[0]["id"] in res.output and failures[0]["error"] in res.output
    assert (out / "runs" / f"{failures[0]['id']}.log").is_file()
    assert len(_finished(out)) == 1


#: What a run whose worker died fails with (benchmark.sweep.executors.WORKER_DIED).
WORKER_DIED = "worker process died (out of memory or killed?)"


@pytest.mark.slow
def test_a_local_worker_killed_mid_run_fails_that_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker of the local pool SIGKILLed while it trains broke Python's process pool, which
    failed every run in flight or queued (and ended the other workers): one OOM kill failed the
    whole start. Now that run alone fails, saying why in its log; the one the pool ended resumes
    and the queued one starts in a fresh pool, and the next start resumes the killed run."""
    data = make_tiny_dataset(tmp_path / "k1.h5", n=64, factors=1)
    # registers `dies` as an installed plugin would, for the workers too
    monkeypatch.syspath_prepend(str(dies_plugin_site(tmp_path)))
    marker = tmp_path / "die-once"
    marker.touch()
    monkeypatch.setenv(DIE_MARKER_ENV, str(marker))
    spec = tmp_path / "dies.yaml"
    spec.write_text(dies_spec(data, [1, 4, 8], "none"))
    out = tmp_path / "sweep"

    first = run_sweep(load_sweep(spec), out=out, workers=2, ensemble="off", progress=False)
    assert not marker.exists(), "no worker was killed"
    assert [o.error for o in first.failed] == [WORKER_DIED]
    killed = first.failed[0].id
    assert len(first.finished) == 2 and killed not in {o.id for o in first.finished}
    assert (out / "runs" / f"{killed}.log").read_text().endswith(WORKER_DIED + "\n")
    assert run_state(out / "runs" / killed).text == "resumes at epoch 3 of 4"

    second = run_sweep(load_sweep(spec), out=out, workers=1, progress=False)
    assert [o.id for o in second.finished] == [killed] and not second.failed
    assert len(_finished(out)) == 3


@pytest.mark.ray
def test_tiny_sweep_on_a_local_ray_instance(local_sweep: tuple[Path, dict]) -> None:
    pytest.importorskip("ray")
    local, _ = local_sweep
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are limited
    out = temp / "sweep"
    spec_text = tiny_spec("tiny", [0])
    with local_ray(temp):
        result = run_sweep(load_sweep(spec_text), out=out, executor="ray", progress=False)
    assert result.ok, [o.error for o in result.failed]
    assert len(result.finished) == 4
    # the datasets' shards were rendered by Ray tasks, into the same bytes as the local build
    for f in sorted((local / "datasets").glob("*.h5")):
        assert (out / "datasets" / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(p.name for p in _finished(out)) == sorted(p.name for p in _finished(local))
    for run in _finished(out):
        assert {"config.json", "metrics.jsonl", "summary.json", "traversal.png"} <= {
            p.name for p in run.iterdir()
        }
        config = json.loads((run / "config.json").read_text())
        assert config["out"] == str(run.resolve())
        assert len(config["ensemble"]["members"]) == 2  # one Ray task per dataset's ensemble
    written = write_report(out)
    for path in _expected_figures(out / "report", "tiny"):
        assert path in written, path
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
def test_ray_tasks_get_the_drivers_benchmark_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node's workers do not inherit the driver's environment, so the benchmark's settings are
    sent with every task: set after Ray started, a task still sees the driver's value."""
    ray = pytest.importorskip("ray")
    from benchmark.metrics.setcache import BUDGET_ENV
    from benchmark.sweep.executors import RayRunPool

    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        ray.init(num_cpus=1, _temp_dir=str(temp / "r"), include_dashboard=False)
        monkeypatch.setenv(BUDGET_ENV, "123")
        pool = RayRunPool(cpus_per_run=1)
        seen = [value for _, value in pool.executor.map_completed(os.getenv, [BUDGET_ENV])]
        monkeypatch.delenv(BUDGET_ENV)
        unset = [
            v for _, v in RayRunPool(cpus_per_run=1).executor.map_completed(os.getenv, [BUDGET_ENV])
        ]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    assert seen == ["123"]
    assert unset == [None]


@pytest.mark.ray
def test_tasks_not_collected_are_cancelled_when_a_map_ends_early() -> None:
    """Ctrl-C (or any early end) of a Ray sweep stops the tasks it had sent: the CPU an
    hour-long task held is free for the next task long before the hour is up. (The wait allows
    ten minutes: with a two-minute wait and a ten-minute task this failed once, when a study
    shared the two cores with CI and Ray took over two minutes to start the next worker.)"""
    ray = pytest.importorskip("ray")
    from spritegen.executors import RayExecutor, _apply

    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        ray.init(num_cpus=2, _temp_dir=str(temp / "r"), include_dashboard=False)
        results = RayExecutor(num_cpus=1).map_completed(time.sleep, [0, 3600])
        assert next(results) == (0, None)
        results.close()  # as a KeyboardInterrupt raised while waiting would end it
        both_cpus = ray.remote(num_cpus=2)(_apply).remote(os.getenv, "HOME")
        ready, _ = ray.wait([both_cpus], timeout=600)  # far less than the 3,600 s sleep
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    assert ready == [both_cpus]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ray
def test_an_address_no_cluster_answers_at_fails_at_once(tmp_path: Path) -> None:
    """ray.init retries an unreachable address for many minutes: both commands refuse it in one
    line first, and write nothing."""
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_spec("unreachable", [0]))
    commands = {
        "spritegen": ["-m", "spritegen", "build", "--factors", "1", "--n", "10"]
        + ["--eval-preset", "none", "--executor", "ray", "--address", address],
        "bench": ["-c", "from benchmark.cli import main; main()", "sweep", str(spec)]
        + ["--executor", "ray"]
        + ["--address", address, "--quiet"],
    }
    for prog, args in commands.items():
        work = tmp_path / prog
        work.mkdir()
        done = subprocess.run(
            [sys.executable, *args, "--out", str(work / "out")],
            capture_output=True,
            text=True,
            env=subprocess_env(tmp_path),
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"{prog}: error: --address '{address}': no Ray cluster answers there "
            "(Connection refused); start one with 'ray start --head' on that machine, or check "
            "the address and port"
        ]
        assert list(work.iterdir()) == []
    with pytest.raises(SpecError, match="expected 'auto', HOST:PORT"):
        check_reachable("127.0.0.1:99999")


@pytest.mark.ray
def test_address_auto_without_a_cluster_fails_at_once(tmp_path: Path) -> None:
    """``--address auto`` (the README's example) with no cluster to find: one line, exit 1,
    nothing written. ray.init raised a ConnectionError traceback, after ``bench sweep`` had
    written its folder."""
    pytest.importorskip("ray")
    from ray._private.services import get_ray_address_from_environment

    env = subprocess_env(tmp_path)
    try:  # Ray's own lookup, as the commands make it (RAY_ADDRESS included)
        found = get_ray_address_from_environment("auto", None)
    except ConnectionError:
        found = None
    if found is not None:
        pytest.skip(f"a Ray cluster runs on this machine ({found}): 'auto' would find it")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_spec("auto", [0]))
    commands = {
        "spritegen": ["-m", "spritegen", "build", "--factors", "1", "--n", "10"]
        + ["--eval-preset", "none", "--executor", "ray", "--address", "auto"],
        "bench": ["-c", "from benchmark.cli import main; main()", "sweep", str(spec)]
        + ["--executor", "ray", "--address", "auto", "--quiet"],
    }
    for prog, args in commands.items():
        work = tmp_path / prog
        work.mkdir()
        done = subprocess.run(
            [sys.executable, *args, "--out", str(work / "out")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"{prog}: error: --address 'auto': Ray finds no running cluster on this machine "
            "(RAY_ADDRESS is not set and no cluster was started here); start one with "
            "'ray start --head', or give the head node's HOST:PORT"
        ]
        assert list(work.iterdir()) == []


@pytest.mark.slow
def test_a_sweep_runs_in_parts_with_only(tmp_path: Path) -> None:
    """--only trains the matching points and leaves the rest; a second part finishes them; a
    pattern that matches no run id is refused before anything is written."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_spec("parts", [0]))
    out = tmp_path / "sweep"
    args = [str(spec), "--out", str(out), "--workers", "1", "--quiet"]
    bad = CliRunner().invoke(sweep_command, [*args, "--only", "*_k9_*"])
    assert bad.exit_code == 2 and "--only '*_k9_*' matches none of the sweep's 4 run ids" in (
        bad.output
    )
    assert not out.exists()
    first = CliRunner().invoke(sweep_command, [*args, "--only", "*_k1_*"])
    assert first.exit_code == 0, first.output
    assert "2 trained, 0 already finished, 0 failed, 2 left for other parts" in first.output
    assert {p.name.split("_")[1] for p in _finished(out)} == {"k1"}
    second = CliRunner().invoke(sweep_command, [*args, "--only", "*_k2_*", "--only", "*_k1_*"])
    assert second.exit_code == 0, second.output
    assert "2 trained, 2 already finished, 0 failed (" in second.output
    assert len(_finished(out)) == 4


# --- the sweep folder's copy of its spec --------------------------------------------------------

#: A sweep naming a dataset spec file and a data file relative to itself; two tiny runs.
RELATIVE_K1 = "factors: 1\nn: 64\nimage_size: 32\nevaluation: {preset: tiny}\n"
RELATIVE_SPEC = """
name: relative
datasets:
  k1: {spec: k1.yaml}
set: {model: betavae, latent_dim: 3, epochs: 1, batch_size: 16, score_preset: stored,
      final_preset: none}
zip: {data: [k1, mine.h5]}
report: {x: data}
"""


@pytest.fixture(scope="module")
def relative_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the spec, its finished sweep folder, made with --out far from the spec)."""
    tmp = tmp_path_factory.mktemp("relative")
    specs = tmp / "specs"
    specs.mkdir()
    (specs / "k1.yaml").write_text(RELATIVE_K1)
    make_tiny_dataset(specs / "mine.h5", n=64, seed=1, factors=1, eval_preset="tiny", image_size=32)
    spec = specs / "relative.yaml"
    spec.write_text(RELATIVE_SPEC)
    sweep = tmp / "elsewhere" / "sweep"
    res = CliRunner().invoke(
        sweep_command, [str(spec), "--out", str(sweep), "--workers", "1", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert len(_finished(sweep)) == 2
    return spec, sweep


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_the_sweep_folders_copy_of_its_spec_resumes_the_sweep(
    relative_sweep: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bench sweep <sweep>/spec.yaml`, from any folder and without --out, plans the same runs
    as the original (its relative paths resolved from the original's folder, not from files of
    the same names in the sweep folder) and resumes its own folder, leaving its copy as it was."""
    spec, sweep = relative_sweep
    copy = sweep / "spec.yaml"
    text = copy.read_text()
    assert text.startswith(
        f'# The sweep spec as read from "{spec}"; bench sweep resolves its relative paths from '
        f'"{spec.parent}".\n'
    )
    assert text.endswith(RELATIVE_SPEC)
    ids = sorted(p.name for p in _finished(sweep))
    (sweep / "k1.yaml").write_text(RELATIVE_K1.replace("n: 64", "n: 96"))  # not the spec's
    shutil.copy(spec.parent / "mine.h5", sweep / "mine.h5")
    for cwd, given in ((tmp_path, copy), (sweep, Path("spec.yaml"))):
        monkeypatch.chdir(cwd)
        dry = CliRunner().invoke(sweep_command, [str(given), "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert sorted(x.split()[0] for x in dry.output.splitlines() if " model=" in x) == ids
        res = CliRunner().invoke(sweep_command, [str(given), "--quiet"])
        assert res.exit_code == 0, res.output
        assert "2 runs: 0 trained, 2 already finished, 0 failed" in res.output
        assert not (cwd / "results").exists()  # not a new sweep in results/<name> here
        assert copy.read_text() == text
        assert json.loads((sweep / "sweep.json").read_text())["spec_source"] == str(spec)


@pytest.mark.slow
def test_an_edited_copy_of_the_spec_cannot_take_over_its_folder(
    relative_sweep: tuple[Path, Path], tmp_path: Path
) -> None:
    """Run in place, the copy is held to the rule every spec is: an edit that renames the sweep
    or drops a point is refused in one line, and nothing in the folder changes."""
    _, made = relative_sweep
    sweep = tmp_path / "sweep"
    shutil.copytree(made, sweep)
    copy = sweep / "spec.yaml"
    text = copy.read_text()
    for edited, fragment in (
        (text.replace("name: relative", "name: other"), "holds sweep 'relative', not 'other'"),
        (
            text.replace("data: [k1, mine.h5]", "data: [k1]"),
            "holds 1 run of sweep 'relative' that this spec no longer has",
        ),
    ):
        copy.write_text(edited)
        before = _listing(sweep)
        res = CliRunner().invoke(sweep_command, [str(copy), "--quiet"])
        assert res.exit_code == 2 and fragment in res.output, res.output
        assert _listing(sweep) == before


@pytest.mark.slow
def test_a_spec_yaml_linked_to_the_users_spec_is_replaced_not_written_through(
    relative_sweep: tuple[Path, Path], tmp_path: Path
) -> None:
    """A sweep folder whose spec.yaml is a symlink to the user's spec: starting the sweep
    replaces the link with the copy and leaves the user's file as they wrote it."""
    spec, made = relative_sweep
    sweep = tmp_path / "sweep"
    shutil.copytree(made, sweep)
    mine = spec.parent / "linked.yaml"  # next to the original: the same relative paths
    mine.write_text(RELATIVE_SPEC)
    (sweep / "spec.yaml").unlink()
    (sweep / "spec.yaml").symlink_to(mine)
    res = CliRunner().invoke(sweep_command, [str(mine), "--out", str(sweep), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 already finished" in res.output
    assert mine.read_text() == RELATIVE_SPEC
    assert not (sweep / "spec.yaml").is_symlink()
    assert (sweep / "spec.yaml").read_text().endswith(RELATIVE_SPEC)


# --- Ctrl-C ------------------------------------------------------------------------------------

#: A sweep long enough to be interrupted mid-run: 2 runs of 15 epochs x 8 steps on 128 images.
#: SIGINT follows the first checkpoint (step 3) within milliseconds; the 117 steps left take
#: seconds even on a fast machine, so a run cannot finish in between.
LONG_EPOCHS, STEPS_PER_EPOCH = 15, 8
LONG_SPEC = f"""
name: long
datasets:
  k1: {{factors: 1, n: 128, eval_preset: tiny, image_size: 32}}
set:
  model: betavae
  data: k1
  latent_dim: 3
  epochs: {LONG_EPOCHS}
  batch_size: 16
  checkpoint_every: 3
  score_preset: none
  final_preset: none
grid: {{beta: [1, 4]}}
report: {{x: beta}}
"""


def _steps(sweep: Path) -> dict[str, int]:
    """The optimiser step each run's last checkpoint holds, by run id."""
    import torch

    return {
        p.parent.parent.name: int(torch.load(p, weights_only=True)["step"])
        for p in sorted((sweep / "runs").glob("*/checkpoints/last.pt"))
    }


def _numbers(run: Path) -> list[dict]:
    """metrics.jsonl without wall-clock timings."""
    return [
        {k: v for k, v in json.loads(line).items() if not k.endswith("_s")}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def _interrupted_sweep(tmp: Path, extra: list[str], whole_group: bool) -> tuple[Path, str]:
    """Start `bench sweep` of LONG_SPEC, send SIGINT once its first checkpoint is written (to the
    bench process, or to its whole process group as a terminal's Ctrl-C does); return the sweep
    folder and stderr after the process ended (exit status checked by the caller)."""
    spec = tmp / "long.yaml"
    spec.write_text(LONG_SPEC)
    sweep = tmp / "sweep"
    proc = start_sweep(spec, sweep, tmp, subprocess_env(tmp), "--workers", "1", *extra)
    try:
        deadline = time.monotonic() + 600
        while not list(sweep.glob("runs/*/checkpoints/last.pt")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep never wrote a checkpoint"
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=600)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        "bench: interrupted; run the same command again to resume"
    ], stderr
    return sweep, str(spec)


@pytest.mark.slow
def test_ctrl_c_stops_every_run_and_the_sweep_resumes_to_the_same_numbers(
    tmp_path: Path,
) -> None:
    """SIGINT to the bench process alone (as `kill -INT PID`): the ensemble's runs stop at a
    checkpoint short of the end, none is marked finished, and starting again finishes them with
    the numbers and weights of an uninterrupted sweep."""
    import torch

    sweep, spec = _interrupted_sweep(tmp_path, [], whole_group=False)
    total = LONG_EPOCHS * STEPS_PER_EPOCH
    steps = _steps(sweep)
    assert len(steps) == 2 and all(s < total for s in steps.values()), steps
    assert _finished(sweep) == []
    assert not list(sweep.glob("runs/*/summary.json"))

    again = run_sweep(load_sweep(spec), out=sweep, workers=1, progress=False)
    assert again.ok and len(again.finished) == 2, [o.error for o in again.failed]
    whole = tmp_path / "whole"
    reference = run_sweep(load_sweep(spec), out=whole, workers=1, progress=False)
    assert reference.ok and len(reference.finished) == 2
    for run in _finished(whole):
        resumed = sweep / "runs" / run.name
        assert _numbers(resumed) == _numbers(run), run.name
        a = torch.load(run / "checkpoints" / "model.pt", weights_only=True)["model"]
        b = torch.load(resumed / "checkpoints" / "model.pt", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), run.name
    assert not list(sweep.rglob("*.partial"))


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_starts_no_new_run(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the bench process and its worker: with one run at a time the
    run in flight stops short of its end and the second run never starts."""
    sweep, _ = _interrupted_sweep(tmp_path, ["--ensemble", "off"], whole_group=True)
    steps = _steps(sweep)
    assert len(steps) == 1 and all(s < LONG_EPOCHS * STEPS_PER_EPOCH for s in steps.values())
    assert [p.name for p in (sweep / "runs").iterdir() if p.is_dir()] == list(steps)
    assert _finished(sweep) == []
