"""A tiny spritegen-like training set for the training tests (pos_x, pos_y of one square).

Until main's build lands, this draws the 2-factor dataset with an exactly antialiased square
(pixel coverage computed analytically) following spritegen's factor conventions (FactorSpace
sampling, positions inside a margin) and writes /images and /factors as the format prescribes.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from spritegen.factors import FactorSpace


def render_squares(factors: np.ndarray, size: int = 64, side_frac: float = 0.3) -> np.ndarray:
    """(N, 2) positions in [0, 1) -> (N, size, size, 1) uint8 white squares on black."""
    side = side_frac * size
    margin = side / 2 + 1
    cx = margin + factors[:, 0:1] * (size - 2 * margin)
    cy = margin + factors[:, 1:2] * (size - 2 * margin)
    px = np.arange(size)[None, :]
    cov_x = np.clip(np.minimum(px + 1, cx + side / 2) - np.maximum(px, cx - side / 2), 0, 1)
    cov_y = np.clip(np.minimum(px + 1, cy + side / 2) - np.maximum(px, cy - side / 2), 0, 1)
    img = cov_y[:, :, None] * cov_x[:, None, :]
    return np.round(img * 255).astype(np.uint8)[..., None]


def make_tiny_dataset(path: Path, n: int = 512, seed: int = 0) -> Path:
    space = FactorSpace(num_active=2)
    factors = space.sample(n, np.random.default_rng(seed))
    images = render_squares(factors)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(min(64, n), 64, 64, 1))
        f.create_dataset("factors", data=factors)
    return Path(path)


class SquaresOracle:
    """A live oracle for the fixture's squares (the interface benchmark.metrics takes)."""

    num_factors = 2
    factors_num_classes = (0, 0)
    factor_names = ("pos_x", "pos_y")
    observation_shape = (64, 64, 1)

    def __init__(self) -> None:
        self.space = FactorSpace(num_active=2)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.space.sample(n, rng)

    def sample_column(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.space.sample_column(k, n, rng)

    def render(self, factors: np.ndarray) -> np.ndarray:
        return render_squares(np.asarray(factors, dtype=np.float32))
