"""Measure what a sweep costs on this machine, and estimate the thesis' full Experiments 1 and 2.

    PYTHONPATH=. python benchmarks/sweep_timing.py [--skip-ray] [--gpu-speedup 40]

Prints: the wall time of specs/sweep-tiny.yaml locally (1 and 2 workers) and on a local Ray
instance (2 CPUs), datasets built beforehand;
the time per training step (1-channel and 3-channel images), measured as the difference between
two runs of different lengths so start-up costs cancel; the time of one evaluation with the
quick and the full metric presets; and from those, the estimated time of Experiments 1 and 2
(1,000,000 images per dataset, batch 64, one quick evaluation per epoch and one full one at the
end). The GPU estimate divides the training time by --gpu-speedup, an assumed ratio (no GPU is
measured here; say so when quoting it).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmark.sweep import expand, load_sweep_spec, run_sweep
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
    spec = load_sweep_spec(ROOT / "specs" / "sweep-tiny.yaml")
    out = tmp / f"tiny-{executor}-{workers}"
    if executor == "ray":
        import ray

        ray.init(num_cpus=2, _temp_dir=str(tmp / "ray"), include_dashboard=False, log_to_driver=False)
        try:
            # datasets built before timing, as in the local case below
            build_datasets(list(spec.datasets.values()), out, progress=False)
            return timed(run_sweep, spec, out=out, executor="ray", progress=False)
        finally:
            ray.shutdown()
    build_datasets(list(spec.datasets.values()), out, progress=False)
    return timed(run_sweep, spec, out=out, executor="local", workers=workers, progress=False)


def run_time(data: Path, out: Path, **params) -> float:
    shutil.rmtree(out, ignore_errors=True)
    base = {"model": "betavae", "beta": 4.0, "latent_dim": 10, "epochs": 1, "data": str(data),
            "score_preset": "none", "final_preset": "none"}
    return timed(execute_point, {**base, **params}, out)


def eval_images(preset: str) -> int:
    """Images a metric preset encodes: its evaluation sets' total size."""
    from spritegen.spec import EVAL_PRESETS, EvalSizes

    return EvalSizes(**EVAL_PRESETS[preset]).total_images


def eval_images(preset: str) -> int:
    """Images a metric preset encodes: its evaluation sets' total size."""
    from spritegen.spec import EVAL_PRESETS, EvalSizes

    return EvalSizes(**EVAL_PRESETS[preset]).total_images


def measure(tmp: Path, k: int, n: int, steps: tuple[int, int]) -> dict[str, float]:
    """Seconds per training step and per evaluation (quick measured, full scaled by images)."""
    spec = parse_sweep_spec({"name": "t", "datasets": {"d": {"factors": k, "n": n, "eval_preset": "quick"}},
                             "set": {"model": "betavae", "data": "d", "latent_dim": 10}, "report": {"x": "latent_dim"}})
    data = build_datasets(list(spec.datasets.values()), tmp / f"k{k}", progress=False)["d"]
    run_time(data, tmp / "warm", steps=2)  # warm caches (imports, file pages)
    short = run_time(data, tmp / "a", steps=steps[0])
    short_cpu = CPU_SECONDS[-1]
    long = run_time(data, tmp / "b", steps=steps[1])
    per_step = (long - short) / (steps[1] - steps[0])
    per_step_cpu = (CPU_SECONDS[-1] - short_cpu) / (steps[1] - steps[0])
    quick = run_time(data, tmp / "c", steps=steps[0], final_preset="quick") - short
    quick_cpu = CPU_SECONDS[-1] - short_cpu
    scale = eval_images("full") / eval_images("quick")  # encoding dominates: scale by images
    return {"step": per_step, "quick": quick, "full": quick * scale,
            "step_cpu": per_step_cpu, "quick_cpu": quick_cpu, "full_cpu": quick_cpu * scale}


def estimate(spec_name: str, times: dict[int, dict[str, float]], suffix: str = "") -> tuple[float, float]:
    """(training s, evaluation s) of a whole sweep run one at a time, from per-step/eval times."""
    spec = load_sweep_spec(ROOT / "specs" / f"{spec_name}.yaml")
    points, _ = expand(spec)
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
    ap.add_argument("--skip-tiny", action="store_true", help="no tiny sweeps: only the cost estimate")
    ap.add_argument("--gpu-speedup", type=float, default=40.0,
                    help="assumed ratio of CPU to GPU time per training step (not measured here)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-timing-"))
    try:
        for workers in () if args.skip_tiny else (1, 2):
            print(f"tiny sweep (4 runs), local, {workers} worker(s): {tiny_sweep(tmp, 'local', workers):.1f} s")
        if not (args.skip_ray or args.skip_tiny):
            print(f"tiny sweep (4 runs), local Ray instance, 2 CPUs: {tiny_sweep(tmp, 'ray'):.1f} s")
        times = {1: measure(tmp, 5, 4096, (10, 40)), 3: measure(tmp, 6, 4096, (10, 40))}
        cores = os.cpu_count() or 1
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {cores} cores")
        for ch, t in times.items():
            print(f"{ch}-channel images: {t['step'] * 1000:.0f} ms/step wall ({t['step_cpu'] * 1000:.0f} ms CPU), "
                  f"quick evaluation {t['quick']:.1f} s wall ({t['quick_cpu']:.1f} s CPU), full evaluation "
                  f"~{t['full']:.0f} s wall (quick scaled by images encoded)")
        quiet = {ch: {k: v / cores for k, v in t.items() if k.endswith("_cpu")} for ch, t in times.items()}
        for name in ("experiment1", "experiment2"):
            train, evals = estimate(name, times)
            qtrain, qevals = estimate(name, quiet, "_cpu")
            print(f"{name}: as measured {train / 86400:.1f} days training + {evals / 86400:.1f} days evaluation; "
                  f"unshared ({cores} cores busy: CPU time / {cores}) {qtrain / 86400:.1f} + {qevals / 86400:.1f} days; "
                  f"on one GPU, assuming {args.gpu_speedup:g}x per step, training ~{qtrain / args.gpu_speedup / 3600:.0f} h")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
