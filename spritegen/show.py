"""Picture grids of a dataset: samples from the file and one-factor sweeps rendered live.

PNGs are written with cairo, which the 2D renderer already needs, so looking at a dataset costs
no extra dependency. A sweep row varies one factor across its range with every other factor held
at one stored sample's values: if the row changes more than its label says, the data is wrong.
"""

from __future__ import annotations

import errno
import math
from pathlib import Path

import numpy as np

from spritegen.atomic import atomic_path
from spritegen.datafile import open_dataset, read_rows, read_strings
from spritegen.errors import SpecError, quote

LABEL_WIDTH = 90
PAD = 2


def save_grid(
    tiles: np.ndarray, path: str | Path, labels: list[str] | None = None, zoom: int = 2
) -> Path:
    """Write a (rows, cols, H, W, C) uint8 tile array as one PNG, row labels on the left."""
    import cairo

    rows, cols, h, w, c = tiles.shape
    th, tw = h * zoom, w * zoom
    left = LABEL_WIDTH if labels else 0
    height = rows * (th + PAD) + PAD
    width = left + cols * (tw + PAD) + PAD
    canvas = np.full((height, width, 4), 40, dtype=np.uint8)
    canvas[..., 3] = 255
    rgb = tiles if c == 3 else np.repeat(tiles, 3, axis=-1)
    rgb = rgb.repeat(zoom, axis=2).repeat(zoom, axis=3)
    for r in range(rows):
        for col in range(cols):
            y, x = PAD + r * (th + PAD), left + PAD + col * (tw + PAD)
            canvas[y : y + th, x : x + tw, :3] = rgb[r, col][..., ::-1]  # cairo wants B, G, R, A
    surface = cairo.ImageSurface.create_for_data(
        canvas,  # type: ignore[arg-type]  # any writable buffer; the stub lists only a few
        cairo.FORMAT_ARGB32,
        width,
        height,
    )
    if labels:
        ctx = cairo.Context(surface)
        ctx.set_source_rgb(1, 1, 1)
        ctx.select_font_face("sans-serif")
        ctx.set_font_size(12)
        for r, text in enumerate(labels):
            ctx.move_to(4, PAD + r * (th + PAD) + th / 2 + 4)
            ctx.show_text(text)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fh:
            surface.write_to_png(fh)
    except OSError as exc:
        reason = "a folder on its path is a file" if exc.errno == errno.EEXIST else exc.strerror
        raise SpecError(
            f"--out {quote(str(path))}: cannot write the picture ({reason}); choose another --out"
        ) from None
    return path


def sweep_factors(oracle, base: np.ndarray, steps: int) -> np.ndarray:
    """(K, steps, K) factor arrays: row k sweeps factor k over its range, the rest = ``base``."""
    K = oracle.num_factors
    out = np.repeat(np.repeat(base[None, None, :], K, axis=0), steps, axis=1).astype(np.float32)
    for k, f in enumerate(oracle.space.factors):
        if f.kind == "categorical":
            values = np.arange(steps) % f.num_classes
        else:
            values = f.low + (f.high - f.low) * np.arange(steps) / steps
        out[k, :, k] = values
    return out


def show(
    path: str | Path, out: str | Path, samples: int = 64, steps: int = 10, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``out`` (a grid of random stored samples) and ``out``-sweep.png (factor sweeps)."""
    from spritegen.oracle import Oracle

    out = Path(out)
    rng = np.random.default_rng(seed)
    with open_dataset(path) as f:
        n = f["images"].shape[0]
        rows = np.sort(rng.choice(n, size=min(samples, n), replace=False))
        images = read_rows(path, f["images"], rows)
        base = read_rows(path, f["factors"], rows[:1])[0]
        names = read_strings(f["metadata/factor_names"])
    cols = max(1, math.ceil(math.sqrt(len(images))))
    grid = np.zeros((math.ceil(len(images) / cols) * cols,) + images.shape[1:], dtype=np.uint8)
    grid[: len(images)] = images
    save_grid(grid.reshape((-1, cols) + images.shape[1:]), out)
    oracle = Oracle.from_file(path)
    sweep = sweep_factors(oracle, base, steps)
    tiles = oracle.render(sweep.reshape(-1, oracle.num_factors))
    oracle.close()
    sweep_path = out.with_name(out.stem + "-sweep" + out.suffix)
    save_grid(tiles.reshape((len(names), steps) + tiles.shape[1:]), sweep_path, labels=names)
    return out, sweep_path
