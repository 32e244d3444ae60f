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
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from spritegen.datafile import open_dataset
from spritegen.errors import DatasetError
from spritegen.memory import check_fits

IMAGES = "images"
CHECKSUMS = f"checksums/{IMAGES}"


#: Files whose content digest this process has recomputed and found matching, by identity
#: (device, inode, size, modification time): a run checks its file when it loads the training
#: set and again each time it scores, and the digest reads every factor array of the file.
_CONTENT_CHECKED: set[Hashable] = set()


def check_content(f: Any, path: Path) -> None:
    """The build's whole-content digest must match the stored checksums, factors and indices.

    Checked once per file identity in a process; a file changed since has another identity."""
    from benchmark.metrics.setcache import file_identity
    from spritegen.verify import content_checksum

    identity = file_identity(path)
    if identity is not None and identity in _CONTENT_CHECKED:
        return
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
    if identity is not None:
        _CONTENT_CHECKED.add(identity)


def read_verified_images(f: Any, path: Path, limit: int | None = None) -> np.ndarray:
    """Rows ``[0, limit)`` of ``/images``, every chunk they touch checked against its checksum."""
    n = f[IMAGES].shape[0] if limit is None else min(limit, f[IMAGES].shape[0])
    check_fits(
        n * math.prod(f[IMAGES].shape[1:]) * f[IMAGES].dtype.itemsize,
        f"{path}: the training set ({n:,} images)",
    )
    return read_verified_rows(f, path, IMAGES, 0, n)


def read_verified_rows(f: Any, path: Path, name: str, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the image set ``name`` (``images``, ``eval/variance/images``,
    ...), every chunk they touch inflated in a thread pool and checked against its checksum in
    ``/checksums/<name>`` before any of its rows is used.

    The set must be stored as the build stores it, in chunks of whole images: the checksums
    are of those chunks' raw rows."""
    name = name.lstrip("/")
    dset = f[name]
    if f"checksums/{name}" not in f:
        raise DatasetError(
            f"{path}: /checksums/{name} is missing, so /{name} cannot be checked; run "
            f"`spritegen verify {path}` and rebuild the file"
        )
    expected = np.asarray(f[f"checksums/{name}"][()], dtype=np.uint8)
    stop = min(stop, dset.shape[0])
    rows = dset.chunks[0] if dset.chunks else 0
    if not rows or tuple(dset.chunks[1:]) != tuple(dset.shape[1:]):
        raise DatasetError(
            f"{path}: /{name} is not stored in chunks of whole images, so it cannot be checked "
            f"against its checksums; build it again with `spritegen build`"
        )
    num_chunks = -(-dset.shape[0] // rows)
    if expected.shape != (num_chunks, 32):
        raise DatasetError(
            f"{path}: /checksums/{name} has shape {expected.shape}, expected ({num_chunks}, 32) "
            f"(one SHA-256 per chunk of {rows} rows); run `spritegen verify {path}`"
        )
    out = np.empty((max(0, stop - start),) + dset.shape[1:], dtype=dset.dtype)
    flat = out.reshape(len(out), -1)
    row_bytes = flat.shape[1] * dset.dtype.itemsize
    fast = dset.compression in ("gzip", None) and not dset.shuffle and not dset.fletcher32

    def load(chunk: int) -> None:
        lo = chunk * rows
        hi = min(lo + rows, dset.shape[0])
        where = f"{path}: /{name} rows {lo}..{hi - 1} (chunk {chunk})"
        try:
            if fast:
                _, stored = dset.id.read_direct_chunk((lo,) + (0,) * (dset.ndim - 1))
                raw = zlib.decompress(stored) if dset.compression == "gzip" else stored
            else:
                raw = dset[lo:hi].tobytes()
        except (zlib.error, OSError, KeyError, ValueError) as exc:
            why = "corrupt compressed data" if isinstance(exc, zlib.error) else "chunk unreadable"
            raise DatasetError(
                f"{where} cannot be read ({why}); run `spritegen verify {path}` to list every "
                f"damaged chunk, and rebuild the file"
            ) from None
        raw = memoryview(raw)[: (hi - lo) * row_bytes]
        if len(raw) != (hi - lo) * row_bytes or (
            hashlib.sha256(raw).digest() != expected[chunk].tobytes()
        ):
            raise DatasetError(
                f"{where} does not match its stored checksum (the data changed since the "
                f"build); run `spritegen verify {path}` to list every damaged chunk, and "
                f"rebuild the file"
            )
        block = np.frombuffer(raw, dtype=dset.dtype).reshape(hi - lo, -1)
        a, b = max(lo, start), min(hi, stop)
        flat[a - start : b - start] = block[a - lo : b - lo]

    chunks = range(start // rows, -(-stop // rows)) if stop > start else range(0)
    if len(chunks) == 1:  # a streamed slice: no pool to start
        load(chunks[0])
    else:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(load, chunks))
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
