"""Time to score one representation, split into reading (or rendering), encoding and arithmetic.

    PYTHONPATH=. python benchmarks/bench_metrics.py --file data/k5_full.h5 --preset full
    PYTHONPATH=. python benchmarks/bench_metrics.py --factors 5 --preset quick       # live oracle

Representations (cheap on purpose, so that the split shows the metric's own overhead):
``projection`` -- a fixed random linear map of the pixels to D=10 (numpy, float32);
``conv`` -- a small torch CNN with fixed random weights (two 4x4 stride-2 convs, ReLU, linear to
D=10), closer to the cost of a real encoder. Prints one line per metric and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from benchmark.metrics.presets import PRESET_NAMES


def projection_representation(shape: tuple[int, int, int], dim: int = 10):
    w = np.random.default_rng(0).normal(size=(int(np.prod(shape)), dim)).astype(np.float32)
    w /= np.sqrt(w.shape[0]) * 255.0

    def represent(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32) @ w

    return represent


def conv_representation(shape: tuple[int, int, int], dim: int = 10):
    import torch

    g = torch.Generator().manual_seed(0)
    h, w, c = shape
    net = torch.nn.Sequential(
        torch.nn.Conv2d(c, 16, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * (h // 4) * (w // 4), dim),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    net.eval()

    def represent(images: np.ndarray):
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
        with torch.no_grad():
            return net(x)

    return represent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="dataset file with stored evaluation sets")
    where.add_argument("--factors", type=int, help="live 2D oracle with this many factors")
    parser.add_argument("--preset", default="full", choices=PRESET_NAMES)
    parser.add_argument("--represent", default="projection", choices=["projection", "conv"])
    parser.add_argument("--encode-batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from benchmark.metrics import evaluate

    if args.file:
        import h5py

        source = args.file
        with h5py.File(args.file, "r") as f:
            shape = tuple(f["eval/variance/images"].shape[1:])
    else:
        from spritegen.oracle import Oracle
        from spritegen.spec import default_spec

        source = Oracle.from_spec(default_spec(args.factors))
        shape = tuple(source.observation_shape)
    make = projection_representation if args.represent == "projection" else conv_representation
    represent = make(shape)

    t0 = time.perf_counter()
    result = evaluate(
        source,
        represent,
        args.seed,
        args.preset,
        encode_batch_size=args.encode_batch_size,
        progress=True,
    )
    wall = time.perf_counter() - t0
    d = result["details"]
    p = d["preset"]
    images = {
        "kim_mnih": p["num_variance"] + p["batch_size"] * (p["num_train"] + p["num_eval"]),
        "higgins": 2 * p["batch_size"] * (p["num_train"] + p["num_eval"]),
    }
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    print(
        f"source: {'file ' + args.file if args.file else f'live 2D oracle, K={args.factors}'}; "
        f"representation: {args.represent}; preset {p['name']} {p}"
    )
    for name in ("kim_mnih", "higgins"):
        t = d[name]["timings"]
        total = t["read_s"] + t["encode_s"] + t["metric_s"]
        print(
            f"{name:9s} score {d[name]['score']:.4f}  images {images[name]:>9,d}  "
            f"read {t['read_s']:7.2f} s  encode {t['encode_s']:7.2f} s  "
            f"metric {t['metric_s']:6.3f} s  total {total:7.2f} s"
        )
    print(
        f"wall {wall:.1f} s for {sum(images.values()):,d} images "
        f"({sum(images.values()) / wall:,.0f} images/s)"
    )
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "details"} | {"wall_s": wall, "images": images}
        )
    )


if __name__ == "__main__":
    main()
