"""Run a representation function over a stream of images, in large batches, and check its output.

Every metric reads images, encodes them and does arithmetic on the latents; this module owns the
first two steps, so that the metric modules only see ``(n, D)`` float64 arrays, and so that the
time spent reading (or rendering) and encoding is measured in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from spritegen.errors import SpecError, SpritegenError, check_flag

#: Images per call of the representation function unless the caller says otherwise.
DEFAULT_ENCODE_BATCH_SIZE = 1024

Represent = Callable[[np.ndarray], object]

#: Largest latent magnitude the metrics accept. scikit-learn's trees (DCI) cast their input to
#: float32 (largest 3.4e38) and the metrics sum squares of up to 10^5 values in float64, so a
#: bound well inside both keeps every metric's arithmetic finite; no trained encoder comes near
#: it (a float32 KL term overflows for latents above about 1e19).
MAX_LATENT_ABS = 1e30


class RepresentationError(SpritegenError, ValueError):
    """The representation function returned something the metrics cannot use."""


@dataclass
class Timings:
    """Seconds spent reading (or rendering) images, inside the representation, and on arithmetic."""

    read: float = 0.0
    encode: float = 0.0
    metric: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"read_s": self.read, "encode_s": self.encode, "metric_s": self.metric}


#: What ``represent`` must return, as messages say it.
EXPECTED_OUTPUT = "an (n, D) float array (numpy or torch), one row per image"


def describe_output(value: object) -> str:
    """What a representation function returned, for an error message."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _tensor_to_numpy(tensor) -> np.ndarray:
    """A torch tensor's values as numpy, detached and on the CPU. numpy has no bfloat16 (nor
    float8): such a tensor, what an encoder under ``torch.autocast`` returns, is widened to
    float32 first, which holds its values exactly (``.numpy()`` raised a TypeError)."""
    tensor = tensor.detach().cpu()
    try:
        return tensor.numpy()
    except TypeError:
        return tensor.float().numpy()


