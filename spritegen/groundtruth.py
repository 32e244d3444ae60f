"""The ground-truth contract: what every oracle offers the metrics, the build and the adapter.

An *oracle* knows a dataset's generative factors and can render any factor vector: spritegen's
``Oracle`` (continuous factors, rendered by pycairo/pyrender), the dSprites and 3dshapes grid
oracles of ``benchmark.datasets`` (grid indices, images read from the published file), the
discretising ``spritegen.adapters.GroundTruthAdapter``, or a user's own simulator. They all
implement ``GroundTruth``, and code that receives one from a user calls ``check_ground_truth``
once, so a missing member is one line naming it rather than an AttributeError mid-metric.

Factor arrays are ``(n, K)``: one column per factor, a categorical factor holding its class
index (``factors_num_classes[k] > 0``), a continuous one its value (``factors_num_classes[k]``
is 0). Images are ``(n, H, W, C)`` uint8 with ``(H, W, C) == observation_shape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from spritegen.errors import SpecError


@runtime_checkable
class FactorSampler(Protocol):
    """What sampling evaluation sets needs: K and a way to draw independent factor vectors."""

    @property
    def num_factors(self) -> int: ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent factor vectors, (n, K), drawn from ``rng`` alone."""
        ...


@runtime_checkable
class GroundTruth(FactorSampler, Protocol):
    """A ground-truth oracle: describe the factors, sample factor vectors, render them."""

    @property
    def factor_names(self) -> Sequence[str]: ...

    @property
    def factors_num_classes(self) -> Sequence[int]:
        """Class (or grid) count of each discrete factor, 0 for a continuous one."""
        ...

    @property
    def observation_shape(self) -> tuple[int, int, int]: ...

    def render(self, factors: np.ndarray) -> np.ndarray:
        """(n, K) factor array -> (n, H, W, C) uint8 images, a pure function of the factors."""
        ...


ATTRIBUTES = ("num_factors", "factor_names", "factors_num_classes", "observation_shape")
METHODS = ("sample_factors", "render")


def check_ground_truth(obj: object, what: str = "oracle") -> GroundTruth:
    """``obj`` if it implements ``GroundTruth`` consistently, else a one-line ``SpecError``.

    Checks presence (a ``runtime_checkable`` isinstance only checks names) and that the
    description agrees with itself: K >= 1 factors, K names, K class counts, an (H, W, C) shape.
    """
    name = type(obj).__name__
    missing = [m for m in ATTRIBUTES if not hasattr(obj, m)]
    missing += [m for m in METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise SpecError(
            f"{what} {name} does not implement the ground-truth contract "
            f"(spritegen.groundtruth.GroundTruth): missing {', '.join(missing)}"
        )
    gt: GroundTruth = obj  # type: ignore[assignment]
    k = gt.num_factors
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SpecError(f"{what} {name}: num_factors must be an integer >= 1, got {k!r}")
    for member in ("factor_names", "factors_num_classes"):
        size = len(getattr(gt, member))
        if size != k:
            raise SpecError(f"{what} {name}: {member} has {size} entries for {k} factors")
    shape = tuple(gt.observation_shape)
    if len(shape) != 3:
        raise SpecError(f"{what} {name}: observation_shape must be (H, W, C), got {shape}")
    return gt


def check_draw_args(n: object, rng: object, what: str = "sample_factors") -> int:
    """``n`` as an int >= 0, after checking that ``rng`` is a numpy ``Generator``: what every
    oracle's sampling takes. An int seed, a ``RandomState`` or None failed deep inside numpy
    (``'int' object has no attribute 'uniform'``), a negative or fractional n likewise."""
    if not isinstance(rng, np.random.Generator):
        hint = (
            "; disentanglement_lib's RandomState is taken by spritegen.adapters.GroundTruthAdapter"
            if isinstance(rng, np.random.RandomState)
            else ""
        )
        raise TypeError(
            f"{what}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(rng).__name__}{hint}"
        )
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{what}: n must be an integer >= 0, got {n!r}")
    return int(n)


def draw_factors(sampler: FactorSampler, n: int, rng: np.random.Generator) -> np.ndarray:
    """``sampler.sample_factors(n, rng)`` as a fresh (n, K) array, its shape checked."""
    factors = np.array(sampler.sample_factors(n, rng), copy=True)
    k = int(sampler.num_factors)
    if factors.shape != (n, k):
        raise SpecError(
            f"{type(sampler).__name__}.sample_factors({n}, rng) must return shape ({n}, {k}), "
            f"got {factors.shape}"
        )
    return factors
