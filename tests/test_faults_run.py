"""Faults during `bench run`: SIGKILL at random moments (while training, while a checkpoint is
being written) and a full disk. A killed run resumes to exactly the numbers of an uninterrupted
one and leaves no ``.partial`` file; a full disk is one line naming disk space, exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import make_tiny_dataset

from benchmark.cli import main

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--model",
    "betavae",
    "--beta",
    "2",
    "--epochs",
    "6",
    "--batch-size",
    "16",
    "--latent-dim",
    "3",
    "--seed",
    "4",
    "--device",
    "cpu",
    "--checkpoint-every",
    "1",
    "--score-preset",
    "none",
    "--final-preset",
    "none",
    "--quiet",
]


def start(data: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + sys.path[1:2])}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmark.cli",
            "run",
            "--data",
            str(data),
            *ARGS,
            "--out",
            str(out),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows(out: Path) -> list[dict]:
    """metrics.jsonl without wall-clock timings."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_s")} for line in lines]


def partials(out: Path) -> list[Path]:
    return sorted(out.rglob("*.partial"))


def kill_at_random(proc: subprocess.Popen, out: Path, rng: np.random.Generator, mode: str) -> str:
    """SIGKILL ``proc`` once training has started: after a random delay, or the moment a
    checkpoint is being written (its ``.partial`` file exists). Returns what was hit."""
    deadline = time.monotonic() + 240
    while not (out / "config.json").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.005)
    if mode == "delay":
        time.sleep(float(rng.uniform(0.0, 2.0)))
    else:
        partial = out / "checkpoints" / "last.pt.partial"
        target, writes, was = int(rng.integers(0, 12)), 0, False  # which write to interrupt
        while proc.poll() is None and time.monotonic() < deadline:
            now = partial.exists()
            if now and not was:  # a checkpoint write has just begun
                if writes == target:
                    break
                writes += 1
            was = now
            time.sleep(0.0002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        return "finished"
    return "checkpoint write" if partials(out) else "training"


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_to_the_same_numbers(tmp_path):
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=2)
    whole = start(data, tmp_path / "whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    out = tmp_path / "killed"
    rng = np.random.default_rng(11)
    hits = []
    for mode in ("partial", "delay", "partial", "delay"):
        hits.append(kill_at_random(start(data, out), out, rng, mode))
        if hits[-1] == "finished":
            break
    print("kills hit:", hits)
    assert "training" in hits or "checkpoint write" in hits, hits
    again = start(data, out)
    assert again.wait(timeout=300) == 0, again.stderr.read()

    assert rows(out) == rows(tmp_path / "whole"), hits
    a = torch.load(tmp_path / "whole" / "checkpoints" / "model.pt", weights_only=True)["model"]
    b = torch.load(out / "checkpoints" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert partials(out) == [] and partials(tmp_path / "whole") == []
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MiB tmpfs: a run's 5 MB checkpoint cannot fit. Needs root."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, small_disk, capsys):
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=2)
    out = small_disk / "run"
    args = ["run", "--data", str(data), *ARGS, "--out", str(out)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("bench: error: no space left on the disk holding "), err
    assert "last.pt" in err and "free some disk space" in err, err
    assert partials(small_disk) == []
    assert not (out / "summary.json").exists()


def stop_once_started(proc: subprocess.Popen, out: Path) -> None:
    """SIGSTOP ``proc`` once it has written ``out/config.json`` (it holds ``out``'s lock by
    then): the holder stays alive, and holding, for as long as the test needs."""
    deadline = time.monotonic() + 240
    while not (out / "config.json").exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGSTOP)


def bench_line(capsys, args: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of `bench ARGS` run in this process."""
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip()


def folder_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_second_run_of_one_folder_stops_at_once_and_a_killed_holder_blocks_nothing(
    tmp_path, capsys
):
    """Two `bench run` of one --out trained into the same files (with --force, one deleted the
    other's checkpoint mid-write: a FileNotFoundError traceback); the second now stops at once,
    naming the holder, and leaves the holder's folder untouched."""
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=2)
    out = tmp_path / "run"
    first = start(data, out)
    try:
        stop_once_started(first, out)
        before = folder_bytes(out)
        for extra in ([], ["--force"]):
            t0 = time.monotonic()
            code, err = bench_line(
                capsys, ["run", "--data", str(data), *ARGS, *extra, "--out", str(out)]
            )
            assert code == 2, err
            assert err.splitlines() == [
                f"bench: error: --out {str(out)!r} is being written by another bench run "
                f"(pid {first.pid}); wait for it to finish, or use another --out"
            ]
            assert time.monotonic() - t0 < 30  # at once: before loading or training anything
            assert folder_bytes(out) == before
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel released the dead holder's lock: the same command resumes and finishes
    code, err = bench_line(capsys, ["run", "--data", str(data), *ARGS, "--out", str(out)])
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
    assert not (tmp_path / "run.lock").exists()


def test_an_ensemble_holds_every_member_folder(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "d.h5", n=64, seed=2)
    a, b = tmp_path / "a", tmp_path / "b"
    config = {
        "model": "betavae",
        "data": str(data),
        "hparams": {"beta": 2.0},
        "epochs": 50,
        "batch_size": 16,
        "latent_dim": 3,
        "device": "cpu",
        "score_preset": "none",
        "final_preset": "none",
        "progress": False,
    }
    members = [{**config, "seed": 4, "out": str(a)}, {**config, "seed": 5, "out": str(b)}]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + sys.path[1:2])}
    code = f"from benchmark.ensemble import run_ensemble; run_ensemble({members!r}, engine='loop')"
    ensemble = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        stop_once_started(ensemble, b)
        before = folder_bytes(b)
        code_b, err = bench_line(capsys, ["run", "--data", str(data), *ARGS, "--out", str(b)])
        assert code_b == 2, err
        assert f"is being written by another bench run (pid {ensemble.pid})" in err
        assert len(err.splitlines()) == 1 and folder_bytes(b) == before
    finally:
        ensemble.send_signal(signal.SIGKILL)
        ensemble.wait()
