"""Miniature files in exactly the published dSprites and 3dshapes layouts, for tests.

Same keys, dtypes, shapes per image and row order as the published files, over a subset of
each factor grid (evenly spaced published values). Each image is a *barcode* of its row: its
first pixels spell the row number, so a test can read back which row an oracle returned and
check it against the layout, and an "identity" representation can recover the factors exactly.
Nothing here is needed at run time; the real files are never downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.datasets.grid import mixed_radix_strides

#: dSprites columns: color, shape, scale, orientation, posX, posY (published: 1, 3, 6, 40, 32, 32).
MINI_DSPRITES_SIZES = (1, 3, 3, 4, 4, 4)
#: 3dshapes columns: floor_hue, wall_hue, object_hue, scale, shape, orientation (10,10,10,8,4,15).
MINI_SHAPES3D_SIZES = (2, 2, 3, 2, 4, 3)

#: Value lists of every column, from which the miniature grids take evenly spaced subsets.
#: dSprites': as in its metadata. 3dshapes': hues 0.0..0.9 (as third-party copies list them),
#: orientation -30..30 (its README); the scale range is a guess (the reader reads values
#: from the file).
DSPRITES_VALUES = (
    np.array([1.0]),
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * math.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
SHAPES3D_VALUES = (
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.75, 1.25, 8),
    np.arange(4, dtype=np.float64),
    np.linspace(-30.0, 30.0, 15),
)
_BITS = 24


def _subset(values: np.ndarray, size: int) -> np.ndarray:
    """``size`` evenly spaced entries of a published value list (the whole list if equal)."""
    if size > len(values):
        raise ValueError(f"a grid column has {len(values)} published values, asked for {size}")
    return values[np.round(np.linspace(0, len(values) - 1, size)).astype(int)]


def grid_latents(
    sizes: Sequence[int], published: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(classes (N, C) int64, values (N, C) float64) for every combination, last column fastest."""
    n = int(np.prod(sizes))
    rows = np.arange(n, dtype=np.int64)
    classes = np.stack([(rows // s) % z for s, z in zip(mixed_radix_strides(sizes), sizes)], 1)
    values = np.stack(
        [_subset(v, z)[classes[:, c]] for c, (v, z) in enumerate(zip(published, sizes))], 1
    )
    return classes.astype(np.int64), values.astype(np.float64)


def barcode_images(n: int, channels: int, binary: bool, start: int = 0) -> np.ndarray:
    """Images of rows ``start .. start + n - 1``, whose first pixel row spells the row number.

    ``channels`` 0 gives (n, 64, 64) like dSprites' ``imgs``; ``binary`` gives 0/1 pixels.
    """
    shape = (n, 64, 64) if channels == 0 else (n, 64, 64, channels)
    images = np.zeros(shape, dtype=np.uint8)
    bits = (np.arange(start, start + n, dtype=np.int64)[:, None] >> np.arange(_BITS)) & 1
    images[:, 0, :_BITS, ...] = (
        (bits if binary else bits * 255)
        .astype(np.uint8)
        .reshape((n, _BITS) + (1,) * (images.ndim - 3))
    )
    images[:, 32:40, 24:40, ...] = 1 if binary else 200  # a blob, so the images are not blank
    return images


def read_barcodes(images: np.ndarray) -> np.ndarray:
    """Row numbers spelled by images (n, H, W, C) uint8 from an oracle (any 0/nonzero scale)."""
    bits = (np.asarray(images)[:, 0, :_BITS, 0] > 0).astype(np.int64)
    return bits @ (1 << np.arange(_BITS, dtype=np.int64))


def _dsprites_arrays(sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    classes, values = grid_latents(sizes, DSPRITES_VALUES)
    images = barcode_images(len(classes), channels=0, binary=True)
    names = ("color", "shape", "scale", "orientation", "posX", "posY")
    metadata = {
        "date": "test",
        "version": 1,
        "title": "dSprites dataset (miniature test copy)",
        "latents_names": names,
        "latents_sizes": np.asarray(sizes),
        "latents_possible_values": {
            n: _subset(v, z) for n, v, z in zip(names, DSPRITES_VALUES, sizes)
        },
    }
    return images, classes, values, metadata


def write_dsprites_npz(path: Path, sizes: Sequence[int] = MINI_DSPRITES_SIZES) -> Path:
    """A compressed npz with imgs, latents_values, latents_classes and a pickled metadata dict."""
    images, classes, values, metadata = _dsprites_arrays(sizes)
    with open(path, "wb") as fh:
        np.savez_compressed(
            fh,
            metadata=np.array(metadata, dtype=object),
            imgs=images,
            latents_classes=classes,
            latents_values=values,
        )
    return Path(path)


def write_dsprites_hdf5(path: Path, sizes: Sequence[int] = MINI_DSPRITES_SIZES) -> Path:
    """The HDF5 twin: imgs, and a latents group holding classes and values (gzip, chunked)."""
    import h5py

    images, classes, values, _ = _dsprites_arrays(sizes)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("imgs", data=images, chunks=(32, 64, 64), compression="gzip")
        latents = fh.create_group("latents")
        latents.create_dataset("classes", data=classes)
        latents.create_dataset("values", data=values)
    return Path(path)


def write_shapes3d(path: Path, sizes: Sequence[int] = MINI_SHAPES3D_SIZES) -> Path:
    """``3dshapes.h5``'s layout: images (N, 64, 64, 3) uint8 and labels (N, 6) float64 only."""
    import h5py

    _, values = grid_latents(sizes, SHAPES3D_VALUES)
    images = barcode_images(len(values), channels=3, binary=False)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("images", data=images, chunks=(16, 64, 64, 3), compression="gzip")
        fh.create_dataset("labels", data=values)
    return Path(path)
