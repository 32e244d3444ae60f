"""Measure what a sweep costs on this machine, and estimate the thesis' full Experiments 1 and 2.

    PYTHONPATH=. python benchmarks/bench_sweep.py [--skip-ray] [--skip-tiny] [--gpu-step-ms 2.5]

Prints: the wall time of specs/sweep-tiny.yaml locally (1 and 2 workers) and on a local Ray
instance (2 CPUs), datasets built beforehand; what a Ray task's run sends its driver at each
checkpoint (the packed folder of a thesis-sized run: size and pack time); the time per training
step (1- and 3-channel images) and per quick evaluation as a 40-step run records them in its
metrics.jsonl, the full evaluation scaled from the quick one by the images it encodes; and from
those, the estimated time of Experiments 1 and 2 (1,000,000 images per dataset, batch 64, one
quick evaluation per epoch and one full one at the end, runs one after another). The GPU estimate
assumes --gpu-step-ms per training step and scales the evaluations by the same ratio: no GPU is
measured here, so say so when quoting it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmark.sweep import load_sweep, run_sweep
from benchmark.sweep.datasets import build_datasets
from benchmark.sweep.execute import execute_point
from benchmark.sweep.spec import parse_sweep_spec

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64
N_IMAGES = 1_000_000


CPU_SECONDS: list[float] = []  # process CPU time of each timed() call (this process only)


def timed(fn, *args, **kwargs) -> float:
    """Wall seconds of one call; its CPU seconds go to CPU_SECONDS (contention-independent)."""
    c = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    fn(*args, **kwargs)
    wall = time.perf_counter() - t
    d = resource.getrusage(resource.RUSAGE_SELF)
    CPU_SECONDS.append(d.ru_utime + d.ru_stime - c.ru_utime - c.ru_stime)
    return wall


def tiny_sweep(tmp: Path, executor: str, workers: int = 1) -> float:
    plan = load_sweep(ROOT / "specs" / "sweep-tiny.yaml")
    out = tmp / f"tiny-{executor}-{workers}"
    if executor == "ray":
        import ray

        ray.init(
            num_cpus=2, _temp_dir=str(tmp / "ray"), include_dashboard=False, log_to_driver=False
        )
        try:
            # datasets built before timing, as in the local case below
            build_datasets(list(plan.spec.datasets.values()), out, progress=False)
            return timed(run_sweep, plan, out=out, executor="ray", progress=False)
        finally:
            ray.shutdown()
    build_datasets(list(plan.spec.datasets.values()), out, progress=False)
    return timed(run_sweep, plan, out=out, executor="local", workers=workers, progress=False)


def run_time(data: Path, out: Path, **params) -> float:
    shutil.rmtree(out, ignore_errors=True)
    base = {
        "model": "betavae",
        "beta": 4.0,
        "latent_dim": 10,
        "epochs": 1,
        "data": str(data),
        "score_preset": "none",
        "final_preset": "none",
    }
    return timed(execute_point, {**base, **params}, out)


def eval_images(preset: str) -> int:
    """Images a metric preset encodes: its evaluation sets' total size."""
    from spritegen.spec import EVAL_PRESETS, EvalSizes

    return EvalSizes(**EVAL_PRESETS[preset]).total_images


def measure(tmp: Path, k: int, n: int, steps: int) -> dict[str, float]:
    """Seconds per training step and per quick evaluation, from the run's own records
    (``train_time_s``/``steps_in_epoch`` and ``score_time_s`` in metrics.jsonl); the full
    evaluation is the quick one scaled by the images it encodes. ``*_cpu``: the same scaled by
    the run's CPU time / wall time, i.e. what the work costs in CPU seconds whatever the load."""
    spec = parse_sweep_spec(
        {
            "name": "t",
            "datasets": {"d": {"factors": k, "n": n, "eval_preset": "quick"}},
            "set": {"model": "betavae", "data": "d", "latent_dim": 10},
            "report": {"x": "latent_dim"},
        }
    )
    data = build_datasets(list(spec.datasets.values()), tmp / f"k{k}", progress=False)["d"]
    run_time(data, tmp / "warm", steps=2)  # warm caches (imports, file pages)
    wall = run_time(data, tmp / "a", steps=steps, score_preset="quick")
    cpu_share = CPU_SECONDS[-1] / wall
    row = json.loads((tmp / "a" / "metrics.jsonl").read_text().splitlines()[-1])
    per_step = row["train_time_s"] / row["steps_in_epoch"]
    quick = row["score_time_s"]
    scale = eval_images("full") / eval_images("quick")  # encoding dominates: scale by images
    return {
        "step": per_step,
        "quick": quick,
        "full": quick * scale,
        "step_cpu": per_step * cpu_share,
        "quick_cpu": quick * cpu_share,
        "full_cpu": quick * scale * cpu_share,
    }


