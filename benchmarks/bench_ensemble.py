"""Ensembles: G models in one loop against G single-model loops, and batched scoring.

Training: the thesis network at batch 64 on a K=5 dataset, G=8 members with different beta and
D in {5, 10}; model-steps per second of ``benchmark.ensemble.train_ensemble`` (each engine) and of
8 runs of ``benchmark.train.train`` one after the other, in the same process. Scoring: the same 8
encoders scored by ``benchmark.metrics.evaluate`` one at a time, against
``benchmark.ensemble.score_shared`` (images read once, every member encoding each chunk), on the
file's stored evaluation sets, with the per-epoch metric set (all but DCI: its gradient-boosted
trees are per-member arithmetic that no sharing can save, and took most of each member's time when
they were included) and one seed for all members, as the members of one seed in a sweep share it.
Scoring alone is also timed with round 1's convolutions over whole 512-image chunks, to show what
the thesis encoder's sliced convolutions (``ThesisEncoder.convolve``) gained for every scoring
path. On the CPU the script then measures how far the encoder runs from the FLOP bound (its
achieved GFLOP/s against a large matrix product's) and prints the speedup the batched scorer
could reach if every member's encoding ran at that bound.

    PYTHONPATH=. python benchmarks/bench_ensemble.py [--steps 40] [--preset small|quick|full]
        [--data FILE]   # a K=5 file with evaluation sets of the preset's size (else one is built)

``small`` (default) is the first 50 train / 25 eval votes, 500 variance images and 750 random
samples of the file's quick sets: the CPU encodes about 16k images per model in it, against about
150k at quick and 2.9M at full; the speedup depends on the share of reading, not on the size.

The last line is ``speedup X.XX (G=8, <device>)`` (the default engine against single loops).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data import load_training_set, to_channels_first
from benchmark.encode import make_represent
from benchmark.ensemble import Member, pick_engine, score_shared, train_ensemble
from benchmark.metrics import evaluate
from benchmark.metrics.evaluate import EPOCH_METRICS
from benchmark.metrics.presets import Preset, get_preset
from benchmark.models import build_model, thesis
from benchmark.train import TrainConfig, train

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


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def models(device: torch.device) -> list[torch.nn.Module]:
    return [
        build_model("betavae", (1, 64, 64), d, {"beta": b}, seed=i, check=False).to(device)
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
        singles = models(device)
        synchronize(device)
        t0 = time.perf_counter()
        for i, m in enumerate(singles):
            train(m, images, TrainConfig(seed=i, **cfg))
        synchronize(device)
        times["8 single loops"].append(time.perf_counter() - t0)
        for engine in ("loop", "vmap"):
            members = [Member(m, i) for i, m in enumerate(models(device))]
            synchronize(device)
            t0 = time.perf_counter()
            train_ensemble(members, images, TrainConfig(**cfg), engine=engine)
            synchronize(device)
            times[f"ensemble ({engine})"].append(time.perf_counter() - t0)
    return {name: G * steps / statistics.median(t) for name, t in times.items()}


def encoder_macs(model: torch.nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one image through the encoder's convolutions and linear layers."""
    macs = 0

    def count(module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs += out[0].numel() * module.in_channels // module.groups * k
        elif isinstance(module, torch.nn.Linear):
            macs += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.encoder.modules()]
    with torch.inference_mode():
        model.encode(torch.zeros(1, *image_shape))
    for h in hooks:
        h.remove()
    return macs


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """This CPU's float32 peak as the BLAS reaches it: a large square matrix product."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


@contextlib.contextmanager
def whole_chunk_convolutions() -> Iterator[None]:
    """Round 1's encoder: the convolutions over the whole 512-image chunk, not in slices."""
    saved = thesis.INFERENCE_SLICE_PIXELS
    thesis.INFERENCE_SLICE_PIXELS = 10**12
    try:
        yield
    finally:
        thesis.INFERENCE_SLICE_PIXELS = saved


