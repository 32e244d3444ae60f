"""Loading a spritegen file's training set while checking it against the checksums of its build.

A build stores the SHA-256 of every chunk of raw rows (``/checksums/images``) and one digest over
those checksums, the factors and the evaluation indices (the ``content_sha256`` attribute). A run
trains for hours on what it loads, so it loads nothing unchecked: the content digest is recomputed
first (it covers the factors and the checksum table itself), then every chunk read is inflated and
hashed before it is used. A chunk that cannot be inflated or does not match is named with its row
range, and ``spritegen verify`` is suggested to list every damaged chunk. Hashing costs about
2 µs per 64x64 image, beside the inflate that loading needs anyway (docs/performance.md).

A file without those records (no ``/metadata``, no checksums, no content digest) cannot be
checked; ``spritegen.datafile.open_dataset`` refuses it before anything is read.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from spritegen.datafile import open_dataset
from spritegen.errors import DatasetError
from spritegen.memory import check_fits

IMAGES = "images"
CHECKSUMS = f"checksums/{IMAGES}"


def check_content(f: Any, path: Path) -> None:
    """The build's whole-content digest must match the stored checksums, factors and indices."""
    from spritegen.verify import content_checksum

    try:
        digest = content_checksum(f)
    except (KeyError, OSError, ValueError) as exc:
        raise DatasetError(
            f"{path}: cannot recompute its content checksum ({type(exc).__name__}: {exc}); "
            f"run `spritegen verify {path}`"
        ) from None
    stored = f.attrs["content_sha256"]
    stored = stored.decode() if isinstance(stored, bytes) else str(stored)
    if digest != stored:
        raise DatasetError(
            f"{path}: the chunk checksums, factors or evaluation indices changed since the build "
            f"(content_sha256 does not match); run `spritegen verify {path}` for details"
        )


def _where(path: Path, chunk: int, start: int, stop: int) -> str:
    return f"{path}: /{IMAGES} rows {start}..{stop - 1} (chunk {chunk})"


def read_verified_images(f: Any, path: Path, limit: int | None = None) -> np.ndarray:
    """Rows ``[0, limit)`` of ``/images``, every chunk they touch checked against its checksum."""
    dset = f[IMAGES]
    expected = np.asarray(f[CHECKSUMS][()], dtype=np.uint8)
    n = dset.shape[0] if limit is None else min(limit, dset.shape[0])
    rows = dset.chunks[0] if dset.chunks else 0
    if not rows or tuple(dset.chunks[1:]) != tuple(dset.shape[1:]):
        raise DatasetError(
            f"{path}: /{IMAGES} is not stored in chunks of whole images, so it cannot be checked "
            f"against its checksums; build it again with `spritegen build`"
        )
    num_chunks = -(-dset.shape[0] // rows)
    if expected.shape != (num_chunks, 32):
        raise DatasetError(
            f"{path}: /{CHECKSUMS} has shape {expected.shape}, expected ({num_chunks}, 32) "
            f"(one SHA-256 per chunk of {rows} rows); run `spritegen verify {path}`"
        )
    check_fits(
        n * math.prod(dset.shape[1:]) * dset.dtype.itemsize,
        f"{path}: the training set ({n:,} images)",
    )
    out = np.empty((n,) + dset.shape[1:], dtype=dset.dtype)
    flat = out.reshape(n, -1)
    row_bytes = flat.shape[1] * dset.dtype.itemsize
    fast = dset.compression in ("gzip", None) and not dset.shuffle and not dset.fletcher32

    def load(chunk: int) -> None:
        start = chunk * rows
        stop = min(start + rows, dset.shape[0])
        try:
            if fast:
                _, stored = dset.id.read_direct_chunk((start,) + (0,) * (dset.ndim - 1))
                raw = zlib.decompress(stored) if dset.compression == "gzip" else stored
            else:
                raw = dset[start:stop].tobytes()
        except (zlib.error, OSError, KeyError, ValueError) as exc:
            why = "corrupt compressed data" if isinstance(exc, zlib.error) else "chunk unreadable"
            raise DatasetError(
                f"{_where(path, chunk, start, stop)} cannot be read ({why}); run "
                f"`spritegen verify {path}` to list every damaged chunk, and rebuild the file"
            ) from None
        raw = memoryview(raw)[: (stop - start) * row_bytes]
        if len(raw) != (stop - start) * row_bytes or (
            hashlib.sha256(raw).digest() != expected[chunk].tobytes()
        ):
            raise DatasetError(
                f"{_where(path, chunk, start, stop)} does not match its stored checksum (the data "
                f"changed since the build); run `spritegen verify {path}` to list every damaged "
                f"chunk, and rebuild the file"
            )
        hi = min(stop, n)
        block = np.frombuffer(raw, dtype=dset.dtype).reshape(stop - start, -1)
        flat[start:hi] = block[: hi - start]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(load, range(-(-n // rows))))
    return out


def read_verified_training_set(
    path: str | Path, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W, C) uint8, factors (N, K) float32) of a spritegen file, checked first
    against its content digest and then chunk by chunk against its checksums."""
    path = Path(path)
    with open_dataset(path) as f:
        check_content(f, path)
        images = read_verified_images(f, path, limit)
        factors = np.asarray(f["factors"][: len(images)], dtype=np.float32)
    return images, factors
