"""3dshapes (Burgess & Kim, 2018) as a discrete ground-truth oracle, from ``3dshapes.h5``.

The published layout: ``images`` (480000, 64, 64, 3) uint8 and ``labels`` (480000, 6) float64,
nothing else (no names, no attributes). The six factors, in column order, are floor_hue (10),
wall_hue (10), object_hue (10), scale (8), shape (4), orientation (15), every combination once, in
mixed-radix order with orientation fastest. The file stores only values, so the grid of each
column is the sorted set of its distinct values and a row's class is the position of its value in
that set; the reader then checks that every row sits where the layout says.

Memory: the labels (23 MB) are read at open; images are read lazily, by sorted row batches, or
all at once on first use with ``in_memory`` (480,000 x 12,288 bytes = 5.9 GB, the images' size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.datasets import checks
from benchmark.datasets.grid import GridOracle
from benchmark.datasets.stores import H5Store
from spritegen.errors import DatasetError, check_flag

FILE_NAME = "3dshapes.h5"
HOMEPAGE = "https://github.com/deepmind/3d-shapes"
URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
ORIGIN = (
    f"3dshapes comes from {HOMEPAGE}: download {FILE_NAME} from {URL} and give it as "
    "3dshapes:PATH."
)  # no flag: bench run takes it as --data, bench score as its DATA argument

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
PUBLISHED_SIZES = (10, 10, 10, 8, 4, 15)
FACTOR_KINDS = ("discrete", "discrete", "discrete", "discrete", "categorical", "discrete")
#: Labels are compared after rounding to this many decimals, so float noise cannot split a class.
_DECIMALS = 6


def open_shapes3d(path: str | Path, *, in_memory: bool = False, verify: bool = False) -> GridOracle:
    """Open ``3dshapes.h5`` at ``path``; ``verify`` also hashes it against the published digest.

    Raises ``DatasetError`` with one line when the file is missing, truncated or not 3dshapes.
    """
    in_memory, verify = check_flag("in_memory", in_memory), check_flag("verify", verify)
    import h5py

    path = Path(path)
    checks.require_file(path, ORIGIN)
    container = checks.sniff(path)
    if container != "hdf5":
        found = "a zip (npz) archive" if container == "zip" else checks.describe_other(path)
        raise DatasetError(f"{path}: expected the 3dshapes HDF5 file, found {found}. {ORIGIN}")
    fh = checks.open_hdf5(path, ORIGIN)
    with fh:
        if (
            not (
                "images" in fh
                and "labels" in fh
                and isinstance(fh["images"], h5py.Dataset)
                and isinstance(fh["labels"], h5py.Dataset)
            )
            or "factors" in fh
        ):
            raise DatasetError(
                f"{path}: an HDF5 file without the datasets images and labels "
                f"(found: {checks.describe_hdf5_keys(fh)}); not 3dshapes."
                f"{checks.hdf5_identity_hint(fh)} {ORIGIN}"
            )
        images, labels_ds = fh["images"], fh["labels"]
        if images.dtype != np.uint8 or len(images.shape) != 4 or images.shape[3] != 3:
            raise DatasetError(
                f"{path}: images is {tuple(images.shape)} {images.dtype}, 3dshapes' "
                f"is (480000, 64, 64, 3) uint8. {ORIGIN}"
            )
        if labels_ds.dtype.kind != "f" or tuple(labels_ds.shape) != (images.shape[0], 6):
            raise DatasetError(
                f"{path}: labels is {tuple(labels_ds.shape)} {labels_ds.dtype}, "
                f"expected ({images.shape[0]}, 6) float64 to match images. {ORIGIN}"
            )
        try:
            labels = labels_ds[()].astype(np.float64, copy=False)
        except OSError as exc:
            raise DatasetError(
                f"{path}: cannot read labels ({exc}); the file is truncated or corrupt. {ORIGIN}"
            ) from None
        n, h, w, c = images.shape
    if not np.all(np.isfinite(labels)):
        raise DatasetError(f"{path}: labels hold non-finite values. {ORIGIN}")
    classes, sizes = _classes_from_values(labels)
    checks.check_grid_order(classes, sizes, FACTOR_NAMES, path, "labels")
    possible = checks.grid_values(labels, classes, sizes, FACTOR_NAMES, path, "labels")
    store = H5Store(path, "images", (h, w, c), binary=False, in_memory=in_memory)
    oracle = GridOracle(
        name="3dshapes",
        store=store,
        grid_sizes=sizes,
        column_names=FACTOR_NAMES,
        factor_columns=range(len(FACTOR_NAMES)),
        possible_values=possible,
        factor_kinds=FACTOR_KINDS,
        path=str(path),
    )
    if verify:
        _verify(path, oracle)
    return oracle


def _classes_from_values(labels: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Class of each label = rank of its (rounded) value among the column's distinct values."""
    rounded = np.round(labels, _DECIMALS)
    classes = np.empty(labels.shape, dtype=np.int64)
    sizes = []
    for col in range(labels.shape[1]):
        grid = np.unique(rounded[:, col])
        classes[:, col] = np.searchsorted(grid, rounded[:, col])
        sizes.append(len(grid))
    return classes, tuple(sizes)


def _verify(path: Path, oracle: GridOracle) -> None:
    from benchmark.datasets.checksums import verify_checksum

    if oracle.grid_sizes != PUBLISHED_SIZES:
        oracle.close()
        raise DatasetError(
            f"{path}: cannot verify against the published checksum: the grid is "
            f"{oracle.grid_sizes}, the published one is {PUBLISHED_SIZES}"
        )
    report = verify_checksum(path, "3dshapes")
    if report.matched is False:
        oracle.close()
        raise DatasetError(f"{report.message}. {ORIGIN}")
