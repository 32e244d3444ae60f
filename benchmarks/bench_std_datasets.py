"""How fast the published-dataset readers open files and serve images, and how much memory.

Writes a file in the published dSprites HDF5 or 3dshapes layout (barcode images, see
``benchmark.datasets.testing``; they compress about as well as dSprites' binary sprites, far
better than 3dshapes' rendered scenes), then prints: open time (layout checks), lazy random
batches of 64, the live-oracle access pattern of the metrics, a full in-memory read, and peak RSS.

    python benchmarks/bench_std_datasets.py --kind dsprites --grid full
    python benchmarks/bench_std_datasets.py --kind dsprites-npz --grid full
    python benchmarks/bench_std_datasets.py --kind 3dshapes --grid 10,10,10,8,4,3

Nothing is downloaded. Point --folder at a disk with room (full dSprites: ~0.1 GB on disk, 3 GB
read into memory at the end).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.datasets import open_data
from benchmark.datasets.testing import (
    DSPRITES_VALUES,
    SHAPES3D_VALUES,
    barcode_images,
    grid_latents,
)

PUBLISHED = {
    "dsprites": (1, 3, 6, 40, 32, 32),
    "dsprites-npz": (1, 3, 6, 40, 32, 32),
    "3dshapes": (10, 10, 10, 8, 4, 15),
}
BLOCK = 16384


def write(kind: str, sizes: tuple[int, ...], path: Path, chunk_rows: int) -> None:
    import h5py

    published = SHAPES3D_VALUES if kind == "3dshapes" else DSPRITES_VALUES
    classes, values = grid_latents(sizes, published)
    n = len(classes)
    if kind == "dsprites-npz":  # np.savez_compressed needs the whole array: 3 GB while writing
        np.savez_compressed(
            path, imgs=barcode_images(n, 0, True), latents_classes=classes, latents_values=values
        )
        print(f"wrote {n} rows, {path.stat().st_size / 2**20:.1f} MiB")
        return
    with h5py.File(path, "w") as fh:
        if kind == "dsprites":
            chunks = (chunk_rows, 64, 64) if chunk_rows else True
            ds = fh.create_dataset("imgs", (n, 64, 64), np.uint8, compression="gzip", chunks=chunks)
            fh["latents/classes"] = classes
            fh["latents/values"] = values
        else:
            chunks = (chunk_rows, 64, 64, 3) if chunk_rows else True
            ds = fh.create_dataset(
                "images", (n, 64, 64, 3), np.uint8, compression="gzip", chunks=chunks
            )
            fh["labels"] = values
        for start in range(0, n, BLOCK):
            stop = min(start + BLOCK, n)
            ds[start:stop] = barcode_images(
                stop - start, 0 if kind == "dsprites" else 3, kind == "dsprites", start=start
            )
        print(f"wrote {n} rows, chunks {ds.chunks}, {path.stat().st_size / 2**20:.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=sorted(PUBLISHED), default="dsprites")
    ap.add_argument("--grid", default="full", help="'full' or comma-separated column sizes")
    ap.add_argument("--folder", type=Path, default=None)
    ap.add_argument(
        "--chunk-rows",
        type=int,
        default=32,
        help="images per HDF5 chunk, 0 for h5py's automatic chunk shape (which, for "
        "dSprites, spans 23,040 rows and makes every row read slow)",
    )
    args = ap.parse_args()
    sizes = (
        PUBLISHED[args.kind] if args.grid == "full" else tuple(int(s) for s in args.grid.split(","))
    )
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        path = (
            Path(tmp)
            / {
                "dsprites": "dsprites.hdf5",
                "dsprites-npz": "dsprites.npz",
                "3dshapes": "3dshapes.h5",
            }[args.kind]
        )
        t = time.perf_counter()
        # in a child process, so the writer's memory does not count in this process's peak RSS
        writer = multiprocessing.get_context("spawn").Process(
            target=write, args=(args.kind, sizes, path, args.chunk_rows)
        )
        writer.start()
        writer.join()
        print(f"write: {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        source = open_data(f"{args.kind.split('-')[0]}:{path}")
        oracle = source.oracle()
        print(f"open (layout checks): {time.perf_counter() - t:.2f} s")
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        oracle.render(oracle.sample_factors(64, rng))
        print(f"first batch of 64 (npz: decompresses all images): {time.perf_counter() - t:.2f} s")
        times = []
        for _ in range(50):
            f = oracle.sample_factors(64, rng)
            t = time.perf_counter()
            oracle.render(f)
            times.append(time.perf_counter() - t)
        print(
            f"random batch of 64: median {1e3 * np.median(times):.1f} ms, "
            f"max {1e3 * max(times):.1f} ms"
        )
        t = time.perf_counter()
        f = oracle.sample_factors(64 * 100, rng)  # 100 Kim–Mnih-style votes in one request
        for k in range(100):
            f[64 * k : 64 * (k + 1), k % oracle.num_factors] = f[64 * k, k % oracle.num_factors]
        oracle.render(f)
        print(f"6,400 images in one request: {time.perf_counter() - t:.2f} s")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak RSS before the full read: {rss:.2f} GiB")
        t = time.perf_counter()
        images, _ = source.read_training_set()
        print(
            f"read_training_set (all {len(images)} images, {images.nbytes / 2**30:.2f} GiB): "
            f"{time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        oracle.render(oracle.sample_factors(64 * 1000, rng))
        print(f"64,000 images after the training set is in memory: {time.perf_counter() - t:.2f} s")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak RSS: {rss:.2f} GiB")
        source.close()


if __name__ == "__main__":
    main()
