"""Ensembles: G models in one loop against G single-model loops, and batched scoring.

Training: the thesis network at batch 64 on a K=5 dataset, G=8 members with different beta and
D in {5, 10}; model-steps per second of ``benchmark.ensemble.train_ensemble`` (each engine) and of
8 runs of ``benchmark.train.train`` one after the other, in the same process. Scoring: the same 8
encoders scored by ``benchmark.metrics.evaluate`` one at a time, against
``benchmark.ensemble.score_shared`` (images read once, every member encoding each chunk), on the
file's stored evaluation sets, with the per-epoch metric set (all but DCI: its gradient-boosted
trees are per-member arithmetic that no sharing can save, and took most of each member's time when
they were included) and one seed for all members, as the members of one seed in a sweep share it.
The encoder-only time is printed too: on the CPU encoding bounds the batched scorer (reading is
shared, encoding is not).

    PYTHONPATH=. python benchmarks/bench_ensemble.py [--steps 10] [--preset small|quick|full]
        [--data FILE]   # a K=5 file with evaluation sets of the preset's size (else one is built)

``small`` (default) is the first 50 train / 25 eval votes, 500 variance images and 750 random
samples of the file's quick sets: the CPU encodes about 16k images per model in it, against about
150k at quick and 2.9M at full; the speedup depends on the share of reading, not on the size.

The last line is ``speedup X.XX (G=8, <device>)`` (the default engine against single loops).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data import load_training_set, to_channels_first
from benchmark.ensemble import Member, encode_all, pick_engine, score_shared, train_ensemble
from benchmark.metrics import evaluate
from benchmark.metrics.evaluate import EPOCH_METRICS
from benchmark.metrics.presets import Preset, get_preset
from benchmark.models import build_model
from benchmark.train import TrainConfig, make_represent, train

G = 8
SMALL = Preset(
    "small",
    batch_size=64,
    num_train=50,
    num_eval=25,
    num_variance=500,
    num_samples_train=500,
    num_samples_eval=250,
)
BETAS = [1.0, 2.0, 4.0, 8.0] * 2
DIMS = [5, 10] * 4


def models() -> list[torch.nn.Module]:
    return [
        build_model("betavae", (1, 64, 64), d, {"beta": b}, seed=i, check=False)
        for i, (b, d) in enumerate(zip(BETAS, DIMS))
    ]


def dataset(preset: str) -> Path:
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    out = Path(tempfile.mkdtemp(prefix="bench-ensemble-")) / f"k5-{preset}.h5"
    spec = with_overrides(default_spec(5), {"n": 4096, "eval_preset": preset, "seed": 0})
    print(f"building {out} (K=5, 4096 images, {preset} evaluation sets) ...", flush=True)
    return build(spec, out, workers=1, progress=False)


def bench_training(
    images: torch.Tensor, steps: int, device: torch.device, trials: int
) -> dict[str, float]:
    """Median model-steps/s of each way over ``trials`` interleaved trials (the machine is
    shared: interleaving spreads load changes over all three)."""
    cfg = dict(epochs=10**6, max_steps=steps, batch_size=64, device=str(device), progress=False)
    times: dict[str, list[float]] = {
        "8 single loops": [],
        "ensemble (loop)": [],
        "ensemble (vmap)": [],
    }
    for _ in range(trials):
        t0 = time.perf_counter()
        for i, m in enumerate(models()):
            train(m, images, TrainConfig(seed=i, **cfg))
        times["8 single loops"].append(time.perf_counter() - t0)
        for engine in ("loop", "vmap"):
            members = [Member(m, i) for i, m in enumerate(models())]
            t0 = time.perf_counter()
            train_ensemble(members, images, TrainConfig(**cfg), engine=engine)
            times[f"ensemble ({engine})"].append(time.perf_counter() - t0)
    return {name: G * steps / statistics.median(t) for name, t in times.items()}


def bench_scoring(path: Path, preset: Preset, device: torch.device) -> tuple[float, float, float]:
    """Seconds per model: alone, batched, and encoding only (the batched scorer's floor)."""
    ms = models()
    t0 = time.perf_counter()
    for m in ms:
        evaluate(str(path), make_represent(m, device), 0, preset, metrics=EPOCH_METRICS)
    alone = (time.perf_counter() - t0) / G
    scorers = [
        partial(evaluate, str(path), random_state=0, preset=preset, metrics=EPOCH_METRICS)
        for _ in range(G)
    ]
    t0 = time.perf_counter()
    score_shared(scorers, ms, device)
    together = (time.perf_counter() - t0) / G
    # encode-only floor: the number of images one evaluation encodes, timed on a sample
    p = preset
    n_images = p.batch_size * 3 * (p.num_train + p.num_eval) + p.num_variance
    n_images += p.num_samples_train + p.num_samples_eval
    images, _ = load_training_set(path)
    sample = images[:2048]
    t0 = time.perf_counter()
    encode_all(ms, sample, device)
    per_image = (time.perf_counter() - t0) / (G * len(sample))
    return alone, together, per_image * n_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="optimiser steps per model")
    ap.add_argument("--preset", default="small", choices=["small", "quick", "full"])
    ap.add_argument("--data", help="K=5 spritegen file with evaluation sets of the preset's size")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--trials", type=int, default=3, help="interleaved training trials")
    ap.add_argument("--skip-scoring", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    preset = SMALL if args.preset == "small" else get_preset(args.preset)
    path = Path(args.data) if args.data else dataset("full" if args.preset == "full" else "quick")
    images = to_channels_first(load_training_set(path)[0])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")

    if not args.skip_scoring:
        alone, together, floor = bench_scoring(path, preset, device)
        print(f"scoring at {args.preset}, per model: alone {alone:.2f} s, batched {together:.2f} s")
        print(f"  encoding alone (the CPU floor of the batched scorer) {floor:.2f} s")
        print(f"  best possible here {alone / floor:.2f}x; reached {alone / together:.2f}x")
        print(f"scoring speedup {alone / together:.2f} (G={G}, {device.type})")

    rates = bench_training(images, args.steps, device, args.trials)
    for name, rate in rates.items():
        print(f"{name:18s} {rate:6.2f} model-steps/s")
    best = rates[f"ensemble ({pick_engine('auto', device)})"]
    print(f"speedup {best / rates['8 single loops']:.2f} (G={G}, {device.type})")


if __name__ == "__main__":
    main()
