"""Frames per second of the 3D renderer: one worker, then 1 and 2 worker processes.

Each worker builds one ``PyrenderRenderer`` (one GL context), renders a warm-up batch, then renders
random factor vectors in batches of ``--batch`` and reports its steady rate. The pool figures are
wall-clock over all workers, start-up included and excluded. Mesa's llvmpipe rasterises with
``LP_NUM_THREADS`` threads; the default of 1 here makes one worker use one core, so the per-worker
figure is a per-core figure and N workers use N cores.

    PYTHONPATH=. python benchmarks/bench_render3d.py --frames 3000 --size 64 --build-images 4000

``--build-images N`` also times a whole K = 7 build (``spritegen.build.build``, no evaluation
sets, gzip level 1) of N images with 1 and 2 workers, end to end: planning, spawning workers,
rendering, compressing, assembling the HDF5 file.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import tempfile
import time

import numpy as np


def random_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.column_stack(
        [
            rng.uniform(size=n),
            rng.uniform(size=n),
            rng.uniform(size=n),
            rng.integers(0, 3, size=n).astype(np.float64),
            rng.uniform(0, 2 * math.pi, size=n),
            rng.uniform(size=n),
            rng.uniform(0, 2 * math.pi, size=n),
        ]
    )


_barrier = None


def _set_barrier(barrier) -> None:
    global _barrier
    _barrier = barrier


def worker(args: tuple[int, int, int, int]) -> dict[str, float]:
    """Render ``frames`` images; return start-up and steady-state timings (seconds).

    In a pool, all workers wait for each other after start-up so that their steady phases overlap
    (time.monotonic is one clock for all processes of the machine).
    """
    seed, frames, size, batch = args
    t0 = time.perf_counter()
    from spritegen.render.pyrender3d import PyrenderRenderer

    renderer = PyrenderRenderer(image_size=size, coloured=True)
    rng = np.random.default_rng(seed)
    renderer.render(random_vectors(16, rng))  # compiles the shaders
    startup = time.perf_counter() - t0
    if _barrier is not None:
        _barrier.wait()
    t1 = time.monotonic()
    done = 0
    while done < frames:
        n = min(batch, frames - done)
        renderer.render(random_vectors(n, rng))
        done += n
    t2 = time.monotonic()
    info = renderer.info()
    renderer.close()
    return {
        "startup_s": startup,
        "start": t1,
        "end": t2,
        "render_s": t2 - t1,
        "frames": frames,
        "gl_renderer": info["gl_renderer"],
    }


def run_pool(workers: int, frames: int, size: int, batch: int) -> None:
    ctx = mp.get_context("spawn")  # GL contexts and fork do not mix
    per = frames // workers
    t0 = time.perf_counter()
    with ctx.Pool(workers, initializer=_set_barrier, initargs=(ctx.Barrier(workers),)) as pool:
        results = pool.map(worker, [(w, per, size, batch) for w in range(workers)], chunksize=1)
    wall = time.perf_counter() - t0
    steady = max(r["end"] for r in results) - min(r["start"] for r in results)
    total = per * workers
    print(
        f"{workers} process(es): {total / steady:8.0f} frames/s steady "
        f"({1e3 * steady / total * workers:.2f} ms/frame/worker), "
        f"{total / wall:8.0f} frames/s wall incl. start-up "
        f"(start-up {max(r['startup_s'] for r in results):.2f} s)"
    )


def time_build(n: int, size: int, workers: int, folder: str) -> None:
    from spritegen.build import build
    from spritegen.spec import spec_from_mapping

    spec = spec_from_mapping(
        {"factors": 7, "n": n, "image_size": size, "seed": 0, "evaluation": "none"}
    )
    t0 = time.perf_counter()
    build(spec, os.path.join(folder, f"k7_w{workers}.h5"), workers=workers, progress=False)
    wall = time.perf_counter() - t0
    print(
        f"build K=7, {n} images, {workers} worker(s): {wall:.2f} s = {n / wall:.0f} images/s "
        f"({1e3 * wall / n * workers:.2f} ms/image/worker end to end)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--build-images",
        type=int,
        default=0,
        help="also time a whole K=7 build of this many images (0: skip)",
    )
    parser.add_argument(
        "--lp-threads",
        default="1",
        help="LP_NUM_THREADS for Mesa llvmpipe ('' keeps the environment's)",
    )
    args = parser.parse_args()
    if args.lp_threads:
        os.environ["LP_NUM_THREADS"] = args.lp_threads
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    from spritegen.render._pyrender_compat import redirect_shader_cache

    cache = tempfile.TemporaryDirectory(prefix="mesa_cache_")
    redirect_shader_cache(cache.name)  # unless MESA_SHADER_CACHE_DIR / XDG_CACHE_HOME is set

    single = worker((0, args.frames, args.size, args.batch))
    ms = 1e3 * single["render_s"] / single["frames"]
    print(
        f"{single['gl_renderer']}, {args.size}x{args.size}, LP_NUM_THREADS="
        f"{os.environ.get('LP_NUM_THREADS', 'unset')}, cores {os.cpu_count()}"
    )
    print(
        f"per worker (in-process): {1e3 / ms:8.0f} frames/s = {ms:.3f} ms/frame, "
        f"start-up {single['startup_s']:.2f} s"
    )
    for workers in (1, 2):
        run_pool(workers, args.frames, args.size, args.batch)
    if args.build_images:
        with tempfile.TemporaryDirectory(prefix="bench_build3d_") as folder:
            for workers in (1, 2):
                time_build(args.build_images, args.size, workers, folder)
    cache.cleanup()


if __name__ == "__main__":
    main()