def delivery_cost(run_dir: Path, trials: int = 5) -> tuple[float, float, float]:
    """(MB, median ms packing, median ms keeping) of a run folder as a Ray task sends it to the
    driver at every checkpoint (``benchmark.sweep.execute.pack``) and as the driver's mailbox
    keeps it on disk (``benchmark.sweep.deliveries.write_kept``: one fsynced file); the send
    itself adds one object-store copy of those bytes (a network transfer across nodes)."""
    from benchmark.sweep.deliveries import write_kept
    from benchmark.sweep.execute import pack

    packing, keeping, size = [], [], 0
    keep = run_dir.parent / "keep"
    keep.mkdir(exist_ok=True)
    for _ in range(trials):
        t0 = time.perf_counter()
        packed = pack(run_dir.parent, run_dir.name)
        t1 = time.perf_counter()
        write_kept(keep, run_dir.name, {run_dir.name: (0, packed)})
        packing.append(t1 - t0)
        keeping.append(time.perf_counter() - t1)
        size = len(packed)
    return size / 1e6, _median_ms(packing), _median_ms(keeping)


def _median_ms(seconds: list[float]) -> float:
    return sorted(seconds)[len(seconds) // 2] * 1000


def estimate(
    spec_name: str, times: dict[int, dict[str, float]], suffix: str = ""
) -> tuple[float, float]:
    """(training s, evaluation s) of a whole sweep run one at a time, from per-step/eval times."""
    points = load_sweep(ROOT / "specs" / f"{spec_name}.yaml").points
    train = evals = 0.0
    for p in points:
        t = times[3 if p.factors >= 6 else 1]  # hue (K >= 6) and 3D renders have 3 channels
        epochs = p.params["epochs"]
        train += epochs * math.ceil(N_IMAGES / BATCH) * t["step" + suffix]
        evals += epochs * t["quick" + suffix] + t["full" + suffix]
    return train, evals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-ray", action="store_true", help="no tiny sweep on Ray")
    ap.add_argument(
        "--skip-tiny", action="store_true", help="no tiny sweeps: only the cost estimate"
    )
    ap.add_argument(
        "--gpu-step-ms",
        type=float,
        default=2.5,
        help="assumed GPU time per training step (not measured here)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-timing-"))
    try:
        for workers in () if args.skip_tiny else (1, 2):
            print(
                f"tiny sweep (4 runs), local, {workers} worker(s): "
                f"{tiny_sweep(tmp, 'local', workers):.1f} s"
            )
        if not (args.skip_ray or args.skip_tiny):
            print(
                f"tiny sweep (4 runs), local Ray instance, 2 CPUs: {tiny_sweep(tmp, 'ray'):.1f} s"
            )
        times = {1: measure(tmp, 5, 4096, 40)}
        mb, ms, kept_ms = delivery_cost(tmp / "a")  # the K = 5 run just measured: thesis' model
        print(
            f"Ray checkpoint delivery of a thesis run folder: {mb:.1f} MB packed in {ms:.0f} ms, "
            f"kept on the driver's disk in {kept_ms:.0f} ms"
        )
        times[3] = measure(tmp, 6, 4096, 40)
        cores = os.cpu_count() or 1
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {cores} cores")
        for ch, t in times.items():
            print(
                f"{ch}-channel images: {t['step'] * 1000:.0f} ms/step wall "
                f"({t['step_cpu'] * 1000:.0f} ms CPU), "
                f"quick evaluation {t['quick']:.1f} s wall ({t['quick_cpu']:.1f} s CPU), full "
                "evaluation "
                f"~{t['full']:.0f} s wall (quick scaled by images encoded)"
            )
        for name in ("experiment1", "experiment2"):
            train, evals = estimate(name, times)
            steps, _ = estimate(
                name, {ch: {"step": 1.0, "quick": 0.0, "full": 0.0} for ch in times}
            )
            ratio = times[1]["step"] / (args.gpu_step_ms / 1000)
            gpu = steps * args.gpu_step_ms / 1000 + evals / ratio
            print(
                f"{name}: {steps / 1e6:.2f} M steps; at the measured rates {train / 86400:.0f} "
                "days training + "
                f"{evals / 86400:.1f} days evaluation, one run at a time; on one GPU at an assumed "
                f"{args.gpu_step_ms:g} ms/step (ratio {ratio:.0f}x, evaluation scaled alike) "
                f"~{gpu / 3600:.0f} h"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
