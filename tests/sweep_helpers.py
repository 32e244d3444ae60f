"""Tiny sweeps for the tests: real datasets, real (very short) training runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Two datasets (K = 1, 2), tiny but complete: training set and evaluation sets; 32 x 32 images,
# a quarter of the default's pixels and FLOPs.
TINY_DATASETS = """
datasets:
  k1: {factors: 1, n: 128, eval_preset: tiny, image_size: 32}
  k2: {factors: 2, n: 128, eval_preset: tiny, image_size: 32}
"""

TINY_RUN = """
set:
  model: betavae
  latent_dim: 3
  epochs: 2
  score_preset: stored
  final_preset: none
"""


def tiny_spec(name: str, seeds: list[int], extra: str = "") -> str:
    return (
        f"name: {name}\n"
        + TINY_DATASETS
        + TINY_RUN
        + "zip: {data: [k1, k2]}\n"
        + f"grid: {{beta: [1, 4], seed: {seeds}}}\n"
        + "report: {x: factors, lines: beta, metrics: [kim_mnih, higgins]}\n"
        + extra
    )


def subprocess_env(tmp: Path) -> dict[str, str]:
    """Environment for subprocesses: the worktree on the path, caches in a temp folder."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["MESA_SHADER_CACHE_DIR"] = str(tmp / "mesa-cache")
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return env


class InProcessPool:
    """The local pool's interface and work (``run_any``: train into the sweep folder), in this
    process rather than spawned workers, so that a test can patch what a run does."""

    workers, gpus = 1, 0

    def describe(self) -> str:
        return "local pool, in process"

    def run(self, tasks: list[Any]) -> Iterator[Any]:
        from benchmark.sweep.execute import run_any

        for task in tasks:
            yield from run_any(task)


def start_sweep(
    spec: Path, sweep: Path, cwd: Path, env: dict[str, str], *extra: str
) -> subprocess.Popen[str]:
    """`bench sweep SPEC --out SWEEP --quiet EXTRA...` as a process of its own session that
    Ctrl-C (SIGINT) stops, its stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "sweep", str(spec), "--out", str(sweep)]
        + ["--quiet", *extra],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a shell's background job ignores SIGINT, and Python keeps an ignored SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@contextlib.contextmanager
def local_ray(temp: Path, *paths: str) -> Iterator[Any]:
    """A local Ray instance of 2 CPUs whose workers import this worktree (and ``paths``), its
    files in ``temp/r`` (Ray's socket paths are limited: make ``temp`` in /tmp); shut down on
    leaving."""
    import ray

    ray.init(
        num_cpus=2,
        _temp_dir=str(temp / "r"),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT), *paths])}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
