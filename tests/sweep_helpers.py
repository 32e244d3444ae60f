"""Tiny sweeps for the tests: real datasets, real (very short) training runs."""

from __future__ import annotations

import os
from pathlib import Path

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
