"""Training speed: our loop (benchmark.train.train) against a bare PyTorch loop.

Both train the thesis network (benchmark.models.VAE) at batch 64 with Adam on the same in-memory
uint8 data; the bare loop has no checkpoints, no progress bar, no per-step bookkeeping. Trials are
interleaved and the median is reported, because the machine is shared. Also reports the metric
time per epoch when benchmark.metrics and a dataset with evaluation sets are available, and
images/s on CUDA when present.

    PYTHONPATH=. python benchmarks/bench_train.py [--steps 40] [--trials 5] [--data FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.models import build_model
from benchmark.models.base import bernoulli_reconstruction, kl_per_dim
from benchmark.train import TrainConfig, make_represent, train


def bare_loop(
    images: torch.Tensor, steps: int, device: torch.device, seed: int = 0
) -> tuple[float, float]:
    """The same network, batch and optimiser, nothing else. Returns (wall, CPU) seconds."""
    model = build_model("vae", tuple(images.shape[1:]), 10, seed=seed, check=False).to(device)
    data = images.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).to(device)
    for step in range(steps):
        idx = perm[(step * 64) % len(data) :][:64]
        x = data[idx].float() / 255
        mu, logvar = model.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=gen, device=device)
        loss = bernoulli_reconstruction(model.decode(z), x) + kl_per_dim(mu, logvar).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def our_loop(
    images: torch.Tensor, steps: int, device: torch.device, progress: bool, seed: int = 0
) -> tuple[float, float]:
    model = build_model("vae", tuple(images.shape[1:]), 10, seed=seed, check=False)
    t0, c0 = time.perf_counter(), time.process_time()
    train(
        model,
        images,
        TrainConfig(
            epochs=10**6, max_steps=steps, seed=seed, device=str(device), progress=progress
        ),
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def metric_time(data: str | None, presets: list[str], device: torch.device) -> str:
    """Seconds of one epoch's scoring (the per-epoch metric set), twice: the second evaluation
    finds the stored sets kept in memory (benchmark.metrics.setcache), as every epoch after the
    first does."""
    try:
        from benchmark.metrics import evaluate
        from benchmark.metrics.evaluate import EPOCH_METRICS
    except ImportError:
        return "n/a (benchmark.metrics not installed)"
    if data is None:
        return "n/a (pass --data FILE with evaluation sets)"
    from benchmark.data import load_training_set

    images, _ = load_training_set(data)
    model = build_model("vae", (images.shape[3], images.shape[1], images.shape[2]), 10).to(device)
    out = []
    for preset in presets:
        for attempt in ("first", "again"):
            t0 = time.perf_counter()
            result = evaluate(data, make_represent(model, device), 0, preset, metrics=EPOCH_METRICS)
            out.append(
                f"{preset} {attempt} {time.perf_counter() - t0:.1f} s "
                f"(read {result['read_s']:.2f} s, encode {result['encode_s']:.1f} s)"
            )
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--data", help="dataset file for the metric timing")
    ap.add_argument(
        "--metric-preset",
        action="append",
        default=None,
        help="metric presets to time (repeatable; default quick)",
    )
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, size=(4096, 1, 64, 64), dtype=np.uint8))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
        f"{args.steps} steps x {args.trials} trials, batch 64, 64x64x1"
    )
    bare_loop(images, 3, device), our_loop(images, 3, device, False)  # warm up
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": [], "ours+tqdm": []}
    for _ in range(args.trials):
        times["bare"].append(bare_loop(images, args.steps, device))
        times["ours"].append(our_loop(images, args.steps, device, False))
        times["ours+tqdm"].append(our_loop(images, args.steps, device, True))
    base = statistics.median(t[0] for t in times["bare"])
    base_cpu = statistics.median(t[1] for t in times["bare"])
    for name, ts in times.items():
        med = statistics.median(t[0] for t in ts)
        cpu = statistics.median(t[1] for t in ts)
        print(
            f"{name:>10}: {args.steps / med:6.2f} steps/s {64 * args.steps / med:7.1f} img/s "
            f"(wall {med / args.steps * 1000:6.1f} ms/step {100 * (med / base - 1):+5.1f}%, "
            f"min {min(t[0] for t in ts) / args.steps * 1000:.1f}; "
            f"CPU {cpu / args.steps * 1000:6.1f} ms/step {100 * (cpu / base_cpu - 1):+5.1f}% "
            f"vs bare)"
        )
    print("metric time per epoch:", metric_time(args.data, args.metric_preset or ["quick"], device))


if __name__ == "__main__":
    main()
