"""A published factor-grid dataset (dSprites, 3dshapes) as a discrete ground-truth oracle.

Both published datasets store every combination of their factor values exactly once, in
mixed-radix order (the last factor varies fastest). The image for a vector of grid indices is
therefore found by arithmetic, never by searching, and "fixing a factor" means fixing its grid
index, which is how the published metrics were computed on these datasets.

The oracle implements the ground-truth contract (``spritegen.groundtruth.GroundTruth``): factor
arrays are ``(n, K)`` float32 holding grid *indices* (classes); ``factors_num_classes`` gives the
grid sizes; ``factor_values`` turns indices into the real latent values of the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from spritegen.factors import as_class_indices
from spritegen.groundtruth import check_draw_args


class ImageStore(Protocol):
    """Where an oracle's images live: an in-memory array or a lazily read HDF5 dataset."""

    num_images: int
    observation_shape: tuple[int, int, int]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows (any order, repeats allowed) -> (n, H, W, C) uint8."""
        ...

    def read_all(self) -> np.ndarray:
        """Every image, (N, H, W, C) uint8, in memory."""
        ...

    def close(self) -> None: ...


def mixed_radix_strides(sizes: Sequence[int]) -> np.ndarray:
    """Row stride of each grid column when the last column varies fastest."""
    radix = np.asarray(sizes, dtype=np.int64)
    strides = np.ones(len(radix), dtype=np.int64)
    for i in range(len(radix) - 2, -1, -1):
        strides[i] = strides[i + 1] * radix[i + 1]
    return strides


class GridOracle:
    """Discrete oracle over a complete factor grid stored in mixed-radix order.

    ``grid_sizes`` lists every column of the published layout (dSprites has six, one of them the
    constant colour); ``factor_columns`` says which of them are the oracle's factors (the ones the
    metrics see). Columns that are not factors must have size 1.
    """

    def __init__(
        self,
        *,
        name: str,
        store: ImageStore,
        grid_sizes: Sequence[int],
        column_names: Sequence[str],
        factor_columns: Sequence[int],
        possible_values: Sequence[np.ndarray],
        factor_kinds: Sequence[str],
        path: str,
    ) -> None:
        self.name = name
        self.path = path  # the published file the images come from
        self._store = store
        self.grid_sizes = tuple(int(s) for s in grid_sizes)
        self.column_names = tuple(column_names)
        self.factor_columns = tuple(int(c) for c in factor_columns)
        self.possible_values = [
            np.asarray(possible_values[c], dtype=np.float64) for c in self.factor_columns
        ]
        self.factor_kinds = tuple(factor_kinds)
        for c in range(len(self.grid_sizes)):
            if c not in self.factor_columns and self.grid_sizes[c] != 1:
                raise ValueError(f"column {self.column_names[c]} varies but is not a factor")
        self._strides = mixed_radix_strides(self.grid_sizes)[list(self.factor_columns)]
        self._sizes = np.asarray([self.grid_sizes[c] for c in self.factor_columns], np.int64)

    # -- the ground-truth contract (spritegen.groundtruth.GroundTruth) ----------------------

    @property
    def num_factors(self) -> int:
        return len(self.factor_columns)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.column_names[c] for c in self.factor_columns)

    @property
    def factors_num_classes(self) -> list[int]:
        """Grid size of each factor: every factor of a grid dataset is discrete."""
        return [int(s) for s in self._sizes]

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return self._store.observation_shape

    @property
    def num_images(self) -> int:
        return self._store.num_images

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` grid-index vectors drawn uniformly from the grid, (n, K) float32."""
        n = check_draw_args(n, rng)
        out = np.empty((n, self.num_factors), dtype=np.float32)
        for k in range(self.num_factors):
            out[:, k] = self.sample_column(k, n, rng)
        return out

    def sample_column(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` grid indices of factor ``k`` alone, (n,) float32, as ``sample_factors`` draws."""
        n = check_draw_args(n, rng, "sample_column")
        if not 0 <= k < self.num_factors:
            raise ValueError(f"factor index must be in 0..{self.num_factors - 1}, got {k}")
        return rng.integers(0, self._sizes[k], size=n).astype(np.float32)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """Grid-index vectors (n, K) -> the stored images (n, H, W, C) uint8."""
        return self._store.read(self.index_of(factors))

    # -- grid arithmetic ----------------------------------------------------------------------

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Row of each grid-index vector in the published layout, (n,) int64 (mixed radix)."""
        try:
            idx = as_class_indices(factors, self._sizes, self.factor_names)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        return idx @ self._strides

    def factors_at(self, rows: np.ndarray) -> np.ndarray:
        """Grid-index vectors of the given rows, (n, K) float32 (inverse of ``index_of``)."""
        rows = np.asarray(rows, dtype=np.int64)
        return ((rows[:, None] // self._strides) % self._sizes).astype(np.float32)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Grid indices (n, K) -> the real latent values stored in the file, (n, K) float64."""
        idx = self.factors_at(self.index_of(factors)).astype(np.int64)
        out = np.empty(idx.shape, dtype=np.float64)
        for k, values in enumerate(self.possible_values):
            out[:, k] = values[idx[:, k]]
        return out

    # -- training data ------------------------------------------------------------------------

    def read_training_set(
        self, limit: int | None = None, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, H, W, C) uint8 and grid-index factors (N, K) float32, in memory.

        The published files are stored in grid order, so their first rows are not a sample: with
        ``limit`` a uniform random subset of rows (without replacement, in file order) is drawn
        with ``rng``, which is then required.
        """
        n = self.num_images
        if limit is None or limit >= n:
            images = self._store.read_all()
            return images, self.factors_at(np.arange(n))
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if rng is None:
            raise ValueError(
                f"{self.name} is stored in grid order: a limit needs an rng to draw "
                "a random subset of rows"
            )
        rows = np.sort(rng.choice(n, size=limit, replace=False))
        return self._store.read(rows), self.factors_at(rows)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> GridOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factors_num_classes))
        return f"<{type(self).__name__} {self.name} {sizes} from {self.path}>"
