"""Cost of checking a training set against its build's checksums while loading it.

Loads the same spritegen file with ``spritegen.datafile.read_training_set`` (inflate only) and
with ``benchmark.datasets.verified.read_verified_training_set`` (content digest, inflate, SHA-256
of every chunk), best of ``--repeat``; prints the extra time per image. The content digest is
recomputed on every repeat, as in a fresh process (a process checks it once per file). Scoring
reads stored evaluation sets through the same checked reader, at the same cost per image.

Usage: python benchmarks/bench_verified_read.py [--n 20000] [--factors 5] [--repeat 10]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.datasets import verified
from benchmark.datasets.verified import read_verified_training_set
from spritegen.build import build
from spritegen.datafile import read_training_set
from spritegen.spec import default_spec, with_overrides


def timed(fn) -> float:
    """CPU seconds of this process (all threads): less disturbed than wall time by other jobs."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def best(fn, repeat: int) -> float:
    return min(timed(fn) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--factors", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    spec = with_overrides(default_spec(args.factors), {"n": args.n, "eval_preset": "none"})
    with tempfile.TemporaryDirectory() as tmp:
        path = build(spec, Path(tmp) / "d.h5", workers=1, progress=False)
        images, _ = read_training_set(path)
        pairs = [  # interleaved, so that a loaded machine slows both alike; best of each
            (
                timed(lambda: read_training_set(path)),
                timed(
                    lambda: (verified._CONTENT_CHECKED.clear(), read_verified_training_set(path))
                ),
            )
            for _ in range(args.repeat)
        ]
        plain, checked = min(p for p, _ in pairs), min(c for _, c in pairs)
        rows = images.reshape(len(images), -1)
        sha = best(lambda: [hashlib.sha256(r).digest() for r in np.array_split(rows, 80)], 3)
    n = len(images)
    per = {name: t / n * 1e6 for name, t in (("plain", plain), ("checked", checked), ("sha", sha))}
    print(
        f"{n} images {images.shape[1:]}, CPU time: load {plain:.3f} s ({per['plain']:.1f} µs/img), "
        f"load + checks {checked:.3f} s ({per['checked']:.1f} µs/img): checking adds "
        f"{per['checked'] - per['plain']:.1f} µs/img; SHA-256 alone {per['sha']:.1f} µs/img"
    )


if __name__ == "__main__":
    main()
