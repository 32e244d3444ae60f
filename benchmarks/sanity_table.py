"""The sanity table of docs/results.md: where do trained models sit between chance and a
near-perfect encoder?

    PYTHONPATH=. python benchmarks/sanity_table.py --factors 5 2 --n 2000 --preset quick

Scores three reference representations with the same metrics and presets as the study's runs
score after each epoch (``benchmark.metrics.evaluate``, ``EPOCH_METRICS``), on small datasets
built with the quick evaluation sets:

* ``untrained``: the thesis' encoder (``vae``, D = 10) with its initial weights, seed 0;
* ``projection``: a fixed random linear map of the pixels to D = 10 (numpy, seed 0);
* ``hand-made``: three numbers read from the pixels by hand -- the centroid (x, y) and the area of
  the non-background pixels -- which encode position and size almost exactly and nothing else
  (not shape, rotation or colour).

Prints a Markdown table (one row per dataset and representation) and the time each took.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

#: Score keys shown, in this order, when the metrics return them (higgins_raw: files older than
#: the Higgins rename).
COLUMNS = (
    "kim_mnih",
    "kim_mnih_weighted",
    "higgins",
    "higgins_standardised",
    "higgins_raw",
    "mig",
    "sap",
    "modularity",
    "explicitness",
    "linear_r2",
    "linear_r2_best_dim",
)
LATENT_DIM = 10


def untrained(shape: tuple[int, int, int]):
    """The thesis encoder with the initial weights of seed 0, on the CPU."""
    import torch

    from benchmark.models.registry import build_model
    from benchmark.train import make_represent

    h, w, c = shape
    model = build_model("vae", (c, h, w), LATENT_DIM, {}, seed=0)
    return make_represent(model, torch.device("cpu"))


def projection(shape: tuple[int, int, int]):
    """A fixed Gaussian map of the pixels (scaled to [0, 1]) to D dimensions."""
    w = np.random.default_rng(0).normal(size=(int(np.prod(shape)), LATENT_DIM)).astype(np.float32)
    w /= np.sqrt(w.shape[0]) * 255.0

    def represent(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32) @ w

    return represent


def hand_made(shape: tuple[int, int, int]):
    """Centroid (x, y) and area of the pixels brighter than half the range on any channel: the
    background is black, the shape white or coloured at full value."""
    h, w, _ = shape
    cols = np.arange(w, dtype=np.float64)
    rows = np.arange(h, dtype=np.float64)

    def represent(images: np.ndarray) -> np.ndarray:
        mask = (images.max(axis=3) > 127).astype(np.float64)  # (n, H, W)
        area = mask.sum(axis=(1, 2))
        safe = np.maximum(area, 1.0)
        cx = (mask.sum(axis=1) @ cols) / safe
        cy = (mask.sum(axis=2) @ rows) / safe
        return np.stack([cx, cy, area], axis=1)

    return represent


REPRESENTATIONS = {"untrained": untrained, "projection": projection, "hand-made": hand_made}


def build_dataset(folder: Path, factors: int, n: int, preset: str, workers: int) -> Path:
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(default_spec(factors), {"n": n, "eval_preset": preset, "seed": 0})
    path = folder / f"sanity-k{factors}-n{n}-{preset}.h5"
    if not path.exists():
        build(spec, path, workers=workers, progress=False)
    return path


def _fmt(v: object) -> str:
    if v is None:
        return "undefined"
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--factors", type=int, nargs="+", default=[5, 2], help="K of each dataset")
    ap.add_argument("--n", type=int, default=2000, help="training images per dataset (unused "
                    "by the scores, which read the evaluation sets)")  # fmt: skip
    ap.add_argument("--preset", default="quick", choices=["quick", "full"])
    ap.add_argument("--seed", type=int, default=0, help="random state of the metrics")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the datasets here")
    ap.add_argument("--workers", type=int, default=1, help="build processes")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = ap.parse_args()

    from benchmark.metrics import evaluate
    from benchmark.metrics.evaluate import EPOCH_METRICS

    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="sanity-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for k in args.factors:
        t0 = time.perf_counter()
        path = build_dataset(folder, k, args.n, args.preset, args.workers)
        print(f"K={k}: dataset {path} ({time.perf_counter() - t0:.1f} s)", flush=True)
        from spritegen.datafile import open_dataset

        with open_dataset(path) as f:
            shape = tuple(int(s) for s in f["images"].shape[1:])
        for name, make in REPRESENTATIONS.items():
            t0 = time.perf_counter()
            # the metrics a run scores after each epoch (all but DCI, whose trees take minutes)
            scores = evaluate(
                path, make(shape), args.seed, preset=args.preset, metrics=EPOCH_METRICS
            )
            wall = time.perf_counter() - t0
            print(f"K={k} {name}: {wall:.1f} s", flush=True)
            results.append((k, name, scores, wall))

    shown = [c for c in COLUMNS if any(c in s for _, _, s, _ in results)]
    lines = [
        f"Preset `{args.preset}`, metric seed {args.seed}, datasets: spritegen's default spec "
        f"for K factors, seed 0, evaluation sets `{args.preset}`.",
        "",
        "| K | representation | " + " | ".join(shown) + " | active dims | time (s) |",
        "|---|---|" + "---:|" * (len(shown) + 2),
    ]
    for k, name, scores, wall in results:
        cells = [_fmt(scores.get(c)) for c in shown]
        active = scores.get("kim_mnih_active_dims")
        lines.append(f"| {k} | {name} | " + " | ".join(cells) + f" | {active} | {wall:.0f} |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
