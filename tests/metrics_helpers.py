"""Test utilities for the metrics: representations whose disentanglement we know.

The identity representation must map a real rendered image to the factor values it was rendered
from. Every image the metrics see was either stored in a file next to its factors or rendered by
an oracle from known factors, so a lookup table from image content to factor vector, filled from
those (factors, images) pairs, is an exact identity representation. Images are keyed by a 64-bit
hash (BLAKE2b) of their bytes.
"""

from __future__ import annotations

import hashlib

import numpy as np


def image_keys(images: np.ndarray) -> np.ndarray:
    """(n, H, W, C) uint8 -> (n,) uint64 content hashes (BLAKE2b of each image's bytes)."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    digests = b"".join(hashlib.blake2b(row.data, digest_size=8).digest() for row in flat)
    return np.frombuffer(digests, dtype=np.uint64)


class FactorLookup:
    """Image -> the factor vector it was rendered from, for every image added with ``add``."""

    def __init__(self) -> None:
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, images: np.ndarray, factors: np.ndarray) -> None:
        self._keys.append(image_keys(images))
        self._values.append(np.asarray(factors, dtype=np.float64))
        self._sorted = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self._sorted is None:
            keys = np.concatenate(self._keys)
            values = np.concatenate(self._values)
            order = np.argsort(keys, kind="stable")
            self._sorted = (keys[order], values[order])
        keys, values = self._sorted
        q = image_keys(images)
        pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
        missing = keys[pos] != q
        if missing.any():
            raise KeyError(f"{int(missing.sum())} images were never added to the lookup")
        return values[pos]


class RecordingOracle:
    """Wraps a live oracle; every render is recorded in ``lookup`` so it can be inverted."""

    def __init__(self, oracle, lookup: FactorLookup) -> None:
        self.oracle = oracle
        self.lookup = lookup
        self.num_factors = oracle.num_factors
        self.factor_names = oracle.factor_names
        self.factors_num_classes = oracle.factors_num_classes
        self.observation_shape = oracle.observation_shape
        self.render_calls = 0

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.oracle.sample_factors(n, rng)

    def render(self, factors: np.ndarray) -> np.ndarray:
        self.render_calls += 1
        images = self.oracle.render(factors)
        self.lookup.add(images, factors)
        return images


def lookup_from_file(path) -> FactorLookup:
    """A lookup holding every evaluation image stored in a dataset file with its factors."""
    import h5py

    lookup = FactorLookup()
    pairs = [("eval/variance", "images", "factors")]
    for split in ("train", "eval"):
        pairs.append((f"eval/kim_mnih/{split}", "images", "factors"))
        pairs.append((f"eval/higgins/{split}", "images_a", "factors_a"))
        pairs.append((f"eval/higgins/{split}", "images_b", "factors_b"))
        pairs.append((f"eval/random/{split}", "images", "factors"))
    with h5py.File(path, "r") as f:
        for group, images, factors in pairs:
            if group in f:
                lookup.add(f[group][images][()], f[group][factors][()])
    return lookup


class Transformed:
    """``lookup`` followed by a fixed affine map and optional extra columns; any representation
    the tests need (identity in any order and scale, a rotation, added noise) is one of these."""

    def __init__(
        self,
        lookup,
        matrix: np.ndarray | None = None,
        offset: float = 0.0,
        noise_dims: int = 0,
        noise_seed: int = 0,
    ) -> None:
        self.lookup = lookup
        self.matrix = matrix
        self.offset = offset
        self.noise_dims = noise_dims
        self.noise_rng = np.random.default_rng(noise_seed)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        z = self.lookup(images)
        if self.matrix is not None:
            z = z @ self.matrix.T
        z = z + self.offset
        if self.noise_dims:
            z = np.hstack([z, self.noise_rng.normal(size=(len(z), self.noise_dims))])
        return z


def random_rotation(k: int, seed: int) -> np.ndarray:
    """A Haar-random k x k rotation matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(k, k)))
    return q * np.sign(np.diag(r))


def constant_representation(images: np.ndarray) -> np.ndarray:
    """Every image maps to the same latent: no information about any factor."""
    return np.zeros((len(images), 3))


def pixel_mean(images: np.ndarray) -> np.ndarray:
    """A weak but real representation: mean intensity of each image half (for CLI tests)."""
    x = images.astype(np.float64).mean(axis=3)
    h = x.shape[1] // 2
    return np.stack(
        [x[:, :h].mean(axis=(1, 2)), x[:, h:].mean(axis=(1, 2)), x[:, :, :h].mean(axis=(1, 2))],
        axis=1,
    )


def dsprites_barcode_identity(images: np.ndarray) -> np.ndarray:
    """Identity representation for the miniature dSprites files of benchmark.datasets.testing:
    each image spells its row, whose mixed-radix digits are the factor indices (colour dropped)."""
    from benchmark.datasets.testing import MINI_DSPRITES_SIZES, read_barcodes

    digits = np.unravel_index(read_barcodes(images), MINI_DSPRITES_SIZES)
    return np.stack(digits[1:], axis=1).astype(np.float64)