def to_latents(out: object, n: int, name: str = "represent") -> np.ndarray:
    """Turn one output of ``represent`` into an ``(n, D)`` float64 array, or say what is wrong.

    Accepts numpy arrays and torch tensors (detached and moved to the CPU; torch is never imported
    here, tensors are recognised by their methods).
    """
    if hasattr(out, "detach") and hasattr(out, "cpu"):
        out = _tensor_to_numpy(out)
    try:
        arr = np.asarray(out)
    except Exception as exc:
        raise RepresentationError(
            f"{name} returned {describe_output(out)} for a batch of {n} images ({exc}); expected "
            f"{EXPECTED_OUTPUT}"
        ) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        what = describe_output(out)
        if arr.dtype != object and "dtype" not in what:
            what += f" of {arr.dtype} values"
        raise RepresentationError(
            f"{name} returned {what} for a batch of {n} images, not numbers; expected "
            f"{EXPECTED_OUTPUT}"
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise RepresentationError(
            f"{name} returned complex numbers (dtype {arr.dtype}); latents must be real: "
            "return an (n, D) float array (e.g. its .real or abs(), as the model means)"
        )
    if arr.ndim != 2:
        raise RepresentationError(
            f"{name} must return shape (n, D) = ({n}, D) for a batch of {n} images, got shape "
            f"{arr.shape}"
        )
    if arr.shape[0] != n:
        raise RepresentationError(
            f"{name} returned {arr.shape[0]} rows for a batch of {n} images; it must return one "
            f"row per image, shape ({n}, D)"
        )
    if arr.shape[1] < 1:
        raise RepresentationError(f"{name} returned 0 latent dimensions; need D >= 1")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        kinds = []
        if np.isnan(arr).any():
            kinds.append("NaN")
        if np.isinf(arr).any():
            kinds.append("inf")
        rows = np.flatnonzero(bad.any(axis=1))
        dims = np.flatnonzero(bad.any(axis=0)).tolist()[:10]
        raise RepresentationError(
            f"{name} returned {' and '.join(kinds)} in {int(bad.sum())} values (first bad row "
            f"{int(rows[0])} of this batch, latent dims {dims}); latents must be finite"
        )
    _check_magnitude(arr, name)
    return arr


def _check_magnitude(arr: np.ndarray, name: str) -> None:
    """Refuse finite latents too large for the metrics' arithmetic (see ``MAX_LATENT_ABS``):
    they would end in an overflow or a scikit-learn traceback deep inside one metric."""
    if arr.size == 0:
        return
    largest = float(np.abs(arr).max())
    if largest <= MAX_LATENT_ABS:
        return
    big = np.abs(arr) > MAX_LATENT_ABS
    row = int(np.flatnonzero(big.any(axis=1))[0])
    dims = np.flatnonzero(big.any(axis=0)).tolist()[:10]
    raise RepresentationError(
        f"{name} returned values as large as {largest:.3g} in magnitude (first in row {row} of "
        f"this batch, latent dims {dims}); latents must satisfy |z| <= {MAX_LATENT_ABS:.0e}: "
        "rescale the representation"
    )


def encode(
    chunks: Iterable[np.ndarray],
    total: int,
    represent: Represent,
    *,
    batch_size: int = DEFAULT_ENCODE_BATCH_SIZE,
    timings: Timings | None = None,
    expected_dim: int | None = None,
    progress: bool = False,
    desc: str = "encoding",
) -> np.ndarray:
    """Encode ``total`` images arriving in ``chunks`` into an ``(total, D)`` float64 array.

    ``represent`` is called on slices of at most ``batch_size`` images (never one at a time); the
    time spent pulling the next chunk (reading the file, or rendering) is added to
    ``timings.read`` and the time inside ``represent`` to ``timings.encode``. ``expected_dim``
    makes a representation that changes its width between calls an error.
    """
    if isinstance(batch_size, np.integer):
        batch_size = int(batch_size)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        # a bad argument, not a bad representation: named as every metric's keyword names it
        raise SpecError(f"encode_batch_size must be an integer >= 1, got {batch_size!r}")
    if not callable(represent):
        raise RepresentationError(
            f"represent must be a function of a uint8 image batch (n, H, W, C) returning "
            f"{EXPECTED_OUTPUT}; got {describe_output(represent)}"
        )
    progress = check_flag("progress", progress)
    timings = timings if timings is not None else Timings()
    out: np.ndarray | None = None
    filled = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="img", leave=False)
    it = iter(chunks)
    try:
        while True:
            t0 = time.perf_counter()
            try:
                chunk = next(it)
            except StopIteration:
                timings.read += time.perf_counter() - t0
                break
            timings.read += time.perf_counter() - t0
            for start in range(0, len(chunk), batch_size):
                images = chunk[start : start + batch_size]
                t0 = time.perf_counter()
                raw = represent(images)
                timings.encode += time.perf_counter() - t0
                z = to_latents(raw, len(images))
                if out is None:
                    if expected_dim is not None and z.shape[1] != expected_dim:
                        raise RepresentationError(
                            f"represent returned D={z.shape[1]} latent dimensions here but "
                            f"D={expected_dim} before; it must return the same width every call"
                        )
                    out = np.empty((total, z.shape[1]), dtype=np.float64)
                elif z.shape[1] != out.shape[1]:
                    raise RepresentationError(
                        f"represent returned D={z.shape[1]} latent dimensions here but "
                        f"D={out.shape[1]} before; it must return the same width every call"
                    )
                out[filled : filled + len(z)] = z
                filled += len(z)
                if bar is not None:
                    bar.update(len(z))
    finally:
        if bar is not None:
            bar.close()
    if filled != total or out is None:
        raise RuntimeError(f"image stream gave {filled} images, expected {total}")  # a bug
    return out
