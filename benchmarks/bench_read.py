"""Reading a dataset file: random mini-batches straight from HDF5 vs loading the set into memory,
for several chunk sizes (the measurement behind the default ``storage.chunk_images``).

Usage: python benchmarks/bench_read.py [--n 100000] [--chunks 64 256 1024 4096]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from spritegen.build import build
from spritegen.datafile import open_dataset, read_training_set
from spritegen.spec import default_spec, spec_from_mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for chunk in args.chunks:
            raw = default_spec(5).to_dict()
            raw.update(n=args.n, evaluation={"preset": "none"})
            raw["storage"]["chunk_images"] = chunk
            spec = spec_from_mapping(raw)
            out = Path(tmp) / f"c{chunk}.h5"
            t = time.perf_counter()
            build(spec, out, workers=2, progress=False)
            build_s = time.perf_counter() - t
            with open_dataset(out) as f:
                images = f["images"]
                t = time.perf_counter()
                for _ in range(args.batches):
                    rows = np.sort(rng.choice(args.n, 64, replace=False))
                    images[rows]
                batch_ms = (time.perf_counter() - t) / args.batches * 1e3
            t = time.perf_counter()
            read_training_set(out)
            load_s = time.perf_counter() - t
            print(
                f"chunk {chunk:5d}: build {build_s:5.1f} s, "
                f"file {os.path.getsize(out) / 1e6:6.1f} MB, "
                f"random batch of 64 from HDF5 {batch_ms:7.1f} ms, "
                f"whole set into memory {load_s:5.2f} s"
            )
            out.unlink()


if __name__ == "__main__":
    main()
