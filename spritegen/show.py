"""Picture grids of a dataset: samples from the file and one-factor sweeps rendered live.

PNGs are written with cairo, which the 2D renderer already needs, so looking at a dataset costs
no extra dependency. A sweep row varies one factor across its range with every other factor held
at one stored sample's values: if the row changes more than its label says, the data is wrong.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from spritegen.atomic import atomic_path, output_path, partial_path
from spritegen.datafile import (
    damaged_structure,
    open_dataset,
    read_rows,
    read_strings,
    stored_spec,
)
from spritegen.errors import SpecError, SpritegenWarning, quote
from spritegen.oracle import Oracle

LABEL_WIDTH = 90
PAD = 2
#: The grid's file name when --out is not given, or names a folder; the sweep gets NAME-sweep.png.
DEFAULT_OUT = "grid.png"
#: The suffix (in any case) a file named by --out must have: show writes PNG files only.
PNG_SUFFIX = ".png"
#: The first bytes of every PNG file (RFC 2083): an existing --out must start with them.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_grid(tiles: np.ndarray, labels: list[str] | None = None, zoom: int = 2) -> bytes:
    """A (rows, cols, H, W, C) uint8 tile array as the bytes of one PNG, row labels on the left.

    Pictures are made in memory and written only when every one of them is ready, so a failure
    (a bad file, a renderer error) leaves no picture, old or new, half-replaced.
    """
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
    buffer = io.BytesIO()
    surface.write_to_png(buffer)
    return buffer.getvalue()


def save_grid(
    tiles: np.ndarray, path: str | Path, labels: list[str] | None = None, zoom: int = 2
) -> Path:
    """Write a (rows, cols, H, W, C) uint8 tile array as one PNG, row labels on the left."""
    path = Path(path)
    write_pictures({path: encode_grid(tiles, labels, zoom)})
    return path


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """The grid and sweep pictures ``--out`` asks for: ``OUT`` and ``OUT``-sweep (same suffix).

    A folder (one that exists, or any path ending in '/') means the default names inside it,
    as ``cp FILE DIR/`` keeps the name: ``DIR/grid.png`` and ``DIR/grid-sweep.png``. Any other
    path names the grid's file, which ``check_outputs`` wants named ``*.png``.
    """
    text = os.fspath(out)
    if not text:
        raise SpecError(
            f"--out {quote(text)}: an empty path; give a PNG file name (default "
            f"{DEFAULT_OUT!r}) or a folder ending in '/'"
        )
    path = output_path("--out", text)  # sub/../x.png: x.png, as it reads once sub is made
    if text.endswith(("/", os.sep)) or _is_dir(path):
        path = path / DEFAULT_OUT
    return path, path.with_name(path.stem + "-sweep" + path.suffix)


def _check_png_name(path: Path) -> None:
    """A file ``show`` writes is named ``*.png``: a PNG named ``x.h5`` or ``x.jpg`` misleads
    whoever opens it, and a bare ``x`` may have meant a new folder, which show does not guess."""
    if path.suffix.lower() == PNG_SUFFIX:
        return
    name = str(path)
    if path.suffix:
        raise SpecError(
            f"--out {quote(name)}: show writes PNG files only, not {path.suffix}; give a name "
            f"ending in {PNG_SUFFIX} ({quote(str(path.with_suffix(PNG_SUFFIX)))}), or a folder "
            "(an existing one, or a path ending in '/')"
        )
    raise SpecError(
        f"--out {quote(name)}: neither a {PNG_SUFFIX} file name nor an existing folder; give "
        f"{quote(name + PNG_SUFFIX)} for a file, or {quote(name + '/')} for a new folder"
    )


def check_outputs(source: str | Path, outputs: tuple[Path, ...]) -> None:
    """Refuse, before anything is read or written, an output that would destroy a file.

    ``show`` replaces only what it may have written itself: a missing file or an existing
    PNG. Never the dataset it reads (under any name: a symlink, a hard link, another path),
    and never any other file, which a mistyped ``--out data.h5`` would otherwise turn into a
    picture. What it writes is named ``*.png``.
    """
    for path in outputs:
        for target in (path, partial_path(path)):  # the picture is written to PATH.partial first
            if _same_file(target, source):
                raise SpecError(
                    f"--out {quote(str(path))}: would overwrite the dataset being shown "
                    f"({quote(str(source))}); choose another --out"
                )
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            _check_png_name(path)
            continue
        except NotADirectoryError:
            raise SpecError(
                f"--out {quote(str(path))}: cannot write the picture (a folder on its path is "
                "a file); choose another --out"
            ) from None
        except OSError as exc:
            raise SpecError(
                f"--out {quote(str(path))}: cannot write the picture ({exc.strerror}); choose "
                "another --out"
            ) from None
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise SpecError(
                f"--out {quote(str(path))}: exists and is {what}; show writes PNG files only: "
                "choose another --out"
            )
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(PNG_SIGNATURE))
        except OSError as exc:
            raise SpecError(
                f"--out {quote(str(path))}: exists and cannot be read ({exc.strerror}); choose "
                "another --out"
            ) from None
        if head != PNG_SIGNATURE:
            raise SpecError(
                f"--out {quote(str(path))}: exists and is not a PNG image (it starts with "
                f"{quote(head)}); show replaces only PNG files: choose another --out, or "
                "remove the file"
            )
        _check_png_name(path)  # show's own PNG, from before it named them all *.png


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:  # missing, or a name the file system refuses: check_outputs names why
        return False


def _same_file(a: Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (or cannot be looked at): not the same file
        return False


def write_pictures(pictures: dict[Path, bytes]) -> None:
    """Write every picture to ``PATH.partial``, then rename them all into place."""
    path = next(iter(pictures))  # the one named if the first step fails
    try:
        for path in pictures:
            path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:  # the renames happen together, on leaving it
            for path, data in pictures.items():
                tmp = stack.enter_context(atomic_path(path, fsync=False))
                tmp.write_bytes(data)
    except OSError as exc:
        reason = (
            "a folder on its path is a file"
            if exc.errno in (errno.EEXIST, errno.ENOTDIR)
            else exc.strerror
        )
        raise SpecError(
            f"--out {quote(str(path))}: cannot write the picture ({reason}); choose another --out"
        ) from None


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


#: Images in the sample grid when none are asked for (or all of a smaller file, without a word).
DEFAULT_SAMPLES = 64


def show(
    path: str | Path,
    out: str | Path,
    samples: int | None = None,
    steps: int = 10,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write a grid of random stored samples and a grid of factor sweeps (``output_paths``).

    Everything is checked, read and rendered before the first byte is written: a bad file, a
    corrupt chunk or a refused ``--out`` leaves every file as it was.
    """
    grid_path, sweep_path = output_paths(out)
    check_outputs(path, (grid_path, sweep_path))
    rng = np.random.default_rng(seed)
    with open_dataset(path) as f, damaged_structure(path):
        n = f["images"].shape[0]
        if samples is None:
            samples = min(DEFAULT_SAMPLES, n)
        elif samples > n:  # a smaller grid than asked for deserves a word, not silence
            warnings.warn(
                f"--samples {samples}: the file holds {n} images; the grid shows all {n}",
                SpritegenWarning,
                stacklevel=2,
            )
        rows = np.sort(rng.choice(n, size=min(samples, n), replace=False))
        images = read_rows(path, f["images"], rows)
        base = read_rows(path, f["factors"], rows[:1])[0]
        names = read_strings(f["metadata/factor_names"])
        oracle = Oracle.from_spec(stored_spec(path, f))
    cols = max(1, math.ceil(math.sqrt(len(images))))
    grid = np.zeros((math.ceil(len(images) / cols) * cols,) + images.shape[1:], dtype=np.uint8)
    grid[: len(images)] = images
    sweep = sweep_factors(oracle, base, steps)
    try:
        tiles = oracle.render(sweep.reshape(-1, oracle.num_factors))
    finally:
        oracle.close()
    write_pictures(
        {
            grid_path: encode_grid(grid.reshape((-1, cols) + images.shape[1:])),
            sweep_path: encode_grid(
                tiles.reshape((len(names), steps) + tiles.shape[1:]), labels=names
            ),
        }
    )
    return grid_path, sweep_path
