"""The ground-truth oracle: sample factor vectors and render them, exactly as the build did.

This is the simulator the metrics need (Higgins et al. render with the ground truth, not with the
model's decoder) and what ``verify`` uses to check stored pixels. An oracle made from a file
rebuilds the file's renderer from the spec stored in it, so ``render`` gives the same pixels the
build wrote for the same factor values (on the same renderer and library versions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spritegen.factors import FactorSpace, check_renderable
from spritegen.groundtruth import check_draw_args
from spritegen.spec import DatasetSpec


class Oracle:
    """Samples and renders factor vectors of one dataset spec.

    Factor arrays are (n, K) float32 with one column per active factor (see docs/format.md).
    """

    def __init__(self, spec: DatasetSpec) -> None:
        if not isinstance(spec, DatasetSpec):
            raise TypeError(
                f"Oracle takes a DatasetSpec, got {type(spec).__name__}; for a dataset file use "
                "Oracle.from_file(path)"
            )
        self.spec = spec
        self.space: FactorSpace = spec.space
        self._renderer = None

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> Oracle:
        return cls(spec)

    @classmethod
    def from_file(cls, path: str | Path) -> Oracle:
        from spritegen.datafile import dataset_path, open_dataset, stored_spec

        path = dataset_path(path, "Oracle.from_file")
        with open_dataset(path) as f:
            return cls(stored_spec(path, f))

    # --- description, in the names disentanglement_lib users know -------------------------
    @property
    def num_factors(self) -> int:
        return self.space.num_active

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.space.names

    @property
    def factor_kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.space.factors)

    @property
    def factors_num_classes(self) -> tuple[int, ...]:
        """Class counts of categorical factors, 0 for continuous ones."""
        return tuple(f.num_classes if f.kind == "categorical" else 0 for f in self.space.factors)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    # --- sampling and rendering -------------------------------------------------------------
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.space.sample(check_draw_args(n, rng), rng)

    def sample_column(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_draw_args(n, rng, "sample_column")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"sample_column: k must be a factor index, got {k!r}")
        if not 0 <= k < self.num_factors:  # -1 silently drew the last factor
            raise ValueError(
                f"sample_column: k must be in 0..{self.num_factors - 1} "
                f"({', '.join(self.factor_names)}), got {k}"
            )
        return self.space.sample_column(int(k), n, rng)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """(n, K) factor values -> (n, H, W, C) uint8 images."""
        return self.renderer.render(self.space.expand(self.check_factors(factors)))

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """``factors`` as an (n, K) array the renderer can draw, or a ValueError naming the
        factor, the row and what is allowed (``spritegen.factors.check_renderable``), in the
        oracle's K columns rather than the renderer's seven."""
        try:
            factors = np.asarray(factors)
        except ValueError:  # numpy's "inhomogeneous shape" named neither factors nor the rule
            raise ValueError(
                f"factors must have shape (n, {self.num_factors}) "
                f"({', '.join(self.factor_names)}), got rows of different lengths"
            ) from None
        if factors.dtype.kind not in "iuf":
            raise ValueError(f"factors must be real numbers, got an array of dtype {factors.dtype}")
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(
                f"factors must have shape (n, {self.num_factors}) "
                f"({', '.join(self.factor_names)}), got {factors.shape}"
            )
        check_renderable(self.space, factors)
        return factors

    @property
    def renderer(self):
        if self._renderer is None:
            from spritegen.render import make_renderer

            self._renderer = make_renderer(
                self.spec.renderer, self.spec.image_size, self.space.coloured
            )
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict:
        """Pickled without its renderer (a cairo surface or a GL context cannot be), which the
        copy makes again on first use: an oracle can go to DataLoader workers or a process
        pool. The pixels are the same, the renderer being a pure function of the spec."""
        state = self.__dict__.copy()
        state["_renderer"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"Oracle(factors={list(self.factor_names)}, renderer={self.spec.renderer!r}, "
            f"observation_shape={self.observation_shape})"
        )
