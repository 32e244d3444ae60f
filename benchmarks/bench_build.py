"""End-to-end build throughput: plan, render in workers, save chunks, assemble the HDF5 file.

Usage: python benchmarks/bench_build.py [--factors 5] [--n 1000000] [--workers 1 2]
                                        [--eval-preset none]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from spritegen.build import build
from spritegen.spec import default_spec, with_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factors", type=int, default=5)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--eval-preset", default="none")
    parser.add_argument("--renderer", default=None)
    args = parser.parse_args()
    spec = with_overrides(
        default_spec(args.factors, args.renderer), {"n": args.n, "eval_preset": args.eval_preset}
    )
    total = spec.n + spec.evaluation.total_images if args.eval_preset != "none" else spec.n
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            out = Path(tmp) / f"w{workers}.h5"
            t = time.perf_counter()
            build(spec, out, workers=workers, progress=False)
            wall = time.perf_counter() - t
            print(
                f"K={args.factors} {spec.renderer} n={spec.n} eval={args.eval_preset} "
                f"workers={workers}: {wall:7.1f} s, {total / wall:8.0f} img/s, "
                f"file {os.path.getsize(out) / 1e6:8.1f} MB"
            )
            out.unlink()


if __name__ == "__main__":
    main()
