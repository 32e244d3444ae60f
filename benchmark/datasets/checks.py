"""Checks shared by the published-dataset readers: is this the file it claims to be?

Each reader fails with one ``DatasetError`` line that names the file, says what was found
instead, and where the right file comes from. The grid checks prove that row ``i`` of a file
holds the factor combination the mixed-radix layout assigns to ``i``, which is what lets the
oracles find images by arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.datasets.grid import mixed_radix_strides
from spritegen.errors import DatasetError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def require_file(path: Path, origin: str) -> None:
    """A missing path, a folder or a device gets the message saying where the dataset comes
    from, and what the path is (``/dev/null`` was called a folder)."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file. {origin}")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not a file. {origin}")
    if not path.is_file():
        raise DatasetError(f"{path}: not a regular file (a device, pipe or socket). {origin}")


def open_hdf5(path: Path, origin: str):
    """Open a published HDF5 file read-only, or say in one line that it is truncated or corrupt."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(
            f"{path}: cannot open as HDF5 ({exc}); the file is truncated or corrupt. {origin}"
        ) from None


def sniff(path: Path) -> str:
    """'hdf5', 'zip' or 'other', from the first bytes (extensions are often wrong)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == HDF5_MAGIC:
        return "hdf5"
    if head[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        return "zip"
    return "other"


def describe_other(path: Path) -> str:
    """A short description of a file that is neither HDF5 nor npz, for error messages."""
    size = path.stat().st_size
    if size == 0:
        return "an empty file"
    with open(path, "rb") as fh:
        head = fh.read(16)
    return f"a {size}-byte file that is neither HDF5 nor npz (starts with {head!r})"


def describe_hdf5_keys(handle: object) -> str:
    """Top-level names and shapes of an open HDF5 file, e.g. "images (480000, 64, 64, 3) uint8"."""
    import h5py

    parts = []
    for key in list(handle.keys())[:8]:  # type: ignore[attr-defined]
        obj = handle[key]  # type: ignore[index]
        if isinstance(obj, h5py.Dataset):
            parts.append(f"{key} {tuple(obj.shape)} {obj.dtype}")
        else:
            parts.append(f"{key}/ ({', '.join(list(obj.keys())[:6])})")
    return "; ".join(parts) if parts else "no datasets"


def hdf5_identity_hint(handle: object) -> str:
    """Names the dataset an HDF5 file looks like, so a wrong prefix gets a useful message."""
    keys = set(handle.keys())  # type: ignore[attr-defined]
    if {"images", "factors"} <= keys:
        return " It looks like a spritegen dataset: pass its path without a prefix."
    if {"images", "labels"} <= keys:
        return " It looks like 3dshapes: pass 3dshapes:PATH."
    if "imgs" in keys and "latents" in keys:
        return " It looks like dSprites: pass dsprites:PATH."
    return ""


def grid_sizes_from_classes(classes: np.ndarray, path: Path, what: str) -> tuple[int, ...]:
    """Grid size of each column = largest class index + 1 (the grid is complete)."""
    if classes.size == 0:
        raise DatasetError(f"{path}: {what} is empty")
    low = classes.min(axis=0)
    if np.any(low != 0):
        raise DatasetError(
            f"{path}: {what} must start at class 0 in every column, found minima {low.tolist()}"
        )
    return tuple(int(s) for s in classes.max(axis=0) + 1)


def check_grid_order(
    classes: np.ndarray, sizes: Sequence[int], names: Sequence[str], path: Path, what: str
) -> None:
    """Row i must hold the mixed-radix digits of i (last column fastest), for every row."""
    n = classes.shape[0]
    expected_n = int(np.prod(np.asarray(sizes, dtype=np.int64)))
    if n != expected_n:
        raise DatasetError(
            f"{path}: {what} has {n} rows but its grid ({' x '.join(map(str, sizes))}) has "
            f"{expected_n} combinations: the file is incomplete or not a complete factor grid"
        )
    rows = np.arange(n, dtype=np.int64)
    for c, (stride, size) in enumerate(zip(mixed_radix_strides(sizes), sizes)):
        wrong = np.flatnonzero(classes[:, c] != (rows // stride) % size)
        if wrong.size:
            r = int(wrong[0])
            raise DatasetError(
                f"{path}: {what} is not in the published grid order: row {r} has "
                f"{names[c]} = {int(classes[r, c])}, the layout says {int((r // stride) % size)}"
            )


def grid_values(
    values: np.ndarray,
    classes: np.ndarray,
    sizes: Sequence[int],
    names: Sequence[str],
    path: Path,
    what: str,
) -> list[np.ndarray]:
    """Possible values of each column, checked to be the same for every row of a class."""
    out = []
    for c, (stride, size) in enumerate(zip(mixed_radix_strides(sizes), sizes)):
        possible = values[np.arange(size, dtype=np.int64) * stride, c].astype(np.float64)
        ok = np.isclose(values[:, c], possible[classes[:, c]], rtol=1e-6, atol=1e-9)
        if not ok.all():
            r = int(np.flatnonzero(~ok)[0])
            cls = int(classes[r, c])
            raise DatasetError(
                f"{path}: {what}: row {r} has {names[c]} = {values[r, c]!r}, "
                f"but its class {cls} has value {possible[cls]!r} elsewhere"
            )
        out.append(possible)
    return out
