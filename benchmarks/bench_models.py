"""Training cost of each bundled model's objective: our loop (benchmark.train.train), thesis
network, batch 64, D = 10, on random 64x64x1 uint8 data held in memory.

The new objectives add little to the VAE except FactorVAE, whose discriminator (6 x 1000 units)
runs three times per step (the VAE's TC term, and its own loss on 2 x 64 latents) and takes a
second optimiser step. Trials are interleaved and medians reported (the machine may be shared);
CPU ms/step (process time) is the steadier figure under load.

    PYTHONPATH=. python benchmarks/bench_models.py [--steps 20] [--trials 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.models import build_model
from benchmark.train import TrainConfig, train

MODELS = ("vae", "betavae", "annealedvae", "factorvae", "betatcvae", "dipvae1", "dipvae2")


def time_model(name: str, images: torch.Tensor, steps: int, device: str) -> tuple[float, float]:
    """(wall, CPU) seconds per step of ``steps`` training steps, after one warm-up step."""
    model = build_model(name, tuple(images.shape[1:]), 10, seed=0, check=False)
    cfg = TrainConfig(epochs=10**6, max_steps=1, device=device, progress=False)
    train(model, images, cfg)  # warm-up (allocations, first-call overheads)
    cfg = TrainConfig(epochs=10**6, max_steps=steps, device=device, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    train(model, images, cfg)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    names = args.models.split(",")
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(64 * args.steps, 1, 64, 64, generator=gen) > 0.8).to(torch.uint8) * 255
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.trials):
        for name in names:
            w, c = time_model(name, images, args.steps, args.device)
            wall[name].append(w)
            cpu[name].append(c)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"{'model':<12} {'wall ms/step':>12} {'CPU ms/step':>12} {'CPU vs vae':>10}")
    base = statistics.median(cpu[names[0]])
    for name in names:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<12} {1e3 * w:>12.1f} {1e3 * c:>12.1f} {c / base:>9.2f}x")


if __name__ == "__main__":
    main()
