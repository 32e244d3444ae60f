"""Image stores for the grid oracles: read rows of a published image array, in memory or lazily.

Both stores hand out (n, H, W, C) uint8, whatever the file holds: dSprites' 0/1 single-plane
images are scaled to 0/255 and given a channel axis, so every dataset in the project has the
same image convention. Neither store ever holds more than the images' own size: the in-memory
store converts in place, the HDF5 store reads only the rows asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spritegen.memory import check_fits

#: Rows read per h5py call: bounds the temporary buffer (4096 x 64 x 64 x 3 = 48 MiB).
READ_BATCH = 4096
#: HDF5 chunk cache per open file, so neighbouring rows do not decompress one chunk many times.
CHUNK_CACHE_BYTES = 64 * 2**20


def _to_project_images(block: np.ndarray, binary: bool) -> np.ndarray:
    """(n, H, W[, C]) from the file -> (n, H, W, C) uint8 0..255, converting in place."""
    if binary:
        np.multiply(block, 255, out=block)
    if block.ndim == 3:
        block = block[..., None]
    return block


class ArrayStore:
    """Images held in memory, loaded on first use (decompressing an npz member takes seconds).

    ``loader`` returns the file's array; it is converted in place, so memory stays at the
    images' own size. ``read_all`` hands out that same array (no copy): callers must not modify
    it, since the oracle renders from it.
    """

    def __init__(
        self,
        loader: Callable[[], np.ndarray],
        num_images: int,
        observation_shape: tuple[int, int, int],
        binary: bool,
    ) -> None:
        self._loader = loader
        self._images: np.ndarray | None = None
        self._binary = binary
        self.num_images = num_images
        self.observation_shape = observation_shape

    def _all(self) -> np.ndarray:
        if self._images is None:
            self._images = _to_project_images(np.ascontiguousarray(self._loader()), self._binary)
            self._loader = None  # type: ignore[assignment]
        return self._images

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self._all()[np.asarray(rows, dtype=np.int64)]

    def read_all(self) -> np.ndarray:
        return self._all()

    def close(self) -> None:
        self._images = None


class H5Store:
    """Images read lazily from an HDF5 dataset, by sorted row batches.

    h5py selections need increasing rows, so each request is sorted and deduplicated, read as
    slices over runs of neighbouring chunks (see ``_segments``), and put back in the caller's
    order. With ``in_memory`` the whole array is read once, on first use, and served from
    memory; ``read_all`` (the training set) keeps what it read for the same purpose, and hands
    out that array itself (callers must not modify it).
    """

    def __init__(
        self,
        path: Path,
        key: str,
        observation_shape: tuple[int, int, int],
        binary: bool,
        in_memory: bool = False,
    ) -> None:
        import h5py

        self._file = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
        self._ds = self._file[key]
        self._binary = binary
        self._in_memory = in_memory
        self._images: np.ndarray | None = None
        self.num_images = int(self._ds.shape[0])
        self.observation_shape = observation_shape
        self._chunk_rows = int(self._ds.chunks[0]) if self._ds.chunks else 1

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if self._images is not None:
            return self._images[rows]
        if self._in_memory:
            return self.read_all()[rows]
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(unique),) + self.observation_shape, dtype=np.uint8)
        for positions in self._segments(unique):
            lo, hi = int(unique[positions[0]]), int(unique[positions[-1]]) + 1
            block = _to_project_images(self._ds[lo:hi], self._binary)
            out[positions[0] : positions[-1] + 1] = block[unique[positions] - lo]
        return out[inverse]

    def _segments(self, unique: np.ndarray) -> list[np.ndarray]:
        """Split sorted rows into runs that touch neighbouring chunks, each one slice read.

        A slice read decompresses each chunk once, where h5py's point selection costs tens of
        microseconds per row; runs are capped at ``READ_BATCH`` rows of span so a dense request
        never reads (and holds) much more than it asked for.
        """
        if len(unique) == 0:
            return []
        blocks = unique // self._chunk_rows
        breaks = np.flatnonzero(np.diff(blocks) > 1) + 1
        segments = []
        for run in np.split(np.arange(len(unique)), breaks):
            start = unique[run[0]]
            spans = (unique[run] - start) // READ_BATCH
            cuts = np.flatnonzero(np.diff(spans)) + 1
            segments.extend(np.split(run, cuts))
        return segments

    def read_all(self) -> np.ndarray:
        if self._images is not None:
            return self._images
        from tqdm import tqdm

        shape = (self.num_images,) + self.observation_shape
        check_fits(math.prod(shape), f"{self._file.filename}: the images ({self.num_images:,})")
        out = np.empty(shape, dtype=np.uint8)
        starts = range(0, self.num_images, READ_BATCH)
        # a bar on terminals only (disable=None): the full read of 3dshapes takes tens of seconds
        for start in tqdm(
            starts,
            desc=f"read {Path(self._file.filename).name}",
            unit="batch",
            disable=None,
            leave=False,
        ):
            stop = min(start + READ_BATCH, self.num_images)
            out[start:stop] = _to_project_images(self._ds[start:stop], self._binary)
        self._images = out  # later renders are served from it: no second copy in memory
        return out

    def close(self) -> None:
        self._images = None
        if self._file.id.valid:
            self._file.close()