def score_alone(
    path: Path, preset: Preset, device: torch.device, ms: list
) -> tuple[float, float, int]:
    """Seconds per model scoring each alone, seconds of it inside the encoder, images encoded."""
    encode_s, images = 0.0, 0
    t0 = time.perf_counter()
    for m in ms:
        represent = make_represent(m, device)

        def counted(x, represent=represent):
            nonlocal images
            images += len(x)
            return represent(x)

        encode_s += evaluate(str(path), counted, 0, preset, metrics=EPOCH_METRICS)["encode_s"]
    return (time.perf_counter() - t0) / G, encode_s / G, images // G


def bench_scoring(path: Path, preset: Preset, device: torch.device, trials: int) -> None:
    """Print seconds per model alone (round 1's convolutions and today's) and batched, medians of
    interleaved trials, and how far the encoder is from this CPU's FLOP bound."""
    ms = models(device)
    evaluate(str(path), make_represent(ms[0], device), 0, SMALL, metrics=EPOCH_METRICS)  # warm
    scorers = [
        partial(evaluate, str(path), random_state=0, preset=preset, metrics=EPOCH_METRICS)
        for _ in range(G)
    ]
    times: dict[str, list[float]] = {"old": [], "alone": [], "batched": [], "encode": []}
    peaks: list[float] = []
    for _ in range(trials):
        if device.type == "cpu":  # the encoder slices its convolutions on the CPU only
            with whole_chunk_convolutions():
                times["old"].append(score_alone(path, preset, device, ms)[0])
        alone, encode_s, n_images = score_alone(path, preset, device, ms)
        times["alone"].append(alone)
        times["encode"].append(encode_s)
        t0 = time.perf_counter()
        score_shared(scorers, ms, device)
        times["batched"].append((time.perf_counter() - t0) / G)
        if device.type == "cpu":
            peaks.append(matmul_gflops())
    alone, together, encode_s = (
        statistics.median(times[k]) for k in ("alone", "batched", "encode")
    )
    print(f"scoring at {preset.name}, {n_images} images per model, seconds per model")
    print(f"(medians of {trials} interleaved trials):")
    if times["old"]:
        old = statistics.median(times["old"])
        print(f"  alone, round 1's encoder       {old:6.2f}")
        print(f"  alone                          {alone:6.2f}   ({old / alone:.2f}x round 1)")
        print(f"  batched                        {together:6.2f}   ({old / together:.2f}x round 1)")
    else:
        print(f"  alone {alone:.2f} (encoding {encode_s:.2f}), batched {together:.2f}")
    if peaks:
        peak = statistics.median(peaks)
        achieved = 2 * encoder_macs(ms[0], (1, 64, 64)) * n_images / encode_s / 1e9
        # the batched scorer's best case: every member's encoding at the matmul peak
        best = alone / (together - encode_s * (1 - achieved / peak))
        print(
            f"  encoding: {encode_s:.2f} s of each alone call, {achieved:.0f} GFLOP/s = "
            f"{achieved / peak:.0%} of this CPU's matmul peak ({peak:.0f} GFLOP/s); "
            f"with every encoder at the peak, batched could reach {best:.2f}x"
        )
    print(f"scoring speedup {alone / together:.2f} (G={G}, {device.type})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="optimiser steps per model")
    ap.add_argument("--preset", default="small", choices=["small", "quick", "full"])
    ap.add_argument("--data", help="K=5 spritegen file with evaluation sets of the preset's size")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--trials", type=int, default=3, help="interleaved trials, each way")
    ap.add_argument("--skip-scoring", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    preset = SMALL if args.preset == "small" else get_preset(args.preset)
    path = Path(args.data) if args.data else dataset("full" if args.preset == "full" else "quick")
    images = to_channels_first(load_training_set(path)[0])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")

    if not args.skip_scoring:
        bench_scoring(path, preset, device, args.trials)

    rates = bench_training(images, args.steps, device, args.trials)
    for name, rate in rates.items():
        print(f"{name:18s} {rate:6.2f} model-steps/s")
    best = rates[f"ensemble ({pick_engine('auto', device)})"]
    print(f"speedup {best / rates['8 single loops']:.2f} (G={G}, {device.type})")


if __name__ == "__main__":
    main()
