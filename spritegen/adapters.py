"""spritegen data behind disentanglement_lib's ground-truth interface, for code written for it.

disentanglement_lib's metrics and methods talk to a ``GroundTruthData`` object: ``num_factors``,
``factors_num_values``, ``observation_shape``, ``sample_factors(num, random_state)``,
``sample_observations_from_factors(factors, random_state)`` (float32 images in [0, 1]),
``sample(num, random_state)`` and ``sample_observations(num, random_state)``. Its factors are
integer indices ``0 <= f[:, k] < factors_num_values[k]``, because its datasets are grids.

``GroundTruthAdapter`` offers exactly that over a spritegen ``Oracle`` (or a dataset path, or any
oracle implementing ``spritegen.groundtruth.GroundTruth``, such as the dSprites and 3dshapes grid
oracles of ``benchmark.datasets``):

- Discrete factors (``factors_num_classes[k] > 0``: spritegen's ``shape``, every factor of a grid
  dataset) pass through: the index is the class.
- Continuous factors (positions, scale, rotations, hue) are cut into ``bins`` equal-width bins over
  their range; ``factors_num_values[k]`` is that bin count, and a factor index is a bin. Turning
  an index back into a value uses the bin's centre (``within_bin="centre"``, the default: the
  adapter then behaves as a grid dataset of ``bins`` values per continuous factor, so fixing an
  index fixes the rendered value exactly, as disentanglement_lib's metrics assume) or a uniform
  draw inside the bin (``within_bin="uniform"``: images follow the continuous distribution, and
  "fixed" factors vary within one bin width).

``random_state`` may be a ``numpy.random.RandomState`` (what disentanglement_lib passes) or a
``numpy.random.Generator``. Nothing here imports torch or ``benchmark``.

The adapter is itself a discrete ``GroundTruth`` (``factors_num_classes`` = the bin counts,
``render`` of factor indices at bin centres), so the project's metrics can score it live as they
score a grid dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spritegen.errors import quote
from spritegen.factors import FACTORS, as_class_indices
from spritegen.groundtruth import GroundTruth, check_ground_truth
from spritegen.oracle import Oracle

WITHIN_BIN = ("centre", "uniform")
DEFAULT_BINS = 32


def as_generator(random_state: np.random.Generator | np.random.RandomState) -> np.random.Generator:
    """A Generator from either numpy random API; a RandomState seeds one from a single draw."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**63 - 1, dtype=np.int64)))
    raise TypeError(
        "random_state must be a numpy.random.RandomState or numpy.random.Generator, "
        f"got {type(random_state).__name__}"
    )


def _factor_ranges(oracle: GroundTruth) -> list[tuple[float, float] | None]:
    """(low, high) of each continuous factor: from the oracle's FactorSpace, else by name."""
    classes = list(oracle.factors_num_classes)
    space = getattr(oracle, "space", None)
    if space is not None and hasattr(space, "factors"):
        table = list(space.factors)
    else:
        by_name = {f.name: f for f in FACTORS}
        table = [by_name.get(name) for name in oracle.factor_names]
    ranges: list[tuple[float, float] | None] = []
    for k, n in enumerate(classes):
        if n > 0:
            ranges.append(None)
            continue
        f = table[k] if k < len(table) else None
        if f is None:
            raise ValueError(
                f"continuous factor {oracle.factor_names[k]!r} has no known range; "
                "the oracle needs a FactorSpace (.space) with its ranges"
            )
        ranges.append((float(f.low), float(f.high)))
    return ranges


def _bin_count(name: str, b: object) -> int:
    """A continuous factor's bin count: a whole number >= 1 (8 or 8.0). ``bins=2.5`` was a
    TypeError ('float' object is not iterable), None one from int(), True one bin."""
    whole = (
        isinstance(b, (int, float, np.integer, np.floating))
        and not isinstance(b, (bool, np.bool_))
        and np.isfinite(b)
        and int(b) == b
        and b >= 1
    )
    if not whole:
        raise ValueError(
            f"bins for continuous factor {name!r} must be a positive integer, got {quote(b)}"
        )
    return int(b)  # type: ignore[call-overload]


