"""Throughput of the 2D renderer alone: raw cairo drawing, and drawing plus chunk compression.

Usage: python benchmarks/bench_render2d.py [--n 20000]
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np

from spritegen.factors import FactorSpace
from spritegen.render.cairo2d import CairoRenderer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    for k in (5, 6):
        space = FactorSpace(k)
        full = space.expand(space.sample(args.n, np.random.default_rng(0)))
        renderer = CairoRenderer(64, coloured=space.coloured)
        renderer.render(full[:100])
        t = time.perf_counter()
        images = renderer.render(full)
        draw = (time.perf_counter() - t) / args.n
        t = time.perf_counter()
        for i in range(0, args.n, 256):
            zlib.compress(images[i : i + 256].tobytes(), 1)
        compress = (time.perf_counter() - t) / args.n
        print(
            f"K={k} ({renderer.channels} ch): draw {draw * 1e6:6.1f} us/img "
            f"({1 / draw:8.0f} img/s), gzip-1 {compress * 1e6:5.1f} us/img, "
            f"draw+compress {1 / (draw + compress):8.0f} img/s per core"
        )


if __name__ == "__main__":
    main()
