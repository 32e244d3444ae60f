"""Cost of checking saved chunks on resume: inflate and SHA-256 every chunk in OUT.parts/.

Renders a training set into a parts folder exactly as a build does, then times
``spritegen.build._check_saved_chunks`` (what a resumed build runs before assembling).

Usage: python benchmarks/bench_resume_check.py [--factors 5] [--n 200000] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from spritegen.atomic import write_bytes_atomic
from spritegen.build import _check_saved_chunks, _tasks, render_chunk
from spritegen.evalsets import plan_build
from spritegen.executors import LocalExecutor
from spritegen.spec import default_spec, with_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factors", type=int, default=5)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec = with_overrides(default_spec(args.factors), {"n": args.n, "eval_preset": "none"})
    tasks = _tasks(spec, plan_build(spec))
    with tempfile.TemporaryDirectory() as tmp:
        parts = Path(tmp)
        with LocalExecutor(workers=args.workers) as pool:
            for name, digest, stored in pool.map_ordered(render_chunk, tasks):
                write_bytes_atomic(parts / name, digest + stored, fsync=False)
        size = sum(p.stat().st_size for p in parts.iterdir())
        start = time.perf_counter()
        bad = _check_saved_chunks(spec, tasks, parts)
        seconds = time.perf_counter() - start
    assert not bad
    print(
        f"K={args.factors}, {args.n:,} images in {len(tasks)} chunks ({size / 1e6:.0f} MB saved): "
        f"checked in {seconds:.2f} s = {args.n / seconds:,.0f} img/s "
        f"({seconds / args.n * 1e6:.2f} us per image)"
    )


if __name__ == "__main__":
    main()