class GroundTruthAdapter:
    """disentanglement_lib's ``GroundTruthData`` over a spritegen oracle or dataset file."""

    def __init__(
        self,
        oracle_or_path: Any,
        *,
        bins: int | Sequence[int] = DEFAULT_BINS,
        within_bin: str = "centre",
    ) -> None:
        if isinstance(oracle_or_path, (str, Path)):
            oracle_or_path = Oracle.from_file(oracle_or_path)
        self.oracle = check_ground_truth(oracle_or_path)
        if within_bin not in WITHIN_BIN:
            raise ValueError(
                f"within_bin must be one of {', '.join(WITHIN_BIN)}, got {quote(within_bin)}"
            )
        self.within_bin = within_bin
        k = int(self.oracle.num_factors)
        if isinstance(bins, (str, bytes)) or not isinstance(bins, Sequence | np.ndarray):
            per_factor = [bins] * k  # one count for every continuous factor
        else:
            per_factor = list(bins)
        if len(per_factor) != k:
            raise ValueError(
                f"bins must be one int or {k} ints (one per factor), got {len(per_factor)}"
            )
        self._classes = [int(n) for n in self.oracle.factors_num_classes]
        self._ranges = _factor_ranges(self.oracle)
        self._num_values = []
        for name, n, b in zip(self.oracle.factor_names, self._classes, per_factor):
            self._num_values.append(n if n > 0 else _bin_count(name, b))

    # -- disentanglement_lib's GroundTruthData ------------------------------------------------

    @property
    def num_factors(self) -> int:
        return len(self._num_values)

    @property
    def factors_num_values(self) -> list[int]:
        """Classes of a discrete factor; the bin count of a continuous one (see module doc)."""
        return list(self._num_values)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.oracle.observation_shape)  # type: ignore[return-value]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.oracle.factor_names)

    @property
    def factors_num_classes(self) -> list[int]:
        """``GroundTruth``: every factor of the adapter is discrete (a class or a bin)."""
        return list(self._num_values)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """``GroundTruth``: factor indices (n, K) -> (n, H, W, C) uint8, at bin centres.

        Only with ``within_bin="centre"``: a pure function of the indices needs no random draw.
        """
        if self.within_bin != "centre":
            raise ValueError(
                "render needs within_bin='centre'; with 'uniform' use "
                "sample_observations_from_factors(factors, random_state)"
            )
        return np.asarray(self.oracle.render(self.factor_values(factors)))

    def sample_factors(self, num: int, random_state: Any) -> np.ndarray:
        """``num`` factor-index vectors, (num, K) int64, uniform over classes and bins."""
        rng = as_generator(random_state)
        out = np.empty((num, self.num_factors), dtype=np.int64)
        for k, n in enumerate(self._num_values):
            out[:, k] = rng.integers(0, n, size=num)
        return out

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: Any
    ) -> np.ndarray:
        """Images of factor-index vectors, (n, H, W, C) float32 in [0, 1]."""
        values = self.factor_values(factors, random_state)
        return self.oracle.render(values).astype(np.float32) / np.float32(255.0)

    def sample(self, num: int, random_state: Any) -> tuple[np.ndarray, np.ndarray]:
        """(factor indices, observations) for ``num`` random points, as disentanglement_lib does."""
        rng = as_generator(random_state)
        factors = self.sample_factors(num, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def sample_observations(self, num: int, random_state: Any) -> np.ndarray:
        return self.sample(num, random_state)[1]

    # -- conversions ------------------------------------------------------------------------

    def factor_values(self, factors: np.ndarray, random_state: Any = None) -> np.ndarray:
        """Factor indices -> the oracle's factor array (n, K) float32 (bin centre or uniform draw).

        ``random_state`` is needed only with ``within_bin="uniform"``.
        """
        idx = self._check_indices(factors)
        rng = None
        if self.within_bin == "uniform" and any(n == 0 for n in self._classes):
            if random_state is None:
                raise ValueError("within_bin='uniform' needs a random_state to draw inside bins")
            rng = as_generator(random_state)
        out = np.empty(idx.shape, dtype=np.float32)
        for k, rng_k in enumerate(self._ranges):
            if rng_k is None:
                out[:, k] = idx[:, k]
                continue
            low, high = rng_k
            width = (high - low) / self._num_values[k]
            offset = 0.5 if rng is None else rng.uniform(0.0, 1.0, size=len(idx))
            col = (low + (idx[:, k] + offset) * width).astype(np.float32)
            col[col >= np.float32(high)] = np.nextafter(np.float32(high), np.float32(low))
            out[:, k] = col
        return out

    def factor_indices(self, values: np.ndarray) -> np.ndarray:
        """The oracle's factor array (n, K) -> factor indices (n, K) int64 (each value's bin)."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != self.num_factors:
            raise ValueError(
                f"factor values must have shape (n, {self.num_factors}), got {v.shape}"
            )
        bad = ~np.isfinite(v)
        if bad.any():  # NaN fell in bin 0 without a word
            row, k = (int(i[0]) for i in np.nonzero(bad))
            raise ValueError(
                f"factor values must be finite; factor {self.factor_names[k]!r} is "
                f"{float(v[row, k])} in row {row}"
            )
        out = np.empty(v.shape, dtype=np.int64)
        for k, rng_k in enumerate(self._ranges):
            if rng_k is None:
                out[:, k] = np.rint(v[:, k])
            else:
                low, high = rng_k
                out[:, k] = np.floor((v[:, k] - low) / (high - low) * self._num_values[k])
            np.clip(out[:, k], 0, self._num_values[k] - 1, out=out[:, k])
        return out

    def _check_indices(self, factors: np.ndarray) -> np.ndarray:
        return as_class_indices(factors, self._num_values, self.factor_names)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n}={v}{'' if c else ' bins'}"
            for n, v, c in zip(self.factor_names, self._num_values, self._classes)
        )
        return f"<GroundTruthAdapter {parts} within_bin={self.within_bin}>"
